// JS classes over the differentiable model: NativeModel, NativeAdapter, NativeForwardPass,
// NativeOptimizer. Long calls (load, forward, backward, optimizer step) are PromiseWorkers; every
// call on one model is serialised by the model's mutex, and freeing a model while a call runs is
// refused with an error.
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "addon/compute_thread.h"
#include "convert.h"
#include "options.h"
#include "rrec/adamw.h"
#include "rrec/backend_registry.h"
#include "rrec/errors.h"
#include "rrec/model.h"
#include "handles.h"
#include "worker.h"

namespace rrec::addon {

namespace {

Param* findParam(std::vector<Param>& ps, const std::string& name, Napi::Env env) {
  for (Param& p : ps)
    if (p.name == name) return &p;
  throw Napi::Error::New(env, "no trainable parameter named \"" + name + "\"");
}

Napi::Value paramList(Napi::Env env, std::vector<Param>& ps) {
  Napi::Array out = Napi::Array::New(env, ps.size());
  for (size_t i = 0; i < ps.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", ps[i].name);
    Napi::Array shape = Napi::Array::New(env, ps[i].shape.size());
    for (size_t j = 0; j < ps[i].shape.size(); j++) shape[j] = Napi::Number::New(env, static_cast<double>(ps[i].shape[j]));
    o.Set("shape", shape);
    out[i] = o;
  }
  return out;
}

// A device tensor of n elements of T, copied into a new typed array (Float32Array / Float64Array).
template <typename T>
Napi::Value downloadTyped(Napi::Env env, Backend& be, const TensorRef& t, int64_t n) {
  std::vector<T> host(static_cast<size_t>(n));
  runOnComputeThread([&] { be.download(host.data(), dtypeOf<T>(), t, static_cast<uint64_t>(n)); });
  return typedArrayOf(env, host.data(), host.size());
}

template <typename T>
void setParamValues(Backend& be, Param& p, const std::vector<double>& values, Napi::Env env) {
  if (static_cast<int64_t>(values.size()) != p.numel)
    throw Napi::Error::New(env, "parameter \"" + p.name + "\" has " + std::to_string(p.numel) + " values, got " + std::to_string(values.size()));
  // the upload and the bf16 refresh run on the compute thread (compute_thread.h: OpenMP regions
  // only there; a device backend's stream is driven from there too)
  runOnComputeThread([&] {
    std::vector<T> host(values.size());
    for (size_t i = 0; i < values.size(); i++) host[i] = static_cast<T>(values[i]);
    be.upload(p.value, host.data(), dtypeOf<T>(), host.size());
    refreshBf16Copy(be, p);
  });
}

enum class ParamOp { List, Value, Grad, Set };

// The named-parameter calls shared by NativeAdapter and NativeModel: list, read a value or its
// gradient (copies), or set a value.
template <typename T>
Napi::Value paramOp(const Napi::CallbackInfo& info, Backend& be, std::vector<Param>& ps, ParamOp op) {
  Napi::Env env = info.Env();
  if (op == ParamOp::List) return paramList(env, ps);
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "the parameter name must be a string");
  Param* p = findParam(ps, info[0].As<Napi::String>().Utf8Value(), env);
  switch (op) {
    case ParamOp::Value: return downloadTyped<T>(env, be, p->value, p->numel);
    case ParamOp::Grad: return downloadTyped<T>(env, be, p->grad, p->numel);
    default: setParamValues<T>(be, *p, numberArray(info[1], "values"), env); return env.Undefined();
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------------
class NativeAdapter : public Napi::ObjectWrap<NativeAdapter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeAdapter",
                       {InstanceMethod("params", &NativeAdapter::Params), InstanceMethod("getParam", &NativeAdapter::GetParam),
                        InstanceMethod("setParam", &NativeAdapter::SetParam), InstanceMethod("getGrad", &NativeAdapter::GetGrad),
                        InstanceMethod("zeroGrad", &NativeAdapter::ZeroGrad), InstanceMethod("scale", &NativeAdapter::Scale)});
  }
  explicit NativeAdapter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeAdapter>(info) {}

  std::shared_ptr<ModelHandle> handle;
  std::unique_ptr<Adapter<float>> f;
  std::unique_ptr<Adapter<double>> d;

