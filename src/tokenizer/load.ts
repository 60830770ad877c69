/**
 * Load a {@link Tokenizer} from a Hugging Face model folder.
 *
 * Reads `tokenizer.json` (required), `tokenizer_config.json` (optional but expected: it names the
 * special tokens and usually holds the chat template), and, when present, `generation_config.json`
 * and `config.json` for eos/pad ids, `model_type` and `vocab_size`.
 *
 * The chat template is, in order: `options.chatTemplate`; tokenizer_config.json `chat_template`
 * (a string, or a list of `{ name, template }` from which `options.chatTemplateName`, default
 * "default", is taken); a `chat_template.jinja` file next to it (newer `transformers` save it
 * there); the built-in Gemma-2 template when the folder is a Gemma tokenizer (config.json
 * `model_type` starting with "gemma", or a vocabulary with `<start_of_turn>`); else none.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { ChatTemplate } from './chat-template.js';
import { resolveSpecialTokens, type SpecialTokens } from './special-tokens.js';
import { GEMMA2_CHAT_TEMPLATE } from './templates.js';
import { Tokenizer } from './tokenizer.js';

export interface LoadTokenizerOptions {
  /** A Jinja chat template that replaces whatever the folder holds. */
  chatTemplate?: string;
  /** Which entry of a list-form `chat_template` to use. Default "default". */
  chatTemplateName?: string;
}

/** Raised when a model folder's tokenizer files are missing or malformed. */
export class TokenizerLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenizerLoadError';
  }
}

