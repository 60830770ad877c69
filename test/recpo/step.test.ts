// recpoStep (src/recpo/step.ts) learns: repeated RecPO steps on a fixed batch of prompts raise
// the similarity-decision p(gold) and accuracy of those prompts' greedy completions (measured by
// similarityEvaluation with label embeddings recomputed from the trained weights), and a step's
// decision loss is the clipped PPO value of its best samples (ratio 1 at the first step, so
// loss/decision = -mean best advantage exactly when no dropout moves the trained forward). 30 steps:
// 15 were enough before the fused LM head changed the float rounding of the trajectory.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { Prompter } from '../../src/prompt/index.js';
import { answerTagIds, embedLabels, labelChatIds, labelDescriptions, recpoStep, similarityEvaluation, type RecpoStepConfig } from '../../src/recpo/index.js';
import { lenmlTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rrec-recpo-step-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'tiny-qwen');
writeTinyModel(modelDir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 151645, bos_token_id: 151643 } as never });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(lenmlTokenizerDir('qwen2_5'), f), join(modelDir, f));

const labels = ['sad', 'joyful', 'angry', 'afraid'];

describe('recpoStep', () => {
  it('raises p(gold) of the similarity decision on the prompts it trains on', async () => {
    const tokenizer = await loadTokenizer(modelDir);
    const prompter = new Prompter(tokenizer, { labels });
    const rows = parse(readFileSync(join(here, '..', '..', 'data', 'sample', 'ED_sample_4', 'train.csv')), { columns: true }) as { text: string; label: string }[];
    // two prompts of each of the four labels
    const picked = labels.flatMap((_, l) => rows.filter((r) => Number(r.label) === l).slice(0, 2));
    const examples = picked.map((r) => ({ promptIds: prompter.render({ text: r.text }).ids, label: Number(r.label) }));
    const lm = await CausalLM.load(modelDir);
    const adapter = lm.createLora({ rank: 8, alpha: 16, seed: 1 });
    const optimizer = lm.createOptimizer(adapter);
    const engine = new Engine(lm, { tokenizer, kvBudgetBytes: 1 << 26 });
    const descs = await labelDescriptions(labels, null);
    const labelChats = labels.map((l, i) => labelChatIds(tokenizer, l, descs[i]!));
    const tagIds = answerTagIds(tokenizer);
    const cfg: RecpoStepConfig = {
      groupSize: 4, maxNewTokens: 4, sampling: { temperature: 1, stop: ['</answer>'] }, seed: 5, beta: 0, epsilonLow: 0.2, epsilonHigh: 0.28, lossType: 'grpo',
      maskTruncated: false, numIterations: 1, lr: 1e-2, maxGradNorm: 1, weightDecay: 0, maxTokensPerMicroBatch: 4096,
      advantageType: 'gaussian', tau: 0.02, rewardSoftmaxWeight: 1, rewardFormatWeight: 0, rewardRankWeight: 0, labelEmbeddingGrad: false, labels,
    };
    const measure = async () => {
      const E = await embedLabels(lm, adapter, labelChats);
      const greedy = await engine.generate(examples.map((ex) => ({ prompt: ex.promptIds, n: 1, temperature: 0, maxTokens: 4, stop: ['</answer>'] })), { adapter });
      const r = await similarityEvaluation(lm, adapter, tokenizer, examples, greedy.map((g) => g.samples[0]!), E, { labels, tau: 0.02, tagIds });
      return { pGold: r.probs.reduce((a, p, i) => a + p[examples[i]!.label]!, 0) / examples.length, accuracy: r.metrics.accuracy };
    };
    const before = await measure();
    let first: Record<string, number> | null = null;
    for (let step = 0; step < 30; step++) {
      const labelEmbeddings = await embedLabels(lm, adapter, labelChats);
      const r = await recpoStep({ lm, engine, tokenizer, adapter, optimizer, labelEmbeddings, labelChats, tagIds }, examples, cfg, step);
      first ??= r.metrics;
    }
    const after = await measure();
    // no dropout, one iteration: the trained forward is the rollout policy, ratio 1, loss = -mean of the best advantages
    expect(first!['decision/clip_ratio']).toBe(0);
    expect(first!['loss/decision']).toBeLessThan(0);
    expect(after.pGold).toBeGreaterThan(before.pGold + 0.05);
    expect(after.accuracy).toBeGreaterThan(before.accuracy);
    console.log(`recpoStep on 8 fixed prompts: p(gold) ${before.pGold.toFixed(3)} -> ${after.pGold.toFixed(3)}, similarity accuracy ${before.accuracy.toFixed(3)} -> ${after.accuracy.toFixed(3)}`);
    engine.free();
    lm.free();
  }, 900_000);
});
