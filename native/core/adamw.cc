// AdamW and gradient clipping (see adamw.h).
#include "rrec/adamw.h"

#include <cmath>
#include <type_traits>

#include "rrec/dtype.h"
#include "rrec/errors.h"
#include "rrec/model.h"

namespace rrec {

template <typename T>
AdamW<T>::AdamW(std::vector<Param<T>>& params) : params_(params) {
  if (params.empty()) throw ArgumentError("AdamW: there are no trainable parameters");
  for (const Param<T>& p : params) {
    m_.emplace_back(p.numel, T(0));
    v_.emplace_back(p.numel, T(0));
  }
}

template <typename T>
double AdamW<T>::gradNorm() const {
  double ss = 0;
  for (const Param<T>& p : params_) {
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < p.numel; i++) s += static_cast<double>(p.grad[i]) * static_cast<double>(p.grad[i]);
    ss += s;
  }
  return std::sqrt(ss);
}

template <typename T>
double AdamW<T>::step(const AdamWHyper& h) {
  if (!(h.lr >= 0) || !(h.beta1 >= 0 && h.beta1 < 1) || !(h.beta2 >= 0 && h.beta2 < 1) || !(h.eps > 0) || !(h.weightDecay >= 0))
    throw ArgumentError("AdamW: invalid hyper-parameters (need lr >= 0, 0 <= beta < 1, eps > 0, weight_decay >= 0)");
  const double norm = gradNorm();
  if (!std::isfinite(norm)) throw ArgumentError("AdamW: the gradient norm is not finite; the step was skipped");
  double clip = 1.0;
  if (h.maxGradNorm > 0) clip = std::min(1.0, h.maxGradNorm / (norm + 1e-6));
  t_++;
  const double bc1 = 1 - std::pow(h.beta1, static_cast<double>(t_));
  const double bc2sqrt = std::sqrt(1 - std::pow(h.beta2, static_cast<double>(t_)));
  const double stepSize = h.lr / bc1;
  const double decay = 1 - h.lr * h.weightDecay;
  for (size_t pi = 0; pi < params_.size(); pi++) {
    Param<T>& p = params_[pi];
    T* m = m_[pi].data();
    T* v = v_[pi].data();
    uint16_t* copy = p.bf16Copy;  // full fine-tune with bf16 products: kept in step in the same pass
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p.numel; i++) {
      const T g = p.grad[i] * static_cast<T>(clip);
      p.value[i] *= static_cast<T>(decay);
      m[i] += (g - m[i]) * static_cast<T>(1 - h.beta1);
      v[i] = v[i] * static_cast<T>(h.beta2) + g * g * static_cast<T>(1 - h.beta2);
      const T denom = std::sqrt(v[i]) / static_cast<T>(bc2sqrt) + static_cast<T>(h.eps);
      p.value[i] -= static_cast<T>(stepSize) * m[i] / denom;
      if constexpr (std::is_same_v<T, float>)
        if (copy) copy[i] = f32ToBf16(p.value[i]);
    }
  }
  return norm;
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace rrec
