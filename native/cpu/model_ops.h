// The CPU backend's kernels for work the math core used to loop over itself: LoRA's projections
// with dropout, the LM head's log-softmax (forward, backward, and the sampling rows' logits),
// AdamW and the gradient norm, and the row moves (gather, scatter-add, KV writes). Arithmetic and
// order are the core's before the backend seam, so results are bit-identical to it, except the
// float LM head, which now fuses its log-softmax with the product (lm_head_fused.cc; within float
// rounding of the unfused path, test/kernels/lm-head.test.ts).
// T = float or double (activations); shapes in elements, row-major.
#pragma once
#include <cstdint>

#include "cpu/ops.h"

namespace rrec::cpu {

// Y[M, out] += scale * (drop(X) @ A^T) @ B^T;  xa[M, r] = drop(X) @ A^T (written).
// drop: inverted dropout with p = dropout (0: none), mask from (seed, layer * 7 + module, index).
template <typename T>
void lora_forward(T* Y, T* xa, const T* X, const T* A, const T* B, int M, int in, int out, int r, T scale, double dropout,
                  uint64_t seed, int layer, int module);
// Given dY: dA [r, in] +=, dB [out, r] +=, dX [M, in] += (the adapter path only).
template <typename T>
void lora_backward(T* dX, T* dA, T* dB, const T* X, const T* dY, const T* xa, const T* A, const T* B, int M, int in, int out,
                   int r, T scale, double dropout, uint64_t seed, int layer, int module);

// hidden[n, C] against W [V, C]: logp, lse, entropy (entropy may be null), in double.
template <typename T>
void lm_head_logprobs(double* logp, double* lse, double* entropy, const T* hidden, const Mat& w, const int32_t* targets,
                      int n, int C, double softcap);
// dhidden[n, C] += dz W, dw [V, C] += dz^T hidden (dw may be null).
template <typename T>
void lm_head_backward(T* dhidden, T* dw, const T* hidden, const Mat& w, const int32_t* targets, const double* lse,
                      const double* dlogp, int n, int C, double softcap);
// The fused float path behind the two above (lm_head_fused.cc): vocabulary tiles of ~512 KiB of
// logits consumed in cache (online max / sum-exp / target / entropy, vectorised exp; tiles
// combined in double), the backward's dlogits tile by tile; the logits are never written in full.
// On by default; lm_head_fused_set_enabled(false) makes float take the unfused path (lm_head.cc:
// a chunk's logits in full, std::exp in double), for tests and benchmarks. Returns the previous.
bool lm_head_fused_set_enabled(bool on);
bool lm_head_fused_enabled();
void lm_head_logprobs_fused(double* logp, double* lse, double* entropy, const float* hidden, const Mat& w,
                            const int32_t* targets, int n, int C, double softcap);
void lm_head_backward_fused(float* dhidden, float* dw, const float* hidden, const Mat& w, const int32_t* targets,
                            const double* lse, const double* dlogp, int n, int C, double softcap);
// logits[R, V] = soft-capped hidden W^T, lse[R] of each row (the sampler's log-sum-exp).
template <typename T>
void logits_rows(T* logits, double* lse, const T* hidden, const Mat& w, int R, double softcap);
// logits_rows' second half: soft-caps logits [R, V] in place (softcap > 0) and writes lse[R].
template <typename T>
void logits_rows_lse(T* logits, double* lse, int R, int V, double softcap);
// Its float path (lm_head_fused.cc): each row in tiles of 4096 columns consumed as the fused head's
// tiles (soft-cap, max, sum exp over 16 float lanes with the run-time-dispatched row kernels),
// tiles combined in double in order.
void lm_head_rows_lse(float* logits, double* lse, int R, int V, double softcap);

// sum over params of sum_i g[i]^2 (per parameter an OpenMP reduction, then summed in order).
template <typename T>
double grad_norm_sq(const T* const* grads, const int64_t* numel, int count);
struct AdamWStep {
  double clip, decay, beta1, beta2, stepSize, bc2sqrt, eps;
};
// One AdamW update of one parameter (bf16Copy may be null).
template <typename T>
void adamw_update(T* value, const T* grad, T* m, T* v, uint16_t* bf16Copy, int64_t numel, const AdamWStep& h);

}  // namespace rrec::cpu
