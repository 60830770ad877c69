// The CPU backend's ops: each RREC_OP_* argument struct checked (buffers present, dtypes, bounds)
// and handed to the kernels of this folder, for float or double activations.
#include <omp.h>

#include <cstring>
#include <string>
#include <type_traits>

#include "cpu/backend_cpu.h"
#include "cpu/matmul_kernels.h"
#include "cpu/model_ops.h"
#include "cpu/ops.h"
#include "cpu/paged_attention.h"
#include "cpu/sampler.h"
#include "rrec/dtype.h"

namespace rrec::cpu {

char* tensorBytes(const rrec_tensor& t, uint64_t bytes, const char* what);

namespace {

[[noreturn]] void bad(const std::string& m) { throw OpError(RREC_ERR_ARGUMENT, m); }

template <typename T>
constexpr int32_t dtypeOf() {
  return std::is_same_v<T, float> ? RREC_F32 : std::is_same_v<T, double> ? RREC_F64 : std::is_same_v<T, int32_t> ? RREC_I32 : RREC_U8;
}

// Pointer to n elements of T at t (checked); nullptr when t is absent and optional.
template <typename T>
T* ptr(const rrec_tensor& t, int64_t n, const char* field, bool optional = false) {
  if (!t.buf) {
    if (optional) return nullptr;
    bad(std::string(field) + " is missing");
  }
  if (t.dtype != dtypeOf<T>())
    bad(std::string(field) + " has dtype " + dtypeName(static_cast<DType>(t.dtype)) + ", expected " + dtypeName(static_cast<DType>(dtypeOf<T>())));
  if (n < 0) bad(std::string(field) + ": negative size");
  return reinterpret_cast<T*>(tensorBytes(t, static_cast<uint64_t>(n) * sizeof(T), field));
}

// A weight matrix as the kernels' Mat (any stored float dtype).
Mat mat(const rrec_matrix& w, const char* field) {
  if (w.rows <= 0 || w.cols <= 0) bad(std::string(field) + ": shape [" + std::to_string(w.rows) + ", " + std::to_string(w.cols) + "]");
  if (w.t.dtype != RREC_F32 && w.t.dtype != RREC_BF16 && w.t.dtype != RREC_F16 && w.t.dtype != RREC_F64)
    bad(std::string(field) + ": weights must be F32, BF16, F16 or F64");
  Mat m;
  m.dtype = static_cast<DType>(w.t.dtype);
  m.rows = w.rows;
  m.cols = w.cols;
  m.bf16Products = w.bf16_products != 0;
  m.data = tensorBytes(w.t, static_cast<uint64_t>(w.rows) * w.cols * dtypeSize(m.dtype), field);
  if (w.packed.buf) {  // written by PACK_WEIGHT for this matrix: its size is matmul_packed_bytes
    const size_t n = matmul_packed_bytes(m);
    if (n > 0) m.packed = tensorBytes(w.packed, n, field);
  }
  return m;
}

void positive(int v, const char* name) {
  if (v <= 0) bad(std::string(name) + " must be positive, got " + std::to_string(v));
}
void nonNegative(int64_t v, const char* name) {
  if (v < 0) bad(std::string(name) + " must be >= 0, got " + std::to_string(v));
}

// ---- one function per op, T = float or double

template <typename T>
void matmul(const rrec_matmul_args& a) {
  positive(a.M, "M");
  const Mat w = mat(a.w, "w");
  T* out = ptr<T>(a.out, int64_t(a.M) * w.rows, "out");
  const T* inp = ptr<T>(a.inp, int64_t(a.M) * w.cols, "inp");
  const T* bias = ptr<T>(a.bias, w.rows, "bias", true);
  matmul_forward(out, inp, w, bias, a.M, a.accumulate != 0);
}

template <typename T>
void matmulBwdInput(const rrec_matmul_args& a) {
  positive(a.M, "M");
  const Mat w = mat(a.w, "w");
  T* dinp = ptr<T>(a.out, int64_t(a.M) * w.cols, "out (dinp)");
  const T* dout = ptr<T>(a.inp, int64_t(a.M) * w.rows, "inp (dout)");
  matmul_backward_input(dinp, dout, w, a.M);
}

template <typename T>
void matmulBwdWeight(const rrec_matmul_bwd_weight_args& a) {
  positive(a.M, "M");
  positive(a.K, "K");
  positive(a.N, "N");
  T* dw = ptr<T>(a.dweight, int64_t(a.N) * a.K, "dweight", true);
  T* db = ptr<T>(a.dbias, a.N, "dbias", true);
  const T* dout = ptr<T>(a.dout, int64_t(a.M) * a.N, "dout");
  const T* inp = ptr<T>(a.inp, int64_t(a.M) * a.K, "inp");
  if (dw || db) matmul_backward_weight(dw, db, dout, inp, a.M, a.K, a.N, a.bf16_products != 0);
}

template <typename T>
void lora(const rrec_lora_args& a, bool backward) {
  positive(a.M, "M");
  positive(a.in, "in");
  positive(a.out, "out");
  positive(a.r, "r");
  if (!(a.dropout >= 0 && a.dropout < 1)) bad("dropout must be in [0, 1)");
  const T* A = ptr<T>(a.a, int64_t(a.r) * a.in, "a");
  const T* B = ptr<T>(a.b, int64_t(a.out) * a.r, "b");
  const T* X = ptr<T>(a.x, int64_t(a.M) * a.in, "x");
  T* xa = ptr<T>(a.xa, int64_t(a.M) * a.r, "xa");
  T* Y = ptr<T>(a.y, int64_t(a.M) * a.out, backward ? "y (dy)" : "y");
  const T s = static_cast<T>(a.scale);
  if (!backward) {
    lora_forward(Y, xa, X, A, B, a.M, a.in, a.out, a.r, s, a.dropout, a.dropout_seed, a.layer, a.module);
    return;
  }
  T* dX = ptr<T>(a.dx, int64_t(a.M) * a.in, "dx");
  T* dA = ptr<T>(a.da, int64_t(a.r) * a.in, "da");
  T* dB = ptr<T>(a.db, int64_t(a.out) * a.r, "db");
  lora_backward(dX, dA, dB, X, Y, xa, A, B, a.M, a.in, a.out, a.r, s, a.dropout, a.dropout_seed, a.layer, a.module);
}

template <typename T>
void embedding(const rrec_embedding_args& a, bool backward) {
  positive(a.M, "M");
  const int32_t* tokens = ptr<int32_t>(a.tokens, a.M, "tokens");
  const int V = a.emb.rows, C = a.emb.cols;
  positive(V, "emb.rows");
  positive(C, "emb.cols");
  for (int m = 0; m < a.M; m++)
    if (tokens[m] < 0 || tokens[m] >= V) bad("tokens[" + std::to_string(m) + "] = " + std::to_string(tokens[m]) + " is outside [0, " + std::to_string(V) + ")");
  if (!backward) {
    const Mat e = mat(a.emb, "emb");
    embedding_forward(ptr<T>(a.out, int64_t(a.M) * C, "out"), tokens, e, a.M, static_cast<T>(a.scale));
  } else {
    embedding_backward(ptr<T>(a.demb, int64_t(V) * C, "demb"), ptr<T>(a.dout, int64_t(a.M) * C, "dout"), tokens, a.M, C,
                       static_cast<T>(a.scale));
  }
}

template <typename T>
void rmsnorm(const rrec_rmsnorm_args& a, bool backward) {
  positive(a.M, "M");
  positive(a.C, "C");
  const int64_t MC = int64_t(a.M) * a.C;
  const T* inp = ptr<T>(a.inp, MC, "inp");
  const T* w = ptr<T>(a.weight, a.C, "weight");
  T* rstd = ptr<T>(a.rstd, a.M, "rstd");
  if (!backward) {
    rmsnorm_forward(ptr<T>(a.out, MC, "out"), rstd, inp, w, a.M, a.C, a.eps, a.plus_one != 0);
  } else {
    rmsnorm_backward(ptr<T>(a.dinp, MC, "dinp"), ptr<T>(a.dweight, a.C, "dweight", true), ptr<T>(a.dout, MC, "dout"), inp, w, rstd,
                     a.M, a.C, a.plus_one != 0);
  }
}

template <typename T>
void rope(const rrec_rope_args& a, bool backward) {
  positive(a.M, "M");
  positive(a.H, "H");
  positive(a.D, "D");
  if (a.D % 2) bad("D must be even, got " + std::to_string(a.D));
  T* x = ptr<T>(a.x, int64_t(a.M) * a.H * a.D, "x");
  const int32_t* pos = ptr<int32_t>(a.pos, a.M, "pos");
  if (!backward) rope_forward(x, pos, a.M, a.H, a.D, a.theta);
  else rope_backward(x, pos, a.M, a.H, a.D, a.theta);
}

template <typename T>
void attention(const rrec_attention_args& a, bool backward) {
  positive(a.S, "S");
  positive(a.M, "M");
  positive(a.Hq, "Hq");
  positive(a.Hk, "Hk");
  positive(a.D, "D");
  if (a.Hq % a.Hk) bad("Hq must be a multiple of Hk");
  const int32_t* so = ptr<int32_t>(a.seq_offsets, a.S + 1, "seq_offsets");
  if (so[0] != 0 || so[a.S] != a.M) bad("seq_offsets must run from 0 to M");
  for (int s = 0; s < a.S; s++)
    if (so[s + 1] < so[s]) bad("seq_offsets must be non-decreasing");
  const int64_t nq = int64_t(a.M) * a.Hq * a.D, nk = int64_t(a.M) * a.Hk * a.D;
  const T* q = ptr<T>(a.q, nq, "q");
  const T* k = ptr<T>(a.k, nk, "k");
  const T* v = ptr<T>(a.v, nk, "v");
  T* lse = ptr<T>(a.lse, int64_t(a.M) * a.Hq, "lse");
  if (!backward) {
    attention_forward(ptr<T>(a.out, nq, "out"), lse, q, k, v, so, a.S, a.Hq, a.Hk, a.D, a.scale, a.softcap, a.window);
  } else {
    attention_backward(ptr<T>(a.dq, nq, "dq"), ptr<T>(a.dk, nk, "dk"), ptr<T>(a.dv, nk, "dv"), ptr<T>(a.dout, nq, "dout"), lse, q, k, v,
                       so, a.S, a.Hq, a.Hk, a.D, a.scale, a.softcap, a.window);
  }
}

uint64_t bufferBytes(const rrec_tensor& t) {
  CpuBuffer* b = cpuBuffer(t.buf);
  return b && t.offset <= b->bytes ? b->bytes - t.offset : 0;
}

template <typename T>
void pagedAttention(const rrec_paged_attention_args& a) {
  positive(a.M, "M");
  positive(a.block_size, "block_size");
  positive(a.Hq, "Hq");
  positive(a.Hk, "Hk");
  positive(a.D, "D");
  const int64_t width = int64_t(a.Hk) * a.D;
  const int64_t cacheElems = static_cast<int64_t>(bufferBytes(a.k_cache) / sizeof(T));
  const int64_t numBlocks = cacheElems / (width * a.block_size);
  const T* kc = ptr<T>(a.k_cache, numBlocks * a.block_size * width, "k_cache");
  const T* vc = ptr<T>(a.v_cache, numBlocks * a.block_size * width, "v_cache");
  const int32_t* pos = ptr<int32_t>(a.pos, a.M, "pos");
  const int32_t* ts = ptr<int32_t>(a.table_start, a.M, "table_start");
  const int64_t tableLen = static_cast<int64_t>(bufferBytes(a.tables) / sizeof(int32_t));
  const int32_t* tables = ptr<int32_t>(a.tables, tableLen, "tables");
  for (int m = 0; m < a.M; m++) {
    const int64_t last = ts[m] + pos[m] / a.block_size;
    if (pos[m] < 0 || ts[m] < 0 || last >= tableLen) bad("row " + std::to_string(m) + ": its block table runs past the tables");
    for (int64_t j = ts[m]; j <= last; j++)
      if (tables[j] < 0 || tables[j] >= numBlocks) bad("tables[" + std::to_string(j) + "] = " + std::to_string(tables[j]) + " is not a block");
  }
  paged_attention_forward(ptr<T>(a.out, int64_t(a.M) * a.Hq * a.D, "out"), ptr<T>(a.q, int64_t(a.M) * a.Hq * a.D, "q"), kc, vc, tables,
                          ts, pos, a.M, a.block_size, a.Hq, a.Hk, a.D, a.scale, a.softcap, a.window);
}

template <typename T>
void kvWrite(const rrec_kv_write_args& a) {
  positive(a.M, "M");
  positive(a.width, "width");
  positive(a.block_size, "block_size");
  const int64_t cacheElems = static_cast<int64_t>(bufferBytes(a.k_cache) / sizeof(T));
  const int64_t numBlocks = cacheElems / (int64_t(a.width) * a.block_size);
  T* kc = ptr<T>(a.k_cache, numBlocks * a.block_size * a.width, "k_cache");
  T* vc = ptr<T>(a.v_cache, numBlocks * a.block_size * a.width, "v_cache");
  const T* k = ptr<T>(a.k, int64_t(a.M) * a.width, "k");
  const T* v = ptr<T>(a.v, int64_t(a.M) * a.width, "v");
  const int32_t* blk = ptr<int32_t>(a.row_block, a.M, "row_block");
  const int32_t* slot = ptr<int32_t>(a.row_slot, a.M, "row_slot");
  for (int r = 0; r < a.M; r++) {
    if (blk[r] < 0 || blk[r] >= numBlocks || slot[r] < 0 || slot[r] >= a.block_size)
      bad("row " + std::to_string(r) + ": block " + std::to_string(blk[r]) + " slot " + std::to_string(slot[r]) + " is outside the cache");
    const size_t off = (static_cast<size_t>(blk[r]) * a.block_size + slot[r]) * a.width;
    std::memcpy(kc + off, k + static_cast<size_t>(r) * a.width, sizeof(T) * a.width);
    std::memcpy(vc + off, v + static_cast<size_t>(r) * a.width, sizeof(T) * a.width);
  }
}

template <typename T>
void gatedAct(const rrec_gated_act_args& a, bool backward) {
  nonNegative(a.n, "n");
  if (a.act != RREC_ACT_SILU && a.act != RREC_ACT_GELU_TANH) bad("act must be RREC_ACT_SILU or RREC_ACT_GELU_TANH");
  const Act act = a.act == RREC_ACT_SILU ? Act::SiLU : Act::GeluTanh;
  const T* gate = ptr<T>(a.gate, a.n, "gate");
  const T* up = ptr<T>(a.up, a.n, "up");
  if (!backward) gated_act_forward(ptr<T>(a.h, a.n, "h"), gate, up, a.n, act);
  else gated_act_backward(ptr<T>(a.dgate, a.n, "dgate"), ptr<T>(a.dup, a.n, "dup"), ptr<T>(a.dh, a.n, "dh"), gate, up, a.n, act);
}

template <typename T>
void add(const rrec_add_args& a) {
  nonNegative(a.n, "n");
  T* dst = ptr<T>(a.dst, a.n, "dst");
  const T* src = ptr<T>(a.src, a.n, "src");
  const int64_t n = a.n;
#pragma omp parallel for simd schedule(static) if (n >= (int64_t(1) << 15))
  for (int64_t i = 0; i < n; i++) dst[i] += src[i];
}

template <typename T>
void rows(const rrec_rows_args& a, bool scatter) {
  nonNegative(a.n, "n");
  positive(a.width, "width");
  const int32_t* idx = ptr<int32_t>(a.rows, a.n, "rows");
  const int64_t big = scatter ? static_cast<int64_t>(bufferBytes(a.dst) / sizeof(T)) : static_cast<int64_t>(bufferBytes(a.src) / sizeof(T));
  const int64_t bigRows = big / a.width;
  for (int i = 0; i < a.n; i++)
    if (idx[i] < 0 || idx[i] >= bigRows) bad("rows[" + std::to_string(i) + "] = " + std::to_string(idx[i]) + " is outside the tensor");
  const size_t w = static_cast<size_t>(a.width);
  if (!scatter) {
    T* dst = ptr<T>(a.dst, int64_t(a.n) * a.width, "dst");
    const T* src = ptr<T>(a.src, bigRows * a.width, "src");
    for (int i = 0; i < a.n; i++) std::memcpy(dst + i * w, src + static_cast<size_t>(idx[i]) * w, sizeof(T) * w);
  } else {
    T* dst = ptr<T>(a.dst, bigRows * a.width, "dst");
    const T* src = ptr<T>(a.src, int64_t(a.n) * a.width, "src");
    for (int i = 0; i < a.n; i++) {
      T* d = dst + static_cast<size_t>(idx[i]) * w;
      const T* s = src + i * w;
      for (size_t j = 0; j < w; j++) d[j] += s[j];
    }
  }
}

void cast(const rrec_cast_args& a) {
  nonNegative(a.n, "n");
  const size_t n = static_cast<size_t>(a.n);
  if (a.dst.dtype == RREC_BF16 && a.src.dtype == RREC_F32) {
    uint16_t* d = reinterpret_cast<uint16_t*>(tensorBytes(a.dst, n * 2, "dst"));
    const float* s = reinterpret_cast<const float*>(tensorBytes(a.src, n * 4, "src"));
#pragma omp parallel for schedule(static) if (n >= (size_t(1) << 16))
    for (size_t i = 0; i < n; i++) d[i] = f32ToBf16(s[i]);
    return;
  }
  const DType dt = static_cast<DType>(a.dst.dtype), st = static_cast<DType>(a.src.dtype);
  if ((dt != DType::F32 && dt != DType::F64) || (st != DType::F32 && st != DType::F64 && st != DType::BF16 && st != DType::F16))
    throw OpError(RREC_ERR_UNSUPPORTED, std::string("no cast from ") + dtypeName(st) + " to " + dtypeName(dt));
  char* d = tensorBytes(a.dst, n * dtypeSize(dt), "dst");
  const char* s = tensorBytes(a.src, n * dtypeSize(st), "src");
  for (size_t i = 0; i < n; i++) {
    const double x = loadAsDouble(s, st, i);
    if (dt == DType::F32) reinterpret_cast<float*>(d)[i] = static_cast<float>(x);
    else reinterpret_cast<double*>(d)[i] = x;
  }
}

template <typename T>
void lmHead(const rrec_lm_head_args& a, bool backward) {
  positive(a.n, "n");
  const Mat w = mat(a.w, "w");
  const int C = w.cols, V = w.rows;
  const T* hidden = ptr<T>(a.hidden, int64_t(a.n) * C, "hidden");
  const int32_t* tg = ptr<int32_t>(a.targets, a.n, "targets");
  for (int i = 0; i < a.n; i++)
    if (tg[i] < 0 || tg[i] >= V) bad("targets[" + std::to_string(i) + "] = " + std::to_string(tg[i]) + " is outside [0, " + std::to_string(V) + ")");
  double* lse = ptr<double>(a.lse, a.n, "lse");
  if (!backward) {
    lm_head_logprobs(ptr<double>(a.logp, a.n, "logp"), lse, ptr<double>(a.entropy, a.n, "entropy", true), hidden, w, tg, a.n, C, a.softcap);
  } else {
    lm_head_backward(ptr<T>(a.dhidden, int64_t(a.n) * C, "dhidden"), ptr<T>(a.dw, int64_t(V) * C, "dw", true), hidden, w, tg, lse,
                     ptr<double>(a.dlogp, a.n, "dlogp"), a.n, C, a.softcap);
  }
}

template <typename T>
void logits(const rrec_logits_args& a) {
  positive(a.R, "R");
  const Mat w = mat(a.w, "w");
  logits_rows(ptr<T>(a.logits, int64_t(a.R) * w.rows, "logits"), ptr<double>(a.lse, a.R, "lse"), ptr<T>(a.hidden, int64_t(a.R) * w.cols, "hidden"),
              w, a.R, a.softcap);
}

template <typename T>
void sample(const rrec_sample_args& a) {
  positive(a.V, "V");
  nonNegative(a.n_draws, "n_draws");
  if (a.n_draws == 0) return;
  if (!a.draws || !a.tokens || !a.logprobs) bad("draws, tokens and logprobs are required");
  const int64_t rowsAvail = static_cast<int64_t>(bufferBytes(a.logits) / sizeof(T)) / a.V;
  const T* z0 = ptr<T>(a.logits, rowsAvail * a.V, "logits");
  const double* lse = ptr<double>(a.lse, rowsAvail, "lse", false);
  for (int d = 0; d < a.n_draws; d++)
    if (a.draws[d].row < 0 || a.draws[d].row >= rowsAvail) bad("draws[" + std::to_string(d) + "].row is outside the logits");
  const int V = a.V;
#pragma omp parallel
  {
    // per OpenMP thread, kept across steps: a fresh [V] double buffer every step cost page faults
    // and page clearing (2% of single-sequence decode under perf)
    thread_local SamplerScratch scratch;
#pragma omp for schedule(dynamic, 1)
    for (int d = 0; d < a.n_draws; d++) {
      const rrec_sample_draw& dr = a.draws[d];
      SampleParams p;
      p.temperature = dr.temperature;
      p.topK = dr.top_k;
      p.topP = dr.top_p;
      p.minP = dr.min_p;
      p.repetitionPenalty = dr.repetition_penalty;
      p.presencePenalty = dr.presence_penalty;
      const T* z = z0 + static_cast<size_t>(dr.row) * V;
      const int32_t t = sampleToken(z, V, p, dr.history, dr.history_len, dr.prompt_len, dr.allowed, dr.u, scratch);
      a.tokens[d] = t;
      a.logprobs[d] = static_cast<float>(static_cast<double>(z[t]) - lse[dr.row]);
    }
  }
}

template <typename T>
void gradNorm(const rrec_grad_norm_args& a) {
  nonNegative(a.count, "count");
  if (!a.result) bad("result is required");
  std::vector<const T*> gs(static_cast<size_t>(a.count));
  for (int i = 0; i < a.count; i++) gs[i] = ptr<T>(a.grads[i], a.numel[i], "grads[i]");
  *a.result = grad_norm_sq(gs.data(), a.numel, a.count);
}

template <typename T>
void adamw(const rrec_adamw_args& a) {
  nonNegative(a.count, "count");
  const AdamWStep h{a.clip, a.decay, a.beta1, a.beta2, a.step_size, a.bc2sqrt, a.eps};
  for (int i = 0; i < a.count; i++) {
    const rrec_adamw_param& p = a.params[i];
    uint16_t* copy = nullptr;
    if (p.bf16_copy.buf) {
      if (p.bf16_copy.dtype != RREC_BF16) bad("bf16_copy must be BF16");
      copy = reinterpret_cast<uint16_t*>(tensorBytes(p.bf16_copy, static_cast<uint64_t>(p.numel) * 2, "bf16_copy"));
    }
    adamw_update(ptr<T>(p.value, p.numel, "value"), ptr<T>(p.grad, p.numel, "grad"), ptr<T>(p.m, p.numel, "m"), ptr<T>(p.v, p.numel, "v"),
                 copy, p.numel, h);
  }
}

// The activation dtype an op's arguments carry (F32 or F64).
int32_t activationType(int32_t op, const void* args) {
  switch (op) {
    case RREC_OP_MATMUL:
    case RREC_OP_MATMUL_BWD_INPUT: return static_cast<const rrec_matmul_args*>(args)->inp.dtype;
    case RREC_OP_MATMUL_BWD_WEIGHT: return static_cast<const rrec_matmul_bwd_weight_args*>(args)->dout.dtype;
    case RREC_OP_LORA:
    case RREC_OP_LORA_BWD: return static_cast<const rrec_lora_args*>(args)->x.dtype;
    case RREC_OP_EMBEDDING: return static_cast<const rrec_embedding_args*>(args)->out.dtype;
    case RREC_OP_EMBEDDING_BWD: return static_cast<const rrec_embedding_args*>(args)->dout.dtype;
    case RREC_OP_RMSNORM:
    case RREC_OP_RMSNORM_BWD: return static_cast<const rrec_rmsnorm_args*>(args)->inp.dtype;
    case RREC_OP_ROPE:
    case RREC_OP_ROPE_BWD: return static_cast<const rrec_rope_args*>(args)->x.dtype;
    case RREC_OP_ATTENTION:
    case RREC_OP_ATTENTION_BWD: return static_cast<const rrec_attention_args*>(args)->q.dtype;
    case RREC_OP_PAGED_ATTENTION: return static_cast<const rrec_paged_attention_args*>(args)->q.dtype;
    case RREC_OP_KV_WRITE: return static_cast<const rrec_kv_write_args*>(args)->k.dtype;
    case RREC_OP_GATED_ACT:
    case RREC_OP_GATED_ACT_BWD: return static_cast<const rrec_gated_act_args*>(args)->gate.dtype;
    case RREC_OP_ADD: return static_cast<const rrec_add_args*>(args)->dst.dtype;
    case RREC_OP_GATHER_ROWS:
    case RREC_OP_SCATTER_ADD_ROWS: return static_cast<const rrec_rows_args*>(args)->dst.dtype;
    case RREC_OP_LM_HEAD_LOGPROBS:
    case RREC_OP_LM_HEAD_BWD: return static_cast<const rrec_lm_head_args*>(args)->hidden.dtype;
    case RREC_OP_LOGITS: return static_cast<const rrec_logits_args*>(args)->logits.dtype;
    case RREC_OP_SAMPLE: return static_cast<const rrec_sample_args*>(args)->logits.dtype;
    case RREC_OP_GRAD_NORM_SQ: {
      const auto* a = static_cast<const rrec_grad_norm_args*>(args);
      return a->count > 0 ? a->grads[0].dtype : RREC_F32;
    }
    case RREC_OP_ADAMW: {
      const auto* a = static_cast<const rrec_adamw_args*>(args);
      return a->count > 0 ? a->params[0].value.dtype : RREC_F32;
    }
    default: return -1;
  }
}

template <typename T>
void runTyped(int32_t op, const void* args) {
  switch (op) {
    case RREC_OP_MATMUL: return matmul<T>(*static_cast<const rrec_matmul_args*>(args));
    case RREC_OP_MATMUL_BWD_INPUT: return matmulBwdInput<T>(*static_cast<const rrec_matmul_args*>(args));
    case RREC_OP_MATMUL_BWD_WEIGHT: return matmulBwdWeight<T>(*static_cast<const rrec_matmul_bwd_weight_args*>(args));
    case RREC_OP_LORA: return lora<T>(*static_cast<const rrec_lora_args*>(args), false);
    case RREC_OP_LORA_BWD: return lora<T>(*static_cast<const rrec_lora_args*>(args), true);
    case RREC_OP_EMBEDDING: return embedding<T>(*static_cast<const rrec_embedding_args*>(args), false);
    case RREC_OP_EMBEDDING_BWD: return embedding<T>(*static_cast<const rrec_embedding_args*>(args), true);
    case RREC_OP_RMSNORM: return rmsnorm<T>(*static_cast<const rrec_rmsnorm_args*>(args), false);
    case RREC_OP_RMSNORM_BWD: return rmsnorm<T>(*static_cast<const rrec_rmsnorm_args*>(args), true);
    case RREC_OP_ROPE: return rope<T>(*static_cast<const rrec_rope_args*>(args), false);
    case RREC_OP_ROPE_BWD: return rope<T>(*static_cast<const rrec_rope_args*>(args), true);
    case RREC_OP_ATTENTION: return attention<T>(*static_cast<const rrec_attention_args*>(args), false);
    case RREC_OP_ATTENTION_BWD: return attention<T>(*static_cast<const rrec_attention_args*>(args), true);
    case RREC_OP_PAGED_ATTENTION: return pagedAttention<T>(*static_cast<const rrec_paged_attention_args*>(args));
    case RREC_OP_KV_WRITE: return kvWrite<T>(*static_cast<const rrec_kv_write_args*>(args));
    case RREC_OP_GATED_ACT: return gatedAct<T>(*static_cast<const rrec_gated_act_args*>(args), false);
    case RREC_OP_GATED_ACT_BWD: return gatedAct<T>(*static_cast<const rrec_gated_act_args*>(args), true);
    case RREC_OP_ADD: return add<T>(*static_cast<const rrec_add_args*>(args));
    case RREC_OP_GATHER_ROWS: return rows<T>(*static_cast<const rrec_rows_args*>(args), false);
    case RREC_OP_SCATTER_ADD_ROWS: return rows<T>(*static_cast<const rrec_rows_args*>(args), true);
    case RREC_OP_LM_HEAD_LOGPROBS: return lmHead<T>(*static_cast<const rrec_lm_head_args*>(args), false);
    case RREC_OP_LM_HEAD_BWD: return lmHead<T>(*static_cast<const rrec_lm_head_args*>(args), true);
    case RREC_OP_LOGITS: return logits<T>(*static_cast<const rrec_logits_args*>(args));
    case RREC_OP_SAMPLE: return sample<T>(*static_cast<const rrec_sample_args*>(args));
    case RREC_OP_GRAD_NORM_SQ: return gradNorm<T>(*static_cast<const rrec_grad_norm_args*>(args));
    case RREC_OP_ADAMW: return adamw<T>(*static_cast<const rrec_adamw_args*>(args));
    default: throw OpError(RREC_ERR_UNSUPPORTED, "unknown op " + std::to_string(op));
  }
}

}  // namespace

const char* opName(int32_t op) {
  static const char* names[RREC_OP_COUNT] = {
      "?",        "matmul",          "matmul_bwd_input", "matmul_bwd_weight", "lora",   "lora_bwd",     "embedding",
      "embedding_bwd", "rmsnorm",    "rmsnorm_bwd",      "rope",              "rope_bwd", "attention",  "attention_bwd",
      "paged_attention", "kv_write", "gated_act",        "gated_act_bwd",     "add",    "gather_rows",  "scatter_add_rows",
      "cast",     "lm_head_logprobs", "lm_head_bwd",     "logits",            "sample", "grad_norm_sq", "adamw",
      "pack_weight"};
  return op > 0 && op < RREC_OP_COUNT ? names[op] : "unknown op";
}

// PACK_WEIGHT: the 48-column panels of matmul_packed.cc, where the packed forward runs for this
// matrix (0 bytes elsewhere: the caller then keeps using the unpacked weights).
void packWeight(const rrec_pack_weight_args& a) {
  if (!a.bytes) bad("pack_weight: bytes must point to host memory");
  rrec_matrix plain = a.w;
  plain.packed = rrec_tensor{nullptr, 0, 0, 0};
  const Mat m = mat(plain, "w");
  const size_t n = matmul_packed_bytes(m);
  *a.bytes = n;
  if (!a.dst.buf || n == 0) return;
  char* dst = tensorBytes(a.dst, n, "dst");
  if (reinterpret_cast<uintptr_t>(dst) % 64 != 0) bad("pack_weight: dst must be 64-byte aligned");
  matmul_pack(dst, m);
}

void runOp(int32_t op, const void* args) {
  if (!args) bad("no arguments");
  if (op == RREC_OP_CAST) return cast(*static_cast<const rrec_cast_args*>(args));
  if (op == RREC_OP_PACK_WEIGHT) return packWeight(*static_cast<const rrec_pack_weight_args*>(args));
  const int32_t t = activationType(op, args);
  if (t == RREC_F32) return runTyped<float>(op, args);
  if (t == RREC_F64) return runTyped<double>(op, args);
  if (t < 0) throw OpError(RREC_ERR_UNSUPPORTED, "unknown op " + std::to_string(op));
  throw OpError(RREC_ERR_UNSUPPORTED, std::string("activations of dtype ") + dtypeName(static_cast<DType>(t)) + " (F32 or F64 only)");
}

}  // namespace rrec::cpu
