/**
 * Engine: batched, paged-KV sampling on the native model (the vLLM stand-in of GRPO's rollouts).
 *
 * The engine shares the model's weights and the adapter's live buffers: after an optimizer step
 * the next generate() samples from the updated policy, with nothing copied. Each generate() opens a
 * native session and drives it one scheduler step at a time; every step runs off the JS thread with
 * the model locked. While a session is open the model is busy: freeing it, stepping an optimizer or
 * editing adapter weights is refused with an error.
 *
 * Log-probs are those of the raw model distribution (temperature 1, before penalties, top-k/p,
 * min-p and the answer constraint), computed like CausalLM.forward's, so they serve directly as
 * GRPO's old_logp for a trainer whose forward applies no temperature.
 */
import type { CausalLM, LoraAdapter } from '../model/index.js';
import { loadNative, type NativeEngineHandle, type NativeEngineRequest, type NativeEngineStats, type NativeStepEvents, type NativeTokenBytes } from '../native.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { tokenByteTable } from './token-bytes.js';

export type FinishReason = 'stop' | 'length' | 'abort';

export interface SamplingOptions {
  /** Samples of this prompt; they share the prompt's KV blocks and its prefill. Default 1. */
  n?: number;
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (<= 0: off). */
  topK?: number;
  /** Keep the smallest most-likely set with this much probability (1: off). */
  topP?: number;
  /** Keep tokens with p >= minP * p_max (0: off). */
  minP?: number;
  /** vLLM's: logits of tokens in the prompt or output divided (> 0) or multiplied (< 0) by this. */
  repetitionPenalty?: number;
  /** Subtracted from the logits of tokens already generated. */
  presencePenalty?: number;
  /** With the sample index and token index it fixes every draw, whatever the batch. Default random. */
  seed?: number;
  /** Generated tokens at most. Default 16. */
  maxTokens?: number;
  /** Generation ends after one of these (kept in the output). Default: the tokenizer's stopTokenIds, or none. */
  stopTokenIds?: readonly number[];
  /** Generation ends right after one of these strings appears in the output (needs a tokenizer). */
  stop?: readonly string[];
  /** After `open` (default "<answer>"), only continuations of one of labels[i] + close (default "</answer>"). */
  constrainedAnswer?: { labels: readonly string[]; open?: string; close?: string };
}

export interface GenerateRequest extends SamplingOptions {
  /** Prompt token ids. */
  prompt: ArrayLike<number>;
}

export interface GeneratedSample {
  /** Generated token ids (a stop token, when one ended it, included). */
  tokens: Int32Array;
  /** log p(token) of each generated token under the raw model distribution. */
  logprobs: Float32Array;
  finishReason: FinishReason;
  /** Decoded text (special tokens skipped), cut right after the stop string that ended it; with a tokenizer only. */
  text?: string;
}

export interface GenerateResult {
  samples: GeneratedSample[];
}

export interface StreamChunk {
  request: number;
  sample: number;
  /** Tokens sampled for this sequence since the last chunk (empty for an abort). */
  tokens: Int32Array;
  logprobs: Float32Array;
  /** Set on the sequence's last chunk. */
  finishReason?: FinishReason;
}

export interface EngineOptions {
  /** KV cache size in bytes. Default: kvMemoryFraction, else 25% of available memory at most 4 GiB (pages are touched lazily). */
  kvBudgetBytes?: number;
  /** KV cache as this share (0, 1] of the memory the OS reports available (vLLM's gpu_memory_utilization). */
  kvMemoryFraction?: number;
  /** Tokens per KV block. Default 16. */
  blockSize?: number;
  /** Tokens run per step: every decode, then prefill chunks up to this. Default 512. */
  maxBatchTokens?: number;
  /** Sequences decoded together at most. Default 256. */
  maxRunning?: number;
  /** Share the prompt's KV blocks and prefill among a request's n samples. Default true. */
  prefixSharing?: boolean;
  /** Enables stop strings, constrained answers, text, and the default stop token ids. */
  tokenizer?: Tokenizer;
  /** A byte table to use instead of the tokenizer's (tests; see token-bytes.ts). */
  tokenBytes?: NativeTokenBytes;
}

