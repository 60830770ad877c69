// A Promise-returning AsyncWorker: `execute` runs off the JS thread (on the process-wide compute
// thread, see compute_thread.h; no JS access), `resolve` builds the result on the JS thread. Any std::exception becomes a rejected Promise
// with the same message, never a crash. Objects in `keepAlive` stay referenced while it runs.
#pragma once
#include <napi.h>

#include <functional>
#include <string>
#include <vector>

#include "addon/compute_thread.h"

namespace rrec::addon {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using ExecuteFn = std::function<void()>;
  using ResolveFn = std::function<Napi::Value(Napi::Env)>;
  using FinallyFn = std::function<void()>;

  static Napi::Promise Queue(Napi::Env env, const char* name, ExecuteFn execute, ResolveFn resolve, FinallyFn finally,
                             std::vector<Napi::Object> keepAlive) {
    auto* w = new PromiseWorker(env, name, std::move(execute), std::move(resolve), std::move(finally));
    for (Napi::Object& o : keepAlive) w->refs_.push_back(Napi::Persistent(o));
    Napi::Promise p = w->deferred_.Promise();
    w->Napi::AsyncWorker::Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      runOnComputeThread(execute_);
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    if (finally_) finally_();
    Napi::Env env = Env();
    try {
      deferred_.Resolve(resolve_ ? resolve_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (finally_) finally_();
    deferred_.Reject(e.Value());
  }

 private:
  PromiseWorker(Napi::Env env, const char* name, ExecuteFn execute, ResolveFn resolve, FinallyFn finally)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        execute_(std::move(execute)),
        resolve_(std::move(resolve)),
        finally_(std::move(finally)) {}
  Napi::Promise::Deferred deferred_;
  ExecuteFn execute_;
  ResolveFn resolve_;
  FinallyFn finally_;
  std::vector<Napi::ObjectReference> refs_;
};

}  // namespace rrec::addon
