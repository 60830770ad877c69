// The LM head on the CPU (model_ops.h): float activations take the fused path
// (lm_head_fused.cc: vocabulary tiles consumed in cache, never the logits in full); double (the
// finite-difference build) and float with the fused path switched off take the unfused one here:
// logits in chunks of rows (never [n, V] for the whole batch), Gemma2's final soft-cap, the
// log-softmax gathered at the targets (+ entropy) in double with std::exp per element, its
// backward, and the sampling rows' logits with their log-sum-exp (float rows: lm_head_rows_lse in
// lm_head_fused.cc, the fused head's row kernels over tiles of 4096 columns, tiles combined in
// double; one thread, V = 151,936: 65 -> 42-46 us per row, and 1.4-1.6 ms -> 0.09-0.19 ms with
// Gemma2's soft-cap, whose std::tanh per element did not vectorise; lse within 2e-7 of float64
// without the cap, 2e-6 with it: bench/lm-head-cpu.ts --mode rows-lse, 2026-12-04).
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "cpu/model_ops.h"
#include "cpu/sampler.h"
#include "rrec/buffer_pool.h"

namespace rrec::cpu {

namespace {
// Rows per chunk: about 4M logits at a time (16 MiB of float).
inline int chunkRows(int n, int V) { return std::max(1, std::min(n, (1 << 22) / std::max(1, V))); }
}  // namespace

template <typename T>
void lm_head_logprobs(double* logp, double* lseOut, double* entropy, const T* hidden, const Mat& w, const int32_t* targets,
                      int n, int C, double cap) {
  if constexpr (std::is_same_v<T, float>) {
    if (lm_head_fused_enabled()) return lm_head_logprobs_fused(logp, lseOut, entropy, hidden, w, targets, n, C, cap);
  }
  const int V = w.rows;
  const int chunk = chunkRows(n, V);
  Buf<T> logits(static_cast<size_t>(chunk) * V);
  for (int i0 = 0; i0 < n; i0 += chunk) {
    const int nc = std::min(chunk, n - i0);
    matmul_forward(logits.data(), &hidden[static_cast<size_t>(i0) * C], w, static_cast<const T*>(nullptr), nc, false);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nc; i++) {
      T* z = &logits[static_cast<size_t>(i) * V];
      if (cap > 0)
        for (int v = 0; v < V; v++) z[v] = T(cap) * std::tanh(z[v] / T(cap));
      double mx = -INFINITY;
      for (int v = 0; v < V; v++) mx = std::max(mx, static_cast<double>(z[v]));
      double sum = 0, pz = 0;
      for (int v = 0; v < V; v++) {
        const double e = std::exp(static_cast<double>(z[v]) - mx);
        sum += e;
        pz += e * static_cast<double>(z[v]);
      }
      const double lse = mx + std::log(sum);
      lseOut[i0 + i] = lse;
      logp[i0 + i] = static_cast<double>(z[targets[i0 + i]]) - lse;
      if (entropy) entropy[i0 + i] = lse - pz / sum;
    }
  }
}

template <typename T>
void lm_head_backward(T* dhidden, T* dw, const T* hidden, const Mat& w, const int32_t* targets, const double* lseIn,
                      const double* dlogp, int n, int C, double cap) {
  if constexpr (std::is_same_v<T, float>) {
    if (lm_head_fused_enabled()) return lm_head_backward_fused(dhidden, dw, hidden, w, targets, lseIn, dlogp, n, C, cap);
  }
  const int V = w.rows;
  const int chunk = chunkRows(n, V);
  Buf<T> logits(static_cast<size_t>(chunk) * V);
  for (int i0 = 0; i0 < n; i0 += chunk) {
    const int nc = std::min(chunk, n - i0);
    matmul_forward(logits.data(), &hidden[static_cast<size_t>(i0) * C], w, static_cast<const T*>(nullptr), nc, false);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nc; i++) {
      T* z = &logits[static_cast<size_t>(i) * V];
      const double g = dlogp[i0 + i], lse = lseIn[i0 + i];
      const int tgt = targets[i0 + i];
      for (int v = 0; v < V; v++) {
        double raw = static_cast<double>(z[v]), zz = raw, dcap = 1;
        if (cap > 0) {
          const double t = std::tanh(raw / cap);
          zz = cap * t;
          dcap = 1 - t * t;
        }
        const double p = std::exp(zz - lse);
        z[v] = static_cast<T>(g * ((v == tgt ? 1.0 : 0.0) - p) * dcap);  // z now holds dlogits
      }
    }
    matmul_backward_input(&dhidden[static_cast<size_t>(i0) * C], logits.data(), w, nc);
    if (dw) matmul_backward_weight(dw, static_cast<T*>(nullptr), logits.data(), &hidden[static_cast<size_t>(i0) * C], nc, C, V);
  }
}

template <typename T>
void logits_rows(T* logits, double* lse, const T* hidden, const Mat& w, int R, double cap) {
  matmul_forward(logits, hidden, w, static_cast<const T*>(nullptr), R, false);
  logits_rows_lse(logits, lse, R, w.rows, cap);
}

template <typename T>
void logits_rows_lse(T* logits, double* lse, int R, int V, double cap) {
  if constexpr (std::is_same_v<T, float>) return lm_head_rows_lse(logits, lse, R, V, cap);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < R; i++) {
    T* z = &logits[static_cast<size_t>(i) * V];
    if (cap > 0)
      for (int v = 0; v < V; v++) z[v] = T(cap) * std::tanh(z[v] / T(cap));
    lse[i] = logSumExp(z, V);
  }
}

template void lm_head_logprobs<float>(double*, double*, double*, const float*, const Mat&, const int32_t*, int, int, double);
template void lm_head_logprobs<double>(double*, double*, double*, const double*, const Mat&, const int32_t*, int, int, double);
template void lm_head_backward<float>(float*, float*, const float*, const Mat&, const int32_t*, const double*, const double*, int,
                                      int, double);
template void lm_head_backward<double>(double*, double*, const double*, const Mat&, const int32_t*, const double*, const double*,
                                       int, int, double);
template void logits_rows<float>(float*, double*, const float*, const Mat&, int, double);
template void logits_rows<double>(double*, double*, const double*, const Mat&, int, double);
template void logits_rows_lse<float>(float*, double*, int, int, double);
template void logits_rows_lse<double>(double*, double*, int, int, double);

}  // namespace rrec::cpu
