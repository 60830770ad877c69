/* The backend boundary as a versioned C table: what a device (the CPU, a CUDA GPU, the CUDA
 * kernels under the host emulator) offers the math core. Plain C, so that a backend can live in
 * a shared library built by another compiler (nvcc) and loaded at run time with dlopen; no C++
 * exception crosses it: every call returns an error code and fills an rrec_status message.
 *
 * A backend library `librrec_<name>.so` exports exactly one entry point,
 *     const rrec_backend_reg* rrec_<name>_backend_reg(uint32_t host_abi_version);
 * (name with '-' written '_': librrec_cuda_emu.so exports rrec_cuda_emu_backend_reg and registers
 * as "cuda-emu"). The registry (native/core/backend_registry.cc) checks abi_version and
 * struct_size before it uses anything else in the table.
 *
 * Memory lives behind opaque rrec_buffer handles; the core never dereferences one. A tensor
 * reference is (buffer, byte offset, dtype); shapes travel in each op's arguments, row-major, in
 * elements. Ops run in the order they are issued on one stream per opened device; download() and
 * synchronize() wait for everything issued before them. Fields marked "host" are host memory the
 * backend reads (or writes) before the call returns.
 *
 * Conventions of the ops (the CPU backend, backend_cpu.cc, is the reference): outputs
 * first, dims last; "+=" outputs accumulate, so gradient accumulation over micro-batches is free;
 * activations are F32 (or F64, the finite-difference build); weights F32/BF16/F16/F64. */
#ifndef RREC_BACKEND_ABI_H
#define RREC_BACKEND_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2: rrec_matrix.packed and RREC_OP_PACK_WEIGHT (weights packed once for the forward). */
#define RREC_BACKEND_ABI_VERSION 2u

/* Element types; the values equal rrec::DType's (native/include/rrec/dtype.h). */
enum rrec_dtype { RREC_F32 = 0, RREC_BF16 = 1, RREC_F16 = 2, RREC_F64 = 3, RREC_I32 = 4, RREC_U8 = 5 };

/* Status codes. */
enum rrec_code {
  RREC_OK = 0,
  RREC_ERR_ARGUMENT = 1,    /* the arguments cannot be right (shapes, dtypes, null buffers) */
  RREC_ERR_MEMORY = 2,      /* out of device (or host) memory */
  RREC_ERR_UNSUPPORTED = 3, /* this backend does not run this op with these dtypes */
  RREC_ERR_DEVICE = 4       /* the device failed (a CUDA error, a lost device) */
};

typedef struct rrec_status {
  int32_t code;
  char message[1024]; /* NUL-terminated, names the op and what was wrong */
} rrec_status;

typedef struct rrec_buffer rrec_buffer; /* opaque, owned by the backend */

typedef struct rrec_tensor {
  rrec_buffer* buf; /* NULL: absent (an optional input or output) */
  uint64_t offset;  /* bytes from the buffer's start */
  int32_t dtype;    /* enum rrec_dtype */
  int32_t reserved;
} rrec_tensor;

/* A weight matrix W [rows = N, cols = K] in nn.Linear layout (row n holds output n's weights). */
typedef struct rrec_matrix {
  rrec_tensor t;
  int32_t rows, cols;
  /* Multiply in bf16 where the backend can (activations rounded to bf16 nearest-even, products of
   * bf16 pairs summed in f32), as PyTorch's bf16 matmuls do; honoured for BF16 weights. A backend
   * that cannot must give the f32 result. */
  int32_t bf16_products;
  int32_t reserved;
  /* Absent, or the same weights in this backend's packed forward layout, written by
   * RREC_OP_PACK_WEIGHT for this very matrix (same t, shape and bf16_products) and kept in step
   * with t by the caller. MATMUL may read it instead of t; every other op reads t. */
  rrec_tensor packed;
} rrec_matrix;

typedef struct rrec_device_info {
  char name[128];         /* "cpu", "NVIDIA H200", ... */
  char description[512];  /* one line: CPU model and SIMD features, or compute capability, driver */
  uint64_t total_memory;  /* bytes */
  uint64_t free_memory;   /* bytes, at the time of the call */
  int32_t compute_major;  /* CUDA compute capability; 0 on the CPU */
  int32_t compute_minor;
  int32_t host_memory;    /* 1: buffers are host memory (wrap_host exists and is zero-copy) */
  /* 1: MATMUL honours bf16_products for BF16 weights here (so a full fine-tune keeps bf16 copies
   * of its f32 master weights for the decoder projections to multiply); 0: it would compute f32. */
  int32_t bf16_products;
} rrec_device_info;