/** Parses a JSON object file; null when the file is absent and `optional`. */
async function readJsonObject(path: string, optional: false): Promise<Record<string, unknown>>;
async function readJsonObject(path: string, optional: true): Promise<Record<string, unknown> | null>;
async function readJsonObject(path: string, optional: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TokenizerLoadError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenizerLoadError(`${path} should hold a JSON object, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as Record<string, unknown>;
}

async function readTextIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new TokenizerLoadError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

interface TemplateChoice {
  source: string;
  origin: string;
}

/** tokenizer_config.json `chat_template`: a string, or `[{ name, template }, ...]`. */
function templateFromConfig(value: unknown, file: string, name: string): TemplateChoice | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return { source: value, origin: `${file} chat_template` };
  if (Array.isArray(value)) {
    const names: string[] = [];
    for (const entry of value) {
      const e = entry as { name?: unknown; template?: unknown };
      if (typeof e?.name !== 'string' || typeof e.template !== 'string') {
        throw new TokenizerLoadError(`${file}: chat_template list entries need a string name and template, got ${JSON.stringify(entry).slice(0, 200)}`);
      }
      if (e.name === name) return { source: e.template, origin: `${file} chat_template["${name}"]` };
      names.push(e.name);
    }
    throw new TokenizerLoadError(`${file}: chat_template has no template named "${name}" (it has: ${names.join(', ')})`);
  }
  throw new TokenizerLoadError(`${file}: chat_template should be a string or a list of {name, template}, got ${typeof value}`);
}

export async function loadTokenizer(modelDir: string, options: LoadTokenizerOptions = {}): Promise<Tokenizer> {
  const files = {
    tokenizer: join(modelDir, 'tokenizer.json'),
    tokenizerConfig: join(modelDir, 'tokenizer_config.json'),
    generationConfig: join(modelDir, 'generation_config.json'),
    modelConfig: join(modelDir, 'config.json'),
    chatTemplateJinja: join(modelDir, 'chat_template.jinja'),
  };
  const [tokenizerJson, tokenizerConfig, generationConfig, modelConfig] = await Promise.all([
    readJsonObject(files.tokenizer, false),
    readJsonObject(files.tokenizerConfig, true),
    readJsonObject(files.generationConfig, true),
    readJsonObject(files.modelConfig, true),
  ]);
  const tc = tokenizerConfig ?? {};

  checkTokenIds(files.tokenizer, tokenizerJson);
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(tokenizerJson, tc);
  } catch (err) {
    throw new TokenizerLoadError(`${files.tokenizer}: the tokenizer cannot be built: ${(err as Error).message}`, { cause: err });
  }

  const modelType = typeof modelConfig?.['model_type'] === 'string' ? modelConfig['model_type'] : null;
  const vocabField = modelConfig?.['vocab_size'];
  const modelVocabSize = typeof vocabField === 'number' && Number.isInteger(vocabField) ? vocabField : null;

  let choice: TemplateChoice | null = null;
  if (options.chatTemplate !== undefined) {
    choice = { source: options.chatTemplate, origin: 'the chatTemplate option' };
  } else {
    choice = templateFromConfig(tc['chat_template'], files.tokenizerConfig, options.chatTemplateName ?? 'default');
    if (choice === null) {
      const jinja = await readTextIfPresent(files.chatTemplateJinja);
      if (jinja !== null) choice = { source: jinja, origin: files.chatTemplateJinja };
    }
    if (choice === null) {
      const gemma = (modelType?.startsWith('gemma') ?? false) || hf.token_to_id('<start_of_turn>') !== undefined;
      if (gemma) choice = { source: GEMMA2_CHAT_TEMPLATE, origin: 'the built-in Gemma-2 template (src/tokenizer/templates.ts)' };
    }
  }

  let special: SpecialTokens;
  try {
    special = resolveSpecialTokens({
      tokenizerConfig: tc,
      generationConfig,
      modelConfig,
      files,
      chatTemplate: choice?.source ?? null,
      tokenToId: (t) => hf.token_to_id(t),
      idToToken: (id) => hf.id_to_token(id),
    });
  } catch (err) {
    throw new TokenizerLoadError((err as Error).message, { cause: err });
  }

  const chatTemplate = choice === null ? null : new ChatTemplate(choice.source, choice.origin, special.strings);
  const tokenizer = new Tokenizer({ modelDir, hf, special, chatTemplate, modelType, modelVocabSize });
  // An id past the embedding rows would be found only at the first generation (after a run folder
  // exists): refuse the pair here, naming both files and both numbers.
  if (modelVocabSize !== null && tokenizer.vocabSize > modelVocabSize) {
    throw new TokenizerLoadError(
      `${files.tokenizer} has token ids up to ${tokenizer.vocabSize - 1} (${tokenizer.vocabSize} ids) but ${files.modelConfig} field "vocab_size" is ${modelVocabSize}: ` +
        'the tokenizer does not belong to this model (or vocab_size is wrong)',
    );
  }
  return tokenizer;
}

/**
 * The largest token id accepted: 2^24. Real vocabularies are under 300k ids; the tokenizers library
 * keeps a table as long as the largest id, so a corrupt id of 2^31 took 88 s (and 2 GB) to load
 * before this check (found by test/reliability/fuzz.test.ts, case 3960 of seed 17).
 */
export const MAX_TOKEN_ID = 2 ** 24 - 1;

/** Every id in model.vocab (BPE, WordPiece, WordLevel) and added_tokens is an integer in [0, MAX_TOKEN_ID]. */
function checkTokenIds(file: string, json: Record<string, unknown>): void {
  const bad = (where: string, id: unknown) =>
    new TokenizerLoadError(`${file}: ${where} is ${JSON.stringify(id)}: token ids must be integers from 0 to ${MAX_TOKEN_ID}`);
  const model = json['model'];
  const vocab = typeof model === 'object' && model !== null ? (model as Record<string, unknown>)['vocab'] : undefined;
  if (typeof vocab === 'object' && vocab !== null && !Array.isArray(vocab)) {
    for (const [tok, id] of Object.entries(vocab)) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) throw bad(`model.vocab[${JSON.stringify(tok)}]`, id);
    }
  }
  const added = json['added_tokens'];
  if (Array.isArray(added)) {
    added.forEach((t, i) => {
      const id = typeof t === 'object' && t !== null ? (t as Record<string, unknown>)['id'] : undefined;
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > MAX_TOKEN_ID) throw bad(`added_tokens[${i}].id`, id);
    });
  }
}
