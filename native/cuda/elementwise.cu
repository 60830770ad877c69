// Embedding, gated activations (SiLU, GELU-tanh), residual add, row gather/scatter-add, casts.
// The scatter-style ops (embedding backward, scatter_add_rows) give each thread one column and
// walk the rows in order: repeated ids sum in the CPU's order, with no atomics.
#include "cuda/ops.h"

namespace rrec_dev {

template <int WT>
RREC_KERNEL void embeddingKernel(float* out, const int32_t* tokens, const void* emb, int M, int V, int C, float scale, int* err) {
  const int64_t n = int64_t(M) * C;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int m = static_cast<int>(i / C), col = static_cast<int>(i % C);
    const int t = tokens[m];
    if (t < 0 || t >= V) {
      *err = rrec::cuda::kDevTokenRange;
      out[i] = 0;
      continue;
    }
    out[i] = loadw<WT>(emb, int64_t(t) * C + col) * scale;
  }
}

RREC_KERNEL void embeddingBwdKernel(float* demb, const float* dout, const int32_t* tokens, int M, int V, int C, float scale, int* err) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= C) return;
  for (int m = 0; m < M; m++) {
    const int t = tokens[m];
    if (t < 0 || t >= V) {
      *err = rrec::cuda::kDevTokenRange;
      continue;
    }
    demb[int64_t(t) * C + col] += dout[int64_t(m) * C + col] * scale;
  }
}

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)

template <int ACT>
RREC_DEV void actAndGrad(float x, float& value, float& grad) {
  if (ACT == RREC_ACT_SILU) {
    const float e = expf(-x), s = 1.0f / (1.0f + e);
    value = x * s;
    grad = s * (1.0f + x * (1.0f - s));
  } else {
    // 0.5 (1 + tanh u) = sigmoid(2u): no cancellation where tanh u is near -1; 1 - tanh^2 = 4 s (1 - s)
    const float u = kGeluC * (x + 0.044715f * x * x * x), s = 1.0f / (1.0f + expf(-2.0f * u));
    value = x * s;
    grad = s + 2.0f * x * s * (1.0f - s) * kGeluC * (1.0f + 3.0f * 0.044715f * x * x);
  }
}

template <int ACT, bool BWD>
RREC_KERNEL void gatedActKernel(float* h, const float* gate, const float* up, const float* dh, float* dgate, float* dup, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float a, da;
    actAndGrad<ACT>(gate[i], a, da);
    if (!BWD) {
      h[i] = a * up[i];
    } else {
      dgate[i] = dh[i] * up[i] * da;
      dup[i] = dh[i] * a;
    }
  }
}

RREC_KERNEL void addKernel(float* dst, const float* src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) dst[i] += src[i];
}

RREC_KERNEL void gatherKernel(float* dst, const float* src, const int32_t* rows, int n, int width, int srcRows, int* err) {
  const int64_t total = int64_t(n) * width;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int r = rows[i / width];
    if (r < 0 || r >= srcRows) {
      *err = rrec::cuda::kDevRowRange;
      continue;
    }
    dst[i] = src[int64_t(r) * width + i % width];
  }
}

RREC_KERNEL void scatterAddKernel(float* dst, const float* src, const int32_t* rows, int n, int width, int dstRows, int* err) {
  const int col = blockIdx.x * blockDim.x + threadIdx.x;
  if (col >= width) return;
  for (int i = 0; i < n; i++) {
    const int r = rows[i];
    if (r < 0 || r >= dstRows) {
      *err = rrec::cuda::kDevRowRange;
      continue;
    }
    dst[int64_t(r) * width + col] += src[int64_t(i) * width + col];
  }
}

template <int ST>
RREC_KERNEL void castToF32Kernel(float* dst, const void* src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) dst[i] = loadw<ST>(src, i);
}
RREC_KERNEL void castToBf16Kernel(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) dst[i] = f32_to_bf16(src[i]);
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

void embedding(Ctx& c, const rrec_embedding_args& a) {
  positive(a.M, "M");
  const void* e = weight(a.emb, "emb");
  const int V = a.emb.rows, C = a.emb.cols;
  float* out = ptr<float>(a.out, int64_t(a.M) * C, "out");
  const int32_t* tok = ptr<int32_t>(a.tokens, a.M, "tokens");
  byWeightType(a.emb.t.dtype, [&](auto wt) {
    auto k = embeddingKernel<decltype(wt)::value>;
    RREC_LAUNCH(k, gridFor(int64_t(a.M) * C, 256), 256, 0, c.stream, out, tok, e, a.M, V, C, static_cast<float>(a.scale), c.err);
  });
  launched("embedding");
}

void embeddingBwd(Ctx& c, const rrec_embedding_args& a) {
  positive(a.M, "M");
  const int V = a.emb.rows, C = a.emb.cols;
  positive(V, "emb rows");
  positive(C, "emb cols");
  float* demb = ptr<float>(a.demb, int64_t(V) * C, "demb");
  const float* dout = ptr<float>(a.dout, int64_t(a.M) * C, "dout");
  const int32_t* tok = ptr<int32_t>(a.tokens, a.M, "tokens");
  RREC_LAUNCH(embeddingBwdKernel, (C + 127) / 128, 128, 0, c.stream, demb, dout, tok, a.M, V, C, static_cast<float>(a.scale), c.err);
  launched("embedding_bwd");
}

