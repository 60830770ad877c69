/** Prompter over the real Qwen2.5 and Gemma-2 tokenizers (each loaded once). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPrompt, Prompter } from '../../src/prompt/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { makeTokenizerFolder, type TokenizerFolder } from '../helpers/tokenizer-folders.js';

const LABELS = ['joyful', 'sad', 'angry', 'afraid', 'surprised', 'love'];
const EXAMPLE = { text: 'My flight got cancelled and nobody at the desk would help. 😤' };
const SYSTEM = 'You are a careful annotator of emotions.';

let qwenFolder: TokenizerFolder;
let gemmaFolder: TokenizerFolder;
let qwen: Tokenizer;
let gemma: Tokenizer;

beforeAll(async () => {
  [qwenFolder, gemmaFolder] = await Promise.all([makeTokenizerFolder('qwen2_5'), makeTokenizerFolder('gemma2')]);
  [qwen, gemma] = await Promise.all([loadTokenizer(qwenFolder.dir), loadTokenizer(gemmaFolder.dir)]);
});
afterAll(async () => {
  await Promise.all([qwenFolder.cleanup(), gemmaFolder.cleanup()]);
});

describe('Prompter with Qwen2.5', () => {
  it('wraps the user prompt in ChatML with the generation prompt', () => {
    const user = buildPrompt({ ...EXAMPLE, labels: LABELS })[0]?.content;
    const { prompt, messages } = new Prompter(qwen, { labels: LABELS, systemPrompt: SYSTEM }).render(EXAMPLE);
    expect(messages).toEqual([
      { role: 'system', content: SYSTEM },
      { role: 'user', content: user },
    ]);
    expect(prompt).toBe(`<|im_start|>system\n${SYSTEM}<|im_end|>\n<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`);
  });

  it('uses Qwen\'s default system prompt when none is given', () => {
    const { prompt } = new Prompter(qwen, { labels: LABELS }).render(EXAMPLE);
    expect(prompt.startsWith('<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\n')).toBe(true);
  });

  it('contains every label, ends with the generation prompt, and ids = encode(prompt)', () => {
    const { prompt, ids } = new Prompter(qwen, { labels: LABELS }).render(EXAMPLE);
    for (const label of LABELS) expect(prompt).toContain(label);
    expect(prompt.endsWith('<|im_start|>assistant\n')).toBe(true);
    expect(Array.from(ids)).toEqual(Array.from(qwen.encode(prompt)));
    expect(ids[0]).toBe(151644);
    expect(qwen.decode(ids)).toBe(prompt);
  });

  it('is deterministic: same input, byte-identical text and ids, across prompters', () => {
    const a = new Prompter(qwen, { labels: LABELS, systemPrompt: SYSTEM }).render(EXAMPLE);
    const b = new Prompter(qwen, { labels: [...LABELS], systemPrompt: SYSTEM }).render({ ...EXAMPLE });
    expect(Buffer.from(b.prompt, 'utf8').equals(Buffer.from(a.prompt, 'utf8'))).toBe(true);
    expect(Buffer.from(b.ids.buffer).equals(Buffer.from(a.ids.buffer))).toBe(true);
  });

  it('takes per-example labels, and needs labels from somewhere', () => {
    const { prompt } = new Prompter(qwen, { labels: LABELS }).render({ text: 'x', labels: ['calm', 'tense'] });
    expect(prompt).toContain('from this list: calm, tense\n');
    expect(() => new Prompter(qwen).render({ text: 'x' })).toThrow(/no labels/);
  });
});

describe('Prompter with Gemma-2', () => {
  it('starts with exactly one <bos> and ends with the model turn', () => {
    const { prompt, ids } = new Prompter(gemma, { labels: LABELS }).render(EXAMPLE);
    expect(prompt.startsWith('<bos><start_of_turn>user\n')).toBe(true);
    expect(prompt.endsWith('<end_of_turn>\n<start_of_turn>model\n')).toBe(true);
    expect(ids[0]).toBe(2);
    expect(ids[1]).toBe(106);
    expect(Array.from(ids).filter((id) => id === 2)).toHaveLength(1);
    expect(Array.from(ids)).toEqual(Array.from(gemma.encode(prompt, { addSpecialTokens: false })));
    for (const label of LABELS) expect(prompt).toContain(label);
  });

  it('folds the system prompt into the first user turn', () => {
    const prompter = new Prompter(gemma, { labels: LABELS, systemPrompt: SYSTEM });
    expect(prompter.foldsSystemPrompt).toBe(true);
    const { messages, prompt } = prompter.render(EXAMPLE);
    const user = buildPrompt({ ...EXAMPLE, labels: LABELS })[0]?.content;
    expect(messages).toEqual([{ role: 'user', content: `${SYSTEM}\n\n${user}` }]);
    expect(prompt).toBe(`<bos><start_of_turn>user\n${SYSTEM}\n\n${user}<end_of_turn>\n<start_of_turn>model\n`);
    expect(new Prompter(qwen, { labels: LABELS, systemPrompt: SYSTEM }).foldsSystemPrompt).toBe(false);
    expect(new Prompter(gemma, { labels: LABELS }).foldsSystemPrompt).toBe(false);
  });

  it('is deterministic', () => {
    const a = new Prompter(gemma, { labels: LABELS, systemPrompt: SYSTEM }).render(EXAMPLE);
    const b = new Prompter(gemma, { labels: LABELS, systemPrompt: SYSTEM }).render(EXAMPLE);
    expect(b.prompt).toBe(a.prompt);
    expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
  });
});
