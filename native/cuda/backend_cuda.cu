// The CUDA backend's table (backend_abi.h). Built twice from this source:
//   nvcc -> librrec_cuda.so,     registers "cuda":     the CUDA runtime (static cudart), a GPU
//   g++  -> librrec_cuda_emu.so, registers "cuda-emu": the same kernels under the host emulator
// Buffers are device memory from a caching allocator; upload/download convert on the host
// (backend_abi.h's conversions) and copy; one stream per opened device.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/ops.h"

#ifndef RREC_CUDA_ARCH_LIST
#define RREC_CUDA_ARCH_LIST ""
#endif

namespace rrec::cuda {

namespace {

#if defined(__CUDACC__)
constexpr const char* kName = "cuda";
#else
constexpr const char* kName = "cuda-emu";
#endif

void setStatus(rrec_status* st, int32_t code, const std::string& msg) {
  if (!st) return;
  st->code = code;
  std::snprintf(st->message, sizeof st->message, "%s", msg.c_str());
}

// Reads (and clears) the device error word the kernels set on bad input.
void checkDeviceError(Ctx& c) {
  int e = 0;
  d2h(&e, c.err, sizeof e, c.stream);
  if (e == kDevOk) return;
  const int zero = 0;
  h2d(c.err, &zero, sizeof zero, c.stream);
  if (e == kDevTokenRange) bad("a token id was out of range of the embedding (rows of that token were zeroed)");
  if (e == kDevRowRange) bad("a row index was out of range of its buffer (skipped)");
  bad("kernel error " + std::to_string(e));
}

template <typename Fn>
int32_t guarded(rrec_status* st, const std::string& what, Fn fn) {
  try {
    fn();
    return RREC_OK;
  } catch (const OpError& e) {
    setStatus(st, e.code, std::string(kName) + " " + what + ": " + e.what());
    return e.code;
  } catch (const std::bad_alloc&) {
    setStatus(st, RREC_ERR_MEMORY, std::string(kName) + " " + what + ": out of host memory");
    return RREC_ERR_MEMORY;
  } catch (const std::exception& e) {
    setStatus(st, RREC_ERR_DEVICE, std::string(kName) + " " + what + ": " + e.what());
    return RREC_ERR_DEVICE;
  }
}

// The context of a table call, with its device made current on the calling thread (the addon
// calls from its compute threads; the runtime's current device is per thread).
Ctx& ctxOf(void* p) {
  Ctx& c = *static_cast<Ctx*>(p);
#if defined(__CUDACC__)
  check(cudaSetDevice(c.device), "cudaSetDevice");
#endif
  return c;
}

#if defined(__CUDACC__)
// Devices this build can run on (compute capability 8.0 or newer); *why when none.
int usableDevices(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    std::string m = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(e) + " (" + std::to_string(int(e)) + "): " + cudaGetErrorString(e);
    if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) {
      m += driver == 0 ? " (no CUDA driver is installed"
                       : " (the CUDA driver supports CUDA " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
                             " but";
      m += std::string(driver == 0 ? "; " : " ") + "this build needs CUDA " + std::to_string(runtime / 1000) + "." +
           std::to_string(runtime % 1000 / 10) + " or newer)";
    }
    *why = m;
    cudaGetLastError();
    return 0;
  }
  int usable = 0;
  std::string low;
  for (int d = 0; d < n; d++) {
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, d);
    if (major >= 8) usable++;
    else low = "compute capability " + std::to_string(major) + "." + std::to_string(minor) + ": sm_80 or newer is needed";
  }
  if (usable == 0) *why = n == 0 ? "no CUDA device" : low;
  return usable;
}
#endif

// ---- the table

