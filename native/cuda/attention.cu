// Causal GQA attention over a packed ragged batch (forward with the log-sum-exp kept, backward),
// paged decode attention over a block-table KV cache, and the KV-cache writes.
// Part 1's kernels are the simple correct ones (FlashAttention-2's tiled mma kernels are part 2):
//   forward   one block per (query row, head): keys in chunks of kChunk, one key per thread for
//             the score, an online softmax (running max and sum) over the chunks, each thread
//             owning D / kThreads output dims
//   dq        one block per (query row, head), the same walk, dz = P (dP - rowsum(dO o O))
//   dk, dv    one block per (key row, kv head): the (query row, query head) pairs that see the key
// Scores: scale q.k, soft-capped cap tanh(s / cap) when softcap > 0; key j visible to query i
// when j <= i and (window == 0 or i - j < window), counted within the sequence.
#include "cuda/ops.h"

namespace rrec_dev {

constexpr int kAttnThreads = 128, kChunk = 128, kMaxD = 256, kDimsPerThread = kMaxD / kAttnThreads;

// the sequence holding packed row i: offsets[s] <= i < offsets[s + 1]
RREC_DEV int seqStart(const int32_t* offsets, int S, int i) {
  int lo = 0, hi = S;  // offsets[lo] <= i < offsets[hi]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (offsets[mid] <= i) lo = mid;
    else hi = mid;
  }
  return offsets[lo];
}
RREC_DEV int seqEnd(const int32_t* offsets, int S, int i) {
  int lo = 0, hi = S;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (offsets[mid] <= i) lo = mid;
    else hi = mid;
  }
  return offsets[lo + 1];
}

RREC_DEV float capScore(float s, float softcap) { return softcap > 0 ? softcap * tanhf(s / softcap) : s; }

RREC_DEV float dot(const float* a, const float* b, int D) {
  float s = 0;
  for (int d = 0; d < D; d++) s += a[d] * b[d];
  return s;
}

// Where key j of query row `row` lives: packed rows (K/V [M, Hk * D]) or a paged cache.
struct PackedKeys {
  const float *k, *v;
  int stride;  // Hk * D
  int base;    // packed row of the sequence's position 0
  RREC_DEV int64_t at(int j) const { return int64_t(base + j) * stride; }
};
struct PagedKeys {
  const float *k, *v;
  int stride;  // Hk * D
  const int32_t* table;
  int blockSize;
  RREC_DEV int64_t at(int j) const { return (int64_t(table[j / blockSize]) * blockSize + j % blockSize) * stride; }
};

// Online-softmax attention of one query (q in shared memory) over keys [lo, hi] (positions).
template <typename Keys>
RREC_DEV void attendOne(float* out, float* lseOut, const float* qs, const Keys& keys, int kvOff, int lo, int hi, int D, float scale,
                        float softcap, float* p /* shared [kChunk] */, float* red /* shared [32] */) {
  float m = -INFINITY, l = 0;
  float acc[kDimsPerThread];
  for (int e = 0; e < kDimsPerThread; e++) acc[e] = 0;
  for (int c0 = lo; c0 <= hi; c0 += kChunk) {
    const int j = c0 + threadIdx.x;
    float s = -INFINITY;
    if (j <= hi) s = capScore(scale * dot(qs, keys.k + keys.at(j) + kvOff, D), softcap);
    // chunk max over the block
    float cm = warp_max(s);
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = cm;
    __syncthreads();
    cm = red[0];
    for (int w = 1; w < kAttnThreads / 32; w++) cm = fmaxf(cm, red[w]);
    const float mNew = fmaxf(m, cm);
    const float e = j <= hi ? expf(s - mNew) : 0.0f;
    p[threadIdx.x] = e;
    const float alpha = expf(m - mNew);  // 0 on the first chunk (m = -inf)
    const float cs = block_sum(e, red);  // has a __syncthreads after p was written
    l = l * alpha + cs;
    m = mNew;
    const int n = min(kChunk, hi - c0 + 1);
    for (int t = 0; t < kDimsPerThread; t++) {
      const int d = threadIdx.x + t * kAttnThreads;
      if (d >= D) break;
      float a = acc[t] * alpha;
      for (int jj = 0; jj < n; jj++) a += p[jj] * keys.v[keys.at(c0 + jj) + kvOff + d];
      acc[t] = a;
    }
    __syncthreads();  // p is rewritten by the next chunk
  }
  for (int t = 0; t < kDimsPerThread; t++) {
    const int d = threadIdx.x + t * kAttnThreads;
    if (d < D) out[d] = acc[t] / l;
  }
  if (lseOut && threadIdx.x == 0) *lseOut = m + logf(l);
}

