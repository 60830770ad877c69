// Causal multi-head attention with GQA, optional logit soft-cap and sliding window, over a packed
// batch of independent sequences. The forward keeps only each row's log-sum-exp per head; the
// backward recomputes the scores of each block and the probabilities p = exp(score - lse) from it,
// as FlashAttention does, so memory stays O(M Hq) instead of O(Hq L^2) per sequence.
//
// Blocked formulation: each head's q, k, v (and gradients) are gathered into contiguous [L, D]
// slices, and every product runs through the matmul kernels on blocks of kQueryBlock query rows
// against the keys those rows can see ([lo, hi): causal, and the sliding window when there is
// one), so the arithmetic is register-blocked GEMM instead of one dot product per (query, key):
//   scores  S = Q_b K_r^T           matmul_forward         (W = K_r [nk, D]; again in backward)
//   output  O_b = P_b V_r           matmul_backward_input  (W = V_r [nk, D])
//   dP = dO_b V_r^T;  dS = P (dP - rowsum(P dP)) cap' scale
//   dQ_b += dS K_r                  matmul_backward_input
//   dK_r += dS^T Q_b, dV_r += P_b^T dO_b   matmul_backward_weight
// Parallel over (sequence, head) in the forward and (sequence, kv head) in the backward, so the
// heads of one GQA group never race on dK/dV; the kernels called inside run on the calling thread
// (nested parallel regions get one thread). Masked entries inside a block (keys after the query,
// or outside its window) have probability 0, so they add nothing to any product.
// Float on an AVX-512 CPU takes attention_avx512.cc instead: the same blocks and bookkeeping with
// one unpacked product kernel (these loops are the float64 build's and the reference it is tested
// against, test/model/attention-kernels.test.ts).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "fast_exp.h"
#include "ops.h"

