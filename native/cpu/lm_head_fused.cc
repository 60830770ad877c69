// The LM head's log-softmax fused with its product, for float activations (model_ops.h).
// The unfused path (lm_head.cc) writes a chunk's logits [rows, V] in full (16 MiB, 27 rows at
// Qwen2.5's V = 151,936, so W streams from memory once per 27 rows) and then takes exp in double
// per element. Here the vocabulary is cut into tiles of Vt columns and the rows into blocks of up
// to kRowBlock: one tile's logits [rows, Vt] (about 512 KiB, kept in L2) are multiplied with the
// same matmul_forward on W's rows [v0, v0 + Vt) (bf16 products when Mat::bf16Products asks, as
// every other product), soft-capped, and consumed at once:
//   forward: per (row, tile) the tile max m, s = sum exp(z - m) and q = sum exp(z - m) (z - m),
//            in float over 16 lanes (expVec, fast_exp.h: 1.4 ulp); tiles combined per row in
//            double, in tile order:  M = max m_j,  S = sum s_j e^(m_j - M),
//            Q = sum e^(m_j - M) (q_j + s_j (m_j - M));  lse = M + log S,  entropy = log S - Q / S.
//   backward: the tile's logits recomputed (bit-identical: same rows, same product), dz = g (1[v =
//            target] - p) cap'(z) written over them, then dhidden += dz W_tile (per-thread partial
//            sums, added in thread order) and dW_tile += dz^T hidden (each tile its own rows of dW).
// Row kernels (consumeRow, dlogitsRow) and run-time dispatch: the per-element work besides the
// products (soft-cap, max, exp, sums, dz) is written twice, as portable loops that GCC vectorises
// for the build's -march (fast_exp.h's expVec), and with AVX-512 intrinsics compiled for AVX-512
// whatever the -march (as matmul_avx512.cc), entered where matmul_avx512_compiled() says the CPU
// has AVX-512 (and RREC_MATMUL / matmul_avx512_set_enabled have not switched it off). The products
// already dispatch so (matmul_forward & co.), and the AVX-512 row kernels and the tiles' double
// combination are compiled with fp-contract off and explicit FMAs, so a prebuilt for x86-64-v2
// computes the same bits on an AVX-512 CPU as a -march=native build (test/kernels/lm-head.test.ts
// compares both paths with the float64 reference; the portable one differs from it in rounding).
// Threads: the tiles of a row block (and, for a small vocabulary of under kMinItems tiles, row
// sub-blocks of it) are split over the OpenMP team (static, contiguous), each item's products on
// its thread alone (nested regions run single-threaded). The forward's results do not depend on
// the thread count; the backward's dhidden (and dW with row sub-blocks) depend on it only through
// the order the per-thread partials are added (fixed for a fixed thread count: bit-reproducible).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/fast_exp.h"
#include "cpu/matmul_kernels.h"
#include "cpu/model_ops.h"
#include "rrec/buffer_pool.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_LM_HEAD_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, see matmul_avx512.cc
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define RREC_LM_HEAD_AVX512 0
#endif