RREC_KERNEL void attnFwd(float* out, float* lse, const float* q, const float* k, const float* v, const int32_t* offsets, int S, int Hq, int Hk,
                         int D, int window, float scale, float softcap) {
  __shared__ float qs[kMaxD], p[kChunk], red[32];
  const int i = blockIdx.x, h = blockIdx.y, hk = h / (Hq / Hk);
  const int start = seqStart(offsets, S, i), pos = i - start;
  const float* qi = q + (int64_t(i) * Hq + h) * D;
  for (int d = threadIdx.x; d < D; d += kAttnThreads) qs[d] = qi[d];
  __syncthreads();
  const int lo = window > 0 ? max(0, pos - window + 1) : 0;
  const PackedKeys keys{k, v, Hk * D, start};
  attendOne(out + (int64_t(i) * Hq + h) * D, lse + int64_t(i) * Hq + h, qs, keys, hk * D, lo, pos, D, scale, softcap, p, red);
}

RREC_KERNEL void attnPaged(float* out, const float* q, const float* kc, const float* vc, const int32_t* tables, const int32_t* tableStart,
                           const int32_t* pos, int Hq, int Hk, int D, int blockSize, int window, float scale, float softcap) {
  __shared__ float qs[kMaxD], p[kChunk], red[32];
  const int m = blockIdx.x, h = blockIdx.y, hk = h / (Hq / Hk);
  const float* qi = q + (int64_t(m) * Hq + h) * D;
  for (int d = threadIdx.x; d < D; d += kAttnThreads) qs[d] = qi[d];
  __syncthreads();
  const int ps = pos[m], lo = window > 0 ? max(0, ps - window + 1) : 0;
  const PagedKeys keys{kc, vc, Hk * D, tables + tableStart[m], blockSize};
  attendOne(out + (int64_t(m) * Hq + h) * D, nullptr, qs, keys, hk * D, lo, ps, D, scale, softcap, p, red);
}

// D_i = rowsum(dO o O) = sum_j P_ij dP_ij per (row, head), recomputed from q, k, v and the lse (the
// backward's arguments need not carry the forward's output); dP summed by the same dot() as in
// the dq and dk/dv kernels, so dP - D is exactly 0 where a query sees one key (P = 1)
RREC_KERNEL void attnDelta(float* delta, const float* q, const float* k, const float* v, const float* lse, const float* dout,
                           const int32_t* offsets, int S, int Hq, int Hk, int D, int window, float scale, float softcap) {
  __shared__ float qs[kMaxD], gs[kMaxD], red[32];
  const int i = blockIdx.x, h = blockIdx.y, hk = h / (Hq / Hk);
  const int start = seqStart(offsets, S, i), pos = i - start;
  const int64_t qi = (int64_t(i) * Hq + h) * D;
  for (int d = threadIdx.x; d < D; d += kAttnThreads) qs[d] = q[qi + d], gs[d] = dout[qi + d];
  __syncthreads();
  const float L = lse[int64_t(i) * Hq + h];
  const int lo = window > 0 ? max(0, pos - window + 1) : 0, stride = Hk * D;
  float acc = 0;
  for (int j = lo + threadIdx.x; j <= pos; j += kAttnThreads) {
    const int64_t kj = int64_t(start + j) * stride + hk * D;
    const float P = expf(capScore(scale * dot(qs, k + kj, D), softcap) - L);
    acc += P * dot(gs, v + kj, D);
  }
  acc = block_sum(acc, red);
  if (threadIdx.x == 0) delta[int64_t(i) * Hq + h] = acc;
}

