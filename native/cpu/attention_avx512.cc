// AVX-512 path of the float attention (attention.cc has the algorithm, the generic loops and the
// float64 build). Same blocks of kQueryBlock query rows, same log-sum-exp bookkeeping; what
// differs is how each block's five products run. Through matmul_forward/_backward_* they ran at
// ~100 GFLOP/s on a Qwen2.5-0.5B layer (4 x 256 tokens, 14 heads, head dim 64: 15.1 ms of a
// 130 ms layer step, measured 2026-11-25): every call packed both operands for a product of
// 64 x 64 x <= 256. Here the operands are already laid out for one register-blocked kernel,
//   C[i, c] (=|+=) sum_r A(i, r) B(r, c),  A(i, r) = A[i ai + r ar] broadcast, B rows contiguous,
// so nothing is packed: K and V are transposed once per head ([D, L]) for the q.k and dO.v
// products, and P, dS, Q, dO serve as A or B in place. Each row tile also skips the keys no row
// of it can see (causal, sliding window), which the general products computed and masked.
// Scores, softmax and its derivative run 16 keys per instruction with an exp written like
// fast_exp.h's expVec (Cephes range reduction and polynomial).
//
// Thread split and summation order are the generic path's (parallel over (sequence, head) forward,
// (sequence, kv head) backward; each output element summed by one thread in index order), so
// results do not depend on the thread count. Compiled for AVX-512 whatever the build's -march and
// entered only when the matmul kernels' cpuid check passed (matmul_avx512_compiled).
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "matmul_kernels.h"
#include "ops.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_ATTENTION_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC bug 105593, see matmul_avx512.cc
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define RREC_ATTENTION_AVX512 0
#endif

namespace rrec::cpu {

namespace {
bool gAttentionKernelsOn = true;  // attention_kernels_set_enabled (tests compare both paths)
}  // namespace

bool attention_kernels_set_enabled(bool on) {
  const bool prev = gAttentionKernelsOn;
  gAttentionKernelsOn = on;
  return prev;
}

#if RREC_ATTENTION_AVX512

bool attention_kernels_available() { return gAttentionKernelsOn && matmul_avx512_compiled(); }

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,fma")
#endif

namespace {

#include "attention_heads.h"  // gatherHead, scatterAddHead, scratch (as avx512_lanes.h)
#include "avx512_lanes.h"     // hsum, tailMask (inside this anonymous namespace: see the header)

constexpr int kQueryBlock = 64;  // as attention.cc: query rows per block
constexpr int kMR = 6;           // tile rows (accumulators: kMR x kNV zmm = 24)
constexpr int kNV = 4;           // tile columns / 16

// ---- the product kernel
// C[i*ldc + c] (=|+=) sum_{r in [r0, r1)} A[i*ai + r*ar] B[r*ldb + c] for i < MR, c < 16 NV (the
// last vector masked by `last`). A(i, r) broadcast from memory, B's row r loaded NV vectors wide.
template <int MR, int NV>
void tile(int r0, int r1, const float* A, long ai, long ar, const float* B, long ldb, float* C, long ldc,
          __mmask16 last, bool addC) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
  for (int r = r0; r < r1; r++) {
    const float* b = B + static_cast<long>(r) * ldb;
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) bv[j] = j == NV - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * j) : _mm512_loadu_ps(b + 16 * j);
    const float* a = A + static_cast<long>(r) * ar;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const __m512 av = _mm512_set1_ps(a[i * ai]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) {
    float* c = C + i * ldc;
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) {
      const __mmask16 m = j == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      __m512 v = acc[i][j];
      if (addC) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + 16 * j));
      _mm512_mask_storeu_ps(c + 16 * j, m, v);
    }
  }
}

using TileFn = void (*)(int, int, const float*, long, long, const float*, long, float*, long, __mmask16, bool);
template <size_t... I>
constexpr std::array<TileFn, sizeof...(I)> makeTiles(std::index_sequence<I...>) {
  return {&tile<static_cast<int>(I / kNV) + 1, static_cast<int>(I % kNV) + 1>...};
}

