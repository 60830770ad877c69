// Handles shared between the addon's files: the model every JS object derived from it shares, the
// per-env constructor table, and accessors that turn a JS model/adapter object into its native
// handle (defined in model_addon.cc, used by engine_addon.cc).
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "rrec/model.h"

namespace rrec::addon {

// The model shared by every JS object derived from it.
struct ModelHandle {
  std::unique_ptr<Model<float>> f;
  std::unique_ptr<Model<double>> d;
  std::atomic<int> busy{0};
  bool freed = false;
  std::mutex mu;
  bool isDouble() const { return d != nullptr; }
  const ModelConfig& config() const { return d ? d->config() : f->config(); }
  void check(Napi::Env env) const {
    if (freed) throw Napi::Error::New(env, "this model was freed; load it again");
  }
};

struct Ctors {
  Napi::FunctionReference model, adapter, pass, optimizer, engine;
};

inline Ctors& ctors(Napi::Env env) { return *env.GetInstanceData<Ctors>(); }

// Holds the busy count for the life of an async call.
struct BusyGuard {
  std::shared_ptr<ModelHandle> h;
  explicit BusyGuard(std::shared_ptr<ModelHandle> handle) : h(std::move(handle)) { h->busy++; }
};

struct AdapterRef {
  std::shared_ptr<ModelHandle> handle;
  Adapter<float>* f = nullptr;
  Adapter<double>* d = nullptr;
};

// Throw a TypeError naming `what` when v is not a NativeModel / NativeAdapter.
std::shared_ptr<ModelHandle> modelHandleOf(const Napi::Value& v, const char* what);
AdapterRef adapterOf(const Napi::Value& v, const char* what);

}  // namespace rrec::addon
