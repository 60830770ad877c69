// JS class over the sampling engine: NativeEngine, created by createEngine(model, options, bytes).
// JS drives the loop: start(requests, adapter) opens a session, every step() is a PromiseWorker
// that runs one scheduler step off the JS thread with the model's mutex held (so an optimizer step
// cannot interleave mid-step), abort() ends the session. While a session is open the model counts
// as busy: freeing it, stepping its optimizer or editing adapter weights is refused with an error.
// A test-only export, _sampleFromLogits, runs the sampler on given logits.
#include <napi.h>

#include <cmath>
#include <memory>

#include "convert.h"
#include "options.h"
#include "handles.h"
#include "rrec/engine.h"
#include "rrec/errors.h"
#include "core/sampler.h"
#include "cpu/sampler.h"
#include "worker.h"

namespace rrec::addon {

namespace {

Napi::Value eventsToJs(Napi::Env env, const std::vector<StepEvent>& ev, bool active) {
  const size_t n = ev.size();
  Napi::Int32Array req = Napi::Int32Array::New(env, n), sample = Napi::Int32Array::New(env, n), token = Napi::Int32Array::New(env, n);
  Napi::Float32Array lp = Napi::Float32Array::New(env, n);
  Napi::Uint8Array fin = Napi::Uint8Array::New(env, n);
  for (size_t i = 0; i < n; i++) {
    req[i] = ev[i].request;
    sample[i] = ev[i].sample;
    token[i] = ev[i].token;
    lp[i] = ev[i].logprob;
    fin[i] = ev[i].finish;
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("request", req);
  o.Set("sample", sample);
  o.Set("token", token);
  o.Set("logprob", lp);
  o.Set("finish", fin);
  o.Set("active", active);
  return o;
}

}  // namespace

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {InstanceMethod("start", &NativeEngine::Start), InstanceMethod("step", &NativeEngine::Step),
                        InstanceMethod("abort", &NativeEngine::Abort), InstanceMethod("active", &NativeEngine::Active),
                        InstanceMethod("stats", &NativeEngine::Stats), InstanceMethod("resetStats", &NativeEngine::ResetStats),
                        InstanceMethod("free", &NativeEngine::Free)});
  }
  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {}
  ~NativeEngine() override {
    if (session && handle) handle->busy--;
  }

  std::shared_ptr<ModelHandle> handle;
  std::unique_ptr<Engine<float>> f;
  std::unique_ptr<Engine<double>> d;
  Napi::ObjectReference modelRef;
  Napi::ObjectReference adapterRef;  // the session's adapter, kept alive while it runs
  Adapter<float>* adF = nullptr;
  Adapter<double>* adD = nullptr;
  bool session = false;   // holds one count of handle->busy
  bool stepping = false;  // a step() worker is in flight

 private:
  void ready(Napi::Env env, const char* what) {
    if (!f && !d) throw Napi::Error::New(env, std::string(what) + ": this engine was freed");
    handle->check(env);
    if (stepping) throw Napi::Error::New(env, std::string(what) + ": a step is running on this engine; await it first");
  }
  bool engineActive() const { return d ? d->active() : f->active(); }
  void endSession() {
    if (!session) return;
    session = false;
    handle->busy--;
    adapterRef.Reset();
    adF = nullptr;
    adD = nullptr;
  }

  // start(requests, adapter | null)
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env, "start");
    if (session) throw Napi::Error::New(env, "start: a generation is already running on this engine; await or abort it first");
    if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "start: requests must be an array");
    Napi::Array a = info[0].As<Napi::Array>();
    std::vector<EngineRequest> reqs;
    for (uint32_t i = 0; i < a.Length(); i++) {
      Napi::Value rv = a.Get(i);
      if (!rv.IsObject()) throw Napi::TypeError::New(env, "start: requests[" + std::to_string(i) + "] must be an object");
      Napi::Object r = rv.As<Napi::Object>();
      EngineRequest q;
      q.prompt = int32Array(r.Get("prompt"), "requests[" + std::to_string(i) + "].prompt");
      q.params = samplingParamsOf(r);
      reqs.push_back(std::move(q));
    }
    AdapterRef ad;
    if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) {
      ad = adapterOf(info[1], "start: the adapter argument");
      if (ad.handle != handle) throw Napi::Error::New(env, "start: this adapter belongs to another model");
      if (handle->isDouble() ? handle->d->fullFinetune() : handle->f->fullFinetune())
        throw Napi::Error::New(env, "start: this model was loaded for full fine-tuning; it takes no adapter");
    }
    if (handle->busy > 0)
      throw Napi::Error::New(env, "start: the model is busy (a forward, backward, optimizer step or another engine's generation is running); await it first");
    try {
      if (d) d->start(std::move(reqs));
      else f->start(std::move(reqs));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    if (!engineActive()) return Napi::Boolean::New(env, false);
    session = true;
    handle->busy++;
    adF = ad.f;
    adD = ad.d;
    if (info.Length() > 1 && info[1].IsObject()) adapterRef = Napi::Persistent(info[1].As<Napi::Object>());
    return Napi::Boolean::New(env, true);
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env, "step");
    if (!session) throw Napi::Error::New(env, "step: no generation is running (call start first)");
    stepping = true;
    auto events = std::make_shared<std::vector<StepEvent>>();
    auto h = handle;
    NativeEngine* self = this;
    return PromiseWorker::Queue(
        env, "rrec.engineStep",
        [h, self, events]() {
          std::lock_guard<std::mutex> lock(h->mu);
          if (self->d) self->d->step(self->adD, *events);
          else self->f->step(self->adF, *events);
        },
        [self, events](Napi::Env e) -> Napi::Value {
          const bool active = self->engineActive();
          if (!active) self->endSession();
          return eventsToJs(e, *events, active);
        },
        [self]() { self->stepping = false; }, {Value()});
  }

  Napi::Value Abort(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (stepping) throw Napi::Error::New(env, "abort: a step is running on this engine; await it first");
    std::vector<StepEvent> events;
    if (session && (f || d)) {
      if (d) d->abortAll(events);
      else f->abortAll(events);
    }
    endSession();
    return eventsToJs(env, events, false);
  }

  Napi::Value Active(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), session); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!f && !d) throw Napi::Error::New(env, "stats: this engine was freed");
    const EngineStats& s = d ? d->stats() : f->stats();
    Napi::Object o = Napi::Object::New(env);
    o.Set("steps", static_cast<double>(s.steps));
    o.Set("prefillTokens", static_cast<double>(s.prefillTokens));
    o.Set("decodeTokens", static_cast<double>(s.decodeTokens));
    o.Set("prefillSeconds", s.prefillSeconds);
    o.Set("decodeSeconds", s.decodeSeconds);
    o.Set("decodeOnlyTokens", static_cast<double>(s.decodeOnlyTokens));
    o.Set("preemptions", static_cast<double>(s.preemptions));
    o.Set("peakBlocks", s.peakBlocks);
    o.Set("usedBlocks", s.usedBlocks);
    o.Set("numBlocks", s.numBlocks);
    o.Set("blockSize", s.blockSize);
    o.Set("blockBytes", static_cast<double>(s.blockBytes));
    return o;
  }

  Napi::Value ResetStats(const Napi::CallbackInfo& info) {
    ready(info.Env(), "resetStats");
    if (d) d->resetStats();
    else f->resetStats();
    return info.Env().Undefined();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (stepping) throw Napi::Error::New(env, "free: a step is running on this engine; await it first");
    if (session) throw Napi::Error::New(env, "free: a generation is running on this engine; abort it first");
    f.reset();
    d.reset();
    modelRef.Reset();
    return env.Undefined();
  }
};

