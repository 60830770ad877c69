// The CUDA backend's ops (one .cu file per family); each checks its argument struct and launches
// on the context's stream. Semantics: native/include/rrec/backend_abi.h.
#pragma once
#include "cuda/common.cuh"

namespace rrec::cuda {

// elementwise.cu
void embedding(Ctx& c, const rrec_embedding_args& a);
void embeddingBwd(Ctx& c, const rrec_embedding_args& a);
void gatedAct(Ctx& c, const rrec_gated_act_args& a, bool backward);
void add(Ctx& c, const rrec_add_args& a);
void gatherRows(Ctx& c, const rrec_rows_args& a);
void scatterAddRows(Ctx& c, const rrec_rows_args& a);
void cast(Ctx& c, const rrec_cast_args& a);
// norm_rope.cu
void rmsnorm(Ctx& c, const rrec_rmsnorm_args& a);
void rmsnormBwd(Ctx& c, const rrec_rmsnorm_args& a);
void rope(Ctx& c, const rrec_rope_args& a, bool backward);
// adamw.cu
void gradNormSq(Ctx& c, const rrec_grad_norm_args& a);
void adamw(Ctx& c, const rrec_adamw_args& a);
// gemm.cu
void matmul(Ctx& c, const rrec_matmul_args& a);
void matmulBwdInput(Ctx& c, const rrec_matmul_args& a);
void matmulBwdWeight(Ctx& c, const rrec_matmul_bwd_weight_args& a);
// lora.cu
void lora(Ctx& c, const rrec_lora_args& a);
void loraBwd(Ctx& c, const rrec_lora_args& a);

// attention.cu
void attention(Ctx& c, const rrec_attention_args& a, bool backward);
void pagedAttention(Ctx& c, const rrec_paged_attention_args& a);
void kvWriteOp(Ctx& c, const rrec_kv_write_args& a);
// lm_head.cu
void lmHead(Ctx& c, const rrec_lm_head_args& a, bool backward);
void logits(Ctx& c, const rrec_logits_args& a);
// sampler.cu
void sample(Ctx& c, const rrec_sample_args& a);

}  // namespace rrec::cuda
