/**
 * Folder-reading rules of loadTokenizer, on a tiny hand-made tokenizer (ids: <unk>=0, <s>=1,
 * </s>=2, <|end|>=3, a..z = 4..29, space = 30, "ab" = 31) so each case loads in milliseconds.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { ChatTemplateError, lenmlTokenizerDir, loadTokenizer, TokenizerLoadError } from '../../src/tokenizer/index.js';
import { makeFolder, tinyTokenizerJson, type TokenizerFolder } from '../helpers/tokenizer-folders.js';

const CHAT = "{% for m in messages %}<s>{{ m.role }}\n{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<s>assistant\n{% endif %}";
const NO_SYSTEM = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system here') }}{% endif %}" + CHAT;

const folders: TokenizerFolder[] = [];
async function folder(files: Record<string, string | Record<string, unknown>>): Promise<string> {
  const f = await makeFolder(files);
  folders.push(f);
  return f.dir;
}
afterEach(async () => {
  for (const f of folders.splice(0)) await f.cleanup();
});

describe('loadTokenizer: files', () => {
  it('refuses a token id that is not an integer from 0 to 2^24 - 1, naming the entry (a corrupt id of 2^31 took 88 s to load before)', async () => {
    const withVocab = (id: unknown) => {
      const j = tinyTokenizerJson() as { model: { vocab: Record<string, unknown> } };
      j.model.vocab['a'] = id;
      return j as unknown as Record<string, unknown>;
    };
    for (const id of [2 ** 31, 2 ** 24, -1, 4.5, '4']) {
      const dir = await folder({ 'tokenizer.json': withVocab(id), 'tokenizer_config.json': {} });
      await expect(loadTokenizer(dir)).rejects.toThrow(`${join(dir, 'tokenizer.json')}: model.vocab["a"] is ${JSON.stringify(id)}: token ids must be integers from 0 to 16777215`);
    }
    const j = tinyTokenizerJson() as { added_tokens: { id: unknown }[] };
    j.added_tokens[0]!.id = 2 ** 40;
    const dir = await folder({ 'tokenizer.json': j as unknown as Record<string, unknown>, 'tokenizer_config.json': {} });
    await expect(loadTokenizer(dir)).rejects.toThrow(`added_tokens[0].id is ${2 ** 40}: token ids must be integers from 0 to 16777215`);
  });

  it('loads a sparse vocabulary (unused ids between used ones): vocabSize is the largest id + 1', async () => {
    const j = tinyTokenizerJson() as { model: { vocab: Record<string, number> } };
    j.model.vocab['a'] = 1000;
    const dir = await folder({ 'tokenizer.json': j as unknown as Record<string, unknown>, 'tokenizer_config.json': { eos_token: '</s>' } });
    const t = await loadTokenizer(dir);
    expect(t.vocabSize).toBe(1001);
    expect(t.tokenToId('a')).toBe(1000);
  });

  it('names tokenizer.json when it is missing', async () => {
    const dir = await folder({ 'tokenizer_config.json': { eos_token: '</s>' } });
    const p = loadTokenizer(dir);
    await expect(p).rejects.toThrow(TokenizerLoadError);
    await expect(p).rejects.toThrow(join(dir, 'tokenizer.json'));
  });

  it('names the file that is not valid JSON', async () => {
    const dir = await folder({ 'tokenizer.json': '{"version": "1.0",', 'tokenizer_config.json': {} });
    await expect(loadTokenizer(dir)).rejects.toThrow(`${join(dir, 'tokenizer.json')} is not valid JSON`);
    const dir2 = await folder({ 'tokenizer.json': tinyTokenizerJson(), 'tokenizer_config.json': 'not json' });
    await expect(loadTokenizer(dir2)).rejects.toThrow(`${join(dir2, 'tokenizer_config.json')} is not valid JSON`);
    const dir3 = await folder({ 'tokenizer.json': '[1, 2]' });
    await expect(loadTokenizer(dir3)).rejects.toThrow(/tokenizer\.json should hold a JSON object, got an array/);
  });

  it('works without tokenizer_config.json when config.json names the eos id', async () => {
    const dir = await folder({ 'tokenizer.json': tinyTokenizerJson(), 'config.json': { eos_token_id: 2, model_type: 'llama' } });
    const tok = await loadTokenizer(dir);
    expect(tok.eosTokenId).toBe(2);
    expect(tok.stopTokenIds).toEqual([2]);
    expect(tok.padTokenId).toBe(2);
    expect(tok.bosTokenId).toBeNull();
    expect(tok.chatTemplate).toBeNull();
    expect(tok.vocabSize).toBe(32);
    expect(Array.from(tok.encode('abc d'))).toEqual([31, 6, 30, 7]);
  });

  it('fails clearly when no eos token is named anywhere', async () => {
    const dir = await folder({ 'tokenizer.json': tinyTokenizerJson(), 'tokenizer_config.json': {} });
    await expect(loadTokenizer(dir)).rejects.toThrow(/no end-of-sequence token/);
  });

  it('names the file, field and value of an unknown or malformed special token', async () => {
    const dir = await folder({ 'tokenizer.json': tinyTokenizerJson(), 'tokenizer_config.json': { eos_token: '<eot>' } });
    await expect(loadTokenizer(dir)).rejects.toThrow(`${join(dir, 'tokenizer_config.json')}: eos_token "<eot>" is not in the tokenizer's vocabulary`);
    const dir2 = await folder({
      'tokenizer.json': tinyTokenizerJson(),
      'tokenizer_config.json': { eos_token: '</s>' },
      'generation_config.json': { eos_token_id: [2, 999] },
    });
    await expect(loadTokenizer(dir2)).rejects.toThrow(`${join(dir2, 'generation_config.json')}: eos_token_id 999 is not in the tokenizer's vocabulary`);
    const dir3 = await folder({ 'tokenizer.json': tinyTokenizerJson(), 'config.json': { eos_token_id: 'x' } });
    await expect(loadTokenizer(dir3)).rejects.toThrow(/config\.json: field "eos_token_id" should be a token id/);
  });
});

describe('loadTokenizer: special tokens', () => {
  it('reads AddedToken-object tokens, pad/bos, and puts the end-of-turn token first', async () => {
    const dir = await folder({
      'tokenizer.json': tinyTokenizerJson(),
      'tokenizer_config.json': { bos_token: { content: '<s>' }, eos_token: '</s>', pad_token: '<unk>', chat_template: CHAT },
      'generation_config.json': { eos_token_id: 2 },
    });
    const tok = await loadTokenizer(dir);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.padTokenId).toBe(0);
    expect(tok.eosTokenId).toBe(3); // <|end|> closes turns in CHAT
    expect(tok.stopTokenIds).toEqual([3, 2]);
  });

  it('takes pad from generation_config.json, then eos', async () => {
    const dir = await folder({
      'tokenizer.json': tinyTokenizerJson(),
      'tokenizer_config.json': { eos_token: '</s>' },
      'generation_config.json': { pad_token_id: 0 },
    });
    expect((await loadTokenizer(dir)).padTokenId).toBe(0);
  });
});

describe('loadTokenizer: chat template choice', () => {
  const base = { 'tokenizer.json': tinyTokenizerJson() };

  it('picks "default" from the list form, or the named one', async () => {
    const dir = await folder({
      ...base,
      'tokenizer_config.json': {
        eos_token: '</s>',
        chat_template: [
          { name: 'tool_use', template: 'TOOLS' },
          { name: 'default', template: 'DEFAULT' },
        ],
      },
    });
    expect((await loadTokenizer(dir)).applyChatTemplate([], { addGenerationPrompt: false })).toBe('DEFAULT');
    expect((await loadTokenizer(dir, { chatTemplateName: 'tool_use' })).chatTemplate?.source).toBe('TOOLS');
    await expect(loadTokenizer(dir, { chatTemplateName: 'rag' })).rejects.toThrow(/no template named "rag" \(it has: tool_use, default\)/);
  });

  it('reads chat_template.jinja when tokenizer_config.json has none; the option wins over both', async () => {
    const dir = await folder({ ...base, 'tokenizer_config.json': { eos_token: '</s>' }, 'chat_template.jinja': CHAT });
    const tok = await loadTokenizer(dir);
    expect(tok.chatTemplate?.origin).toBe(join(dir, 'chat_template.jinja'));
    expect(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<s>user\nhi<|end|>\n<s>assistant\n');
    const over = await loadTokenizer(dir, { chatTemplate: '{{ messages[0].content }}!' });
    expect(over.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('hi!');
  });

  it('passes the special-token strings to the template', async () => {
    const dir = await folder({
      ...base,
      'tokenizer_config.json': { bos_token: '<s>', eos_token: '</s>', chat_template: '{{ bos_token }}|{{ eos_token }}|{{ pad_token }}|' },
    });
    expect((await loadTokenizer(dir)).applyChatTemplate([], { addGenerationPrompt: false })).toBe('<s>|</s>||');
  });

  it('detects a template that refuses the system role, and reports its message on render', async () => {
    const dir = await folder({ ...base, 'tokenizer_config.json': { eos_token: '</s>', chat_template: NO_SYSTEM } });
    const tok = await loadTokenizer(dir);
    expect(tok.supportsSystemRole).toBe(false);
    const render = () =>
      tok.applyChatTemplate(
        [
          { role: 'system', content: 's' },
          { role: 'user', content: 'u' },
        ],
        { addGenerationPrompt: true },
      );
    expect(render).toThrow(ChatTemplateError);
    expect(render).toThrow(`chat template from ${join(dir, 'tokenizer_config.json')} chat_template failed to render 2 message(s) (roles: system, user): no system here`);
  });

  it('fails at load on a template that does not parse, naming where it came from', async () => {
    const dir = await folder({ ...base, 'tokenizer_config.json': { eos_token: '</s>', chat_template: '{% if %}' } });
    await expect(loadTokenizer(dir)).rejects.toThrow(/chat template from .*tokenizer_config\.json chat_template does not parse/);
  });

  it('without any template, applyChatTemplate says so and names the folder', async () => {
    const dir = await folder({ ...base, 'tokenizer_config.json': { eos_token: '</s>' } });
    const tok = await loadTokenizer(dir);
    expect(() => tok.applyChatTemplate([{ role: 'user', content: 'u' }], { addGenerationPrompt: true })).toThrow(`${dir} has no chat template`);
  });
});

describe('lenmlTokenizerDir', () => {
  it('resolves both packages to folders holding the tokenizer files', () => {
    for (const name of ['qwen2_5', 'gemma2'] as const) {
      const dir = lenmlTokenizerDir(name);
      expect(dir.endsWith(join(`tokenizer-${name}`, 'models'))).toBe(true);
      expect(existsSync(join(dir, 'tokenizer.json'))).toBe(true);
      expect(existsSync(join(dir, 'tokenizer_config.json'))).toBe(true);
    }
  });
});
