// AVX2 + FMA path of the float matmuls, for x86-64 CPUs without AVX-512 (Intel client cores,
// AMD Zen 1-3): the portable loops in matmul.cc are dot products and row updates that a compiler
// vectorises poorly (measured 2026-11-25 on this machine, M = 512, K = 896, N = 4864, built for
// x86-64-v2 as a prebuilt binary is: 8-67 GFLOP/s), so a prebuilt binary on such a CPU would train
// at a small fraction of what it can. Measured the same way, these run at 171-203 GFLOP/s, 80-95%
// of the register-only ymm FMA peak (211-217 GFLOP/s: this CPU runs 256-bit FMAs at half its
// 512-bit rate); a 4 x 24 tile measured the same as 6 x 16. Here the three products run through one register-blocked GEMM:
// 6 x 16 tiles (12 ymm accumulators), operands packed into [kc][6] and [kc][16] panels (weights
// converted from F32/BF16/F16 to float while packing), blocks of kKC reductions x kNC columns x kMC
// rows for the caches; decode-sized M (< kSmallM rows) takes dot products straight from W instead.
//   forward         out[M, N] (=|+=) inp[M, K] W[N, K]^T (+ bias)
//   backward input  dinp[M, K] += dout[M, N] W[N, K]
//   backward weight dW[N, K] += dout[M, N]^T inp[M, K]; dbias[N] += column sums of dout
// Every output element is summed by one thread in a fixed order (threads split the output, never a
// reduction), so results do not depend on the thread count. Entered where cpuid reports AVX2 and
// FMA and the AVX-512 kernels do not run (or RREC_MATMUL=avx2 turns those off); compiled for AVX2
// whatever the build's -march. bf16Products is ignored here (no bf16 dot instruction): products are
// float, as in the portable loops.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "matmul_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_MATMUL_AVX2 1
#else
#define RREC_MATMUL_AVX2 0
#endif

namespace rrec::cpu {

#if RREC_MATMUL_AVX2

namespace {
bool envAllowsAvx2() {
  __builtin_cpu_init();  // cpuid before any __builtin_cpu_supports (this runs in a static initialiser)
  return matmul_override() != MatmulOverride::Generic;
}
const bool gCpuAvx2 = envAllowsAvx2() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      __builtin_cpu_supports("f16c");
}  // namespace

bool matmul_avx2_available() { return gCpuAvx2; }

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

namespace {

constexpr int kMR = 6;            // tile rows
constexpr int kNR = 16;           // tile columns (2 ymm)
constexpr int kKC = 256;          // reductions per block (a B panel: kKC x kNR floats = 16 KiB)
constexpr int kNC = 256;          // columns per packed B block (kKC x kNC floats = 256 KiB, L2)
constexpr int kMC = 96;           // rows per pass over a packed B block (multiple of kMR; its A in L2)
constexpr int kSmallM = 6;        // forward below this many rows: dot products straight from W
// Forward with M up to this many rows: W walked one row at a time, in address order, instead of 4
// interleaved rows (one ascending stream per thread; see gRowWalkM in matmul_avx512.cc). The same
// per-output summation order as the 4-row groups (a full group sums k in 8-lane steps, then the tail),
// but only where a group is full: for the last N % 4 rows the groups sum the whole row as a tail, so
// the walk does the same there.
int gRowWalkM = 2;
constexpr double kSerialWork = 1 << 20;  // multiply-adds below which a product stays on one thread

// n weights of a stored row, from element `at`, as float into dst.
void weightsToFloat(float* dst, const Mat& w, size_t at, int n) {
  switch (w.dtype) {
    case DType::F32: std::memcpy(dst, static_cast<const float*>(w.data) + at, sizeof(float) * n); return;
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + at;
      int i = 0;
      for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(u, 16)));
      }
      for (; i < n; i++) {
        const uint32_t u = static_cast<uint32_t>(s[i]) << 16;
        std::memcpy(dst + i, &u, 4);
      }
      return;
    }
    default: {  // F16
      const uint16_t* s = static_cast<const uint16_t*>(w.data) + at;
      int i = 0;
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
      for (; i < n; i++) dst[i] = _cvtsh_ss(s[i]);
      return;
    }
  }
}

