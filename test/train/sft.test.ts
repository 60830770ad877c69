// Supervised warm start: gradient accumulation is exact, and repeated steps fit the targets.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM } from '../../src/model/index.js';
import { microBatches, sftCompletionText, sftStep, type SftExample, type SftStepResult } from '../../src/train/sft.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-sft-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'qwen2');
writeTinyModel(dir, 'qwen2');

const seq = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 41 + k * 7 + 1) % 256);
const examples: SftExample[] = [
  { promptIds: seq(9, 1), completionIds: seq(4, 2) },
  { promptIds: seq(5, 3), completionIds: seq(6, 4) },
  { promptIds: seq(12, 5), completionIds: seq(3, 6) },
];

describe('sft', () => {
  it('formats the target as a sentence then the answer tag, last', () => {
    expect(sftCompletionText('sad')).toMatch(/^The .* sad\. <answer>sad<\/answer>$/);
  });

  it('splits micro-batches by token budget without reordering', () => {
    const mb = microBatches(examples, 20);
    expect(mb.map((g) => g.length)).toEqual([1, 1, 1]);
    expect(microBatches(examples, 24).map((g) => g.length)).toEqual([2, 1]);
    expect(microBatches(examples, 1000).map((g) => g.length)).toEqual([3]);
  });

  it('accumulating micro-batches gives the same step as one batch', async () => {
    const lm = await CausalLM.load(dir, { dtype: 'float64' });
    const results: SftStepResult[] = [];
    const params: (Float32Array | Float64Array)[][] = [];
    for (const budget of [1000, 10]) {
      const adapter = lm.createLora({ rank: 4, seed: 1 });
      const optimizer = lm.createOptimizer(adapter);
      results.push(await sftStep(lm, examples, { adapter, optimizer, lr: 1e-2, maxTokensPerMicroBatch: budget }));
      params.push(adapter.params().map((p) => adapter.getParam(p.name)));
    }
    expect(results[1]!.loss).toBeCloseTo(results[0]!.loss, 12);
    expect(results[1]!.gradNorm).toBeCloseTo(results[0]!.gradNorm, 12);
    expect(results[0]!.tokens).toBe(13);
    params[0]!.forEach((p, k) => p.forEach((v, i) => expect(Math.abs(v - params[1]![k]![i]!)).toBeLessThan(1e-12)));
    lm.free();
  });

  it('the loss is the mean NLL and falls as the adapter fits the targets', async () => {
    const lm = await CausalLM.load(dir);
    const adapter = lm.createLora({ rank: 8, alpha: 16, seed: 2 });
    const optimizer = lm.createOptimizer(adapter);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      losses.push((await sftStep(lm, examples, { adapter, optimizer, lr: 2e-2, maxGradNorm: 1, dropoutSeed: step })).loss);
    }
    // an untrained tiny model is near uniform over 256 tokens: NLL close to ln 256 = 5.55
    expect(losses[0]!).toBeGreaterThan(4);
    expect(losses[29]!).toBeLessThan(0.5 * losses[0]!);
    lm.free();
  });
});