 private:
  template <typename Fn>
  Napi::Value withParams(Napi::Env env, Fn fn) {
    handle->check(env);
    if (handle->busy > 0) throw Napi::Error::New(env, "the model is busy (a forward, backward or step is running); await it first");
    return d ? fn(d->params(), d->backend(), 0.0) : fn(f->params(), f->backend(), 0.0f);
  }
  Napi::Value Params(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::List); });
  }
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Value); });
  }
  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Grad); });
  }
  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Set); });
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto&, Backend&, auto) {
      runOnComputeThread([&] {
        if (d) d->zeroGrad();
        else f->zeroGrad();
      });
      return info.Env().Undefined();
    });
  }
  Napi::Value Scale(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), d ? static_cast<double>(d->scale()) : static_cast<double>(f->scale()));
  }
};

// ------------------------------------------------------------------------------------------------
class NativeForwardPass : public Napi::ObjectWrap<NativeForwardPass> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeForwardPass",
                       {InstanceMethod("logp", &NativeForwardPass::Logp), InstanceMethod("entropy", &NativeForwardPass::Entropy),
                        InstanceMethod("backward", &NativeForwardPass::Backward), InstanceMethod("hidden", &NativeForwardPass::Hidden),
                        InstanceMethod("canBackward", &NativeForwardPass::CanBackward),
                        InstanceMethod("release", &NativeForwardPass::Release)});
  }
  explicit NativeForwardPass(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeForwardPass>(info) {}

  std::shared_ptr<ModelHandle> handle;
  std::unique_ptr<ForwardPass<float>> f;
  std::unique_ptr<ForwardPass<double>> d;
  Napi::ObjectReference adapterRef;  // keeps the adapter alive while the pass can backward
  bool running = false;

 private:
  template <typename P>
  static Napi::Value asTyped(Napi::Env env, const std::vector<double>& v, bool isDouble) {
    if (isDouble) return typedArrayOf<double>(env, v.data(), v.size());
    Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) a[i] = static_cast<float>(v[i]);
    return a;
  }
  Napi::Value Logp(const Napi::CallbackInfo& info) {
    return asTyped<void>(info.Env(), d ? d->logp() : f->logp(), d != nullptr);
  }
  Napi::Value Entropy(const Napi::CallbackInfo& info) {
    const std::vector<double>& e = d ? d->entropy() : f->entropy();
    if (e.empty()) return info.Env().Null();
    return asTyped<void>(info.Env(), e, d != nullptr);
  }
  // [h * C] final-norm hidden states at batch.hiddenRows (Float32Array / Float64Array), null when none
  Napi::Value Hidden(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (d) return d->hidden().empty() ? env.Null() : typedArrayOf<double>(env, d->hidden().data(), d->hidden().size());
    if (!f || f->hidden().empty()) return env.Null();
    return typedArrayOf<float>(env, f->hidden().data(), f->hidden().size());
  }
  Napi::Value CanBackward(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !running && (d ? d->canBackward() : (f && f->canBackward())));
  }
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (running) throw Napi::Error::New(info.Env(), "release: backward is running on this pass");
    f.reset();
    d.reset();
    adapterRef.Reset();
    return info.Env().Undefined();
  }
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    handle->check(env);
    if (running) throw Napi::Error::New(env, "backward: already running on this pass");
    if (!(d ? d->canBackward() : (f && f->canBackward())))
      throw Napi::Error::New(env, "backward: this pass has no activations (released, run with keepForBackward: false, or already back-propagated)");
    auto grads = std::make_shared<std::vector<double>>(numberArray(info[0], "dlogp"));
    auto dhidden = std::make_shared<std::vector<double>>();
    const bool hasHidden = info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull();
    if (hasHidden) *dhidden = numberArray(info[1], "dhidden");
    auto guard = std::make_shared<BusyGuard>(handle);
    running = true;
    auto h = handle;
    NativeForwardPass* self = this;
    return PromiseWorker::Queue(
        env, "rrec.backward",
        [h, self, grads, dhidden, hasHidden]() {
          std::lock_guard<std::mutex> lock(h->mu);
          const double* dh = hasHidden ? dhidden->data() : nullptr;
          const int64_t nh = static_cast<int64_t>(dhidden->size());
          if (h->d) h->d->backward(*self->d, grads->data(), static_cast<int>(grads->size()), dh, nh);
          else h->f->backward(*self->f, grads->data(), static_cast<int>(grads->size()), dh, nh);
        },
        nullptr,
        [guard, self]() {
          guard->h->busy--;
          self->running = false;
        },
        {Value()});
  }
};