// C[i*ldc + j] (=|+=) sum_{r<kc} A[r*kMR + i] B[r*kNR + j] (+ bias[j]) for i < mr, j < w. The full
// 6 x 16 tile is computed (packed panels are zero beyond mr and w); partial tiles are stored
// through a small buffer.
void tile(int kc, const float* A, const float* B, float* C, long ldc, int mr, int w, bool addC, const float* bias) {
  // every loop over acc is unrolled, so that acc stays in registers (else GCC keeps it on the stack)
  constexpr int NV = kNR / 8;
  __m256 acc[kMR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) acc[i][j] = _mm256_setzero_ps();
  for (int r = 0; r < kc; r++) {
    __m256 b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) b[j] = _mm256_loadu_ps(B + 8 * j);
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) {
      const __m256 a = _mm256_broadcast_ss(A + i);
#pragma GCC unroll 4
      for (int j = 0; j < NV; j++) acc[i][j] = _mm256_fmadd_ps(a, b[j], acc[i][j]);
    }
    A += kMR;
    B += kNR;
  }
  if (mr == kMR && w == kNR) {
#pragma GCC unroll 8
    for (int i = 0; i < kMR; i++) {
      float* c = C + i * ldc;
#pragma GCC unroll 4
      for (int j = 0; j < NV; j++) {
        __m256 v = acc[i][j];
        if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + 8 * j));
        if (addC) v = _mm256_add_ps(v, _mm256_loadu_ps(c + 8 * j));
        _mm256_storeu_ps(c + 8 * j, v);
      }
    }
    return;
  }
  alignas(32) float t[kMR][kNR];
#pragma GCC unroll 8
  for (int i = 0; i < kMR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) _mm256_store_ps(t[i] + 8 * j, acc[i][j]);
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < w; j++) {
      const float v = t[i][j] + (bias ? bias[j] : 0.0f);
      float& c = C[i * ldc + j];
      c = addC ? c + v : v;
    }
}

// Thread-local packing buffers that only grow.
struct Scratch {
  float* a = nullptr;
  float* b = nullptr;
  size_t na = 0, nb = 0;
  ~Scratch() {
    std::free(a);
    std::free(b);
  }
  static float* grow(float*& p, size_t& have, size_t need) {
    if (have < need) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, (need * sizeof(float) + 63) / 64 * 64));
      have = need;
    }
    return p;
  }
};
thread_local Scratch tls;

// C[m, c] (=|+=) sum_r A(m, r) B(r, c) over rows [m0, m1), columns [c0, c1), r < R, where
// packA(ap, m, mr, r0, rc) writes A rows m..m+mr, steps r0..r0+rc as [rc][kMR] (zero rows past mr)
// and packB(bp, c, w, r0, rc) writes B columns c..c+w as [rc][kNR] (zero columns past w).
// Loops: reduction block (kKC) -> pack all rows of A once -> column block (kNC) -> pack its B
// panels -> row block (kMC, its A in L2) -> B panel (L1) -> kMR rows. Each A element is packed
// once per reduction block and each B element once.
template <class PackA, class PackB>
void gemm(float* C, long ldc, int m0, int m1, int c0, int c1, int R, PackA&& packA, PackB&& packB, bool accumulate,
          const float* bias) {
  const int chunks = (m1 - m0 + kMR - 1) / kMR;
  float* ap = Scratch::grow(tls.a, tls.na, static_cast<size_t>(chunks) * kMR * kKC);
  float* bp = Scratch::grow(tls.b, tls.nb, static_cast<size_t>(kKC) * kNC);
  for (int r0 = 0; r0 < R; r0 += kKC) {
    const int rc = std::min(kKC, R - r0);
    const bool addC = accumulate || r0 > 0;
    for (int i = 0; i < chunks; i++) packA(ap + static_cast<size_t>(i) * rc * kMR, m0 + i * kMR, std::min(kMR, m1 - m0 - i * kMR), r0, rc);
    for (int nc0 = c0; nc0 < c1; nc0 += kNC) {
      const int ncw = std::min(kNC, c1 - nc0);
      for (int p = 0; p * kNR < ncw; p++) packB(bp + static_cast<size_t>(p) * rc * kNR, nc0 + p * kNR, std::min(kNR, ncw - p * kNR), r0, rc);
      for (int mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int mcw = std::min(kMC, m1 - mc0);
        const float* apc = ap + static_cast<size_t>((mc0 - m0) / kMR) * rc * kMR;
        for (int p = 0; p * kNR < ncw; p++)
          for (int i = 0; i * kMR < mcw; i++) {
            const int col = nc0 + p * kNR;
            tile(rc, apc + static_cast<size_t>(i) * rc * kMR, bp + static_cast<size_t>(p) * rc * kNR,
                 C + static_cast<size_t>(mc0 + i * kMR) * ldc + col, ldc, std::min(kMR, mcw - i * kMR),
                 std::min(kNR, ncw - p * kNR), addC, r0 == 0 && bias ? bias + col : nullptr);
          }
      }
    }
  }
}