// C[rows, cols] (=|+=) A B with A(i, r) = A[i*ai + r*ar], B(r, c) = B[r*ldb + c]. Row tile [i, i + mr)
// computes columns [0, colEnd(i, i + mr)) over reductions [red(i, i + mr).first, .second): callers
// leave out what is known to be zero (masked keys), and must not read the columns left out. With
// addC an empty reduction leaves the tile as it is; without, it writes zeros.
template <class ColEnd, class Red>
void product(int rows, const float* A, long ai, long ar, const float* B, long ldb, float* C, long ldc, bool addC,
             ColEnd colEnd, Red red) {
  static constexpr auto tiles = makeTiles(std::make_index_sequence<kMR * kNV>{});
  for (int i = 0; i < rows; i += kMR) {
    const int mr = std::min(kMR, rows - i);
    const int ce = colEnd(i, i + mr);
    const auto [r0, r1] = red(i, i + mr);
    if (addC && r0 >= r1) continue;
    for (int c = 0; c < ce; c += 16 * kNV) {
      const int w = std::min(16 * kNV, ce - c), nv = (w + 15) / 16;
      tiles[(mr - 1) * kNV + (nv - 1)](r0, r1, A + static_cast<long>(i) * ai, ai, ar, B + c, ldb,
                                       C + static_cast<long>(i) * ldc + c, ldc, tailMask(w - 16 * (nv - 1)), addC);
    }
  }
}

// ---- vector exp and tanh (fast_exp.h's expVec and tanhT, 16 lanes)
inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
  const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}
inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(exp16(_mm512_add_ps(x, x)), one)));
}

// Keys [ja, jb) of the block's key range [lo, ...) that query i sees (causal, window).
struct Visible {
  int ja, jb;
};
inline Visible visibleKeys(int i, int lo, int window) {
  return {(window > 0 ? std::max(lo, i - window + 1) : lo) - lo, i + 1 - lo};
}

// Scores row -> probabilities in place: a = cap(raw scale), p = exp(a - max) / sum over [ja, jb),
// 0 elsewhere in [0, nk). Returns the row's log-sum-exp.
float softmaxRow(float* row, Visible v, int nk, float scale, float softcap) {
  const __m512 vs = _mm512_set1_ps(scale), vc = _mm512_set1_ps(softcap), vic = _mm512_set1_ps(softcap > 0 ? 1.0f / softcap : 0.0f);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int j = v.ja; j < v.jb; j += 16) {
    const __mmask16 m = tailMask(v.jb - j);
    __m512 a = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), vs);
    if (softcap > 0) a = _mm512_mul_ps(vc, tanh16(_mm512_mul_ps(a, vic)));
    _mm512_mask_storeu_ps(row + j, m, a);
    mx = _mm512_mask_max_ps(mx, m, mx, a);
  }
  const float rowMax = _mm512_reduce_max_ps(mx);
  const __m512 vm = _mm512_set1_ps(rowMax);
  __m512 sum = _mm512_setzero_ps();
  for (int j = v.ja; j < v.jb; j += 16) {
    const __mmask16 m = tailMask(v.jb - j);
    const __m512 p = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, row + j), vm)));
    _mm512_mask_storeu_ps(row + j, m, p);
    sum = _mm512_add_ps(sum, p);
  }
  const float total = hsum(sum);
  const __m512 inv = _mm512_set1_ps(1.0f / total);
  for (int j = v.ja; j < v.jb; j += 16) {
    const __mmask16 m = tailMask(v.jb - j);
    _mm512_mask_storeu_ps(row + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, row + j), inv));
  }
  std::fill(row, row + v.ja, 0.0f);
  std::fill(row + v.jb, row + nk, 0.0f);
  return rowMax + std::log(total);
}