// ------------------------------------------------------------------------------------------------
class NativeOptimizer : public Napi::ObjectWrap<NativeOptimizer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeOptimizer",
                       {InstanceMethod("step", &NativeOptimizer::Step), InstanceMethod("gradNorm", &NativeOptimizer::GradNorm),
                        InstanceMethod("steps", &NativeOptimizer::Steps), InstanceMethod("getState", &NativeOptimizer::GetState),
                        InstanceMethod("setState", &NativeOptimizer::SetState)});
  }
  explicit NativeOptimizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeOptimizer>(info) {}

  std::shared_ptr<ModelHandle> handle;
  std::unique_ptr<AdamW<float>> f;
  std::unique_ptr<AdamW<double>> d;
  Napi::ObjectReference targetRef;  // the adapter (or model) whose params it updates

 private:
  void ready(Napi::Env env) {
    handle->check(env);
    if (handle->busy > 0) throw Napi::Error::New(env, "the model is busy (a forward, backward or step is running); await it first");
  }
  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env);
    Napi::Object o = objectArg(info, 0, "step options");
    AdamWHyper hp;
    hp.lr = numberField(o, "lr", hp.lr);
    hp.beta1 = numberField(o, "beta1", hp.beta1);
    hp.beta2 = numberField(o, "beta2", hp.beta2);
    hp.eps = numberField(o, "eps", hp.eps);
    hp.weightDecay = numberField(o, "weightDecay", hp.weightDecay);
    hp.maxGradNorm = numberField(o, "maxGradNorm", hp.maxGradNorm);
    auto guard = std::make_shared<BusyGuard>(handle);
    auto norm = std::make_shared<double>(0);
    auto h = handle;
    NativeOptimizer* self = this;
    return PromiseWorker::Queue(
        env, "rrec.optimizerStep",
        [h, self, hp, norm]() {
          std::lock_guard<std::mutex> lock(h->mu);
          *norm = self->d ? self->d->step(hp) : self->f->step(hp);
        },
        [norm](Napi::Env e) { return Napi::Number::New(e, *norm); }, [guard]() { guard->h->busy--; }, {Value()});
  }
  Napi::Value GradNorm(const Napi::CallbackInfo& info) {
    ready(info.Env());
    double norm = 0;
    runOnComputeThread([&] { norm = d ? d->gradNorm() : f->gradNorm(); });  // an OpenMP reduction (compute_thread.h)
    return Napi::Number::New(info.Env(), norm);
  }
  Napi::Value Steps(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(d ? d->steps() : f->steps()));
  }
  // { step, m: TypedArray[], v: TypedArray[] } in the order of the target's params().
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env);
    Napi::Object out = Napi::Object::New(env);
    auto fill = [&](auto& opt, auto t) {
      using T = decltype(t);
      out.Set("step", Napi::Number::New(env, static_cast<double>(opt.steps())));
      Napi::Array m = Napi::Array::New(env, opt.size()), v = Napi::Array::New(env, opt.size());
      for (size_t i = 0; i < opt.size(); i++) {
        m[i] = downloadTyped<T>(env, opt.backend(), opt.m(i).ref(), opt.m(i).numel());
        v[i] = downloadTyped<T>(env, opt.backend(), opt.v(i).ref(), opt.v(i).numel());
      }
      out.Set("m", m);
      out.Set("v", v);
    };
    if (d) fill(*d, 0.0);
    else fill(*f, 0.0f);
    return out;
  }
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env);
    Napi::Object s = objectArg(info, 0, "optimizer state");
    auto load = [&](auto& opt, auto t) {
      using T = decltype(t);
      Napi::Value mv = s.Get("m"), vv = s.Get("v");
      if (!mv.IsArray() || !vv.IsArray()) throw Napi::TypeError::New(env, "optimizer state needs arrays m and v");
      Napi::Array m = mv.As<Napi::Array>(), v = vv.As<Napi::Array>();
      if (m.Length() != opt.size() || v.Length() != opt.size())
        throw Napi::Error::New(env, "optimizer state has " + std::to_string(m.Length()) + " tensors, the parameters have " + std::to_string(opt.size()));
      std::vector<std::vector<T>> ms(opt.size()), vs(opt.size());
      for (size_t i = 0; i < opt.size(); i++) {
        std::vector<double> mi = numberArray(m.Get(i), "m[" + std::to_string(i) + "]");
        std::vector<double> vi = numberArray(v.Get(i), "v[" + std::to_string(i) + "]");
        if (static_cast<int64_t>(mi.size()) != opt.m(i).numel() || static_cast<int64_t>(vi.size()) != opt.v(i).numel())
          throw Napi::Error::New(env, "optimizer state tensor " + std::to_string(i) + " (" + opt.param(i).name + ") has the wrong length");
        ms[i].assign(mi.begin(), mi.end());
        vs[i].assign(vi.begin(), vi.end());
      }
      runOnComputeThread([&] {
        for (size_t i = 0; i < opt.size(); i++) {
          opt.backend().upload(opt.m(i).ref(), ms[i].data(), dtypeOf<T>(), ms[i].size());
          opt.backend().upload(opt.v(i).ref(), vs[i].data(), dtypeOf<T>(), vs[i].size());
        }
      });
      opt.setSteps(static_cast<int64_t>(numberField(s, "step", 0)));
    };
    if (d) load(*d, 0.0);
    else load(*f, 0.0f);
    return env.Undefined();
  }
};

