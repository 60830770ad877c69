// Fault family: the engine under load, from JavaScript. A few thousand requests in rounds of mixed
// prompt lengths and budgets, plain and streaming, a share aborted at random moments (an
// AbortSignal, or a stream left early), some with bad parameters (rejected with an error), on a
// small KV pool that forces waiting and preemption. Every request must end (finished, aborted or
// rejected), the block accounting must return to zero after every round, and resident memory must
// stay flat over the second half (no leak). Each round has a deadline, so a hang fails the test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, EngineRequestError, type GenerateRequest } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { mulberry32, writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-soak-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'llama');
writeTinyModel(dir, 'llama'); // vocab 256, 512 positions
const ROUNDS = Number(process.env.RREC_SOAK_ROUNDS ?? 200);
const PER_ROUND = 12;

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`hang: ${what} did not end within ${ms} ms`)), ms)))]).finally(() => clearTimeout(t));
}

describe('engine soak', () => {
  it(`${ROUNDS * PER_ROUND} requests: every one ends, no block leaks, memory flat`, async () => {
    const next = mulberry32(4242);
    const u = () => next() / 2 ** 32;
    const int = (lo: number, hi: number) => lo + Math.floor(u() * (hi - lo + 1));
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 16, kvBudgetBytes: 24 * 8192, maxRunning: 32, maxBatchTokens: 256 });
    expect(engine.stats().numBlocks).toBe(24); // 384 tokens: less than the 512-position context
    const ends = { stop: 0, length: 0, abort: 0, rejected: 0 };
    const rss: number[] = [];
    const t0 = performance.now();
    for (let round = 0; round < ROUNDS; round++) {
      const reqs: GenerateRequest[] = Array.from({ length: PER_ROUND }, (_, i) => ({
        prompt: Array.from({ length: u() < 0.06 ? int(60, 200) : int(1, 16) }, () => int(0, 255)),
        n: int(1, 3),
        temperature: [0, 0.8, 1.2][int(0, 2)],
        topP: [1, 0.9][int(0, 1)],
        seed: round * 100 + i,
        maxTokens: int(1, 14),
        stopTokenIds: [int(0, 255)],
      }));
      const kind = u();
      let bad: 'param' | 'prompt' | 'kv' | null = null;
      if (kind < 0.04) {
        bad = 'param';
        reqs[int(0, PER_ROUND - 1)]!.topP = 2;
      } else if (kind < 0.06) {
        bad = 'prompt';
        reqs[int(0, PER_ROUND - 1)]!.prompt = new Array(600).fill(7); // past the 512-position context
      } else if (kind < 0.08) {
        bad = 'kv';
        reqs[int(0, PER_ROUND - 1)]!.maxTokens = 2000; // capped at the 512-token context: 32 blocks > 24
      }
      const samples = reqs.reduce((a, r) => a + (r.n ?? 1), 0);
      const mode = u() < 0.5 ? 'generate' : 'stream';
      const abortAt = u() < 0.25 ? int(0, 30) : -1; // in events (stream) or milliseconds (generate)
      const run = async (): Promise<void> => {
        if (mode === 'generate') {
          const ac = new AbortController();
          const timer = abortAt >= 0 ? setTimeout(() => ac.abort(), abortAt / 4) : null;
          try {
            const res = await engine.generate(reqs, { signal: ac.signal });
            let seen = 0;
            res.forEach((r, i) => {
              expect(r.samples).toHaveLength(reqs[i]!.n ?? 1);
              for (const s of r.samples) {
                ends[s.finishReason]++;
                seen++;
                expect(s.tokens.length).toBeLessThanOrEqual(reqs[i]!.maxTokens!);
                expect(s.logprobs.length).toBe(s.tokens.length);
                if (s.finishReason === 'length') expect(s.tokens.length).toBe(reqs[i]!.maxTokens);
              }
            });
            expect(seen).toBe(samples);
          } finally {
            if (timer) clearTimeout(timer);
          }
        } else {
          const ended = new Set<string>();
          let k = 0;
          for await (const c of engine.stream(reqs)) {
            if (c.finishReason) {
              expect(ended.has(`${c.request}/${c.sample}`)).toBe(false);
              ended.add(`${c.request}/${c.sample}`);
              ends[c.finishReason]++;
            }
            if (abortAt >= 0 && ++k >= abortAt) break; // leaving the stream aborts the rest
          }
          if (abortAt < 0) expect(ended.size).toBe(samples);
          else ends.abort += samples - ended.size; // ended by leaving the stream
        }
      };
      try {
        await withDeadline(run(), 30_000, `round ${round}`);
        expect(bad).toBeNull();
      } catch (e) {
        if (bad === null || (e as Error).message.startsWith('hang')) throw e;
        if (bad === 'param') expect((e as Error).message).toMatch(/request \d+: topP must be in \(0, 1\], got 2/);
        else expect(e).toBeInstanceOf(EngineRequestError);
        if (bad === 'prompt') expect((e as EngineRequestError).kind).toBe('prompt_too_long');
        if (bad === 'kv') expect((e as EngineRequestError).message).toMatch(/needs \d+ KV blocks but the pool holds 24 \(8192 bytes each\); raise kvBudgetBytes to at least \d+/);
        ends.rejected += samples;
      }
      expect(engine.stats().usedBlocks).toBe(0); // every block back, whatever ended the round
      rss.push(process.memoryUsage().rss);
    }
    const seconds = (performance.now() - t0) / 1000;
    const total = ends.stop + ends.length + ends.abort + ends.rejected;
    console.log(`engine soak: ${ROUNDS * PER_ROUND} requests (${total} samples) in ${seconds.toFixed(1)} s: ${JSON.stringify(ends)}`);
    expect(ends.abort).toBeGreaterThan(0);
    expect(ends.rejected).toBeGreaterThan(0);
    expect(ends.stop + ends.length).toBeGreaterThan(total / 2);
    // resident memory over the second half: the last tenth's median within 24 MB of the half's first tenth
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    const h = ROUNDS >> 1;
    const tenth = Math.max(1, ROUNDS >> 3);
    const early = med(rss.slice(h, h + tenth));
    const late = med(rss.slice(ROUNDS - tenth));
    console.log(`engine soak: rss ${(early / 2 ** 20).toFixed(1)} MB -> ${(late / 2 ** 20).toFixed(1)} MB over the second half`);
    expect(late - early).toBeLessThan(24 * 2 ** 20);
    engine.free();
    lm.free();
  }, 300_000);
});
