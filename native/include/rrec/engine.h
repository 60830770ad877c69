// The sampling engine (the vLLM stand-in): continuous batching over a paged KV cache, prefix
// sharing across the n samples of a prompt, chunked prefill, preemption by recomputation, and
// per-request sampling. It runs the model's own layers (layer_ops.h) with the model's weights and
// the adapter's LIVE buffers: an optimizer step is visible to the next step() call, nothing is
// copied or merged.
//
// The engine is driven one step at a time (step()); the addon calls step() from a worker thread
// with the model's mutex held, so an optimizer step never interleaves with a half-done step.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "rrec/model.h"

namespace rrec {

// Per-request sampling parameters (vLLM's SamplingParams, camel-cased in TS); the fields, their
// defaults and docs are rrec/options.def's.
struct SamplingParams {
#define RREC_SAMPLING(kind, name, ctype, def, doc) ctype name = def;
#include "rrec/options.def"
#undef RREC_SAMPLING
};

struct EngineRequest {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

struct EngineOptions {
  int64_t kvBudgetBytes = 0;  // KV cache bytes; <= 0: kvMemoryFraction of available memory
  double kvMemoryFraction = 0; // (0, 1]: that share of MemAvailable; <= 0: 25%, at most 4 GiB
  int blockSize = 16;         // tokens per KV block
  int maxBatchTokens = 512;   // tokens per step (decodes first, prefill chunks fill the rest)
  int maxRunning = 256;       // sequences decoded together at most
  bool prefixSharing = true;  // false: each sample prefills its own copy of the prompt (tests, A/B)
};

// The UTF-8 bytes every token id decodes to: token v is bytes[offsets[v], offsets[v + 1]).
// Special tokens have no bytes. Needed for stop strings and constrained answers.
struct TokenBytes {
  std::vector<uint8_t> bytes;
  std::vector<int32_t> offsets;  // [V + 1]
  bool empty() const { return offsets.empty(); }
};

enum Finish : uint8_t { kNotFinished = 0, kStop = 1, kLength = 2, kAbort = 3 };

// One sampled token (or a finish without a token: abort), reported by step()/abortAll().
struct StepEvent {
  int request;
  int sample;
  int32_t token;  // -1 when the event only reports a finish (abort)
  float logprob;  // log p(token) under the raw model distribution (see sampler.h)
  uint8_t finish;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t prefillTokens = 0;     // prompt (and recomputed) tokens run through the model
  int64_t decodeTokens = 0;      // tokens sampled
  double prefillSeconds = 0;     // wall time of steps that ran any prefill row
  double decodeSeconds = 0;      // wall time of steps that ran only decode rows
  int64_t decodeOnlyTokens = 0;  // tokens sampled in decode-only steps (decode tok/s = this / decodeSeconds)
  int64_t preemptions = 0;
  int peakBlocks = 0;            // most blocks in use at once
  int usedBlocks = 0;            // blocks in use now (0 between generations)
  int numBlocks = 0;
  int blockSize = 0;
  int64_t blockBytes = 0;        // K + V of one block over all layers
};

template <typename T>
struct EngineImpl;

template <typename T>
class Engine {
 public:
  Engine(Model<T>& model, const EngineOptions& opt);
  ~Engine();
  void setTokenBytes(TokenBytes tb);
  // Starts a session with these requests (request i of the session is index i). Throws
  // ArgumentError when a request is invalid or even one of its sequences cannot fit the pool.
  void start(std::vector<EngineRequest> reqs);
  bool active() const;  // a session has unfinished sequences
  // One scheduler step; appends the tokens sampled in it to `events`.
  void step(Adapter<T>* adapter, std::vector<StepEvent>& events);
  // Ends every unfinished sequence with kAbort and frees all blocks.
  void abortAll(std::vector<StepEvent>& events);
  const EngineStats& stats() const;
  void resetStats();

 private:
  std::unique_ptr<EngineImpl<T>> impl_;
};

}  // namespace rrec
