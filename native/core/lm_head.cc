// The LM head (see lm_head.h).
#include "lm_head.h"

namespace rrec {

template <typename T>
void finalNormRows(const Model<T>& model, const DeviceArray& x, const TensorRef& rows, int n, DeviceArray& xf, DeviceArray& nf,
                   DeviceArray& rf) {
  Backend& be = model.backend();
  const ModelConfig& c = model.config();
  xf.resize(be, dtypeOf<T>(), static_cast<int64_t>(n) * c.hidden);
  const rrec_rows_args g{xf.raw(), x.raw(), rows.raw(), n, c.hidden};
  be.run(RREC_OP_GATHER_ROWS, g);
  rmsnormRows<T>(be, nf, rf, xf.ref(), model.finalNorm(), n, c.hidden, c.rmsEps, c.normPlusOne);
}

template <typename T>
void lmHeadLogprobs(const Model<T>& model, const DeviceArray& nf, const TensorRef& targets, int n, DeviceArray& lse,
                    std::vector<double>& logp, std::vector<double>* entropy) {
  Backend& be = model.backend();
  lse.resize(be, DType::F64, n);
  DeviceArray lp(be, DType::F64, n), ent;
  if (entropy) ent.reset(be, DType::F64, n);
  rrec_lm_head_args a{};
  a.hidden = nf.raw();
  a.w = model.lmHead().raw();
  a.targets = targets.raw();
  a.logp = lp.raw();
  a.lse = lse.raw();
  a.entropy = rawOrAbsent(ent);
  a.n = n;
  a.softcap = model.config().finalSoftcap;
  be.run(RREC_OP_LM_HEAD_LOGPROBS, a);
  logp.resize(static_cast<size_t>(n));
  be.download(logp.data(), DType::F64, lp.ref(), static_cast<uint64_t>(n));
  if (entropy) {
    entropy->resize(static_cast<size_t>(n));
    be.download(entropy->data(), DType::F64, ent.ref(), static_cast<uint64_t>(n));
  }
}

template <typename T>
void lmHeadBackward(const Model<T>& model, const DeviceArray& nf, const TensorRef& targets, const DeviceArray& lse,
                    const DeviceArray& dlogp, int n, DeviceArray& dnf) {
  Backend& be = model.backend();
  rrec_lm_head_args a{};
  a.hidden = nf.raw();
  a.w = model.lmHead().raw();
  a.targets = targets.raw();
  a.lse = lse.raw();
  a.dlogp = dlogp.raw();
  a.dhidden = dnf.raw();
  a.dw = model.fullFinetune() && !model.lmHeadGrad().empty() ? model.lmHeadGrad().raw() : absentTensor();
  a.n = n;
  a.softcap = model.config().finalSoftcap;
  be.run(RREC_OP_LM_HEAD_BWD, a);
}

template <typename T>
void lmHeadLogits(const Model<T>& model, const DeviceArray& nf, int R, DeviceArray& logits, DeviceArray& lse) {
  Backend& be = model.backend();
  logits.resize(be, dtypeOf<T>(), static_cast<int64_t>(R) * model.config().vocab);
  lse.resize(be, DType::F64, R);
  const rrec_logits_args a{logits.raw(), lse.raw(), nf.raw(), model.lmHead().raw(), R, 0, model.config().finalSoftcap};
  be.run(RREC_OP_LOGITS, a);
}

#define RREC_LM_HEAD(T)                                                                                                    \
  template void finalNormRows<T>(const Model<T>&, const DeviceArray&, const TensorRef&, int, DeviceArray&, DeviceArray&,   \
                                 DeviceArray&);                                                                            \
  template void lmHeadLogprobs<T>(const Model<T>&, const DeviceArray&, const TensorRef&, int, DeviceArray&,                \
                                  std::vector<double>&, std::vector<double>*);                                             \
  template void lmHeadBackward<T>(const Model<T>&, const DeviceArray&, const TensorRef&, const DeviceArray&,               \
                                  const DeviceArray&, int, DeviceArray&);                                                  \
  template void lmHeadLogits<T>(const Model<T>&, const DeviceArray&, int, DeviceArray&, DeviceArray&);
RREC_LM_HEAD(float)
RREC_LM_HEAD(double)
#undef RREC_LM_HEAD

}  // namespace rrec
