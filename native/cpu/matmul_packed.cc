// Forward products against weights packed once, ahead of the calls (Mat::packed): the layout
// oneDNN's "any" weights format and vLLM's CPU path hold, so that no call pays for packing and the
// weight stream is contiguous whatever M is.
//
// Layout: W [N, K] cut into panels of kPanel = 48 output columns (the last zero-padded); panel p
// holds, for each reduction step s, kPanel consecutive elements (one per column n = 48p + j):
//   BF16 weights multiplied in bf16 (Mat::bf16Products): step s = pair of k (2s, 2s + 1), element
//        = one 32-bit word holding W[n][2s] (low half) and W[n][2s + 1], as vdpbf16ps reads them;
//        K even; K / 2 steps.
//   F32 weights: step s = k, element = W[n][k] as f32; K steps.
// So panel p is [steps][48] elements at p * steps * 48, 192 bytes per step.
//
// The microkernel holds an MR x (NP panels x 3 vectors) block of C in zmm registers, broadcasts one
// element of A (a bf16 pair of inp rounded to nearest even, or an f32) per row per step, and reads
// 3 vectors per panel per step. Decode-sized M takes several panels at a time (NP = 4 for one or
// two rows, 2 for three or four) so that enough independent accumulator chains hide the FMA
// latency; from five rows on, 8 x 3 tiles (24 accumulators; 11 loads per 24 FMAs).
//
// Summation order: every output is summed over steps in increasing order in blocks of kBlock = 256
// steps, each block from zero in a register, then C = block 0 + bias, C = block b + C. That is
// exactly what the unpacked packed-GEMM paths of matmul_avx512.cc do (gemmTile/gemmTileBf16 with
// kKC = 256), so for M >= 32 the results are bit-identical to the unpacked Mat, and they are the
// same for every M (a sequence decoded alone or in a batch gives the same bits).
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "matmul_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_PACKED_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, see matmul_avx512.cc
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define RREC_PACKED_AVX512 0
#endif

