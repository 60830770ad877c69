// The CPU backend: the rrec_backend_i table over host memory and the kernels in this folder.
// It is the reference every other backend is tested against (native/tests/test_backend_ops.cc),
// and the only backend built into the addon; the registry (native/core/backend_registry.cc) finds
// it through rrec_cpu_backend_reg.
//
// Memory: small buffers from operator new (64-byte aligned), large ones (>= 256 KiB) from the
// activation pool (rrec/buffer_pool.h: huge pages, reused after release), RREC_ALLOC_LAZY ones
// (the KV cache) from their own anonymous mapping that the OS fills on first touch and takes back
// at free. wrap_host views memory-mapped weights without a copy.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <thread>

#include "cpu/backend_cpu.h"
#include "cpu/matmul_kernels.h"
#include "rrec/buffer_pool.h"
#include "rrec/dtype.h"

namespace rrec::cpu {

namespace {

void setStatus(rrec_status* st, int32_t code, const std::string& msg) {
  if (!st) return;
  st->code = code;
  std::snprintf(st->message, sizeof st->message, "%s", msg.c_str());
}

template <typename Fn>
int32_t guarded(rrec_status* st, const char* what, Fn fn) {
  try {
    fn();
    return RREC_OK;
  } catch (const OpError& e) {
    setStatus(st, e.code, std::string(what) + ": " + e.what());
    return e.code;
  } catch (const std::bad_alloc&) {
    setStatus(st, RREC_ERR_MEMORY, std::string(what) + ": out of memory");
    return RREC_ERR_MEMORY;
  } catch (const std::exception& e) {
    setStatus(st, RREC_ERR_DEVICE, std::string(what) + ": " + e.what());
    return RREC_ERR_DEVICE;
  }
}

std::string cpuModelName() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  if (!f) return "unknown CPU";
  char line[512];
  std::string name = "unknown CPU";
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "model name", 10) == 0) {
      const char* c = std::strchr(line, ':');
      if (c) {
        name = c + 1;
        name.erase(0, name.find_first_not_of(" \t"));
        name.erase(name.find_last_not_of(" \t\n") + 1);
      }
      break;
    }
  }
  std::fclose(f);
  return name;
}

uint64_t meminfoBytes(const char* key) {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
      std::sscanf(line + n + 1, "%llu", &kb);
      break;
    }
  std::fclose(f);
  return kb * 1024ull;
}

// ---- the table

int32_t describe(void*, rrec_device_info* out, rrec_status* st) {
  return guarded(st, "cpu describe", [&] {
    std::memset(out, 0, sizeof *out);
    std::snprintf(out->name, sizeof out->name, "cpu");
    const char* kernels = matmul_avx512_bf16()       ? "avx512-bf16"
                          : matmul_avx512_compiled() ? "avx512"
                          : matmul_avx2_available()  ? "avx2"
                                                     : "generic";
    const unsigned hw = std::thread::hardware_concurrency();
    std::snprintf(out->description, sizeof out->description, "%s, %u hardware threads, matmul kernels %s",
                  cpuModelName().c_str(), hw, kernels);
    out->total_memory = meminfoBytes("MemTotal");
    out->free_memory = meminfoBytes("MemAvailable");
    out->host_memory = 1;
    out->bf16_products = matmul_avx512_bf16() ? 1 : 0;
  });
}

int32_t alloc(void*, uint64_t bytes, uint32_t flags, rrec_buffer** out, rrec_status* st) {
  return guarded(st, "cpu alloc", [&] {
    auto* b = new CpuBuffer();
    b->bytes = bytes;
    const size_t n = std::max<uint64_t>(bytes, 1);
    try {
      if (flags & RREC_ALLOC_LAZY) {
        void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        madvise(p, n, MADV_HUGEPAGE);  // first touch of 4 KiB pages is slow on these machines
#endif
        b->ptr = p;
        b->kind = CpuBuffer::kLazy;
      } else if (n >= kPoolMinBytes) {
        b->ptr = poolAllocate(n);
        b->kind = CpuBuffer::kPool;
      } else {
        b->ptr = ::operator new(n, std::align_val_t(64));
        b->kind = CpuBuffer::kNew;
      }
    } catch (...) {
      delete b;
      throw;
    }
    *out = reinterpret_cast<rrec_buffer*>(b);
  });
}

