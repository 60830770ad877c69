// Model<T>::forward and Model<T>::backward: the differentiable function
//   logp[i] = log softmax(lm_head(norm(h_L[targetRows[i]])))[targetTokens[i]]
// over a packed ragged batch, and its vector-Jacobian product.
//
// Shapes: M packed tokens, C hidden, Hq/Hk heads of D dims, F intermediate, V vocab, n targets,
// r LoRA rank. The backward replays the forward in reverse and accumulates (+=) into gradients.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "rrec/buffer_pool.h"
#include "rrec/errors.h"
#include "rrec/model.h"
#include "rrec/rng.h"
#include "layer_ops.h"

namespace rrec {

template <typename T>
struct LayerActs {
  Buf<T> xin;            // [M, C] residual stream entering the layer
  Buf<T> n1, r1;         // [M, C], [M] attention-input norm and its 1/rms
  Buf<T> q, k, v;        // [M, Hq*D], [M, Hk*D] x2 (q, k after rotary)
  Buf<T> lse;            // [M, Hq] attention log-sum-exp per row and head
  Buf<T> att;            // [M, Hq*D] attention output, o_proj input
  Buf<T> ao, rp1;        // [M, C], [M] o_proj output and its post-norm 1/rms (Gemma2)
  Buf<T> xmid;           // [M, C] residual after attention
  Buf<T> n2, r2;         // [M, C], [M] MLP-input norm
  Buf<T> gate, up, h;    // [M, F]
  Buf<T> mo, rp2;        // [M, C], [M] down_proj output and post-norm 1/rms (Gemma2)
  Buf<T> xa[kNumModules];// [M, r] LoRA: dropout(x) @ A^T
};

template <typename T>
struct ForwardState {
  std::vector<int32_t> tokens, seqOffsets, positions, targetRows, targetTokens;
  std::vector<LayerActs<T>> layers;
  Buf<T> nf, rf, xf;   // [n, C] final-norm output, [n] 1/rms, [n, C] its input rows
  std::vector<double> lse;     // [n] log-sum-exp of the (soft-capped) logits
  bool dropout = false;
  bool recompute = false;  // layers keep only xin; backward recomputes the rest (ForwardOptions)
  uint64_t seed = 0;
  int M = 0, S = 0, n = 0;
};

template <typename T>
ForwardPass<T>::~ForwardPass() {
  delete state_;
}

// One decoder layer: x [M, C] in, x out; A receives every activation backward needs. Shared by the
// forward and by the backward's recomputation (activation checkpointing), which must compute
// exactly the same values (dropout masks are a pure function of the pass's seed).
template <typename T>
void layerForward(const Model<T>& model, int l, LayerActs<T>& A, const ForwardState<T>& stRef, Adapter<T>* adapter, Buf<T>& x) {
  const ForwardState<T>* st = &stRef;
  const ModelConfig& c = model.config();
  const typename Model<T>::Layer& L = model.layer(l);
  const int M = st->M, S = st->S, C = c.hidden, D = c.headDim, Hq = c.heads, Hk = c.kvHeads, F = c.intermediate;
  const cpu::Act act = c.act == Activation::SiLU ? cpu::Act::SiLU : cpu::Act::GeluTanh;
  const size_t MC = static_cast<size_t>(M) * C;
  A.xin = x;
  // attention block
  rmsnormRows(A.n1, A.r1, A.xin.data(), L.attnNorm, M, C, c.rmsEps, c.normPlusOne);
  // buffers every element of which the next kernel writes are resized, not zeroed (see Buf)
  A.q.resize(static_cast<size_t>(M) * Hq * D);
  A.k.resize(static_cast<size_t>(M) * Hk * D);
  A.v.resize(static_cast<size_t>(M) * Hk * D);
  T* qkv[3] = {A.q.data(), A.k.data(), A.v.data()};
  for (int m = kQ; m <= kV; m++) {
    cpu::matmul_forward(qkv[m], A.n1.data(), L.w[m], L.bias[m].empty() ? nullptr : L.bias[m].data(), M, false);
    if (adapter && adapter->has(l, m)) loraForward(qkv[m], A.n1.data(), M, *adapter, l, m, A.xa[m], st->dropout, st->seed);
  }
  cpu::rope_forward(A.q.data(), st->positions.data(), M, Hq, D, c.ropeTheta);
  cpu::rope_forward(A.k.data(), st->positions.data(), M, Hk, D, c.ropeTheta);
  A.lse.resize(static_cast<size_t>(M) * Hq);
  A.att.resize(static_cast<size_t>(M) * Hq * D);
  const int window = c.layerIsSliding(l) ? c.slidingWindow : 0;
  cpu::attention_forward(A.att.data(), A.lse.data(), A.q.data(), A.k.data(), A.v.data(), st->seqOffsets.data(), S, Hq, Hk, D,
                         c.attnScale, c.attnSoftcap, window);
  A.ao.resize(MC);
  cpu::matmul_forward(A.ao.data(), A.att.data(), L.w[kO], L.bias[kO].empty() ? nullptr : L.bias[kO].data(), M, false);
  if (adapter && adapter->has(l, kO)) loraForward(A.ao.data(), A.att.data(), M, *adapter, l, kO, A.xa[kO], st->dropout, st->seed);
  A.xmid = A.xin;
  if (c.sandwichNorms) {
    Buf<T> normed;
    rmsnormRows(normed, A.rp1, A.ao.data(), L.attnPostNorm, M, C, c.rmsEps, c.normPlusOne);
    addInto(A.xmid.data(), normed.data(), MC);
  } else {
    addInto(A.xmid.data(), A.ao.data(), MC);
  }
  // MLP block
  rmsnormRows(A.n2, A.r2, A.xmid.data(), L.mlpNorm, M, C, c.rmsEps, c.normPlusOne);
  const size_t MF = static_cast<size_t>(M) * F;
  A.gate.resize(MF);
  A.up.resize(MF);
  cpu::matmul_forward(A.gate.data(), A.n2.data(), L.w[kGate], L.bias[kGate].empty() ? nullptr : L.bias[kGate].data(), M, false);
  if (adapter && adapter->has(l, kGate)) loraForward(A.gate.data(), A.n2.data(), M, *adapter, l, kGate, A.xa[kGate], st->dropout, st->seed);
  cpu::matmul_forward(A.up.data(), A.n2.data(), L.w[kUp], L.bias[kUp].empty() ? nullptr : L.bias[kUp].data(), M, false);
  if (adapter && adapter->has(l, kUp)) loraForward(A.up.data(), A.n2.data(), M, *adapter, l, kUp, A.xa[kUp], st->dropout, st->seed);
  A.h.resize(MF);
  cpu::gated_act_forward(A.h.data(), A.gate.data(), A.up.data(), static_cast<int64_t>(MF), act);
  A.mo.resize(MC);
  cpu::matmul_forward(A.mo.data(), A.h.data(), L.w[kDown], L.bias[kDown].empty() ? nullptr : L.bias[kDown].data(), M, false);
  if (adapter && adapter->has(l, kDown)) loraForward(A.mo.data(), A.h.data(), M, *adapter, l, kDown, A.xa[kDown], st->dropout, st->seed);
  x = A.xmid;
  if (c.sandwichNorms) {
    Buf<T> normed;
    rmsnormRows(normed, A.rp2, A.mo.data(), L.mlpPostNorm, M, C, c.rmsEps, c.normPlusOne);
    addInto(x.data(), normed.data(), MC);
  } else {
    addInto(x.data(), A.mo.data(), MC);
  }
}

// dense, dropoutScale, addInto, rmsnormRows, loraForward and loraBackward live in layer_ops.h,
// shared with the sampling engine (engine.cc) so both run the same per-layer math.

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
  if (adapter && full_) throw ArgumentError("forward: this model was loaded for full fine-tuning; it takes no adapter");

