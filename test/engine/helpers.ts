// Shared by the engine tests: reference generation by repeated full forward passes of CausalLM.
import type { CausalLM, LoraAdapter } from '../../src/model/index.js';

/** The full log-softmax row that predicts the token after `tokens`, from CausalLM.forward. */
export async function nextLogprobs(lm: CausalLM, tokens: readonly number[], adapter?: LoraAdapter | null): Promise<Float64Array> {
  const V = lm.config.vocabSize;
  const M = tokens.length;
  const batch = {
    tokens: Int32Array.from(tokens),
    seqOffsets: Int32Array.of(0, M),
    targetRows: new Int32Array(V).fill(M - 1),
    targetTokens: Int32Array.from({ length: V }, (_, v) => v),
  };
  const r = await lm.forward(batch, { adapter: adapter ?? null, keepForBackward: false });
  return Float64Array.from(r.logp);
}

/** Greedy decoding by one full forward pass per token (no cache): tokens and their log-probs. */
export async function greedyReference(
  lm: CausalLM,
  prompt: readonly number[],
  maxTokens: number,
  adapter?: LoraAdapter | null,
): Promise<{ tokens: number[]; logprobs: number[]; margins: number[] }> {
  const seq = [...prompt];
  const tokens: number[] = [];
  const logprobs: number[] = [];
  const margins: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const lp = await nextLogprobs(lm, seq, adapter);
    let best = 0;
    for (let v = 1; v < lp.length; v++) if (lp[v]! > lp[best]!) best = v;
    let second = -Infinity;
    for (let v = 0; v < lp.length; v++) if (v !== best) second = Math.max(second, lp[v]!);
    tokens.push(best);
    logprobs.push(lp[best]!);
    margins.push(lp[best]! - second);
    seq.push(best);
  }
  return { tokens, logprobs, margins };
}

/** Log-probs of given completion tokens after a prompt, by one forward pass (the trainer's view). */
export async function trainerLogprobs(lm: CausalLM, prompt: readonly number[], completion: ArrayLike<number>, adapter?: LoraAdapter | null): Promise<Float64Array> {
  const all = [...prompt, ...Array.from(completion)];
  const n = completion.length;
  const batch = {
    tokens: Int32Array.from(all),
    seqOffsets: Int32Array.of(0, all.length),
    targetRows: Int32Array.from({ length: n }, (_, i) => prompt.length - 1 + i),
    targetTokens: Int32Array.from(completion),
  };
  const r = await lm.forward(batch, { adapter: adapter ?? null, keepForBackward: false });
  return Float64Array.from(r.logp);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Deterministic prompt of n token ids below 250. */
export function prompt(n: number, k: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 37 + k * 11 + 5) % 250);
}
