/**
 * Which token ids end a generation, pad a batch and open a sequence, decided from a model folder's
 * tokenizer_config.json, generation_config.json and config.json.
 *
 * Rules (in order; every id found is checked against the vocabulary):
 * - `eosTokenId` is the token that closes an assistant turn in the chat template when the template
 *   uses one of the known end-of-turn tokens (`<|im_end|>` Qwen/SmolLM, `<end_of_turn>` Gemma,
 *   `<|eot_id|>` Llama-3, `<|end|>` Phi-3); else tokenizer_config `eos_token`; else the first
 *   `eos_token_id` of generation_config.json, then config.json. For a chat model this is what a
 *   finished answer ends with, and what an SFT target appends.
 * - `stopTokenIds` = [eosTokenId, the end-of-document token paired with that end-of-turn token
 *   (`<|endoftext|>`, `<eos>`, `<|end_of_text|>`) when the vocabulary has it, generation_config
 *   `eos_token_id`(s), config.json `eos_token_id`(s), tokenizer_config `eos_token`], without
 *   repeats. So Qwen2.5 gives [151645, 151643] and Gemma-2 [107, 1], whether or not the folder has
 *   a generation_config.json.
 * - `bosTokenId` is tokenizer_config `bos_token`, or null when it is null/absent (Qwen2.5 has no
 *   BOS, even though its config.json names 151643 as bos_token_id: the tokenizer never adds it).
 * - `padTokenId` is tokenizer_config `pad_token`, else generation_config then config.json
 *   `pad_token_id`, else eosTokenId.
 */

/** tokenizer_config.json spells a token as a string, or as an AddedToken object in older files. */
export type ConfigToken = string | { content?: unknown } | null | undefined;

/** The fields of the three JSON files this module reads. */
export interface SpecialTokenSources {
  tokenizerConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown> | null;
  modelConfig: Record<string, unknown> | null;
  /** Paths for error messages. */
  files: { tokenizerConfig: string; generationConfig: string; modelConfig: string };
  /** The chat template's Jinja source, or null. */
  chatTemplate: string | null;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

export interface SpecialTokens {
  eosTokenId: number;
  stopTokenIds: number[];
  padTokenId: number;
  bosTokenId: number | null;
  /** The strings a chat template reads as bos_token, eos_token, ... (absent when none). */
  strings: { bos_token?: string; eos_token?: string; pad_token?: string; unk_token?: string };
}

/** End-of-turn token -> the end-of-document token the same family also stops on. */
const TURN_END_TOKENS: ReadonlyArray<readonly [turnEnd: string, documentEnd: string]> = [
  ['<|im_end|>', '<|endoftext|>'], // Qwen2/2.5, SmolLM2 (ChatML)
  ['<end_of_turn>', '<eos>'], // Gemma, Gemma-2
  ['<|eot_id|>', '<|end_of_text|>'], // Llama-3.x
  ['<|end|>', '<|endoftext|>'], // Phi-3
];

/** The token string of a tokenizer_config.json field, or undefined when null/absent. */
export function configTokenString(value: ConfigToken, file: string, field: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && typeof value.content === 'string') return value.content;
  throw new Error(`${file}: field "${field}" should be a token string, got ${JSON.stringify(value)}`);
}

/** A config's `eos_token_id`/`pad_token_id`: a number, a list of numbers, or absent. */
function idList(value: unknown, file: string, field: string): number[] {
  if (value === null || value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${file}: field "${field}" should be a token id or a list of them, got ${JSON.stringify(value)}`);
    }
  }
  return list as number[];
}

export function resolveSpecialTokens(src: SpecialTokenSources): SpecialTokens {
  const { files } = src;
  const tc = src.tokenizerConfig;

  const strings: SpecialTokens['strings'] = {};
  const ids: { bos?: number; eos?: number; pad?: number } = {};
  for (const [field, key] of [
    ['bos_token', 'bos'],
    ['eos_token', 'eos'],
    ['pad_token', 'pad'],
    ['unk_token', 'unk'],
  ] as const) {
    const token = configTokenString(tc[field] as ConfigToken, files.tokenizerConfig, field);
    if (token === undefined) continue;
    strings[field] = token;
    if (key === 'unk') continue;
    const id = src.tokenToId(token);
    if (id === undefined) {
      throw new Error(`${files.tokenizerConfig}: ${field} "${token}" is not in the tokenizer's vocabulary`);
    }
    ids[key] = id;
  }

  const checkIds = (list: number[], file: string, field: string): number[] => {
    for (const id of list) {
      if (src.idToToken(id) === undefined) {
        throw new Error(`${file}: ${field} ${id} is not in the tokenizer's vocabulary`);
      }
    }
    return list;
  };
  const genEos = src.generationConfig
    ? checkIds(idList(src.generationConfig['eos_token_id'], files.generationConfig, 'eos_token_id'), files.generationConfig, 'eos_token_id')
    : [];
  const cfgEos = src.modelConfig
    ? checkIds(idList(src.modelConfig['eos_token_id'], files.modelConfig, 'eos_token_id'), files.modelConfig, 'eos_token_id')
    : [];

  let turnEnd: number | undefined;
  let documentEnd: number | undefined;
  if (src.chatTemplate !== null) {
    for (const [turn, doc] of TURN_END_TOKENS) {
      const id = src.tokenToId(turn);
      if (id !== undefined && src.chatTemplate.includes(turn)) {
        turnEnd = id;
        documentEnd = src.tokenToId(doc);
        break;
      }
    }
  }

  const eosTokenId = turnEnd ?? ids.eos ?? genEos[0] ?? cfgEos[0];
  if (eosTokenId === undefined) {
    throw new Error(
      `no end-of-sequence token: none of ${files.tokenizerConfig} eos_token, ` +
        `${files.generationConfig} eos_token_id, ${files.modelConfig} eos_token_id is set`,
    );
  }
  const stopTokenIds: number[] = [];
  for (const id of [eosTokenId, documentEnd, ...genEos, ...cfgEos, ids.eos]) {
    if (id !== undefined && !stopTokenIds.includes(id)) stopTokenIds.push(id);
  }

  const genPad = src.generationConfig
    ? idList(src.generationConfig['pad_token_id'], files.generationConfig, 'pad_token_id')
    : [];
  const cfgPad = src.modelConfig ? idList(src.modelConfig['pad_token_id'], files.modelConfig, 'pad_token_id') : [];
  const padTokenId = ids.pad ?? genPad[0] ?? cfgPad[0] ?? eosTokenId;

  return { eosTokenId, stopTokenIds, padTokenId, bosTokenId: ids.bos ?? null, strings };
}