  auto pass = std::unique_ptr<ForwardPass<T>>(new ForwardPass<T>());
  pass->adapter_ = adapter;
  auto* st = new ForwardState<T>();
  std::unique_ptr<ForwardState<T>> stGuard(st);
  st->M = M;
  st->S = S;
  st->n = n;
  st->tokens.assign(in.tokens, in.tokens + M);
  st->seqOffsets.assign(in.seqOffsets, in.seqOffsets + S + 1);
  st->positions.resize(static_cast<size_t>(M));
  for (int s = 0; s < S; s++)
    for (int i = in.seqOffsets[s]; i < in.seqOffsets[s + 1]; i++)
      st->positions[i] = in.positions ? in.positions[i] : i - in.seqOffsets[s];
  for (int i = 0; i < M; i++)
    if (st->positions[i] < 0) throw ArgumentError("forward: positions[" + std::to_string(i) + "] is negative");
  st->targetRows.assign(in.targetRows, in.targetRows + n);
  st->targetTokens.assign(in.targetTokens, in.targetTokens + n);

  st->dropout = opt.loraDropout && adapter && adapter->config().dropout > 0;
  st->seed = opt.dropoutSeed;
  const bool keep = opt.keepForBackward;
  st->recompute = keep && opt.recomputeActivations;
  st->layers.resize(keep ? static_cast<size_t>(c.layers) : 1);