export interface GenerateOptions {
  /** The adapter to sample with (its live weights); null or absent = the base model. */
  adapter?: LoraAdapter | null;
  signal?: AbortSignal;
}

export interface EngineStats extends NativeEngineStats {
  /** Prefill rows per second of the steps that ran prefill. */
  prefillTokensPerSecond: number;
  /** Tokens sampled per second in decode-only steps. */
  decodeTokensPerSecond: number;
}

const FINISH: readonly (FinishReason | undefined)[] = [undefined, 'stop', 'length', 'abort'];

/**
 * A request the engine refuses or a sequence it cannot continue; `request` is the index into the
 * requests given to generate()/stream(), so that callers can name their own row (split, CSV line).
 *   prompt_too_long: the prompt alone fills the model's context (`limit` = max positions);
 *   kv_budget:       one sequence needs more KV blocks than the pool holds (`minBudgetBytes` would do);
 *   non_finite:      the model's log-prob of a sampled token is NaN or infinite (non-finite weights or logits).
 */
export class EngineRequestError extends Error {
  constructor(
    message: string,
    readonly kind: 'prompt_too_long' | 'kv_budget' | 'non_finite',
    readonly request: number,
    readonly details: { promptTokens?: number; limit?: number; sequenceTokens?: number; minBudgetBytes?: number; budgetBytes?: number; sample?: number } = {},
  ) {
    super(message);
    this.name = 'EngineRequestError';
  }
}

/** Tokens a native request generates at most when maxTokens is not given (native SamplingParams default). */
const DEFAULT_MAX_TOKENS = 16;

export class Engine {
  private readonly native: NativeEngineHandle;
  private readonly tokenizer: Tokenizer | undefined;
  private busy = false;

  constructor(readonly lm: CausalLM, opts: EngineOptions = {}) {
    this.tokenizer = opts.tokenizer;
    const bytes = opts.tokenBytes ?? (opts.tokenizer ? tokenByteTable(opts.tokenizer, Math.max(opts.tokenizer.vocabSize, lm.config.vocabSize)) : null);
    this.native = loadNative().createEngine(
      lm.native,
      { kvBudgetBytes: opts.kvBudgetBytes, kvMemoryFraction: opts.kvMemoryFraction, blockSize: opts.blockSize, maxBatchTokens: opts.maxBatchTokens, maxRunning: opts.maxRunning, prefixSharing: opts.prefixSharing },
      bytes,
    );
  }

  /** Samples every request to completion; an abort resolves with what was generated ('abort'). */
  async generate(requests: readonly GenerateRequest[], opts: GenerateOptions = {}): Promise<GenerateResult[]> {
    const toks = requests.map((r) => Array.from({ length: r.n ?? 1 }, () => [] as number[]));
    const lps = requests.map((r) => Array.from({ length: r.n ?? 1 }, () => [] as number[]));
    const fins = requests.map((r) => Array.from({ length: r.n ?? 1 }, () => 'abort' as FinishReason));
    for await (const ev of this.events(requests, opts)) {
      for (let i = 0; i < ev.request.length; i++) {
        const r = ev.request[i]!;
        const s = ev.sample[i]!;
        if (ev.token[i]! >= 0) {
          toks[r]![s]!.push(ev.token[i]!);
          lps[r]![s]!.push(ev.logprob[i]!);
        }
        const f = FINISH[ev.finish[i]!];
        if (f) fins[r]![s] = f;
      }
    }
    return requests.map((req, r) => ({
      samples: toks[r]!.map((t, s) => {
        const sample: GeneratedSample = { tokens: Int32Array.from(t), logprobs: Float32Array.from(lps[r]![s]!), finishReason: fins[r]![s]! };
        if (this.tokenizer) sample.text = this.textOf(sample.tokens, sample.finishReason, req.stop);
        return sample;
      }),
    }));
  }