// Runs fn(r0, r1, c0, c1) on each thread's part of a rows x cols output: rows split when there are
// enough of them, else columns (bounds multiples of kMR / kNR); one thread for small work or inside
// another parallel region (attention's per-head products).
template <class F>
void forEachPart(int rows, int cols, double work, F&& fn) {
  const int T = work < kSerialWork || omp_in_parallel() ? 1 : std::max(1, omp_get_max_threads());
  const bool byRows = rows >= 4 * kMR * T || cols < 2 * kNR * T;
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int quant = byRows ? kMR : kNR, total = byRows ? rows : cols;
    const int blocks = (total + quant - 1) / quant, per = (blocks + n - 1) / n;
    const int b = std::min(total, t * per * quant), e = std::min(total, (t + 1) * per * quant);
    if (b < e) byRows ? fn(b, e, 0, cols) : fn(0, rows, b, e);
  }
}

// ap[r*kMR + i] = src[(m + i)*lds + r0 + r]: rows of a row-major matrix.
void packRows(float* ap, const float* src, long lds, int m, int mr, int r0, int rc) {
  for (int r = 0; r < rc; r++)
    for (int i = 0; i < kMR; i++) ap[r * kMR + i] = i < mr ? src[(m + i) * lds + r0 + r] : 0.0f;
}
// bp[r*kNR + j] = src[(r0 + r)*lds + c + j]: column strips of a row-major float matrix.
void packStrips(float* bp, const float* src, long lds, int c, int w, int r0, int rc) {
  for (int r = 0; r < rc; r++) {
    float* d = bp + r * kNR;
    const float* s = src + (r0 + r) * lds + c;
    for (int j = 0; j < kNR; j++) d[j] = j < w ? s[j] : 0.0f;
  }
}

void forward(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate) {
  const int N = w.rows, K = w.cols;
  forEachPart(M, N, double(M) * N * K, [&](int m0, int m1, int n0, int n1) {
    gemm(
        out, N, m0, m1, n0, n1, K, [&](float* ap, int m, int mr, int r0, int rc) { packRows(ap, inp, K, m, mr, r0, rc); },
        [&](float* bp, int n, int cw, int r0, int rc) {  // bp[r*kNR + j] = W[n + j, r0 + r]: rows of W, transposed
          float row[kKC];
          for (int j = 0; j < kNR; j++) {
            if (j < cw) weightsToFloat(row, w, static_cast<size_t>(n + j) * K + r0, rc);
            for (int r = 0; r < rc; r++) bp[r * kNR + j] = j < cw ? row[r] : 0.0f;
          }
        },
        accumulate, bias);
  });
}

// 8 weights from element `at` of W (dtype DT) as float; one weight.
template <DType DT>
inline __m256 load8(const void* w, size_t at) {
  const uint16_t* h = static_cast<const uint16_t*>(w) + at;
  if constexpr (DT == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(w) + at);
  else if constexpr (DT == DType::BF16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))), 16));
  else return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}
