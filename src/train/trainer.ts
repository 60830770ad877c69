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
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { freemem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { datasetSpec, loadDataset, preprocess, type LoadedSplit } from '../data/index.js';
import { Engine } from '../engine/index.js';
import { evaluate, type EvalExample } from '../eval/run.js';
import type { EvalMetrics } from '../eval/metrics.js';
import { CausalLM, type AdamW, type LoraAdapter } from '../model/index.js';
import { Prompter } from '../prompt/index.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { ensureBuiltinModel } from './builtin-model.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { latestCheckpoint, rotateCheckpoints } from './checkpoint-dir.js';
import { BUILTIN_MODEL, kvMemoryBudgetBytes, resolveTrainConfig, runDir as runDirOf, type TrainConfig } from './config.js';
import { DataOrder, totalTrainingSteps } from './data-order.js';
import { grpoStep, type GrpoStepConfig } from './grpo-step.js';
import { MetricsLog, ProgressReporter, type StepRecord } from './metrics-log.js';
import { loadModelPaths, resolveModelPath } from './paths.js';
import { rewardFromConfig } from './reward-registry.js';
import { createLrSchedule } from './schedule.js';
import { sftCompletionText, sftStep } from './sft.js';

export interface FitOptions {
  /** Stops after the current step, with a checkpoint. */
  signal?: AbortSignal;
  /** Called with every step's record (as written to metrics.jsonl). */
  onStep?: (record: StepRecord) => void;
  /** Where progress goes (default process.stdout; a bar on a TTY, lines otherwise). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface FitResult {
  runDir: string;
  modelDir: string;
  /** Optimizer steps done (including resumed ones). */
  steps: number;
  /** Valid metrics before GRPO (after SFT) when eval_on_start, and at the end. */
  evalBefore: EvalMetrics | null;
  evalAfter: EvalMetrics | null;
  lastCheckpoint: string | null;
  stoppedEarly: boolean;
}

interface Example extends EvalExample {
  promptIds: Int32Array;
  label: number;
}

/** ../shared/data/ED_easy_4 beside the package when it exists, else the shipped sample. */
function defaultDataDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  const shared = resolve(dir, '..', 'shared', 'data', 'ED_easy_4');
  return existsSync(join(shared, 'train.csv')) ? shared : join(dir, 'data', 'sample', 'ED_sample_4');
}

export class GrpoTrainer {
  readonly config: TrainConfig;

  constructor(config: unknown = {}, opts: { now?: Date } = {}) {
    this.config = resolveTrainConfig(config, opts.now ? { now: opts.now } : {});
  }

