// Model<T>::forward and Model<T>::backward: the differentiable function
//   logp[i] = log softmax(lm_head(norm(h_L[targetRows[i]])))[targetTokens[i]]
// over a packed ragged batch (and the final-norm hidden states at hiddenRows), and its
// vector-Jacobian product. The layers are decoder_layer.cc's, the head lm_head.cc's; this file
// validates the batch, moves it to the device and runs them in order (backward in reverse).
//
// Shapes: M packed tokens, C hidden, n targets, h hidden rows.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "decoder_layer.h"
#include "lm_head.h"
#include "rrec/errors.h"
#include "rrec/model.h"

namespace rrec {

template <typename T>
struct ForwardState {
  DeviceArray tokens, seqOffsets, positions, targetRows, targetTokens, hiddenRows;  // I32 on the device
  std::vector<LayerActs> layers;
  DeviceArray nf, rf, xf;   // [n, C] final-norm output, [n] 1/rms, [n, C] its input rows
  DeviceArray lse;          // F64 [n] log-sum-exp of the (soft-capped) logits
  DeviceArray hnf, hrf, hxf;// the same for the hidden rows [h, C]
  bool dropout = false;
  bool recompute = false;  // layers keep only xin; backward recomputes the rest (ForwardOptions)
  uint64_t seed = 0;
  int M = 0, S = 0, n = 0, h = 0;
};

template <typename T>
ForwardPass<T>::~ForwardPass() {
  delete state_;
}

namespace {

DeviceArray deviceInts(Backend& be, const int32_t* data, int64_t n) {
  DeviceArray a(be, DType::I32, std::max<int64_t>(n, 1));
  if (n > 0) be.upload(a.ref(), data, DType::I32, static_cast<uint64_t>(n));
  return a;
}

template <typename T>
LayerInputs<T> layerInputs(const ForwardState<T>& st, Adapter<T>* adapter) {
  LayerInputs<T> in;
  in.M = st.M;
  in.positions = st.positions.ref();
  in.adapter = adapter;
  in.dropout = st.dropout;
  in.dropoutSeed = st.seed;
  return in;
}

}  // namespace

template <typename T>
std::unique_ptr<ForwardPass<T>> Model<T>::forward(const BatchInput& in, Adapter<T>* adapter, const ForwardOptions& opt) {
  const ModelConfig& c = cfg_;
  const int M = in.M, S = in.S, n = in.n, C = c.hidden, V = c.vocab;
  // ---- validate the batch: every index is checked before any kernel reads it
  if (M <= 0) throw ArgumentError("forward: the batch has no tokens");
  if (S <= 0) throw ArgumentError("forward: seqOffsets must describe at least one sequence");
  if (in.seqOffsets[0] != 0) throw ArgumentError("forward: seqOffsets[0] must be 0, got " + std::to_string(in.seqOffsets[0]));
  for (int s = 0; s < S; s++)
    if (in.seqOffsets[s + 1] <= in.seqOffsets[s])
      throw ArgumentError("forward: seqOffsets must be strictly increasing (sequence " + std::to_string(s) + " is empty)");
  if (in.seqOffsets[S] != M)
    throw ArgumentError("forward: seqOffsets[S] = " + std::to_string(in.seqOffsets[S]) + " but there are " + std::to_string(M) + " tokens");
  for (int i = 0; i < M; i++)
    if (in.tokens[i] < 0 || in.tokens[i] >= V)
      throw ArgumentError("forward: tokens[" + std::to_string(i) + "] = " + std::to_string(in.tokens[i]) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
  for (int i = 0; i < n; i++) {
    if (in.targetRows[i] < 0 || in.targetRows[i] >= M)
      throw ArgumentError("forward: targetRows[" + std::to_string(i) + "] = " + std::to_string(in.targetRows[i]) + " is outside [0, " + std::to_string(M) + ")");
    if (in.targetTokens[i] < 0 || in.targetTokens[i] >= V)
      throw ArgumentError("forward: targetTokens[" + std::to_string(i) + "] = " + std::to_string(in.targetTokens[i]) + " is outside the vocabulary [0, " + std::to_string(V) + ")");
  }
  for (int i = 0; i < in.h; i++)
    if (in.hiddenRows[i] < 0 || in.hiddenRows[i] >= M)
      throw ArgumentError("forward: hiddenRows[" + std::to_string(i) + "] = " + std::to_string(in.hiddenRows[i]) + " is outside [0, " + std::to_string(M) + ")");
  if (in.h < 0) throw ArgumentError("forward: negative hidden-row count");
  if (adapter && full_) throw ArgumentError("forward: this model was loaded for full fine-tuning; it takes no adapter");

  auto pass = std::unique_ptr<ForwardPass<T>>(new ForwardPass<T>());
  pass->adapter_ = adapter;
  auto* st = new ForwardState<T>();
  std::unique_ptr<ForwardState<T>> stGuard(st);
  Backend& be = *be_;
  st->M = M;
  st->S = S;
  st->n = n;
  st->h = in.h;
  std::vector<int32_t> positions(static_cast<size_t>(M));
  for (int s = 0; s < S; s++)
    for (int i = in.seqOffsets[s]; i < in.seqOffsets[s + 1]; i++) positions[i] = in.positions ? in.positions[i] : i - in.seqOffsets[s];
  for (int i = 0; i < M; i++)
    if (positions[i] < 0) throw ArgumentError("forward: positions[" + std::to_string(i) + "] is negative");
  st->tokens = deviceInts(be, in.tokens, M);
  st->seqOffsets = deviceInts(be, in.seqOffsets, S + 1);
  st->positions = deviceInts(be, positions.data(), M);
  st->targetRows = deviceInts(be, in.targetRows, n);
  st->targetTokens = deviceInts(be, in.targetTokens, n);
  st->hiddenRows = deviceInts(be, in.hiddenRows, in.h);

  st->dropout = opt.loraDropout && adapter && adapter->config().dropout > 0;
  st->seed = opt.dropoutSeed;
  const bool keep = opt.keepForBackward;
  st->recompute = keep && opt.recomputeActivations;
  st->layers.resize(keep ? static_cast<size_t>(c.layers) : 1);

  // ---- embeddings
  DeviceArray x(be, dtypeOf<T>(), static_cast<int64_t>(M) * C);
  rrec_embedding_args e{};
  e.out = x.raw();
  e.tokens = st->tokens.raw();
  e.emb = embed_.raw();
  e.M = M;
  e.scale = static_cast<double>(embedScale_);
  be.run(RREC_OP_EMBEDDING, e);

  const LayerInputs<T> li = layerInputs(*st, adapter);
  AttentionSource att;
  att.seqOffsets = st->seqOffsets.ref();
  att.S = S;
  for (int l = 0; l < c.layers; l++) {
    LayerActs& A = st->layers[keep ? l : 0];
    decoderLayerForward(*this, l, x, A, li, att);
    // recomputation: keep only the layer's input; backward runs the layer again from it
    if (keep && st->recompute) {
      DeviceArray xin = std::move(A.xin);
      A = LayerActs();
      A.xin = std::move(xin);
    }
  }

  // ---- final norm at the target rows only, then log-softmax over the vocabulary
  pass->logp_.assign(static_cast<size_t>(n), 0.0);
  if (opt.entropy) pass->entropy_.assign(static_cast<size_t>(n), 0.0);
  if (n > 0) {
    finalNormRows(*this, x, st->targetRows.ref(), n, st->xf, st->nf, st->rf);
    lmHeadLogprobs(*this, st->nf, st->targetTokens.ref(), n, st->lse, pass->logp_, opt.entropy ? &pass->entropy_ : nullptr);
  }
  // ---- hidden states at the hidden rows (the same final norm)
  if (in.h > 0) {
    finalNormRows(*this, x, st->hiddenRows.ref(), in.h, st->hxf, st->hnf, st->hrf);
    pass->hidden_.resize(static_cast<size_t>(in.h) * C);
    be.download(pass->hidden_.data(), dtypeOf<T>(), st->hnf.ref(), pass->hidden_.size());
  }
  if (keep) pass->state_ = stGuard.release();
  return pass;
}

template <typename T>
void Model<T>::backward(ForwardPass<T>& pass, const double* dlogp, int nIn, const double* dhidden, int64_t dhiddenCount) {
  ForwardState<T>* st = pass.state_;
  if (!st) throw ArgumentError("backward: this forward pass kept no activations (keepForBackward was false, or backward already ran)");
  if (nIn != st->n)
    throw ArgumentError("backward: got " + std::to_string(nIn) + " gradients for " + std::to_string(st->n) + " targets");
  for (int i = 0; i < nIn; i++)
    if (!std::isfinite(dlogp[i])) throw ArgumentError("backward: dlogp[" + std::to_string(i) + "] is not finite");
  const ModelConfig& c = cfg_;
  const int64_t wantHidden = static_cast<int64_t>(st->h) * c.hidden;
  if (dhidden && dhiddenCount != wantHidden)
    throw ArgumentError("backward: got " + std::to_string(dhiddenCount) + " hidden-state gradients for " + std::to_string(st->h) +
                        " hidden rows of " + std::to_string(c.hidden) + " (" + std::to_string(wantHidden) + " values)");
  if (dhidden)
    for (int64_t i = 0; i < dhiddenCount; i++)
      if (!std::isfinite(dhidden[i])) throw ArgumentError("backward: dhidden[" + std::to_string(i) + "] is not finite");
  Adapter<T>* adapter = pass.adapter_;
  Backend& be = *be_;
  const int M = st->M, n = st->n, C = c.hidden;
  const int64_t MC = static_cast<int64_t>(M) * C;
  const bool full = full_;
  const TensorRef none;

  auto normBackward = [&](DeviceArray& dxf, const DeviceArray& dnf, const DeviceArray& xf, const DeviceArray& rf, int rows) {
    rrec_rmsnorm_args a{};
    a.inp = xf.raw();
    a.weight = finalNorm_.raw();
    a.rstd = rf.raw();
    a.dinp = dxf.raw();
    a.dweight = full && !gFinalNorm_.empty() ? gFinalNorm_.raw() : absentTensor();
    a.dout = dnf.raw();
    a.M = rows;
    a.C = C;
    a.plus_one = c.normPlusOne ? 1 : 0;
    be.run(RREC_OP_RMSNORM_BWD, a);
  };

  DeviceArray dx = zerosOf<T>(be, MC);
  if (n > 0) {
    // ---- log-softmax and lm_head: dz_v = g (1[v = target] - p_v), through the soft-cap, into dnf
    DeviceArray g(be, DType::F64, n);
    be.upload(g.ref(), dlogp, DType::F64, static_cast<uint64_t>(n));
    DeviceArray dnf = zerosOf<T>(be, static_cast<int64_t>(n) * C);
    lmHeadBackward(*this, st->nf, st->targetTokens.ref(), st->lse, g, n, dnf);
    // final norm, scattered back to the target rows of the residual stream
    DeviceArray dxf = zerosOf<T>(be, static_cast<int64_t>(n) * C);
    normBackward(dxf, dnf, st->xf, st->rf, n);
    const rrec_rows_args sc{dx.raw(), dxf.raw(), st->targetRows.raw(), n, C};
    be.run(RREC_OP_SCATTER_ADD_ROWS, sc);
  }
  if (dhidden && st->h > 0) {
    DeviceArray dhn(be, dtypeOf<T>(), wantHidden);
    be.upload(dhn.ref(), dhidden, DType::F64, static_cast<uint64_t>(wantHidden));
    DeviceArray dhx = zerosOf<T>(be, wantHidden);
    normBackward(dhx, dhn, st->hxf, st->hrf, st->h);
    const rrec_rows_args sc{dx.raw(), dhx.raw(), st->hiddenRows.raw(), st->h, C};
    be.run(RREC_OP_SCATTER_ADD_ROWS, sc);
  }

  const LayerInputs<T> li = layerInputs(*st, adapter);
  AttentionSource att;
  att.seqOffsets = st->seqOffsets.ref();
  att.S = st->S;
  for (int l = c.layers - 1; l >= 0; l--) {
    LayerActs& A = st->layers[l];
    if (st->recompute) {  // the same computation as the forward's, from the kept layer input
      DeviceArray xin = A.xin.clone();
      decoderLayerForward(*this, l, xin, A, li, att);
    }
    decoderLayerBackward(*this, l, dx, A, li, att);
    // release this layer's activations as soon as they are consumed
    A = LayerActs();
  }
  if (full && !gEmbed_.empty()) {
    rrec_embedding_args e{};
    e.dout = dx.raw();
    e.demb = gEmbed_.raw();
    e.tokens = st->tokens.raw();
    e.emb = embed_.raw();
    e.M = M;
    e.scale = static_cast<double>(embedScale_);
    be.run(RREC_OP_EMBEDDING_BWD, e);
  }
  (void)none;
  delete st;
  pass.state_ = nullptr;
}

template class Model<float>;
template class Model<double>;
template class ForwardPass<float>;
template class ForwardPass<double>;

}  // namespace rrec
