// The sampling engine (see rrec/engine.h and engine_impl.h): the session (requests checked and
// queued, one group leader per prompt with n > 1 samples), the bookkeeping of each sampled token
// (stop ids and strings, the constrained answer, length limits) and abort.
#include "rrec/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "engine_impl.h"
#include "rrec/errors.h"

namespace rrec {

double engineSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename T>
EngineImpl<T>::EngineImpl(Model<T>& m, const EngineOptions& o) : model(m), be(m.backend()), opt(o), cfg(m.config()) {
  if (opt.blockSize < 1 || opt.blockSize > 4096)
    throw ArgumentError("engine: blockSize must be in [1, 4096], got " + std::to_string(opt.blockSize));
  if (opt.maxBatchTokens < 1) throw ArgumentError("engine: maxBatchTokens must be >= 1, got " + std::to_string(opt.maxBatchTokens));
  if (opt.maxRunning < 1) throw ArgumentError("engine: maxRunning must be >= 1, got " + std::to_string(opt.maxRunning));
  kvWidth = cfg.kvHeads * cfg.headDim;
  const int64_t blockBytes = KvPool::blockBytes(cfg.layers, opt.blockSize, kvWidth, sizeof(T));
  int64_t budget = opt.kvBudgetBytes;
  if (budget <= 0) {
    // vLLM's gpu_memory_utilization as a share of the memory the OS reports available
    const int64_t avail = availableMemoryBytes();
    if (opt.kvMemoryFraction > 1) throw ArgumentError("engine: kvMemoryFraction must be in (0, 1], got " + std::to_string(opt.kvMemoryFraction));
    if (opt.kvMemoryFraction > 0) {
      budget = static_cast<int64_t>(static_cast<double>(avail > 0 ? avail : (int64_t(4) << 30)) * opt.kvMemoryFraction);
    } else {
      budget = avail > 0 ? avail / 4 : (int64_t(1) << 30);
      budget = std::min<int64_t>(budget, int64_t(4) << 30);
    }
  }
  const int64_t nb = budget / blockBytes;
  if (nb < 1)
    throw ArgumentError("engine: kvBudgetBytes = " + std::to_string(budget) + " holds no KV block (one block of " +
                        std::to_string(opt.blockSize) + " tokens takes " + std::to_string(blockBytes) + " bytes)");
  const int numBlocks = static_cast<int>(std::min<int64_t>(nb, int64_t(1) << 30));
  pool = std::make_unique<KvPool>(be, dtypeOf<T>(), cfg.layers, numBlocks, opt.blockSize, kvWidth);
  bm = std::make_unique<BlockManager>(numBlocks);
  stats.numBlocks = numBlocks;
  stats.blockSize = opt.blockSize;
  stats.blockBytes = blockBytes;
}


template <typename T>
void EngineImpl<T>::start(std::vector<EngineRequest> in) {
  if (unfinished > 0) throw ArgumentError("engine: a generation is already running on this engine");
  const int V = cfg.vocab;
  for (size_t r = 0; r < in.size(); r++) {
    const EngineRequest& q0 = in[r];
    const SamplingParams& p = q0.params;
    const std::string where = "engine: request " + std::to_string(r) + ": ";
    if (q0.prompt.empty()) throw ArgumentError(where + "the prompt is empty");
    for (size_t i = 0; i < q0.prompt.size(); i++)
      if (q0.prompt[i] < 0 || q0.prompt[i] >= V)
        throw ArgumentError(where + "prompt[" + std::to_string(i) + "] = " + std::to_string(q0.prompt[i]) +
                            " is outside the vocabulary [0, " + std::to_string(V) + ")");
    if (p.n < 1) throw ArgumentError(where + "n must be >= 1, got " + std::to_string(p.n));
    if (p.maxTokens < 1) throw ArgumentError(where + "maxTokens must be >= 1, got " + std::to_string(p.maxTokens));
    if (!(p.temperature >= 0)) throw ArgumentError(where + "temperature must be >= 0");
    if (!(p.topP > 0 && p.topP <= 1)) throw ArgumentError(where + "topP must be in (0, 1], got " + std::to_string(p.topP));
    if (!(p.minP >= 0 && p.minP <= 1)) throw ArgumentError(where + "minP must be in [0, 1], got " + std::to_string(p.minP));
    if (!(p.repetitionPenalty > 0)) throw ArgumentError(where + "repetitionPenalty must be > 0");
    if (!std::isfinite(p.presencePenalty)) throw ArgumentError(where + "presencePenalty must be finite");
    for (int32_t t : p.stopTokenIds)
      if (t < 0 || t >= V) throw ArgumentError(where + "stop token id " + std::to_string(t) + " is outside the vocabulary");
    for (const std::string& s : p.stop)
      if (s.empty()) throw ArgumentError(where + "a stop string is empty");
    if ((!p.stop.empty() || !p.answerLabels.empty()) && tb.empty())
      throw ArgumentError(where + "stop strings and constrained answers need the tokenizer's byte table (pass a tokenizer to the Engine)");
    if (!p.answerLabels.empty() && p.answerOpen.empty()) throw ArgumentError(where + "answerOpen is empty");
    if (cfg.maxPositions > 0 && static_cast<int>(q0.prompt.size()) >= cfg.maxPositions)
      throw ArgumentError(where + "the prompt has " + std::to_string(q0.prompt.size()) + " tokens; the model takes at most " +
                          std::to_string(cfg.maxPositions) + " positions");
    int64_t longest = static_cast<int64_t>(q0.prompt.size()) + p.maxTokens;
    if (cfg.maxPositions > 0) longest = std::min<int64_t>(longest, cfg.maxPositions);
    if (blocksFor(longest) > bm->numBlocks())
      throw ArgumentError(where + "one sequence of " + std::to_string(longest) + " tokens needs " + std::to_string(blocksFor(longest)) +
                          " KV blocks but the pool holds " + std::to_string(bm->numBlocks()) + " (" +
                          std::to_string(stats.blockBytes) + " bytes each); raise kvBudgetBytes or lower maxTokens");
  }
  reqs = std::move(in);
  answerTargets.assign(reqs.size(), {});
  all.clear();
  waiting.clear();
  running.clear();
  bm->reset();
  unfinished = 0;
  for (size_t r = 0; r < reqs.size(); r++) {
    const SamplingParams& p = reqs[r].params;
    for (const std::string& l : p.answerLabels) answerTargets[r].push_back(l + p.answerClose);
    // One group leader (sample -1) that forks after its prefill, or n independent sequences.
    const int seqs = p.n > 1 && !opt.prefixSharing ? p.n : 1;
    for (int j = 0; j < seqs; j++) {
      auto s = std::make_unique<Seq>();
      s->request = static_cast<int>(r);
      s->sample = p.n > 1 && opt.prefixSharing ? -1 : j;
      s->tokens = reqs[r].prompt;
      s->promptLen = static_cast<int>(s->tokens.size());
      waiting.push_back(s.get());
      all.push_back(std::move(s));
    }
    unfinished += p.n;
  }
}



template <typename T>
void EngineImpl<T>::appendToken(Seq* s, const Draw& dr, std::vector<StepEvent>& events) {
  const SamplingParams& p = reqs[s->request].params;
  const int32_t t = dr.token;
  s->tokens.push_back(t);
  uint8_t finish = kNotFinished;
  if (std::find(p.stopTokenIds.begin(), p.stopTokenIds.end(), t) != p.stopTokenIds.end()) finish = kStop;
  if (!tb.empty() && t + 1 < static_cast<int>(tb.offsets.size())) {
    const size_t oldLen = s->text.size();
    const std::string bytes(reinterpret_cast<const char*>(tb.bytes.data()) + tb.offsets[t],
                            static_cast<size_t>(tb.offsets[t + 1] - tb.offsets[t]));
    s->text += bytes;
    for (const std::string& st : p.stop)
      if (s->text.find(st, searchFrom(oldLen, st.size())) != std::string::npos) finish = kStop;
    const std::vector<std::string>& targets = answerTargets[s->request];
    if (!targets.empty()) {
      if (s->answer == 1) {
        s->answerSoFar += bytes;
      } else if (s->answer == 0) {
        const size_t at = s->text.find(p.answerOpen, searchFrom(oldLen, p.answerOpen.size()));
        if (at != std::string::npos) {
          s->answer = 1;
          s->answerSoFar = s->text.substr(at + p.answerOpen.size());
        }
      }
      if (s->answer == 1) {
        bool complete = false, viable = false;
        for (const std::string& tg : targets) {
          if (s->answerSoFar.size() >= tg.size() && s->answerSoFar.compare(0, tg.size(), tg) == 0) complete = true;
          if (tg.size() > s->answerSoFar.size() && tg.compare(0, s->answerSoFar.size(), s->answerSoFar) == 0) viable = true;
        }
        if (complete || !viable) s->answer = 2;
      }
    }
  }
  if (finish == kNotFinished && s->generated() >= p.maxTokens) finish = kLength;
  if (finish == kNotFinished && cfg.maxPositions > 0 && static_cast<int>(s->tokens.size()) >= cfg.maxPositions) finish = kLength;
  events.push_back({s->request, s->sample, t, dr.logprob, finish});
  if (finish != kNotFinished) {
    freeBlocks(s);
    s->state = SeqState::Finished;
    unfinished--;
  }
}

template <typename T>
void EngineImpl<T>::abortAll(std::vector<StepEvent>& events) {
  for (auto& sp : all) {
    Seq* s = sp.get();
    if (s->state == SeqState::Finished) continue;
    freeBlocks(s);
    if (s->sample < 0)
      for (int j = 0; j < reqs[s->request].params.n; j++) events.push_back({s->request, j, -1, 0.f, kAbort});
    else
      events.push_back({s->request, s->sample, -1, 0.f, kAbort});
    s->state = SeqState::Finished;
  }
  waiting.clear();
  running.clear();
  unfinished = 0;
  bm->reset();
}

template <typename T>
Engine<T>::Engine(Model<T>& model, const EngineOptions& opt) : impl_(std::make_unique<EngineImpl<T>>(model, opt)) {}
template <typename T>
Engine<T>::~Engine() = default;
template <typename T>
void Engine<T>::setTokenBytes(TokenBytes tb) {
  if (!tb.offsets.empty()) {
    for (size_t i = 0; i + 1 < tb.offsets.size(); i++)
      if (tb.offsets[i] < 0 || tb.offsets[i + 1] < tb.offsets[i])
        throw ArgumentError("engine: token byte offsets must be non-decreasing from 0 (at token " + std::to_string(i) + ")");
    if (tb.offsets.front() != 0 || static_cast<size_t>(tb.offsets.back()) != tb.bytes.size())
      throw ArgumentError("engine: token byte offsets must start at 0 and end at the byte count");
  }
  impl_->tb = std::move(tb);
}
template <typename T>
void Engine<T>::start(std::vector<EngineRequest> reqs) {
  impl_->start(std::move(reqs));
}
template <typename T>
bool Engine<T>::active() const {
  return impl_->unfinished > 0;
}
template <typename T>
void Engine<T>::step(Adapter<T>* adapter, std::vector<StepEvent>& events) {
  impl_->step(adapter, events);
}
template <typename T>
void Engine<T>::abortAll(std::vector<StepEvent>& events) {
  impl_->abortAll(events);
}
template <typename T>
const EngineStats& Engine<T>::stats() const {
  impl_->stats.usedBlocks = impl_->bm->used();
  return impl_->stats;
}
template <typename T>
void Engine<T>::resetStats() {
  EngineStats& s = impl_->stats;
  const int nb = s.numBlocks, bsz = s.blockSize;
  const int64_t bb = s.blockBytes;
  s = EngineStats();
  s.numBlocks = nb;
  s.blockSize = bsz;
  s.blockBytes = bb;
}

template class Engine<float>;
template class Engine<double>;
template void EngineImpl<float>::appendToken(Seq*, const Draw&, std::vector<StepEvent>&);
template void EngineImpl<double>::appendToken(Seq*, const Draw&, std::vector<StepEvent>&);

}  // namespace rrec
