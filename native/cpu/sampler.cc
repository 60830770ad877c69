// The CPU backend's sampling kernels (see sampler.h here and native/core/sampler.h for the order
// of operations and what the log-probs are).
#include "cpu/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "cpu/fast_exp.h"

namespace rrec::cpu {

template <typename T>
double logSumExp(const T* z, int V) {
  double mx = -INFINITY;
  for (int v = 0; v < V; v++) mx = std::max(mx, static_cast<double>(z[v]));
  double sum = 0;
  for (int v = 0; v < V; v++) sum += std::exp(static_cast<double>(z[v]) - mx);
  return mx + std::log(sum);
}

namespace {
// exp(x) for x <= 0 with the vectorised float exp (cpu::expVec, relative error 8e-8); 0 below
// -87 (where expVec clamps; those terms are < 1e-38 of the largest one, which is 1)
inline float expNonPositive(float x) {
  const float e = cpu::expVec(x);
  return x < -87.0f ? 0.0f : e;
}
constexpr int kLanes = 16;  // independent partial results, so that GCC vectorises the loops

template <typename F>
F maxOf(const F* w, int V) {
  F m[kLanes];
  for (F& x : m) x = -INFINITY;
  int v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int j = 0; j < kLanes; j++) m[j] = w[v + j] > m[j] ? w[v + j] : m[j];
  F mx = -INFINITY;
  for (F x : m) mx = std::max(mx, x);
  for (; v < V; v++) mx = std::max(mx, w[v]);
  return mx;
}

// sum of w[lo, hi) (in kLanes interleaved partial sums)
double sumOf(const double* w, int lo, int hi) {
  double s[kLanes] = {};
  int v = lo;
  for (; v + kLanes <= hi; v += kLanes)
    for (int j = 0; j < kLanes; j++) s[j] += w[v + j];
  double sum = 0;
  for (double x : s) sum += x;
  for (; v < hi; v++) sum += w[v];
  return sum;
}
}  // namespace

// float logits (every model but the float64 test build): a single-sequence decode step spent ~5%
// of its time in libm's double exp over the 151936 logits of Qwen2.5, twice (here and in
// sampleToken). Max and sums in kLanes lanes; sums in double. Differs from the double-exp version
// by ~1e-7 relative in the sum.
template <>
double logSumExp<float>(const float* z, int V) {
  const float mx = maxOf(z, V);
  if (mx == -INFINITY) return -INFINITY;
  double s[kLanes] = {};
  int v = 0;
  for (; v + kLanes <= V; v += kLanes)
    for (int j = 0; j < kLanes; j++) s[j] += expNonPositive(z[v + j] - mx);
  double sum = 0;
  for (double x : s) sum += x;
  for (int t = v; t < V; t++) sum += expNonPositive(z[t] - mx);
  return mx + std::log(sum);
}