/* Ops. Each takes the argument struct named beside it. */
enum rrec_op {
  RREC_OP_MATMUL = 1,          /* rrec_matmul_args: out = | += inp W^T (+ bias) */
  RREC_OP_MATMUL_BWD_INPUT,    /* rrec_matmul_args: out (dinp) += inp (dout) W */
  RREC_OP_MATMUL_BWD_WEIGHT,   /* rrec_matmul_bwd_weight_args */
  RREC_OP_LORA,                /* rrec_lora_args, forward */
  RREC_OP_LORA_BWD,            /* rrec_lora_args, backward */
  RREC_OP_EMBEDDING,           /* rrec_embedding_args, forward */
  RREC_OP_EMBEDDING_BWD,       /* rrec_embedding_args, backward */
  RREC_OP_RMSNORM,             /* rrec_rmsnorm_args, forward */
  RREC_OP_RMSNORM_BWD,         /* rrec_rmsnorm_args, backward */
  RREC_OP_ROPE,                /* rrec_rope_args, in place */
  RREC_OP_ROPE_BWD,            /* rrec_rope_args, in place (inverse rotation) */
  RREC_OP_ATTENTION,           /* rrec_attention_args, forward (packed causal, lse kept) */
  RREC_OP_ATTENTION_BWD,       /* rrec_attention_args, backward */
  RREC_OP_PAGED_ATTENTION,     /* rrec_paged_attention_args */
  RREC_OP_KV_WRITE,            /* rrec_kv_write_args */
  RREC_OP_GATED_ACT,           /* rrec_gated_act_args, forward */
  RREC_OP_GATED_ACT_BWD,       /* rrec_gated_act_args, backward */
  RREC_OP_ADD,                 /* rrec_add_args: dst += src */
  RREC_OP_GATHER_ROWS,         /* rrec_rows_args: dst[i, :] = src[rows[i], :] */
  RREC_OP_SCATTER_ADD_ROWS,    /* rrec_rows_args: dst[rows[i], :] += src[i, :], i ascending */
  RREC_OP_CAST,                /* rrec_cast_args: dst = src converted (f32 -> bf16 nearest-even, ...) */
  RREC_OP_LM_HEAD_LOGPROBS,    /* rrec_lm_head_args: log-softmax at target tokens, lse, entropy */
  RREC_OP_LM_HEAD_BWD,         /* rrec_lm_head_args: dhidden (+ dW) from dL/dlogp */
  RREC_OP_LOGITS,              /* rrec_logits_args: full logits rows + soft-cap + lse (sampling) */
  RREC_OP_SAMPLE,              /* rrec_sample_args: one token per draw */
  RREC_OP_GRAD_NORM_SQ,        /* rrec_grad_norm_args: sum of squared gradients */
  RREC_OP_ADAMW,               /* rrec_adamw_args: one AdamW update over a parameter set */
  RREC_OP_PACK_WEIGHT,         /* rrec_pack_weight_args: the packed forward form of a weight */
  RREC_OP_COUNT
};

/* MATMUL: out[M, N] = (accumulate ? out : 0) + inp[M, K] @ W^T + bias[N].
 * MATMUL_BWD_INPUT: out[M, K] += inp[M, N] @ W (out is dinp, inp is dout; bias unused). */
typedef struct rrec_matmul_args {
  rrec_tensor out;
  rrec_tensor inp;
  rrec_matrix w;
  rrec_tensor bias; /* [N] or absent */
  int32_t M;
  int32_t accumulate;
} rrec_matmul_args;

/* dweight[N, K] += dout[M, N]^T @ inp[M, K]; dbias[N] += sum over rows of dout (either absent). */
typedef struct rrec_matmul_bwd_weight_args {
  rrec_tensor dweight;
  rrec_tensor dbias;
  rrec_tensor dout;
  rrec_tensor inp;
  int32_t M, K, N;
  int32_t bf16_products; /* round dout and inp to bf16, sum products in f32, where the backend can */
} rrec_matmul_bwd_weight_args;

