// LoRA adapters with PEFT's conventions: A [r, in] kaiming-uniform(a = sqrt(5)) i.e.
// U(-1/sqrt(in), 1/sqrt(in)), B [out, r] zero, scale alpha / r (rsLoRA: alpha / sqrt(r)).
#include <cmath>

#include "rrec/errors.h"
#include "rrec/model.h"
#include "rrec/rng.h"

#include <vector>

namespace rrec {

template <typename T>
Adapter<T>::Adapter(Model<T>& model, const LoraConfig& cfg) : cfg_(cfg), be_(model.backendPtr()) {
  const ModelConfig& c = model.config();
  if (cfg.rank <= 0) throw ArgumentError("lora rank must be positive, got " + std::to_string(cfg.rank));
  if (!(cfg.alpha > 0)) throw ArgumentError("lora alpha must be positive");
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw ArgumentError("lora dropout must be in [0, 1)");
  if ((cfg.targets & 0x7fu) == 0) throw ArgumentError("lora targets are empty");
  scale_ = static_cast<T>(cfg.rslora ? cfg.alpha / std::sqrt(static_cast<double>(cfg.rank)) : cfg.alpha / cfg.rank);
  const int C = c.hidden, D = c.headDim, F = c.intermediate;
  const int outDims[kNumModules] = {c.heads * D, c.kvHeads * D, c.kvHeads * D, C, F, F, C};
  const int inDims[kNumModules] = {C, C, C, c.heads * D, C, C, F};
  for (int m = 0; m < kNumModules; m++) {
    in_[m] = inDims[m];
    out_[m] = outDims[m];
  }
  const size_t slots = static_cast<size_t>(c.layers) * kNumModules;
  a_.resize(slots);
  b_.resize(slots);
  ga_.resize(slots);
  gb_.resize(slots);
  const int r = cfg.rank;
  for (int l = 0; l < c.layers; l++) {
    for (int m = 0; m < kNumModules; m++) {
      if (!has(l, m)) continue;
      const size_t s = static_cast<size_t>(l) * kNumModules + m;
      const size_t na = static_cast<size_t>(r) * in_[m], nb = static_cast<size_t>(out_[m]) * r;
      Backend& be = *be_;
      a_[s].reset(be, dtypeOf<T>(), static_cast<int64_t>(na));
      b_[s].reset(be, dtypeOf<T>(), static_cast<int64_t>(nb));
      ga_[s].reset(be, dtypeOf<T>(), static_cast<int64_t>(na));
      gb_[s].reset(be, dtypeOf<T>(), static_cast<int64_t>(nb));
      b_[s].zero();
      ga_[s].zero();
      gb_[s].zero();
      // kaiming_uniform_(a=sqrt(5)) on [r, in]: bound = sqrt(6 / ((1 + 5) * fan_in)) = 1 / sqrt(in)
      const double bound = 1.0 / std::sqrt(static_cast<double>(in_[m]));
      Rng rng(cfg.seed, static_cast<uint64_t>(l) * kNumModules + m);
      std::vector<T> init(na);
      for (size_t i = 0; i < na; i++) init[i] = static_cast<T>((2 * rng.uniform() - 1) * bound);
      be.upload(a_[s].ref(), init.data(), dtypeOf<T>(), na);
      const std::string base =
          "base_model.model.model.layers." + std::to_string(l) + "." + moduleParent(m) + "." + moduleName(m);
      params_.push_back({base + ".lora_A.weight", {r, in_[m]}, a_[s].ref(), ga_[s].ref(), static_cast<int64_t>(na), TensorRef{}});
      params_.push_back({base + ".lora_B.weight", {out_[m], r}, b_[s].ref(), gb_[s].ref(), static_cast<int64_t>(nb), TensorRef{}});
    }
  }
}

template <typename T>
void Adapter<T>::zeroGrad() {
  for (const Param& p : params_) be_->zero(p.grad, static_cast<uint64_t>(p.numel) * sizeof(T));
}

template class Adapter<float>;
template class Adapter<double>;

}  // namespace rrec
