/**
 * RecpoTrainer: RecPO fine-tuning (R2ec), the seed's second trainer. The model reasons; the
 * final-norm hidden state at `<answer>` is compared with an embedding of every label, and the
 * label distribution is a softmax over those cosine similarities (decision.ts).
 *
 *   new RecpoTrainer({ model: 'tiny', max_steps: 20, reward_softmax_weight: 1 }).fit()
 *
 * Everything around the step is GrpoTrainer.fit()'s (data, warm start, schedule, metrics.jsonl,
 * checkpoints, exact resume, best model, early stopping, test split): this class supplies the
 * step (step.ts), the similarity-decision evaluation (evaluate.ts; its accuracy is what the best
 * model and early stopping compare, with the answer-parsing figures of the same completions
 * beside it), and the label embeddings, which are saved in every checkpoint
 * (label_embeddings.json) so that a resumed run continues bit for bit.
 *
 * Label embeddings are recomputed every item_emb_refresh_steps steps (before that step), or,
 * with 0, at the start and at each valid evaluation (from the weights being evaluated).
 * <run>/recpo.json records the RecPO options for `rrec-emotion eval` / `infer`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EvalMetrics } from '../eval/metrics.js';
import { GrpoTrainer, type AlgorithmContext, type TrainingAlgorithm } from '../train/trainer.js';
import { grpoStepConfigFrom } from '../train/step-config.js';
import { writeFileAtomic, writeJsonSynced } from '../util/atomic-fs.js';
import { splitRecpoConfig, type RecpoOptions } from './config.js';
import { answerTagIds, embedLabels, labelChatIds } from './embed.js';
import { similarityEvaluation } from './evaluate.js';
import { labelDescriptions } from './label-descriptions.js';
import { recpoStep, type RecpoStepConfig } from './step.js';

export const LABEL_EMBEDDINGS_FILE = 'label_embeddings.json';
export const RECPO_RUN_FILE = 'recpo.json';

interface SavedLabelEmbeddings {
  step: number;
  labels: string[];
  hidden_size: number;
  /** [L * C], row per label; JSON numbers round-trip doubles exactly. */
  values: number[];
}

export class RecpoTrainer extends GrpoTrainer {
  readonly recpo: RecpoOptions;

  constructor(config: unknown = {}, opts: { now?: Date } = {}) {
    const { train, recpo } = splitRecpoConfig(config);
    super(train, opts);
    this.recpo = recpo;
  }

  protected override async createAlgorithm(ctx: AlgorithmContext): Promise<TrainingAlgorithm> {
    const o = this.recpo;
    const { lm, tokenizer, labels, cfg } = ctx;
    const descriptions = await labelDescriptions(labels, o.label_descriptions);
    const labelChats = labels.map((l, i) => labelChatIds(tokenizer, l, descriptions[i]!));
    const tagIds = answerTagIds(tokenizer);
    await writeJsonSynced(join(ctx.runDir, RECPO_RUN_FILE), { trainer: 'recpo', ...o, label_descriptions_resolved: Object.fromEntries(labels.map((l, i) => [l, descriptions[i]!])) });
    let E: Float64Array | null = null;
    let embStep = 0;
    const refresh = async (step: number) => {
      E = await embedLabels(lm, ctx.adapter, labelChats);
      embStep = step;
    };
    const base = grpoStepConfigFrom(cfg);
    const stepCfg: Omit<RecpoStepConfig, 'lr'> = {
      ...base,
      advantageType: o.advantage_type,
      tau: o.similarity_temperature,
      rewardSoftmaxWeight: o.reward_softmax_weight,
      rewardFormatWeight: o.reward_format_weight,
      rewardRankWeight: o.reward_rank_weight,
      labelEmbeddingGrad: o.label_embedding_grad,
      labels,
    };
    return {
      start: async (step) => {
        if (ctx.resumedFrom) {
          const file = join(ctx.resumedFrom, LABEL_EMBEDDINGS_FILE);
          let saved: SavedLabelEmbeddings;
          try {
            saved = JSON.parse(await readFile(file, 'utf8')) as SavedLabelEmbeddings;
          } catch (e) {
            throw new Error(`RecPO resume: cannot read ${file} (the label embeddings of the checkpoint): ${(e as Error).message}`);
          }
          const C = lm.config.hiddenSize;
          if (!Array.isArray(saved.values) || saved.values.length !== labels.length * C || JSON.stringify(saved.labels) !== JSON.stringify(labels))
            throw new Error(`RecPO resume: ${file} holds ${saved.values?.length} values for labels ${JSON.stringify(saved.labels)}; this run needs ${labels.length * C} for ${JSON.stringify(labels)}`);
          E = Float64Array.from(saved.values);
          embStep = saved.step;
          ctx.say(`label embeddings of step ${embStep} restored from ${file}`);
        } else await refresh(step);
      },
      step: async (examples, lr, step) => {
        if (o.item_emb_refresh_steps > 0 && step > 0 && step % o.item_emb_refresh_steps === 0 && embStep !== step) await refresh(step);
        return recpoStep(
          { lm, engine: ctx.engine, tokenizer, adapter: ctx.adapter, optimizer: ctx.optimizer, labelEmbeddings: E!, labelChats, tagIds },
          examples,
          { ...stepCfg, lr },
          step,
        );
      },
      evalMetrics: async (examples, result, adapter, split) => {
        const evalE = await embedLabels(lm, adapter, labelChats);
        // refresh 0: the live model's valid evaluations also refresh the training embeddings
        if (o.item_emb_refresh_steps === 0 && adapter === ctx.adapter && split !== 'test') E = evalE;
        const sim = await similarityEvaluation(lm, adapter, tokenizer, examples, result.completions, evalE, { labels, tau: o.similarity_temperature, tagIds });
        const m: EvalMetrics & Record<string, unknown> = {
          ...sim.metrics,
          answer_accuracy: result.metrics.accuracy,
          answer_macro_f1: result.metrics.macro_f1,
          answer_invalid_rate: result.metrics.invalid_rate,
        };
        ctx.say(`eval (${split}) similarity decision: accuracy ${sim.metrics.accuracy.toFixed(4)}, macro-F1 ${sim.metrics.macro_f1.toFixed(4)}; answer parsing of the same completions: accuracy ${result.metrics.accuracy.toFixed(4)}, macro-F1 ${result.metrics.macro_f1.toFixed(4)}`);
        await writeFileAtomic(join(ctx.runDir, `eval-${split}-answer.json`), JSON.stringify(result.metrics, null, 2) + '\n');
        return m;
      },
      saveExtras: async (tmp) => {
        const saved: SavedLabelEmbeddings = { step: embStep, labels: [...labels], hidden_size: lm.config.hiddenSize, values: Array.from(E!) };
        await writeJsonSynced(join(tmp, LABEL_EMBEDDINGS_FILE), saved);
      },
    };
  }
}
