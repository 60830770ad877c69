// The CPU backend's sampling kernels: the log-sum-exp of a logits row and one draw from it.
// The order of operations and what the reported log-probs are: native/core/sampler.h.
#pragma once
#include <cstdint>
#include <vector>

namespace rrec::cpu {

// The per-draw knobs sampleToken reads (a subset of rrec::SamplingParams).
struct SampleParams {
  double temperature = 1.0;        // < 1e-5: greedy
  int topK = 0;                    // <= 0: off
  double topP = 1.0;               // 1: off
  double minP = 0.0;               // 0: off
  double repetitionPenalty = 1.0;  // 1: off
  double presencePenalty = 0.0;    // 0: off
};

// log sum_v exp(z[v]) in double (float rows: vectorised exp, sums in double).
template <typename T>
double logSumExp(const T* z, int V);

struct SamplerScratch {
  std::vector<double> w;
  std::vector<uint8_t> mark;
  std::vector<int32_t> idx;
  std::vector<double> chunkSum;
};

// Draws a token from z[V]. history = prompt + generated tokens so far (the first promptLen are the
// prompt). allowed: null, or a [V] mask of tokens the answer constraint admits. u in [0, 1).
template <typename T>
int32_t sampleToken(const T* z, int V, const SampleParams& p, const int32_t* history, int histLen, int promptLen,
                    const uint8_t* allowed, double u, SamplerScratch& s);

}  // namespace rrec::cpu