// ------------------------------------------------------------------------------------------------
class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod("config", &NativeModel::Config), InstanceMethod("createAdapter", &NativeModel::CreateAdapter),
                        InstanceMethod("forward", &NativeModel::Forward), InstanceMethod("params", &NativeModel::Params),
                        InstanceMethod("getParam", &NativeModel::GetParam), InstanceMethod("setParam", &NativeModel::SetParam),
                        InstanceMethod("getGrad", &NativeModel::GetGrad), InstanceMethod("zeroGrad", &NativeModel::ZeroGrad),
                        InstanceMethod("createOptimizer", &NativeModel::CreateOptimizer),
                        InstanceMethod("busy", &NativeModel::Busy), InstanceMethod("free", &NativeModel::Free)});
  }
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}
  std::shared_ptr<ModelHandle> handle;

 private:
  void ready(Napi::Env env) {
    handle->check(env);
    if (handle->busy > 0) throw Napi::Error::New(env, "the model is busy (a forward, backward or step is running); await it first");
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    handle->check(env);
    const ModelConfig& c = handle->config();
    Napi::Object o = Napi::Object::New(env);
    o.Set("architecture", archName(c.arch));
    o.Set("vocabSize", c.vocab);
    o.Set("hiddenSize", c.hidden);
    o.Set("numLayers", c.layers);
    o.Set("numHeads", c.heads);
    o.Set("numKvHeads", c.kvHeads);
    o.Set("headDim", c.headDim);
    o.Set("intermediateSize", c.intermediate);
    o.Set("maxPositions", c.maxPositions);
    o.Set("tiedEmbeddings", c.tiedEmbeddings);
    o.Set("slidingWindow", c.slidingWindow);
    o.Set("attnSoftcap", c.attnSoftcap);
    o.Set("finalSoftcap", c.finalSoftcap);
    o.Set("dtype", handle->isDouble() ? "float64" : "float32");
    o.Set("fullFinetune", handle->isDouble() ? handle->d->fullFinetune() : handle->f->fullFinetune());
    o.Set("matmulPrecision", (handle->isDouble() ? handle->d->bf16Products() : handle->f->bf16Products()) ? "bf16" : "fp32");
    o.Set("device", handle->isDouble() ? handle->d->backend().label() : handle->f->backend().label());
    o.Set("packedWeightBytes", static_cast<double>(handle->isDouble() ? handle->d->packedWeightBytes() : handle->f->packedWeightBytes()));
    return o;
  }
  Napi::Value CreateAdapter(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env);
    Napi::Object o = objectArg(info, 0, "adapter config");
    LoraConfig cfg;
    cfg.rank = static_cast<int>(numberField(o, "rank", cfg.rank));
    cfg.alpha = numberField(o, "alpha", cfg.alpha);
    cfg.dropout = numberField(o, "dropout", cfg.dropout);
    cfg.rslora = boolField(o, "rslora", cfg.rslora);
    cfg.seed = static_cast<uint64_t>(numberField(o, "seed", 0));
    Napi::Value t = o.Get("targets");
    if (t.IsArray()) {
      cfg.targets = 0;
      Napi::Array a = t.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        std::string name = a.Get(i).ToString();
        int m;
        if (!parseModuleName(name, &m))
        {
          std::string all;
          for (int k = 0; k < kNumModules; k++) all += std::string(k ? ", " : "") + moduleName(k);
          throw Napi::Error::New(env, "lora target \"" + name + "\" is not one of " + all);
        }
        cfg.targets |= 1u << m;
      }
    }
    Napi::Object obj = ctors(env).adapter.New({});
    NativeAdapter* ad = NativeAdapter::Unwrap(obj);
    ad->handle = handle;
    try {
      runOnComputeThread([&] {  // initialises A on the model's device
        if (handle->d) ad->d = std::make_unique<Adapter<double>>(*handle->d, cfg);
        else ad->f = std::make_unique<Adapter<float>>(*handle->f, cfg);
      });
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    return obj;
  }
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    handle->check(env);
    Napi::Object b = objectArg(info, 0, "batch");
    struct Batch {
      std::vector<int32_t> tokens, seqOffsets, positions, targetRows, targetTokens, hiddenRows;
    };
    auto batch = std::make_shared<Batch>();
    batch->tokens = int32Array(b.Get("tokens"), "batch.tokens");
    batch->seqOffsets = int32Array(b.Get("seqOffsets"), "batch.seqOffsets");
    if (!b.Get("positions").IsUndefined() && !b.Get("positions").IsNull())
      batch->positions = int32Array(b.Get("positions"), "batch.positions");
    batch->targetRows = int32Array(b.Get("targetRows"), "batch.targetRows");
    batch->targetTokens = int32Array(b.Get("targetTokens"), "batch.targetTokens");
    if (!b.Get("hiddenRows").IsUndefined() && !b.Get("hiddenRows").IsNull())
      batch->hiddenRows = int32Array(b.Get("hiddenRows"), "batch.hiddenRows");
    if (batch->seqOffsets.size() < 2) throw Napi::Error::New(env, "batch.seqOffsets needs at least 2 entries");
    if (!batch->positions.empty() && batch->positions.size() != batch->tokens.size())
      throw Napi::Error::New(env, "batch.positions has " + std::to_string(batch->positions.size()) + " entries for " + std::to_string(batch->tokens.size()) + " tokens");
    if (batch->targetRows.size() != batch->targetTokens.size())
      throw Napi::Error::New(env, "batch.targetRows and batch.targetTokens differ in length");
    NativeAdapter* ad = nullptr;
    std::vector<Napi::Object> keep = {Value()};
    if (info.Length() > 1 && info[1].IsObject()) {
      Napi::Object ao = info[1].As<Napi::Object>();
      if (!ao.InstanceOf(ctors(env).adapter.Value())) throw Napi::TypeError::New(env, "forward: the adapter argument is not an adapter");
      ad = NativeAdapter::Unwrap(ao);
      if (ad->handle != handle) throw Napi::Error::New(env, "forward: this adapter belongs to another model");
      keep.push_back(ao);
    }
    Napi::Object o = objectArg(info, 2, "forward options");
    const ForwardOptions opt = forwardOptionsOf(o);

    auto guard = std::make_shared<BusyGuard>(handle);
    auto h = handle;
    auto outF = std::make_shared<std::unique_ptr<ForwardPass<float>>>();
    auto outD = std::make_shared<std::unique_ptr<ForwardPass<double>>>();
    Adapter<float>* adF = ad ? ad->f.get() : nullptr;
    Adapter<double>* adD = ad ? ad->d.get() : nullptr;
    Napi::ObjectReference* dummy = nullptr;
    (void)dummy;
    auto adapterObj = std::make_shared<Napi::ObjectReference>();
    if (ad) *adapterObj = Napi::Persistent(info[1].As<Napi::Object>());
    return PromiseWorker::Queue(
        env, "rrec.forward",
        [h, batch, adF, adD, opt, outF, outD]() {
          BatchInput in;
          in.tokens = batch->tokens.data();
          in.M = static_cast<int>(batch->tokens.size());
          in.seqOffsets = batch->seqOffsets.data();
          in.S = static_cast<int>(batch->seqOffsets.size()) - 1;
          in.positions = batch->positions.empty() ? nullptr : batch->positions.data();
          in.targetRows = batch->targetRows.data();
          in.targetTokens = batch->targetTokens.data();
          in.n = static_cast<int>(batch->targetRows.size());
          in.hiddenRows = batch->hiddenRows.data();
          in.h = static_cast<int>(batch->hiddenRows.size());
          std::lock_guard<std::mutex> lock(h->mu);
          if (h->d) *outD = h->d->forward(in, adD, opt);
          else *outF = h->f->forward(in, adF, opt);
        },
        [h, outF, outD, adapterObj](Napi::Env e) -> Napi::Value {
          Napi::Object obj = ctors(e).pass.New({});
          NativeForwardPass* p = NativeForwardPass::Unwrap(obj);
          p->handle = h;
          p->f = std::move(*outF);
          p->d = std::move(*outD);
          if (!adapterObj->IsEmpty()) p->adapterRef = Napi::Persistent(adapterObj->Value());
          adapterObj->Reset();
          return obj;
        },
        [guard]() { guard->h->busy--; }, keep);
  }
  template <typename Fn>
  Napi::Value withParams(Napi::Env env, Fn fn) {
    ready(env);
    return handle->d ? fn(handle->d->params(), handle->d->backend(), 0.0) : fn(handle->f->params(), handle->f->backend(), 0.0f);
  }
  Napi::Value Params(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::List); });
  }
  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Value); });
  }
  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Grad); });
  }
  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    return withParams(info.Env(), [&](auto& ps, Backend& be, auto t) { return paramOp<decltype(t)>(info, be, ps, ParamOp::Set); });
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    ready(info.Env());
    runOnComputeThread([&] {
      if (handle->d) handle->d->zeroGrad();
      else handle->f->zeroGrad();
    });
    return info.Env().Undefined();
  }
  // createOptimizer(adapter | null): AdamW over the adapter's params, or the model's (full fine-tune).
  Napi::Value CreateOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ready(env);
    Napi::Object obj = ctors(env).optimizer.New({});
    NativeOptimizer* opt = NativeOptimizer::Unwrap(obj);
    opt->handle = handle;
    try {
      if (info.Length() > 0 && info[0].IsObject()) {
        Napi::Object ao = info[0].As<Napi::Object>();
        if (!ao.InstanceOf(ctors(env).adapter.Value())) throw Napi::TypeError::New(env, "createOptimizer: the argument is not an adapter");
        NativeAdapter* ad = NativeAdapter::Unwrap(ao);
        if (ad->handle != handle) throw Napi::Error::New(env, "createOptimizer: this adapter belongs to another model");
        if (ad->d) opt->d = std::make_unique<AdamW<double>>(ad->d->backend(), ad->d->params());
        else opt->f = std::make_unique<AdamW<float>>(ad->f->backend(), ad->f->params());
        opt->targetRef = Napi::Persistent(ao);
      } else {
        if (handle->d) opt->d = std::make_unique<AdamW<double>>(handle->d->backend(), handle->d->params());
        else opt->f = std::make_unique<AdamW<float>>(handle->f->backend(), handle->f->params());
        opt->targetRef = Napi::Persistent(Value());
      }
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("createOptimizer: ") + e.what() +
                                      (info.Length() > 0 && info[0].IsObject() ? "" : " (load the model with fullFinetune: true, or pass an adapter)"));
    }
    return obj;
  }
  Napi::Value Busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), handle->busy > 0); }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (handle->freed) return env.Undefined();
    if (handle->busy > 0) throw Napi::Error::New(env, "free: the model is busy (a forward, backward or step is running); await it first");
    std::lock_guard<std::mutex> lock(handle->mu);
    handle->f.reset();
    handle->d.reset();
    handle->freed = true;
    return env.Undefined();
  }
};