/* LoRA on one projection: y[M, out] += scale * (drop(x) @ A^T) @ B^T, A [r, in], B [out, r].
 * drop: inverted dropout with mask value 0 or 1 / (1 - p), a pure function of
 * (dropout_seed, stream = layer * 7 + module, element index row * in + col) through
 * rrec::hashUniform (native/include/rrec/rng.h): u < p drops the element.
 * Forward writes xa[M, r] = drop(x) @ A^T (kept for the backward).
 * Backward (y is dy): db += scale * dy^T xa; dxa = scale * dy B; da += dxa^T drop(x);
 * dx += drop'(dxa A) (the mask applied again). */
typedef struct rrec_lora_args {
  rrec_tensor y;
  rrec_tensor x;
  rrec_tensor a;
  rrec_tensor b;
  rrec_tensor xa;
  rrec_tensor dx; /* backward */
  rrec_tensor da; /* backward */
  rrec_tensor db; /* backward */
  int32_t M, in, out, r;
  double scale;
  double dropout; /* p; 0 = no dropout */
  uint64_t dropout_seed;
  int32_t layer, module;
} rrec_lora_args;

/* Forward: out[M, C] = E[tokens[m]] * scale. Backward: demb[tokens[m]] += dout[m] * scale. */
typedef struct rrec_embedding_args {
  rrec_tensor out;    /* forward */
  rrec_tensor dout;   /* backward */
  rrec_tensor demb;   /* backward, [V, C] */
  rrec_tensor tokens; /* I32 [M] */
  rrec_matrix emb;    /* [V, C]; backward reads only its shape */
  int32_t M;
  int32_t reserved;
  double scale;
} rrec_embedding_args;

/* Forward: out = x / rms(x) * g, rms = sqrt(mean(x^2) + eps), g = w or 1 + w; rstd[M] kept.
 * Backward: dinp[M, C] += ..., dweight[C] += ... (dweight absent: not wanted). */
typedef struct rrec_rmsnorm_args {
  rrec_tensor out;
  rrec_tensor rstd;
  rrec_tensor inp;
  rrec_tensor weight;
  rrec_tensor dinp;
  rrec_tensor dweight;
  rrec_tensor dout;
  int32_t M, C;
  double eps;
  int32_t plus_one;
  int32_t reserved;
} rrec_rmsnorm_args;

/* Rotary embedding in place on x[M, H * D], HF rotate_half layout (pairs i, i + D/2), angle
 * pos[m] * theta^(-2i/D) computed in f32 as HF does; backward applies the inverse rotation. */
typedef struct rrec_rope_args {
  rrec_tensor x;
  rrec_tensor pos; /* I32 [M] */
  int32_t M, H, D;
  int32_t reserved;
  double theta;
} rrec_rope_args;

/* Causal GQA self-attention over a packed batch: seq_offsets[S + 1] splits the M rows into
 * sequences. q, dq [M, Hq * D]; k, v, dk, dv [M, Hk * D]; out, dout [M, Hq * D]; lse [M, Hq]
 * (each row's log-sum-exp over its visible scores, kept by the forward, read by the backward).
 * Scores are scale * q.k, soft-capped (cap * tanh(s / cap)) when softcap > 0; key j is visible
 * to query i when j <= i and (window == 0 or i - j < window), i and j counted in the sequence.
 * Query head h reads kv head h / (Hq / Hk). Backward: dq, dk, dv +=. */
typedef struct rrec_attention_args {
  rrec_tensor out, lse, q, k, v;
  rrec_tensor dq, dk, dv, dout;
  rrec_tensor seq_offsets; /* I32 [S + 1] */
  int32_t S, M, Hq, Hk, D;
  int32_t window;
  double scale, softcap;
} rrec_attention_args;

/* Attention of M query rows over a paged KV cache. k_cache, v_cache: one layer's
 * [num_blocks, block_size, Hk * D]. Row m is the query at position pos[m] of its sequence and sees
 * keys j <= pos[m] (and pos[m] - j < window when window > 0); key j is in block
 * tables[table_start[m] + j / block_size], slot j % block_size. out, q [M, Hq * D]. */
typedef struct rrec_paged_attention_args {
  rrec_tensor out, q, k_cache, v_cache;
  rrec_tensor tables;      /* I32 */
  rrec_tensor table_start; /* I32 [M] */
  rrec_tensor pos;         /* I32 [M] */
  int32_t M, block_size, Hq, Hk, D;
  int32_t window;
  double scale, softcap;
} rrec_paged_attention_args;

/* Writes row m of k and v [M, width] into slot row_slot[m] of block row_block[m] of one layer's
 * k_cache and v_cache [num_blocks, block_size, width]. */