int32_t describe(void* ctx, rrec_device_info* out, rrec_status* st) {
  return guarded(st, "describe", [&] {
    std::memset(out, 0, sizeof *out);
#if defined(__CUDACC__)
    Ctx& c = ctxOf(ctx);
    cudaDeviceProp prop;
    check(cudaGetDeviceProperties(&prop, c.device), "cudaGetDeviceProperties");
    int major = 0, minor = 0, sms = 0, driver = 0, runtime = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, c.device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, c.device);
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c.device);
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    size_t freeB = 0, totalB = 0;
    check(cudaMemGetInfo(&freeB, &totalB), "cudaMemGetInfo");
    std::snprintf(out->name, sizeof out->name, "%s", prop.name);
    std::snprintf(out->description, sizeof out->description, "compute capability %d.%d, %d SMs, driver %d, runtime %d, kernels for %s", major,
                  minor, sms, driver, runtime, RREC_CUDA_ARCH_LIST);
    out->total_memory = totalB;
    out->free_memory = freeB;
    out->compute_major = major;
    out->compute_minor = minor;
#else
    std::snprintf(out->name, sizeof out->name, "cuda-emu");
    std::snprintf(out->description, sizeof out->description,
                  "the CUDA kernels under the host emulator (one fiber per thread, guard-paged memory); for tests, not speed");
    out->total_memory = 1ull << 34;
    out->free_memory = 1ull << 34;
    out->compute_major = 8;
    out->compute_minor = 0;
#endif
    out->host_memory = 0;
    out->bf16_products = 1;
  });
}

int32_t alloc(void* ctx, uint64_t bytes, uint32_t, rrec_buffer** out, rrec_status* st) {
  return guarded(st, "alloc", [&] {
    Ctx& c = ctxOf(ctx);
    std::unique_ptr<Buffer> b(new Buffer{nullptr, bytes, Pool::roundUp(bytes)});
    b->ptr = c.pool.get(bytes);
    *out = reinterpret_cast<rrec_buffer*>(b.release());
  });
}

void freeBuffer(void* ctx, rrec_buffer* handle) {
  Buffer* b = reinterpret_cast<Buffer*>(handle);
  if (!b) return;
  static_cast<Ctx*>(ctx)->pool.put(b->ptr, b->bytes);  // no device call: the block is only cached
  delete b;
}

bool knownType(int32_t t) { return t >= RREC_F32 && t <= RREC_U8; }
bool floatType(int32_t t) { return t == RREC_F32 || t == RREC_BF16 || t == RREC_F16 || t == RREC_F64; }

// dst[i] = convert(src[i]) on the host, for the pairs backend_abi.h lists.
void convert(void* dst, int32_t dt, const void* src, int32_t sdt, uint64_t n) {
  if (!knownType(dt) || !knownType(sdt)) bad("unknown dtype");
  if (dt == sdt) {
    std::memcpy(dst, src, n * dtypeBytes(dt));
    return;
  }
  if (!floatType(sdt)) throw OpError(RREC_ERR_UNSUPPORTED, "no conversion from an integer dtype");
  const DType s = static_cast<DType>(sdt);
  if (dt == RREC_F32) {
    float* d = static_cast<float*>(dst);
    for (uint64_t i = 0; i < n; i++) d[i] = static_cast<float>(loadAsDouble(src, s, i));
    return;
  }
  if (dt == RREC_F64) {
    double* d = static_cast<double*>(dst);
    for (uint64_t i = 0; i < n; i++) d[i] = loadAsDouble(src, s, i);
    return;
  }
  if (dt == RREC_BF16 && sdt == RREC_F32) {
    uint16_t* d = static_cast<uint16_t*>(dst);
    const float* f = static_cast<const float*>(src);
    for (uint64_t i = 0; i < n; i++) d[i] = f32ToBf16(f[i]);
    return;
  }
  if (dt == RREC_BF16 && sdt == RREC_F64) {  // through f32, as a float activation would be
    uint16_t* d = static_cast<uint16_t*>(dst);
    const double* f = static_cast<const double*>(src);
    for (uint64_t i = 0; i < n; i++) d[i] = f32ToBf16(static_cast<float>(f[i]));
    return;
  }
  throw OpError(RREC_ERR_UNSUPPORTED, std::string("no conversion from ") + dtypeName(s) + " to " + dtypeName(static_cast<DType>(dt)));
}

