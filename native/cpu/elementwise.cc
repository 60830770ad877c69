// Gated activations (SwiGLU, GeGLU-tanh) and token embeddings, forward and backward.
#include <cmath>
#include <cstring>

#include "fast_exp.h"
#include "ops.h"

namespace rrec::cpu {

namespace {

template <typename T>
inline T silu(T x) { return x / (T(1) + expT(-x)); }
// silu(x) and its derivative from one exp
template <typename T>
inline void silu_and_grad(T x, T& value, T& grad) {
  const T e = expT(-x);
  value = x / (T(1) + e);
  const T s = T(1) / (T(1) + e);
  grad = s * (T(1) + x * (T(1) - s));
}
// gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
constexpr double kGeluC = 0.7978845608028654;  // sqrt(2 / pi)
template <typename T>
inline T gelu_tanh(T x) {
  const T u = T(kGeluC) * (x + T(0.044715) * x * x * x);
  return T(0.5) * x * (T(1) + tanhT(u));
}
// gelu_tanh(x) and its derivative from one tanh
template <typename T>
inline void gelu_tanh_and_grad(T x, T& value, T& grad) {
  const T u = T(kGeluC) * (x + T(0.044715) * x * x * x);
  const T t = tanhT(u);
  value = T(0.5) * x * (T(1) + t);
  const T du = T(kGeluC) * (T(1) + T(3 * 0.044715) * x * x);
  grad = T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du;
}

}  // namespace

// The activation is chosen outside the loops so that each loop body is branch-free and
// vectorises (fast_exp.h). Below kParallelElems elements (decode: one row of 4864) the loops run
// on the calling thread: a parallel region costs more than the work.
constexpr int64_t kParallelElems = 1 << 15;
template <typename T>
void gated_act_forward(T* h, const T* gate, const T* up, int64_t n, Act act) {
  if (act == Act::SiLU) {
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
    for (int64_t i = 0; i < n; i++) h[i] = silu(gate[i]) * up[i];
  } else {
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
    for (int64_t i = 0; i < n; i++) h[i] = gelu_tanh(gate[i]) * up[i];
  }
}

template <typename T>
void gated_act_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, int64_t n, Act act) {
  if (act == Act::SiLU) {
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
    for (int64_t i = 0; i < n; i++) {
      T a, da;
      silu_and_grad(gate[i], a, da);
      dgate[i] = dh[i] * up[i] * da;
      dup[i] = dh[i] * a;
    }
  } else {
#pragma omp parallel for schedule(static) if (n >= kParallelElems)
    for (int64_t i = 0; i < n; i++) {
      T a, da;
      gelu_tanh_and_grad(gate[i], a, da);
      dgate[i] = dh[i] * up[i] * da;
      dup[i] = dh[i] * a;
    }
  }
}

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const Mat& emb, int M, T scale) {
  const int C = emb.cols;
#pragma omp parallel
  {
    T* buf = new T[static_cast<size_t>(C)];
#pragma omp for schedule(static)
    for (int m = 0; m < M; m++) {
      const T* row = mat_rows<T>(emb, tokens[m], 1, buf);
      T* o = out + static_cast<size_t>(m) * C;
      for (int c = 0; c < C; c++) o[c] = row[c] * scale;
    }
    delete[] buf;
  }
}

template <typename T>
void embedding_backward(T* demb, const T* dout, const int32_t* tokens, int M, int C, T scale) {
  // Serial over tokens: a token id may repeat, and the rows are short.
  for (int m = 0; m < M; m++) {
    T* d = demb + static_cast<size_t>(tokens[m]) * C;
    const T* g = dout + static_cast<size_t>(m) * C;
    for (int c = 0; c < C; c++) d[c] += g[c] * scale;
  }
}

template void gated_act_forward<float>(float*, const float*, const float*, int64_t, Act);
template void gated_act_forward<double>(double*, const double*, const double*, int64_t, Act);
template void gated_act_backward<float>(float*, float*, const float*, const float*, const float*, int64_t, Act);
template void gated_act_backward<double>(double*, double*, const double*, const double*, const double*, int64_t, Act);
template void embedding_forward<float>(float*, const int32_t*, const Mat&, int, float);
template void embedding_forward<double>(double*, const int32_t*, const Mat&, int, double);
template void embedding_backward<float>(float*, const float*, const int32_t*, int, int, float);
template void embedding_backward<double>(double*, const double*, const int32_t*, int, int, double);

}  // namespace rrec::cpu