namespace rrec::cpu {

namespace {

bool gFused = true;  // lm_head_fused_set_enabled

constexpr int kRowBlock = 256;        // rows per pass over W (W streams once per block)
constexpr int kTileFloats = 1 << 17;  // logits per tile: 512 KiB of float
constexpr int kLseTile = 4096;         // lm_head_rows_lse: columns per tile (<= 256 terms per float lane)
constexpr int kLanes = 16;            // partial sums per row (one zmm; fixed summation order)
// Work items per row block: at least this many (a small vocabulary has few tiles, so the rows are
// cut into sub-blocks of >= 32 rows too). A constant, not the thread count: results stay the same
// whatever the team size (the forward's; the backward's up to the partials' order).
constexpr int kMinItems = 8;

// Row sub-blocks for nT tiles of a block of R rows.
int subBlocks(int R, int nT) { return std::clamp((kMinItems + nT - 1) / nT, 1, std::max(1, R / 32)); }

// Columns per vocabulary tile for a block of R rows: ~kTileFloats logits, a multiple of 32 (the
// kernels' panel width), between 64 and 4096.
int tileCols(int R, int V) {
  int c = kTileFloats / std::max(1, R);
  c = std::clamp(c, 64, 4096) / 32 * 32;
  return std::min(c, std::max(32, (V + 31) / 32 * 32));
}

// W's rows [v0, v0 + rows) as a Mat of their own (same dtype and product precision).
Mat subRows(const Mat& w, int v0, int rows) {
  Mat s = w;
  s.data = static_cast<const char*>(w.data) + static_cast<size_t>(v0) * w.cols * dtypeSize(w.dtype);
  s.rows = rows;
  return s;
}

inline float capOf(float z, float cap) { return cap * tanhT(z / cap); }

struct TileStats {
  float m;
  double s, q;
};

// One row of a tile: soft-cap in place, then its (max, sum exp, sum exp * (z - max)).
TileStats consumeRow(float* z, int n, float cap) {
  if (cap > 0)
    for (int v = 0; v < n; v++) z[v] = capOf(z[v], cap);
  float mx[kLanes];
  for (int l = 0; l < kLanes; l++) mx[l] = -INFINITY;
  const int nv = n / kLanes * kLanes;
  for (int v = 0; v < nv; v += kLanes)
    for (int l = 0; l < kLanes; l++) mx[l] = z[v + l] > mx[l] ? z[v + l] : mx[l];
  for (int v = nv; v < n; v++) mx[v - nv] = z[v] > mx[v - nv] ? z[v] : mx[v - nv];
  float m = mx[0];
  for (int l = 1; l < kLanes; l++) m = mx[l] > m ? mx[l] : m;
  float s[kLanes] = {}, q[kLanes] = {};
  for (int v = 0; v < nv; v += kLanes)
    for (int l = 0; l < kLanes; l++) {
      const float d = z[v + l] - m, e = expVec(d);
      s[l] += e;
      q[l] += e * d;
    }
  for (int v = nv; v < n; v++) {
    const float d = z[v] - m, e = expVec(d);
    s[v - nv] += e;
    q[v - nv] += e * d;
  }
  TileStats t{m, 0, 0};
  for (int l = 0; l < kLanes; l++) {
    t.s += s[l];
    t.q += q[l];
  }
  return t;
}

// dz over one row of a tile, in place over its raw logits: g (1[v = tgt] - p) cap'(z), where
// p = exp(zc - lse) is taken as exp(zc - lf) * corr, lf = float(lse), corr = exp(lf - lse).
void dlogitsRow(float* z, int n, int tgt, float g, float lf, float corr, float cap) {
  const float rawT = tgt >= 0 ? z[tgt] : 0.f;
  if (cap > 0) {
    for (int v = 0; v < n; v++) {
      const float t = tanhT(z[v] / cap);
      z[v] = -g * (expVec(cap * t - lf) * corr) * (1.f - t * t);
    }
  } else {
    for (int v = 0; v < n; v++) z[v] = -g * (expVec(z[v] - lf) * corr);
  }
  if (tgt >= 0) {
    float zc = rawT, dcap = 1.f;
    if (cap > 0) {
      const float t = tanhT(rawT / cap);
      zc = cap * t;
      dcap = 1.f - t * t;
    }
    z[tgt] = g * (1.f - expVec(zc - lf) * corr) * dcap;
  }
}

}  // namespace

#if RREC_LM_HEAD_AVX512
// Everything to the pop is compiled for AVX-512 + FMA, with no contraction but the FMAs written.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#pragma clang fp contract(off)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
#pragma GCC optimize("fp-contract=off")
#endif

namespace {

#include "cpu/avx512_lanes.h"     // tailMask (inside this anonymous namespace: see the header)
#include "cpu/fast_exp_avx512.h"  // exp16, tanh16

// consumeRow with 16 lanes per zmm: lane l sums the elements v = l (mod 16) of the full vectors,
// then the tail's element nv + l (as the portable loops); lanes added in double in lane order.
TileStats consumeRow512(float* z, int n, float cap) {
  const __m512 vcap = _mm512_set1_ps(cap);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int v = 0; v < n; v += kLanes) {
    const __mmask16 k = tailMask(n - v);
    __m512 x = _mm512_maskz_loadu_ps(k, z + v);
    if (cap > 0) {
      x = _mm512_mul_ps(vcap, tanh16(_mm512_div_ps(x, vcap)));
      _mm512_mask_storeu_ps(z + v, k, x);
    }
    mx = _mm512_mask_max_ps(mx, k, mx, x);
  }
  const float m = _mm512_reduce_max_ps(mx);
  const __m512 vm = _mm512_set1_ps(m);
  __m512 s = _mm512_setzero_ps(), q = _mm512_setzero_ps();
  for (int v = 0; v < n; v += kLanes) {
    const __mmask16 k = tailMask(n - v);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, z + v), vm), e = exp16(d);
    s = _mm512_mask_add_ps(s, k, s, e);
    q = _mm512_mask_mov_ps(q, k, _mm512_fmadd_ps(e, d, q));
  }
  alignas(64) float sl[kLanes], ql[kLanes];
  _mm512_store_ps(sl, s);
  _mm512_store_ps(ql, q);
  TileStats t{m, 0, 0};
  for (int l = 0; l < kLanes; l++) {
    t.s += sl[l];
    t.q += ql[l];
  }
  return t;
}

