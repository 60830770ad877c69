// LoRA's y += scale * B (A dropout(x)) and its backward (model_ops.h): the rank-specialised AVX-512
// kernels (lora_avx512.cc) for the float backward at rank 1, 2, 4, 8 or 16, the general products
// elsewhere (and for the forward, where the special kernels measured no faster in place).
#include <type_traits>

#include "cpu/matmul_kernels.h"
#include "cpu/model_ops.h"
#include "rrec/buffer_pool.h"
#include "rrec/rng.h"

namespace rrec::cpu {

namespace {

constexpr int kModules = 7;  // rrec::kNumModules: the dropout stream is layer * 7 + module

template <typename T>
inline Mat dense(const T* data, int rows, int cols) {
  Mat m;
  m.data = data;
  m.dtype = sizeof(T) == 4 ? DType::F32 : DType::F64;
  m.rows = rows;
  m.cols = cols;
  return m;
}

// Inverted dropout mask value for element `index` of a module input: 0 or 1 / (1 - p).
template <typename T>
inline T dropoutScale(uint64_t seed, int layer, int module, int64_t index, double p) {
  const double u = hashUniform(seed, static_cast<uint64_t>(layer) * kModules + module, static_cast<uint64_t>(index));
  return u < p ? T(0) : T(1.0 / (1.0 - p));
}

template <typename T>
inline bool loraKernels(int r) {
  if constexpr (!std::is_same_v<T, float>) return false;
  else return lora_kernels_available(r);
}

// B [out, r] -> B^T [r, out] (the adapter kernels want the r-row side contiguous)
template <typename T>
inline Buf<T> transposeB(const T* B, int out, int r) {
  Buf<T> bt(static_cast<size_t>(out) * r);
  for (int o = 0; o < out; o++)
    for (int j = 0; j < r; j++) bt[static_cast<size_t>(j) * out + o] = B[static_cast<size_t>(o) * r + j];
  return bt;
}

}  // namespace

template <typename T>
void lora_forward(T* Y, T* xa, const T* X, const T* A, const T* B, int M, int in, int out, int r, T scale, double p,
                  uint64_t seed, int l, int m) {
  const bool drop = p > 0;
  Buf<T> xd;
  const T* src = X;
  if (drop) {
    xd.resize(static_cast<size_t>(M) * in);
    for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
    src = xd.data();
  }
  const size_t n = static_cast<size_t>(M) * r;
  for (size_t i = 0; i < n; i++) xa[i] = T(0);
  matmul_forward(xa, src, dense(A, r, in), static_cast<const T*>(nullptr), M, false);
  Buf<T> xs(n);
  for (size_t i = 0; i < n; i++) xs[i] = xa[i] * scale;
  matmul_forward(Y, xs.data(), dense(B, out, r), static_cast<const T*>(nullptr), M, true);
}

template <typename T>
void lora_backward(T* dX, T* dA, T* dB, const T* X, const T* dY, const T* xa, const T* A, const T* B, int M, int in, int out,
                   int r, T s, double p, uint64_t seed, int l, int m) {
  const bool drop = p > 0;
  const size_t nxa = static_cast<size_t>(M) * r;
  if constexpr (std::is_same_v<T, float>) {
    if (loraKernels<T>(r)) {
      const Buf<T> bt = transposeB(B, out, r);
      Buf<T> dxa(nxa);
      lora_project_avx512(dxa.data(), dY, bt.data(), M, out, r, s);  // s dY B
      Buf<T> gbt(static_cast<size_t>(r) * out, T(0));
      lora_grad_avx512(gbt.data(), xa, dY, M, out, r, s);  // (s xa^T dY) = dB^T
      for (int o = 0; o < out; o++)
        for (int j = 0; j < r; j++) dB[static_cast<size_t>(o) * r + j] += gbt[static_cast<size_t>(j) * out + o];
      if (!drop) {
        lora_grad_avx512(dA, dxa.data(), X, M, in, r, 1.0f);
        lora_expand_avx512(dX, dxa.data(), A, M, in, r, 1.0f);
        return;
      }
      Buf<T> xd(static_cast<size_t>(M) * in);
      for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
      lora_grad_avx512(dA, dxa.data(), xd.data(), M, in, r, 1.0f);
      Buf<T> tmp(xd.size(), T(0));
      lora_expand_avx512(tmp.data(), dxa.data(), A, M, in, r, 1.0f);
      for (int64_t i = 0; i < static_cast<int64_t>(tmp.size()); i++) dX[i] += tmp[i] * dropoutScale<T>(seed, l, m, i, p);
      return;
    }
  }
  Buf<T> dxa(nxa, T(0));
  matmul_backward_input(dxa.data(), dY, dense(B, out, r), M);
  for (T& v : dxa) v *= s;
  Buf<T> xs(nxa);
  for (size_t i = 0; i < nxa; i++) xs[i] = xa[i] * s;
  matmul_backward_weight(dB, static_cast<T*>(nullptr), dY, xs.data(), M, r, out);
  if (!drop) {
    matmul_backward_weight(dA, static_cast<T*>(nullptr), dxa.data(), X, M, in, r);
    matmul_backward_input(dX, dxa.data(), dense(A, r, in), M);
    return;
  }
  Buf<T> xd(static_cast<size_t>(M) * in);
  for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); i++) xd[i] = X[i] * dropoutScale<T>(seed, l, m, i, p);
  matmul_backward_weight(dA, static_cast<T*>(nullptr), dxa.data(), xd.data(), M, in, r);
  Buf<T> tmp(xd.size(), T(0));
  matmul_backward_input(tmp.data(), dxa.data(), dense(A, r, in), M);
  for (int64_t i = 0; i < static_cast<int64_t>(tmp.size()); i++) dX[i] += tmp[i] * dropoutScale<T>(seed, l, m, i, p);
}

template void lora_forward<float>(float*, float*, const float*, const float*, const float*, int, int, int, int, float, double,
                                  uint64_t, int, int);
template void lora_forward<double>(double*, double*, const double*, const double*, const double*, int, int, int, int, double,
                                   double, uint64_t, int, int);
template void lora_backward<float>(float*, float*, float*, const float*, const float*, const float*, const float*,
                                   const float*, int, int, int, int, float, double, uint64_t, int, int);
template void lora_backward<double>(double*, double*, double*, const double*, const double*, const double*, const double*,
                                    const double*, int, int, int, int, double, double, uint64_t, int, int);

}  // namespace rrec::cpu
