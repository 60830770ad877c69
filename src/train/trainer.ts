/**
 * GrpoTrainer: GRPO fine-tuning of a causal LM to reason, then answer `<answer>emotion</answer>`.
 *
 *   new GrpoTrainer({ model: 'tiny', num_train_epochs: 1 }).fit()
 *
 * fit() resolves the model (the built-in tiny model, a paths-registry name or a folder), the
 * dataset (a preprocessed Arrow folder, or CSV splits preprocessed into the run folder), renders the
 * prompts, optionally warm-starts with SFT, evaluates on valid (eval_on_start), then repeats
 * grpoStep (grpo-step.ts) over a seeded, resumable data order with the LR schedule, logging
 * metrics to <run>/metrics.jsonl, checkpointing every save_steps (checkpoint.ts) and evaluating
 * every eval_steps; it ends with a checkpoint and a final evaluation. An AbortSignal stops it
 * after the current step, with a checkpoint.
 *
 * Every valid evaluation (eval_on_start, every eval_steps, the final one) is appended to
 * <run>/eval.jsonl and shown to the early-stopping tracker (early-stopping.ts): an improvement
 * saves the model to <run>/best/ (best-model.ts), and early_stopping_patience evaluations in a row
 * without one end the run. With eval_on_test the best model is evaluated on the test split at the
 * end. <run>/run.json (run-info.ts) records the configuration, model and data folders, so that
 * `rrec-emotion eval` / `infer` can use a checkpoint without the training flags.
 */
import { mkdir } from 'node:fs/promises';
import { freemem } from 'node:os';
import { join, resolve } from 'node:path';
import type { LoadedSplit } from '../data/index.js';
import { Engine } from '../engine/index.js';
import { evaluate, limitPrompts, type EvalExample, type EvaluateResult } from '../eval/run.js';
import { boundTextForPrompt, checkGenerationLengths, checkTextBeforeTokenizing } from '../eval/lengths.js';
import type { EvalMetrics } from '../eval/metrics.js';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { reportUpdater } from '../report/index.js';
import type { EvalLogRecord, SampleCompletion } from '../report/run-data.js';
import { CausalLM, type AdamW, type LoraAdapter } from '../model/index.js';
import { Prompter } from '../prompt/index.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { bestDir as bestDirOf, readBestModelInfo, removeBestModel, saveBestModel } from './best-model.js';
import { ensureBuiltinModel } from './builtin-model.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { cleanStaleTemps, latestCheckpoint, rotateCheckpoints } from './checkpoint-dir.js';
import { acquireRunLock } from './run-lock.js';
import { ensureWritableDir } from './writable-dir.js';
import { BUILTIN_MODEL, kvMemoryBudgetBytes, resolveTrainConfig, runDir as runDirOf, type TrainConfig, type TrainConfigInput } from './config.js';
import { DataOrder, totalTrainingSteps } from './data-order.js';
import { defaultDataDir, openDataset, packageRoot } from './dataset-source.js';
import { runBanner } from './run-banner.js';
import { loadNative } from '../native.js';
import { EarlyStopping, type Observation } from './early-stopping.js';
import { grpoStep, type GrpoStepResult } from './grpo-step.js';
import { MetricsLog, ProgressReporter, formatMetricValue, type StepRecord } from './metrics-log.js';
import { loadModelPaths, resolveModelPath } from './paths.js';
import { rewardFromConfig } from './reward-registry.js';
import { grpoStepConfigFrom } from './step-config.js';
import { writeRunInfo } from './run-info.js';
import { createLrSchedule } from './schedule.js';
import { sftCompletionText, sftStep } from './sft.js';
import { applyWeights, locateWeights } from './trained-weights.js';

