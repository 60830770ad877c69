// The device layer every CUDA kernel of this folder is written against. nvcc compiles it to the
// real thing (<<<>>>, __shfl_sync, inline PTX); g++ compiles the same kernels against the host
// emulator (native/tests/cuda_emu/emu.h), so every kernel runs in `npm test` on the CPU.
//   RREC_KERNEL            a kernel (__global__)
//   RREC_DEV               a device helper (inlined)
//   RREC_LAUNCH(k, grid, block, smem, stream, args...)   k<<<grid, block, smem, stream>>>(args...)
//                          (k a plain name: bind a template instance to a local pointer first)
//   RREC_DYN_SMEM(T, name) T* name = the launch's dynamic shared memory (16-byte aligned)
//   warp_sum, block_sum    reductions over __shfl_xor_sync
//   mma_m16n8k16_bf16      mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32
//   ldmatrix_x4(_trans)    ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16
//   cp_async16, cp_async_commit, cp_async_wait<N>   cp.async.cg.shared.global (zero-fill), groups
// Only sm_80 PTX features (CUDA 12.x and 13.x build these sources).
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define RREC_KERNEL __global__
#define RREC_DEV __device__ __forceinline__
#define RREC_LAUNCH(k, grid, block, smem, stream, ...) k<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define RREC_DYN_SMEM(T, name)                                  \
  extern __shared__ __align__(16) unsigned char rrec_dyn_smem[]; \
  T* name = reinterpret_cast<T*>(rrec_dyn_smem)
#else
#include "cuda_emu/emu.h"
#define RREC_KERNEL
#define RREC_DEV inline
#define RREC_LAUNCH(k, grid, block, smem, stream, ...) ::rrec_emu::launch_kernel(#k, (grid), (block), (smem), k, ##__VA_ARGS__)
#define RREC_DYN_SMEM(T, name) T* name = reinterpret_cast<T*>(::rrec_emu::g_block->smem)
#endif

namespace rrec_dev {

constexpr unsigned kFull = 0xffffffffu;

// ---- bf16 as the hardware rounds it (cvt.rn.bf16.f32: nearest even, NaN stays NaN)
RREC_DEV float bf16_to_f32(uint16_t h) { return __uint_as_float(static_cast<unsigned>(h) << 16); }
RREC_DEV uint16_t f32_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
RREC_DEV float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }
RREC_DEV float f16_to_f32(uint16_t h) {
  const unsigned sign = static_cast<unsigned>(h & 0x8000u) << 16;
  unsigned exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return __uint_as_float(sign);
    exp = 127 - 15 + 1;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      exp--;
    }
    return __uint_as_float(sign | (exp << 23) | ((mant & 0x3ffu) << 13));
  }
  if (exp == 31) return __uint_as_float(sign | 0x7f800000u | (mant << 13));
  return __uint_as_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}
// two bf16 in one 32-bit register, lo in the low half (the element with the lower index)
RREC_DEV uint32_t pack_bf16x2(uint16_t lo, uint16_t hi) { return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16); }

// ---- warp and block reductions (blockDim.x a multiple of 32, every thread calls)
RREC_DEV float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
RREC_DEV double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFull, v, o);
  return v;
}
RREC_DEV float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
// Sum over the block; `scratch` is shared memory of at least 32 values. Every thread gets it.
template <typename T>
RREC_DEV T block_sum(T v, T* scratch) {
  const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T s = lane < nw ? scratch[lane] : T(0);
  return warp_sum(s);
}