  /** The same generation as an async iterator of per-sequence chunks, one per sampled token. */
  async *stream(requests: readonly GenerateRequest[], opts: GenerateOptions = {}): AsyncGenerator<StreamChunk> {
    for await (const ev of this.events(requests, opts)) {
      for (let i = 0; i < ev.request.length; i++) {
        const hasToken = ev.token[i]! >= 0;
        const chunk: StreamChunk = {
          request: ev.request[i]!,
          sample: ev.sample[i]!,
          tokens: hasToken ? Int32Array.of(ev.token[i]!) : new Int32Array(0),
          logprobs: hasToken ? Float32Array.of(ev.logprob[i]!) : new Float32Array(0),
        };
        const f = FINISH[ev.finish[i]!];
        if (f) chunk.finishReason = f;
        yield chunk;
      }
    }
  }

  /** Throughput and cache figures since creation (or resetStats). */
  stats(): EngineStats {
    const s = this.native.stats();
    return {
      ...s,
      prefillTokensPerSecond: s.prefillSeconds > 0 ? s.prefillTokens / s.prefillSeconds : 0,
      decodeTokensPerSecond: s.decodeSeconds > 0 ? s.decodeOnlyTokens / s.decodeSeconds : 0,
    };
  }

  /** The model's context: prompt + generated tokens of one sequence stop at this many positions. */
  get maxPositions(): number {
    return this.lm.config.maxPositions;
  }

  /**
   * KV bytes one sequence of `tokens` positions (capped at the context) needs: the smallest
   * kvBudgetBytes with which a request of that length is accepted.
   */
  minKvBudgetBytes(tokens: number): number {
    const s = this.native.stats();
    const len = this.maxPositions > 0 ? Math.min(tokens, this.maxPositions) : tokens;
    return Math.ceil(len / s.blockSize) * s.blockBytes;
  }

  /** The KV pool's size in bytes. */
  get kvBudgetBytes(): number {
    const s = this.native.stats();
    return s.numBlocks * s.blockBytes;
  }

  resetStats(): void {
    this.native.resetStats();
  }

  /** Releases the KV cache; refused while a generation runs. */
  free(): void {
    if (this.busy) throw new Error('Engine.free: a generation is running on this engine; abort it first');
    this.native.free();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.free();
  }

  /** The native step loop: start, step until done or aborted; always leaves the session closed. */
  private async *events(requests: readonly GenerateRequest[], opts: GenerateOptions): AsyncGenerator<NativeStepEvents> {
    if (this.busy) throw new Error('Engine: a generation is already running on this engine; await or abort it first');
    const native = requests.map((r, i) => this.nativeRequest(r, i));
    requests.forEach((r, i) => this.checkFits(r, i));
    this.busy = true;
    try {
      const signal = opts.signal;
      if (signal?.aborted) {
        yield abortAll(requests);
        return;
      }
      if (!this.native.start(native, opts.adapter ? opts.adapter.handle : null)) return;
      let active = true;
      while (active) {
        if (signal?.aborted) {
          yield this.native.abort();
          return;
        }
        const ev = await this.native.step();
        active = ev.active;
        checkFinite(ev);
        yield ev;
      }
    } finally {
      if (this.native.active()) this.native.abort();
      this.busy = false;
    }
  }

