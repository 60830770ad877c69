// Matrix products against stored weights W [N, K] (f32/bf16/f16 for float compute, f64 for double).
// matmul_* dispatch to the AVX-512 kernels (matmul_avx512.cc) for float when this CPU has them, else
// to the AVX2 kernels (matmul_avx2.cc) where it has AVX2 and FMA, else to the portable blocked loops below (any CPU, and T = double for finite-difference tests).
// Portable forward is parallel over blocks of output features, each block of W converted to T once and
// reused for every input row; backward-input is parallel over input columns, backward-weight over
// output features, so no two threads write the same element.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "matmul_kernels.h"

namespace rrec::cpu {

template <typename T>
const T* mat_rows(const Mat& w, int n0, int nb, T* buf) {
  const size_t K = static_cast<size_t>(w.cols);
  const size_t start = static_cast<size_t>(n0) * K, count = static_cast<size_t>(nb) * K;
  if constexpr (std::is_same_v<T, float>) {
    if (w.dtype == DType::F32) return static_cast<const float*>(w.data) + start;
    if (w.dtype == DType::BF16) {
      const uint16_t* src = static_cast<const uint16_t*>(w.data) + start;
      for (size_t i = 0; i < count; i++) {
        uint32_t u = static_cast<uint32_t>(src[i]) << 16;
        std::memcpy(&buf[i], &u, 4);
      }
      return buf;
    }
  } else {
    if (w.dtype == DType::F64) return static_cast<const double*>(w.data) + start;
  }
  for (size_t i = 0; i < count; i++) buf[i] = static_cast<T>(loadAsDouble(w.data, w.dtype, start + i));
  return buf;
}

namespace {

// 4 input rows x 4 weight rows of dot products over K.
template <typename T>
inline void dot_tile_4x4(T* acc, const T* a0, const T* a1, const T* a2, const T* a3, const T* w0, const T* w1,
                         const T* w2, const T* w3, int K) {
  T s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  T s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
#pragma omp simd reduction(+ : s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33)
  for (int k = 0; k < K; k++) {
    T x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
    T y0 = w0[k], y1 = w1[k], y2 = w2[k], y3 = w3[k];
    s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
    s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
    s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
    s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
  }
  acc[0] = s00; acc[1] = s01; acc[2] = s02; acc[3] = s03;
  acc[4] = s10; acc[5] = s11; acc[6] = s12; acc[7] = s13;
  acc[8] = s20; acc[9] = s21; acc[10] = s22; acc[11] = s23;
  acc[12] = s30; acc[13] = s31; acc[14] = s32; acc[15] = s33;
}

template <typename T>
inline T dot(const T* a, const T* b, int K) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int k = 0; k < K; k++) s += a[k] * b[k];
  return s;
}

}  // namespace

template <typename T>
void matmul_forward_generic(T* out, const T* inp, const Mat& w, const T* bias, int M, bool accumulate) {
  const int N = w.rows, K = w.cols;
  constexpr int NB = 32;  // weight rows converted and kept hot per task
  const int blocks = (N + NB - 1) / NB;
#pragma omp parallel
  {
    // thread-local and only growing: fresh pages are slow to fault in (docs/machine-limits.md)
    static thread_local std::vector<T> wbuf;
    if (!mat_is_t<T>(w) && wbuf.size() < static_cast<size_t>(NB) * K) wbuf.resize(static_cast<size_t>(NB) * K);
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < blocks; b++) {
      const int n0 = b * NB, nb = std::min(NB, N - n0);
      const T* W = mat_rows<T>(w, n0, nb, wbuf.data());
      for (int m0 = 0; m0 < M; m0 += 4) {
        const int mb = std::min(4, M - m0);
        for (int j0 = 0; j0 < nb; j0 += 4) {
          const int jb = std::min(4, nb - j0);
          T acc[16];
          if (mb == 4 && jb == 4) {
            const T* a = inp + static_cast<size_t>(m0) * K;
            const T* wr = W + static_cast<size_t>(j0) * K;
            dot_tile_4x4(acc, a, a + K, a + 2 * static_cast<size_t>(K), a + 3 * static_cast<size_t>(K), wr, wr + K,
                         wr + 2 * static_cast<size_t>(K), wr + 3 * static_cast<size_t>(K), K);
          } else {
            for (int i = 0; i < mb; i++)
              for (int j = 0; j < jb; j++)
                acc[i * 4 + j] = dot(inp + static_cast<size_t>(m0 + i) * K, W + static_cast<size_t>(j0 + j) * K, K);
          }
          for (int i = 0; i < mb; i++) {
            T* o = out + static_cast<size_t>(m0 + i) * N + n0 + j0;
            for (int j = 0; j < jb; j++) {
              T v = acc[i * 4 + j] + (bias ? bias[n0 + j0 + j] : T(0));
              o[j] = accumulate ? o[j] + v : v;
            }
          }
        }
      }
    }
  }
}

