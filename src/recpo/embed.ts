/**
 * RecPO's embeddings: a sequence's embedding is the final-norm hidden state of the last layer at
 * the last token of a sequence that ends with the literal `<answer>`, so the state is read right
 * where the decision is due.
 *
 * The embedding-only forward is CausalLM.forward with hidden rows and no target rows and
 * keepForBackward false: the addon then runs the decoder and the final norm at the hidden rows
 * only (no LM head, no log-softmax over the vocabulary, no activations kept; native/core/
 * model_forward.cc skips the head when there are no targets), batched over packed sequences.
 * test/recpo/hidden-state.test.ts checks that it returns the same states as a training forward.
 */
import type { GeneratedSample } from '../engine/index.js';
import { packSequences, type CausalLM, type LoraAdapter } from '../model/index.js';
import { ANSWER_OPEN } from '../prompt/answer.js';
import type { Tokenizer } from '../tokenizer/index.js';

/** The literal every decision sequence ends with. */
const ANSWER_TAG = ANSWER_OPEN;

/** What the decision reads a completion at (see locateDecision). */
export type DecisionSite =
  /** The tag's tokens are in the completion: the state at its last token (index into the completion). */
  | { kind: 'inplace'; end: number }
  /** No `<answer>` in the completion: append the tag's tokens and read the last one. */
  | { kind: 'append' }
  /** The text has `<answer>` but its tokens differ from the tag's: re-encode the text before it, then the tag. */
  | { kind: 'separate'; prefixText: string };

/** Where the first `<answer>` of a completion ends, in its tokens or its text. */
export function locateDecision(completion: Pick<GeneratedSample, 'tokens' | 'text'>, tagIds: Int32Array): DecisionSite {
  const t = completion.tokens;
  const k = tagIds.length;
  for (let i = 0; i + k <= t.length; i++) {
    let j = 0;
    while (j < k && t[i + j] === tagIds[j]) j++;
    if (j === k) return { kind: 'inplace', end: i + k - 1 };
  }
  const at = completion.text?.indexOf(ANSWER_TAG) ?? -1;
  return at < 0 ? { kind: 'append' } : { kind: 'separate', prefixText: completion.text!.slice(0, at) };
}

/** prompt + completion cut so it ends with `<answer>`: the standalone sequence whose last row is the decision state. */
export function decisionTokens(promptIds: ArrayLike<number>, completion: Pick<GeneratedSample, 'tokens' | 'text'>, tagIds: Int32Array, tokenizer: Pick<Tokenizer, 'encode'>): Int32Array {
  const site = locateDecision(completion, tagIds);
  const body =
    site.kind === 'inplace'
      ? completion.tokens.subarray(0, site.end + 1)
      : site.kind === 'append'
        ? concat(completion.tokens, tagIds)
        : concat(tokenizer.encode(site.prefixText, { addSpecialTokens: false }), tagIds);
  return concat(Int32Array.from(promptIds), body);
}

export function concat(a: ArrayLike<number>, b: ArrayLike<number>): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a as ArrayLike<number>, 0);
  out.set(b as ArrayLike<number>, a.length);
  return out;
}

/** Token ids of the `<answer>` tag as the model sees it after reasoning. */
export function answerTagIds(tokenizer: Pick<Tokenizer, 'encode'>): Int32Array {
  return tokenizer.encode(ANSWER_TAG, { addSpecialTokens: false });
}

/** The chat a label is embedded from: its name and one-line description, ending with `<answer>`. */
export function labelChatIds(tokenizer: Pick<Tokenizer, 'encode' | 'applyChatTemplate'>, label: string, description: string): Int32Array {
  const prompt = tokenizer.applyChatTemplate([{ role: 'user', content: `Emotion label: ${label}. Description: ${description}` }], { addGenerationPrompt: true });
  return tokenizer.encode(prompt + ANSWER_TAG, { addSpecialTokens: false });
}

/**
 * Final-norm hidden states at the last row of each sequence [C] (float64 copies), by the
 * embedding-only forward in packs of at most `maxTokens` tokens (at least one sequence each).
 */
export async function embedSequences(lm: CausalLM, adapter: LoraAdapter | null, seqs: readonly ArrayLike<number>[], maxTokens = 4096): Promise<Float64Array[]> {
  const C = lm.config.hiddenSize;
  const out: Float64Array[] = [];
  for (let i0 = 0; i0 < seqs.length; ) {
    let i1 = i0 + 1;
    let used = seqs[i0]!.length;
    while (i1 < seqs.length && used + seqs[i1]!.length <= maxTokens) used += seqs[i1++]!.length;
    const chunk = seqs.slice(i0, i1);
    const packed = packSequences(chunk.map((tokens) => ({ tokens, targetStart: tokens.length })));
    const hiddenRows = Int32Array.from(chunk, (_, k) => packed.seqOffsets[k + 1]! - 1);
    const r = await lm.forward({ ...packed, hiddenRows }, { adapter, keepForBackward: false });
    for (let k = 0; k < chunk.length; k++) out.push(Float64Array.from(r.hidden!.subarray(k * C, (k + 1) * C)));
    i0 = i1;
  }
  return out;
}

/** The label embeddings [L * C] (row per label, label order) under the given weights. */
export async function embedLabels(lm: CausalLM, adapter: LoraAdapter | null, labelChats: readonly Int32Array[]): Promise<Float64Array> {
  const rows = await embedSequences(lm, adapter, labelChats);
  const C = lm.config.hiddenSize;
  const E = new Float64Array(rows.length * C);
  rows.forEach((r, l) => E.set(r, l * C));
  return E;
}
