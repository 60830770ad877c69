/**
 * grpo.step: one GRPO optimizer step through the library's own grpoStep (src/train/grpo-step.ts),
 * configured as GrpoTrainer.fit() configures it from the trainer's defaults (resolveTrainConfig({}):
 * train_batch_size 4 prompts x group_size 4 completions, LoRA r8 / alpha 16 / dropout 0.05 on all
 * seven projections, beta 0.04 so a reference forward runs, one iteration, AdamW, micro-batches of
 * 4096 tokens, the correctness + format rewards on the decoded text), on real prompts (the bundled
 * ED sample's train texts, rendered by the Prompter with the real Qwen2.5 tokenizer) and a
 * Qwen2.5-0.5B-shaped random bf16 model. A full-size step (24 layers, max_new_tokens 300) takes
 * minutes on 2 cores, so the budget is cut: 4 of the 24 layers (full vocabulary, so the LM head
 * keeps its real cost) and max_new_tokens 64; --quick: 1 layer, 8 tokens (the notes say exactly
 * what). Random weights practically never write "</answer>" or an end token, so every completion
 * runs to max_new_tokens: the work per step is fixed.
 *
 * Figures: the step's wall time; its parts (generate, score, reference, train forward/backward,
 * optimizer: grpoStep's time/* metrics); peak resident memory during the steps; generated and
 * trained tokens/s; and scaling: the same step at 2x and 4x train_batch_size and 2x max_new_tokens.
 *
 * Peer of the training half (grpo.step.reference, .train, .optimizer): PyTorch
 * (bench/peers/torch_grpo.py, Debian's python3-torch; TRL/transformers are not installed) replays
 * each of our base steps' rollouts right after it (rounds interleaved ours / torch, the same
 * thread count, GLIBC_TUNABLES as run-all sets it): the same tokens and micro-batches, the same
 * model weights (bf16, read from the same model.safetensors), LoRA r8 on the same projections with
 * the same alpha and dropout, the same loss (src/grpo, num_iterations 1) and AdamW with clipping.
 * Generation has no peer (torch has no sampler here). The loss check (bench/lib/grpo-replay.ts):
 * both sides compute the loss and the adapter's gradient norm of the last base step's rollouts in
 * f32 with a seeded adapter; the values are in grpo.step.train's note (test/bench/torch-grpo.test.ts
 * asserts the same agreement on a tiny model).
 *
 * recpo.step: one RecPO optimizer step (src/recpo/step.ts) on the same model, prompts and adapter,
 * configured as RecpoTrainer configures it from its defaults (the RecPO preset: 4 prompts x 4
 * completions, temperature 0.3, top-k 100, top-p 0.9, 64 new tokens, no KL so no reference
 * forward; the embedding forward of every completion, token + decision losses), with grpo.step of
 * this run as its peer (ratio > 1: RecPO's step is faster).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { CausalLM, Engine, Prompter, answerTagIds, datasetSpec, embedLabels, grpoStep, grpoStepConfigFrom, kvMemoryBudgetBytes, labelChatIds, labelDescriptions, loadTokenizer, nativeFeatures, recpoStep, resolveTrainConfig, rewardFromConfig, splitRecpoConfig, type GrpoStepConfig, type RecpoStepConfig } from '../../src/index.js';
import { makeFigure, median } from '../lib/figures.js';
import { runGroup } from '../lib/group.js';
import { oursOnCheck, perturbAdapter, replayOfStep, replayTokens, writeAdapter, writeReplay, type Replay } from '../lib/grpo-replay.js';
import { ensureQwenModel } from '../lib/qwen-model.js';
import { MALLOC_KEEP_ENV, TORCH_INSTALL_HINT, TorchLayerPeer, torchVersion } from '../lib/torch-peer.js';

const NO_PEER = 'no peer: TRL (transformers GRPOTrainer) is not installed here';
/** Relative tolerance of the loss check (f32 on both sides). */
const CHECK_RTOL = 1e-3;