// ---- tensor cores: D = A B + C for one m16n8k16 tile, bf16 inputs, f32 accumulation.
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16"), g = lane / 4, t = lane % 4:
//   a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..2t+1]   a[2] = A[g][2t+8..]   a[3] = A[g+8][2t+8..]
//   b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//   c[0..1] = C[g][2t..2t+1]   c[2..3] = C[g+8][2t..2t+1]
RREC_DEV void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if defined(__CUDACC__)
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  struct Frag {
    uint32_t a[4], b[2];
  } mine = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}}, all[32];
  ::rrec_emu::warp_allgather(&mine, all, sizeof mine, kFull, "mma_m16n8k16_bf16");
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    const int g = l >> 2, t = l & 3;
    auto lo = [](uint32_t r) { return bf16_to_f32(static_cast<uint16_t>(r & 0xffffu)); };
    auto hi = [](uint32_t r) { return bf16_to_f32(static_cast<uint16_t>(r >> 16)); };
    A[g][2 * t] = lo(all[l].a[0]), A[g][2 * t + 1] = hi(all[l].a[0]);
    A[g + 8][2 * t] = lo(all[l].a[1]), A[g + 8][2 * t + 1] = hi(all[l].a[1]);
    A[g][2 * t + 8] = lo(all[l].a[2]), A[g][2 * t + 9] = hi(all[l].a[2]);
    A[g + 8][2 * t + 8] = lo(all[l].a[3]), A[g + 8][2 * t + 9] = hi(all[l].a[3]);
    B[2 * t][g] = lo(all[l].b[0]), B[2 * t + 1][g] = hi(all[l].b[0]);
    B[2 * t + 8][g] = lo(all[l].b[1]), B[2 * t + 9][g] = hi(all[l].b[1]);
  }
  const int g = threadIdx.x % 32 >> 2, t = threadIdx.x % 32 & 3;
  for (int i = 0; i < 4; i++) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float s = 0;  // products of bf16 pairs are exact in f32
    for (int k = 0; k < 16; k++) s += A[row][k] * B[k][col];
    c[i] += s;
  }
#endif
}

// ---- ldmatrix: four 8x8 b16 matrices from shared memory. Lane L gives the address of row L % 8
// of matrix L / 8 (16 bytes, 16-byte aligned). Without .trans, r[i] = M_i[lane / 4][2 (lane % 4) ..
// + 1]; with .trans, r[i] = M_i[2 (lane % 4)][lane / 4] (lo), M_i[2 (lane % 4) + 1][lane / 4] (hi).
#if !defined(__CUDACC__)
RREC_DEV void ldmatrix_emu(uint32_t* r, int nmat, const void* row, bool trans, const char* what) {
  const unsigned char* all[32];
  ::rrec_emu::warp_allgather(&row, all, sizeof row, kFull, what);
  const unsigned lane = threadIdx.x % 32;
  for (int l = 0; l < 8 * nmat; l++)
    if (reinterpret_cast<uintptr_t>(all[l]) % 16) ::rrec_emu::fail("%s: lane %d's row address %p is not 16-byte aligned", what, l, all[l]);
  for (int i = 0; i < nmat; i++) {
    uint16_t lo, hi;
    if (!trans) {
      std::memcpy(&lo, all[i * 8 + lane / 4] + 4 * (lane % 4), 2);
      std::memcpy(&hi, all[i * 8 + lane / 4] + 4 * (lane % 4) + 2, 2);
    } else {
      std::memcpy(&lo, all[i * 8 + 2 * (lane % 4)] + 2 * (lane / 4), 2);
      std::memcpy(&hi, all[i * 8 + 2 * (lane % 4) + 1] + 2 * (lane / 4), 2);
    }
    r[i] = pack_bf16x2(lo, hi);
  }
}
#endif

RREC_DEV void ldmatrix_x4(uint32_t r[4], const void* row) {
#if defined(__CUDACC__)
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
#else
  ldmatrix_emu(r, 4, row, false, "ldmatrix_x4");
#endif
}
RREC_DEV void ldmatrix_x4_trans(uint32_t r[4], const void* row) {
#if defined(__CUDACC__)
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(s));
#else
  ldmatrix_emu(r, 4, row, true, "ldmatrix_x4_trans");
#endif
}

// ---- cp.async: 16 bytes global -> shared, bypassing L1; valid == false fills the 16 bytes with
// zeros (src-size 0) without reading global memory, which is how tiles hang over a matrix's edge.
RREC_DEV void cp_async16(void* smem, const void* gmem, bool valid) {
#if defined(__CUDACC__)
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
#else
  ::rrec_emu::cp_async(smem, gmem, 16, valid ? 16 : 0);
#endif
}
RREC_DEV void cp_async_commit() {
#if defined(__CUDACC__)
  asm volatile("cp.async.commit_group;\n" ::);
#else
  ::rrec_emu::cp_async_commit();
#endif
}
// Waits until at most N committed groups of this thread are still in flight.
template <int N>
RREC_DEV void cp_async_wait() {
#if defined(__CUDACC__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#else
  ::rrec_emu::cp_async_wait(N);
#endif
}

}  // namespace rrec_dev