namespace rrec::cpu {

namespace {
constexpr int kPanel = 48;   // columns per panel (3 zmm of f32 / of 32-bit words)
constexpr int kBlock = 256;  // steps summed per register block (= matmul_avx512.cc's kKC)

// Steps of the reduction in the packed layout, or 0 when this Mat has no packed form.
int packedSteps(const Mat& w) {
  if (w.dtype == DType::BF16 && w.bf16Products) return w.cols % 2 == 0 ? w.cols / 2 : 0;
  if (w.dtype == DType::F32) return w.cols;
  return 0;
}
}  // namespace

bool matmul_packable(const Mat& w) {
  if (!matmul_avx512_compiled() || w.rows <= 0 || packedSteps(w) <= 0) return false;
  return w.dtype == DType::F32 || matmul_avx512_bf16();
}

size_t matmul_packed_bytes(const Mat& w) {
  if (!matmul_packable(w)) return 0;
  const size_t panels = (static_cast<size_t>(w.rows) + kPanel - 1) / kPanel;
  return panels * static_cast<size_t>(packedSteps(w)) * kPanel * 4;  // 4-byte elements either way
}

#if RREC_PACKED_AVX512
void packPanels512(uint32_t* out, const uint8_t* src, size_t rowBytes, int N, int S);
#endif

// Packing is plain index work (no arithmetic on the values: the words are W's bits), so it is
// portable code; it runs once per model load, and after each optimizer step in a full fine-tune.
bool matmul_pack(void* dst, const Mat& w) {
  if (!matmul_packable(w)) return false;
  const int N = w.rows, S = packedSteps(w);
  const int panels = (N + kPanel - 1) / kPanel;
  // Element (n, s) of W as a 32-bit word: the pair of bf16 at k = 2s, 2s + 1, or the f32 at k = s;
  // both are the 4 bytes at byte offset 4 s of row n (row n is 2K or 4K bytes long).
  const uint8_t* src = static_cast<const uint8_t*>(w.data);
  const size_t rowBytes = static_cast<size_t>(w.cols) * dtypeSize(w.dtype);
  uint32_t* out = static_cast<uint32_t*>(dst);
#if RREC_PACKED_AVX512
  packPanels512(out, src, rowBytes, N, S);  // matmul_packable: AVX-512 runs here
  return true;
#endif
  constexpr int kS = 64;  // steps per block: 48 rows x 256 bytes read, 64 x 192 bytes written
#pragma omp parallel for schedule(static) if (static_cast<double>(N) * S >= (1 << 18))
  for (int p = 0; p < panels; p++) {
    uint32_t* po = out + static_cast<size_t>(p) * S * kPanel;
    for (int s0 = 0; s0 < S; s0 += kS) {
      const int se = std::min(S, s0 + kS);
      for (int j = 0; j < kPanel; j++) {
        const int n = p * kPanel + j;
        if (n >= N) {
          for (int s = s0; s < se; s++) po[static_cast<size_t>(s) * kPanel + j] = 0;
          continue;
        }
        const uint8_t* row = src + static_cast<size_t>(n) * rowBytes;
        for (int s = s0; s < se; s++) std::memcpy(&po[static_cast<size_t>(s) * kPanel + j], row + 4 * static_cast<size_t>(s), 4);
      }
    }
  }
  return true;
}

#if RREC_PACKED_AVX512

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")
#endif

namespace {

#include "avx512_lanes.h"  // tailMask

// C[i*ldc + c] for rows i < MR and the NP*48 columns of NP consecutive panels (c < cols, the last
// panel's columns past `cols` not stored): (=|+=) sum over steps [0, sc) of A(i, s) B(s, c), where
// A(i, s) = A[i*lda + s] (a 32-bit element) and panel q's steps start at B + q*pstride.
// first: this is block 0 (C = acc + bias, + C when accumulate); else C = acc + C.
template <int MR, int NP, bool kBf16>
void packedTile(int sc, const uint32_t* A, long lda, const uint32_t* B, long pstride, float* C, long ldc, int cols,
                const float* bias, bool addC) {
  constexpr int NV = NP * 3;
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 12
    for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
  for (int s = 0; s < sc; s++) {
    __m512 b[NV];
#pragma GCC unroll 12
    for (int j = 0; j < NV; j++) b[j] = _mm512_load_ps(reinterpret_cast<const float*>(B + (j / 3) * pstride + (j % 3) * 16));
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      if constexpr (kBf16) {
        const __m512i a = _mm512_set1_epi32(static_cast<int>(A[i * lda]));
#pragma GCC unroll 12
        for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a, (__m512bh)_mm512_castps_si512(b[j]));
      } else {
        const __m512 a = _mm512_set1_ps(reinterpret_cast<const float*>(A)[i * lda]);
#pragma GCC unroll 12
        for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
      }
    }
    A += 1;
    B += kPanel;
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    float* c = C + i * ldc;
#pragma GCC unroll 12
    for (int j = 0; j < NV; j++) {
      const int c0 = (j / 3) * kPanel + (j % 3) * 16;
      if (c0 >= cols) continue;
      const __mmask16 m = tailMask(cols - c0);
      __m512 v = acc[i][j];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + c0));
      if (addC) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + c0));
      _mm512_mask_storeu_ps(c + c0, m, v);
    }
  }
}

using TileFn = void (*)(int, const uint32_t*, long, const uint32_t*, long, float*, long, int, const float*, bool);

template <bool kBf16>
TileFn tileFor(int mr, int np) {
  if (np == 4) return mr == 1 ? &packedTile<1, 4, kBf16> : &packedTile<2, 4, kBf16>;
  if (np == 2) return mr == 3 ? &packedTile<3, 2, kBf16> : &packedTile<4, 2, kBf16>;
  switch (mr) {
    case 1: return &packedTile<1, 1, kBf16>;
    case 2: return &packedTile<2, 1, kBf16>;
    case 3: return &packedTile<3, 1, kBf16>;
    case 4: return &packedTile<4, 1, kBf16>;
    case 5: return &packedTile<5, 1, kBf16>;
    case 6: return &packedTile<6, 1, kBf16>;
    case 7: return &packedTile<7, 1, kBf16>;
    default: return &packedTile<8, 1, kBf16>;
  }
}

}  // namespace

