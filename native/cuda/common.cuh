// What every op file of the CUDA backend shares: the opened device's context (stream, caching
// allocator, the device error word kernels report bad input through), checked tensor pointers,
// and the weight-dtype dispatch.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda/device.cuh"
#include "cuda/op_error.h"
#include "cuda/runtime.cuh"
#include "rrec/backend_abi.h"
#include "rrec/dtype.h"

namespace rrec::cuda {

struct Buffer {
  void* ptr;
  uint64_t bytes;  // what was asked for (bounds checks)
  size_t cap;      // what the pool handed out
};

// A caching allocator: freed blocks are kept by size and handed out again. One stream per
// device context, so a block freed after the ops that use it were issued is safe to reuse for
// ops issued later (stream order), as PyTorch's caching allocator reasons.
class Pool {
 public:
  static size_t roundUp(size_t n) {
    n = n == 0 ? 1 : n;
    if (kAllocGranule <= 16) return (n + 15) / 16 * 16;  // emulator: exact, the guard page right after
    if (n < (1u << 20)) return (n + 511) / 512 * 512;
    return (n + (1u << 20) - 1) / (1u << 20) * (1u << 20);
  }
  void* get(size_t n) {
    const size_t c = roundUp(n);
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = free_.find(c);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    try {
      return devAlloc(c);
    } catch (const OpError&) {
      trim();  // give the cached blocks back and try once more
      return devAlloc(c);
    }
  }
  void put(void* p, size_t n) {
    if (!p) return;
    std::lock_guard<std::mutex> l(mu_);
    free_[roundUp(n)].push_back(p);
  }
  void trim() {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& kv : free_)
      for (void* p : kv.second) devFree(p);
    free_.clear();
  }
  ~Pool() { trim(); }

 private:
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
};

// Kernels that meet bad input (a token id out of range) set a code here; the host reads it at the
// next synchronize/download and reports it.
enum DeviceErrorCode { kDevOk = 0, kDevTokenRange = 1, kDevRowRange = 2 };

struct Ctx {
  int device = 0;
  cudaStream_t stream = nullptr;
  Pool pool;
  int* err = nullptr;  // device int
};

// Temporary device memory for one op, back to the pool at scope exit.
struct Temp {
  Ctx& c;
  void* p;
  size_t n;
  Temp(Ctx& ctx, size_t bytes) : c(ctx), p(ctx.pool.get(bytes)), n(bytes) {}
  ~Temp() { c.pool.put(p, n); }
  Temp(const Temp&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

inline size_t dtypeBytes(int32_t t) {
  return t >= RREC_F32 && t <= RREC_U8 ? dtypeSize(static_cast<DType>(t)) : 0;
}

inline char* at(const rrec_tensor& t, uint64_t bytes, const char* what) {
  const Buffer* b = reinterpret_cast<const Buffer*>(t.buf);
  if (!b) bad(std::string(what) + ": no buffer");
  if (t.offset > b->bytes || bytes > b->bytes - t.offset)
    bad(std::string(what) + ": " + std::to_string(bytes) + " bytes at offset " + std::to_string(t.offset) + " overrun a buffer of " +
        std::to_string(b->bytes));
  return static_cast<char*>(b->ptr) + t.offset;
}

template <typename T>
constexpr int32_t dtypeOfT() {
  return std::is_same<T, float>::value ? RREC_F32 : std::is_same<T, double>::value ? RREC_F64 : std::is_same<T, int32_t>::value ? RREC_I32 : std::is_same<T, uint16_t>::value ? RREC_BF16 : RREC_U8;
}

// n elements of T at t (checked: dtype, bounds); nullptr when absent and optional.
template <typename T>
T* ptr(const rrec_tensor& t, int64_t n, const char* field, bool optional = false) {
  if (!t.buf) {
    if (optional) return nullptr;
    bad(std::string(field) + " is missing");
  }
  if (t.dtype != dtypeOfT<T>())
    bad(std::string(field) + " has dtype " + dtypeName(static_cast<DType>(t.dtype)) + ", expected " + dtypeName(static_cast<DType>(dtypeOfT<T>())));
  if (n < 0) bad(std::string(field) + ": negative size");
  return reinterpret_cast<T*>(at(t, static_cast<uint64_t>(n) * sizeof(T), field));
}

// A weight matrix's data (F32, BF16 or F16), bounds checked.
inline const void* weight(const rrec_matrix& w, const char* field) {
  if (w.rows <= 0 || w.cols <= 0) bad(std::string(field) + ": shape [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
  if (w.t.dtype != RREC_F32 && w.t.dtype != RREC_BF16 && w.t.dtype != RREC_F16)
    throw OpError(RREC_ERR_UNSUPPORTED, std::string(field) + ": the CUDA backend takes F32, BF16 or F16 weights, not " +
                                            dtypeName(static_cast<DType>(w.t.dtype)));
  return at(w.t, uint64_t(w.rows) * w.cols * dtypeBytes(w.t.dtype), field);
}

inline void positive(int64_t v, const char* name) {
  if (v <= 0) bad(std::string(name) + " must be positive, got " + std::to_string(v));
}

// f(std::integral_constant<int, dtype>) for a stored weight dtype
template <typename F>
void byWeightType(int32_t dt, F f) {
  if (dt == RREC_F32) f(std::integral_constant<int, RREC_F32>());
  else if (dt == RREC_BF16) f(std::integral_constant<int, RREC_BF16>());
  else if (dt == RREC_F16) f(std::integral_constant<int, RREC_F16>());
  else throw OpError(RREC_ERR_UNSUPPORTED, std::string("weights of dtype ") + dtypeName(static_cast<DType>(dt)));
}

// Grid for a grid-stride loop over n items.
inline unsigned gridFor(int64_t n, int threads, int64_t cap = 2048) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b > cap ? cap : b);
}

}  // namespace rrec::cuda

namespace rrec_dev {
// element i of a stored weight as float
template <int WT>
RREC_DEV float loadw(const void* p, int64_t i) {
  if (WT == RREC_F32) return static_cast<const float*>(p)[i];
  if (WT == RREC_BF16) return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
}
}  // namespace rrec_dev