template <DType DT>
inline float load1(const void* w, size_t at) {
  if constexpr (DT == DType::F32) return static_cast<const float*>(w)[at];
  else if constexpr (DT == DType::BF16) {
    const uint32_t u = static_cast<uint32_t>(static_cast<const uint16_t*>(w)[at]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else return _cvtsh_ss(static_cast<const uint16_t*>(w)[at]);
}
inline float hsum8(__m256 s) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// Decode-sized forward: dot products of each input row with 4 rows of W at a time, W converted to
// float in registers (one pass over W's bytes per input row; the 4 rows stay in L1/L2 across the
// M <= 5 input rows), threads splitting W's rows.
template <DType DT>
void forwardDot(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate) {
  const int N = w.rows, K = w.cols;
  const int T = double(M) * N * K < kSerialWork || omp_in_parallel() ? 1 : std::max(1, omp_get_max_threads());
  if (M <= gRowWalkM) {  // one row of W at a time, in address order (see gRowWalkM)
#pragma omp parallel for schedule(static) num_threads(T)
    for (int n = 0; n < N; n++)
      for (int m = 0; m < M; m++) {
        const float* x = inp + static_cast<size_t>(m) * K;
        __m256 acc = _mm256_setzero_ps();
        int k = 0;
        if (n < N / 4 * 4)  // rows of a full group of 4
          for (; k + 8 <= K; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(x + k), load8<DT>(w.data, static_cast<size_t>(n) * K + k), acc);
        float v = hsum8(acc);
        for (int kk = k; kk < K; kk++) v += x[kk] * load1<DT>(w.data, static_cast<size_t>(n) * K + kk);
        v += bias ? bias[n] : 0.0f;
        float& o = out[static_cast<size_t>(m) * N + n];
        o = accumulate ? o + v : v;
      }
    return;
  }
  const int groups = (N + 3) / 4;
#pragma omp parallel for schedule(static) num_threads(T)
  for (int g = 0; g < groups; g++) {
    const int n0 = 4 * g, nr = std::min(4, N - n0);
    for (int m = 0; m < M; m++) {
      const float* x = inp + static_cast<size_t>(m) * K;
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      int k = 0;
      if (nr == 4) {
        for (; k + 8 <= K; k += 8) {
          const __m256 xv = _mm256_loadu_ps(x + k);
#pragma GCC unroll 4
          for (int j = 0; j < 4; j++) acc[j] = _mm256_fmadd_ps(xv, load8<DT>(w.data, static_cast<size_t>(n0 + j) * K + k), acc[j]);
        }
      }
      for (int j = 0; j < nr; j++) {
        float v = hsum8(acc[j]);
        for (int kk = k; kk < K; kk++) v += x[kk] * load1<DT>(w.data, static_cast<size_t>(n0 + j) * K + kk);
        v += bias ? bias[n0 + j] : 0.0f;
        float& o = out[static_cast<size_t>(m) * N + n0 + j];
        o = accumulate ? o + v : v;
      }
    }
  }
}

void backwardInput(float* dinp, const float* dout, const Mat& w, int M) {
  const int N = w.rows, K = w.cols;
  forEachPart(M, K, double(M) * N * K, [&](int m0, int m1, int k0, int k1) {
    gemm(
        dinp, K, m0, m1, k0, k1, N, [&](float* ap, int m, int mr, int r0, int rc) { packRows(ap, dout, N, m, mr, r0, rc); },
        [&](float* bp, int k, int cw, int r0, int rc) {  // bp[r*kNR + j] = W[r0 + r, k + j]: row strips of W
          for (int r = 0; r < rc; r++) {
            float* d = bp + r * kNR;
            weightsToFloat(d, w, static_cast<size_t>(r0 + r) * K + k, cw);
            for (int j = cw; j < kNR; j++) d[j] = 0.0f;
          }
        },
        true, nullptr);
  });
}

void backwardWeight(float* dW, const float* dout, const float* inp, int M, int K, int N) {
  forEachPart(N, K, double(M) * N * K, [&](int n0, int n1, int k0, int k1) {
    gemm(
        dW, K, n0, n1, k0, k1, M,
        [&](float* ap, int n, int mr, int r0, int rc) {  // ap[r*kMR + i] = dout[r0 + r, n + i]: dout^T
          for (int r = 0; r < rc; r++)
            for (int i = 0; i < kMR; i++) ap[r * kMR + i] = i < mr ? dout[static_cast<size_t>(r0 + r) * N + n + i] : 0.0f;
        },
        [&](float* bp, int k, int cw, int r0, int rc) { packStrips(bp, inp, K, k, cw, r0, rc); }, true, nullptr);
  });
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

// The entry points run on any x86-64 CPU: each checks gCpuAvx2 before entering a kernel.
namespace {
bool floatWeights(const Mat& w) { return w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16; }
}  // namespace

int matmul_avx2_set_row_walk_m(int m) {
  const int prev = gRowWalkM;
  gRowWalkM = std::clamp(m, 0, kSmallM - 1);
  return prev;
}

bool matmul_forward_avx2(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate) {
  if (!gCpuAvx2 || !floatWeights(w) || w.cols <= 0) return false;
  if (M <= 0 || w.rows <= 0) return true;
  if (M < kSmallM) {
    if (w.dtype == DType::F32) forwardDot<DType::F32>(out, inp, w, bias, M, accumulate);
    else if (w.dtype == DType::BF16) forwardDot<DType::BF16>(out, inp, w, bias, M, accumulate);
    else forwardDot<DType::F16>(out, inp, w, bias, M, accumulate);
  }
  else forward(out, inp, w, bias, M, accumulate);
  return true;
}

bool matmul_backward_input_avx2(float* dinp, const float* dout, const Mat& w, int M) {
  if (!gCpuAvx2 || !floatWeights(w)) return false;
  if (M <= 0 || w.rows <= 0 || w.cols <= 0) return true;
  backwardInput(dinp, dout, w, M);
  return true;
}

bool matmul_backward_weight_avx2(float* dweight, float* dbias, const float* dout, const float* inp, int M, int K, int N) {
  if (!gCpuAvx2) return false;
  if (M <= 0 || N <= 0) return true;
  if (dweight && K > 0) backwardWeight(dweight, dout, inp, M, K, N);
  if (dbias)
    for (int m = 0; m < M; m++)  // rows in order: the same sums on any thread count
      for (int n = 0; n < N; n++) dbias[n] += dout[static_cast<size_t>(m) * N + n];
  return true;
}

#else  // not x86-64: the portable loops

bool matmul_avx2_available() { return false; }
int matmul_avx2_set_row_walk_m(int) { return 0; }
bool matmul_forward_avx2(float*, const float*, const Mat&, const float*, int, bool) { return false; }
bool matmul_backward_input_avx2(float*, const float*, const Mat&, int) { return false; }
bool matmul_backward_weight_avx2(float*, float*, const float*, const float*, int, int, int) { return false; }

#endif

}  // namespace rrec::cpu
