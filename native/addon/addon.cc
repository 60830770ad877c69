// The N-API entry point: the only place (with its siblings in native/addon/) that includes napi.h.
// Exposes the native core to src/native.ts, which types every export.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cpu/matmul_kernels.h"
#include "rrec/backend_registry.h"
#include "rrec/features.h"
#include "worker.h"

namespace rrec::addon {
void InitModel(Napi::Env env, Napi::Object exports);
void InitKernels(Napi::Env env, Napi::Object exports);  // test-only kernel exports (kernels_addon.cc)
void InitEngine(Napi::Env env, Napi::Object exports);
void InitExport(Napi::Env env, Napi::Object exports);  // weight export's tensor transforms (export_addon.cc)
void InitSafetensors(Napi::Env env, Napi::Object exports);  // the safetensors header validator (safetensors_addon.cc)
}

namespace {

Napi::Object backendObject(Napi::Env env, const rrec::BackendListing& b) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", b.name);
  o.Set("library", b.library.empty() ? env.Null() : Napi::Value(Napi::String::New(env, b.library)));
  o.Set("available", b.available);
  o.Set("reason", b.available ? env.Null() : Napi::Value(Napi::String::New(env, b.reason)));
  o.Set("devices", b.devices);
  o.Set("info", b.infoJson);
  return o;
}

Napi::Value Features(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rrec::Features f = rrec::queryFeatures();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", f.version);
  out.Set("compiledSimd", f.compiledSimd);
  out.Set("cpuSimd", f.cpuSimd);
  out.Set("avx512bf16", f.avx512bf16);
  // the CPU backend's kernels (the addon may ask the CPU backend directly; the core may not)
  out.Set("matmulKernels", rrec::cpu::matmul_avx512_bf16()       ? "avx512-bf16"
                           : rrec::cpu::matmul_avx512_compiled() ? "avx512"
                           : rrec::cpu::matmul_avx2_available()  ? "avx2"
                                                                 : "generic");
  out.Set("threads", f.threads);
  out.Set("hardwareThreads", f.hardwareThreads);
  const std::vector<rrec::BackendListing> bs = rrec::listBackends();
  Napi::Array list = Napi::Array::New(env, bs.size());
  bool cuda = false;
  for (size_t i = 0; i < bs.size(); i++) list[i] = backendObject(env, bs[i]);
  for (const rrec::BackendListing& b : bs) cuda = cuda || b.name == "cuda";
  out.Set("cudaCompiled", cuda);
  out.Set("backends", list);
  Napi::Array path = Napi::Array::New(env);
  for (const std::string& dir : rrec::backendSearchPath()) path[path.Length()] = dir;
  out.Set("backendSearchPath", path);
  return out;
}

// addBackendLibrary(path) -> the listing of that library (available or why not)
Napi::Value AddBackendLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "addBackendLibrary: path must be a string");
  return backendObject(env, rrec::addBackendLibrary(info[0].As<Napi::String>().Utf8Value()));
}

// describeDevice(device) -> Promise<{ device, backend, name, description, totalMemory, freeMemory,
// computeCapability, bf16Products }>: opens the device off the JS thread (a CUDA context takes a
// while), describes it, closes it.
Napi::Value DescribeDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string dev = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "auto";
  auto label = std::make_shared<std::string>();
  auto backend = std::make_shared<std::string>();
  auto d = std::make_shared<rrec::DeviceInfo>();
  return rrec::addon::PromiseWorker::Queue(
      env, "rrec.describeDevice",
      [dev, label, backend, d]() {
        std::shared_ptr<rrec::Backend> be = rrec::openDevice(dev);
        *d = be->describe();
        *label = be->label();
        *backend = be->name();
      },
      [label, backend, d](Napi::Env e) -> Napi::Value {
        Napi::Object o = Napi::Object::New(e);
        o.Set("device", *label);
        o.Set("backend", *backend);
        o.Set("name", d->name);
        o.Set("description", d->description);
        o.Set("totalMemory", static_cast<double>(d->totalMemory));
        o.Set("freeMemory", static_cast<double>(d->freeMemory));
        o.Set("computeCapability", d->computeMajor > 0 ? Napi::Value(Napi::String::New(e, std::to_string(d->computeMajor) + "." + std::to_string(d->computeMinor))) : e.Null());
        o.Set("bf16Products", d->bf16Products);
        return o;
      },
      nullptr, {});
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
  exports.Set("addBackendLibrary", Napi::Function::New(env, AddBackendLibrary, "addBackendLibrary"));
  exports.Set("describeDevice", Napi::Function::New(env, DescribeDevice, "describeDevice"));
  rrec::addon::InitModel(env, exports);
  rrec::addon::InitKernels(env, exports);
  rrec::addon::InitEngine(env, exports);  // after InitModel: it sets the constructor table
  rrec::addon::InitExport(env, exports);
  rrec::addon::InitSafetensors(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(rrec_emotion, Init)
