/**
 * The tokenizer half of a GGUF export: `tokenizer.ggml.*` and `tokenizer.chat_template` from a
 * Hugging Face tokenizer.json, as llama.cpp's converter writes them, for the two kinds of
 * tokenizer the supported models use:
 *
 *   byte-level BPE (Qwen2.5, Llama 3, GPT-2: a ByteLevel pre-tokenizer)  -> model "gpt2": tokens
 *     by id, their types, the merges ("a b"), and `pre`, the pre-tokenizer llama.cpp must apply,
 *     recognised from the Split regex (qwen2, llama-bpe) or plain ByteLevel (gpt-2). An
 *     unrecognised regex is an error: llama.cpp would split text differently.
 *   SentencePiece-style BPE (Gemma: byte_fallback, "▁" for spaces)      -> model "llama": tokens,
 *     scores and types. llama.cpp's SPM tokenizer merges the adjacent pair whose result has the
 *     highest score; a merge of rank k gives its result the score -k, so it merges in the order of
 *     tokenizer.json's merges (what HF's BPE does). add_space_prefix is false unless the normalizer
 *     prepends "▁".
 *
 * Token types (llama_token_type): 1 normal, 2 unknown, 3 control (special added tokens), 4 user
 * defined (other added tokens), 5 unused (ids above the tokenizer's, up to config vocab_size,
 * named [PAD<id>] as the converter names them), 6 byte (<0xXX>). Special ids and add_bos come
 * from the loaded tokenizer (src/tokenizer), so llama.cpp stops and starts where this project does;
 * the chat template is the one its prompts are rendered with.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tokenizer } from '../tokenizer/index.js';
import { arr, bool, str, u32, type GgufKv } from './gguf-file.js';

const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

/** Split regexes of the byte-level pre-tokenizers llama.cpp knows, by its `pre` name. */
const PRE_TOKENIZERS: Readonly<Record<string, string>> = {
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
}

type Json = Record<string, unknown>;
const pieces = (node: unknown, key: 'pretokenizers' | 'normalizers'): Json[] => {
  if (typeof node !== 'object' || node === null) return [];
  const n = node as Json;
  return n['type'] === 'Sequence' && Array.isArray(n[key]) ? (n[key] as Json[]) : [n];
};

/** llama.cpp's `pre` for a byte-level pre-tokenizer; throws naming the file for an unknown one. */
function byteLevelPre(file: string, pre: unknown): string {
  const steps = pieces(pre, 'pretokenizers');
  const byteLevel = steps.find((s) => s['type'] === 'ByteLevel');
  const splits = steps.filter((s) => s['type'] === 'Split');
  if (!byteLevel) throw new Error(`${file}: a byte-level BPE tokenizer without a ByteLevel pre-tokenizer is not supported for GGUF export`);
  if (splits.length === 0 && byteLevel['use_regex'] !== false && steps.length === 1) return 'gpt-2';
  const regex = splits.length === 1 ? ((splits[0]!['pattern'] as Json | undefined)?.['Regex'] as string | undefined) : undefined;
  const name = Object.entries(PRE_TOKENIZERS).find(([, r]) => r === regex)?.[0];
  if (name === undefined || steps.length !== 2)
    throw new Error(`${file}: pre_tokenizer ${JSON.stringify(pre).slice(0, 200)} is not one llama.cpp is told about here (qwen2, llama-bpe, gpt-2): a GGUF with another "tokenizer.ggml.pre" would split text differently`);
  return name;
}

function mergeText(m: string | [string, string]): string {
  return typeof m === 'string' ? m : `${m[0]} ${m[1]}`;
}