  async fit(opts: FitOptions = {}): Promise<FitResult> {
    const cfg = this.config;
    const runDir = resolve(runDirOf(cfg));
    await mkdir(runDir, { recursive: true });
    const out = opts.stream ?? process.stdout;
    const say = (s: string) => out.write(s + '\n');

    // ---- model and tokenizer
    const modelDir =
      cfg.model === BUILTIN_MODEL
        ? await ensureBuiltinModel(join(resolve(cfg.output_dir), 'builtin-tiny-qwen2'), cfg.seed)
        : await resolveModelPath(cfg.model, (await loadModelPaths(cfg.paths_file ? { pathsFile: cfg.paths_file } : {})).paths);
    const tokenizer = await loadTokenizer(modelDir);

    // ---- data: an Arrow folder, or CSV splits preprocessed into the run folder
    const dataDir = resolve(cfg.data_dir ?? defaultDataDir());
    let arrowDir = dataDir;
    if (!existsSync(join(dataDir, 'dataset_dict.json'))) {
      arrowDir = join(runDir, 'data');
      if (!existsSync(join(arrowDir, 'dataset_dict.json')))
        await preprocess({ inputDir: dataDir, outputDir: arrowDir, dataset: datasetSpec(cfg.dataset_name, cfg.labels ?? undefined) });
    }
    const dataset = await loadDataset(arrowDir);
    const labels = cfg.labels ?? [...dataset.labelNames];
    const prompter = new Prompter(tokenizer, { labels, ...(cfg.system_prompt ? { systemPrompt: cfg.system_prompt } : {}) });
    const render = (split: LoadedSplit): Example[] =>
      Array.from({ length: split.numRows }, (_, i) => {
        const ex = split.get(i);
        return { promptIds: prompter.render({ text: ex.text }).ids, label: ex.label };
      });
    const train = render(dataset.split('train'));
    const valid = dataset.splitNames.includes('valid') ? render(dataset.split('valid')) : [];

    // ---- model, adapter, optimizer (or their checkpointed state), engine
    const lm = await CausalLM.load(modelDir, { fullFinetune: cfg.full_finetune });
    let adapter: LoraAdapter | null = cfg.use_lora
      ? lm.createLora({ rank: cfg.lora_r, alpha: cfg.lora_alpha, dropout: cfg.lora_dropout, targets: cfg.lora_target_modules, seed: cfg.seed })
      : null;
    let optimizer: AdamW = lm.createOptimizer(adapter ?? undefined);
    const order0 = { numExamples: train.length, batchSize: cfg.train_batch_size, seed: cfg.seed };
    let order = new DataOrder(order0);
    let step = 0;
    let lastCheckpoint: string | null = null;
    if (cfg.resume_from_checkpoint !== false) {
      const ckpt = cfg.resume_from_checkpoint === true ? (await latestCheckpoint(runDir))?.dir : resolve(cfg.resume_from_checkpoint);
      if (!ckpt) throw new Error(`resume_from_checkpoint: ${runDir} has no checkpoint-<step> folder to resume from`);
      const restored = await loadCheckpoint(ckpt, lm);
      adapter = restored.adapter;
      optimizer = restored.optimizer;
      step = restored.state.step;
      order = DataOrder.restore(restored.state.dataOrder, order0);
      lastCheckpoint = ckpt;
      say(`resumed from ${ckpt} at step ${step}`);
    }
    const engine = new Engine(lm, { tokenizer, kvBudgetBytes: Math.min(kvMemoryBudgetBytes(cfg.kv_memory_budget, freemem()), 4 * 2 ** 30) });
    const combined = rewardFromConfig(cfg);
    const evalValid = async (label: string): Promise<EvalMetrics | null> => {
      if (valid.length === 0) return null;
      const r = await evaluate(engine, valid, { labels, adapter, maxNewTokens: cfg.max_new_tokens, batchSize: cfg.eval_batch_size, stop: ['</answer>'] });
      const m = r.metrics;
      say(`eval (${label}): accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macro_f1.toFixed(4)}, invalid ${(m.invalid_rate * 100).toFixed(1)}%, mean length ${m.mean_output_length?.toFixed(1)}`);
      await writeFile(join(runDir, `eval-${label}.json`), JSON.stringify(m, null, 2) + '\n');
      return m;
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
      for (let s = 0; s < sftSteps; s++) {
        const b = sftOrder.next();
        const r = await sftStep(lm, Array.from(b.indices, (i) => examples[i]!), { adapter, optimizer: sftOpt, lr: cfg.sft_learning_rate, maxGradNorm: cfg.max_grad_norm, dropoutSeed: s });
        if ((s + 1) % Math.max(1, cfg.logging_steps) === 0 || s + 1 === sftSteps) say(`sft ${s + 1}/${sftSteps}: loss ${r.loss.toFixed(4)}`);
      }
    }
    const evalBefore = cfg.eval_on_start && step === 0 ? await evalValid('start') : null;

    // ---- GRPO
    const totalSteps = totalTrainingSteps({ numExamples: train.length, batchSize: cfg.train_batch_size, epochs: cfg.num_train_epochs, maxSteps: cfg.max_steps });
    const lrAt = createLrSchedule({ type: cfg.lr_scheduler_type, baseLr: cfg.learning_rate, warmupSteps: cfg.warmup_steps, totalSteps });
    const stepCfg: Omit<GrpoStepConfig, 'lr'> = {
      groupSize: cfg.group_size,
      maxNewTokens: cfg.max_new_tokens,
      sampling: { temperature: cfg.temperature, topP: cfg.top_p, topK: cfg.top_k, minP: cfg.min_p, repetitionPenalty: cfg.repetition_penalty, stop: ['</answer>'] },
      seed: cfg.seed,
      beta: cfg.beta,
      epsilonLow: cfg.epsilon,
      epsilonHigh: cfg.epsilon_high,
      lossType: cfg.loss_type,
      advantageVariant: cfg.advantage_variant,
      maskTruncated: cfg.mask_truncated_completions,
      numIterations: cfg.num_iterations,
      maxGradNorm: cfg.max_grad_norm,
      weightDecay: cfg.weight_decay,
      maxTokensPerMicroBatch: 4096,
    };
    const reward = (ex: Example, s: { text?: string }) => {
      const r = combined({ label: ex.label, labels }, s.text ?? '');
      return { total: r.total, parts: r.parts };
    };
    const log = await MetricsLog.open(join(runDir, 'metrics.jsonl'), { resumeAfterStep: step });
    const progress = new ProgressReporter({ totalSteps, loggingSteps: cfg.logging_steps, stream: out as never });
    progress.start(step);
    const save = async () => {
      lastCheckpoint = await saveCheckpoint(runDir, { lm, adapter, optimizer }, { step, dataOrder: order.state() }, { baseModelNameOrPath: cfg.model });
      await rotateCheckpoints(runDir, cfg.save_total_limit);
    };
    let stoppedEarly = false;
    while (step < totalSteps) {
      if (opts.signal?.aborted) {
        stoppedEarly = true;
        break;
      }
      const batch = order.next();
      const examples = Array.from(batch.indices, (i) => train[i]!);
      const r = await grpoStep({ lm, engine, adapter, optimizer, reward }, examples, { ...stepCfg, lr: lrAt(step) }, step);
      step++;
      const record: StepRecord = { step, epoch: batch.epoch + (batch.batchInEpoch + 1) / order.batchesPerEpoch, ...r.metrics };
      await log.append(record);
      progress.update(record);
      opts.onStep?.(record);
      if (cfg.save_steps > 0 && step % cfg.save_steps === 0) await save();
      if (cfg.eval_steps > 0 && step % cfg.eval_steps === 0 && step < totalSteps) await evalValid(`step-${step}`);
    }
    progress.finish();
    await log.close();
    if (lastCheckpoint === null || !lastCheckpoint.endsWith(`checkpoint-${step}`)) await save();
    const evalAfter = await evalValid('end');
    lm.free();
    say(`run folder: ${runDir}`);
    return { runDir, modelDir, steps: step, evalBefore, evalAfter, lastCheckpoint, stoppedEarly };
  }
}
