// The engine's forward step (see engine_impl.h): every scheduled row in one packed batch through
// the model's decoder layers (decoder_layer.h: one product per projection over all rows, LoRA on
// the fly from the live adapter, rotary at each row's position, K/V written into the rows' cache
// slots, paged attention), then the logits of the rows that end a sequence's known tokens and one
// draw per sequence (n for a group leader, which then forks into n sequences sharing its blocks;
// the partly filled last block is copied on the first write).
#include <algorithm>
#include <cstring>

#include "engine_impl.h"
#include "lm_head.h"
#include "sampler.h"

namespace rrec {

// Runs the scheduled rows and samples; returns how many rows were prefill (not decode) rows.
template <typename T>
int64_t EngineImpl<T>::forwardAndSample(std::vector<Work>& work, Adapter<T>* adapter, std::vector<StepEvent>& events) {
  const ModelConfig& c = cfg;
  const int C = c.hidden, V = c.vocab, bs = opt.blockSize;
  // ---- rows of the packed step batch
  int M = 0;
  for (const Work& w : work) M += w.count;
  rowTok.resize(M);
  rowPos.resize(M);
  rowTable.resize(M);
  rowBlock.resize(M);
  rowSlot.resize(M);
  tables.clear();
  std::vector<int> lastRow;  // per work item: its sampling row or -1
  int row = 0;
  int64_t prefillRows = 0;
  for (const Work& w : work) {
    const int ts = static_cast<int>(tables.size());
    tables.insert(tables.end(), w.s->blocks.begin(), w.s->blocks.end());
    for (int i = 0; i < w.count; i++, row++) {
      const int p = w.start + i;
      rowTok[row] = w.s->tokens[p];
      rowPos[row] = p;
      rowTable[row] = ts;
      rowBlock[row] = w.s->blocks[p / bs];
      rowSlot[row] = p % bs;
    }
    const bool ends = w.start + w.count == static_cast<int>(w.s->tokens.size());
    lastRow.push_back(ends ? row - 1 : -1);
    prefillRows += (w.count == 1 && ends && w.start >= w.s->promptLen) ? 0 : w.count;
  }
  stats.prefillTokens += prefillRows;
  const int64_t MC = static_cast<int64_t>(M) * C;
  auto toDevice = [&](DeviceArray& d, const std::vector<int32_t>& h) {
    d.resize(be, DType::I32, std::max<int64_t>(1, static_cast<int64_t>(h.size())));
    if (!h.empty()) be.upload(d.ref(), h.data(), DType::I32, h.size());
  };
  toDevice(dTok, rowTok);
  toDevice(dPos, rowPos);
  toDevice(dTable, rowTable);
  toDevice(dBlock, rowBlock);
  toDevice(dSlot, rowSlot);
  toDevice(dTables, tables);

  // ---- the layers: decoder_layer.cc's, over the paged cache
  x.resize(be, dtypeOf<T>(), MC);
  rrec_embedding_args e{};
  e.out = x.raw();
  e.tokens = dTok.raw();
  e.emb = model.embedding().raw();
  e.M = M;
  e.scale = static_cast<double>(model.embedScale());
  be.run(RREC_OP_EMBEDDING, e);
  LayerInputs<T> li;
  li.M = M;
  li.positions = dPos.ref();
  li.adapter = adapter;
  AttentionSource att;
  att.paged = true;
  att.tables = dTables.ref();
  att.tableStart = dTable.ref();
  att.rowBlock = dBlock.ref();
  att.rowSlot = dSlot.ref();
  att.blockSize = bs;
  for (int l = 0; l < c.layers; l++) {
    att.kCache = pool->k(l);
    att.vCache = pool->v(l);
    decoderLayerForward(model, l, x, acts, li, att);
  }
  for (Work& w : work) w.s->computed = w.start + w.count;

  // ---- logits of the sampling rows
  sampleRowIdx.clear();
  std::vector<Seq*> sampleSeqs;
  for (size_t i = 0; i < work.size(); i++)
    if (lastRow[i] >= 0) {
      sampleRowIdx.push_back(lastRow[i]);
      sampleSeqs.push_back(work[i].s);
    }
  const int R = static_cast<int>(sampleRowIdx.size());
  if (R == 0) return prefillRows;
  toDevice(dSampleRows, sampleRowIdx);
  finalNormRows(model, x, dSampleRows.ref(), R, xf, nf, rf);
  lmHeadLogits(model, nf, R, logits, lse);

  // ---- draws: one per sequence, n for a group leader
  std::vector<Draw> draws;
  for (int i = 0; i < R; i++) {
    Seq* s = sampleSeqs[i];
    if (s->sample < 0)
      for (int j = 0; j < reqs[s->request].params.n; j++) draws.push_back({i, s, j});
    else
      draws.push_back({i, s, s->sample});
  }
  const int nd = static_cast<int>(draws.size());
  if (allowedScratch.size() < draws.size()) allowedScratch.resize(draws.size());
  std::vector<rrec_sample_draw> sd(draws.size());
  for (int d = 0; d < nd; d++) {
    const Draw& dr = draws[d];
    const Seq* s = dr.s;
    const SamplingParams& p = reqs[s->request].params;
    rrec_sample_draw& q = sd[d];
    q.temperature = p.temperature;
    q.top_p = p.topP;
    q.min_p = p.minP;
    q.repetition_penalty = p.repetitionPenalty;
    q.presence_penalty = p.presencePenalty;
    q.top_k = p.topK;
    q.u = samplingUniform(p.seed, dr.sample, s->generated());
    q.history = s->tokens.data();
    q.history_len = static_cast<int32_t>(s->tokens.size());
    q.prompt_len = s->promptLen;
    q.row = dr.row;
    q.allowed = nullptr;
    std::vector<uint8_t>& allowed = allowedScratch[static_cast<size_t>(d)];
    if (s->answer == 1 && constrainedMask(tb, V, answerTargets[s->request], s->answerSoFar, allowed) > 0) q.allowed = allowed.data();
  }
  std::vector<int32_t> tokens(draws.size());
  std::vector<float> logprobs(draws.size());
  const rrec_sample_args sa{logits.raw(), lse.raw(), V, nd, sd.data(), tokens.data(), logprobs.data()};
  be.run(RREC_OP_SAMPLE, sa);
  for (int d = 0; d < nd; d++) {
    draws[d].token = tokens[d];
    draws[d].logprob = logprobs[d];
  }

  // ---- apply: fork leaders, append tokens, finish
  for (const Draw& dr : draws) {
    Seq* s = dr.s;
    if (s->sample < 0 && dr.sample > 0) {  // a new sibling sharing the leader's blocks
      auto child = std::make_unique<Seq>(*s);
      for (int32_t b : child->blocks) bm->incref(b);
      child->sample = dr.sample;
      child->order = ++stamp;
      running.push_back(child.get());
      s = child.get();
      all.push_back(std::move(child));
    } else if (s->sample < 0) {
      continue;  // sample 0 of a leader: applied last, once its siblings copied the prompt state
    }
    appendToken(s, dr, events);
  }
  for (const Draw& dr : draws)
    if (dr.s->sample < 0 && dr.sample == 0) {
      dr.s->sample = 0;
      appendToken(dr.s, dr, events);
    }
  stats.decodeTokens += nd;
  running.erase(std::remove_if(running.begin(), running.end(), [](Seq* s) { return s->state == SeqState::Finished; }),
                running.end());
  return prefillRows;
}


template int64_t EngineImpl<float>::forwardAndSample(std::vector<Work>&, Adapter<float>*, std::vector<StepEvent>&);
template int64_t EngineImpl<double>::forwardAndSample(std::vector<Work>&, Adapter<double>*, std::vector<StepEvent>&);

}  // namespace rrec