// createEngine(model, { kvBudgetBytes, kvMemoryFraction, blockSize, maxBatchTokens, maxRunning, prefixSharing }, tokenBytes | null)
// tokenBytes: { bytes: Uint8Array, offsets: Int32Array [V + 1] }
Napi::Value CreateEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<ModelHandle> h = modelHandleOf(info[0], "createEngine: the first argument");
  h->check(env);
  Napi::Object o = objectArg(info, 1, "engine options");
  EngineOptions opt;
  opt.kvBudgetBytes = static_cast<int64_t>(numberField(o, "kvBudgetBytes", 0));
  opt.kvMemoryFraction = numberField(o, "kvMemoryFraction", 0);
  opt.blockSize = static_cast<int>(numberField(o, "blockSize", opt.blockSize));
  opt.maxBatchTokens = static_cast<int>(numberField(o, "maxBatchTokens", opt.maxBatchTokens));
  opt.maxRunning = static_cast<int>(numberField(o, "maxRunning", opt.maxRunning));
  opt.prefixSharing = boolField(o, "prefixSharing", opt.prefixSharing);
  TokenBytes tb;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object t = info[2].As<Napi::Object>();
    Napi::Value bv = t.Get("bytes");
    if (!bv.IsTypedArray() || bv.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw Napi::TypeError::New(env, "createEngine: tokenBytes.bytes must be a Uint8Array");
    Napi::Uint8Array b = bv.As<Napi::Uint8Array>();
    tb.bytes.assign(b.Data(), b.Data() + b.ElementLength());
    tb.offsets = int32Array(t.Get("offsets"), "createEngine: tokenBytes.offsets");
  }
  Napi::Object obj = ctors(env).engine.New({});
  NativeEngine* e = NativeEngine::Unwrap(obj);
  e->handle = h;
  e->modelRef = Napi::Persistent(info[0].As<Napi::Object>());
  try {
    if (h->d) {
      e->d = std::make_unique<Engine<double>>(*h->d, opt);
      e->d->setTokenBytes(std::move(tb));
    } else {
      e->f = std::make_unique<Engine<float>>(*h->f, opt);
      e->f->setTokenBytes(std::move(tb));
    }
  } catch (const std::exception& ex) {
    throw Napi::Error::New(env, ex.what());
  }
  return obj;
}