// dlogitsRow with 16 lanes: dz = -g p cap'(z) everywhere, then the target's g (1 - p) cap'(z).
void dlogitsRow512(float* z, int n, int tgt, float g, float lf, float corr, float cap) {
  const float rawT = tgt >= 0 ? z[tgt] : 0.f;
  const __m512 one = _mm512_set1_ps(1.0f), vng = _mm512_set1_ps(-g), vlf = _mm512_set1_ps(lf), vcorr = _mm512_set1_ps(corr),
               vcap = _mm512_set1_ps(cap);
  for (int v = 0; v < n; v += kLanes) {
    const __mmask16 k = tailMask(n - v);
    const __m512 x = _mm512_maskz_loadu_ps(k, z + v);
    __m512 dz;
    if (cap > 0) {
      const __m512 t = tanh16(_mm512_div_ps(x, vcap));
      const __m512 p = _mm512_mul_ps(exp16(_mm512_fmsub_ps(vcap, t, vlf)), vcorr);
      dz = _mm512_mul_ps(_mm512_mul_ps(vng, p), _mm512_fnmadd_ps(t, t, one));
    } else {
      dz = _mm512_mul_ps(vng, _mm512_mul_ps(exp16(_mm512_sub_ps(x, vlf)), vcorr));
    }
    _mm512_mask_storeu_ps(z + v, k, dz);
  }
  if (tgt >= 0) {  // the same lane arithmetic on a vector of rawT
    __m512 zc = _mm512_set1_ps(rawT), dcap = one;
    if (cap > 0) {
      const __m512 t = tanh16(_mm512_div_ps(zc, vcap));
      zc = _mm512_mul_ps(vcap, t);
      dcap = _mm512_fnmadd_ps(t, t, one);
    }
    const __m512 p = _mm512_mul_ps(exp16(_mm512_sub_ps(zc, vlf)), vcorr);
    z[tgt] = _mm512_cvtss_f32(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(g), _mm512_sub_ps(one, p)), dcap));
  }
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif  // RREC_LM_HEAD_AVX512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")  // the tiles' combination: the same bits whatever -march
#endif
namespace {

// The row kernels this CPU runs: AVX-512 where matmul_avx512_compiled() (cpuid, RREC_MATMUL,
// matmul_avx512_set_enabled), else the portable loops.
bool rowKernels512() { return RREC_LM_HEAD_AVX512 && matmul_avx512_compiled(); }

TileStats consumeRowAny(bool avx512, float* z, int n, float cap) {
#if RREC_LM_HEAD_AVX512
  if (avx512) return consumeRow512(z, n, cap);
#endif
  return consumeRow(z, n, cap);
}

void dlogitsRowAny(bool avx512, float* z, int n, int tgt, float g, float lf, float corr, float cap) {
#if RREC_LM_HEAD_AVX512
  if (avx512) return dlogitsRow512(z, n, tgt, g, lf, corr, cap);
#endif
  dlogitsRow(z, n, tgt, g, lf, corr, cap);
}

struct RowStats {
  double lse, entropy;
};

// One row's tiles combined in double, in tile order:  M = max m_j,  S = sum s_j e^(m_j - M),
// Q = sum e^(m_j - M) (q_j + s_j (m_j - M));  lse = M + log S,  entropy = log S - Q / S.
RowStats combineTiles(const TileStats* st, int nT) {
  double M = -INFINITY;
  for (int j = 0; j < nT; j++) M = st[j].m > M ? static_cast<double>(st[j].m) : M;
  double S = 0, Q = 0;
  for (int j = 0; j < nT; j++) {
    const double dm = static_cast<double>(st[j].m) - M, e = std::exp(dm);
    S += st[j].s * e;
    Q += e * (st[j].q + st[j].s * dm);
  }
  return {M + std::log(S), std::log(S) - Q / S};
}

}  // namespace
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

