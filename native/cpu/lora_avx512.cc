// AVX-512 kernels for the products of a low-rank adapter (rank r = 1, 2, 4, 8 or 16), where one
// side of every product is only r wide. Through the general GEMM these run at a fraction of its
// speed: an r-column output fills 8 of a 32-column microkernel (r = 8), an r-deep reduction loads
// and stores every output tile for r multiply-adds, and the weight-gradient tiles are r wide. Here
// each product is one pass over its big operand (an activation or gradient, [M, K] float) along
// its rows, with the small one (W or P, r rows) in L1/L2.
//   project  O[M, r]  = alpha X[M, K] W[r, K]^T    (dxa = s dY B with W = B^T)
//   expand   Y[M, K] += alpha P[M, r] W[r, K]      (dX += dxa A)
//   grad     G[r, K] += alpha P[M, r]^T X[M, K]    (dA = dxa^T X; dB^T = s xa^T dY)
// Used by the LoRA backward (layer_ops.h). Measured 2026-11-25 on Qwen2.5-0.5B layer shapes
// (M = 1024, r = 8), each product alone and repeated: the six forward and backward products of the
// seven modules take 7.9 ms against 15.4 ms through the GEMM; in a whole layer step (operands cold,
// interleaved A/B) the backward gains 2-4 ms; the forward's two products measured no faster in
// place than the GEMM's (layer forward 53.5 vs 53.3 ms, 48.6 without the adapter), so the forward
// keeps the GEMM.
// Every output element is summed in a fixed order whatever the thread count (each is owned by
// one thread; reductions run along k or m in index order), so results do not depend on threads.
// Compiled for AVX-512 whatever the build's -march and entered only when the matmul kernels'
// cpuid check passed (matmul_avx512_compiled); otherwise the callers use the general products.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "matmul_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_LORA_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, see matmul_avx512.cc
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define RREC_LORA_AVX512 0
#endif