export async function ggufTokenizerKvs(modelDir: string, tokenizer: Tokenizer, vocabSize: number): Promise<GgufKv[]> {
  const file = join(modelDir, 'tokenizer.json');
  const json = JSON.parse(await readFile(file, 'utf8')) as TokenizerJson;
  const model = json.model;
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null || !Array.isArray(model.merges))
    throw new Error(`${file}: model.type ${JSON.stringify(model?.type)}: only BPE tokenizers (with vocab and merges) are supported for GGUF export`);

  const tokens: (string | undefined)[] = [];
  for (const [text, id] of Object.entries(model.vocab)) tokens[id] = text;
  const added = new Map<number, { content: string; special: boolean }>();
  for (const t of json.added_tokens ?? []) {
    tokens[t.id] = t.content;
    added.set(t.id, { content: t.content, special: t.special === true });
  }
  if (tokens.length > vocabSize) throw new Error(`${file}: token id ${tokens.length - 1} is beyond config.json's vocab_size ${vocabSize}`);
  const spm = model.byte_fallback === true;
  const names: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const t = tokens[id];
    const a = added.get(id);
    if (t === undefined) {
      names.push(`[PAD${id}]`);
      types.push(TokenType.Unused);
    } else {
      names.push(t);
      if (a) types.push(a.special ? (spm && t === model.unk_token ? TokenType.Unknown : TokenType.Control) : TokenType.UserDefined);
      else if (spm && /^<0x[0-9A-F]{2}>$/.test(t)) types.push(TokenType.Byte);
      else if (spm && t === model.unk_token) types.push(TokenType.Unknown);
      else types.push(TokenType.Normal);
    }
  }

  const kvs: GgufKv[] = [];
  if (spm) {
    const rank = new Map<string, number>();
    model.merges.forEach((m, k) => {
      const text = mergeText(m).replace(' ', '');
      if (!rank.has(text)) rank.set(text, k);
    });
    const scores = names.map((t, id) => (types[id] === TokenType.Normal ? -(rank.get(t) ?? 0) : 0));
    const prepends = pieces(json.normalizer, 'normalizers').some((n) => n['type'] === 'Prepend');
    kvs.push(
      { key: 'tokenizer.ggml.model', value: str('llama') },
      { key: 'tokenizer.ggml.tokens', value: arr('STRING', names) },
      { key: 'tokenizer.ggml.scores', value: arr('FLOAT32', scores) },
      { key: 'tokenizer.ggml.token_type', value: arr('INT32', types) },
      { key: 'tokenizer.ggml.add_space_prefix', value: bool(prepends) },
    );
  } else {
    kvs.push(
      { key: 'tokenizer.ggml.model', value: str('gpt2') },
      { key: 'tokenizer.ggml.pre', value: str(byteLevelPre(file, json.pre_tokenizer)) },
      { key: 'tokenizer.ggml.tokens', value: arr('STRING', names) },
      { key: 'tokenizer.ggml.token_type', value: arr('INT32', types) },
      { key: 'tokenizer.ggml.merges', value: arr('STRING', model.merges.map(mergeText)) },
    );
  }

  // Whether encode() adds BOS / EOS, measured on the tokenizer itself (its post-processor decides).
  const probe = tokenizer.encode('a', { addSpecialTokens: true });
  const plain = tokenizer.encode('a', { addSpecialTokens: false });
  const addsBos = tokenizer.bosTokenId !== null && probe.length > plain.length && probe[0] === tokenizer.bosTokenId;
  const addsEos = probe.length > plain.length && probe[probe.length - 1] === tokenizer.eosTokenId;
  if (tokenizer.bosTokenId !== null) kvs.push({ key: 'tokenizer.ggml.bos_token_id', value: u32(tokenizer.bosTokenId) });
  kvs.push(
    { key: 'tokenizer.ggml.eos_token_id', value: u32(tokenizer.eosTokenId) },
    { key: 'tokenizer.ggml.padding_token_id', value: u32(tokenizer.padTokenId) },
  );
  if (spm && typeof model.unk_token === 'string' && model.vocab[model.unk_token] !== undefined)
    kvs.push({ key: 'tokenizer.ggml.unknown_token_id', value: u32(model.vocab[model.unk_token]!) });
  kvs.push({ key: 'tokenizer.ggml.add_bos_token', value: bool(addsBos) }, { key: 'tokenizer.ggml.add_eos_token', value: bool(addsEos) });
  if (tokenizer.chatTemplate) kvs.push({ key: 'tokenizer.chat_template', value: str(tokenizer.chatTemplate.source) });
  return kvs;
}
