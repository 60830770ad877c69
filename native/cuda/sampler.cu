// One token per draw on the device (RREC_OP_SAMPLE; native/core/sampler.h gives the order of
// operations and native/cpu/sampler.cc is the reference): one block per draw over a double
// working row w[V]. Top-k's threshold (the k-th largest value, ties kept) and top-p's boundary
// (the smallest prefix in descending order, ties by ascending id, whose mass reaches p) are found
// by binary search over the bit patterns of the non-negative doubles (their order is the
// integers'), each step one block reduction: no sort. The inverse CDF walks ascending ids,
// chunk sums first. The host passes each draw's distinct history tokens (penalties) and mask.
#include <algorithm>
#include <vector>

#include "cuda/ops.h"

namespace rrec_dev {

constexpr int kSampleThreads = 256, kCdfChunk = 1024;

struct Draw {
  double temperature, topP, minP, rep, pres, u;
  int32_t topK, row, penStart, penCount;
  int64_t allowedOff;  // -1: no mask
};

RREC_DEV uint64_t keyOf(double w) { return static_cast<uint64_t>(__double_as_longlong(w)); }

// sum over the block of w where pred(key): count (as double) or mass
template <typename P>
RREC_DEV double blockSumWhere(const double* w, int V, P pred, bool mass, double* red) {
  double s = 0;
  for (int v = threadIdx.x; v < V; v += kSampleThreads)
    if (pred(keyOf(w[v]))) s += mass ? w[v] : 1.0;
  return block_sum(s, red);
}

RREC_KERNEL void sampleKernel(const float* logits, const double* lse, int V, const Draw* draws, const int32_t* penTok, const uint8_t* penMark,
                              const uint8_t* allowed, double* work, int32_t* tokens, float* logprobs) {
  __shared__ double red[32];
  __shared__ double chunk[32];
  __shared__ int sBest;
  __shared__ double sBestVal;
  const Draw d = draws[blockIdx.x];
  double* w = work + int64_t(blockIdx.x) * V;
  const float* z = logits + int64_t(d.row) * V;
  for (int v = threadIdx.x; v < V; v += kSampleThreads) {
    double x = z[v];
    if (d.allowedOff >= 0 && !allowed[d.allowedOff + v]) x = -INFINITY;
    w[v] = x;
  }
  __syncthreads();
  // penalties on distinct tokens (mark 1: seen, 2: seen in the output), before the mask
  for (int i = threadIdx.x; i < d.penCount; i += kSampleThreads) {
    const int t = penTok[d.penStart + i];
    const int mark = penMark[d.penStart + i];
    if (d.allowedOff >= 0 && !allowed[d.allowedOff + t]) continue;  // masked: stays -inf
    double x = z[t];
    if (d.rep != 1.0) x = x > 0 ? x / d.rep : x * d.rep;
    if ((mark & 2) && d.pres != 0.0) x -= d.pres;
    w[t] = x;
  }
  __syncthreads();
  int token = 0;
  if (d.temperature < 1e-5) {
    // greedy: argmax, lowest id on ties (thread 0 walks the per-thread winners in id order)
    if (threadIdx.x == 0) sBest = 0, sBestVal = w[0];
    __syncthreads();
    if (threadIdx.x == 0)
      for (int v = 1; v < V; v++)
        if (w[v] > sBestVal) sBestVal = w[v], sBest = v;
    __syncthreads();
    token = sBest;
  } else {
    double mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += kSampleThreads) mx = fmax(mx, w[v] / d.temperature);
    // block max through the sum helper's scratch: per warp, then across warps
    for (int o = 16; o > 0; o >>= 1) mx = fmax(mx, __shfl_xor_sync(kFull, mx, o));
    __syncthreads();
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = mx;
    __syncthreads();
    mx = red[0];
    for (int i = 1; i < kSampleThreads / 32; i++) mx = fmax(mx, red[i]);
    __syncthreads();
    for (int v = threadIdx.x; v < V; v += kSampleThreads) w[v] = exp(w[v] / d.temperature - mx);  // -inf -> 0, the max -> 1
    __syncthreads();
    if (d.topK > 0 && d.topK < V) {
      // the largest key t with count(key >= t) >= k: the k-th largest value
      uint64_t t = 0;
      for (int b = 62; b >= 0; b--) {
        const uint64_t cand = t | (uint64_t(1) << b);
        if (blockSumWhere(w, V, [cand](uint64_t k) { return k >= cand; }, false, red) >= d.topK) t = cand;
      }
      for (int v = threadIdx.x; v < V; v += kSampleThreads)
        if (keyOf(w[v]) < t) w[v] = 0;
      __syncthreads();
    }
    if (d.topP < 1.0) {
      const double total = blockSumWhere(w, V, [](uint64_t k) { return k > 0; }, true, red);
      const double need = d.topP * total;
      // the smallest key r with G(r) = mass of keys > r below need: r is the boundary value
      uint64_t lo = 0, hi = uint64_t(0x7ff0000000000000ull);
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        if (blockSumWhere(w, V, [mid](uint64_t k) { return k > mid; }, true, red) < need) hi = mid;
        else lo = mid + 1;
      }
      const double g = blockSumWhere(w, V, [lo](uint64_t k) { return k > lo; }, true, red);
      // ties at the boundary value kept in ascending id order while the mass before them < need
      if (threadIdx.x == 0) {
        double cum = g;
        for (int v = 0; v < V; v++)
          if (keyOf(w[v]) == lo && lo > 0) {
            if (cum >= need) w[v] = 0;
            else cum += w[v];
          }
      }
      __syncthreads();
      for (int v = threadIdx.x; v < V; v += kSampleThreads)
        if (keyOf(w[v]) < lo) w[v] = 0;
      __syncthreads();
    }
    if (d.minP > 0) {
      double pm = 0;
      for (int v = threadIdx.x; v < V; v += kSampleThreads) pm = fmax(pm, w[v]);
      for (int o = 16; o > 0; o >>= 1) pm = fmax(pm, __shfl_xor_sync(kFull, pm, o));
      __syncthreads();
      if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = pm;
      __syncthreads();
      pm = red[0];
      for (int i = 1; i < kSampleThreads / 32; i++) pm = fmax(pm, red[i]);
      __syncthreads();
      const double thr = d.minP * pm;
      for (int v = threadIdx.x; v < V; v += kSampleThreads)
        if (w[v] < thr) w[v] = 0;
      __syncthreads();
    }
    // inverse CDF in ascending ids: chunk sums (each warp sums chunks), then thread 0 walks
    const int nChunks = (V + kCdfChunk - 1) / kCdfChunk;
    double total = 0;
    for (int c0 = 0; c0 < nChunks; c0 += 32) {
      // 32 chunks at a time: warp w sums chunks c0 + w, c0 + w + 8, ...
      const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
      for (int c = warp; c < 32; c += kSampleThreads / 32) {
        double s = 0;
        const int base = (c0 + c) * kCdfChunk;
        if (c0 + c < nChunks)
          for (int v = base + lane; v < min(V, base + kCdfChunk); v += 32) s += w[v];
        s = warp_sum(s);
        if (lane == 0) chunk[c] = s;
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        // the walk over this group of chunks happens below, with the totals of all groups known:
        // keep it simple and exact: sum the group into the total here
        for (int c = 0; c < 32 && c0 + c < nChunks; c++) total += chunk[c];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      const double target = d.u * total;
      double acc = 0;
      int last = -1;
      token = -1;
      for (int v = 0; v < V; v++) {
        if (w[v] <= 0) continue;
        last = v;
        acc += w[v];
        if (acc > target) {
          token = v;
          break;
        }
      }
      if (token < 0) token = last < 0 ? 0 : last;
      sBest = token;
    }
    __syncthreads();
    token = sBest;
  }
  if (threadIdx.x == 0) {
    tokens[blockIdx.x] = token;
    logprobs[blockIdx.x] = static_cast<float>(double(z[token]) - lse[d.row]);
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

void sample(Ctx& c, const rrec_sample_args& a) {
  positive(a.V, "V");
  if (a.n_draws < 0) bad("n_draws must be >= 0");
  if (a.n_draws == 0) return;
  if (!a.draws || !a.tokens || !a.logprobs) bad("draws, tokens and logprobs are needed");
  int rows = 0;
  for (int i = 0; i < a.n_draws; i++) {
    if (a.draws[i].row < 0) bad("draws[" + std::to_string(i) + "].row is negative");
    rows = std::max(rows, a.draws[i].row + 1);
  }
  const float* z = ptr<float>(a.logits, int64_t(rows) * a.V, "logits");
  const double* lse = ptr<double>(a.lse, rows, "lse");
  constexpr int kGroup = 64;  // draws per launch: the working rows are kGroup x V doubles
  for (int g0 = 0; g0 < a.n_draws; g0 += kGroup) {
    const int n = std::min(kGroup, a.n_draws - g0);
    std::vector<Draw> ds(n);
    std::vector<int32_t> penTok;
    std::vector<uint8_t> penMark, allowed, mark(a.V);
    for (int i = 0; i < n; i++) {
      const rrec_sample_draw& s = a.draws[g0 + i];
      Draw& d = ds[i];
      d = Draw{s.temperature, s.top_p, s.min_p, s.repetition_penalty, s.presence_penalty, s.u, s.top_k, s.row,
               static_cast<int32_t>(penTok.size()), 0, -1};
      if ((s.repetition_penalty != 1.0 || s.presence_penalty != 0.0) && s.history) {
        std::fill(mark.begin(), mark.end(), 0);
        for (int h = 0; h < s.history_len; h++) {
          const int t = s.history[h];
          if (t >= 0 && t < a.V) mark[t] |= static_cast<uint8_t>(h < s.prompt_len ? 1 : 3);
        }
        for (int v = 0; v < a.V; v++)
          if (mark[v]) penTok.push_back(v), penMark.push_back(mark[v]);
        d.penCount = static_cast<int32_t>(penTok.size()) - d.penStart;
      }
      if (s.allowed) {
        d.allowedOff = static_cast<int64_t>(allowed.size());
        allowed.insert(allowed.end(), s.allowed, s.allowed + a.V);
      }
    }
    Temp dd(c, sizeof(Draw) * n), pt(c, sizeof(int32_t) * std::max<size_t>(1, penTok.size())), pm(c, std::max<size_t>(1, penMark.size()));
    Temp al(c, std::max<size_t>(1, allowed.size())), work(c, sizeof(double) * int64_t(n) * a.V), tk(c, sizeof(int32_t) * n), lp(c, sizeof(float) * n);
    h2d(dd.p, ds.data(), sizeof(Draw) * n, c.stream);
    if (!penTok.empty()) h2d(pt.p, penTok.data(), sizeof(int32_t) * penTok.size(), c.stream), h2d(pm.p, penMark.data(), penMark.size(), c.stream);
    if (!allowed.empty()) h2d(al.p, allowed.data(), allowed.size(), c.stream);
    RREC_LAUNCH(sampleKernel, n, kSampleThreads, 0, c.stream, z, lse, a.V, dd.as<Draw>(), pt.as<int32_t>(), pm.as<uint8_t>(), al.as<uint8_t>(),
                work.as<double>(), tk.as<int32_t>(), lp.as<float>());
    launched("sample");
    d2h(a.tokens + g0, tk.p, sizeof(int32_t) * n, c.stream);
    d2h(a.logprobs + g0, lp.p, sizeof(float) * n, c.stream);
  }
}

}  // namespace rrec::cuda