int32_t upload(void* ctx, rrec_tensor dst, const void* src, int32_t srcType, uint64_t n, rrec_status* st) {
  return guarded(st, "upload", [&] {
    Ctx& c = ctxOf(ctx);
    if (!knownType(dst.dtype)) bad("unknown destination dtype");
    const uint64_t bytes = n * dtypeBytes(dst.dtype);
    char* d = at(dst, bytes, "destination");
    if (srcType == dst.dtype) {
      h2d(d, src, bytes, c.stream);
      return;
    }
    std::vector<unsigned char> staging(bytes);
    convert(staging.data(), dst.dtype, src, srcType, n);
    h2d(d, staging.data(), bytes, c.stream);
  });
}

int32_t download(void* ctx, void* dst, int32_t dstType, rrec_tensor src, uint64_t n, rrec_status* st) {
  return guarded(st, "download", [&] {
    Ctx& c = ctxOf(ctx);
    if (!knownType(src.dtype)) bad("unknown source dtype");
    const uint64_t bytes = n * dtypeBytes(src.dtype);
    const char* s = at(src, bytes, "source");
    checkDeviceError(c);
    if (dstType == src.dtype) {
      d2h(dst, s, bytes, c.stream);
      return;
    }
    std::vector<unsigned char> staging(bytes);
    d2h(staging.data(), s, bytes, c.stream);
    convert(dst, dstType, staging.data(), src.dtype, n);
  });
}

int32_t copy(void* ctx, rrec_tensor dst, rrec_tensor src, uint64_t bytes, rrec_status* st) {
  return guarded(st, "copy", [&] { d2d(at(dst, bytes, "destination"), at(src, bytes, "source"), bytes, ctxOf(ctx).stream); });
}

int32_t fillZero(void* ctx, rrec_tensor dst, uint64_t bytes, rrec_status* st) {
  return guarded(st, "fill_zero", [&] { memzero(at(dst, bytes, "destination"), bytes, ctxOf(ctx).stream); });
}

int32_t synchronize(void* ctx, rrec_status* st) {
  return guarded(st, "synchronize", [&] {
    Ctx& c = ctxOf(ctx);
    sync(c.stream);
    checkDeviceError(c);
  });
}

// What this backend runs (F32 activations); the rest is reported unsupported and the every-op
// test says so.
bool implemented(int32_t op) {
  switch (op) {
    case RREC_OP_EMBEDDING:
    case RREC_OP_EMBEDDING_BWD:
    case RREC_OP_RMSNORM:
    case RREC_OP_RMSNORM_BWD:
    case RREC_OP_ROPE:
    case RREC_OP_ROPE_BWD:
    case RREC_OP_GATED_ACT:
    case RREC_OP_GATED_ACT_BWD:
    case RREC_OP_ADD:
    case RREC_OP_GATHER_ROWS:
    case RREC_OP_SCATTER_ADD_ROWS:
    case RREC_OP_CAST:
    case RREC_OP_GRAD_NORM_SQ:
    case RREC_OP_ADAMW:
#ifdef RREC_CUDA_HAVE_GEMM
    case RREC_OP_MATMUL:
    case RREC_OP_MATMUL_BWD_INPUT:
    case RREC_OP_MATMUL_BWD_WEIGHT:
    case RREC_OP_LORA:
    case RREC_OP_LORA_BWD:
#endif
#ifdef RREC_CUDA_HAVE_ATTENTION
    case RREC_OP_ATTENTION:
    case RREC_OP_ATTENTION_BWD:
    case RREC_OP_PAGED_ATTENTION:
    case RREC_OP_KV_WRITE:
    case RREC_OP_LM_HEAD_LOGPROBS:
    case RREC_OP_LM_HEAD_BWD:
    case RREC_OP_LOGITS:
    case RREC_OP_SAMPLE:
#endif
      return true;
    default: return false;
  }
}

int32_t supports(void*, int32_t op, int32_t dtype) { return dtype == RREC_F32 && implemented(op) ? 1 : 0; }

