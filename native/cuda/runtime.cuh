// The host side of the CUDA backend: device memory, copies and the stream, over the CUDA runtime
// (nvcc) or over the emulator (g++; memory is guard-paged host memory and kernels run at launch).
// Runtime API only (CUDA 12.x and 13.x): no driver API, no removed cudaDeviceProp fields.
#pragma once
#include <cstddef>
#include <string>

#include "cuda/device.cuh"
#include "cuda/op_error.h"

namespace rrec::cuda {

#if defined(__CUDACC__)
inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw OpError(e == cudaErrorMemoryAllocation ? RREC_ERR_MEMORY : RREC_ERR_DEVICE,
                  std::string(what) + ": " + cudaGetErrorName(e) + " (" + std::to_string(int(e)) + "): " + cudaGetErrorString(e));
}
inline void* devAlloc(size_t n) {
  void* p = nullptr;
  check(cudaMalloc(&p, n), "cudaMalloc");
  return p;
}
inline void devFree(void* p) { cudaFree(p); }
inline void h2d(void* d, const void* h, size_t n, cudaStream_t s) {
  check(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, s), "cudaMemcpyAsync (host to device)");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");  // the host buffer is a temporary
}
inline void d2h(void* h, const void* d, size_t n, cudaStream_t s) {
  check(cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, s), "cudaMemcpyAsync (device to host)");
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
}
inline void d2d(void* d, const void* src, size_t n, cudaStream_t s) { check(cudaMemcpyAsync(d, src, n, cudaMemcpyDeviceToDevice, s), "cudaMemcpyAsync"); }
inline void memzero(void* d, size_t n, cudaStream_t s) { check(cudaMemsetAsync(d, 0, n, s), "cudaMemsetAsync"); }
inline void sync(cudaStream_t s) { check(cudaStreamSynchronize(s), "cudaStreamSynchronize"); }
// after every launch: a launch error (bad configuration, no kernel image for this device)
inline void launched(const char* kernel) { check(cudaGetLastError(), kernel); }
constexpr size_t kAllocGranule = 512;
#else
inline void* devAlloc(size_t n) {
  void* p = ::rrec_emu::device_alloc(n);
  if (!p) throw OpError(RREC_ERR_MEMORY, "cuda-emu: out of memory");
  return p;
}
inline void devFree(void* p) { ::rrec_emu::device_free(p); }
inline void h2d(void* d, const void* h, size_t n, cudaStream_t) { std::memcpy(d, h, n); }
inline void d2h(void* h, const void* d, size_t n, cudaStream_t) { std::memcpy(h, d, n); }
inline void d2d(void* d, const void* s, size_t n, cudaStream_t) { std::memmove(d, s, n); }
inline void memzero(void* d, size_t n, cudaStream_t) { std::memset(d, 0, n); }
inline void sync(cudaStream_t) {}
inline void launched(const char*) {}
constexpr size_t kAllocGranule = 16;  // exact sizes: a buffer ends at its guard page
#endif

}  // namespace rrec::cuda