/** Peak resident set since the last reset, in MiB (VmHWM); resettable through /proc/self/clear_refs. */
function peakRss(): { mib: number; source: string } {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m) return { mib: Number(m[1]) / 1024, source: 'VmHWM' };
  return { mib: process.resourceUsage().maxRSS / 1024, source: 'maxRSS (process lifetime)' };
}
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

const PARTS = ['generate', 'score', 'reference', 'train', 'optimizer'] as const;

/** One part of a step's time from grpoStep's metrics, s; train excludes its reference and optimizer parts. */
function partOf(r: { metrics: Record<string, number> }, k: (typeof PARTS)[number]): number {
  const m = r.metrics;
  if (k === 'train') return m['time/train']! - m['time/reference']! - m['time/optimizer']!;
  return m[`time/${k}`]!;
}

runGroup('grpo', async (ctx) => {
  const q = ctx.quick;
  const cfg = resolveTrainConfig({});
  const layers = q ? 1 : 4;
  const maxNewTokens = q ? 8 : 64;
  const baseSteps = q ? 1 : 3;
  const scaledSteps = 1;
  const model = ensureQwenModel(layers, { gguf: false }, ctx.log);
  const tokenizer = await loadTokenizer(model.dir);
  const labels = [...datasetSpec(cfg.dataset_name).labels];
  const prompter = new Prompter(tokenizer, { labels });
  const rows = parse(readFileSync(join(ctx.root, 'data', 'sample', 'ED_sample_4', 'train.csv')), { columns: true }) as { text: string; label: string }[];
  // --quick: the first 48 tokens of each prompt (the structure check does not need real lengths)
  const promptCap = q ? 48 : Infinity;
  const examples = rows.map((r) => {
    const ids = prompter.render({ text: r.text }).ids;
    return { promptIds: ids.length > promptCap ? ids.slice(0, promptCap) : ids, label: Number(r.label) };
  });
  const lm = await CausalLM.load(model.dir, { matmulPrecision: cfg.matmul_precision }); // as the trainer loads it
  const adapter = lm.createLora({ rank: cfg.lora_r, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout, targets: cfg.lora_target_modules, seed: cfg.seed });
  const optimizer = lm.createOptimizer(adapter);
  const adapterShape = adapter.params().map((p) => p.shape);
  const engine = new Engine(lm, { tokenizer, kvBudgetBytes: Math.min(kvMemoryBudgetBytes(cfg.kv_memory_budget, freemem()), 4 * 2 ** 30) });
  const combined = rewardFromConfig(cfg);
  const reward = (ex: { label: number }, s: { text?: string }) => {
    const r = combined({ label: ex.label, labels }, s.text ?? '');
    return { total: r.total, parts: r.parts };
  };
  // as GrpoTrainer.fit() builds it (src/train/trainer.ts), with this budget's max_new_tokens
  const stepCfg: GrpoStepConfig = { ...grpoStepConfigFrom(cfg), maxNewTokens, lr: cfg.learning_rate };
  let step = 0;
  let next = 0;
  const batch = (n: number) => Array.from({ length: n }, () => examples[next++ % examples.length]!);
  interface Run {
    seconds: number;
    metrics: Record<string, number>;
    /** The rollouts it trained on, for the peer (GRPO steps). */
    replay?: Replay;
  }
  const runStep = async (prompts: number, maxNew: number): Promise<Run> => {
    const exs = batch(prompts);
    const t0 = performance.now();
    const r = await grpoStep({ lm, engine, adapter, optimizer, reward }, exs, { ...stepCfg, maxNewTokens: maxNew }, step++);
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, metrics: r.metrics, replay: replayOfStep(exs, r.completions, r.advantages, stepCfg.maxTokensPerMicroBatch) };
  };
  // ---- the PyTorch peer of the training half, fed each base step's rollouts right after it
  const threads = nativeFeatures().threads;
  const tmp = mkdtempSync(join(tmpdir(), 'rrec-bench-grpo-peer-'));
  const unsupported = stepCfg.numIterations !== 1 ? `num_iterations ${stepCfg.numIterations} (the peer replays 1)` : cfg.lora_target_modules.length !== 7 ? 'LoRA on fewer than the seven projections' : null;
  const peerArgs = [
    '--model', model.dir, `--threads=${threads}`, `--rank=${cfg.lora_r}`, `--alpha=${cfg.lora_alpha}`, `--dropout=${cfg.lora_dropout}`, `--seed=${cfg.seed}`,
    `--beta=${stepCfg.beta}`, `--eps_low=${stepCfg.epsilonLow}`, `--eps_high=${stepCfg.epsilonHigh}`, `--loss_type=${stepCfg.lossType}`, `--max_completion_length=${maxNewTokens}`,
    `--mask_truncated=${stepCfg.maskTruncated ? 1 : 0}`, `--lr=${stepCfg.lr}`, `--weight_decay=${stepCfg.weightDecay}`, `--max_grad_norm=${stepCfg.maxGradNorm}`,
  ];
  const peer = torchVersion() !== null && unsupported === null ? await TorchLayerPeer.start(join(ctx.root, 'bench', 'peers', 'torch_grpo.py'), peerArgs) : null;
  interface PeerRun {
    reference: number;
    train: number;
    optimizer: number;
    loss: number;
  }
  const peerRuns: PeerRun[] = [];
  const peerStep = async (r: Run): Promise<PeerRun | null> => {
    if (!peer || !r.replay) return null;
    const file = join(tmp, 'replay.json');
    writeReplay(file, r.replay);
    const t = await peer.request({ cmd: 'step', replay: file });
    return { reference: (t.reference_ms as number) / 1000, train: (t.train_ms as number) / 1000, optimizer: (t.optimizer_ms as number) / 1000, loss: t.loss as number };
  };
  // In increasing size, so that each shape's peak RSS (VmHWM, reset before it) is its own and not
  // that of pools a larger shape grew. A scaled shape's first step pays the first touch of its
  // larger buffers (fresh pages are slow here); the full run times a second step, --quick the first.
  const variants = [
    { name: 'grpo.step', prompts: cfg.train_batch_size, maxNew: maxNewTokens, steps: baseSteps, what: 'base' },
    { name: 'grpo.step.tokens2x', prompts: cfg.train_batch_size, maxNew: 2 * maxNewTokens, steps: scaledSteps, what: '2x max_new_tokens' },
    { name: 'grpo.step.batch2x', prompts: 2 * cfg.train_batch_size, maxNew: maxNewTokens, steps: scaledSteps, what: '2x train_batch_size' },
    { name: 'grpo.step.batch4x', prompts: 4 * cfg.train_batch_size, maxNew: maxNewTokens, steps: scaledSteps, what: '4x train_batch_size' },
  ];
  // The loss check on a base step's rollouts: f32 on both sides, seeded adapter / advantages / old
  // log-probs (bench/lib/grpo-replay.ts says why), no dropout; ours on a second, f32 CausalLM.
  let check: string | null = null;
  const lossCheck = async (replay: Replay): Promise<string> => {
    const r: Replay = structuredClone(replay);
    const lm32 = await CausalLM.load(model.dir, { matmulPrecision: 'fp32' });
    try {
      const a32 = lm32.createLora({ rank: cfg.lora_r, alpha: cfg.lora_alpha, targets: cfg.lora_target_modules, seed: cfg.seed });
      perturbAdapter(a32, 11);
      const ours = await oursOnCheck(lm32, a32, r, stepCfg, 7);
      writeReplay(join(tmp, 'check.json'), r);
      await writeAdapter(join(tmp, 'adapter.safetensors'), a32);
      const t = await peer!.request({ cmd: 'check', replay: join(tmp, 'check.json'), adapter: join(tmp, 'adapter.safetensors') });
      const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(1e-300, Math.abs(y));
      const lossRel = rel(t.loss as number, ours.loss);
      const gradRel = rel(t.grad_norm as number, ours.gradNorm);
      const ok = lossRel <= CHECK_RTOL && gradRel <= CHECK_RTOL;
      const text = `loss check (f32 both sides, ${replayTokens(r)} completion tokens of the last step, seeded adapter, advantages and old log-probs, no dropout): loss ours ${ours.loss.toPrecision(7)} torch ${(t.loss as number).toPrecision(7)} (rel ${lossRel.toExponential(1)}), adapter grad norm ours ${ours.gradNorm.toPrecision(6)} torch ${(t.grad_norm as number).toPrecision(6)} (rel ${gradRel.toExponential(1)}), log-probs within ${(t.policy_logp_max_abs_diff as number).toExponential(1)} (policy) / ${(t.ref_logp_max_abs_diff as number).toExponential(1)} (reference), torch's loss on our log-probs rel ${rel(t.loss_from_ours_logp as number, ours.loss).toExponential(1)}: ${ok ? `agree within ${CHECK_RTOL}` : `MISMATCH (over ${CHECK_RTOL})`}`;
      ctx.log(text);
      return text;
    } finally {
      lm32.free();
    }
  };
  const canReset = resetPeakRss();
  const results = new Map<string, { runs: Run[]; peakMiB: number }>();
  for (const v of variants) {
    resetPeakRss();
    const warm = v.name === 'grpo.step' || !q;
    const withPeer = v.name === 'grpo.step';
    if (warm) {
      ctx.log(`${v.name}: warm-up step${withPeer && peer ? ' (and the peer\'s, on its rollouts)' : ''}`);
      const w = await runStep(v.prompts, v.maxNew);
      if (withPeer) await peerStep(w);
    }
    const runs: Run[] = [];
    for (let s = 0; s < v.steps; s++) {
      runs.push(await runStep(v.prompts, v.maxNew));
      const p = withPeer ? await peerStep(runs[s]!) : null;
      if (p) peerRuns.push(p);
      const m = runs[s]!.metrics;
      ctx.log(`${v.name} step ${s + 1}/${v.steps}: ${runs[s]!.seconds.toFixed(1)} s (generate ${m['time/generate']!.toFixed(1)} s, reference ${m['time/reference']!.toFixed(2)} s, train ${(m['time/train']! - m['time/reference']! - m['time/optimizer']!).toFixed(2)} s)${p ? `; torch reference ${p.reference.toFixed(2)} s, train ${p.train.toFixed(2)} s, optimizer ${p.optimizer.toFixed(3)} s` : ''}`);
    }
    results.set(v.name, { runs, peakMiB: peakRss().mib });
    if (withPeer && peer) {
      check = await lossCheck(runs[runs.length - 1]!.replay!);
      await peer.close(); // its memory is not the scaled shapes' business
    }
  }
  // ---- recpo.step: the RecPO trainer's defaults on the same model and prompts
  const split = splitRecpoConfig({});
  const rcfg = resolveTrainConfig(split.train);
  const ro = split.recpo;
  const labelChats = (await labelDescriptions(labels, null)).map((d, i) => labelChatIds(tokenizer, labels[i]!, d));
  const labelEmbeddings = await embedLabels(lm, adapter, labelChats);
  const recpoCfg: RecpoStepConfig = {
    ...grpoStepConfigFrom(rcfg), maxNewTokens: q ? maxNewTokens : rcfg.max_new_tokens, lr: rcfg.learning_rate, advantageType: ro.advantage_type, tau: ro.similarity_temperature,
    rewardSoftmaxWeight: ro.reward_softmax_weight, rewardFormatWeight: ro.reward_format_weight, rewardRankWeight: ro.reward_rank_weight, labelEmbeddingGrad: ro.label_embedding_grad, labels,
  };
  const recpoRuns: Run[] = [];
  const rctx = { lm, engine, tokenizer, adapter, optimizer, labelEmbeddings, labelChats, tagIds: answerTagIds(tokenizer) };
  ctx.log('recpo.step: warm-up step');
  await recpoStep(rctx, batch(rcfg.train_batch_size), recpoCfg, step++);
  for (let s = 0; s < baseSteps; s++) {
    const t0 = performance.now();
    const r = await recpoStep(rctx, batch(rcfg.train_batch_size), recpoCfg, step++);
    recpoRuns.push({ seconds: (performance.now() - t0) / 1000, metrics: r.metrics });
    ctx.log(`recpo.step step ${s + 1}/${baseSteps}: ${recpoRuns[s]!.seconds.toFixed(1)} s (generate ${r.metrics['time/generate']!.toFixed(1)} s)`);
  }
  engine.free();
  lm.free();
  rmSync(tmp, { recursive: true, force: true });

  const meanPrompt = examples.slice(0, 16).reduce((a, e) => a + e.promptIds.length, 0) / 16;
  const budget = `Qwen2.5-0.5B shape with ${layers} of its 24 layers (full vocabulary 151936, tied embeddings), random bf16 weights; trainer defaults (train_batch_size ${cfg.train_batch_size} x group_size ${cfg.group_size}, LoRA r${cfg.lora_r}, beta ${cfg.beta}) except max_new_tokens ${maxNewTokens} (default ${cfg.max_new_tokens}); prompts ~${meanPrompt.toFixed(0)} tokens${q ? ' (cut to 48, --quick)' : ''}; ${nativeFeatures().threads} threads`;
  const base = results.get('grpo.step')!;
  const part = (k: string) => base.runs.map((r) => r.metrics[k]!);
  const baseMedian = median(base.runs.map((r) => r.seconds));
  const adapterTensors = adapterShape.length;
  const adapterParams = adapterShape.reduce((n, shape) => n + shape.reduce((x, y) => x * y, 1), 0);
  const stepSplit = PARTS.map((k) => `${k} ${median(base.runs.map((r) => partOf(r, k))).toFixed(k === 'score' || k === 'optimizer' ? 4 : 2)}`).join(', ');
  // torch pads each micro-batch on the right to its longest sequence (as TRL pads); ours packs them
  const last = base.runs[base.runs.length - 1]!.replay!;
  const realTokens = last.seqs.reduce((a, x) => a + x.tokens.length, 0);
  const paddedTokens = last.micro_batches.reduce((a, idx) => a + idx.length * Math.max(...idx.map((k) => last.seqs[k]!.tokens.length)), 0);
  const peerName = peer ? `PyTorch ${peer.version} bf16 (replayed rollouts)` : null;
  const peerWhy = peer
    ? `peer: bench/peers/torch_grpo.py replaying each step's rollouts right after it (rounds interleaved ours / torch, ${threads} threads both${process.env.GLIBC_TUNABLES === MALLOC_KEEP_ENV.GLIBC_TUNABLES ? ', both with GLIBC_TUNABLES malloc settings' : ', torch with GLIBC_TUNABLES malloc settings, ours without'}; bf16 weights and activations, f32 LoRA as PEFT, same tokens, micro-batches, loss, AdamW; ${last.seqs.length} sequences, ${realTokens} tokens in ${last.micro_batches.length} micro-batch${last.micro_batches.length > 1 ? 'es' : ''}, padded to ${paddedTokens} on torch's side as TRL pads)`
    : unsupported !== null ? `no peer: ${unsupported}` : `no peer: ${TORCH_INSTALL_HINT}`;
  ctx.emit(makeFigure({ name: 'grpo.step', unit: 's', higherIsBetter: false, samples: base.runs.map((r) => r.seconds), peer: null, note: `one optimizer step: ${budget}; ${baseSteps} step${baseSteps > 1 ? 's' : ''} after a warm-up step; its split (medians, s; the grpo.step.* figures): ${stepSplit}; whole step: ${NO_PEER} (generation has no torch peer here), the training half (reference, train, optimizer) has PyTorch as peer in grpo.step.reference/.train/.optimizer` }));
  const parts: [(typeof PARTS)[number], string][] = [
    ['generate', 'rollouts: engine.generate of group_size completions per prompt'],
    ['score', 'rewards (decoded text) and group advantages'],
    ['reference', 'reference log-probs: forward without the adapter (beta > 0)'],
    ['train', 'policy forward + GRPO loss + backward over the micro-batches (and packing)'],
    ['optimizer', 'AdamW update with gradient clipping'],
  ];
  for (const [name, what] of parts) {
    const withPeer = name === 'reference' || name === 'train' || name === 'optimizer';
    const peerSamples = withPeer ? peerRuns.map((p) => p[name]) : [];
    const extra = name === 'train' && check !== null ? `; ${check}` : name === 'optimizer' ? `; ${adapterParams} adapter parameters in ${adapterTensors} tensors: a few ms of work on either side, so on a loaded machine this mostly measures thread wake-ups (torch's AdamW takes its per-tensor loop on the CPU, TRL's default, ~a dozen small parallel ops per tensor)` : '';
    ctx.emit(
      makeFigure({
        name: `grpo.step.${name}`, unit: 's', higherIsBetter: false, samples: base.runs.map((r) => partOf(r, name)),
        peer: withPeer && peerName ? { name: peerName, samples: peerSamples } : null,
        note: `part of grpo.step: ${what}; ${withPeer ? peerWhy : 'no peer (the peer replays the training half)'}${extra}`,
      }),
    );
  }
  ctx.emit(makeFigure({ name: 'grpo.step.peak_rss', unit: 'MiB', higherIsBetter: false, samples: [base.peakMiB], peer: null, note: `peak resident memory during the warm-up and grpo.step steps (${peakRss().source}${canReset ? ', reset after loading' : ', not resettable here: the whole process'}); ${NO_PEER}` }));
  ctx.emit(makeFigure({ name: 'grpo.step.generate_tokens_per_s', unit: 'tok/s', higherIsBetter: true, samples: part('tokens_per_second/generate'), peer: null, note: `completion tokens generated per second of the rollout phase; ${NO_PEER}` }));
  ctx.emit(makeFigure({ name: 'grpo.step.train_tokens_per_s', unit: 'tok/s', higherIsBetter: true, samples: part('tokens_per_second/train'), peer: null, note: `prompt + completion tokens trained per second of time/train (reference, forward/backward, optimizer); ${NO_PEER}` }));
  const grpoSecs = base.runs.map((r) => r.seconds);
  ctx.emit(
    makeFigure({
      name: 'recpo.step', unit: 's', higherIsBetter: false, samples: recpoRuns.map((r) => r.seconds), peer: { name: 'grpo.step (this run)', samples: grpoSecs },
      note: `one RecPO optimizer step with RecpoTrainer's defaults (${rcfg.train_batch_size} prompts x ${rcfg.group_size}, temperature ${rcfg.temperature}, top-k ${rcfg.top_k}, top-p ${rcfg.top_p}, max_new_tokens ${recpoCfg.maxNewTokens}, beta ${rcfg.beta}: no reference forward) on grpo.step's model and prompts: rollouts, the embedding forward of every completion, token + decision losses; generate ${median(recpoRuns.map((r) => r.metrics['time/generate']!)).toFixed(2)} s, score (embedding forward) ${median(recpoRuns.map((r) => r.metrics['time/score']!)).toFixed(2)} s, train ${median(recpoRuns.map((r) => r.metrics['time/train']!)).toFixed(2)} s; peer: grpo.step of this run`,
    }),
  );
  for (const v of variants.slice(1)) {
    const r = results.get(v.name)!;
    const secs = r.runs.map((x) => x.seconds);
    ctx.emit(
      makeFigure({
        name: v.name,
        unit: 's',
        higherIsBetter: false,
        samples: secs,
        peer: null,
        note: `grpo.step with ${v.what} (${v.prompts} prompts x ${cfg.group_size}, max_new_tokens ${v.maxNew}): ${(median(secs) / baseMedian).toFixed(2)}x the base step's time (generate ${(median(r.runs.map((x) => x.metrics['time/generate']!)) / median(part('time/generate'))).toFixed(2)}x, train ${(median(r.runs.map((x) => x.metrics['time/train']!)) / median(part('time/train'))).toFixed(2)}x); peak RSS ${r.peakMiB.toFixed(0)} MiB; ${q ? 'one step, the first at this size (--quick)' : `${v.steps} step${v.steps > 1 ? 's' : ''} after a warm-up step at this size`}; ${NO_PEER}`,
      }),
    );
  }
});
