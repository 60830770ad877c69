// Causal multi-head attention with GQA, optional logit soft-cap and sliding window, over a packed
// batch of independent sequences. The forward keeps each (sequence, head) probability matrix for
// the backward; the backward recomputes raw scores only where the soft-cap needs tanh'.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops.h"

namespace rrec::cpu {

namespace {
inline bool visible(int i, int j, int window) { return j <= i && (window <= 0 || i - j < window); }
}  // namespace

template <typename T>
void attention_forward(T* out, T* probs, const T* q, const T* k, const T* v, const int32_t* seqOffsets, int S,
                       const int64_t* probOffsets, int Hq, int Hk, int D, double scale, double softcap, int window) {
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int h = 0; h < Hq; h++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      const int kh = h / group;
      T* P = probs + probOffsets[s] + static_cast<int64_t>(h) * L * L;
      for (int i = 0; i < L; i++) {
        const T* qi = q + (start + i) * qStride + static_cast<size_t>(h) * D;
        T* pi = P + static_cast<size_t>(i) * L;
        T mx = -INFINITY;
        for (int j = 0; j < L; j++) {
          if (!visible(i, j, window)) { pi[j] = 0; continue; }
          const T* kj = k + (start + j) * kvStride + static_cast<size_t>(kh) * D;
          T sc = 0;
#pragma omp simd reduction(+ : sc)
          for (int d = 0; d < D; d++) sc += qi[d] * kj[d];
          sc *= T(scale);
          if (softcap > 0) sc = T(softcap) * std::tanh(sc / T(softcap));
          pi[j] = sc;
          mx = std::max(mx, sc);
        }
        T sum = 0;
        for (int j = 0; j < L; j++) {
          if (!visible(i, j, window)) continue;
          pi[j] = std::exp(pi[j] - mx);
          sum += pi[j];
        }
        const T inv = T(1) / sum;
        T* oi = out + (start + i) * qStride + static_cast<size_t>(h) * D;
        for (int d = 0; d < D; d++) oi[d] = 0;
        for (int j = 0; j < L; j++) {
          if (!visible(i, j, window)) continue;
          pi[j] *= inv;
          const T p = pi[j];
          const T* vj = v + (start + j) * kvStride + static_cast<size_t>(kh) * D;
#pragma omp simd
          for (int d = 0; d < D; d++) oi[d] += p * vj[d];
        }
      }
    }
  }
}

// For one query row: o = sum_j p_j v_j, p = softmax(c), c_j = cap * tanh(a_j / cap), a_j = scale q.k_j
//   dv_j += p_j do;  dp_j = do.v_j;  dc_j = p_j (dp_j - sum_l p_l dp_l);  da_j = dc_j (1 - tanh^2)
//   dq += scale sum_j da_j k_j;  dk_j += scale da_j q
// Parallel over (sequence, kv head) so the heads of one GQA group never race on dk/dv.
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* probs, const T* q, const T* k, const T* v,
                        const int32_t* seqOffsets, int S, const int64_t* probOffsets, int Hq, int Hk, int D, double scale,
                        double softcap, int window) {
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
  for (int s = 0; s < S; s++) {
    for (int kh = 0; kh < Hk; kh++) {
      const int start = seqOffsets[s], L = seqOffsets[s + 1] - seqOffsets[s];
      std::vector<T> dp(static_cast<size_t>(L));
      for (int h = kh * group; h < (kh + 1) * group; h++) {
        const T* P = probs + probOffsets[s] + static_cast<int64_t>(h) * L * L;
        for (int i = 0; i < L; i++) {
          const T* pi = P + static_cast<size_t>(i) * L;
          const T* doi = dout + (start + i) * qStride + static_cast<size_t>(h) * D;
          const T* qi = q + (start + i) * qStride + static_cast<size_t>(h) * D;
          T* dqi = dq + (start + i) * qStride + static_cast<size_t>(h) * D;
          T pdp = 0;
          for (int j = 0; j < L; j++) {
            if (!visible(i, j, window)) { dp[j] = 0; continue; }
            const T* vj = v + (start + j) * kvStride + static_cast<size_t>(kh) * D;
            T* dvj = dv + (start + j) * kvStride + static_cast<size_t>(kh) * D;
            T acc = 0;
            const T p = pi[j];
#pragma omp simd reduction(+ : acc)
            for (int d = 0; d < D; d++) {
              acc += doi[d] * vj[d];
              dvj[d] += p * doi[d];
            }
            dp[j] = acc;
            pdp += p * acc;
          }
          for (int j = 0; j < L; j++) {
            if (!visible(i, j, window)) continue;
            T da = pi[j] * (dp[j] - pdp);
            const T* kj = k + (start + j) * kvStride + static_cast<size_t>(kh) * D;
            if (softcap > 0) {
              T a = 0;
#pragma omp simd reduction(+ : a)
              for (int d = 0; d < D; d++) a += qi[d] * kj[d];
              const T t = std::tanh(a * T(scale) / T(softcap));
              da *= T(1) - t * t;
            }
            da *= T(scale);
            T* dkj = dk + (start + j) * kvStride + static_cast<size_t>(kh) * D;
#pragma omp simd
            for (int d = 0; d < D; d++) {
              dqi[d] += da * kj[d];
              dkj[d] += da * qi[d];
            }
          }
        }
      }
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, const float*, const float*, const int32_t*, int,
                                       const int64_t*, int, int, int, double, double, int);
template void attention_forward<double>(double*, double*, const double*, const double*, const double*, const int32_t*, int,
                                        const int64_t*, int, int, int, double, double, int);
template void attention_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                        const float*, const int32_t*, int, const int64_t*, int, int, int, double, double, int);
template void attention_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, const int32_t*, int, const int64_t*, int, int, int,
                                         double, double, int);

}  // namespace rrec::cpu
