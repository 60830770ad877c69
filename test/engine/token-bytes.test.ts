// The per-token byte table the engine matches stop strings and answers on, for the two real
// tokenizers: the bytes of encode(text)'s tokens, concatenated, must be exactly text's UTF-8
// (multi-byte characters split across tokens included), and special tokens have no bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenByteTable } from '../../src/engine/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { makeTokenizerFolder, type TokenizerFolder } from '../helpers/tokenizer-folders.js';

const TEXTS = [
  'I felt so sad when my dog died. <answer>sad</answer>',
  ' leading space, tabs\tand\nnewlines  ',
  'Émotions: joie 😊, tristesse 😢 — 悲しい, ἀγάπη',
  '<answer>joyful</answer><answer>angry</answer>',
];

describe.each(['qwen2_5', 'gemma2'] as const)('token byte table (%s)', (name) => {
  let folder: TokenizerFolder;
  let tok: Tokenizer;
  beforeAll(async () => {
    folder = await makeTokenizerFolder(name);
    tok = await loadTokenizer(folder.dir);
  });
  afterAll(async () => {
    await folder.cleanup();
  });

  it('concatenated token bytes are the text UTF-8, special tokens are empty', () => {
    const table = tokenByteTable(tok);
    expect(table.offsets.length).toBe(tok.vocabSize + 1);
    for (const text of TEXTS) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      const parts: number[] = [];
      for (const id of ids) parts.push(...table.bytes.subarray(table.offsets[id]!, table.offsets[id + 1]!));
      expect(Buffer.from(parts).toString('utf8')).toBe(text);
      expect(Buffer.compare(Buffer.from(parts), Buffer.from(text, 'utf8'))).toBe(0);
    }
    for (const id of tok.stopTokenIds) expect(table.offsets[id + 1]! - table.offsets[id]!).toBe(0);
  });
});

describe('an engine with a real tokenizer', () => {
  it('returns text cut right after the stop string, and matches stop strings on bytes', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { writeTinyModel } = await import('../helpers/tiny-models.js');
    const { CausalLM } = await import('../../src/model/index.js');
    const { Engine } = await import('../../src/engine/index.js');
    const folder = await makeTokenizerFolder('qwen2_5');
    const dir = mkdtempSync(join(tmpdir(), 'rrec-engine-tok-'));
    try {
      const tok = await loadTokenizer(folder.dir);
      writeTinyModel(dir, 'qwen2'); // vocab 256: Qwen's ids 0..255 are its byte tokens
      const lm = await CausalLM.load(dir);
      const engine = new Engine(lm, { tokenizer: tok, kvBudgetBytes: 1 << 20 });
      const prompt = [10, 20, 30, 40, 50];
      const [free] = await engine.generate([{ prompt, temperature: 0.9, seed: 3, maxTokens: 24 }]);
      const toks = Array.from(free!.samples[0]!.tokens);
      expect(free!.samples[0]!.text).toBe(tok.decode(toks, { skipSpecialTokens: true }));
      // two consecutive printable-ASCII tokens (ids 0..93 are '!'..'~') make the stop string
      const i = toks.findIndex((t, k) => k >= 2 && t < 94 && toks[k + 1]! < 94 && k + 1 < toks.length);
      expect(i).toBeGreaterThan(0);
      const stop = tok.decode([toks[i]!, toks[i + 1]!]);
      const [stopped] = await engine.generate([{ prompt, temperature: 0.9, seed: 3, maxTokens: 24, stop: [stop] }]);
      const s = stopped!.samples[0]!;
      expect(s.finishReason).toBe('stop');
      expect(s.text!.endsWith(stop)).toBe(true);
      expect(s.text!.indexOf(stop)).toBe(s.text!.length - stop.length);
      expect(toks.slice(0, s.tokens.length)).toEqual(Array.from(s.tokens));
      engine.free();
      lm.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await folder.cleanup();
    }
  });
});
