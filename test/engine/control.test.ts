// Ending and steering generations: max tokens, stop token ids, stop strings (matched on the bytes
// of a token table, across token boundaries), constrained answers, abort, streaming, and refusal
// of concurrent misuse.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, packTokenBytes, type StreamChunk } from '../../src/engine/index.js';
import { CausalLM } from '../../src/model/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { prompt } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-engine-ctl-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'llama');
writeTinyModel(dir, 'llama');

const enc = new TextEncoder();
const dec = new TextDecoder();
// token v -> one letter: a..z
const letters = packTokenBytes(Array.from({ length: 256 }, (_, v) => enc.encode(String.fromCharCode(97 + (v % 26)))));
const textOf = (table: { bytes: Uint8Array; offsets: Int32Array }, tokens: ArrayLike<number>) =>
  dec.decode(Uint8Array.from(Array.from(tokens).flatMap((t) => Array.from(table.bytes.subarray(table.offsets[t]!, table.offsets[t + 1]!)))));

describe('stopping', () => {
  it('maxTokens ends with "length"; a stop token ends right after its first occurrence with "stop"', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const p = prompt(7, 1);
    const [free] = await engine.generate([{ prompt: p, temperature: 0, maxTokens: 12 }]);
    const toks = Array.from(free!.samples[0]!.tokens);
    expect(toks.length).toBe(12);
    expect(free!.samples[0]!.finishReason).toBe('length');
    const stopTok = toks[4]!;
    const first = toks.indexOf(stopTok);
    const [stopped] = await engine.generate([{ prompt: p, temperature: 0, maxTokens: 12, stopTokenIds: [stopTok] }]);
    expect(Array.from(stopped!.samples[0]!.tokens)).toEqual(toks.slice(0, first + 1));
    expect(stopped!.samples[0]!.finishReason).toBe('stop');
    engine.free();
    lm.free();
  });

  it('a stop string ends generation right after it appears, across token boundaries', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20, tokenBytes: letters });
    const p = prompt(9, 2);
    const [free] = await engine.generate([{ prompt: p, temperature: 0.9, seed: 11, maxTokens: 16 }]);
    const toks = Array.from(free!.samples[0]!.tokens);
    const text = textOf(letters, toks);
    const stop = text.slice(5, 8); // three letters spanning tokens 5..7
    const end = text.indexOf(stop) + stop.length; // one letter per token: tokens to keep
    const [stopped] = await engine.generate([{ prompt: p, temperature: 0.9, seed: 11, maxTokens: 16, stop: [stop] }]);
    expect(Array.from(stopped!.samples[0]!.tokens)).toEqual(toks.slice(0, end));
    expect(stopped!.samples[0]!.finishReason).toBe('stop');
    await expect(new Engine(lm).generate([{ prompt: p, stop: ['x'] }])).rejects.toThrow(/byte table/);
    engine.free();
    lm.free();
  });
});

describe('constrained answers', () => {
  // A made-up vocabulary: 50 tokens spell "<answer>", some spell pieces of the labels, the rest "x".
  const pieces = ['s', 'sa', 'sad', 'd', 'ad', 'joy', 'jo', 'y', 'ful', 'f', 'ul', 'angry', 'an', 'gry', '</answer>', '</', 'answer>', 'd</answer>', 'y</answer>', 'sadness', 'joyfulx'];
  const table = packTokenBytes(
    Array.from({ length: 256 }, (_, v) => enc.encode(v >= 100 && v < 150 ? '<answer>' : v >= 150 && v - 150 < pieces.length ? pieces[v - 150]! : 'x')),
  );
  const labels = ['sad', 'joyful', 'angry'];

  it('after <answer> only a label followed by </answer> can be generated, then the stop string ends it', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20, tokenBytes: table });
    const req = { prompt: prompt(8, 3), n: 12, temperature: 1, seed: 5, maxTokens: 40, stop: ['</answer>'] };
    const [constrained] = await engine.generate([{ ...req, constrainedAnswer: { labels } }]);
    let answered = 0;
    for (const s of constrained!.samples) {
      const text = textOf(table, s.tokens);
      const at = text.indexOf('<answer>');
      if (at < 0) continue;
      answered++;
      const answer = text.slice(at + '<answer>'.length);
      expect(labels.map((l) => l + '</answer>'), `sample text ${text}`).toContain(answer);
      expect(s.finishReason).toBe('stop');
    }
    expect(answered).toBeGreaterThan(6);
    // without the constraint the same samples answer anything (here: never a clean label)
    const [free] = await engine.generate([req]);
    const clean = free!.samples.filter((s) => {
      const text = textOf(table, s.tokens);
      const at = text.indexOf('<answer>');
      return at >= 0 && labels.some((l) => text.slice(at + 8) === l + '</answer>');
    });
    expect(clean.length).toBeLessThan(answered);
    engine.free();
    lm.free();
  });
});

