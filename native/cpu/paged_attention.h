// Attention of new query rows over keys and values held in a paged KV cache (see
// native/core/block_manager.h): causal, GQA, Gemma2's soft-cap and sliding window. The per-row
// arithmetic mirrors attention_forward (attention.cc) step by step, so a row computed here equals
// the same row of the training forward up to the summation order of the q.k dot products.
#pragma once
#include <cstdint>

namespace rrec::cpu {

// out[M, Hq*D], q[M, Hq*D] (rotary already applied).
// kCache, vCache: one layer's [numBlocks, blockSize, Hk*D].
// Row m is the query at position pos[m] of its sequence; it attends to the sequence's keys at
// positions j <= pos[m] (and pos[m] - j < window when window > 0). Key j lives in block
// tables[tableStart[m] + j / blockSize], slot j % blockSize.
// Scores are scale * q.k, soft-capped (cap * tanh(s / cap)) when softcap > 0.
template <typename T>
void paged_attention_forward(T* out, const T* q, const T* kCache, const T* vCache, const int32_t* tables,
                             const int32_t* tableStart, const int32_t* pos, int M, int blockSize, int Hq, int Hk, int D,
                             double scale, double softcap, int window);

}  // namespace rrec::cpu