export interface FitOptions {
  /** Stops after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Called with every step's record (as written to metrics.jsonl). */
  onStep?: (record: StepRecord) => void;
  /** Where progress goes (default process.stdout; a bar on a TTY, lines otherwise). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** Why fit() ended. */
export type StopReason = 'completed' | 'early_stopping' | 'aborted';

export interface FitResult {
  runDir: string;
  modelDir: string;
  /** Optimizer steps done (including resumed ones). */
  steps: number;
  /** Valid metrics before GRPO (after SFT) when eval_on_start, and at the end. */
  evalBefore: EvalMetrics | null;
  evalAfter: EvalMetrics | null;
  lastCheckpoint: string | null;
  /** stopReason !== 'completed'. */
  stoppedEarly: boolean;
  /** 'completed' (all steps), 'early_stopping' (patience used up) or 'aborted' (the signal). */
  stopReason: StopReason;
  /** Step of the best valid evaluation (0: eval_on_start); null when nothing was evaluated. */
  bestStep: number | null;
  /** Its valid accuracy. */
  bestValidAccuracy: number | null;
  /** <run>/best, holding the model of bestStep; null when there is none. */
  bestDir: string | null;
  /** Test-split metrics (eval_on_test) of the model of testStep; null otherwise. */
  testMetrics: EvalMetrics | null;
  /** The step of the model evaluated on test: bestStep, or the final step when no best was kept. */
  testStep: number | null;
  /** With max_prompt_length: the training prompts cut and skipped (row indices); null otherwise. */
  trainPrompts: { truncated: number; skipped: number[] } | null;
}

/** A rendered example: its text, chat-templated prompt ids and gold label index. */
export interface TrainExample extends EvalExample {
  text: string;
  promptIds: Int32Array;
  label: number;
}
type Example = TrainExample;

/** What a trainer other than GRPO (src/recpo) is given to build its step from. */
export interface AlgorithmContext {
  cfg: TrainConfig;
  lm: CausalLM;
  engine: Engine;
  tokenizer: Tokenizer;
  labels: readonly string[];
  runDir: string;
  /** The checkpoint this run resumed from, or null for a fresh run. */
  resumedFrom: string | null;
  /** The live adapter (null for a full fine-tune) and optimizer. */
  adapter: LoraAdapter | null;
  optimizer: AdamW;
  say: (line: string) => void;
}

/**
 * The parts of fit() a trainer may replace; absent ones are GRPO's. fit() calls start() after
 * the warm start, step() for every optimizer step, evalMetrics() after each evaluation's greedy
 * completions (its accuracy is what best-model tracking and early stopping compare), and
 * saveExtras() inside every checkpoint's temporary folder before it is committed.
 */
export interface TrainingAlgorithm {
  start?(step: number): Promise<void>;
  step?(examples: readonly TrainExample[], lr: number, step: number): Promise<{ metrics: Record<string, number> }>;
  evalMetrics?(examples: readonly TrainExample[], result: EvaluateResult, adapter: LoraAdapter | null, split: string): Promise<EvalMetrics>;
  saveExtras?(tmpDir: string): Promise<void>;
}

/** Completions of the first examples of every valid evaluation logged to eval.jsonl (for report.html). */
const LOGGED_SAMPLES = 8;

export class GrpoTrainer {
  readonly config: TrainConfig;

  /** `config`: any subset of the fields (see TrainConfigInput); a misspelt field name fails tsc, a bad value throws a TrainConfigError. */
  constructor(config: TrainConfigInput = {}, opts: { now?: Date } = {}) {
    this.config = resolveTrainConfig(config, opts.now ? { now: opts.now } : {});
  }

  /** GRPO's parts are fit()'s own; RecpoTrainer (src/recpo) returns its own. */
  protected async createAlgorithm(_ctx: AlgorithmContext): Promise<TrainingAlgorithm> {
    return {};
  }

  async fit(opts: FitOptions = {}): Promise<FitResult> {
    const cfg = this.config;
    const runDir = resolve(runDirOf(cfg));
    const out = opts.stream ?? process.stdout;
    const say = (s: string) => void out.write(s + '\n');
    // A read-only or foreign output folder is named now, not after minutes of loading.
    await ensureWritableDir(cfg.output_dir, '--output_dir');
    await mkdir(runDir, { recursive: true });
    // One trainer per run folder; then tidy what a killed one left (a half-written checkpoint's temp folder).
    const lock = await acquireRunLock(runDir);
    try {
      const tidied = await cleanStaleTemps(runDir);
      if (tidied.removed.length > 0) say(`removed ${tidied.removed.length} temporary folder(s) left by an interrupted write: ${tidied.removed.join(', ')}`);
      if (tidied.restored.length > 0) say(`restored ${tidied.restored.join(', ')} (a replacement was interrupted between its two renames)`);
      return await this.fitLocked(runDir, out, opts);
    } finally {
      await lock.release();
    }
  }