describe('streaming and abort', () => {
  it('stream() yields per-sequence chunks that add up to generate()', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const reqs = [
      { prompt: prompt(5, 1), n: 3, seed: 1, maxTokens: 8 },
      { prompt: prompt(12, 2), seed: 2, maxTokens: 5 },
    ];
    const whole = await engine.generate(reqs);
    const got = new Map<string, { tokens: number[]; lps: number[]; finish?: string }>();
    for await (const c of engine.stream(reqs)) {
      const k = `${c.request}/${c.sample}`;
      const e = got.get(k) ?? { tokens: [], lps: [] };
      expect(e.finish, 'no chunk after a finish').toBeUndefined();
      e.tokens.push(...c.tokens);
      e.lps.push(...c.logprobs);
      e.finish = c.finishReason;
      got.set(k, e);
    }
    expect(got.size).toBe(4);
    whole.forEach((r, i) =>
      r.samples.forEach((s, j) => {
        const e = got.get(`${i}/${j}`)!;
        expect(e.tokens).toEqual(Array.from(s.tokens));
        expect(e.lps).toEqual(Array.from(s.logprobs));
        expect(e.finish).toBe(s.finishReason);
      }),
    );
    const st = engine.stats();
    expect(st.decodeTokens).toBeGreaterThan(0);
    expect(st.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(st.prefillTokensPerSecond).toBeGreaterThan(0);
    engine.free();
    lm.free();
  });

  it('an AbortSignal ends every unfinished sequence with "abort" and frees the engine', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const reqs = [{ prompt: prompt(5, 1), n: 2, seed: 1, maxTokens: 200 }, { prompt: prompt(9, 2), seed: 2, maxTokens: 200 }];
    const ac = new AbortController();
    const chunks: StreamChunk[] = [];
    for await (const c of engine.stream(reqs, { signal: ac.signal })) {
      chunks.push(c);
      if (chunks.length === 7) ac.abort();
    }
    const aborted = chunks.filter((c) => c.finishReason === 'abort');
    expect(aborted.map((c) => `${c.request}/${c.sample}`).sort()).toEqual(['0/0', '0/1', '1/0']);
    expect(lm.busy).toBe(false);
    // generate with an aborted signal resolves at once with empty 'abort' samples
    const r = await engine.generate(reqs, { signal: AbortSignal.abort() });
    expect(r.flatMap((x) => x.samples.map((s) => [s.finishReason, s.tokens.length]))).toEqual([['abort', 0], ['abort', 0], ['abort', 0]]);
    // generate aborted mid-way keeps what it generated
    const ac2 = new AbortController();
    const p = engine.generate(reqs, { signal: ac2.signal });
    setTimeout(() => ac2.abort(), 5);
    const partial = await p;
    for (const s of partial.flatMap((x) => x.samples)) {
      expect(['abort', 'length']).toContain(s.finishReason);
      expect(s.tokens.length).toBe(s.logprobs.length);
    }
    // breaking out of a stream closes the session too
    for await (const c of engine.stream(reqs)) {
      void c;
      break;
    }
    expect(lm.busy).toBe(false);
    const again = await engine.generate([{ prompt: prompt(4, 4), maxTokens: 3, seed: 3 }]);
    expect(again[0]!.samples[0]!.tokens.length).toBe(3);
    engine.free();
    lm.free();
  });
});

describe('misuse is refused, not a crash', () => {
  it('two generates at once, freeing the model or stepping an optimizer during a generate', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    const adapter = lm.createLora({ rank: 2 });
    const opt = lm.createOptimizer(adapter);
    const reqs = [{ prompt: prompt(6, 1), n: 2, seed: 1, maxTokens: 30 }];
    const first = engine.generate(reqs, { adapter });
    await expect(engine.generate(reqs)).rejects.toThrow(/already running/);
    // the first step has been queued, so the model is busy now
    await new Promise((r) => setTimeout(r, 0));
    expect(() => lm.free()).toThrow(/busy/);
    expect(() => opt.step({ lr: 1e-3 })).toThrow(/busy/);
    expect(() => adapter.setParam(adapter.params()[0]!.name, new Float32Array(adapter.params()[0]!.shape.reduce((a, b) => a * b, 1)))).toThrow(/busy/);
    expect(() => engine.free()).toThrow(/running/);
    const other = new Engine(lm, { blockSize: 4, kvBudgetBytes: 1 << 20 });
    await expect(other.generate(reqs)).rejects.toThrow(/busy/);
    const r = await first;
    expect(r[0]!.samples.every((s) => s.finishReason === 'length' && s.tokens.length === 30)).toBe(true);
    // all fine afterwards
    await opt.step({ lr: 1e-3 });
    other.free();
    engine.free();
    expect(() => engine.stats()).toThrow(/freed/);
    lm.free();
    const e2 = new Engine(await CausalLM.load(dir), { kvBudgetBytes: 1 << 20 });
    e2.free();
  });

  it('rejects invalid requests with the field named', async () => {
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { kvBudgetBytes: 1 << 20 });
    await expect(engine.generate([{ prompt: [] }])).rejects.toThrow(/request 0: the prompt is empty/);
    await expect(engine.generate([{ prompt: [1, 999] }])).rejects.toThrow(/prompt\[1\] = 999 is outside the vocabulary/);
    await expect(engine.generate([{ prompt: [1], topP: 0 }])).rejects.toThrow(/topP/);
    await expect(engine.generate([{ prompt: [1], n: 0 }])).rejects.toThrow(/n must be a positive integer/);
    expect(lm.busy).toBe(false);
    engine.free();
    lm.free();
  });
});
