// CPU kernels: one forward/backward pair per layer type, outputs first and dims last (llm.c style).
// Templated on the compute type T (float for real use, double for finite-difference tests).
// Backward functions accumulate (+=) into their gradient outputs, so gradient accumulation over
// micro-batches is free. Shapes in comments: M rows (tokens), K inputs, N outputs.
#pragma once
#include <cstdint>

#include "rrec/dtype.h"

namespace rrec::cpu {

// A weight matrix W [N, K] (PyTorch nn.Linear layout: out_features x in_features), stored as
// F32/BF16/F16 (T = float) or F64 (T = double). Row n holds output n's weights.
struct Mat {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int rows = 0;  // N
  int cols = 0;  // K
  // Multiply in bf16: the activation side is rounded to bf16 (nearest even) and products of bf16
  // pairs are summed in f32 (AVX512_BF16 vdpbf16ps, twice the f32 FMA rate), as PyTorch's bf16
  // matmuls do. Honoured for BF16-stored weights with an even K by forward (every M) and
  // backward-input (M > 4) on CPUs with AVX512_BF16; ignored elsewhere (f32 math, same results
  // as false). Relative error of a product: about 2^-9 / sqrt(K) of the row's magnitude.
  bool bf16Products = false;
  // The same weights packed for the forward (matmul_pack, matmul_packed.cc: 48-column panels, the
  // layout oneDNN keeps its weights in), or null. Set by the model where matmul_packable says the
  // packed kernels run; the forward then uses it for every M (same bits as the unpacked M >= 32
  // path, for any M). Everything else (backward, the LM head's row ranges) reads `data`. The
  // caller keeps it 64-byte aligned and in step with `data`.
  const void* packed = nullptr;
};

// out[M,N] (=|+=) inp[M,K] @ W^T + bias[N] (bias may be null)
template <typename T>
void matmul_forward(T* out, const T* inp, const Mat& w, const T* bias, int M, bool accumulate);
// dinp[M,K] += dout[M,N] @ W
template <typename T>
void matmul_backward_input(T* dinp, const T* dout, const Mat& w, int M);
// dweight[N,K] += dout[M,N]^T @ inp[M,K];  dbias[N] += sum_m dout[m,:]  (either may be null).
// bf16Products: round dout and inp to bf16 and sum products of pairs in f32 (AVX512_BF16, as the
// forward's Mat::bf16Products; full fine-tune with matmulPrecision bf16); ignored where the CPU
// has no AVX512_BF16 (f32 results) and for double.
template <typename T>
void matmul_backward_weight(T* dweight, T* dbias, const T* dout, const T* inp, int M, int K, int N, bool bf16Products = false);

// y = x / rms(x) * g, rms(x) = sqrt(mean(x^2) + eps), g = w or (1 + w) (Gemma). rstd[M] kept for backward.
template <typename T>
void rmsnorm_forward(T* out, T* rstd, const T* inp, const T* weight, int M, int C, double eps, bool plusOne);
// dinp[M,C] += ..., dweight[C] += ... (dweight may be null)
template <typename T>
void rmsnorm_backward(T* dinp, T* dweight, const T* dout, const T* inp, const T* weight, const T* rstd, int M, int C,
                      bool plusOne);

// Rotary embedding in place on x[M, H*D], HF rotate_half layout (pairs i and i + D/2), angle
// pos * theta^(-2i/D) computed in float32 as HF does. backward applies the inverse rotation to dx.
template <typename T>
void rope_forward(T* x, const int32_t* pos, int M, int H, int D, double theta);
template <typename T>
void rope_backward(T* dx, const int32_t* pos, int M, int H, int D, double theta);

// Causal self-attention over a packed batch of sequences (seqOffsets[S+1] into the M rows), GQA.
// q[M, Hq*D], k/v[M, Hk*D], out[M, Hq*D]. lse[M, Hq] keeps each row's log-sum-exp of its scores
// for the backward, which recomputes the probabilities from it (memory O(M Hq) instead of the
// O(Hq L^2) of stored probability matrices). Scores are scale * q.k, soft-capped
// (cap * tanh(s / cap)) when softcap > 0; key j is visible to query i when j <= i and
// (window == 0 or i - j < window), i and j counted within the sequence.
template <typename T>
void attention_forward(T* out, T* lse, const T* q, const T* k, const T* v, const int32_t* seqOffsets, int S, int Hq,
                       int Hk, int D, double scale, double softcap, int window);
template <typename T>
void attention_backward(T* dq, T* dk, T* dv, const T* dout, const T* lse, const T* q, const T* k, const T* v,
                        const int32_t* seqOffsets, int S, int Hq, int Hk, int D, double scale, double softcap, int window);

// The AVX-512 path of the two above for float (attention_avx512.cc): false (nothing done) where
// the CPU lacks AVX-512 or the kernels are switched off; attention_forward/_backward<float> try it
// first. attention_kernels_set_enabled returns the previous setting (tests compare both paths).
bool attention_kernels_available();
bool attention_kernels_set_enabled(bool on);
bool attention_forward_avx512(float* out, float* lse, const float* q, const float* k, const float* v,
                              const int32_t* seqOffsets, int S, int Hq, int Hk, int D, double scale, double softcap,
                              int window);
bool attention_backward_avx512(float* dq, float* dk, float* dv, const float* dout, const float* lse, const float* q,
                               const float* k, const float* v, const int32_t* seqOffsets, int S, int Hq, int Hk, int D,
                               double scale, double softcap, int window);

enum class Act { SiLU, GeluTanh };
// h[M,F] = act(gate) * up
template <typename T>
void gated_act_forward(T* h, const T* gate, const T* up, int64_t n, Act act);
// dgate = dh * up * act'(gate), dup = dh * act(gate)  (written, not accumulated)
template <typename T>
void gated_act_backward(T* dgate, T* dup, const T* dh, const T* gate, const T* up, int64_t n, Act act);

// x[M,C] = E[tokens[m]] * scale;  E is [V, C] stored as `emb`
template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const Mat& emb, int M, T scale);
// dE[tokens[m]] += dx[m] * scale
template <typename T>
void embedding_backward(T* demb, const T* dout, const int32_t* tokens, int M, int C, T scale);

// True when W is stored in the compute type itself (no conversion needed).
template <typename T>
inline bool mat_is_t(const Mat& w) {
  return sizeof(T) == 4 ? w.dtype == DType::F32 : w.dtype == DType::F64;
}

// Copies rows [n0, n0 + nb) of W as T into buf (or returns a pointer into W when it is stored as T).
template <typename T>
const T* mat_rows(const Mat& w, int n0, int nb, T* buf);

}  // namespace rrec::cpu