  /** fit() once the run folder is locked and tidied; whatever ends it, open logs are closed and the model freed. */
  private async fitLocked(runDir: string, out: NodeJS.WritableStream & { isTTY?: boolean }, opts: FitOptions): Promise<FitResult> {
    const closers: (() => unknown)[] = [];
    try {
      return await this.fitRun(runDir, out, opts, (f) => closers.push(f));
    } finally {
      for (const c of closers.reverse()) await Promise.resolve().then(c).catch(() => undefined);
    }
  }

  private async fitRun(runDir: string, out: NodeJS.WritableStream & { isTTY?: boolean }, opts: FitOptions, onExit: (f: () => unknown) => void): Promise<FitResult> {
    const cfg = this.config;
    let progress: ProgressReporter | null = null;
    const say = (s: string) => (progress ? progress.message(s) : out.write(s + '\n'));

    // ---- model and tokenizer
    const modelDir =
      cfg.model === BUILTIN_MODEL
        ? await ensureBuiltinModel(join(resolve(cfg.output_dir), 'builtin-tiny-qwen2'), cfg.seed)
        : await resolveModelPath(cfg.model, (await loadModelPaths(cfg.paths_file ? { pathsFile: cfg.paths_file } : {})).paths);
    const tokenizer = await loadTokenizer(modelDir);

    // ---- data: an Arrow folder, or CSV splits preprocessed into the run folder
    const dataDir = cfg.data_dir ?? defaultDataDir();
    const { dataset, arrowDir } = await openDataset(dataDir, { datasetName: cfg.dataset_name, labels: cfg.labels, preprocessInto: join(runDir, 'data') });
    if (cfg.eval_on_test && !dataset.splitNames.includes('test'))
      throw new Error(`eval_on_test: the dataset at ${dataset.dir} has no test split (splits: ${dataset.splitNames.join(', ')})`);
    const labels = cfg.labels ?? [...dataset.labelNames];
    await writeRunInfo(runDir, { config: cfg, model_dir: resolve(modelDir), data_dir: arrowDir ?? dataset.dir, labels });
    const prompter = new Prompter(tokenizer, { labels, ...(cfg.system_prompt ? { systemPrompt: cfg.system_prompt } : {}) });
    // ---- model (its context bounds the prompts), adapter, optimizer (or their checkpointed state), engine
    const lm = await CausalLM.load(modelDir, { fullFinetune: cfg.full_finetune, matmulPrecision: cfg.matmul_precision, device: cfg.device });
    let lmFreed = false;
    const freeLm = () => {
      if (!lmFreed) lm.free();
      lmFreed = true;
    };
    onExit(freeLm);
    const ctx = lm.config.maxPositions;
    const render = (split: LoadedSplit, name: string): Example[] =>
      Array.from({ length: split.numRows }, (_, i) => {
        const ex = split.get(i);
        checkTextBeforeTokenizing(ex.text, tokenizer, ctx, `${name} row ${i}`, cfg.max_prompt_length);
        const text = cfg.max_prompt_length === null ? ex.text : boundTextForPrompt(ex.text, tokenizer, cfg.max_prompt_length);
        return { text: ex.text, promptIds: prompter.render({ text }).ids, label: ex.label };
      });
    let train = render(dataset.split('train'), 'train');
    // max_prompt_length: training prompts cut or left out here (counted); valid / test ones in evaluate()
    let trainPrompts: { truncated: number; skipped: number[] } | null = null;
    if (cfg.max_prompt_length !== null) {
      const lim = limitPrompts(train, cfg.max_prompt_length, cfg.long_prompts);
      trainPrompts = { truncated: lim.truncated, skipped: lim.skipped };
      train = train.flatMap((ex, i) => (lim.prompts[i] === null ? [] : [{ ...ex, promptIds: Int32Array.from(lim.prompts[i]!) }]));
      if (train.length === 0) throw new Error(`max_prompt_length ${cfg.max_prompt_length} with long_prompts skip leaves no training prompt (all ${lim.skipped.length} are longer)`);
      if (lim.truncated + lim.skipped.length > 0)
        say(`max_prompt_length ${cfg.max_prompt_length}: ${lim.truncated} training prompt(s) cut to their last ${cfg.max_prompt_length} tokens, ${lim.skipped.length} skipped`);
    }
    const valid = dataset.splitNames.includes('valid') ? render(dataset.split('valid'), 'valid') : [];
    const test = cfg.eval_on_test ? render(dataset.split('test'), 'test') : [];

    const device = await loadNative().describeDevice(cfg.device);
    for (const line of runBanner({
      model: cfg.model, modelDir: resolve(modelDir), builtin: cfg.model === BUILTIN_MODEL,
      tokenizer: { vocabSize: tokenizer.vocabSize, eos: tokenizer.idToToken(tokenizer.eosTokenId), chatTemplate: tokenizer.chatTemplate !== null },
      dataDir: resolve(dataDir), configuredDataDir: cfg.data_dir, sampleDir: join(packageRoot(), 'data', 'sample'),
      splits: Object.fromEntries(dataset.splitNames.map((n) => [n, dataset.split(n).numRows])), device, runDir,
    })) say(line);

    let adapter: LoraAdapter | null = cfg.use_lora
      ? lm.createLora({ rank: cfg.lora_r, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout, targets: cfg.lora_target_modules, seed: cfg.seed })
      : null;
    let optimizer: AdamW = lm.createOptimizer(adapter ?? undefined);
    const order0 = { numExamples: train.length, batchSize: cfg.train_batch_size, seed: cfg.seed };
    let order = new DataOrder(order0);
    let step = 0;
    let lastCheckpoint: string | null = null;
    const stopper = new EarlyStopping(cfg.early_stopping_patience);
    const bestMetric = cfg.metric_for_best_model;
    const bestMetricName = bestMetric === 'macro_f1' ? 'macro-F1' : 'accuracy';
    if (cfg.resume_from_checkpoint !== false) {
      const ckpt = cfg.resume_from_checkpoint === true ? (await latestCheckpoint(runDir))?.dir : resolve(cfg.resume_from_checkpoint);
      if (!ckpt) throw new Error(`resume_from_checkpoint: ${runDir} has no checkpoint-<step> folder to resume from`);
      const restored = await loadCheckpoint(ckpt, lm);
      adapter = restored.adapter;
      optimizer = restored.optimizer;
      step = restored.state.step;
      order = DataOrder.restore(restored.state.dataOrder, order0);
      if (restored.state.early_stopping !== undefined) stopper.restore(restored.state.early_stopping, join(ckpt, 'trainer_state.json'));
      lastCheckpoint = ckpt;
      say(`resumed from ${ckpt} at step ${step}`);
    } else if (await removeBestModel(runDir)) {
      say(`removed ${bestDirOf(runDir)} of an earlier run with this run_name`);
    }
    const engine = new Engine(lm, { tokenizer, kvBudgetBytes: Math.min(kvMemoryBudgetBytes(cfg.kv_memory_budget, freemem()), 4 * 2 ** 30) });
    // Every prompt fits the context and the KV cache holds the longest sequence: found now, in flag terms, not at step N.
    checkGenerationLengths({
      engine,
      maxNewTokens: cfg.max_new_tokens,
      sets: [{ split: 'train', prompts: train.map((e) => e.promptIds) }, { split: 'valid', prompts: valid.map((e) => e.promptIds) }, { split: 'test', prompts: test.map((e) => e.promptIds) }],
      kvBudgetText: `--kv_memory_budget ${cfg.kv_memory_budget}`,
      maxPromptLength: cfg.max_prompt_length,
      warn: say,
    });
    const combined = rewardFromConfig(cfg);
    const algo = await this.createAlgorithm({ cfg, lm, engine, tokenizer, labels, runDir, resumedFrom: lastCheckpoint, adapter, optimizer, say });
    const updateReport = reportUpdater(runDir, say); // report.html: at every logging step, evaluation and the end
    let samples: SampleCompletion[] = [];
    const evalSplit = async (examples: Example[], label: string, withAdapter: LoraAdapter | null): Promise<EvalMetrics> => {
      const split = label === 'test' ? 'test' : 'valid';
      // progress over the prompts, a line about every quarter in plain mode
      const batches = Math.ceil(examples.length / cfg.eval_batch_size);
      const bar = new ProgressReporter({ totalSteps: examples.length, loggingSteps: cfg.eval_batch_size * Math.max(1, Math.ceil(batches / 4)), stream: out as never, label: `eval ${label}`, unit: 'prompt', keys: [] });
      bar.start(0);
      const r = await evaluate(engine, examples, {
        labels, adapter: withAdapter, maxNewTokens: cfg.max_new_tokens, batchSize: cfg.eval_batch_size, stop: ['</answer>'], describe: (i) => `${split} row ${i}`, onProgress: (done) => bar.update({ step: done }),
        ...(cfg.max_prompt_length !== null ? { maxPromptLength: cfg.max_prompt_length, longPrompts: cfg.long_prompts } : {}),
      });
      bar.finish();
      const m = algo.evalMetrics ? await algo.evalMetrics(examples, r, withAdapter, label) : r.metrics;
      const cut = cfg.max_prompt_length === null ? '' : `, prompts cut ${r.promptsTruncated}, skipped ${r.skipped.length}`;
      say(`eval (${label}): accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macro_f1.toFixed(4)}, invalid ${(m.invalid_rate * 100).toFixed(1)}%, mean length ${m.mean_output_length?.toFixed(1)}${cut}`);
      const counted = cfg.max_prompt_length === null ? m : { ...m, prompts_truncated: r.promptsTruncated, prompts_skipped: r.skipped.length, skipped_rows: r.skipped };
      await writeFileAtomic(join(runDir, `eval-${label}.json`), JSON.stringify(counted, null, 2) + '\n');
      samples = examples.slice(0, LOGGED_SAMPLES).map((ex, i) => {
        const p = r.predictions[i]!;
        return { text: ex.text, gold: labels[ex.label]!, pred: p < 0 ? null : labels[p]!, completion: r.completions[i]!.text ?? '' };
      });
      return m;
    };
    // Valid evaluations: logged to eval.jsonl, tracked for the best model and early stopping.
    // A fresh run drops every record of an earlier run of this name (-1); a resumed one keeps those up to its step.
    const evalLog = await MetricsLog.open(join(runDir, 'eval.jsonl'), { resumeAfterStep: lastCheckpoint === null ? -1 : step });
    onExit(() => evalLog.close());
    let lastEval: { step: number; metrics: EvalMetrics } | null = null;
    const evalValid = async (label: string, epoch: number): Promise<(Observation & { metrics: EvalMetrics }) | null> => {
      if (valid.length === 0) return null;
      const m = await evalSplit(valid, label, adapter);
      lastEval = { step, metrics: m };
      // an eval.jsonl line (report/run-data.ts EvalLogRecord) also carries the confusion matrix and sample completions
      const record: EvalLogRecord = { step, epoch, split: 'valid', accuracy: m.accuracy, macro_f1: m.macro_f1, invalid_rate: m.invalid_rate, mean_output_length: m.mean_output_length, per_class: m.per_class, confusion: m.confusion, samples };
      await evalLog.append(record as unknown as StepRecord);
      const o = stopper.observe(step, m[bestMetric]); // (the tracker calls its value "accuracy", whichever metric it is)
      if (o.improved) {
        const dir = await saveBestModel(runDir, { lm, adapter }, { step, metrics: m });
        say(`best valid ${bestMetricName} so far (${m[bestMetric].toFixed(4)} at step ${step}): saved to ${dir}`);
      } else if (cfg.early_stopping_patience > 0) {
        say(`no improvement on the best valid ${bestMetricName} (${stopper.best!.accuracy.toFixed(4)} at step ${stopper.best!.step}) for ${stopper.evalsWithoutImprovement} of ${cfg.early_stopping_patience} evaluation(s)`);
      }
      await updateReport({ force: true });
      return { ...o, metrics: m };
    };

    // ---- supervised warm start (fresh runs only)
    if (cfg.sft_epochs > 0 && step === 0) {
      const sftOpt = lm.createOptimizer(adapter ?? undefined);
      const eot = tokenizer.eosTokenId;
      const examples = train.map((ex) => {
        const ids = tokenizer.encode(sftCompletionText(labels[ex.label]!), { addSpecialTokens: false });
        const completionIds = new Int32Array(ids.length + 1);
        completionIds.set(ids);
        completionIds[ids.length] = eot;
        return { promptIds: ex.promptIds, completionIds };
      });
      const sftOrder = new DataOrder({ numExamples: examples.length, batchSize: cfg.sft_batch_size, seed: cfg.seed + 1 });
      const sftSteps = cfg.sft_epochs * sftOrder.batchesPerEpoch;
      progress = new ProgressReporter({ totalSteps: sftSteps, loggingSteps: cfg.logging_steps, stream: out as never, label: 'sft', keys: ['loss'] });
      progress.start(0);
      for (let s = 0; s < sftSteps; s++) {
        const b = sftOrder.next();
        const r = await sftStep(lm, Array.from(b.indices, (i) => examples[i]!), { adapter, optimizer: sftOpt, lr: cfg.sft_learning_rate, maxGradNorm: cfg.max_grad_norm, dropoutSeed: s, recomputeActivations: cfg.gradient_checkpointing });
        progress.update({ step: s + 1, epoch: (s + 1) / sftOrder.batchesPerEpoch, loss: r.loss });
      }
      progress.finish();
      progress = null;
    }
    await algo.start?.(step);
    const evalBefore = cfg.eval_on_start && step === 0 ? ((await evalValid('start', 0))?.metrics ?? null) : null;

    // ---- GRPO
    const totalSteps = totalTrainingSteps({ numExamples: train.length, batchSize: cfg.train_batch_size, epochs: cfg.num_train_epochs, maxSteps: cfg.max_steps });
    const warmupSteps = cfg.warmup_ratio !== null ? Math.ceil(cfg.warmup_ratio * totalSteps) : cfg.warmup_steps;
    if (warmupSteps > totalSteps) {
      say(`warning: warmup_steps ${warmupSteps} exceeds the run's ${totalSteps} steps: the learning rate rises the whole run and never reaches learning_rate ${cfg.learning_rate}; set --warmup_steps or --warmup_ratio`);
    }
    const lrAt = createLrSchedule({ type: cfg.lr_scheduler_type, baseLr: cfg.learning_rate, warmupSteps, totalSteps });
    // HF's strategies: when valid is evaluated and checkpoints are saved (0: only at the end)
    const evalEvery = { steps: cfg.eval_steps, epoch: order.batchesPerEpoch, no: 0 }[cfg.eval_strategy];
    const saveEvery = { steps: cfg.save_steps, epoch: order.batchesPerEpoch, best: 0, no: 0 }[cfg.save_strategy];
    const stepCfg = grpoStepConfigFrom(cfg);
    const reward = (ex: Example, s: { text?: string }) => {
      const r = combined({ label: ex.label, labels }, s.text ?? '');
      return { total: r.total, parts: r.parts };
    };
    const log = await MetricsLog.open(join(runDir, 'metrics.jsonl'), { resumeAfterStep: step });
    onExit(() => log.close());
    progress = new ProgressReporter({ totalSteps, loggingSteps: cfg.logging_steps, stream: out as never });
    progress.start(step);
    const save = async () => {
      const state = { step, dataOrder: order.state(), early_stopping: stopper.state() };
      try {
        lastCheckpoint = await saveCheckpoint(runDir, { lm, adapter, optimizer }, state, algo.saveExtras ? { beforeCommit: (tmp) => algo.saveExtras!(tmp) } : {});
      } catch (e) {
        throw checkpointWriteError(e, join(runDir, `checkpoint-${step}`), lastCheckpoint);
      }
      await rotateCheckpoints(runDir, cfg.save_total_limit, stopper.best?.step ?? null);
    };
    let stopReason: StopReason = 'completed';
    let epoch = step / order.batchesPerEpoch; // (of a resumed run; each step takes one batch)
    while (step < totalSteps) {
      if (opts.signal?.aborted) {
        stopReason = 'aborted';
        break;
      }
      const batch = order.next();
      const examples = Array.from(batch.indices, (i) => train[i]!);
      const r = algo.step ? await algo.step(examples, lrAt(step), step) : await grpoStep({ lm, engine, adapter, optimizer, reward }, examples, { ...stepCfg, lr: lrAt(step) }, step);
      step++;
      epoch = batch.epoch + (batch.batchInEpoch + 1) / order.batchesPerEpoch;
      const record: StepRecord = { step, epoch, ...r.metrics };
      await log.append(record);
      progress.update(record);
      opts.onStep?.(record);
      if (cfg.log_completions && step % Math.max(1, cfg.logging_steps) === 0 && 'completions' in r && 'rewards' in r) {
        // (GRPO's step result; another algorithm's step may not carry its completions)
        const g = r as GrpoStepResult;
        const text = (g.completions[0]?.[0]?.text ?? '').replace(/\s+/g, ' ').trim();
        say(`completion (step ${step}, gold ${labels[examples[0]!.label]}, reward ${formatMetricValue(g.rewards[0])}): ${text.length > 240 ? `${text.slice(0, 239)}…` : text}`);
      }
      if (step % Math.max(1, cfg.logging_steps) === 0) await updateReport();
      if (step === totalSteps) break; // the final evaluation and checkpoint follow the loop
      // Evaluate before saving, so that the checkpoint's early-stopping state includes this step.
      if (evalEvery > 0 && step % evalEvery === 0 && (await evalValid(`step-${step}`, epoch))?.stop) {
        stopReason = 'early_stopping';
        say(`early stopping at step ${step}: ${cfg.early_stopping_patience} evaluation(s) without a higher valid ${bestMetricName} than ${stopper.best!.accuracy.toFixed(4)} (step ${stopper.best!.step})`);
        break;
      }
      if (saveEvery > 0 && step % saveEvery === 0) await save();
    }
    progress.finish();
    progress = null;
    await log.close();

    // ---- the final model: evaluated (unless it just was), checkpointed
    const lastValid = lastEval as { step: number; metrics: EvalMetrics } | null; // (assigned inside evalValid)
    let evalAfter: EvalMetrics | null;
    if (lastValid?.step === step) {
      evalAfter = lastValid.metrics;
      await writeFileAtomic(join(runDir, 'eval-end.json'), JSON.stringify(evalAfter, null, 2) + '\n');
    } else evalAfter = (await evalValid('end', epoch))?.metrics ?? null;
    await evalLog.close();
    if (lastCheckpoint === null || !lastCheckpoint.endsWith(`checkpoint-${step}`)) await save();

    // ---- the best model (its best.json must match the tracker: a resumed run may have left another)
    const best = stopper.best;
    const bestInfo = best ? await readBestModelInfo(runDir) : null;
    const bestDir = best && bestInfo?.step === best.step ? bestDirOf(runDir) : null;
    if (best && !bestDir) say(`warning: ${bestDirOf(runDir)} does not hold the best model of this run (step ${best.step}); its best.json says step ${bestInfo?.step ?? 'none'}`);
    let loadedBest = false;
    if (cfg.load_best_model_at_end && best && bestDir && bestInfo && best.step !== step) {
      adapter = await applyWeights(lm, await locateWeights(bestDir));
      loadedBest = true;
      evalAfter = bestInfo.metrics;
      say(`load_best_model_at_end: the model of step ${best.step} (best valid ${bestMetricName} ${best.accuracy.toFixed(4)}) replaces the final one`);
    }

    // ---- test split: the best model when one was kept, else the final one
    let testMetrics: EvalMetrics | null = null;
    let testStep: number | null = null;
    if (cfg.eval_on_test) {
      let testAdapter = adapter;
      testStep = step;
      if (best && bestDir && best.step !== step) {
        if (!loadedBest) testAdapter = await applyWeights(lm, await locateWeights(bestDir));
        testStep = best.step;
      }
      say(`test split: the model of step ${testStep}${testStep === best?.step ? ` (best by valid ${bestMetricName})` : ''}`);
      testMetrics = await evalSplit(test, 'test', testAdapter);
    }
    freeLm();
    await updateReport({ final: true });
    say(`run folder: ${runDir}`);
    return {
      runDir, modelDir, steps: step, evalBefore, evalAfter, lastCheckpoint, stoppedEarly: stopReason !== 'completed', stopReason,
      bestStep: best?.step ?? null, bestValidAccuracy: best ? (bestInfo?.step === best.step ? bestInfo.metrics.accuracy : best.accuracy) : null, bestDir, testMetrics, testStep, trainPrompts,
    };
  }
}

/**
 * A checkpoint that could not be written (disk full, I/O error): the message names the file (from
 * the underlying error), the checkpoint, and what is safe: the write is atomic, so nothing partial
 * is left, and the last complete checkpoint resumes the run.
 */
export function checkpointWriteError(e: unknown, ckptDir: string, lastComplete: string | null): Error {
  const err = e as NodeJS.ErrnoException;
  const safe = lastComplete
    ? `the last complete checkpoint is ${lastComplete}: free space and resume from it (--resume_from_checkpoint=${lastComplete})`
    : 'no earlier checkpoint of this run exists';
  const out = new Error(`writing ${ckptDir} failed: ${err?.message ?? String(e)}. Nothing of it was kept (checkpoints are written to a temporary folder and renamed); ${safe}`, { cause: e }) as NodeJS.ErrnoException;
  if (err?.code) out.code = err.code;
  return out;
}