namespace rrec::cpu {

namespace {
bool gLoraKernelsOn = true;  // lora_kernels_set_enabled (tests compare both paths)
}  // namespace

bool lora_kernels_set_enabled(bool on) {
  const bool prev = gLoraKernelsOn;
  gLoraKernelsOn = on;
  return prev;
}

#if RREC_LORA_AVX512

bool lora_kernels_available(int r) {
  return gLoraKernelsOn && matmul_avx512_compiled() && (r == 1 || r == 2 || r == 4 || r == 8 || r == 16);
}

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
#endif

namespace {

#include "avx512_lanes.h"  // hsum, tailMask (inside this anonymous namespace: see the header)

// Work below this many multiply-adds stays on the calling thread (as in matmul_avx512.cc).
constexpr double kSerialWork = 1 << 20;
inline bool parallel(double work) { return work >= kSerialWork && !omp_in_parallel(); }

// O rows [m0, m0 + MR): MR x R accumulators over k, W rows reloaded per 16-wide step (from L1/L2).
template <int R, int MR>
void projectRows(float* O, const float* X, const float* W, int K, float alpha, int m0) {
  __m512 acc[MR][R];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < R; j++) acc[i][j] = _mm512_setzero_ps();
  const float* x = X + static_cast<size_t>(m0) * K;
  for (int k = 0; k < K; k += 16) {
    const __mmask16 mk = tailMask(K - k);
    __m512 xv[MR];
    for (int i = 0; i < MR; i++) xv[i] = _mm512_maskz_loadu_ps(mk, x + static_cast<size_t>(i) * K + k);
    for (int j = 0; j < R; j++) {
      const __m512 w = _mm512_maskz_loadu_ps(mk, W + static_cast<size_t>(j) * K + k);
      for (int i = 0; i < MR; i++) acc[i][j] = _mm512_fmadd_ps(xv[i], w, acc[i][j]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < R; j++) O[static_cast<size_t>(m0 + i) * R + j] = alpha * hsum(acc[i][j]);
}

template <int R>
void project(float* O, const float* X, const float* W, int M, int K, float alpha) {
  constexpr int MR = R <= 4 ? 6 : R <= 8 ? 3 : 1;  // MR x R accumulators <= 24 registers
  const int blocks = (M + MR - 1) / MR;
#pragma omp parallel for schedule(static) if (parallel(double(M) * K * R))
  for (int b = 0; b < blocks; b++) {
    const int m0 = b * MR;
    if (m0 + MR <= M) projectRows<R, MR>(O, X, W, K, alpha, m0);
    else
      for (int m = m0; m < M; m++) projectRows<R, 1>(O, X, W, K, alpha, m);
  }
}

// Y[m0 : m0 + MB, :] += alpha P[m0 : m0 + MB, :] W: Y read and written along its rows (row
// segments K floats apart are latency-bound when K is large), each vector of W (in L1/L2) loaded
// once per MB rows, P broadcast from memory.
template <int R, int MB>
void expandRows(float* Y, const float* P, const float* W, int m0, int K, float alpha) {
  float pa[MB][R];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < R; j++) pa[i][j] = alpha * P[static_cast<size_t>(m0 + i) * R + j];
  float* y = Y + static_cast<size_t>(m0) * K;
  for (int k = 0; k < K; k += 16) {
    const __mmask16 mk = tailMask(K - k);
    __m512 w[R];
    for (int j = 0; j < R; j++) w[j] = _mm512_maskz_loadu_ps(mk, W + static_cast<size_t>(j) * K + k);
    for (int i = 0; i < MB; i++) {
      float* yi = y + static_cast<size_t>(i) * K + k;
      __m512 acc = _mm512_maskz_loadu_ps(mk, yi);
      for (int j = 0; j < R; j++) acc = _mm512_fmadd_ps(_mm512_set1_ps(pa[i][j]), w[j], acc);
      _mm512_mask_storeu_ps(yi, mk, acc);
    }
  }
}

constexpr int kExpandRows = 8;
template <int R>
void expand(float* Y, const float* P, const float* W, int M, int K, float alpha) {
  const int blocks = (M + kExpandRows - 1) / kExpandRows;
#pragma omp parallel for schedule(static) if (parallel(double(M) * K * R))
  for (int b = 0; b < blocks; b++) {
    const int m0 = b * kExpandRows;
    if (m0 + kExpandRows <= M) expandRows<R, kExpandRows>(Y, P, W, m0, K, alpha);
    else
      for (int m = m0; m < M; m++) expandRows<R, 1>(Y, P, W, m, K, alpha);
  }
}

// G[:, c0:c1] += alpha sum_{m in [m0, m0 + MB)} P[m, :]^T X[m, c0:c1]: X read along its rows
// (column strips of X, K floats apart, are latency-bound: measured 6 GB/s at K = 4864), G's
// columns (in L1/L2) loaded and stored once per MB rows. P broadcast from memory.
template <int R, int MB>
void gradRows(float* G, const float* P, const float* X, int m0, int K, float alpha, int c0, int c1) {
  float pa[MB][R];
  for (int i = 0; i < MB; i++)
    for (int j = 0; j < R; j++) pa[i][j] = alpha * P[static_cast<size_t>(m0 + i) * R + j];
  const float* x = X + static_cast<size_t>(m0) * K;
  for (int k = c0; k < c1; k += 16) {
    const __mmask16 mk = tailMask(c1 - k);
    __m512 acc[R];
    for (int j = 0; j < R; j++) acc[j] = _mm512_maskz_loadu_ps(mk, G + static_cast<size_t>(j) * K + k);
    for (int i = 0; i < MB; i++) {
      const __m512 xv = _mm512_maskz_loadu_ps(mk, x + static_cast<size_t>(i) * K + k);
      for (int j = 0; j < R; j++) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(pa[i][j]), xv, acc[j]);
    }
    for (int j = 0; j < R; j++) _mm512_mask_storeu_ps(G + static_cast<size_t>(j) * K + k, mk, acc[j]);
  }
}

// Each thread owns a range of G's columns (whole 16-column vectors), so every element has one
// owner and one summation order (rows in order) whatever the thread count.
constexpr int kGradRows = 8;
template <int R>
void grad(float* G, const float* P, const float* X, int M, int K, float alpha) {
  const int vecs = (K + 15) / 16;
#pragma omp parallel if (parallel(double(M) * K * R))
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int c0 = static_cast<int>(static_cast<long>(vecs) * t / nt) * 16;
    const int c1 = std::min(K, static_cast<int>(static_cast<long>(vecs) * (t + 1) / nt) * 16);
    if (c1 > c0) {
      int m0 = 0;
      for (; m0 + kGradRows <= M; m0 += kGradRows) gradRows<R, kGradRows>(G, P, X, m0, K, alpha, c0, c1);
      for (; m0 < M; m0++) gradRows<R, 1>(G, P, X, m0, K, alpha, c0, c1);
    }
  }
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#define RREC_LORA_DISPATCH(fn, ...)                 \
  if (!lora_kernels_available(r)) return false;    \
  switch (r) {                                     \
    case 1: fn<1>(__VA_ARGS__); return true;       \
    case 2: fn<2>(__VA_ARGS__); return true;       \
    case 4: fn<4>(__VA_ARGS__); return true;       \
    case 8: fn<8>(__VA_ARGS__); return true;       \
    case 16: fn<16>(__VA_ARGS__); return true;     \
    default: return false;                         \
  }

bool lora_project_avx512(float* O, const float* X, const float* W, int M, int K, int r, float alpha) {
  RREC_LORA_DISPATCH(project, O, X, W, M, K, alpha)
}
bool lora_expand_avx512(float* Y, const float* P, const float* W, int M, int K, int r, float alpha) {
  RREC_LORA_DISPATCH(expand, Y, P, W, M, K, alpha)
}
bool lora_grad_avx512(float* G, const float* P, const float* X, int M, int K, int r, float alpha) {
  RREC_LORA_DISPATCH(grad, G, P, X, M, K, alpha)
}

#else  // not x86-64: the callers use the general products

bool lora_kernels_available(int) { return false; }
bool lora_project_avx512(float*, const float*, const float*, int, int, int, float) { return false; }
bool lora_expand_avx512(float*, const float*, const float*, int, int, int, float) { return false; }
bool lora_grad_avx512(float*, const float*, const float*, int, int, int, float) { return false; }

#endif

}  // namespace rrec::cpu