// matmul_pack's AVX-512 body: 16 rows x 16 steps at a time, transposed in registers (W's rows
// read 64 bytes at a time, the panel written a vector per step). Same words as the loop above.
void packPanels512(uint32_t* out, const uint8_t* src, size_t rowBytes, int N, int S) {
  const int panels = (N + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static) if (static_cast<double>(N) * S >= (1 << 18))
  for (int p = 0; p < panels; p++) {
    uint32_t* po = out + static_cast<size_t>(p) * S * kPanel;
    for (int s0 = 0; s0 < S; s0 += 16) {
      const __mmask16 m = tailMask(S - s0);
      const int re = std::min(16, S - s0);
      for (int j0 = 0; j0 < kPanel; j0 += 16) {
        __m512 v[16];
        for (int i = 0; i < 16; i++) {
          const int n = p * kPanel + j0 + i;
          v[i] = n < N ? _mm512_maskz_loadu_ps(m, src + static_cast<size_t>(n) * rowBytes + 4 * static_cast<size_t>(s0)) : _mm512_setzero_ps();
        }
        transpose16x16(v);  // v[r]: step s0 + r of columns j0 .. j0 + 15
        for (int r = 0; r < re; r++) _mm512_store_ps(reinterpret_cast<float*>(po + static_cast<size_t>(s0 + r) * kPanel + j0), v[r]);
      }
    }
  }
}

namespace {

// Thread-local buffer that only grows (fresh pages are slow here: docs/machine-limits.md).
struct Words {
  uint32_t* p = nullptr;
  size_t cap = 0;
  ~Words() { std::free(p); }
  uint32_t* get(size_t n) {
    if (n > cap) {
      std::free(p);
      const size_t bytes = (n * 4 + 4095) & ~size_t(4095);
      p = static_cast<uint32_t*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      cap = bytes / 4;
    }
    return p;
  }
};
thread_local Words tlsPairs;

// Rows [m0, m1) x panel groups [g0, g1) of the product (one thread's share).
template <bool kBf16>
void forwardPart(float* out, const uint32_t* A, long lda, const uint32_t* W, const float* bias, int N, int S, bool accumulate,
                 int m0, int m1, int g0, int g1, int np, int mr) {
  const int panels = (N + kPanel - 1) / kPanel;
  const long pstride = static_cast<long>(S) * kPanel;  // words per panel
  for (int g = g0; g < g1; g++) {
    const int p0 = g * np, pn = std::min(np, panels - p0);
    const int c0 = p0 * kPanel, cols = std::min(N - c0, pn * kPanel);
    for (int s0 = 0; s0 < S; s0 += kBlock) {
      const int sc = std::min(kBlock, S - s0);
      const bool first = s0 == 0;
      const uint32_t* b = W + static_cast<size_t>(p0) * pstride + static_cast<size_t>(s0) * kPanel;
      for (int r0 = m0; r0 < m1; r0 += mr) {
        const int rows = std::min(mr, m1 - r0);
        // A group of fewer panels than np (the last one) runs one panel at a time.
        const int tnp = pn == np ? np : 1;
        for (int q = 0; q < pn; q += tnp) {
          const TileFn fn = tileFor<kBf16>(rows, tnp);
          const int qc = std::min(cols - q * kPanel, tnp * kPanel);
          fn(sc, A + static_cast<size_t>(r0) * lda + s0, lda, b + static_cast<size_t>(q) * pstride, pstride,
             out + static_cast<size_t>(r0) * N + c0 + q * kPanel, N, qc, first ? (bias ? bias + c0 + q * kPanel : nullptr) : nullptr,
             !first || accumulate);
        }
      }
    }
  }
}

// From this many rows on, threads split the rows (each one every panel) instead of the panels:
// then each thread's rows of A stay in its own L2 and W's panels are read once per thread.
int gRowSplitM = [] {
  const char* e = std::getenv("RREC_PACKED_ROW_SPLIT_M");
  return e ? std::max(1, std::atoi(e)) : 1 << 30;
}();

template <bool kBf16>
void forwardPackedAll(float* out, const uint32_t* A, long lda, const uint32_t* W, const float* bias, int M, int N, int S,
                      bool accumulate) {
  const int panels = (N + kPanel - 1) / kPanel;
  // Row blocks: one block of M rows with several panels per tile for decode sizes, else 8-row
  // blocks (and one shorter last block) one panel at a time.
  const int np = M <= 2 ? 4 : M <= 4 ? 2 : 1;
  const int mr = np > 1 ? M : 8;
  const int groups = (panels + np - 1) / np;
  // Threads: products this small stay on the calling thread (a parallel region wakes every
  // worker; see matmul_avx512.cc's kSerialWork), except that decode sizes are bound by the weight
  // stream, which two cores read faster than one from 64 KiB of W on.
  const double work = double(M) * N * S;
  const double bytes = double(N) * S * 4;
  const int T = omp_in_parallel() || !(work >= (1 << 20) || bytes >= (1 << 16)) ? 1 : omp_get_max_threads();
  if (T > 1 && M >= gRowSplitM) {
    const int tiles = (M + mr - 1) / mr;
#pragma omp parallel num_threads(T)
    {
      const int t = omp_get_thread_num();
      const int per = (tiles + T - 1) / T;
      const int m0 = std::min(M, t * per * mr), m1 = std::min(M, (t + 1) * per * mr);
      if (m0 < m1) forwardPart<kBf16>(out, A, lda, W, bias, N, S, accumulate, m0, m1, 0, groups, np, mr);
    }
    return;
  }
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1 && groups > 1)
  for (int g = 0; g < groups; g++) forwardPart<kBf16>(out, A, lda, W, bias, N, S, accumulate, 0, M, g, g + 1, np, mr);
}