bool lm_head_fused_set_enabled(bool on) {
  const bool prev = gFused;
  gFused = on;
  return prev;
}
bool lm_head_fused_enabled() { return gFused; }

void lm_head_logprobs_fused(double* logp, double* lseOut, double* entropy, const float* hidden, const Mat& w,
                            const int32_t* targets, int n, int C, double softcap) {
  const int V = w.rows;
  const float cap = static_cast<float>(softcap);
  const bool avx512 = rowKernels512();
  std::vector<TileStats> stats;
  std::vector<float> tgtLogit;
  for (int i0 = 0; i0 < n; i0 += kRowBlock) {
    const int R = std::min(kRowBlock, n - i0);
    const int Vt = tileCols(R, V), nT = (V + Vt - 1) / Vt;
    stats.assign(static_cast<size_t>(R) * nT, TileStats{});
    tgtLogit.assign(R, 0.f);
    const float* h = hidden + static_cast<size_t>(i0) * C;
    const int32_t* tg = targets + i0;
    const int S = subBlocks(R, nT), sb = (R + S - 1) / S;
#pragma omp parallel
    {
      Buf<float> z(static_cast<size_t>(sb) * Vt);
#pragma omp for schedule(static)
      for (int item = 0; item < S * nT; item++) {
        const int j = item % nT, r0 = item / nT * sb, r1 = std::min(R, r0 + sb);
        if (r0 >= r1) continue;
        const int v0 = j * Vt, vw = std::min(Vt, V - v0);
        matmul_forward(z.data(), h + static_cast<size_t>(r0) * C, subRows(w, v0, vw), static_cast<const float*>(nullptr), r1 - r0, false);
        for (int r = r0; r < r1; r++) {
          float* zr = &z[static_cast<size_t>(r - r0) * vw];
          stats[static_cast<size_t>(r) * nT + j] = consumeRowAny(avx512, zr, vw, cap);
          const int t = tg[r] - v0;
          if (t >= 0 && t < vw) tgtLogit[r] = zr[t];  // one tile holds each target: one writer
        }
      }
    }
    for (int r = 0; r < R; r++) {
      const RowStats rs = combineTiles(&stats[static_cast<size_t>(r) * nT], nT);
      lseOut[i0 + r] = rs.lse;
      logp[i0 + r] = static_cast<double>(tgtLogit[r]) - rs.lse;
      if (entropy) entropy[i0 + r] = rs.entropy;
    }
  }
}

void lm_head_rows_lse(float* logits, double* lse, int R, int V, double softcap) {
  const float cap = static_cast<float>(softcap);
  const bool avx512 = rowKernels512();
  const int nT = (V + kLseTile - 1) / kLseTile;
#pragma omp parallel
  {
    std::vector<TileStats> st(nT);
#pragma omp for schedule(static)
    for (int i = 0; i < R; i++) {
      float* z = logits + static_cast<size_t>(i) * V;
      for (int j = 0; j < nT; j++) st[j] = consumeRowAny(avx512, z + static_cast<size_t>(j) * kLseTile, std::min(kLseTile, V - j * kLseTile), cap);
      lse[i] = combineTiles(st.data(), nT).lse;
    }
  }
}