const char* opName(int32_t op) {
  static const char* names[] = {"?", "matmul", "matmul_bwd_input", "matmul_bwd_weight", "lora", "lora_bwd", "embedding", "embedding_bwd",
                                "rmsnorm", "rmsnorm_bwd", "rope", "rope_bwd", "attention", "attention_bwd", "paged_attention",
                                "kv_write", "gated_act", "gated_act_bwd", "add", "gather_rows", "scatter_add_rows", "cast",
                                "lm_head_logprobs", "lm_head_bwd", "logits", "sample", "grad_norm_sq", "adamw", "pack_weight"};
  return op > 0 && op < RREC_OP_COUNT ? names[op] : "unknown op";
}

template <typename A>
const A& as(const void* p) {
  if (!p) bad("args is null");
  return *static_cast<const A*>(p);
}

int32_t run(void* ctx, int32_t op, const void* args, rrec_status* st) {
  return guarded(st, opName(op), [&] {
    Ctx& c = ctxOf(ctx);
    if (!implemented(op)) throw OpError(RREC_ERR_UNSUPPORTED, "not implemented by this backend yet");
    switch (op) {
      case RREC_OP_EMBEDDING: embedding(c, as<rrec_embedding_args>(args)); break;
      case RREC_OP_EMBEDDING_BWD: embeddingBwd(c, as<rrec_embedding_args>(args)); break;
      case RREC_OP_RMSNORM: rmsnorm(c, as<rrec_rmsnorm_args>(args)); break;
      case RREC_OP_RMSNORM_BWD: rmsnormBwd(c, as<rrec_rmsnorm_args>(args)); break;
      case RREC_OP_ROPE: rope(c, as<rrec_rope_args>(args), false); break;
      case RREC_OP_ROPE_BWD: rope(c, as<rrec_rope_args>(args), true); break;
      case RREC_OP_GATED_ACT: gatedAct(c, as<rrec_gated_act_args>(args), false); break;
      case RREC_OP_GATED_ACT_BWD: gatedAct(c, as<rrec_gated_act_args>(args), true); break;
      case RREC_OP_ADD: add(c, as<rrec_add_args>(args)); break;
      case RREC_OP_GATHER_ROWS: gatherRows(c, as<rrec_rows_args>(args)); break;
      case RREC_OP_SCATTER_ADD_ROWS: scatterAddRows(c, as<rrec_rows_args>(args)); break;
      case RREC_OP_CAST: cast(c, as<rrec_cast_args>(args)); break;
      case RREC_OP_GRAD_NORM_SQ: gradNormSq(c, as<rrec_grad_norm_args>(args)); break;
      case RREC_OP_ADAMW: adamw(c, as<rrec_adamw_args>(args)); break;
#ifdef RREC_CUDA_HAVE_GEMM
      case RREC_OP_MATMUL: matmul(c, as<rrec_matmul_args>(args)); break;
      case RREC_OP_MATMUL_BWD_INPUT: matmulBwdInput(c, as<rrec_matmul_args>(args)); break;
      case RREC_OP_MATMUL_BWD_WEIGHT: matmulBwdWeight(c, as<rrec_matmul_bwd_weight_args>(args)); break;
      case RREC_OP_LORA: lora(c, as<rrec_lora_args>(args)); break;
      case RREC_OP_LORA_BWD: loraBwd(c, as<rrec_lora_args>(args)); break;
#endif
#ifdef RREC_CUDA_HAVE_ATTENTION
      case RREC_OP_ATTENTION: attention(c, as<rrec_attention_args>(args), false); break;
      case RREC_OP_ATTENTION_BWD: attention(c, as<rrec_attention_args>(args), true); break;
      case RREC_OP_PAGED_ATTENTION: pagedAttention(c, as<rrec_paged_attention_args>(args)); break;
      case RREC_OP_KV_WRITE: kvWriteOp(c, as<rrec_kv_write_args>(args)); break;
      case RREC_OP_LM_HEAD_LOGPROBS: lmHead(c, as<rrec_lm_head_args>(args), false); break;
      case RREC_OP_LM_HEAD_BWD: lmHead(c, as<rrec_lm_head_args>(args), true); break;
      case RREC_OP_LOGITS: logits(c, as<rrec_logits_args>(args)); break;
      case RREC_OP_SAMPLE: sample(c, as<rrec_sample_args>(args)); break;
#endif
      default: throw OpError(RREC_ERR_UNSUPPORTED, "not implemented by this backend");
    }
  });
}

