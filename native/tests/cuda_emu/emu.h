// The host emulator of the CUDA device layer (native/cuda/device.cuh includes this when the CUDA
// sources are compiled by g++ instead of nvcc). Every thread of a block really runs, as a fiber
// on one OS thread with its own stack (emu.cc: a hand-written x86-64 context switch); a block
// runs until every thread has finished, blocks run one after another.
//   __syncthreads()      a barrier over the block's live threads (threads that returned count as
//                        arrived, as on sm_70+)
//   warp primitives      an all-gather through the warp (two warp barriers), so a lane really
//                        reads what another lane wrote; the mask must name every lane of the warp
//   mma / ldmatrix       fragments moved in the PTX ISA's documented layouts (device.cuh)
//   cp.async             queued per thread and performed at wait_group, so a missing wait reads
//                        stale shared memory as it can on the GPU; 16-byte alignment checked
//   memory               every device buffer and the dynamic shared memory end at a PROT_NONE
//                        guard page (an overrun faults; the fault handler names the kernel)
//   deadlock             a barrier some threads can never reach is reported, not hung on
// Launches are serialised (one global mutex): `__shared__` is `static`, shared by the one block
// that runs at a time.
#pragma once
#include <math.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
typedef void* cudaStream_t;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
#define __shared__ static
#define __launch_bounds__(...)

namespace rrec_emu {

struct Thread {
  dim3 idx;
  unsigned linear, lane, warp;
};
struct Block {
  dim3 idx, dim, grid;
  unsigned char* smem;  // dynamic shared memory (guard page after it)
  size_t smem_bytes;
};

extern Thread* g_thread;  // the running fiber's thread
extern Block* g_block;    // the running block

void syncthreads();
void syncwarp(unsigned mask);
// Each lane of the caller's warp contributes `bytes` (<= 64) at `mine`; `all` receives every
// lane's contribution, lane-major (lanes that do not exist in a partial warp: zeros).
void warp_allgather(const void* mine, void* all, size_t bytes, unsigned mask, const char* what);
unsigned warp_full_mask();

// cp.async: queued per thread
void cp_async(void* smem, const void* gmem, unsigned bytes, unsigned src_bytes);
void cp_async_commit();
void cp_async_wait(int pending);

[[noreturn]] void fail(const char* fmt, ...);

// Runs body(ctx) once per thread of every block.
void launch(const char* name, dim3 grid, dim3 block, size_t smem, void (*body)(void*), void* ctx);
template <typename F>
void launch_fn(const char* name, dim3 grid, dim3 block, size_t smem, F fn) {
  launch(name, grid, block, smem, [](void* p) { (*static_cast<F*>(p))(); }, &fn);
}

// The launch macro's target: the arguments are evaluated once, at the launch, as <<<>>> does.
template <typename K, typename... A>
void launch_kernel(const char* name, dim3 grid, dim3 block, size_t smem, K kernel, A... args) {
  launch_fn(name, grid, block, smem, [&] { kernel(args...); });
}

// Device memory: page-guarded host memory.
void* device_alloc(size_t bytes);
void device_free(void* p);

}  // namespace rrec_emu

#define threadIdx (::rrec_emu::g_thread->idx)
#define blockIdx (::rrec_emu::g_block->idx)
#define blockDim (::rrec_emu::g_block->dim)
#define gridDim (::rrec_emu::g_block->grid)

inline void __syncthreads() { ::rrec_emu::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::rrec_emu::syncwarp(mask); }

template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
  static_assert(sizeof(T) <= 8, "shfl of at most 8 bytes");
  T all[32];
  ::rrec_emu::warp_allgather(&v, all, sizeof(T), mask, "__shfl_sync");
  const unsigned lane = ::rrec_emu::g_thread->lane;
  const unsigned base = lane & ~unsigned(width - 1);
  return all[base + (unsigned(src) & unsigned(width - 1))];
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  T all[32];
  ::rrec_emu::warp_allgather(&v, all, sizeof(T), mask, "__shfl_xor_sync");
  const unsigned lane = ::rrec_emu::g_thread->lane;
  const unsigned src = lane ^ unsigned(lane_mask);
  // a source outside the caller's width-segment returns the caller's own value (PTX shfl.bfly)
  return (src & ~unsigned(width - 1)) == (lane & ~unsigned(width - 1)) ? all[src] : v;
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  T all[32];
  ::rrec_emu::warp_allgather(&v, all, sizeof(T), mask, "__shfl_down_sync");
  const unsigned lane = ::rrec_emu::g_thread->lane;
  const unsigned seg = lane & ~unsigned(width - 1);
  return (lane - seg) + delta < unsigned(width) ? all[lane + delta] : v;
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  T all[32];
  ::rrec_emu::warp_allgather(&v, all, sizeof(T), mask, "__shfl_up_sync");
  const unsigned lane = ::rrec_emu::g_thread->lane;
  const unsigned seg = lane & ~unsigned(width - 1);
  return lane - seg >= delta ? all[lane - delta] : v;
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  int all[32];
  const int mine = pred != 0;
  ::rrec_emu::warp_allgather(&mine, all, sizeof(int), mask, "__ballot_sync");
  unsigned r = 0;
  for (int i = 0; i < 32; i++)
    if (all[i] && (mask >> i & 1u)) r |= 1u << i;
  return r;
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == (mask & ::rrec_emu::warp_full_mask()); }

// Atomics: really atomic (GCC builtins), though one OS thread runs the fibers.
inline float atomicAdd(float* p, float v) {
  uint32_t old = __atomic_load_n(reinterpret_cast<uint32_t*>(p), __ATOMIC_RELAXED), nw;
  float f;
  do {
    std::memcpy(&f, &old, 4);
    const float s = f + v;
    std::memcpy(&nw, &s, 4);
  } while (!__atomic_compare_exchange_n(reinterpret_cast<uint32_t*>(p), &old, nw, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return f;
}
inline double atomicAdd(double* p, double v) {
  uint64_t old = __atomic_load_n(reinterpret_cast<uint64_t*>(p), __ATOMIC_RELAXED), nw;
  double f;
  do {
    std::memcpy(&f, &old, 8);
    const double s = f + v;
    std::memcpy(&nw, &s, 8);
  } while (!__atomic_compare_exchange_n(reinterpret_cast<uint64_t*>(p), &old, nw, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return f;
}
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline int atomicMax(int* p, int v) {
  int old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

inline float __uint_as_float(unsigned u) { float f; std::memcpy(&f, &u, 4); return f; }
inline unsigned __float_as_uint(float f) { unsigned u; std::memcpy(&u, &f, 4); return u; }
inline long long __double_as_longlong(double d) { long long u; std::memcpy(&u, &d, 8); return u; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
template <typename T>
inline T __ldg(const T* p) { return *p; }
// math: the C library's float functions (expf, tanhf, ...) from <math.h>; min/max as CUDA has them
using std::max;
using std::min;