// dz of one score: P (dP - delta) times the soft-cap's derivative; *P out
RREC_DEV float scoreGrad(float raw, float lse, float dP, float delta, float softcap, float* P) {
  const float s = capScore(raw, softcap);
  const float pr = expf(s - lse);
  *P = pr;
  float dz = pr * (dP - delta);
  if (softcap > 0) {
    const float t = s / softcap;
    dz *= 1.0f - t * t;
  }
  return dz;
}

RREC_KERNEL void attnBwdQ(float* dq, const float* q, const float* k, const float* v, const float* lse, const float* delta, const float* dout,
                          const int32_t* offsets, int S, int Hq, int Hk, int D, int window, float scale, float softcap) {
  __shared__ float qs[kMaxD], gs[kMaxD], dzs[kChunk];
  const int i = blockIdx.x, h = blockIdx.y, hk = h / (Hq / Hk);
  const int start = seqStart(offsets, S, i), pos = i - start;
  const int64_t qi = (int64_t(i) * Hq + h) * D;
  for (int d = threadIdx.x; d < D; d += kAttnThreads) qs[d] = q[qi + d], gs[d] = dout[qi + d];
  __syncthreads();
  const float L = lse[int64_t(i) * Hq + h], dl = delta[int64_t(i) * Hq + h];
  const int lo = window > 0 ? max(0, pos - window + 1) : 0, stride = Hk * D;
  float acc[kDimsPerThread];
  for (int e = 0; e < kDimsPerThread; e++) acc[e] = 0;
  for (int c0 = lo; c0 <= pos; c0 += kChunk) {
    const int j = c0 + threadIdx.x;
    float dz = 0;
    if (j <= pos) {
      const int64_t kj = int64_t(start + j) * stride + hk * D;
      float P;
      dz = scoreGrad(scale * dot(qs, k + kj, D), L, dot(gs, v + kj, D), dl, softcap, &P);
    }
    dzs[threadIdx.x] = dz;
    __syncthreads();
    const int n = min(kChunk, pos - c0 + 1);
    for (int t = 0; t < kDimsPerThread; t++) {
      const int d = threadIdx.x + t * kAttnThreads;
      if (d >= D) break;
      float a = acc[t];
      for (int jj = 0; jj < n; jj++) a += dzs[jj] * k[int64_t(start + c0 + jj) * stride + hk * D + d];
      acc[t] = a;
    }
    __syncthreads();
  }
  for (int t = 0; t < kDimsPerThread; t++) {
    const int d = threadIdx.x + t * kAttnThreads;
    if (d < D) dq[qi + d] += scale * acc[t];
  }
}

// One block per (key row j, kv head): over the query rows i that see j and the query heads of the group.
RREC_KERNEL void attnBwdKV(float* dk, float* dv, const float* q, const float* k, const float* v, const float* lse, const float* delta,
                           const float* dout, const int32_t* offsets, int S, int Hq, int Hk, int D, int window, float scale, float softcap) {
  __shared__ float ks[kMaxD], vs[kMaxD], ps[kChunk], dzs[kChunk];
  __shared__ int rowOf[kChunk];
  const int j = blockIdx.x, hk = blockIdx.y, G = Hq / Hk;
  const int start = seqStart(offsets, S, j), end = seqEnd(offsets, S, j);
  const int64_t kj = int64_t(j) * Hk * D + hk * D;
  for (int d = threadIdx.x; d < D; d += kAttnThreads) ks[d] = k[kj + d], vs[d] = v[kj + d];
  __syncthreads();
  const int last = window > 0 ? min(end - 1, j + window - 1) : end - 1;  // i - j < window
  const int items = (last - j + 1) * G;
  float ak[kDimsPerThread], av[kDimsPerThread];
  for (int e = 0; e < kDimsPerThread; e++) ak[e] = 0, av[e] = 0;
  (void)start;
  for (int c0 = 0; c0 < items; c0 += kChunk) {
    const int it = c0 + threadIdx.x;
    float P = 0, dz = 0;
    int row = -1;
    if (it < items) {
      const int i = j + it / G, h = hk * G + it % G;
      row = i * Hq + h;
      dz = scoreGrad(scale * dot(q + int64_t(row) * D, ks, D), lse[row], dot(dout + int64_t(row) * D, vs, D), delta[row], softcap, &P);
    }
    ps[threadIdx.x] = P;
    dzs[threadIdx.x] = dz;
    rowOf[threadIdx.x] = row;
    __syncthreads();
    const int n = min(kChunk, items - c0);
    for (int t = 0; t < kDimsPerThread; t++) {
      const int d = threadIdx.x + t * kAttnThreads;
      if (d >= D) break;
      float a = ak[t], b = av[t];
      for (int jj = 0; jj < n; jj++) {
        const int64_t r = int64_t(rowOf[jj]) * D + d;
        a += dzs[jj] * q[r];
        b += ps[jj] * dout[r];
      }
      ak[t] = a, av[t] = b;
    }
    __syncthreads();
  }
  for (int t = 0; t < kDimsPerThread; t++) {
    const int d = threadIdx.x + t * kAttnThreads;
    if (d < D) dk[kj + d] += scale * ak[t], dv[kj + d] += av[t];
  }
}

