// Per-layer helpers shared by the differentiable forward/backward (model_forward.cc) and the
// sampling engine (engine.cc), so generation and training run the same math: dense views of
// buffers, LoRA's y += scale * B (A dropout(x)) and its backward, row-wise RMSNorm, residual add.
#pragma once
#include <cstdint>
#include <vector>

#include "rrec/buffer_pool.h"
#include "rrec/model.h"
#include "rrec/rng.h"

namespace rrec {
namespace layer_ops {

template <typename T>
constexpr DType dtypeOf() {
  return sizeof(T) == 4 ? DType::F32 : DType::F64;
}

template <typename T>
inline cpu::Mat dense(const T* data, int rows, int cols) {
  cpu::Mat m;
  m.data = data;
  m.dtype = dtypeOf<T>();
  m.rows = rows;
  m.cols = cols;
  return m;
}

// Inverted dropout mask value for element (row, col) of a module input: 0 or 1 / (1 - p).
template <typename T>
inline T dropoutScale(uint64_t seed, int layer, int module, int64_t index, double p) {
  const double u = hashUniform(seed, static_cast<uint64_t>(layer) * kNumModules + module, static_cast<uint64_t>(index));
  return u < p ? T(0) : T(1.0 / (1.0 - p));
}

template <typename T>
inline void addInto(T* dst, const T* src, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

template <typename T, typename Vec>
inline void rmsnormRows(Vec& out, Vec& rstd, const T* x, const std::vector<T>& w, int M, int C, double eps,
                 bool plusOne) {
  out.resize(static_cast<size_t>(M) * C);
  rstd.resize(static_cast<size_t>(M));
  cpu::rmsnorm_forward(out.data(), rstd.data(), x, w.data(), M, C, eps, plusOne);
}

// Y[M, out] += scale * (dropout(X) @ A^T) @ B^T; keeps xa = dropout(X) @ A^T.
template <typename T, typename Vec>
inline void loraForward(T* Y, const T* X, int M, Adapter<T>& ad, int l, int m, Vec& xa, bool drop,
                        uint64_t seed) {
  const int in = ad.inFeatures(m), out = ad.outFeatures(m), r = ad.config().rank;
  Buf<T> xd;
  const T* src = X;
  if (drop) {
    xd.resize(static_cast<size_t>(M) * in);
    const double p = ad.config().dropout;
    for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
    src = xd.data();
  }
  xa.assign(static_cast<size_t>(M) * r, T(0));
  cpu::matmul_forward(xa.data(), src, dense(ad.A(l, m), r, in), static_cast<const T*>(nullptr), M, false);
  Buf<T> xs(xa.size());
  for (size_t i = 0; i < xa.size(); i++) xs[i] = xa[i] * ad.scale();
  cpu::matmul_forward(Y, xs.data(), dense(ad.B(l, m), out, r), static_cast<const T*>(nullptr), M, true);
}

// Given dY, accumulates dA, dB and dX (dX += d/dX of the LoRA path only).
template <typename T, typename Vec>
inline void loraBackward(T* dX, const T* X, const T* dY, int M, Adapter<T>& ad, int l, int m, const Vec& xa,
                         bool drop, uint64_t seed) {
  const int in = ad.inFeatures(m), out = ad.outFeatures(m), r = ad.config().rank;
  const T s = ad.scale();
  Buf<T> dxa(static_cast<size_t>(M) * r, T(0));
  cpu::matmul_backward_input(dxa.data(), dY, dense(ad.B(l, m), out, r), M);
  for (T& v : dxa) v *= s;
  Buf<T> xs(xa.size());
  for (size_t i = 0; i < xa.size(); i++) xs[i] = xa[i] * s;
  cpu::matmul_backward_weight(ad.gradB(l, m), static_cast<T*>(nullptr), dY, xs.data(), M, r, out);
  const double p = ad.config().dropout;
  if (!drop) {
    cpu::matmul_backward_weight(ad.gradA(l, m), static_cast<T*>(nullptr), dxa.data(), X, M, in, r);
    cpu::matmul_backward_input(dX, dxa.data(), dense(ad.A(l, m), r, in), M);
    return;
  }
  Buf<T> xd(static_cast<size_t>(M) * in);
  for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
  cpu::matmul_backward_weight(ad.gradA(l, m), static_cast<T*>(nullptr), dxa.data(), xd.data(), M, in, r);
  Buf<T> tmp(xd.size(), T(0));
  cpu::matmul_backward_input(tmp.data(), dxa.data(), dense(ad.A(l, m), r, in), M);
  for (int64_t i = 0; i < static_cast<int64_t>(tmp.size()); i++) dX[i] += tmp[i] * dropoutScale<T>(seed, l, m, i, p);
}

}  // namespace layer_ops
using layer_ops::addInto;
using layer_ops::dense;
using layer_ops::dropoutScale;
using layer_ops::loraBackward;
using layer_ops::loraForward;
using layer_ops::rmsnormRows;
}  // namespace rrec
