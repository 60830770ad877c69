// One decoder layer, forward and backward, issued as backend ops: the only copy of the layer's
// math, run by the trainer's forward (packed causal attention, activations kept for backward, or
// recomputed from the kept input) and by the engine's step (K/V written into the paged cache,
// attention over it). Llama, Qwen2 (q/k/v bias) and Gemma2 (1 + w norms, sandwich norms, GELU,
// soft-capped attention, sliding window on even layers).
//
// Shapes: M rows (tokens), C hidden, Hq/Hk heads of D, F intermediate, r LoRA rank.
#pragma once
#include <cstdint>

#include "rrec/backend.h"
#include "rrec/model.h"

namespace rrec {

// Activations of one layer (llm.c style: every field with its shape). The trainer keeps one per
// layer; the engine reuses one set of scratch arrays for every layer and step (they only grow).
struct LayerActs {
  DeviceArray xin;                // [M, C] residual stream entering the layer
  DeviceArray n1, r1;             // [M, C], [M] attention-input norm and its 1/rms
  DeviceArray q, k, v;            // [M, Hq*D], [M, Hk*D] x2 (q, k after rotary)
  DeviceArray lse;                // [M, Hq] attention log-sum-exp per row and head (packed attention)
  DeviceArray att;                // [M, Hq*D] attention output, o_proj input
  DeviceArray ao, rp1;            // [M, C], [M] o_proj output and its post-norm 1/rms (Gemma2)
  DeviceArray xmid;               // [M, C] residual after attention
  DeviceArray n2, r2;             // [M, C], [M] MLP-input norm
  DeviceArray gate, up, h;        // [M, F]
  DeviceArray mo, rp2;            // [M, C], [M] down_proj output and post-norm 1/rms (Gemma2)
  DeviceArray normed;             // [M, C] scratch: a post-norm's output before the residual add
  DeviceArray xa[kNumModules];    // [M, r] LoRA: dropout(x) @ A^T
};

// Where a layer's attention finds its keys and values.
struct AttentionSource {
  // Packed (training): causal over each sequence of the batch; K/V are the layer's own rows.
  TensorRef seqOffsets;  // I32 [S + 1]
  int S = 0;
  // Paged (engine): K/V rows are written into the cache first, then attention reads the cache.
  bool paged = false;
  TensorRef kCache, vCache;   // the layer's [numBlocks, blockSize, Hk*D] (set per layer)
  TensorRef tables;           // I32 block tables of every scheduled sequence, concatenated
  TensorRef tableStart;       // I32 [M] where row m's sequence's table starts
  TensorRef rowBlock, rowSlot;// I32 [M] the cache slot of row m
  int blockSize = 0;
};

// What a pass applies on top of the weights.
template <typename T>
struct LayerInputs {
  int M = 0;
  TensorRef positions;        // I32 [M] rotary positions
  Adapter<T>* adapter = nullptr;
  bool dropout = false;       // the adapter's dropout on (training passes)
  uint64_t dropoutSeed = 0;
};

// x [M, C] in, the layer's output out (x is overwritten); A receives every activation the
// backward needs (and the engine's scratch).
template <typename T>
void decoderLayerForward(const Model<T>& model, int l, DeviceArray& x, LayerActs& A, const LayerInputs<T>& in,
                         const AttentionSource& att);

// dx [M, C]: dLoss/d(layer output) in, dLoss/d(layer input) out. Accumulates weight gradients
// (full fine-tune) or adapter gradients. A must hold the forward's activations (packed attention).
template <typename T>
void decoderLayerBackward(const Model<T>& model, int l, DeviceArray& dx, LayerActs& A, const LayerInputs<T>& in,
                          const AttentionSource& att);

// ---- small op helpers shared with the LM head and the engine

// out[M, C] = rmsnorm(x) * (w | 1 + w), rstd[M] (both resized)
template <typename T>
void rmsnormRows(Backend& be, DeviceArray& out, DeviceArray& rstd, const TensorRef& x, const DeviceArray& w, int M, int C,
                 double eps, bool plusOne);
// dst[n] += src[n]
void addInto(Backend& be, const TensorRef& dst, const TensorRef& src, int64_t n);
// An array of n zeros of the activation type
template <typename T>
DeviceArray zerosOf(Backend& be, int64_t n);

}  // namespace rrec