  /** The engine's length limits, checked here so that the error carries the request index and the figures. */
  private checkFits(r: GenerateRequest, i: number): void {
    const P = r.prompt.length;
    const ctx = this.maxPositions;
    if (ctx > 0 && P >= ctx)
      throw new EngineRequestError(`Engine: requests[${i}]: the prompt has ${P} tokens; the model's context holds ${ctx} positions (config.json max_position_embeddings), with room for at least one generated token`, 'prompt_too_long', i, { promptTokens: P, limit: ctx });
    const longest = P + (r.maxTokens ?? DEFAULT_MAX_TOKENS);
    const need = this.minKvBudgetBytes(longest);
    const have = this.kvBudgetBytes;
    if (need > have) {
      const st = this.native.stats();
      throw new EngineRequestError(
        `Engine: requests[${i}]: one sequence of ${Math.min(longest, ctx > 0 ? ctx : longest)} tokens (prompt ${P} + maxTokens ${r.maxTokens ?? DEFAULT_MAX_TOKENS}) needs ${need / st.blockBytes} KV blocks but the pool holds ${st.numBlocks} (${st.blockBytes} bytes each); raise kvBudgetBytes to at least ${need} or lower maxTokens`,
        'kv_budget', i, { promptTokens: P, sequenceTokens: longest, minBudgetBytes: need, budgetBytes: have },
      );
    }
  }

  private nativeRequest(r: GenerateRequest, i: number): NativeEngineRequest {
    const n = r.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`Engine: requests[${i}].n must be a positive integer, got ${n}`);
    // the tokenizer's stop ids by default (those inside the model's vocabulary: a test model may be smaller)
    const V = this.lm.config.vocabSize;
    const stopTokenIds = r.stopTokenIds ?? (this.tokenizer?.stopTokenIds ?? []).filter((t) => t < V);
    return {
      prompt: Int32Array.from(r.prompt),
      n,
      temperature: r.temperature,
      topK: r.topK,
      topP: r.topP,
      minP: r.minP,
      repetitionPenalty: r.repetitionPenalty,
      presencePenalty: r.presencePenalty,
      seed: r.seed ?? Math.floor(Math.random() * 2 ** 32),
      maxTokens: r.maxTokens,
      stopTokenIds: Int32Array.from(stopTokenIds),
      stop: r.stop ? [...r.stop] : undefined,
      answerLabels: r.constrainedAnswer ? [...r.constrainedAnswer.labels] : undefined,
      answerOpen: r.constrainedAnswer?.open,
      answerClose: r.constrainedAnswer?.close,
    };
  }

  private textOf(tokens: Int32Array, finish: FinishReason, stop: readonly string[] | undefined): string {
    const text = this.tokenizer!.decode(tokens, { skipSpecialTokens: true });
    if (finish !== 'stop' || !stop) return text;
    let end = -1;
    for (const s of stop) {
      const at = text.indexOf(s);
      if (at >= 0 && (end < 0 || at + s.length < end)) end = at + s.length;
    }
    return end >= 0 ? text.slice(0, end) : text;
  }
}

/** The events of aborting requests that never started. */
function abortAll(requests: readonly GenerateRequest[]): NativeStepEvents {
  const req: number[] = [];
  const sample: number[] = [];
  requests.forEach((r, i) => {
    for (let s = 0; s < (r.n ?? 1); s++) {
      req.push(i);
      sample.push(s);
    }
  });
  const k = req.length;
  return {
    request: Int32Array.from(req),
    sample: Int32Array.from(sample),
    token: new Int32Array(k).fill(-1),
    logprob: new Float32Array(k),
    finish: new Uint8Array(k).fill(3),
    active: false,
  };
}

/** Throws when a sampled token's log-prob is NaN or infinite: the logits were (NaN weights, an overflow), and sampling from them is noise. */
function checkFinite(ev: NativeStepEvents): void {
  for (let i = 0; i < ev.token.length; i++) {
    if (ev.token[i]! < 0) continue;
    const lp = ev.logprob[i]!;
    if (!Number.isFinite(lp)) {
      const r = ev.request[i]!;
      throw new EngineRequestError(
        `Engine: requests[${r}] sample ${ev.sample[i]}: the model's log-prob of the sampled token ${ev.token[i]} is ${lp}: its logits are not finite (NaN or infinite weights in the model or adapter, or an overflow); the sample would be noise`,
        'non_finite', r, { sample: ev.sample[i]! },
      );
    }
  }
}