  // ---- embeddings
  Buf<T> x(static_cast<size_t>(M) * C);
  cpu::embedding_forward(x.data(), st->tokens.data(), embed_, M, embedScale_);

  for (int l = 0; l < c.layers; l++) {
    LayerActs<T>& A = st->layers[keep ? l : 0];
    layerForward(*this, l, A, *st, adapter, x);
    // recomputation: keep only the layer's input; backward runs the layer again from it
    if (keep && st->recompute) {
      Buf<T> xin = std::move(A.xin);
      A = LayerActs<T>();
      A.xin = std::move(xin);
    }
  }

  // ---- final norm at target rows only, then log-softmax over the vocabulary in chunks
  st->xf.resize(static_cast<size_t>(n) * C);
  for (int i = 0; i < n; i++)
    std::memcpy(&st->xf[static_cast<size_t>(i) * C], &x[static_cast<size_t>(st->targetRows[i]) * C], sizeof(T) * C);
  rmsnormRows(st->nf, st->rf, st->xf.data(), finalNorm_, n, C, c.rmsEps, c.normPlusOne);
  pass->logp_.assign(static_cast<size_t>(n), 0.0);
  if (opt.entropy) pass->entropy_.assign(static_cast<size_t>(n), 0.0);
  st->lse.assign(static_cast<size_t>(n), 0.0);
  const int chunk = std::max(1, std::min(n, (1 << 22) / std::max(1, V)));
  Buf<T> logits(static_cast<size_t>(chunk) * V);
  const double cap = c.finalSoftcap;
  for (int i0 = 0; i0 < n; i0 += chunk) {
    const int nc = std::min(chunk, n - i0);
    cpu::matmul_forward(logits.data(), &st->nf[static_cast<size_t>(i0) * C], lmHead_, static_cast<const T*>(nullptr), nc, false);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nc; i++) {
      T* z = &logits[static_cast<size_t>(i) * V];
      if (cap > 0)
        for (int v = 0; v < V; v++) z[v] = T(cap) * std::tanh(z[v] / T(cap));
      double mx = -INFINITY;
      for (int v = 0; v < V; v++) mx = std::max(mx, static_cast<double>(z[v]));
      double sum = 0, pz = 0;
      for (int v = 0; v < V; v++) {
        const double e = std::exp(static_cast<double>(z[v]) - mx);
        sum += e;
        pz += e * static_cast<double>(z[v]);
      }
      const double lse = mx + std::log(sum);
      st->lse[i0 + i] = lse;
      pass->logp_[i0 + i] = static_cast<double>(z[st->targetTokens[i0 + i]]) - lse;
      if (opt.entropy) pass->entropy_[i0 + i] = lse - pz / sum;
    }
  }
  if (keep) pass->state_ = stGuard.release();
  return pass;
}