void lm_head_backward_fused(float* dhidden, float* dw, const float* hidden, const Mat& w, const int32_t* targets,
                            const double* lseIn, const double* dlogp, int n, int C, double softcap) {
  const int V = w.rows;
  const float cap = static_cast<float>(softcap);
  const bool avx512 = rowKernels512();
  // dW in bf16 products only where the forward's were (BF16-stored W), as the decoder's projections.
  const bool bf16Dw = w.bf16Products && w.dtype == DType::BF16;
  const int maxThreads = omp_in_parallel() ? 1 : std::max(1, omp_get_max_threads());
  Buf<float> partial, dwPartial;
  for (int i0 = 0; i0 < n; i0 += kRowBlock) {
    const int R = std::min(kRowBlock, n - i0);
    const int Vt = tileCols(R, V), nT = (V + Vt - 1) / Vt;
    const float* h = hidden + static_cast<size_t>(i0) * C;
    const int S = subBlocks(R, nT), sb = (R + S - 1) / S;
    const size_t part = static_cast<size_t>(R) * C;
    partial.assign(part * maxThreads, 0.f);
    // With row sub-blocks (a small vocabulary) two items write the same tile's rows of dW: each
    // thread then sums into its own copy of dW [V, C], added in thread order below.
    const bool dwPartials = dw && S > 1;
    const size_t dwSize = static_cast<size_t>(V) * C;
    if (dwPartials) dwPartial.assign(dwSize * maxThreads, 0.f);
    int used = 1;
#pragma omp parallel num_threads(maxThreads)
    {
      const int t = omp_get_thread_num();
#pragma omp single
      used = omp_get_num_threads();
      Buf<float> z(static_cast<size_t>(sb) * Vt);
      float* dh = &partial[part * t];
      float* dwT = dwPartials ? &dwPartial[dwSize * t] : dw;
#pragma omp for schedule(static)
      for (int item = 0; item < S * nT; item++) {
        const int j = item % nT, r0 = item / nT * sb, r1 = std::min(R, r0 + sb);
        if (r0 >= r1) continue;
        const int v0 = j * Vt, vw = std::min(Vt, V - v0);
        const Mat sub = subRows(w, v0, vw);
        const float* hs = h + static_cast<size_t>(r0) * C;
        matmul_forward(z.data(), hs, sub, static_cast<const float*>(nullptr), r1 - r0, false);
        for (int r = r0; r < r1; r++) {
          const double lse = lseIn[i0 + r];
          const float lf = static_cast<float>(lse);
          const float corr = static_cast<float>(std::exp(static_cast<double>(lf) - lse));
          const int tt = targets[i0 + r] - v0;
          dlogitsRowAny(avx512, &z[static_cast<size_t>(r - r0) * vw], vw, tt >= 0 && tt < vw ? tt : -1, static_cast<float>(dlogp[i0 + r]), lf,
                     corr, cap);
        }
        matmul_backward_input(dh + static_cast<size_t>(r0) * C, z.data(), sub, r1 - r0);
        if (dw)
          matmul_backward_weight(dwT + static_cast<size_t>(v0) * C, static_cast<float*>(nullptr), z.data(), hs, r1 - r0, C, vw, bf16Dw);
      }
    }
    float* out = dhidden + static_cast<size_t>(i0) * C;
    for (int t = 0; t < used; t++) {
      const float* p = &partial[part * t];
#pragma omp parallel for schedule(static) if (part >= (size_t(1) << 16))
      for (size_t k = 0; k < part; k++) out[k] += p[k];
    }
    if (dwPartials)
      for (int t = 0; t < used; t++) {
        const float* p = &dwPartial[dwSize * t];
#pragma omp parallel for schedule(static) if (dwSize >= (size_t(1) << 16))
        for (size_t k = 0; k < dwSize; k++) dw[k] += p[k];
      }
  }
}

}  // namespace rrec::cpu
