// The decoder layer (see decoder_layer.h): one sequence of backend ops for the trainer and the
// engine alike, and its reverse.
#include "decoder_layer.h"

namespace rrec {

namespace {

// out = | += inp W^T + bias
template <typename T>
void matmul(Backend& be, const TensorRef& out, const TensorRef& inp, const Weight& w, const DeviceArray& bias, int M,
            bool accumulate) {
  const rrec_matmul_args a{out.raw(), inp.raw(), w.raw(), rawOrAbsent(bias), M, accumulate ? 1 : 0};
  be.run(RREC_OP_MATMUL, a);
}

template <typename T>
void loraForward(Backend& be, const TensorRef& Y, const TensorRef& X, int M, Adapter<T>& ad, int l, int m, DeviceArray& xa,
                 const LayerInputs<T>& in) {
  const int r = ad.config().rank;
  xa.resize(be, dtypeOf<T>(), static_cast<int64_t>(M) * r);
  rrec_lora_args a{};
  a.y = Y.raw();
  a.x = X.raw();
  a.a = ad.A(l, m).raw();
  a.b = ad.B(l, m).raw();
  a.xa = xa.raw();
  a.M = M;
  a.in = ad.inFeatures(m);
  a.out = ad.outFeatures(m);
  a.r = r;
  a.scale = static_cast<double>(ad.scale());
  a.dropout = in.dropout ? ad.config().dropout : 0.0;
  a.dropout_seed = in.dropoutSeed;
  a.layer = l;
  a.module = m;
  be.run(RREC_OP_LORA, a);
}

template <typename T>
void loraBackward(Backend& be, const TensorRef& dX, const TensorRef& X, const TensorRef& dY, int M, Adapter<T>& ad, int l, int m,
                  const DeviceArray& xa, const LayerInputs<T>& in) {
  rrec_lora_args a{};
  a.y = dY.raw();
  a.x = X.raw();
  a.a = ad.A(l, m).raw();
  a.b = ad.B(l, m).raw();
  a.xa = xa.raw();
  a.dx = dX.raw();
  a.da = ad.gradA(l, m).raw();
  a.db = ad.gradB(l, m).raw();
  a.M = M;
  a.in = ad.inFeatures(m);
  a.out = ad.outFeatures(m);
  a.r = ad.config().rank;
  a.scale = static_cast<double>(ad.scale());
  a.dropout = in.dropout ? ad.config().dropout : 0.0;
  a.dropout_seed = in.dropoutSeed;
  a.layer = l;
  a.module = m;
  be.run(RREC_OP_LORA_BWD, a);
}

void rmsnormBackward(Backend& be, const TensorRef& dinp, const TensorRef& dweight, const TensorRef& dout, const TensorRef& inp,
                     const DeviceArray& w, const DeviceArray& rstd, int M, int C, bool plusOne) {
  rrec_rmsnorm_args a{};
  a.inp = inp.raw();
  a.weight = w.raw();
  a.rstd = rstd.raw();
  a.dinp = dinp.raw();
  a.dweight = dweight.empty() ? absentTensor() : dweight.raw();
  a.dout = dout.raw();
  a.M = M;
  a.C = C;
  a.plus_one = plusOne ? 1 : 0;
  be.run(RREC_OP_RMSNORM_BWD, a);
}

void rope(Backend& be, const TensorRef& x, const TensorRef& pos, int M, int H, int D, double theta, bool backward) {
  const rrec_rope_args a{x.raw(), pos.raw(), M, H, D, 0, theta};
  be.run(backward ? RREC_OP_ROPE_BWD : RREC_OP_ROPE, a);
}

// x -> dst (same size)
void copyInto(Backend& be, DeviceArray& dst, const DeviceArray& src) {
  dst.resize(*src.backend(), src.dtype(), src.numel());
  be.copy(dst.ref(), src.ref(), src.bytes());
}

}  // namespace

template <typename T>
void rmsnormRows(Backend& be, DeviceArray& out, DeviceArray& rstd, const TensorRef& x, const DeviceArray& w, int M, int C,
                 double eps, bool plusOne) {
  out.resize(be, dtypeOf<T>(), static_cast<int64_t>(M) * C);
  rstd.resize(be, dtypeOf<T>(), M);
  rrec_rmsnorm_args a{};
  a.out = out.raw();
  a.rstd = rstd.raw();
  a.inp = x.raw();
  a.weight = w.raw();
  a.M = M;
  a.C = C;
  a.eps = eps;
  a.plus_one = plusOne ? 1 : 0;
  be.run(RREC_OP_RMSNORM, a);
}

void addInto(Backend& be, const TensorRef& dst, const TensorRef& src, int64_t n) {
  const rrec_add_args a{dst.raw(), src.raw(), n};
  be.run(RREC_OP_ADD, a);
}

template <typename T>
DeviceArray zerosOf(Backend& be, int64_t n) {
  DeviceArray z(be, dtypeOf<T>(), n);
  z.zero();
  return z;
}

template <typename T>
void decoderLayerForward(const Model<T>& model, int l, DeviceArray& x, LayerActs& A, const LayerInputs<T>& in,
                         const AttentionSource& src) {
  Backend& be = model.backend();
  const ModelConfig& c = model.config();
  const typename Model<T>::Layer& L = model.layer(l);
  const int M = in.M, C = c.hidden, D = c.headDim, Hq = c.heads, Hk = c.kvHeads, F = c.intermediate;
  const DType t = dtypeOf<T>();
  const int64_t MC = static_cast<int64_t>(M) * C, MF = static_cast<int64_t>(M) * F;
  Adapter<T>* adapter = in.adapter;
  copyInto(be, A.xin, x);
  // ---- attention block
  rmsnormRows<T>(be, A.n1, A.r1, A.xin.ref(), L.attnNorm, M, C, c.rmsEps, c.normPlusOne);
  A.q.resize(be, t, static_cast<int64_t>(M) * Hq * D);
  A.k.resize(be, t, static_cast<int64_t>(M) * Hk * D);
  A.v.resize(be, t, static_cast<int64_t>(M) * Hk * D);
  DeviceArray* qkv[3] = {&A.q, &A.k, &A.v};
  for (int m = kQ; m <= kV; m++) {
    matmul<T>(be, qkv[m]->ref(), A.n1.ref(), L.w[m], L.bias[m], M, false);
    if (adapter && adapter->has(l, m)) loraForward(be, qkv[m]->ref(), A.n1.ref(), M, *adapter, l, m, A.xa[m], in);
  }
  rope(be, A.q.ref(), in.positions, M, Hq, D, c.ropeTheta, false);
  rope(be, A.k.ref(), in.positions, M, Hk, D, c.ropeTheta, false);
  A.att.resize(be, t, static_cast<int64_t>(M) * Hq * D);
  const int window = c.layerIsSliding(l) ? c.slidingWindow : 0;
  if (!src.paged) {
    A.lse.resize(be, t, static_cast<int64_t>(M) * Hq);
    rrec_attention_args a{};
    a.out = A.att.raw();
    a.lse = A.lse.raw();
    a.q = A.q.raw();
    a.k = A.k.raw();
    a.v = A.v.raw();
    a.seq_offsets = src.seqOffsets.raw();
    a.S = src.S;
    a.M = M;
    a.Hq = Hq;
    a.Hk = Hk;
    a.D = D;
    a.window = window;
    a.scale = c.attnScale;
    a.softcap = c.attnSoftcap;
    be.run(RREC_OP_ATTENTION, a);
  } else {
    const rrec_kv_write_args w{src.kCache.raw(), src.vCache.raw(), A.k.raw(), A.v.raw(), src.rowBlock.raw(), src.rowSlot.raw(),
                               M, Hk * D, src.blockSize, 0};
    be.run(RREC_OP_KV_WRITE, w);
    rrec_paged_attention_args a{};
    a.out = A.att.raw();
    a.q = A.q.raw();
    a.k_cache = src.kCache.raw();
    a.v_cache = src.vCache.raw();
    a.tables = src.tables.raw();
    a.table_start = src.tableStart.raw();
    a.pos = in.positions.raw();
    a.M = M;
    a.block_size = src.blockSize;
    a.Hq = Hq;
    a.Hk = Hk;
    a.D = D;
    a.window = window;
    a.scale = c.attnScale;
    a.softcap = c.attnSoftcap;
    be.run(RREC_OP_PAGED_ATTENTION, a);
  }
  A.ao.resize(be, t, MC);
  matmul<T>(be, A.ao.ref(), A.att.ref(), L.w[kO], L.bias[kO], M, false);
  if (adapter && adapter->has(l, kO)) loraForward(be, A.ao.ref(), A.att.ref(), M, *adapter, l, kO, A.xa[kO], in);
  copyInto(be, A.xmid, A.xin);
  if (c.sandwichNorms) {
    rmsnormRows<T>(be, A.normed, A.rp1, A.ao.ref(), L.attnPostNorm, M, C, c.rmsEps, c.normPlusOne);
    addInto(be, A.xmid.ref(), A.normed.ref(), MC);
  } else {
    addInto(be, A.xmid.ref(), A.ao.ref(), MC);
  }
  // ---- MLP block
  rmsnormRows<T>(be, A.n2, A.r2, A.xmid.ref(), L.mlpNorm, M, C, c.rmsEps, c.normPlusOne);
  A.gate.resize(be, t, MF);
  A.up.resize(be, t, MF);
  matmul<T>(be, A.gate.ref(), A.n2.ref(), L.w[kGate], L.bias[kGate], M, false);
  if (adapter && adapter->has(l, kGate)) loraForward(be, A.gate.ref(), A.n2.ref(), M, *adapter, l, kGate, A.xa[kGate], in);
  matmul<T>(be, A.up.ref(), A.n2.ref(), L.w[kUp], L.bias[kUp], M, false);
  if (adapter && adapter->has(l, kUp)) loraForward(be, A.up.ref(), A.n2.ref(), M, *adapter, l, kUp, A.xa[kUp], in);
  A.h.resize(be, t, MF);
  const rrec_gated_act_args ga{A.h.raw(), A.gate.raw(), A.up.raw(), absentTensor(), absentTensor(), absentTensor(), MF,
                               c.act == Activation::SiLU ? RREC_ACT_SILU : RREC_ACT_GELU_TANH, 0};
  be.run(RREC_OP_GATED_ACT, ga);
  A.mo.resize(be, t, MC);
  matmul<T>(be, A.mo.ref(), A.h.ref(), L.w[kDown], L.bias[kDown], M, false);
  if (adapter && adapter->has(l, kDown)) loraForward(be, A.mo.ref(), A.h.ref(), M, *adapter, l, kDown, A.xa[kDown], in);
  copyInto(be, x, A.xmid);
  if (c.sandwichNorms) {
    rmsnormRows<T>(be, A.normed, A.rp2, A.mo.ref(), L.mlpPostNorm, M, C, c.rmsEps, c.normPlusOne);
    addInto(be, x.ref(), A.normed.ref(), MC);
  } else {
    addInto(be, x.ref(), A.mo.ref(), MC);
  }
}

template <typename T>
void decoderLayerBackward(const Model<T>& model, int l, DeviceArray& dx, LayerActs& A, const LayerInputs<T>& in,
                          const AttentionSource& src) {
  Backend& be = model.backend();
  const ModelConfig& c = model.config();
  const typename Model<T>::Layer& L = model.layer(l);
  const int M = in.M, C = c.hidden, D = c.headDim, Hq = c.heads, Hk = c.kvHeads, F = c.intermediate;
  const int64_t MC = static_cast<int64_t>(M) * C, MF = static_cast<int64_t>(M) * F;
  const bool full = model.fullFinetune();
  Adapter<T>* adapter = in.adapter;
  const TensorRef none;

  // dX += dY W; full fine-tune: dW += dY^T X (+ dbias), with bf16 products where the projection
  // multiplies a bf16 copy of its master (Model::makeBf16Copies)
  auto baseBackward = [&](const TensorRef& dX, const TensorRef& X, const TensorRef& dY, int m) {
    const rrec_matmul_args bi{dX.raw(), dY.raw(), L.w[m].raw(), absentTensor(), M, 0};
    be.run(RREC_OP_MATMUL_BWD_INPUT, bi);
    if (full) {
      const rrec_matmul_bwd_weight_args bw{L.gw[m].raw(), L.gbias[m].empty() ? absentTensor() : L.gbias[m].raw(), dY.raw(), X.raw(),
                                           M, L.w[m].cols, L.w[m].rows,
                                           L.w[m].bf16Products && L.w[m].t.dtype == DType::BF16 ? 1 : 0};
      be.run(RREC_OP_MATMUL_BWD_WEIGHT, bw);
    }
  };
  auto lora = [&](const TensorRef& dX, const TensorRef& X, const TensorRef& dY, int m) {
    if (adapter && adapter->has(l, m)) loraBackward(be, dX, X, dY, M, *adapter, l, m, A.xa[m], in);
  };

  // ---- MLP block: x_out = xmid + post(mo)
  // d mo: dx itself, or through the post-norm (Gemma2); read only until dx is updated below
  DeviceArray dmoPost;
  TensorRef dmo = dx.ref();
  if (c.sandwichNorms) {
    dmoPost = zerosOf<T>(be, MC);
    rmsnormBackward(be, dmoPost.ref(), full ? L.gMlpPostNorm : none, dx.ref(), A.mo.ref(), L.mlpPostNorm, A.rp2, M, C, c.normPlusOne);
    dmo = dmoPost.ref();
  }
  DeviceArray dh = zerosOf<T>(be, MF);
  baseBackward(dh.ref(), A.h.ref(), dmo, kDown);
  lora(dh.ref(), A.h.ref(), dmo, kDown);
  DeviceArray dgate(be, dtypeOf<T>(), MF), dup(be, dtypeOf<T>(), MF);
  const rrec_gated_act_args ga{absentTensor(), A.gate.raw(), A.up.raw(), dh.raw(), dgate.raw(), dup.raw(), MF,
                               c.act == Activation::SiLU ? RREC_ACT_SILU : RREC_ACT_GELU_TANH, 0};
  be.run(RREC_OP_GATED_ACT_BWD, ga);
  DeviceArray dn2 = zerosOf<T>(be, MC);
  baseBackward(dn2.ref(), A.n2.ref(), dgate.ref(), kGate);
  lora(dn2.ref(), A.n2.ref(), dgate.ref(), kGate);
  baseBackward(dn2.ref(), A.n2.ref(), dup.ref(), kUp);
  lora(dn2.ref(), A.n2.ref(), dup.ref(), kUp);
  // dx currently is d xmid from the residual path; add the path through the MLP norm
  rmsnormBackward(be, dx.ref(), full ? L.gMlpNorm : none, dn2.ref(), A.xmid.ref(), L.mlpNorm, A.r2, M, C, c.normPlusOne);
  // ---- attention block: xmid = xin + post(ao)
  DeviceArray daoPost;
  TensorRef dao = dx.ref();
  if (c.sandwichNorms) {
    daoPost = zerosOf<T>(be, MC);
    rmsnormBackward(be, daoPost.ref(), full ? L.gAttnPostNorm : none, dx.ref(), A.ao.ref(), L.attnPostNorm, A.rp1, M, C,
                    c.normPlusOne);
    dao = daoPost.ref();
  }
  DeviceArray datt = zerosOf<T>(be, static_cast<int64_t>(M) * Hq * D);
  baseBackward(datt.ref(), A.att.ref(), dao, kO);
  lora(datt.ref(), A.att.ref(), dao, kO);
  DeviceArray dq = zerosOf<T>(be, A.q.numel()), dk = zerosOf<T>(be, A.k.numel()), dv = zerosOf<T>(be, A.v.numel());
  rrec_attention_args a{};
  a.lse = A.lse.raw();
  a.q = A.q.raw();
  a.k = A.k.raw();
  a.v = A.v.raw();
  a.dq = dq.raw();
  a.dk = dk.raw();
  a.dv = dv.raw();
  a.dout = datt.raw();
  a.seq_offsets = src.seqOffsets.raw();
  a.S = src.S;
  a.M = M;
  a.Hq = Hq;
  a.Hk = Hk;
  a.D = D;
  a.window = c.layerIsSliding(l) ? c.slidingWindow : 0;
  a.scale = c.attnScale;
  a.softcap = c.attnSoftcap;
  be.run(RREC_OP_ATTENTION_BWD, a);
  rope(be, dq.ref(), in.positions, M, Hq, D, c.ropeTheta, true);
  rope(be, dk.ref(), in.positions, M, Hk, D, c.ropeTheta, true);
  DeviceArray dn1 = zerosOf<T>(be, MC);
  const TensorRef dqkv[3] = {dq.ref(), dk.ref(), dv.ref()};
  for (int m = kQ; m <= kV; m++) {
    baseBackward(dn1.ref(), A.n1.ref(), dqkv[m], m);
    lora(dn1.ref(), A.n1.ref(), dqkv[m], m);
  }
  rmsnormBackward(be, dx.ref(), full ? L.gAttnNorm : none, dn1.ref(), A.xin.ref(), L.attnNorm, A.r1, M, C, c.normPlusOne);
}

template void rmsnormRows<float>(Backend&, DeviceArray&, DeviceArray&, const TensorRef&, const DeviceArray&, int, int, double, bool);
template void rmsnormRows<double>(Backend&, DeviceArray&, DeviceArray&, const TensorRef&, const DeviceArray&, int, int, double, bool);
template DeviceArray zerosOf<float>(Backend&, int64_t);
template DeviceArray zerosOf<double>(Backend&, int64_t);
template void decoderLayerForward<float>(const Model<float>&, int, DeviceArray&, LayerActs&, const LayerInputs<float>&,
                                         const AttentionSource&);
template void decoderLayerForward<double>(const Model<double>&, int, DeviceArray&, LayerActs&, const LayerInputs<double>&,
                                          const AttentionSource&);
template void decoderLayerBackward<float>(const Model<float>&, int, DeviceArray&, LayerActs&, const LayerInputs<float>&,
                                          const AttentionSource&);
template void decoderLayerBackward<double>(const Model<double>&, int, DeviceArray&, LayerActs&, const LayerInputs<double>&,
                                           const AttentionSource&);

}  // namespace rrec