// Test-only: _sampleFromLogits(logits, params, { count, sample, startIndex, history, promptLen, allowed })
// -> Int32Array of `count` draws, draw i with the uniform of token index startIndex + i. A
// Float32Array of logits runs sampleToken<float> (what the engine runs for float models, with its
// vectorised exp); any other array sampleToken<double> (the float64 build's).
Napi::Value SampleFromLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool f32 = info.Length() > 0 && info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
  std::vector<double> z = numberArray(info[0], "_sampleFromLogits: logits");
  std::vector<float> zf(z.begin(), z.end());
  SamplingParams p = samplingParamsOf(objectArg(info, 1, "params"));
  Napi::Object o = objectArg(info, 2, "options");
  const int count = static_cast<int>(numberField(o, "count", 1));
  const int sample = static_cast<int>(numberField(o, "sample", 0));
  const int64_t startIndex = static_cast<int64_t>(numberField(o, "startIndex", 0));
  std::vector<int32_t> history;
  if (!o.Get("history").IsUndefined()) history = int32Array(o.Get("history"), "history");
  const int promptLen = static_cast<int>(numberField(o, "promptLen", static_cast<double>(history.size())));
  std::vector<uint8_t> allowed;
  Napi::Value av = o.Get("allowed");
  if (av.IsTypedArray()) {
    Napi::Uint8Array a = av.As<Napi::Uint8Array>();
    allowed.assign(a.Data(), a.Data() + a.ElementLength());
    if (allowed.size() != z.size()) throw Napi::Error::New(env, "_sampleFromLogits: allowed must have one entry per logit");
  }
  Napi::Int32Array out = Napi::Int32Array::New(env, static_cast<size_t>(std::max(0, count)));
  cpu::SamplerScratch s;
  cpu::SampleParams sp;
  sp.temperature = p.temperature;
  sp.topK = p.topK;
  sp.topP = p.topP;
  sp.minP = p.minP;
  sp.repetitionPenalty = p.repetitionPenalty;
  sp.presencePenalty = p.presencePenalty;
  const uint8_t* mask = allowed.empty() ? nullptr : allowed.data();
  const int V = static_cast<int>(z.size()), H = static_cast<int>(history.size());
  for (int i = 0; i < count; i++) {
    const double u = samplingUniform(p.seed, sample, startIndex + i);
    out[i] = f32 ? cpu::sampleToken(zf.data(), V, sp, history.data(), H, promptLen, mask, u, s)
                 : cpu::sampleToken(z.data(), V, sp, history.data(), H, promptLen, mask, u, s);
  }
  return out;
}

void InitEngine(Napi::Env env, Napi::Object exports) {
  Napi::Function engine = NativeEngine::Define(env);
  ctors(env).engine = Napi::Persistent(engine);
  exports.Set("NativeEngine", engine);
  exports.Set("createEngine", Napi::Function::New(env, CreateEngine, "createEngine"));
  exports.Set("_sampleFromLogits", Napi::Function::New(env, SampleFromLogits, "_sampleFromLogits"));
}

}  // namespace rrec::addon