void freeBuffer(void*, rrec_buffer* handle) {
  CpuBuffer* b = cpuBuffer(handle);
  if (!b) return;
  const size_t n = std::max<uint64_t>(b->bytes, 1);
  switch (b->kind) {
    case CpuBuffer::kNew: ::operator delete(b->ptr, std::align_val_t(64)); break;
    case CpuBuffer::kPool: poolRelease(b->ptr, n); break;
    case CpuBuffer::kLazy: munmap(b->ptr, n); break;
    case CpuBuffer::kHostView: break;
  }
  delete b;
}

int32_t wrapHost(void*, const void* host, uint64_t bytes, rrec_buffer** out, rrec_status* st) {
  return guarded(st, "cpu wrap_host", [&] {
    auto* b = new CpuBuffer();
    b->ptr = const_cast<void*>(host);
    b->bytes = bytes;
    b->kind = CpuBuffer::kHostView;
    *out = reinterpret_cast<rrec_buffer*>(b);
  });
}

char* at(const rrec_tensor& t, uint64_t bytes, const char* what) {
  CpuBuffer* b = cpuBuffer(t.buf);
  if (!b) throw OpError(RREC_ERR_ARGUMENT, std::string(what) + ": no buffer");
  if (t.offset > b->bytes || bytes > b->bytes - t.offset)
    throw OpError(RREC_ERR_ARGUMENT, std::string(what) + ": " + std::to_string(bytes) + " bytes at offset " + std::to_string(t.offset) +
                                         " overrun a buffer of " + std::to_string(b->bytes));
  return static_cast<char*>(b->ptr) + t.offset;
}

bool knownType(int32_t t) { return t >= RREC_F32 && t <= RREC_U8; }
bool floatType(int32_t t) { return t == RREC_F32 || t == RREC_BF16 || t == RREC_F16 || t == RREC_F64; }

// dst[i] = convert(src[i]) for the pairs backend_abi.h lists.
void convert(void* dst, int32_t dt, const void* src, int32_t sdt, uint64_t n) {
  if (!knownType(dt) || !knownType(sdt)) throw OpError(RREC_ERR_ARGUMENT, "unknown dtype");
  if (dt == sdt) {
    std::memcpy(dst, src, n * dtypeSize(static_cast<DType>(dt)));
    return;
  }
  if (!floatType(sdt)) throw OpError(RREC_ERR_UNSUPPORTED, "no conversion from an integer dtype");
  const DType s = static_cast<DType>(sdt);
  switch (dt) {
    case RREC_F32: {
      float* d = static_cast<float*>(dst);
      for (uint64_t i = 0; i < n; i++) d[i] = static_cast<float>(loadAsDouble(src, s, i));
      return;
    }
    case RREC_F64: {
      double* d = static_cast<double*>(dst);
      for (uint64_t i = 0; i < n; i++) d[i] = loadAsDouble(src, s, i);
      return;
    }
    case RREC_BF16: {
      if (sdt != RREC_F32) break;
      uint16_t* d = static_cast<uint16_t*>(dst);
      const float* f = static_cast<const float*>(src);
      for (uint64_t i = 0; i < n; i++) d[i] = f32ToBf16(f[i]);
      return;
    }
    default: break;
  }
  throw OpError(RREC_ERR_UNSUPPORTED, std::string("no conversion from ") + dtypeName(s) + " to " + dtypeName(static_cast<DType>(dt)));
}

