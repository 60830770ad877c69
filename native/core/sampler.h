// The engine's host-side sampling helpers: the uniform of each draw and the constrained-answer
// mask. The per-row work (penalties, temperature, top-k/p, min-p, the draw) is a backend op
// (RREC_OP_SAMPLE; the CPU backend's sampler kernels are its reference).
//
// Log-probs: the engine returns log p(token) under the RAW model distribution, log-softmax of the
// final (soft-capped) logits at temperature 1, before penalties, top-k/p, min-p or the answer
// constraint, computed in double as the trainer's forward does (lse = max + log sum exp(z - max)).
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

// The uniform for token `tokenIndex` (0 = first generated) of sample `sample` of a request.
inline double samplingUniform(uint64_t seed, int sample, int64_t tokenIndex) {
  return hashUniform(seed, 0x5a4d504c45ull + static_cast<uint64_t>(sample), static_cast<uint64_t>(tokenIndex));
}

// allowed[v] = 1 when bytes(v) is non-empty and prefix + bytes(v) is a prefix of one of targets.
// Returns how many tokens are allowed.
int constrainedMask(const TokenBytes& tb, int V, const std::vector<std::string>& targets, const std::string& prefix,
                    std::vector<uint8_t>& allowed);

}  // namespace rrec
