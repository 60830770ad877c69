// Properties of the scheduler and the cache: prefix sharing, preemption by recomputation,
// independence from batch composition, and sampler log-probs equal to the trainer's (with and
// without an adapter, and after an optimizer step, which the engine sees without any copy).
//
// Tolerances: tokens must be equal; log-probs of the same tokens agree within 2e-5 nats (float32
// compute; the paths differ only in the summation order of dot products and in which rows share
// a matmul call).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type GenerateRequest, type GenerateResult } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { maxAbsDiff, prompt, trainerLogprobs } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-engine-sched-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const qwenDir = join(root, 'qwen2');
writeTinyModel(qwenDir, 'qwen2');
const gemmaDir = join(root, 'gemma2');
writeTinyModel(gemmaDir, 'gemma2');

const LOGP_TOL = 2e-5;

function expectSameResults(a: GenerateResult[], b: GenerateResult[]): void {
  expect(a.length).toBe(b.length);
  for (let r = 0; r < a.length; r++) {
    expect(a[r]!.samples.length).toBe(b[r]!.samples.length);
    for (let s = 0; s < a[r]!.samples.length; s++) {
      const x = a[r]!.samples[s]!;
      const y = b[r]!.samples[s]!;
      expect(Array.from(x.tokens), `request ${r} sample ${s}`).toEqual(Array.from(y.tokens));
      expect(x.finishReason).toBe(y.finishReason);
      expect(maxAbsDiff(x.logprobs, y.logprobs)).toBeLessThan(LOGP_TOL);
    }
  }
}

const groupRequests = (seed: number): GenerateRequest[] => [
  { prompt: prompt(11, 1), n: 4, temperature: 1, seed, maxTokens: 14 },
  { prompt: prompt(6, 2), n: 3, temperature: 0.8, topP: 0.9, seed: seed + 1, maxTokens: 9 },
  { prompt: prompt(17, 3), n: 1, temperature: 1.2, topK: 20, seed: seed + 2, maxTokens: 12 },
];

describe('prefix sharing', () => {
  it.each([qwenDir, gemmaDir])('the n samples of a shared prompt equal n independent sequences (%s)', async (dir) => {
    const lm = await CausalLM.load(dir);
    const shared = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const alone = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20, prefixSharing: false });
    const reqs = groupRequests(10);
    const a = await shared.generate(reqs);
    const b = await alone.generate(reqs);
    expectSameResults(a, b);
    // sharing really happened: fewer prefill rows (the prompt of a group runs once)
    expect(shared.stats().prefillTokens).toBeLessThan(alone.stats().prefillTokens);
    expect(shared.stats().peakBlocks).toBeLessThan(alone.stats().peakBlocks);
    // and each sample is what the trainer computes for those tokens
    for (let r = 0; r < reqs.length; r++)
      for (const s of a[r]!.samples) {
        const ref = await trainerLogprobs(lm, Array.from(reqs[r]!.prompt), s.tokens);
        expect(maxAbsDiff(s.logprobs, ref)).toBeLessThan(LOGP_TOL);
      }
    // samples of a group differ (different random streams)
    const g = a[0]!.samples.map((s) => Array.from(s.tokens).join(','));
    expect(new Set(g).size).toBeGreaterThan(1);
    shared.free();
    alone.free();
    lm.free();
  });
});

describe('preemption', () => {
  it('a block pool too small for everything gives the same outputs as a large one', async () => {
    const lm = await CausalLM.load(qwenDir);
    const big = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const blockBytes = big.stats().blockBytes;
    // the longest sequence is 17 + 12 = 29 tokens = 8 blocks; 9 blocks cannot hold 8 sequences
    const small = new Engine(lm, { blockSize: 4, kvBudgetBytes: 9 * blockBytes });
    expect(small.stats().numBlocks).toBe(9);
    const reqs = groupRequests(20);
    const a = await big.generate(reqs);
    const b = await small.generate(reqs);
    expectSameResults(a, b);
    expect(small.stats().preemptions).toBeGreaterThan(0);
    expect(small.stats().peakBlocks).toBeLessThanOrEqual(9);
    expect(big.stats().preemptions).toBe(0);
    big.free();
    small.free();
    lm.free();
  });

  it('refuses, with a clear error, a request whose single sequence cannot fit', async () => {
    const lm = await CausalLM.load(qwenDir);
    const probe = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const tiny = new Engine(lm, { blockSize: 4, kvBudgetBytes: 3 * probe.stats().blockBytes });
    await expect(tiny.generate([{ prompt: prompt(10, 1), maxTokens: 10 }])).rejects.toThrow(/needs 5 KV blocks but the pool holds 3/);
    expect(() => new Engine(lm, { kvBudgetBytes: 10 })).toThrow(/holds no KV block/);
    expect(() => new Engine(lm, { kvMemoryFraction: 2 })).toThrow(/kvMemoryFraction/);
    const frac = new Engine(lm, { kvMemoryFraction: 0.01 });
    expect(frac.stats().numBlocks).toBeGreaterThan(0);
    frac.free();
    probe.free();
    tiny.free();
    lm.free();
  });
});