// Backward of one row, over [ja, jb): p = exp(cap(raw scale) - lse) into prow; with a cap, raw
// becomes t = tanh(raw scale / cap) for the cap's derivative 1 - t^2; drow goes from dP to
// dS = p (dp - sum p dp) cap' scale. prow and drow are 0 elsewhere in [0, nk).
void softmaxBackwardRow(float* raw, float* prow, float* drow, Visible v, int nk, float lse, float scale, float softcap) {
  const __m512 vs = _mm512_set1_ps(scale), vc = _mm512_set1_ps(softcap), vic = _mm512_set1_ps(softcap > 0 ? 1.0f / softcap : 0.0f);
  const __m512 vl = _mm512_set1_ps(lse), one = _mm512_set1_ps(1.0f);
  __m512 pdp = _mm512_setzero_ps();
  for (int j = v.ja; j < v.jb; j += 16) {
    const __mmask16 m = tailMask(v.jb - j);
    __m512 c = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, raw + j), vs);
    if (softcap > 0) {
      const __m512 t = tanh16(_mm512_mul_ps(c, vic));
      _mm512_mask_storeu_ps(raw + j, m, t);
      c = _mm512_mul_ps(vc, t);
    }
    const __m512 p = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(c, vl)));
    _mm512_mask_storeu_ps(prow + j, m, p);
    pdp = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m, drow + j), pdp);
  }
  const __m512 vpdp = _mm512_set1_ps(hsum(pdp));
  for (int j = v.ja; j < v.jb; j += 16) {
    const __mmask16 m = tailMask(v.jb - j);
    const __m512 p = _mm512_maskz_loadu_ps(m, prow + j);
    __m512 da = _mm512_mul_ps(p, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, drow + j), vpdp));
    if (softcap > 0) {
      const __m512 t = _mm512_maskz_loadu_ps(m, raw + j);
      da = _mm512_mul_ps(da, _mm512_fnmadd_ps(t, t, one));
    }
    _mm512_mask_storeu_ps(drow + j, m, _mm512_mul_ps(da, vs));
  }
  std::fill(prow, prow + v.ja, 0.0f);
  std::fill(prow + v.jb, prow + nk, 0.0f);
  std::fill(drow, drow + v.ja, 0.0f);
  std::fill(drow + v.jb, drow + nk, 0.0f);
}

// dst[d, i] = x[i * ld + d]: a head transposed to [D, L] (d outer: contiguous stores)
void gatherHeadT(float* dst, const float* x, size_t ld, int L, int D) {
  for (int d = 0; d < D; d++) {
    float* o = dst + static_cast<size_t>(d) * L;
    for (int i = 0; i < L; i++) o[i] = x[i * ld + d];
  }
}
struct Range {
  int first, second;
};

// One block of query rows [i0, i0 + ib) against keys [lo, lo + nk) of a sequence: which key columns
// a row tile [a, b) (block rows) can see, and which query rows see some key of a key tile [a, b).
struct Block {
  int i0, ib, lo, nk, window;
  int keyEnd(int, int b) const { return std::min(nk, i0 + b - lo); }  // columns past it are masked for every row
  Range keysOfRows(int a, int b) const { return {visibleKeys(i0 + a, lo, window).ja, std::min(nk, visibleKeys(i0 + b - 1, lo, window).jb)}; }
  Range rowsOfKeys(int a, int b) const {
    const int r0 = std::clamp(lo + a - i0, 0, ib);
    const int r1 = window > 0 ? std::clamp(lo + b - 1 + window - i0, r0, ib) : ib;
    return {r0, r1};
  }
};

// Which (forward call, sequence, kv head) a thread's gathered K^T and V belong to.
struct KvKey {
  uint64_t call = 0;
  int s = -1, kh = -1;
  bool operator==(const KvKey& o) const { return call == o.call && s == o.s && kh == o.kh; }
};
std::atomic<uint64_t> gForwardCalls{0};