typedef struct rrec_kv_write_args {
  rrec_tensor k_cache, v_cache, k, v;
  rrec_tensor row_block; /* I32 [M] */
  rrec_tensor row_slot;  /* I32 [M] */
  int32_t M, width, block_size;
  int32_t reserved;
} rrec_kv_write_args;

enum rrec_activation { RREC_ACT_SILU = 0, RREC_ACT_GELU_TANH = 1 };

/* Forward: h = act(gate) * up. Backward: dgate = dh * up * act'(gate), dup = dh * act(gate)
 * (written, not accumulated). n elements. */
typedef struct rrec_gated_act_args {
  rrec_tensor h, gate, up;
  rrec_tensor dh, dgate, dup;
  int64_t n;
  int32_t act;
  int32_t reserved;
} rrec_gated_act_args;

typedef struct rrec_add_args {
  rrec_tensor dst, src;
  int64_t n;
} rrec_add_args;

typedef struct rrec_rows_args {
  rrec_tensor dst, src;
  rrec_tensor rows; /* I32 [n] */
  int32_t n, width;
} rrec_rows_args;

typedef struct rrec_cast_args {
  rrec_tensor dst, src;
  int64_t n;
} rrec_cast_args;

/* The LM head at n rows of final-norm output hidden[n, C] against W [V, C]:
 *   z = hidden W^T, soft-capped (cap * tanh(z / cap)) when softcap > 0,
 *   lse = log sum exp z (in double), logp = z[target] - lse, entropy = lse - sum p z.
 * LOGPROBS writes logp, lse, entropy (F64 [n]; entropy absent: not wanted); never a full [n, V]
 * buffer for the whole batch (rows in chunks). LM_HEAD_BWD reads lse and dlogp (F64 [n]):
 *   dz_v = dlogp (1[v = target] - p_v) dcap_v;  dhidden += dz W;  dw += dz^T hidden (absent: skip). */
typedef struct rrec_lm_head_args {
  rrec_tensor hidden;
  rrec_matrix w;
  rrec_tensor targets; /* I32 [n] */
  rrec_tensor logp, lse, entropy;
  rrec_tensor dlogp, dhidden, dw;
  int32_t n;
  int32_t reserved;
  double softcap;
} rrec_lm_head_args;

/* Sampling rows: logits[R, V] = hidden[R, C] W^T, soft-capped in place, lse[R] (F64) of each row
 * (temperature 1: the raw distribution the engine's log-probs are taken from). */
typedef struct rrec_logits_args {
  rrec_tensor logits;
  rrec_tensor lse;
  rrec_tensor hidden;
  rrec_matrix w;
  int32_t R;
  int32_t reserved;
  double softcap;
} rrec_logits_args;

/* One draw (see native/core/sampler.h for the order of operations): penalties from history,
 * the allowed mask, temperature (< 1e-5: greedy argmax, lowest id on ties), top-k, top-p, min-p,
 * then the inverse CDF at u over the kept tokens in ascending id order. */
typedef struct rrec_sample_draw {
  double temperature, top_p, min_p, repetition_penalty, presence_penalty;
  double u;                /* uniform in [0, 1) */
  const int32_t* history;  /* host: prompt + generated tokens */
  const uint8_t* allowed;  /* host [V] or NULL */
  int32_t top_k;           /* <= 0: off */
  int32_t row;             /* logits row */
  int32_t history_len, prompt_len;
} rrec_sample_draw;

/* tokens[i] is draw i's token, logprobs[i] = logits[row, token] - lse[row]. */
typedef struct rrec_sample_args {
  rrec_tensor logits; /* [R, V] */
  rrec_tensor lse;    /* F64 [R] */
  int32_t V, n_draws;
  const rrec_sample_draw* draws; /* host [n_draws] */
  int32_t* tokens;               /* host [n_draws], written */
  float* logprobs;               /* host [n_draws], written */
} rrec_sample_args;

/* result (host) = sum over the parameters of sum_i grad[i]^2, in double. */
typedef struct rrec_grad_norm_args {
  const rrec_tensor* grads; /* host [count] */
  const int64_t* numel;     /* host [count] */
  int32_t count;
  int32_t reserved;
  double* result; /* host */
} rrec_grad_norm_args;

typedef struct rrec_adamw_param {
  rrec_tensor value, grad, m, v;
  rrec_tensor bf16_copy; /* absent, or a BF16 copy of value refreshed in the same pass */
  int64_t numel;
} rrec_adamw_param;