// loadModel(dir, { dtype: 'float32' | 'float64', fullFinetune, matmulPrecision: 'fp32' | 'bf16' }) -> Promise<NativeModel>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel: dir must be a string");
  std::string dir = info[0].As<Napi::String>();
  Napi::Object o = objectArg(info, 1, "load options");
  std::string dtype = "float32";
  if (o.Get("dtype").IsString()) dtype = o.Get("dtype").As<Napi::String>().Utf8Value();
  if (dtype != "float32" && dtype != "float64")
    throw Napi::Error::New(env, "loadModel: dtype must be \"float32\" or \"float64\", got \"" + dtype + "\"");
  bool full = boolField(o, "fullFinetune", false);
  std::string precision = "fp32";
  if (o.Get("matmulPrecision").IsString()) precision = o.Get("matmulPrecision").As<Napi::String>().Utf8Value();
  else if (!o.Get("matmulPrecision").IsUndefined())
    throw Napi::TypeError::New(env, "loadModel: matmulPrecision must be \"fp32\" or \"bf16\"");
  if (precision != "fp32" && precision != "bf16")
    throw Napi::Error::New(env, "loadModel: matmulPrecision must be \"fp32\" or \"bf16\", got \"" + precision + "\"");
  const bool bf16 = precision == "bf16";
  std::string device = "auto";
  if (o.Get("device").IsString()) device = o.Get("device").As<Napi::String>().Utf8Value();
  else if (!o.Get("device").IsUndefined() && !o.Get("device").IsNull())
    throw Napi::TypeError::New(env, "loadModel: device must be a string (\"cpu\", \"cuda\", \"cuda:N\" or \"auto\")");
  auto handle = std::make_shared<ModelHandle>();
  return PromiseWorker::Queue(
      env, "rrec.loadModel",
      [handle, dir, dtype, full, bf16, device]() {
        std::shared_ptr<Backend> be = openDevice(device);
        if (dtype == "float64") handle->d = Model<double>::load(dir, full, bf16, be);
        else handle->f = Model<float>::load(dir, full, bf16, be);
      },
      [handle](Napi::Env e) -> Napi::Value {
        Napi::Object obj = ctors(e).model.New({});
        NativeModel::Unwrap(obj)->handle = handle;
        return obj;
      },
      nullptr, {});
}