int32_t upload(void*, rrec_tensor dst, const void* src, int32_t srcType, uint64_t n, rrec_status* st) {
  return guarded(st, "cpu upload", [&] {
    if (!knownType(dst.dtype)) throw OpError(RREC_ERR_ARGUMENT, "unknown destination dtype");
    convert(at(dst, n * dtypeSize(static_cast<DType>(dst.dtype)), "destination"), dst.dtype, src, srcType, n);
  });
}

int32_t download(void*, void* dst, int32_t dstType, rrec_tensor src, uint64_t n, rrec_status* st) {
  return guarded(st, "cpu download", [&] {
    if (!knownType(src.dtype)) throw OpError(RREC_ERR_ARGUMENT, "unknown source dtype");
    convert(dst, dstType, at(src, n * dtypeSize(static_cast<DType>(src.dtype)), "source"), src.dtype, n);
  });
}

int32_t copy(void*, rrec_tensor dst, rrec_tensor src, uint64_t bytes, rrec_status* st) {
  return guarded(st, "cpu copy", [&] { std::memmove(at(dst, bytes, "destination"), at(src, bytes, "source"), bytes); });
}

int32_t fillZero(void*, rrec_tensor dst, uint64_t bytes, rrec_status* st) {
  return guarded(st, "cpu fill_zero", [&] {
    char* p = at(dst, bytes, "destination");
    // every thread zeroes its share of a large buffer (a single-threaded memset of a 20 MB gradient
    // costs ~2 ms here)
    if (bytes >= (uint64_t(1) << 18)) {
      const int64_t chunks = static_cast<int64_t>((bytes + 65535) / 65536);
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < chunks; c++) {
        const uint64_t lo = static_cast<uint64_t>(c) * 65536, hi = std::min<uint64_t>(bytes, lo + 65536);
        std::memset(p + lo, 0, hi - lo);
      }
    } else {
      std::memset(p, 0, bytes);
    }
  });
}

int32_t synchronize(void*, rrec_status*) { return RREC_OK; }

int32_t supports(void*, int32_t op, int32_t dtype) {
  return op >= RREC_OP_MATMUL && op < RREC_OP_COUNT && (dtype == RREC_F32 || dtype == RREC_F64) ? 1 : 0;
}

int32_t run(void*, int32_t op, const void* args, rrec_status* st) { return guarded(st, opName(op), [&] { runOp(op, args); }); }

void closeCtx(void*) {}

const rrec_backend_i kTable = {
    RREC_BACKEND_ABI_VERSION, sizeof(rrec_backend_i), describe, alloc, freeBuffer, wrapHost, upload, download, copy,
    fillZero, synchronize, supports, run, closeCtx};

const char* infoJson() { return "{}"; }

int32_t deviceCount(rrec_status*) { return 1; }

int32_t openDevice(int32_t device, const rrec_backend_i** iface, void** ctx, rrec_status* st) {
  if (device != 0) {
    setStatus(st, RREC_ERR_ARGUMENT, "cpu: there is one CPU device (0), not " + std::to_string(device));
    return RREC_ERR_ARGUMENT;
  }
  *iface = &kTable;
  *ctx = nullptr;
  return RREC_OK;
}

const rrec_backend_reg kReg = {RREC_BACKEND_ABI_VERSION, sizeof(rrec_backend_reg), "cpu", infoJson, deviceCount, openDevice};

}  // namespace

// The op dispatcher needs the buffer check too.
char* tensorBytes(const rrec_tensor& t, uint64_t bytes, const char* what) { return at(t, bytes, what); }

}  // namespace rrec::cpu

// The CPU backend's registration (the addon's registry calls it; a test library re-exports it
// under another name to prove dynamic loading).
extern "C" const rrec_backend_reg* rrec_cpu_backend_reg(uint32_t hostAbi) {
  return hostAbi == RREC_BACKEND_ABI_VERSION ? &rrec::cpu::kReg : nullptr;
}
