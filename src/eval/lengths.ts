/**
 * Length checks before generating, in the terms a CLI user typed: a prompt that does not fit the
 * model's context (named by split and row), a --max_new_tokens the context cannot hold, and a KV
 * cache (--kv_memory_budget) too small for the longest sequence, with the minimum that would work.
 * Run once the prompts are rendered and the engine exists, before any training or evaluation.
 */
import type { Engine } from '../engine/index.js';
import type { Tokenizer } from '../tokenizer/index.js';

export interface PromptSet {
  /** "train", "valid", ... */
  split: string;
  prompts: readonly ArrayLike<number>[];
}

export interface LengthCheckOptions {
  engine: Engine;
  maxNewTokens: number;
  sets: readonly PromptSet[];
  /** How the KV budget was given, e.g. "--kv_memory_budget 0.3" (default "the KV budget"). */
  kvBudgetText?: string;
  /** Prompts are cut or skipped to this length before generation (TRL's max_prompt_length); null: none. */
  maxPromptLength?: number | null;
  /** Warnings (a budget the context caps); default: none. */
  warn?: (message: string) => void;
}

export class LengthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LengthError';
  }
}

/** Throws a LengthError naming the flag, split and row; returns the longest prompt checked. */
export function checkGenerationLengths(o: LengthCheckOptions): { longestPrompt: number } {
  const ctx = o.engine.maxPositions;
  const m = o.maxNewTokens;
  const ctxText = `the model's context of ${ctx} positions (config.json max_position_embeddings)`;
  if (ctx > 0 && m >= ctx) throw new LengthError(`--max_new_tokens ${m} does not fit ${ctxText}: it leaves no room for a prompt; use at most ${ctx - 1} (far less in practice)`);
  let longest = 0;
  let where = '';
  for (const s of o.sets) {
    s.prompts.forEach((p, i) => {
      const len = o.maxPromptLength != null ? Math.min(p.length, o.maxPromptLength) : p.length;
      if (ctx > 0 && len >= ctx)
        throw new LengthError(
          `${s.split} row ${i}: the prompt has ${len} tokens and does not fit ${ctxText}; ` +
            (o.maxPromptLength != null ? `lower --max_prompt_length (${o.maxPromptLength}) below ${ctx}` : 'pass --max_prompt_length to cut (--long_prompts=truncate) or skip (--long_prompts=skip) such prompts'),
        );
      if (len > longest) {
        longest = len;
        where = `${s.split} row ${i}`;
      }
    });
  }
  if (longest === 0) return { longestPrompt: 0 };
  if (ctx > 0 && longest + m > ctx)
    o.warn?.(`warning: --max_new_tokens ${m} with the longest prompt (${where}, ${longest} tokens) exceeds ${ctxText}: such completions end at the context, after ${ctx - longest} tokens`);
  const seq = ctx > 0 ? Math.min(longest + m, ctx) : longest + m;
  const need = o.engine.minKvBudgetBytes(seq);
  const have = o.engine.kvBudgetBytes;
  if (need > have)
    throw new LengthError(
      `${o.kvBudgetText ?? 'the KV budget'} gives a KV cache of ${have} bytes, too small for one sequence of ${seq} tokens ` +
        `(the longest prompt, ${where}, has ${longest} tokens, plus --max_new_tokens ${m}): it needs at least ${need} bytes (${(need / 2 ** 20).toFixed(1)} MiB); ` +
        `raise --kv_memory_budget to ${need} or more, or lower --max_new_tokens${o.maxPromptLength == null ? ' or pass --max_prompt_length' : ''}`,
    );
  return { longestPrompt: longest };
}

/**
 * Refuses, before tokenizing, a text that cannot fit the context whatever its tokens: a token
 * covers at most tokenizer.maxTokenChars characters, so a text longer than 2 x that x the context
 * (x2 for normalizers that merge characters) has more tokens than the context holds. Tokenizing
 * and templating a 50 MB text would take minutes and gigabytes first.
 */
export function checkTextBeforeTokenizing(text: string, tokenizer: Tokenizer, ctx: number, where: string, maxPromptLength?: number | null): void {
  if (ctx <= 0) return;
  const bound = 2 * tokenizer.maxTokenChars * ctx;
  if (text.length > bound && maxPromptLength == null)
    throw new LengthError(
      `${where}: the text has ${text.length} characters, more than ${bound} (2 x the tokenizer's longest token, ${tokenizer.maxTokenChars} characters, x the model's context of ${ctx} positions): ` +
        'its prompt cannot fit the context; shorten it (rrec-emotion preprocess bounds texts with --max_text_length) or pass --max_prompt_length to cut such prompts',
    );
}

/**
 * With max_prompt_length set: a text far longer than any prompt that could be kept is cut to its
 * last 2 x maxTokenChars x maxPromptLength characters before tokenizing. Those still make at least
 * 2 x maxPromptLength tokens, so truncation (the last maxPromptLength tokens) and skipping decide
 * as they would on the whole text, without tokenizing megabytes.
 */
export function boundTextForPrompt(text: string, tokenizer: Tokenizer, maxPromptLength: number): string {
  const keep = 2 * tokenizer.maxTokenChars * maxPromptLength;
  return text.length > keep ? text.slice(text.length - keep) : text;
}
