// The N-API entry point: the only place (with its siblings in native/addon/) that includes napi.h.
// Exposes the native core to src/native.ts, which types every export.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "rrec/features.h"

namespace rrec::addon {
void InitModel(Napi::Env env, Napi::Object exports);
void InitKernels(Napi::Env env, Napi::Object exports);  // test-only kernel exports (kernels_addon.cc)
void InitEngine(Napi::Env env, Napi::Object exports);
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
  out.Set("matmulKernels", f.matmulKernels);
  out.Set("cudaCompiled", f.cudaCompiled);
  out.Set("threads", f.threads);
  out.Set("hardwareThreads", f.hardwareThreads);
  return out;
}

// Activations are large, short-lived buffers. glibc serves allocations above its mmap threshold
// with fresh mappings, and first-touching fresh pages costs ~11 us per 4 KiB page on these
// machines (shared/docs/machine-limits.md), more than the math on them. Raising the thresholds
// keeps freed activation memory in the heap for the next pass instead of returning it to the OS.
void keepFreedMemory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum (HEAP_MAX_SIZE / 2 on 64-bit)
  mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keepFreedMemory();
  exports.Set("features", Napi::Function::New(env, Features, "features"));
  rrec::addon::InitModel(env, exports);
  rrec::addon::InitKernels(env, exports);
  rrec::addon::InitEngine(env, exports);  // after InitModel: it sets the constructor table
  return exports;
}

}  // namespace

NODE_API_MODULE(rrec_emotion, Init)