namespace rrec::cpu {

namespace {

constexpr int kQueryBlock = 64;  // query rows per block: the GEMMs' M (>= the packed-GEMM threshold)

inline bool visible(int i, int j, int window) { return j <= i && (window <= 0 || i - j < window); }

// Keys [lo, hi) that some query of rows [i0, i1) can see.
struct KeyRange {
  int lo, hi;
};
inline KeyRange keysOf(int i0, int i1, int window) { return {window > 0 ? std::max(0, i0 - window + 1) : 0, i1}; }

template <typename T>
Mat rowsOf(const T* data, int rows, int cols) {
  Mat m;
  m.data = data;
  m.dtype = sizeof(T) == 4 ? DType::F32 : DType::F64;
  m.rows = rows;
  m.cols = cols;
  return m;
}

#include "attention_heads.h"  // gatherHead, scatterAddHead, scratch

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* seqOffsets, int S, int Hq,
                       int Hk, int D, double scale, double softcap, int window) {
  if constexpr (std::is_same_v<T, float>)
    if (attention_forward_avx512(out, lse, q, k, v, seqOffsets, S, Hq, Hk, D, scale, softcap, window)) return;
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int h = 0; h < Hq; h++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      if (L <= 0) continue;
      const int kh = h / group;
      static thread_local std::vector<T> bufQ, bufK, bufV, bufO, bufS;
      const size_t LD = static_cast<size_t>(L) * D;
      T* qh = scratch(bufQ, LD);
      T* khd = scratch(bufK, LD);
      T* vh = scratch(bufV, LD);
      T* oh = scratch(bufO, LD);
      T* sc = scratch(bufS, static_cast<size_t>(kQueryBlock) * L);
      gatherHead(qh, q + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
      gatherHead(khd, k + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
      gatherHead(vh, v + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
      std::fill(oh, oh + LD, T(0));
      for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
        const int i1 = std::min(L, i0 + kQueryBlock), ib = i1 - i0;
        const auto [lo, hi] = keysOf(i0, i1, window);
        const int nk = hi - lo;
        matmul_forward(sc, qh + static_cast<size_t>(i0) * D, rowsOf(khd + static_cast<size_t>(lo) * D, nk, D),
                       static_cast<const T*>(nullptr), ib, false);
        for (int r = 0; r < ib; r++) {
          const int i = i0 + r;
          T* row = sc + static_cast<size_t>(r) * nk;
          T mx = -INFINITY;
          for (int j = lo; j < hi; j++) {
            if (!visible(i, j, window)) continue;
            T a = row[j - lo] * T(scale);
            if (softcap > 0) a = T(softcap) * std::tanh(a / T(softcap));
            row[j - lo] = a;
            mx = std::max(mx, a);
          }
          T sum = 0;
          for (int j = lo; j < hi; j++) {
            T& p = row[j - lo];
            p = visible(i, j, window) ? expT(p - mx) : T(0);
            sum += p;
          }
          const T inv = T(1) / sum;
          for (int j = 0; j < nk; j++) row[j] *= inv;
          lse[static_cast<size_t>(start + i) * Hq + h] = mx + std::log(sum);
        }
        matmul_backward_input(oh + static_cast<size_t>(i0) * D, sc, rowsOf(vh + static_cast<size_t>(lo) * D, nk, D), ib);
      }
      T* o = out + start * qStride + static_cast<size_t>(h) * D;
      for (int i = 0; i < L; i++) std::memcpy(o + i * qStride, oh + static_cast<size_t>(i) * D, sizeof(T) * D);
    }
  }
}

template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* lse, const T* q, const T* k, const T* v,
                        const int32_t* seqOffsets, int S, int Hq, int Hk, int D, double scale, double softcap, int window) {
  if constexpr (std::is_same_v<T, float>)
    if (attention_backward_avx512(dq, dk, dv, dout, lse, q, k, v, seqOffsets, S, Hq, Hk, D, scale, softcap, window)) return;
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int kh = 0; kh < Hk; kh++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      if (L <= 0) continue;
      static thread_local std::vector<T> bufK, bufV, bufDK, bufDV, bufQ, bufDO, bufDQ, bufDP, bufP, bufRaw;
      const size_t LD = static_cast<size_t>(L) * D, BL = static_cast<size_t>(kQueryBlock) * L;
      T* khd = scratch(bufK, LD);
      T* vh = scratch(bufV, LD);
      T* dkh = scratch(bufDK, LD);
      T* dvh = scratch(bufDV, LD);
      T* qh = scratch(bufQ, LD);
      T* doh = scratch(bufDO, LD);
      T* dqh = scratch(bufDQ, LD);
      T* dp = scratch(bufDP, BL);
      T* pb = scratch(bufP, BL);
      T* raw = scratch(bufRaw, BL);
      gatherHead(khd, k + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
      gatherHead(vh, v + start * kvStride + static_cast<size_t>(kh) * D, kvStride, L, D);
      std::fill(dkh, dkh + LD, T(0));
      std::fill(dvh, dvh + LD, T(0));
      for (int h = kh * group; h < (kh + 1) * group; h++) {
        gatherHead(qh, q + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
        gatherHead(doh, dout + start * qStride + static_cast<size_t>(h) * D, qStride, L, D);
        std::fill(dqh, dqh + LD, T(0));
        for (int i0 = 0; i0 < L; i0 += kQueryBlock) {
          const int i1 = std::min(L, i0 + kQueryBlock), ib = i1 - i0;
          const auto [lo, hi] = keysOf(i0, i1, window);
          const int nk = hi - lo;
          const Mat kr = rowsOf(khd + static_cast<size_t>(lo) * D, nk, D), vr = rowsOf(vh + static_cast<size_t>(lo) * D, nk, D);
          const T* qb = qh + static_cast<size_t>(i0) * D;
          const T* dob = doh + static_cast<size_t>(i0) * D;
          matmul_forward(dp, dob, vr, static_cast<const T*>(nullptr), ib, false);   // dP = dO V^T
          matmul_forward(raw, qb, kr, static_cast<const T*>(nullptr), ib, false);  // q.k before scale and cap
          for (int r = 0; r < ib; r++) {
            const int i = i0 + r;
            const T rowLse = lse[static_cast<size_t>(start + i) * Hq + h];
            T* prow = pb + static_cast<size_t>(r) * nk;
            T* drow = dp + static_cast<size_t>(r) * nk;
            T* arow = raw + static_cast<size_t>(r) * nk;
            T pdp = 0;
            for (int j = 0; j < nk; j++) {  // p recomputed exactly as the forward's softmax argument
              T c = arow[j] * T(scale);
              if (softcap > 0) {
                const T t = std::tanh(c / T(softcap));
                arow[j] = t;  // kept for the cap's derivative below
                c = T(softcap) * t;
              }
              prow[j] = visible(i, lo + j, window) ? expT(c - rowLse) : T(0);
              pdp += prow[j] * drow[j];
            }
            for (int j = 0; j < nk; j++) {
              T da = prow[j] * (drow[j] - pdp);
              if (softcap > 0) da *= T(1) - arow[j] * arow[j];
              drow[j] = da * T(scale);  // dp now holds dS (zero where masked: p = 0)
            }
          }
          matmul_backward_input(dqh + static_cast<size_t>(i0) * D, dp, kr, ib);  // dQ += dS K
          matmul_backward_weight(dkh + static_cast<size_t>(lo) * D, static_cast<T*>(nullptr), dp, qb, ib, D, nk);  // dK += dS^T Q
          matmul_backward_weight(dvh + static_cast<size_t>(lo) * D, static_cast<T*>(nullptr), pb, dob, ib, D, nk);  // dV += P^T dO
        }
        scatterAddHead(dq + start * qStride + static_cast<size_t>(h) * D, dqh, qStride, L, D);
      }
      scatterAddHead(dk + start * kvStride + static_cast<size_t>(kh) * D, dkh, kvStride, L, D);
      scatterAddHead(dv + start * kvStride + static_cast<size_t>(kh) * D, dvh, kvStride, L, D);
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*, const int32_t*, int, int,
                                       int, int, double, double, int);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*, const int32_t*, int,
                                        int, int, int, double, double, int);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, const int32_t*, int, int, int, int, double, double, int);
template void attention_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, const int32_t*, int, int, int, int, double, double,
                                         int);

}  // namespace rrec::cpu