void forwardKernel(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* seqOffsets,
                   int S, int Hq, int Hk, int D, double scale, double softcap, int window) {
  const uint64_t call = ++gForwardCalls;  // never 0, so a fresh thread's key matches no call
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
  const float sc = static_cast<float>(scale), cap = static_cast<float>(softcap);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int h = 0; h < Hq; h++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      if (L <= 0) continue;
      const int kh = h / group;
      static thread_local std::vector<float> bufQ, bufKT, bufV, bufO, bufS;
      // K^T and V of the kv head this thread gathered last: the heads of a GQA group share them,
      // and consecutive items of a thread are mostly heads of one group (transposing K per query
      // head cost ~0.9 ms of a 3.8 ms forward at 4 x 256 tokens, 14 heads).
      static thread_local KvKey have;
      const size_t LD = static_cast<size_t>(L) * D;
      float* qh = scratch(bufQ, LD);
      float* kt = scratch(bufKT, LD);
      float* vh = scratch(bufV, LD);
      float* oh = scratch(bufO, LD);
      float* sm = scratch(bufS, static_cast<size_t>(kQueryBlock) * L);
      gatherHead(qh, q + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
      const KvKey want{call, s, kh};
      if (!(have == want)) {
        gatherHeadT(kt, k + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
        gatherHead(vh, v + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
        have = want;
      }
      for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
        const int ib = std::min(L, i0 + kQueryBlock) - i0;
        const int lo = window > 0 ? std::max(0, i0 - window + 1) : 0;
        const Block bk{i0, ib, lo, i0 + ib - lo, window};
        const auto allD = [&](int, int) { return Range{0, D}; };
        const auto colsD = [&](int, int) { return D; };
        // S = Q_b K^T, the keys each row tile can see
        product(ib, qh + static_cast<size_t>(i0) * D, D, 1, kt + lo, L, sm, bk.nk, false,
                [&](int a, int b) { return bk.keyEnd(a, b); }, allD);
        for (int r = 0; r < ib; r++)
          lse[static_cast<size_t>(start + i0 + r) * Hq + h] =
              softmaxRow(sm + static_cast<size_t>(r) * bk.nk, visibleKeys(i0 + r, lo, window), bk.nk, sc, cap);
        // O_b = P V
        product(ib, sm, bk.nk, 1, vh + static_cast<size_t>(lo) * D, D, oh + static_cast<size_t>(i0) * D, D, false, colsD,
                [&](int a, int b) { return bk.keysOfRows(a, b); });
      }
      float* o = out + start * qStride + static_cast<size_t>(h) * D;
      for (int i = 0; i < L; i++) std::memcpy(o + i * qStride, oh + static_cast<size_t>(i) * D, sizeof(float) * D);
    }
  }
}