void closeCtx(void* ctx) {
  Ctx* c = static_cast<Ctx*>(ctx);
#if defined(__CUDACC__)
  cudaSetDevice(c->device);
  cudaStreamSynchronize(c->stream);
  c->pool.put(c->err, sizeof(int));
  c->pool.trim();
  cudaStreamDestroy(c->stream);
#else
  c->pool.put(c->err, sizeof(int));
#endif
  delete c;
}

const rrec_backend_i kTable = {RREC_BACKEND_ABI_VERSION, sizeof(rrec_backend_i), describe, alloc, freeBuffer, nullptr, upload, download, copy,
                               fillZero, synchronize, supports, run, closeCtx};

const char* infoJson() {
  static std::string json;
  if (json.empty()) {
    std::string archs = "[";
    std::string list = RREC_CUDA_ARCH_LIST;
    size_t start = 0;
    while (start < list.size()) {
      size_t sep = list.find_first_of(";, ", start);
      if (sep == std::string::npos) sep = list.size();
      if (sep > start) archs += std::string(archs.size() > 1 ? "," : "") + "\"" + list.substr(start, sep - start) + "\"";
      start = sep + 1;
    }
    archs += "]";
#if defined(__CUDACC__)
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    json = "{\"architectures\":" + archs + ",\"runtimeVersion\":" + std::to_string(runtime) + ",\"driverVersion\":" + std::to_string(driver) +
           ",\"emulated\":false}";
#else
    json = "{\"architectures\":[],\"emulated\":true}";
#endif
  }
  return json.c_str();
}

int32_t deviceCount(rrec_status* st) {
#if defined(__CUDACC__)
  std::string why;
  const int n = usableDevices(&why);
  if (n == 0) setStatus(st, RREC_ERR_DEVICE, why);
  return n;
#else
  return 1;
#endif
}

int32_t openDevice(int32_t device, const rrec_backend_i** iface, void** ctxOut, rrec_status* st) {
  return guarded(st, "open", [&] {
#if defined(__CUDACC__)
    std::string why;
    const int n = usableDevices(&why);
    if (device < 0 || device >= n) bad("device " + std::to_string(device) + " of " + std::to_string(n) + (why.empty() ? "" : ": " + why));
    // device d among the usable ones
    int count = 0, real = -1;
    cudaGetDeviceCount(&count);
    for (int d = 0, k = 0; d < count; d++) {
      int major = 0;
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, d);
      if (major >= 8 && k++ == device) real = d;
    }
    check(cudaSetDevice(real), "cudaSetDevice");
    std::unique_ptr<Ctx> c(new Ctx());
    c->device = real;
    check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
#else
    if (device != 0) bad("cuda-emu has one device (0), not " + std::to_string(device));
    std::unique_ptr<Ctx> c(new Ctx());
#endif
    c->err = static_cast<int*>(c->pool.get(sizeof(int)));
    memzero(c->err, sizeof(int), c->stream);
    *iface = &kTable;
    *ctxOut = c.release();
  });
}

const rrec_backend_reg kReg = {RREC_BACKEND_ABI_VERSION, sizeof(rrec_backend_reg), kName, infoJson, deviceCount, openDevice};

}  // namespace

}  // namespace rrec::cuda

#if defined(__CUDACC__)
extern "C" __attribute__((visibility("default"))) const rrec_backend_reg* rrec_cuda_backend_reg(uint32_t hostAbi) {
  return hostAbi == RREC_BACKEND_ABI_VERSION ? &rrec::cuda::kReg : nullptr;
}
#else
extern "C" __attribute__((visibility("default"))) const rrec_backend_reg* rrec_cuda_emu_backend_reg(uint32_t hostAbi) {
  return hostAbi == RREC_BACKEND_ABI_VERSION ? &rrec::cuda::kReg : nullptr;
}
#endif