RREC_KERNEL void kvWrite(float* kc, float* vc, const float* k, const float* v, const int32_t* rowBlock, const int32_t* rowSlot, int M, int width,
                         int blockSize, int numBlocks, int* err) {
  const int64_t n = int64_t(M) * width;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int m = static_cast<int>(i / width), c = static_cast<int>(i % width);
    const int b = rowBlock[m], s = rowSlot[m];
    if (b < 0 || b >= numBlocks || s < 0 || s >= blockSize) {
      *err = rrec::cuda::kDevRowRange;
      continue;
    }
    const int64_t dst = (int64_t(b) * blockSize + s) * width + c;
    kc[dst] = k[i];
    vc[dst] = v[i];
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

namespace {

struct Shape {
  int S, M, Hq, Hk, D;
};

Shape checkShape(int S, int M, int Hq, int Hk, int D) {
  positive(M, "M");
  positive(Hq, "Hq");
  positive(Hk, "Hk");
  if (Hq % Hk) bad("Hq (" + std::to_string(Hq) + ") must be a multiple of Hk (" + std::to_string(Hk) + ")");
  if (D <= 0 || D > kMaxD) bad("head_dim " + std::to_string(D) + ": the CUDA attention kernels take 1..256");
  return Shape{S, M, Hq, Hk, D};
}

}  // namespace

void attention(Ctx& c, const rrec_attention_args& a, bool backward) {
  positive(a.S, "S");
  const Shape s = checkShape(a.S, a.M, a.Hq, a.Hk, a.D);
  if (a.window < 0) bad("window must be >= 0");
  const int64_t nq = int64_t(s.M) * s.Hq * s.D, nk = int64_t(s.M) * s.Hk * s.D;
  const float* q = ptr<float>(a.q, nq, "q");
  const float* k = ptr<float>(a.k, nk, "k");
  const float* v = ptr<float>(a.v, nk, "v");
  const int32_t* so = ptr<int32_t>(a.seq_offsets, s.S + 1, "seq_offsets");
  float* lse = ptr<float>(a.lse, int64_t(s.M) * s.Hq, "lse");
  const float scale = static_cast<float>(a.scale), cap = static_cast<float>(a.softcap);
  const dim3 grid(s.M, s.Hq);
  if (!backward) {
    float* out = ptr<float>(a.out, nq, "out");
    RREC_LAUNCH(attnFwd, grid, kAttnThreads, 0, c.stream, out, lse, q, k, v, so, s.S, s.Hq, s.Hk, s.D, a.window, scale, cap);
    launched("attention");
    return;
  }
  const float* dout = ptr<float>(a.dout, nq, "dout");
  float* dq = ptr<float>(a.dq, nq, "dq");
  float* dk = ptr<float>(a.dk, nk, "dk");
  float* dv = ptr<float>(a.dv, nk, "dv");
  const int rows = s.M * s.Hq;
  Temp delta(c, sizeof(float) * rows);
  RREC_LAUNCH(attnDelta, grid, kAttnThreads, 0, c.stream, delta.as<float>(), q, k, v, lse, dout, so, s.S, s.Hq, s.Hk, s.D, a.window, scale, cap);
  launched("attention_bwd delta");
  RREC_LAUNCH(attnBwdQ, grid, kAttnThreads, 0, c.stream, dq, q, k, v, lse, delta.as<float>(), dout, so, s.S, s.Hq, s.Hk, s.D, a.window, scale, cap);
  launched("attention_bwd dq");
  RREC_LAUNCH(attnBwdKV, dim3(s.M, s.Hk), kAttnThreads, 0, c.stream, dk, dv, q, k, v, lse, delta.as<float>(), dout, so, s.S, s.Hq, s.Hk, s.D,
              a.window, scale, cap);
  launched("attention_bwd dk dv");
}

// The cache's block count from its buffer size (the args do not carry it).
static int cacheBlocks(const rrec_tensor& t, int blockSize, int width) {
  const Buffer* b = reinterpret_cast<const Buffer*>(t.buf);
  if (!b || t.offset > b->bytes) return 0;
  return static_cast<int>((b->bytes - t.offset) / (4ull * blockSize * width));
}

void pagedAttention(Ctx& c, const rrec_paged_attention_args& a) {
  const Shape s = checkShape(1, a.M, a.Hq, a.Hk, a.D);
  positive(a.block_size, "block_size");
  const int width = s.Hk * s.D, nb = cacheBlocks(a.k_cache, a.block_size, width);
  const float* q = ptr<float>(a.q, int64_t(s.M) * s.Hq * s.D, "q");
  float* out = ptr<float>(a.out, int64_t(s.M) * s.Hq * s.D, "out");
  const float* kc = ptr<float>(a.k_cache, int64_t(nb) * a.block_size * width, "k_cache");
  const float* vc = ptr<float>(a.v_cache, int64_t(nb) * a.block_size * width, "v_cache");
  const Buffer* tb = reinterpret_cast<const Buffer*>(a.tables.buf);
  const int64_t ntab = tb && a.tables.offset <= tb->bytes ? int64_t((tb->bytes - a.tables.offset) / 4) : 0;
  const int32_t* tables = ptr<int32_t>(a.tables, ntab, "tables");
  const int32_t* ts = ptr<int32_t>(a.table_start, s.M, "table_start");
  const int32_t* pos = ptr<int32_t>(a.pos, s.M, "pos");
  RREC_LAUNCH(attnPaged, dim3(s.M, s.Hq), kAttnThreads, 0, c.stream, out, q, kc, vc, tables, ts, pos, s.Hq, s.Hk, s.D, a.block_size, a.window,
              static_cast<float>(a.scale), static_cast<float>(a.softcap));
  launched("paged_attention");
}

void kvWriteOp(Ctx& c, const rrec_kv_write_args& a) {
  positive(a.M, "M");
  positive(a.width, "width");
  positive(a.block_size, "block_size");
  const int nb = cacheBlocks(a.k_cache, a.block_size, a.width);
  float* kc = ptr<float>(a.k_cache, int64_t(nb) * a.block_size * a.width, "k_cache");
  float* vc = ptr<float>(a.v_cache, int64_t(nb) * a.block_size * a.width, "v_cache");
  const float* k = ptr<float>(a.k, int64_t(a.M) * a.width, "k");
  const float* v = ptr<float>(a.v, int64_t(a.M) * a.width, "v");
  const int32_t* rb = ptr<int32_t>(a.row_block, a.M, "row_block");
  const int32_t* rs = ptr<int32_t>(a.row_slot, a.M, "row_slot");
  RREC_LAUNCH(kvWrite, gridFor(int64_t(a.M) * a.width, 256), 256, 0, c.stream, kc, vc, k, v, rb, rs, a.M, a.width, a.block_size, nb, c.err);
  launched("kv_write");
}

}  // namespace rrec::cuda
