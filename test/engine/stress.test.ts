// Randomised scheduler check: random request mixes (group sizes, prompt lengths, sampling
// parameters, stop tokens) under random block sizes, token budgets and pool sizes must give the
// same samples as a roomy engine with one prompt chunk per step, and leave no block in use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, type GenerateRequest } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { mulberry32, writeTinyModel } from '../helpers/tiny-models.js';
import { maxAbsDiff } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-engine-stress-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'gemma2');
writeTinyModel(dir, 'gemma2');

describe('random schedules give the same samples', () => {
  it.each([1, 2, 3])('mix %i', async (mix) => {
    const next = mulberry32(1000 + mix);
    const u = () => next() / 2 ** 32;
    const int = (lo: number, hi: number) => lo + Math.floor(u() * (hi - lo + 1));
    const reqs: GenerateRequest[] = Array.from({ length: int(3, 6) }, (_, i) => ({
      prompt: Array.from({ length: int(1, 30) }, () => int(0, 255)),
      n: int(1, 4),
      temperature: [0, 0.7, 1, 1.3][int(0, 3)],
      topK: [0, 5, 40][int(0, 2)],
      topP: [1, 0.9, 0.6][int(0, 2)],
      minP: [0, 0.05][int(0, 1)],
      repetitionPenalty: [1, 1.2][int(0, 1)],
      presencePenalty: [0, 0.5][int(0, 1)],
      seed: 77 * mix + i,
      maxTokens: int(1, 20),
      stopTokenIds: [int(0, 255), int(0, 255)],
    }));
    const lm = await CausalLM.load(dir);
    const roomy = new Engine(lm, { blockSize: 16, kvBudgetBytes: 4 << 20 });
    const want = await roomy.generate(reqs);
    const blockBytes = roomy.stats().blockBytes;
    for (const blockSize of [1, 3, 8]) {
      const longest = Math.max(...reqs.map((r) => r.prompt.length + r.maxTokens!));
      const blocks = Math.ceil(longest / blockSize) + int(0, 6);
      const tight = new Engine(lm, {
        blockSize,
        kvBudgetBytes: blocks * (blockBytes / 16) * blockSize,
        maxBatchTokens: int(1, 40),
        maxRunning: int(1, 12),
      });
      const got = await tight.generate(reqs);
      for (let r = 0; r < reqs.length; r++)
        for (let s = 0; s < want[r]!.samples.length; s++) {
          const a = want[r]!.samples[s]!;
          const b = got[r]!.samples[s]!;
          expect(Array.from(b.tokens), `mix ${mix} block ${blockSize} request ${r} sample ${s}`).toEqual(Array.from(a.tokens));
          expect(b.finishReason).toBe(a.finishReason);
          expect(maxAbsDiff(a.logprobs, b.logprobs)).toBeLessThan(2e-5);
        }
      expect(tight.stats().usedBlocks).toBe(0);
      expect(tight.stats().peakBlocks).toBeLessThanOrEqual(tight.stats().numBlocks);
      tight.free();
    }
    expect(roomy.stats().usedBlocks).toBe(0);
    roomy.free();
    lm.free();
  });
});
