// AdamW over a list of parameters (an adapter's or a fully fine-tuned model's), with global
// gradient-norm clipping, following torch.optim.AdamW and torch.nn.utils.clip_grad_norm_. The
// moments live on the parameters' device; the update is one backend op (RREC_OP_ADAMW).
#pragma once
#include <cstdint>
#include <vector>

#include "rrec/model.h"

namespace rrec {

struct AdamWHyper {
  double lr = 1e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weightDecay = 0.0;
  double maxGradNorm = 0.0;  // <= 0: no clipping
};

template <typename T>
class AdamW {
 public:
  AdamW(Backend& be, std::vector<Param>& params);
  // Global L2 norm of all gradients (accumulated in double).
  double gradNorm() const;
  // Clips (if maxGradNorm > 0), then one AdamW update; returns the norm before clipping.
  double step(const AdamWHyper& h);
  int64_t steps() const { return t_; }
  void setSteps(int64_t t) { t_ = t; }
  // First and second moments of parameter i (same length as the parameter), on the device.
  DeviceArray& m(size_t i) { return m_[i]; }
  DeviceArray& v(size_t i) { return v_[i]; }
  size_t size() const { return params_.size(); }
  const Param& param(size_t i) const { return params_[i]; }
  Backend& backend() const { return be_; }

 private:
  Backend& be_;
  std::vector<Param>& params_;
  std::vector<DeviceArray> m_, v_;
  int64_t t_ = 0;
};

}  // namespace rrec