// Accessors for the other addon files (handles.h).
std::shared_ptr<ModelHandle> modelHandleOf(const Napi::Value& v, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctors(env).model.Value()))
    throw Napi::TypeError::New(env, std::string(what) + " is not a model");
  return NativeModel::Unwrap(v.As<Napi::Object>())->handle;
}

AdapterRef adapterOf(const Napi::Value& v, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctors(env).adapter.Value()))
    throw Napi::TypeError::New(env, std::string(what) + " is not an adapter");
  NativeAdapter* a = NativeAdapter::Unwrap(v.As<Napi::Object>());
  return {a->handle, a->f.get(), a->d.get()};
}

void InitModel(Napi::Env env, Napi::Object exports) {
  auto* c = new Ctors();
  Napi::Function model = NativeModel::Define(env), adapter = NativeAdapter::Define(env), pass = NativeForwardPass::Define(env),
                 optimizer = NativeOptimizer::Define(env);
  c->model = Napi::Persistent(model);
  c->adapter = Napi::Persistent(adapter);
  c->pass = Napi::Persistent(pass);
  c->optimizer = Napi::Persistent(optimizer);
  env.SetInstanceData<Ctors>(c);
  exports.Set("NativeModel", model);
  exports.Set("NativeAdapter", adapter);
  exports.Set("NativeForwardPass", pass);
  exports.Set("NativeOptimizer", optimizer);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("optionTables", Napi::Function::New(env, optionTables, "optionTables"));
}

}  // namespace rrec::addon