void backwardKernel(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                               const float* k, const float* v, const int32_t* seqOffsets, int S, int Hq, int Hk, int D,
                               double scale, double softcap, int window) {
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
  const float sc = static_cast<float>(scale), cap = static_cast<float>(softcap);
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int kh = 0; kh < Hk; kh++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      if (L <= 0) continue;
      static thread_local std::vector<float> bufK, bufKT, bufVT, bufDK, bufDV, bufQ, bufDO, bufDQ, bufDP, bufP, bufRaw;
      const size_t LD = static_cast<size_t>(L) * D, BL = static_cast<size_t>(kQueryBlock) * L;
      float* khd = scratch(bufK, LD);
      float* kt = scratch(bufKT, LD);
      float* vt = scratch(bufVT, LD);
      float* dkh = scratch(bufDK, LD);
      float* dvh = scratch(bufDV, LD);
      float* qh = scratch(bufQ, LD);
      float* doh = scratch(bufDO, LD);
      float* dqh = scratch(bufDQ, LD);
      float* dp = scratch(bufDP, BL);
      float* pb = scratch(bufP, BL);
      float* raw = scratch(bufRaw, BL);
      const float* kSrc = k + start * kvStride + static_cast<size_t>(kh) * D;
      gatherHead(khd, kSrc, kvStride, L, D);
      gatherHeadT(kt, kSrc, kvStride, L, D);
      gatherHeadT(vt, v + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
      std::fill(dkh, dkh + LD, 0.0f);
      std::fill(dvh, dvh + LD, 0.0f);
      for (int h = kh * group; h < (kh + 1) * group; h++) {
        gatherHead(qh, q + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
        gatherHead(doh, dout + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
        for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
          const int ib = std::min(L, i0 + kQueryBlock) - i0;
          const int lo = window > 0 ? std::max(0, i0 - window + 1) : 0;
          const Block bk{i0, ib, lo, i0 + ib - lo, window};
          const int nk = bk.nk;
          const auto allD = [&](int, int) { return Range{0, D}; };
          const auto colsD = [&](int, int) { return D; };
          const auto keyEnd = [&](int a, int b) { return bk.keyEnd(a, b); };
          const float* qb = qh + static_cast<size_t>(i0) * D;
          const float* dob = doh + static_cast<size_t>(i0) * D;
          product(ib, dob, D, 1, vt + lo, L, dp, nk, false, keyEnd, allD);  // dP = dO V^T
          product(ib, qb, D, 1, kt + lo, L, raw, nk, false, keyEnd, allD);  // q.k before scale and cap
          for (int r = 0; r < ib; r++) {
            const size_t o = static_cast<size_t>(r) * nk;
            softmaxBackwardRow(raw + o, pb + o, dp + o, visibleKeys(i0 + r, lo, window), nk,
                               lse[static_cast<size_t>(start + i0 + r) * Hq + h], sc, cap);
          }
          const auto keysOfRows = [&](int a, int b) { return bk.keysOfRows(a, b); };
          const auto rowsOfKeys = [&](int a, int b) { return bk.rowsOfKeys(a, b); };
          product(ib, dp, nk, 1, khd + static_cast<size_t>(lo) * D, D, dqh + static_cast<size_t>(i0) * D, D, false, colsD,
                  keysOfRows);                                                                                      // dQ_b = dS K
          product(nk, dp, 1, nk, qb, D, dkh + static_cast<size_t>(lo) * D, D, true, colsD, rowsOfKeys);  // dK += dS^T Q_b
          product(nk, pb, 1, nk, dob, D, dvh + static_cast<size_t>(lo) * D, D, true, colsD, rowsOfKeys);  // dV += P^T dO_b
        }
        scatterAddHead(dq + start * qStride + static_cast<size_t>(h) * D, dqh, qStride, L, D);
      }
      scatterAddHead(dk + start * kvStride + static_cast<size_t>(kh) * D, dkh, kvStride, L, D);
      scatterAddHead(dv + start * kvStride + static_cast<size_t>(kh) * D, dvh, kvStride, L, D);
    }
  }
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

bool attention_forward_avx512(float* out, float* lse, const float* q, const float* k, const float* v,
                              const int32_t* seqOffsets, int S, int Hq, int Hk, int D, double scale, double softcap,
                              int window) {
  if (!attention_kernels_available()) return false;
  forwardKernel(out, lse, q, k, v, seqOffsets, S, Hq, Hk, D, scale, softcap, window);
  return true;
}
bool attention_backward_avx512(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                               const float* k, const float* v, const int32_t* seqOffsets, int S, int Hq, int Hk, int D,
                               double scale, double softcap, int window) {
  if (!attention_kernels_available()) return false;
  backwardKernel(dq, dk, dv, dout, lse, q, k, v, seqOffsets, S, Hq, Hk, D, scale, softcap, window);
  return true;
}

#else  // not x86-64: attention.cc's loops

bool attention_kernels_available() { return false; }
bool attention_forward_avx512(float*, float*, const float*, const float*, const float*, const int32_t*, int, int, int, int,
                              double, double, int) {
  return false;
}
bool attention_backward_avx512(float*, float*, float*, const float*, const float*, const float*, const float*, const float*,
                               const int32_t*, int, int, int, int, double, double, int) {
  return false;
}

#endif

}  // namespace rrec::cpu
