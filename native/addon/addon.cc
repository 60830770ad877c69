// The N-API entry point: the only place (with its siblings in native/addon/) that includes napi.h.
// Exposes the native core to src/native.ts, which types every export.
#include <napi.h>

#include "rrec/features.h"

namespace rrec::addon {
void InitModel(Napi::Env env, Napi::Object exports);
}

namespace {

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rrec::Features f = rrec::queryFeatures();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", f.version);
  out.Set("compiledSimd", f.compiledSimd);
  out.Set("cpuSimd", f.cpuSimd);
  out.Set("avx512bf16", f.avx512bf16);
  out.Set("cudaCompiled", f.cudaCompiled);
  out.Set("threads", f.threads);
  out.Set("hardwareThreads", f.hardwareThreads);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("features", Napi::Function::New(env, Features, "features"));
  rrec::addon::InitModel(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rrec_emotion, Init)
