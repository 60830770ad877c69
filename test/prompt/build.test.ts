/** Prompt wording and chat messages, without a tokenizer. Expected texts are written out by hand. */
import { describe, expect, it } from 'vitest';
import {
  buildPrompt,
  DEFAULT_PROMPT_TEMPLATE,
  fillPromptTemplate,
  foldSystemIntoUser,
  formatAnswer,
  validateLabels,
} from '../../src/prompt/index.js';

const LABELS = ['joyful', 'sad', 'angry', 'afraid'];

describe('the default prompt', () => {
  it('reads, word for word, as written here', () => {
    const [user] = buildPrompt({ text: 'I lost my keys again.', labels: LABELS });
    expect(user).toEqual({
      role: 'user',
      content:
        'Read the text below and reason, step by step, about the emotion it conveys. Weigh the cues in its ' +
        'wording and the situation they point to, then choose the emotion from the list that fits it best.\n' +
        '\n' +
        'What to do:\n' +
        '1) Explain the cues and context in 2-3 short sentences.\n' +
        '2) Give the final emotion between <answer> and </answer>.\n' +
        '\n' +
        'Pick exactly one emotion from this list: joyful, sad, angry, afraid\n' +
        '\n' +
        'IMPORTANT: Keep your reasoning brief, and make the closing <answer>emotion</answer> tag the very last thing you write.\n' +
        '\n' +
        'Text: I lost my keys again.',
    });
  });

  it('lists labels in the order given', () => {
    const [user] = buildPrompt({ text: 't', labels: ['sad', 'joyful'] });
    expect(user?.content).toContain('from this list: sad, joyful\n');
  });

  it('ends with the text, verbatim, even when it looks like a placeholder', () => {
    const text = 'He said "{labels}" and {text}\nthen left. 😡';
    const [user] = buildPrompt({ text, labels: LABELS });
    expect(user?.content.endsWith(`Text: ${text}`)).toBe(true);
    expect(user?.content.split('joyful, sad, angry, afraid')).toHaveLength(2);
  });
});

describe('buildPrompt', () => {
  it('adds a system turn only when a non-empty system prompt is given', () => {
    expect(buildPrompt({ text: 't', labels: LABELS }).map((m) => m.role)).toEqual(['user']);
    expect(buildPrompt({ text: 't', labels: LABELS, systemPrompt: '' }).map((m) => m.role)).toEqual(['user']);
    const messages = buildPrompt({ text: 't', labels: LABELS, systemPrompt: 'You label emotions.' });
    expect(messages[0]).toEqual({ role: 'system', content: 'You label emotions.' });
    expect(messages.map((m) => m.role)).toEqual(['system', 'user']);
  });

  it('fills a custom template', () => {
    const messages = buildPrompt({
      text: 'Yay!',
      labels: ['joyful', 'sad'],
      template: 'Labels: {labels}. Wrap it: {answer_open}x{answer_close}. {unknown} stays. Text: {text}',
    });
    expect(messages).toEqual([{ role: 'user', content: 'Labels: joyful, sad. Wrap it: <answer>x</answer>. {unknown} stays. Text: Yay!' }]);
  });

  it('refuses a template without {text}, bad labels, and a non-string text', () => {
    expect(() => buildPrompt({ text: 't', labels: LABELS, template: 'Labels: {labels}' })).toThrow(/no \{text\} placeholder/);
    expect(() => buildPrompt({ text: 't', labels: [] })).toThrow(/non-empty list/);
    expect(() => buildPrompt({ text: 't', labels: ['sad', ' '] })).toThrow(/non-blank string/);
    expect(() => buildPrompt({ text: 't', labels: ['sad', 'Sad'] })).toThrow(/"sad" and "Sad" are the same label/);
    expect(() => buildPrompt({ text: 42 as unknown as string, labels: LABELS })).toThrow(/text must be a string/);
  });

  it('is deterministic', () => {
    const a = buildPrompt({ text: 'same', labels: LABELS, systemPrompt: 'S' });
    const b = buildPrompt({ text: 'same', labels: [...LABELS], systemPrompt: 'S' });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });
});

describe('helpers', () => {
  it('formatAnswer wraps a label in the answer tag', () => {
    expect(formatAnswer('sad')).toBe('<answer>sad</answer>');
  });

  it('fillPromptTemplate replaces every occurrence', () => {
    expect(fillPromptTemplate('{text}|{text}|{labels}', { text: 'a', labels: ['x', 'y'] })).toBe('a|a|x, y');
    expect(DEFAULT_PROMPT_TEMPLATE).toContain('{text}');
  });

  it('validateLabels accepts distinct labels', () => {
    expect(() => validateLabels(LABELS)).not.toThrow();
  });

  it('foldSystemIntoUser puts the system text first in the first user turn', () => {
    expect(
      foldSystemIntoUser([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ]),
    ).toEqual([
      { role: 'user', content: 'Be brief.\n\nHi' },
      { role: 'assistant', content: 'Hello' },
    ]);
    expect(foldSystemIntoUser([{ role: 'user', content: 'Hi' }])).toEqual([{ role: 'user', content: 'Hi' }]);
    expect(() => foldSystemIntoUser([{ role: 'system', content: 's' }])).toThrow(/followed by a user turn/);
  });
});