/* Per element, as torch.optim.AdamW after clip_grad_norm_:
 *   g = grad * clip; value *= decay; m += (g - m)(1 - beta1); v = v beta2 + g^2 (1 - beta2);
 *   value -= step_size * m / (sqrt(v) / bc2sqrt + eps)   (step_size = lr / bc1, decay = 1 - lr wd) */
/* PACK_WEIGHT: *bytes (host) = the size of w's packed forward form on this backend, 0 when it
 * has none for this matrix (dtype, shape, bf16_products, CPU features) or the forward would not
 * gain from one; then, when dst is present (64-byte aligned, at least *bytes), writes it. A
 * backend without packed forms does not support the op (supports() = 0). */
typedef struct rrec_pack_weight_args {
  rrec_matrix w;
  rrec_tensor dst;
  uint64_t* bytes; /* host, written */
} rrec_pack_weight_args;

typedef struct rrec_adamw_args {
  const rrec_adamw_param* params; /* host [count] */
  int32_t count;
  int32_t reserved;
  double clip, decay, beta1, beta2, step_size, bc2sqrt, eps;
} rrec_adamw_args;

enum rrec_alloc_flags {
  /* A large buffer touched lazily (the KV cache): its own mapping, returned at free (not cached). */
  RREC_ALLOC_LAZY = 1u
};

/* One opened device. Every function but close and supports returns an rrec_code and fills
 * *status on failure. */
typedef struct rrec_backend_i {
  uint32_t abi_version; /* RREC_BACKEND_ABI_VERSION */
  uint32_t struct_size; /* sizeof(rrec_backend_i) */
  int32_t (*describe)(void* ctx, rrec_device_info* out, rrec_status* status);
  int32_t (*alloc)(void* ctx, uint64_t bytes, uint32_t flags, rrec_buffer** out, rrec_status* status);
  void (*free_buffer)(void* ctx, rrec_buffer* buf);
  /* A read-only view of host memory the caller keeps alive (memory-mapped weights); NULL in the
   * table when the backend cannot (the core then uploads). */
  int32_t (*wrap_host)(void* ctx, const void* host, uint64_t bytes, rrec_buffer** out, rrec_status* status);
  /* count elements from host src (src_dtype) into dst, converting: same type (copy); F32, BF16,
   * F16, F64 -> F32 or F64 (exact through double); F32 -> BF16 (nearest even). */
  int32_t (*upload)(void* ctx, rrec_tensor dst, const void* src, int32_t src_dtype, uint64_t count, rrec_status* status);
  /* count elements of src into host dst (dst_dtype), converting as upload does. Waits. */
  int32_t (*download)(void* ctx, void* dst, int32_t dst_dtype, rrec_tensor src, uint64_t count, rrec_status* status);
  int32_t (*copy)(void* ctx, rrec_tensor dst, rrec_tensor src, uint64_t bytes, rrec_status* status);
  int32_t (*fill_zero)(void* ctx, rrec_tensor dst, uint64_t bytes, rrec_status* status);
  int32_t (*synchronize)(void* ctx, rrec_status* status);
  /* 1 when run(op) accepts activations of this dtype (F32 or F64), else 0. */
  int32_t (*supports)(void* ctx, int32_t op, int32_t dtype);
  int32_t (*run)(void* ctx, int32_t op, const void* args, rrec_status* status);
  void (*close)(void* ctx);
} rrec_backend_i;

/* A backend library (or the built-in CPU backend): what it is and how to open its devices. */
typedef struct rrec_backend_reg {
  uint32_t abi_version; /* RREC_BACKEND_ABI_VERSION */
  uint32_t struct_size; /* sizeof(rrec_backend_reg) */
  const char* name;     /* "cpu", "cuda", "cuda-emu", ... */
  /* A JSON object describing the build: e.g. {"architectures":["sm_80","sm_90"],
   * "runtimeVersion":13000,"driverVersion":0}; "{}" when there is nothing to say. Static storage. */
  const char* (*info_json)(void);
  /* Usable devices; 0 with status->message saying why none is (no driver, driver too old, compute
   * capability too low, ...). */
  int32_t (*device_count)(rrec_status* status);
  int32_t (*open)(int32_t device, const rrec_backend_i** iface, void** ctx, rrec_status* status);
} rrec_backend_reg;

typedef const rrec_backend_reg* (*rrec_backend_reg_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* RREC_BACKEND_ABI_H */
