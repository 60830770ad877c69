// Token sampling from a row of final logits, and the log-prob the engine reports.
//
// Log-probs: the engine returns log p(token) under the RAW model distribution, log-softmax of the
// final (soft-capped) logits at temperature 1, before penalties, top-k/p, min-p or the answer
// constraint, computed in double exactly as Model::forward does (lse = max + log sum exp(z - max)).
// That is what GRPO's old_logp must be for the ratio pi_theta / pi_old to be 1 on the first
// iteration when the trainer's forward has no temperature (vLLM's default "raw" logprobs; TRL
// divides by the temperature in its own forward, so a trainer that does so must rescale).
//
// Sampling order (vLLM's): repetition and presence penalties -> answer constraint mask ->
// temperature (0 = greedy argmax, lowest id on ties) -> top-k (ties at the k-th value kept) ->
// top-p on the top-k set (smallest prefix in descending-probability order, ties by ascending id,
// whose mass reaches p) -> min-p (keep p >= min_p * p_max) -> one uniform u draws by inverse CDF
// over the kept tokens in ascending id order. u is a pure function of (seed, sample, token index),
// so a sequence's draws do not depend on what it was batched with.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rrec/engine.h"
#include "rrec/rng.h"

namespace rrec {

// log sum_v exp(z[v]) in double, as in Model::forward.
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
int32_t sampleToken(const T* z, int V, const SamplingParams& p, const int32_t* history, int histLen, int promptLen,
                    const uint8_t* allowed, double u, SamplerScratch& s);

// The uniform for token `tokenIndex` (0 = first generated) of sample `sample` of a request.
inline double samplingUniform(uint64_t seed, int sample, int64_t tokenIndex) {
  return hashUniform(seed, 0x5a4d504c45ull + static_cast<uint64_t>(sample), static_cast<uint64_t>(tokenIndex));
}

// allowed[v] = 1 when bytes(v) is non-empty and prefix + bytes(v) is a prefix of one of targets.
// Returns how many tokens are allowed.
int constrainedMask(const TokenBytes& tb, int V, const std::vector<std::string>& targets, const std::string& prefix,
                    std::vector<uint8_t>& allowed);

}  // namespace rrec
