// Greedy paged generation against greedy generation by repeated full forward passes of the
// differentiable model, for each architecture. The engine runs the same layers over a paged KV
// cache, so tokens must match exactly and log-probs to float32 rounding (tolerance 2e-5 nats:
// the two paths differ only in summation order of dot products).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, createRandomModel } from '../../src/model/index.js';
import { writeTinyModel, type Arch } from '../helpers/tiny-models.js';
import { greedyReference, maxAbsDiff, prompt, trainerLogprobs } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dirs: Record<Arch, string> = { llama: join(root, 'llama'), qwen2: join(root, 'qwen2'), gemma2: join(root, 'gemma2') };
for (const a of Object.keys(dirs) as Arch[]) writeTinyModel(dirs[a], a);

const LOGP_TOL = 2e-5;

describe('greedy paged generation equals repeated full forward passes', () => {
  it.each(['llama', 'qwen2', 'gemma2'] as Arch[])('%s', async (arch) => {
    const lm = await CausalLM.load(dirs[arch]);
    // block size 4 so prompts and completions cross several blocks; gemma2's window is 8
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const prompts = [prompt(3, 1), prompt(13, 2), prompt(21, 3)];
    const maxTokens = 12;
    const results = await engine.generate(prompts.map((p) => ({ prompt: p, temperature: 0, maxTokens })));
    for (let i = 0; i < prompts.length; i++) {
      const ref = await greedyReference(lm, prompts[i]!, maxTokens);
      const s = results[i]!.samples[0]!;
      expect(s.finishReason).toBe('length');
      expect(Array.from(s.tokens)).toEqual(ref.tokens);
      expect(maxAbsDiff(s.logprobs, ref.logprobs)).toBeLessThan(LOGP_TOL);
    }
    engine.free();
    lm.free();
  });
});

describe('float64 models', () => {
  it('the paged path computes the same function as the training forward (to 1e-9 nats)', async () => {
    const lm = await CausalLM.load(dirs.gemma2, { dtype: 'float64' });
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const p = prompt(19, 4);
    const [r] = await engine.generate([{ prompt: p, temperature: 0, maxTokens: 8 }]);
    const ref = await greedyReference(lm, p, 8);
    expect(Array.from(r!.samples[0]!.tokens)).toEqual(ref.tokens);
    // logprobs cross the addon as float32; compare against float32-rounded references
    expect(maxAbsDiff(r!.samples[0]!.logprobs, Float32Array.from(ref.logprobs))).toBeLessThan(1e-9);
    engine.free();
    lm.free();
  });
});

describe("matmulPrecision: 'bf16'", () => {
  it('sampled log-probs equal the training forward of the same tokens (both round activations to bf16)', async () => {
    // bf16 weights; the engine's decode (M = 1: bf16 dot products), its prefill and the training
    // forward (packed bf16 GEMM) all round the same activations to bf16 and multiply exactly
    // (a bf16 x bf16 product fits f32), so only summation order and rare rounding flips of
    // nearly-equal activations separate them.
    const dir = join(root, 'qwen2-bf16');
    await createRandomModel(dir, { architecture: 'qwen2', vocabSize: 256, hiddenSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 256 }, { seed: 2, dtype: 'BF16' });
    const lm = await CausalLM.load(dir, { matmulPrecision: 'bf16' });
    const engine = new Engine(lm, { blockSize: 16, kvBudgetBytes: 1 << 22 });
    const p = Array.from({ length: 40 }, (_, i) => (i * 29 + 3) % 256);
    const [r] = await engine.generate([{ prompt: p, temperature: 1, seed: 5, maxTokens: 24 }]);
    const s = r!.samples[0]!;
    const ref = await trainerLogprobs(lm, p, s.tokens);
    const diff = maxAbsDiff(s.logprobs, Float32Array.from(ref));
    expect(diff).toBeLessThan(1e-4); // measured 4.8e-7 (2026-11-25)
    engine.free();
    lm.free();
  });
});
