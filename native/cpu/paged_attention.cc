// Paged attention (see paged_attention.h). Parallel over (row, kv head): the q heads of one GQA
// group reuse the K/V rows they read while those are in cache.
#include "paged_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace rrec::cpu {

template <typename T>
void paged_attention_forward(T* out, const T* q, const T* kCache, const T* vCache, const int32_t* tables,
                             const int32_t* tableStart, const int32_t* pos, int M, int blockSize, int Hq, int Hk, int D,
                             double scale, double softcap, int window) {
  const int group = Hq / Hk;
  const size_t qStride = static_cast<size_t>(Hq) * D, kvStride = static_cast<size_t>(Hk) * D;
#pragma omp parallel
  {
    std::vector<T> scores;
    std::vector<const T*> krows, vrows;
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int m = 0; m < M; m++) {
      for (int kh = 0; kh < Hk; kh++) {
        const int p = pos[m];
        const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
        const int n = p - lo + 1;
        scores.resize(static_cast<size_t>(n));
        krows.resize(static_cast<size_t>(n));
        vrows.resize(static_cast<size_t>(n));
        const int32_t* table = tables + tableStart[m];
        for (int j = lo; j <= p; j++) {
          const size_t row = (static_cast<size_t>(table[j / blockSize]) * blockSize + j % blockSize) * kvStride +
                             static_cast<size_t>(kh) * D;
          krows[j - lo] = kCache + row;
          vrows[j - lo] = vCache + row;
        }
        for (int h = kh * group; h < (kh + 1) * group; h++) {
          const T* qi = q + m * qStride + static_cast<size_t>(h) * D;
          T mx = -INFINITY;
          for (int t = 0; t < n; t++) {
            const T* kj = krows[t];
            T sc = 0;
#pragma omp simd reduction(+ : sc)
            for (int d = 0; d < D; d++) sc += qi[d] * kj[d];
            sc *= T(scale);
            if (softcap > 0) sc = T(softcap) * std::tanh(sc / T(softcap));
            scores[t] = sc;
            mx = std::max(mx, sc);
          }
          T sum = 0;
          for (int t = 0; t < n; t++) {
            scores[t] = std::exp(scores[t] - mx);
            sum += scores[t];
          }
          const T inv = T(1) / sum;
          T* oi = out + m * qStride + static_cast<size_t>(h) * D;
          for (int d = 0; d < D; d++) oi[d] = 0;
          for (int t = 0; t < n; t++) {
            scores[t] *= inv;
            const T pr = scores[t];
            const T* vj = vrows[t];
#pragma omp simd
            for (int d = 0; d < D; d++) oi[d] += pr * vj[d];
          }
        }
      }
    }
  }
}

template void paged_attention_forward<float>(float*, const float*, const float*, const float*, const int32_t*,
                                             const int32_t*, const int32_t*, int, int, int, int, int, double, double, int);
template void paged_attention_forward<double>(double*, const double*, const double*, const double*, const int32_t*,
                                              const int32_t*, const int32_t*, int, int, int, int, int, double, double, int);

}  // namespace rrec::cpu
