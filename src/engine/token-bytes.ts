/**
 * The UTF-8 bytes each token id stands for, handed to the native engine once so it can match stop
 * strings and constrain answers on bytes (a token may end in the middle of a UTF-8 character, so
 * text is the wrong unit).
 *
 * Read from the tokenizer's own tokenizer.json, exact per token for the two vocabularies we run:
 * - byte-level BPE (Qwen2.5, GPT-2 style; decoder "ByteLevel"): each character of a vocab entry is
 *   one byte under GPT-2's bytes_to_unicode table, inverted here;
 * - SentencePiece-style BPE with byte fallback (Gemma-2; decoder Replace "▁" -> " ", ByteFallback):
 *   `<0xNN>` is the byte NN, anything else (non-special added tokens too) is its text with "▁"
 *   read as a space. Gemma's decoder strips no leading space (it has no Strip step), so a
 *   token's bytes are the same wherever it stands.
 * Special added tokens (`<|im_end|>`, `<end_of_turn>`, ...) get no bytes, as vLLM's detokenizer
 * skips them; they end generations through stop token ids instead. Other added tokens are their
 * content's UTF-8. Any other tokenizer falls back to `tokenizer.decode([id])`, exact only for
 * tokens that are whole characters.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NativeTokenBytes } from '../native.js';
import type { Tokenizer } from '../tokenizer/index.js';

/** GPT-2's bytes_to_unicode, inverted: code point -> byte. */
function byteLevelDecoder(): Map<number, number> {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  }
  const map = new Map<number, number>();
  bs.forEach((b, i) => map.set(cs[i]!, b));
  return map;
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number> | [string, number][] };
  decoder?: { type?: string; decoders?: { type?: string }[] } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

/** Packs per-token byte arrays as the flat table the addon takes. */
export function packTokenBytes(perToken: readonly (Uint8Array | undefined)[]): NativeTokenBytes {
  // plain loops: perToken may be sparse (special tokens are holes), which forEach would skip
  const offsets = new Int32Array(perToken.length + 1);
  let total = 0;
  for (let i = 0; i < perToken.length; i++) {
    total += perToken[i]?.length ?? 0;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < perToken.length; i++) {
    const b = perToken[i];
    if (b) bytes.set(b, offsets[i]!);
  }
  return { bytes, offsets };
}

/** The byte table of a tokenizer, `size` ids long (default: the tokenizer's vocabSize). */
export function tokenByteTable(tokenizer: Tokenizer, size = tokenizer.vocabSize): NativeTokenBytes {
  const enc = new TextEncoder();
  const perToken: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(size);
  let json: TokenizerJson | null = null;
  try {
    json = JSON.parse(readFileSync(join(tokenizer.modelDir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  } catch {
    json = null;
  }
  const decoder = json?.decoder;
  const decoderTypes = decoder?.type === 'Sequence' ? (decoder.decoders ?? []).map((d) => d.type) : [decoder?.type];
  const metaspace = decoderTypes.includes('ByteFallback') || decoderTypes.includes('Metaspace');
  const special = new Set<number>();
  for (const t of json?.added_tokens ?? []) {
    if (t.id >= size) continue;
    if (t.special) special.add(t.id);
    // Gemma's added whitespace runs ("▁▁", ...) go through the same "▁" -> " " decoder
    else perToken[t.id] = enc.encode(metaspace ? t.content.replace(/\u2581/g, ' ') : t.content);
  }
  const vocab = json?.model?.vocab;
  const entries: [string, number][] = vocab ? (Array.isArray(vocab) ? vocab : Object.entries(vocab)) : [];
  if (decoderTypes.includes('ByteLevel') && entries.length > 0) {
    const inv = byteLevelDecoder();
    for (const [tok, id] of entries) {
      if (id >= size || special.has(id) || perToken[id]) continue;
      const out: number[] = [];
      let exact = true;
      for (const ch of tok) {
        const b = inv.get(ch.codePointAt(0)!);
        if (b === undefined) exact = false;
        else out.push(b);
      }
      perToken[id] = exact ? Uint8Array.from(out) : enc.encode(tokenizer.decode([id]));
    }
  } else if (decoderTypes.includes('ByteFallback') && entries.length > 0) {
    for (const [tok, id] of entries) {
      if (id >= size || special.has(id) || perToken[id]) continue;
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(tok);
      perToken[id] = m ? Uint8Array.of(parseInt(m[1]!, 16)) : enc.encode(tok.replace(/\u2581/g, ' '));
    }
  }
  for (let id = 0; id < size; id++) {
    if (perToken[id] || special.has(id) || id >= tokenizer.vocabSize) continue;
    perToken[id] = enc.encode(tokenizer.decode([id]));
  }
  return packTokenBytes(perToken);
}
