// One engine step's schedule (see engine_impl.h): running sequences oldest first; a decoding one
// runs its last sampled token (1 row), a prefilling one its next prompt chunk (up to the step's
// token budget). Blocks for the new rows are reserved first; when the pool is empty the youngest
// running sequence is preempted (its blocks freed, itself requeued at the front to be recomputed
// later), so memory never runs out. Then waiting sequences are admitted while budget and blocks
// (above a watermark) allow.
#include <algorithm>

#include "engine_impl.h"

namespace rrec {

template <typename T>
void EngineImpl<T>::removeRunning(Seq* s) {
  auto it = std::find(running.begin(), running.end(), s);
  if (it != running.end()) running.erase(it);
}

template <typename T>
void EngineImpl<T>::freeBlocks(Seq* s) {
  for (int32_t b : s->blocks) bm->decref(b);
  s->blocks.clear();
}

template <typename T>
void EngineImpl<T>::preempt(Seq* s) {
  freeBlocks(s);
  s->computed = 0;
  s->state = SeqState::Waiting;
  removeRunning(s);
  waiting.push_front(s);
  stats.preemptions++;
}

// Makes positions [computed, computed + count) of s writable: appends blocks, and copies a
// shared partly filled block (copy-on-write). Preempts the youngest running sequences while the
// pool is short; returns false when s itself had to be preempted.
template <typename T>
bool EngineImpl<T>::reserve(Seq* s, int count, bool mayPreempt) {
  const int first = s->computed, last = first + count - 1, bs = opt.blockSize;
  for (;;) {
    const int needNew = std::max(0, last / bs + 1 - static_cast<int>(s->blocks.size()));
    const int fb = first / bs;
    const bool cow = fb < static_cast<int>(s->blocks.size()) && bm->refcount(s->blocks[fb]) > 1;
    if (bm->numFree() >= needNew + (cow ? 1 : 0)) {
      if (cow) {
        const int nb = bm->allocate();
        pool->copyBlock(nb, s->blocks[fb]);
        bm->decref(s->blocks[fb]);
        s->blocks[fb] = nb;
      }
      for (int i = 0; i < needNew; i++) s->blocks.push_back(bm->allocate());
      stats.peakBlocks = std::max(stats.peakBlocks, bm->used());
      return true;
    }
    if (!mayPreempt || running.empty()) return false;
    Seq* victim = running.back();
    preempt(victim);
    if (victim == s) return false;
  }
}

// ---------------------------------------------------------------------------------------------
template <typename T>
void EngineImpl<T>::step(Adapter<T>* adapter, std::vector<StepEvent>& events) {
  if (unfinished <= 0) return;
  const double t0 = engineSeconds();
  std::vector<Work> work;
  int budget = opt.maxBatchTokens;
  std::sort(running.begin(), running.end(), [](const Seq* a, const Seq* b) { return a->order < b->order; });
  for (size_t i = 0; i < running.size(); i++) {
    Seq* s = running[i];
    const int remaining = static_cast<int>(s->tokens.size()) - s->computed;
    const int count = remaining == 1 ? 1 : std::min(remaining, budget);
    if (count <= 0) continue;
    if (!reserve(s, count, true)) break;  // s was the youngest: everything after it is gone too
    work.push_back({s, s->computed, count});
    budget -= count;
  }
  const int watermark = std::max(1, bm->numBlocks() / 100);
  while (!waiting.empty() && static_cast<int>(running.size()) < opt.maxRunning && budget > 0) {
    Seq* s = waiting.front();
    const int reserveBlocks = running.empty() ? 0 : watermark;
    const int64_t fits = static_cast<int64_t>(bm->numFree() - reserveBlocks) * opt.blockSize;
    int count = std::min(static_cast<int>(s->tokens.size()), budget);
    // A whole chunk must fit above the watermark; only an otherwise idle engine takes a partial one.
    if (count > fits) {
      if (!running.empty() || fits <= 0) break;
      count = static_cast<int>(fits);
    }
    waiting.pop_front();
    s->state = SeqState::Running;
    s->order = ++stamp;
    running.push_back(s);
    reserve(s, count, false);
    work.push_back({s, 0, count});
    budget -= count;
  }
  if (work.empty()) return;
  const size_t before = events.size();
  const int64_t prefillRows = forwardAndSample(work, adapter, events);
  const double dt = engineSeconds() - t0;
  stats.steps++;
  if (prefillRows > 0) {
    stats.prefillSeconds += dt;
  } else {
    stats.decodeSeconds += dt;
    stats.decodeOnlyTokens += static_cast<int64_t>(events.size() - before);
  }
}


#define RREC_ENGINE_SCHEDULER(T)                                          \
  template void EngineImpl<T>::removeRunning(Seq*);                        \
  template void EngineImpl<T>::freeBlocks(Seq*);                           \
  template void EngineImpl<T>::preempt(Seq*);                              \
  template bool EngineImpl<T>::reserve(Seq*, int, bool);                   \
  template void EngineImpl<T>::step(Adapter<T>*, std::vector<StepEvent>&);
RREC_ENGINE_SCHEDULER(float)
RREC_ENGINE_SCHEDULER(double)
#undef RREC_ENGINE_SCHEDULER

}  // namespace rrec
