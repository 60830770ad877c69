// AdamW and the gradient norm on the CPU (model_ops.h), torch.optim.AdamW's update order.
#include <cmath>
#include <type_traits>

#include "cpu/model_ops.h"
#include "rrec/dtype.h"

namespace rrec::cpu {

template <typename T>
double grad_norm_sq(const T* const* grads, const int64_t* numel, int count) {
  double ss = 0;
  for (int pi = 0; pi < count; pi++) {
    const T* g = grads[pi];
    const int64_t n = numel[pi];
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (int64_t i = 0; i < n; i++) s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
    ss += s;
  }
  return ss;
}

template <typename T>
void adamw_update(T* value, const T* grad, T* m, T* v, uint16_t* copy, int64_t numel, const AdamWStep& h) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < numel; i++) {
    const T g = grad[i] * static_cast<T>(h.clip);
    value[i] *= static_cast<T>(h.decay);
    m[i] += (g - m[i]) * static_cast<T>(1 - h.beta1);
    v[i] = v[i] * static_cast<T>(h.beta2) + g * g * static_cast<T>(1 - h.beta2);
    const T denom = std::sqrt(v[i]) / static_cast<T>(h.bc2sqrt) + static_cast<T>(h.eps);
    value[i] -= static_cast<T>(h.stepSize) * m[i] / denom;
    if constexpr (std::is_same_v<T, float>)
      if (copy) copy[i] = f32ToBf16(value[i]);
  }
}

template double grad_norm_sq<float>(const float* const*, const int64_t*, int);
template double grad_norm_sq<double>(const double* const*, const int64_t*, int);
template void adamw_update<float>(float*, const float*, float*, float*, uint16_t*, int64_t, const AdamWStep&);
template void adamw_update<double>(double*, const double*, double*, double*, uint16_t*, int64_t, const AdamWStep&);

}  // namespace rrec::cpu