template <typename T>
int32_t sampleToken(const T* z, int V, const SampleParams& p, const int32_t* history, int histLen, int promptLen,
                    const uint8_t* allowed, double u, SamplerScratch& s) {
  std::vector<double>& w = s.w;
  w.resize(static_cast<size_t>(V));
  for (int v = 0; v < V; v++) w[v] = static_cast<double>(z[v]);
  // ---- penalties, once per distinct token (mark: 1 seen anywhere, 2 seen in the output)
  if (p.repetitionPenalty != 1.0 || p.presencePenalty != 0.0) {
    s.mark.assign(static_cast<size_t>(V), 0);
    for (int i = 0; i < histLen; i++) {
      const int t = history[i];
      if (t < 0 || t >= V) continue;
      s.mark[t] |= static_cast<uint8_t>(i < promptLen ? 1 : 3);
    }
    for (int v = 0; v < V; v++) {
      if (!s.mark[v]) continue;
      if (p.repetitionPenalty != 1.0) w[v] = w[v] > 0 ? w[v] / p.repetitionPenalty : w[v] * p.repetitionPenalty;
      if ((s.mark[v] & 2) && p.presencePenalty != 0.0) w[v] -= p.presencePenalty;
    }
  }
  if (allowed)
    for (int v = 0; v < V; v++)
      if (!allowed[v]) w[v] = -INFINITY;
  // ---- greedy
  if (p.temperature < 1e-5) {
    int best = 0;
    for (int v = 1; v < V; v++)
      if (w[v] > w[best]) best = v;
    return best;
  }
  // ---- unnormalised probabilities at the temperature
  for (int v = 0; v < V; v++) w[v] /= p.temperature;
  const double mx = maxOf(w.data(), V);
  if constexpr (std::is_same_v<T, float>) {
    for (int v = 0; v < V; v++) w[v] = expNonPositive(static_cast<float>(w[v] - mx));  // -inf -> 0; the max -> 1
  } else {
    for (int v = 0; v < V; v++) w[v] = std::exp(w[v] - mx);  // -inf -> 0; the max -> 1
  }
  if (p.topK > 0 && p.topK < V) {
    std::vector<double> vals(w);
    std::nth_element(vals.begin(), vals.begin() + (p.topK - 1), vals.end(), std::greater<double>());
    const double thr = vals[p.topK - 1];
    for (int v = 0; v < V; v++)
      if (w[v] < thr) w[v] = 0;
  }
  if (p.topP < 1.0) {
    std::vector<int32_t>& idx = s.idx;
    idx.clear();
    double total = 0;
    for (int v = 0; v < V; v++)
      if (w[v] > 0) {
        idx.push_back(v);
        total += w[v];
      }
    auto before = [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
    const double need = p.topP * total;
    // Sort only as far as needed: the top 64, then 4x more until the prefix reaches the mass.
    size_t sorted = 0, keep = idx.size();
    double cum = 0;
    bool done = false;
    for (size_t k = std::min<size_t>(64, idx.size()); !done; k = std::min(idx.size(), k * 4)) {
      std::partial_sort(idx.begin() + static_cast<std::ptrdiff_t>(sorted), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), before);
      for (; sorted < k; sorted++) {
        if (cum >= need) {
          keep = sorted;
          done = true;
          break;
        }
        cum += w[idx[sorted]];
      }
      if (k == idx.size()) done = true;
    }
    if (keep == 0) keep = 1;
    s.mark.assign(static_cast<size_t>(V), 0);
    for (size_t i = 0; i < keep; i++) s.mark[idx[i]] = 1;
    for (int v = 0; v < V; v++)
      if (!s.mark[v]) w[v] = 0;
  }
  if (p.minP > 0) {
    double pmax = 0;
    for (int v = 0; v < V; v++) pmax = std::max(pmax, w[v]);
    const double thr = p.minP * pmax;
    for (int v = 0; v < V; v++)
      if (w[v] < thr) w[v] = 0;
  }
  // ---- inverse CDF in ascending id order: whole chunks of ids first (their sums are vectorised),
  // then the ids of the chunk where the running sum passes u * total. w >= 0 here.
  constexpr int kChunk = 1024;
  std::vector<double>& chunkSum = s.chunkSum;  // sum of each chunk, reused by the scan below
  chunkSum.resize(static_cast<size_t>((V + kChunk - 1) / kChunk));
  double total = 0;
  for (int c = 0; c < V; c += kChunk) total += chunkSum[c / kChunk] = sumOf(w.data(), c, std::min(V, c + kChunk));
  int last = V - 1;
  while (last >= 0 && w[last] <= 0) last--;
  if (last < 0) return 0;  // unreachable: the max token always survives
  const double target = u * total;
  double acc = 0;
  for (int c = 0; c < V; c += kChunk) {
    const int end = std::min(V, c + kChunk);
    const double cs = chunkSum[c / kChunk];
    if (acc + cs <= target) {
      acc += cs;
      continue;
    }
    for (int v = c; v < end; v++) {
      if (w[v] <= 0) continue;
      acc += w[v];
      if (acc > target) return v;
    }
  }
  return last;
}

template double logSumExp<double>(const double*, int);
template int32_t sampleToken<float>(const float*, int, const SampleParams&, const int32_t*, int, int, const uint8_t*, double,
                                    SamplerScratch&);
template int32_t sampleToken<double>(const double*, int, const SampleParams&, const int32_t*, int, int, const uint8_t*,
                                     double, SamplerScratch&);

}  // namespace rrec::cpu
