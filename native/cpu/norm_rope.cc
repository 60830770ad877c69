// RMSNorm and rotary position embedding, forward and backward.
#include <cmath>
#include <vector>

#include "ops.h"

namespace rrec::cpu {

// Row loops run on the calling thread below this many elements: at decode sizes (one row of 896)
// a parallel region costs more than the work, and single-sequence decode opens ~15 per layer.
constexpr int64_t kParallelElems = 1 << 15;

template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* weight, int M, int C, double eps, bool plusOne) {
#pragma omp parallel for schedule(static) if (int64_t(M) * C >= kParallelElems)
  for (int m = 0; m < M; m++) {
    const T* x = inp + static_cast<size_t>(m) * C;
    T* y = out + static_cast<size_t>(m) * C;
    T ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) ss += x[c] * x[c];
    const T r = T(1) / std::sqrt(ss / T(C) + T(eps));
    rstd[m] = r;
    for (int c = 0; c < C; c++) y[c] = x[c] * r * (plusOne ? T(1) + weight[c] : weight[c]);
  }
}

// With g = w (or 1 + w), y_c = x_c r g_c, r = (mean(x^2) + eps)^-1/2:
//   dx_c = r g_c dy_c - x_c r^3 / C * sum_j(dy_j g_j x_j);   dw_c = sum_m dy_c x_c r
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int M, int C,
                      bool plusOne) {
#pragma omp parallel for schedule(static) if (int64_t(M) * C >= kParallelElems)
  for (int m = 0; m < M; m++) {
    const T* x = inp + static_cast<size_t>(m) * C;
    const T* dy = dout + static_cast<size_t>(m) * C;
    T* dx = dinp + static_cast<size_t>(m) * C;
    const T r = rstd[m];
    T dot = 0;
    for (int c = 0; c < C; c++) dot += dy[c] * (plusOne ? T(1) + weight[c] : weight[c]) * x[c];
    const T k = dot * r * r * r / T(C);
    for (int c = 0; c < C; c++) dx[c] += r * (plusOne ? T(1) + weight[c] : weight[c]) * dy[c] - x[c] * k;
  }
  if (dweight) {
#pragma omp parallel for schedule(static) if (int64_t(M) * C >= kParallelElems)
    for (int c = 0; c < C; c++) {
      T s = 0;
      for (int m = 0; m < M; m++) s += dout[static_cast<size_t>(m) * C + c] * inp[static_cast<size_t>(m) * C + c] * rstd[m];
      dweight[c] += s;
    }
  }
}

namespace {

// cos/sin of pos * inv_freq[i] for i < D/2, with inv_freq and the product in float32 (HF's
// Llama/Qwen2/Gemma2 rotary embedding computes both in float32, then cos/sin).
template <typename T>
void rope_rotate(T* x, const int32_t* pos, int M, int H, int D, double theta, T sign) {
  const int half = D / 2;
  std::vector<float> invFreq(half);
  for (int i = 0; i < half; i++)
    invFreq[i] = 1.0f / static_cast<float>(std::pow(theta, static_cast<double>(static_cast<float>(2 * i) / static_cast<float>(D))));
#pragma omp parallel for schedule(static) if (int64_t(M) * H * D >= kParallelElems)
  for (int m = 0; m < M; m++) {
    std::vector<T> cs(half), sn(half);
    for (int i = 0; i < half; i++) {
      const float angle = static_cast<float>(pos[m]) * invFreq[i];
      cs[i] = static_cast<T>(std::cos(static_cast<double>(angle)));
      sn[i] = sign * static_cast<T>(std::sin(static_cast<double>(angle)));
    }
    for (int h = 0; h < H; h++) {
      T* v = x + (static_cast<size_t>(m) * H + h) * D;
      for (int i = 0; i < half; i++) {
        const T a = v[i], b = v[i + half];
        // x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    }
  }
}

}  // namespace

template <typename T>
void rope_forward(T* x, const int32_t* pos, int M, int H, int D, double theta) {
  rope_rotate<T>(x, pos, M, H, D, theta, T(1));
}

// The rotation is orthogonal, so its transpose (rotation by -angle) maps dy to dx.
template <typename T>
void rope_backward(T* dx, const int32_t* pos, int M, int H, int D, double theta) {
  rope_rotate<T>(dx, pos, M, H, D, theta, T(-1));
}

template void rmsnorm_forward<float>(float*, float*, const float*, const float*, int, int, double, bool);
template void rmsnorm_forward<double>(double*, double*, const double*, const double*, int, int, double, bool);
template void rmsnorm_backward<float>(float*, float*, const float*, const float*, const float*, const float*, int, int, bool);
template void rmsnorm_backward<double>(double*, double*, const double*, const double*, const double*, const double*, int, int,
                                       bool);
template void rope_forward<float>(float*, const int32_t*, int, int, int, double);
template void rope_forward<double>(double*, const int32_t*, int, int, int, double);
template void rope_backward<float>(float*, const int32_t*, int, int, int, double);
template void rope_backward<double>(double*, const int32_t*, int, int, int, double);

}  // namespace rrec::cpu