template <typename T>
void matmul_backward_input_generic(T* dinp, const T* dout, const Mat& w, int M) {
  const int N = w.rows, K = w.cols;
  constexpr int KB = 256;  // input columns per task
  const int blocks = (K + KB - 1) / KB;
#pragma omp parallel
  {
    static thread_local std::vector<T> wrow(KB);
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < blocks; b++) {
      const int k0 = b * KB, kb = std::min(KB, K - k0);
      for (int n = 0; n < N; n++) {
        // row n of W restricted to columns [k0, k0 + kb)
        const T* wr;
        if (mat_is_t<T>(w)) wr = static_cast<const T*>(w.data) + static_cast<size_t>(n) * K + k0;
        else {
          for (int i = 0; i < kb; i++) wrow[i] = static_cast<T>(loadAsDouble(w.data, w.dtype, static_cast<size_t>(n) * K + k0 + i));
          wr = wrow.data();
        }
        for (int m = 0; m < M; m++) {
          const T g = dout[static_cast<size_t>(m) * N + n];
          if (g == T(0)) continue;
          T* d = dinp + static_cast<size_t>(m) * K + k0;
#pragma omp simd
          for (int i = 0; i < kb; i++) d[i] += g * wr[i];
        }
      }
    }
  }
}

template <typename T>
void matmul_backward_weight_generic(T* dweight, T* dbias, const T* dout, const T* inp, int M, int K, int N) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    T* dw = dweight ? dweight + static_cast<size_t>(n) * K : nullptr;
    T bsum = 0;
    for (int m = 0; m < M; m++) {
      const T g = dout[static_cast<size_t>(m) * N + n];
      bsum += g;
      if (!dw || g == T(0)) continue;
      const T* x = inp + static_cast<size_t>(m) * K;
#pragma omp simd
      for (int k = 0; k < K; k++) dw[k] += g * x[k];
    }
    if (dbias) dbias[n] += bsum;
  }
}

template <typename T>
void matmul_forward(T* out, const T* inp, const Mat& w, const T* bias, int M, bool accumulate) {
  if constexpr (std::is_same_v<T, float>)
    if (matmul_forward_packed(out, inp, w, bias, M, accumulate) || matmul_forward_avx512(out, inp, w, bias, M, accumulate) ||
        matmul_forward_avx2(out, inp, w, bias, M, accumulate))
      return;
  matmul_forward_generic(out, inp, w, bias, M, accumulate);
}

template <typename T>
void matmul_backward_input(T* dinp, const T* dout, const Mat& w, int M) {
  if constexpr (std::is_same_v<T, float>)
    if (matmul_backward_input_avx512(dinp, dout, w, M) || matmul_backward_input_avx2(dinp, dout, w, M)) return;
  matmul_backward_input_generic(dinp, dout, w, M);
}

template <typename T>
void matmul_backward_weight(T* dweight, T* dbias, const T* dout, const T* inp, int M, int K, int N, bool bf16Products) {
  if constexpr (std::is_same_v<T, float>)
    if (matmul_backward_weight_avx512(dweight, dbias, dout, inp, M, K, N, bf16Products) ||
        matmul_backward_weight_avx2(dweight, dbias, dout, inp, M, K, N))
      return;
  matmul_backward_weight_generic(dweight, dbias, dout, inp, M, K, N);
}

#define RREC_MATMUL_INSTANTIATE(T)                                                                      \
  template void matmul_forward_generic<T>(T*, const T*, const Mat&, const T*, int, bool);              \
  template void matmul_backward_input_generic<T>(T*, const T*, const Mat&, int);                       \
  template void matmul_backward_weight_generic<T>(T*, T*, const T*, const T*, int, int, int);
RREC_MATMUL_INSTANTIATE(float)
RREC_MATMUL_INSTANTIATE(double)
#undef RREC_MATMUL_INSTANTIATE

template const float* mat_rows<float>(const Mat&, int, int, float*);
template const double* mat_rows<double>(const Mat&, int, int, double*);
template void matmul_forward<float>(float*, const float*, const Mat&, const float*, int, bool);
template void matmul_forward<double>(double*, const double*, const Mat&, const double*, int, bool);
template void matmul_backward_input<float>(float*, const float*, const Mat&, int);
template void matmul_backward_input<double>(double*, const double*, const Mat&, int);
template void matmul_backward_weight<float>(float*, float*, const float*, const float*, int, int, int, bool);
template void matmul_backward_weight<double>(double*, double*, const double*, const double*, int, int, int, bool);

}  // namespace rrec::cpu
