// Per-layer helpers shared by the differentiable forward/backward (model_forward.cc) and the
// sampling engine (engine.cc), so generation and training run the same math: dense views of
// buffers, LoRA's y += scale * B (A dropout(x)) and its backward, row-wise RMSNorm, residual add.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include "cpu/matmul_kernels.h"
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

// A zeroed buffer of n elements, zeroed by every thread for large n (a single-threaded memset of
// the [M, F] gradient of a 0.5B layer at 1024 rows, 20 MB, costs ~2 ms).
template <typename T>
inline Buf<T> zeros(size_t n) {
  Buf<T> b(n);
  T* p = b.data();
#pragma omp parallel for simd schedule(static) if (n >= (size_t(1) << 16))
  for (size_t i = 0; i < n; i++) p[i] = T(0);
  return b;
}

template <typename T>
inline void addInto(T* dst, const T* src, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= (size_t(1) << 15))
  for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

template <typename T, typename Vec>
inline void rmsnormRows(Vec& out, Vec& rstd, const T* x, const std::vector<T>& w, int M, int C, double eps,
                 bool plusOne) {
  out.resize(static_cast<size_t>(M) * C);
  rstd.resize(static_cast<size_t>(M));
  cpu::rmsnorm_forward(out.data(), rstd.data(), x, w.data(), M, C, eps, plusOne);
}

// The rank-specialised AVX-512 adapter kernels (cpu/lora_avx512.cc) serve the LoRA backward of
// float models with rank 1, 2, 4, 8 or 16 on CPUs that have AVX-512; everything else (and the
// forward, where they measured no faster in place) takes the general products.
template <typename T>
inline bool loraKernels(int r) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else return cpu::lora_kernels_available(r);
}

// B [out, r] -> B^T [r, out] (the adapter kernels want the r-row side contiguous)
template <typename T>
inline Buf<T> transposeB(const T* B, int out, int r) {
  Buf<T> bt(static_cast<size_t>(out) * r);
  for (int o = 0; o < out; o++)
    for (int j = 0; j < r; j++) bt[static_cast<size_t>(j) * out + o] = B[static_cast<size_t>(o) * r + j];
  return bt;
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
  if constexpr (std::is_same_v<T, float>) {
    if (loraKernels<T>(r)) {
      const Buf<T> bt = transposeB(ad.B(l, m), out, r);
      Buf<T> dxa(static_cast<size_t>(M) * r);
      cpu::lora_project_avx512(dxa.data(), dY, bt.data(), M, out, r, s);  // s dY B
      Buf<T> gbt(static_cast<size_t>(r) * out, T(0));
      cpu::lora_grad_avx512(gbt.data(), xa.data(), dY, M, out, r, s);  // (s xa^T dY) = dB^T
      T* gB = ad.gradB(l, m);
      for (int o = 0; o < out; o++)
        for (int j = 0; j < r; j++) gB[static_cast<size_t>(o) * r + j] += gbt[static_cast<size_t>(j) * out + o];
      if (!drop) {
        cpu::lora_grad_avx512(ad.gradA(l, m), dxa.data(), X, M, in, r, 1.0f);
        cpu::lora_expand_avx512(dX, dxa.data(), ad.A(l, m), M, in, r, 1.0f);
        return;
      }
      const double p = ad.config().dropout;
      Buf<T> xd(static_cast<size_t>(M) * in);
      for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
      cpu::lora_grad_avx512(ad.gradA(l, m), dxa.data(), xd.data(), M, in, r, 1.0f);
      Buf<T> tmp(xd.size(), T(0));
      cpu::lora_expand_avx512(tmp.data(), dxa.data(), ad.A(l, m), M, in, r, 1.0f);
      for (int64_t i = 0; i < static_cast<int64_t>(tmp.size()); i++) dX[i] += tmp[i] * dropoutScale<T>(seed, l, m, i, p);
      return;
    }
  }
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
using layer_ops::zeros;
using layer_ops::dense;
using layer_ops::dropoutScale;
using layer_ops::loraBackward;
using layer_ops::loraForward;
using layer_ops::rmsnormRows;
}  // namespace rrec