// inp rows rounded to bf16 (nearest even, vcvtne2ps2bf16 as everywhere else) as 32-bit pair words,
// lda words per row (K even).
const uint32_t* roundPairs(const float* inp, int M, int K, long* lda) {
  const int S = K / 2;
  const long ld = (S + 15) / 16 * 16;
  uint32_t* a = tlsPairs.get(static_cast<size_t>(M) * ld);
  for (int m = 0; m < M; m++) {
    const float* x = inp + static_cast<size_t>(m) * K;
    uint32_t* r = a + static_cast<size_t>(m) * ld;
    for (int k = 0; k < K; k += 32) {
      const int cnt = std::min(32, K - k);
      const __m512 lo = _mm512_maskz_loadu_ps(tailMask(cnt), x + k);
      const __m512 hi = _mm512_maskz_loadu_ps(tailMask(std::max(0, cnt - 16)), x + k + 16);
      _mm512_mask_storeu_epi32(r + k / 2, tailMask(cnt / 2), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
  *lda = ld;
  return a;
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool matmul_forward_packed(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate) {
  if (!w.packed || !matmul_packable(w)) return false;
  const int N = w.rows, S = packedSteps(w);
  if (M <= 0) return true;
  const uint32_t* W = static_cast<const uint32_t*>(w.packed);
  if (w.dtype == DType::BF16) {
    long lda = 0;
    const uint32_t* A = roundPairs(inp, M, w.cols, &lda);
    forwardPackedAll<true>(out, A, lda, W, bias, M, N, S, accumulate);
  } else {
    forwardPackedAll<false>(out, reinterpret_cast<const uint32_t*>(inp), w.cols, W, bias, M, N, S, accumulate);
  }
  return true;
}

#else  // not x86-64: no packed kernels (matmul_packable is false, so nothing is ever packed)

bool matmul_forward_packed(float*, const float*, const Mat&, const float*, int, bool) { return false; }

#endif

}  // namespace rrec::cpu