describe('batch composition', () => {
  it('seeded samples do not depend on what else is in the batch, or on the token budget', async () => {
    const lm = await CausalLM.load(gemmaDir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const chunked = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20, maxBatchTokens: 5 });
    const reqs = groupRequests(30);
    const together = await engine.generate(reqs);
    const reversed = await engine.generate([...reqs].reverse());
    expectSameResults(together, [...reversed].reverse());
    for (let r = 0; r < reqs.length; r++) {
      const alone = await engine.generate([reqs[r]!]);
      expectSameResults([together[r]!], alone);
    }
    // chunked prefill (5 tokens a step, mixed with decodes)
    expectSameResults(together, await chunked.generate(reqs));
    engine.free();
    chunked.free();
    lm.free();
  });
});

describe('log-probs equal the training forward', () => {
  it('without an adapter, with a trained adapter, and after an optimizer step (live buffers)', async () => {
    const lm = await CausalLM.load(qwenDir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const reqs: GenerateRequest[] = [
      { prompt: prompt(9, 4), n: 3, temperature: 1, seed: 3, maxTokens: 10 },
      { prompt: prompt(14, 5), n: 2, temperature: 0.7, seed: 4, maxTokens: 10 },
    ];
    const check = async (results: GenerateResult[], adapter: Parameters<typeof trainerLogprobs>[3]) => {
      for (let r = 0; r < reqs.length; r++)
        for (const s of results[r]!.samples) {
          const ref = await trainerLogprobs(lm, Array.from(reqs[r]!.prompt), s.tokens, adapter);
          expect(maxAbsDiff(s.logprobs, ref)).toBeLessThan(LOGP_TOL);
        }
    };
    const base = await engine.generate(reqs);
    await check(base, null);

    const adapter = lm.createLora({ rank: 4, alpha: 8, seed: 2 });
    const opt = lm.createOptimizer(adapter);
    const train = async () => {
      const batch = { tokens: Int32Array.from(prompt(12, 9)), seqOffsets: Int32Array.of(0, 12), targetRows: Int32Array.of(3, 7, 10), targetTokens: Int32Array.of(5, 6, 7) };
      const pass = await lm.forward(batch, { adapter });
      await pass.backward(Float32Array.of(-1, -1, -1));
      await opt.step({ lr: 0.05 });
      adapter.zeroGrad();
    };
    await train();
    const first = await engine.generate(reqs, { adapter });
    await check(first, adapter);
    await train();
    const second = await engine.generate(reqs, { adapter });
    await check(second, adapter);
    // the step changed the policy the engine samples from (no copy was refreshed)
    const lp = (rs: GenerateResult[]) => rs.flatMap((r) => r.samples.flatMap((s) => Array.from(s.logprobs)));
    expect(lp(first).join()).not.toBe(lp(second).join());
    // adapter null is the base model again
    expectSameResults(await engine.generate(reqs, { adapter: null }), base);
    engine.free();
    lm.free();
  });
});

describe('full fine-tuning', () => {
  it('the engine samples from the live trainable weights of a fully fine-tuned model', async () => {
    const lm = await CausalLM.load(qwenDir, { fullFinetune: true });
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const req: GenerateRequest = { prompt: prompt(10, 6), n: 2, temperature: 1, seed: 9, maxTokens: 8 };
    const before = await engine.generate([req]);
    const opt = lm.createOptimizer();
    const batch = { tokens: Int32Array.from(prompt(12, 9)), seqOffsets: Int32Array.of(0, 12), targetRows: Int32Array.of(3, 7), targetTokens: Int32Array.of(5, 6) };
    const pass = await lm.forward(batch);
    await pass.backward(Float32Array.of(-1, -1));
    await opt.step({ lr: 0.01 });
    const after = await engine.generate([req]);
    for (const s of after[0]!.samples) {
      const ref = await trainerLogprobs(lm, Array.from(req.prompt), s.tokens);
      expect(maxAbsDiff(s.logprobs, ref)).toBeLessThan(LOGP_TOL);
    }
    const lp = (rs: GenerateResult[]) => rs[0]!.samples.flatMap((s) => Array.from(s.logprobs)).join();
    expect(lp(after)).not.toBe(lp(before));
    const adapter = lm.createLora({ rank: 2 });
    await expect(engine.generate([req], { adapter })).rejects.toThrow(/full fine-tuning/);
    engine.free();
    lm.free();
  });
});