template <typename T>
void Model<T>::backward(ForwardPass<T>& pass, const double* dlogp, int nIn) {
  ForwardState<T>* st = pass.state_;
  if (!st) throw ArgumentError("backward: this forward pass kept no activations (keepForBackward was false, or backward already ran)");
  if (nIn != st->n)
    throw ArgumentError("backward: got " + std::to_string(nIn) + " gradients for " + std::to_string(st->n) + " targets");
  for (int i = 0; i < nIn; i++)
    if (!std::isfinite(dlogp[i])) throw ArgumentError("backward: dlogp[" + std::to_string(i) + "] is not finite");
  Adapter<T>* adapter = pass.adapter_;
  const ModelConfig& c = cfg_;
  const int M = st->M, S = st->S, n = st->n, C = c.hidden, D = c.headDim, Hq = c.heads, Hk = c.kvHeads, F = c.intermediate,
            V = c.vocab;
  const size_t MC = static_cast<size_t>(M) * C, MF = static_cast<size_t>(M) * F;
  const cpu::Act act = c.act == Activation::SiLU ? cpu::Act::SiLU : cpu::Act::GeluTanh;
  const bool full = full_;

  // ---- log-softmax and lm_head: dz_v = g (1[v = target] - p_v), through the soft-cap, into dnf
  Buf<T> dnf(static_cast<size_t>(n) * C, T(0));
  const int chunk = std::max(1, std::min(n, (1 << 22) / std::max(1, V)));
  Buf<T> logits(static_cast<size_t>(chunk) * V);
  const double cap = c.finalSoftcap;
  for (int i0 = 0; i0 < n; i0 += chunk) {
    const int nc = std::min(chunk, n - i0);
    cpu::matmul_forward(logits.data(), &st->nf[static_cast<size_t>(i0) * C], lmHead_, static_cast<const T*>(nullptr), nc, false);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < nc; i++) {
      T* z = &logits[static_cast<size_t>(i) * V];
      const double g = dlogp[i0 + i], lse = st->lse[i0 + i];
      const int tgt = st->targetTokens[i0 + i];
      for (int v = 0; v < V; v++) {
        double raw = static_cast<double>(z[v]), zz = raw, dcap = 1;
        if (cap > 0) {
          const double t = std::tanh(raw / cap);
          zz = cap * t;
          dcap = 1 - t * t;
        }
        const double p = std::exp(zz - lse);
        z[v] = static_cast<T>(g * ((v == tgt ? 1.0 : 0.0) - p) * dcap);  // z now holds dlogits
      }
    }
    cpu::matmul_backward_input(&dnf[static_cast<size_t>(i0) * C], logits.data(), lmHead_, nc);
    if (full && gLmHead_)
      cpu::matmul_backward_weight(gLmHead_, static_cast<T*>(nullptr), logits.data(), &st->nf[static_cast<size_t>(i0) * C], nc, C, V);
  }
  // final norm, scattered back to the target rows of the residual stream
  Buf<T> dxf(static_cast<size_t>(n) * C, T(0));
  cpu::rmsnorm_backward(dxf.data(), full ? gFinalNorm_ : static_cast<T*>(nullptr), dnf.data(), st->xf.data(), finalNorm_.data(),
                        st->rf.data(), n, C, c.normPlusOne);
  Buf<T> dx = zeros<T>(MC);
  for (int i = 0; i < n; i++) {
    T* d = &dx[static_cast<size_t>(st->targetRows[i]) * C];
    const T* s = &dxf[static_cast<size_t>(i) * C];
    for (int j = 0; j < C; j++) d[j] += s[j];
  }

  auto baseBackward = [&](T* dX, const T* X, const T* dY, const Layer& L, int m) {
    cpu::matmul_backward_input(dX, dY, L.w[m], M);
    // bf16 products where the projection multiplies a bf16 copy of its master (Model::makeBf16Copies)
    if (full)
      cpu::matmul_backward_weight(L.gw[m], L.gbias[m], dY, X, M, L.w[m].cols, L.w[m].rows,
                                  L.w[m].bf16Products && L.w[m].dtype == DType::BF16);
  };

  for (int l = c.layers - 1; l >= 0; l--) {
    const Layer& L = layers_[l];
    LayerActs<T>& A = st->layers[l];
    if (st->recompute) {  // the same computation as the forward's, from the kept layer input
      Buf<T> xin = A.xin;
      layerForward(*this, l, A, *st, adapter, xin);
    }
    // ---- MLP block: x_out = xmid + post(mo)
    // d mo: dx itself, or through the post-norm (Gemma2); read only until dx is updated below
    Buf<T> dmoPost;
    const T* dmo = dx.data();
    if (c.sandwichNorms) {
      dmoPost = zeros<T>(MC);
      cpu::rmsnorm_backward(dmoPost.data(), full ? L.gMlpPostNorm : static_cast<T*>(nullptr), dx.data(), A.mo.data(),
                            L.mlpPostNorm.data(), A.rp2.data(), M, C, c.normPlusOne);
      dmo = dmoPost.data();
    }
    Buf<T> dh = zeros<T>(MF);
    baseBackward(dh.data(), A.h.data(), dmo, L, kDown);
    if (adapter && adapter->has(l, kDown)) loraBackward(dh.data(), A.h.data(), dmo, M, *adapter, l, kDown, A.xa[kDown], st->dropout, st->seed);
    Buf<T> dgate(MF), dup(MF);
    cpu::gated_act_backward(dgate.data(), dup.data(), dh.data(), A.gate.data(), A.up.data(), static_cast<int64_t>(MF), act);
    Buf<T> dn2 = zeros<T>(MC);
    baseBackward(dn2.data(), A.n2.data(), dgate.data(), L, kGate);
    if (adapter && adapter->has(l, kGate)) loraBackward(dn2.data(), A.n2.data(), dgate.data(), M, *adapter, l, kGate, A.xa[kGate], st->dropout, st->seed);
    baseBackward(dn2.data(), A.n2.data(), dup.data(), L, kUp);
    if (adapter && adapter->has(l, kUp)) loraBackward(dn2.data(), A.n2.data(), dup.data(), M, *adapter, l, kUp, A.xa[kUp], st->dropout, st->seed);
    // dx currently is d xmid from the residual path; add the path through the MLP norm
    cpu::rmsnorm_backward(dx.data(), full ? L.gMlpNorm : static_cast<T*>(nullptr), dn2.data(), A.xmid.data(), L.mlpNorm.data(),
                          A.r2.data(), M, C, c.normPlusOne);
    // ---- attention block: xmid = xin + post(ao)
    Buf<T> daoPost;
    const T* dao = dx.data();
    if (c.sandwichNorms) {
      daoPost = zeros<T>(MC);
      cpu::rmsnorm_backward(daoPost.data(), full ? L.gAttnPostNorm : static_cast<T*>(nullptr), dx.data(), A.ao.data(),
                            L.attnPostNorm.data(), A.rp1.data(), M, C, c.normPlusOne);
      dao = daoPost.data();
    }
    Buf<T> datt = zeros<T>(static_cast<size_t>(M) * Hq * D);
    baseBackward(datt.data(), A.att.data(), dao, L, kO);
    if (adapter && adapter->has(l, kO)) loraBackward(datt.data(), A.att.data(), dao, M, *adapter, l, kO, A.xa[kO], st->dropout, st->seed);
    Buf<T> dq = zeros<T>(A.q.size()), dk = zeros<T>(A.k.size()), dv = zeros<T>(A.v.size());
    const int window = c.layerIsSliding(l) ? c.slidingWindow : 0;
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), A.lse.data(), A.q.data(), A.k.data(), A.v.data(),
                            st->seqOffsets.data(), S, Hq, Hk, D, c.attnScale, c.attnSoftcap, window);
    cpu::rope_backward(dq.data(), st->positions.data(), M, Hq, D, c.ropeTheta);
    cpu::rope_backward(dk.data(), st->positions.data(), M, Hk, D, c.ropeTheta);
    Buf<T> dn1 = zeros<T>(MC);
    const T* dqkv[3] = {dq.data(), dk.data(), dv.data()};
    for (int m = kQ; m <= kV; m++) {
      baseBackward(dn1.data(), A.n1.data(), dqkv[m], L, m);
      if (adapter && adapter->has(l, m)) loraBackward(dn1.data(), A.n1.data(), dqkv[m], M, *adapter, l, m, A.xa[m], st->dropout, st->seed);
    }
    cpu::rmsnorm_backward(dx.data(), full ? L.gAttnNorm : static_cast<T*>(nullptr), dn1.data(), A.xin.data(), L.attnNorm.data(),
                          A.r1.data(), M, C, c.normPlusOne);
    // release this layer's activations as soon as they are consumed
    A = LayerActs<T>();
  }
  if (full && gEmbed_) cpu::embedding_backward(gEmbed_, dx.data(), st->tokens.data(), M, C, embedScale_);
  delete st;
  pass.state_ = nullptr;
}

template class Model<float>;
template class Model<double>;
template class ForwardPass<float>;
template class ForwardPass<double>;

}  // namespace rrec