void gatedAct(Ctx& c, const rrec_gated_act_args& a, bool backward) {
  if (a.n < 0) bad("n must be >= 0");
  if (a.n == 0) return;
  if (a.act != RREC_ACT_SILU && a.act != RREC_ACT_GELU_TANH) bad("act " + std::to_string(a.act) + " is not an activation");
  const float* gate = ptr<float>(a.gate, a.n, "gate");
  const float* up = ptr<float>(a.up, a.n, "up");
  float* h = backward ? nullptr : ptr<float>(a.h, a.n, "h");
  const float* dh = backward ? ptr<float>(a.dh, a.n, "dh") : nullptr;
  float* dg = backward ? ptr<float>(a.dgate, a.n, "dgate") : nullptr;
  float* du = backward ? ptr<float>(a.dup, a.n, "dup") : nullptr;
  auto k = a.act == RREC_ACT_SILU ? (backward ? gatedActKernel<RREC_ACT_SILU, true> : gatedActKernel<RREC_ACT_SILU, false>)
                                  : (backward ? gatedActKernel<RREC_ACT_GELU_TANH, true> : gatedActKernel<RREC_ACT_GELU_TANH, false>);
  RREC_LAUNCH(k, gridFor(a.n, 256), 256, 0, c.stream, h, gate, up, dh, dg, du, a.n);
  launched("gated_act");
}

void add(Ctx& c, const rrec_add_args& a) {
  if (a.n < 0) bad("n must be >= 0");
  if (a.n == 0) return;
  float* d = ptr<float>(a.dst, a.n, "dst");
  const float* s = ptr<float>(a.src, a.n, "src");
  RREC_LAUNCH(addKernel, gridFor(a.n, 256), 256, 0, c.stream, d, s, a.n);
  launched("add");
}

// The row count of dst/src is what their buffers hold from the offset on.
inline int rowsIn(const rrec_tensor& t, int width) {
  const Buffer* b = reinterpret_cast<const Buffer*>(t.buf);
  if (!b || t.offset > b->bytes) return 0;
  return static_cast<int>(std::min<uint64_t>((b->bytes - t.offset) / (4ull * width), 0x7fffffff));
}

void gatherRows(Ctx& c, const rrec_rows_args& a) {
  positive(a.width, "width");
  if (a.n <= 0) return;
  float* d = ptr<float>(a.dst, int64_t(a.n) * a.width, "dst");
  const int srcRows = rowsIn(a.src, a.width);
  const float* s = ptr<float>(a.src, int64_t(srcRows) * a.width, "src");
  const int32_t* r = ptr<int32_t>(a.rows, a.n, "rows");
  RREC_LAUNCH(gatherKernel, gridFor(int64_t(a.n) * a.width, 256), 256, 0, c.stream, d, s, r, a.n, a.width, srcRows, c.err);
  launched("gather_rows");
}

void scatterAddRows(Ctx& c, const rrec_rows_args& a) {
  positive(a.width, "width");
  if (a.n <= 0) return;
  const int dstRows = rowsIn(a.dst, a.width);
  float* d = ptr<float>(a.dst, int64_t(dstRows) * a.width, "dst");
  const float* s = ptr<float>(a.src, int64_t(a.n) * a.width, "src");
  const int32_t* r = ptr<int32_t>(a.rows, a.n, "rows");
  RREC_LAUNCH(scatterAddKernel, (a.width + 127) / 128, 128, 0, c.stream, d, s, r, a.n, a.width, dstRows, c.err);
  launched("scatter_add_rows");
}

void cast(Ctx& c, const rrec_cast_args& a) {
  if (a.n < 0) bad("n must be >= 0");
  if (a.n == 0) return;
  const size_t db = dtypeBytes(a.dst.dtype), sb = dtypeBytes(a.src.dtype);
  if (!db || !sb) bad("cast: unknown dtype");
  char* d = at(a.dst, uint64_t(a.n) * db, "dst");
  const char* s = at(a.src, uint64_t(a.n) * sb, "src");
  if (a.dst.dtype == a.src.dtype) {
    d2d(d, s, uint64_t(a.n) * db, c.stream);
  } else if (a.dst.dtype == RREC_F32 && (a.src.dtype == RREC_BF16 || a.src.dtype == RREC_F16)) {
    auto k = a.src.dtype == RREC_BF16 ? castToF32Kernel<RREC_BF16> : castToF32Kernel<RREC_F16>;
    RREC_LAUNCH(k, gridFor(a.n, 256), 256, 0, c.stream, reinterpret_cast<float*>(d), s, a.n);
  } else if (a.dst.dtype == RREC_BF16 && a.src.dtype == RREC_F32) {
    RREC_LAUNCH(castToBf16Kernel, gridFor(a.n, 256), 256, 0, c.stream, reinterpret_cast<uint16_t*>(d), reinterpret_cast<const float*>(s), a.n);
  } else {
    throw OpError(RREC_ERR_UNSUPPORTED, std::string("cast from ") + dtypeName(static_cast<DType>(a.src.dtype)) + " to " +
                                            dtypeName(static_cast<DType>(a.dst.dtype)));
  }
  launched("cast");
}

}  // namespace rrec::cuda
