// The LM head, in one place for the trainer and the engine: the final norm at chosen rows of the
// residual stream and the vocabulary products behind it (backend ops RREC_OP_LM_HEAD_LOGPROBS,
// RREC_OP_LM_HEAD_BWD, RREC_OP_LOGITS). Shapes: n rows, C hidden, V vocabulary.
#pragma once
#include <cstdint>
#include <vector>

#include "decoder_layer.h"

namespace rrec {

// The final norm at `rows` of x [M, C]: xf [n, C] (the gathered rows), nf [n, C] (normed), rf [n].
template <typename T>
void finalNormRows(const Model<T>& model, const DeviceArray& x, const TensorRef& rows, int n, DeviceArray& xf, DeviceArray& nf,
                   DeviceArray& rf);

// log p(target) of each row of nf [n, C] (+ entropy), lse [n] (F64, kept for the backward).
template <typename T>
void lmHeadLogprobs(const Model<T>& model, const DeviceArray& nf, const TensorRef& targets, int n, DeviceArray& lse,
                    std::vector<double>& logp, std::vector<double>* entropy);

// dnf [n, C] += d/dnf of sum_i dlogp[i] logp[i]; full fine-tune: the LM head's gradient too.
template <typename T>
void lmHeadBackward(const Model<T>& model, const DeviceArray& nf, const TensorRef& targets, const DeviceArray& lse,
                    const DeviceArray& dlogp, int n, DeviceArray& dnf);

// Sampling rows: logits [R, V] (soft-capped) and lse [R] (F64) of nf [R, C].
template <typename T>
void lmHeadLogits(const Model<T>& model, const DeviceArray& nf, int R, DeviceArray& logits, DeviceArray& lse);

}  // namespace rrec
