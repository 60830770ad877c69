// AdamW and gradient clipping (see adamw.h): the host computes the step's scalars (clip factor,
// bias corrections), the backend updates every element.
#include "rrec/adamw.h"

#include <cmath>

#include "rrec/errors.h"

namespace rrec {

template <typename T>
AdamW<T>::AdamW(Backend& be, std::vector<Param>& params) : be_(be), params_(params) {
  if (params.empty()) throw ArgumentError("AdamW: there are no trainable parameters");
  for (const Param& p : params) {
    m_.emplace_back(be, dtypeOf<T>(), p.numel);
    v_.emplace_back(be, dtypeOf<T>(), p.numel);
    m_.back().zero();
    v_.back().zero();
  }
}

template <typename T>
double AdamW<T>::gradNorm() const {
  std::vector<rrec_tensor> grads;
  std::vector<int64_t> numel;
  for (const Param& p : params_) {
    grads.push_back(p.grad.raw());
    numel.push_back(p.numel);
  }
  double ss = 0;
  const rrec_grad_norm_args a{grads.data(), numel.data(), static_cast<int32_t>(grads.size()), 0, &ss};
  be_.run(RREC_OP_GRAD_NORM_SQ, a);
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
  std::vector<rrec_adamw_param> ps;
  for (size_t i = 0; i < params_.size(); i++) {
    const Param& p = params_[i];
    ps.push_back({p.value.raw(), p.grad.raw(), m_[i].raw(), v_[i].raw(), p.bf16Copy.empty() ? absentTensor() : p.bf16Copy.raw(), p.numel});
  }
  const rrec_adamw_args a{ps.data(), static_cast<int32_t>(ps.size()), 0, clip, decay, h.beta1, h.beta2, stepSize, bc2sqrt, h.eps};
  be_.run(RREC_OP_ADAMW, a);
  return norm;
}

template class AdamW<float>;
template class AdamW<double>;

}  // namespace rrec
