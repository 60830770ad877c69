// GGUF export (src/export/gguf.ts) read by llama.cpp (node-llama-cpp 3.21.1, CPU): for a tiny model
// of each architecture with a LoRA adapter folded in and a real tokenizer (Qwen2.5's byte-level BPE
// for llama and qwen2, Gemma-2's SentencePiece-style BPE for gemma2), llama.cpp
//   - loads the file, and its own GGUF reader sees the architecture, file type and chat template;
//   - tokenizes the chat-templated prompt text (special tokens included) to our tokenizer's ids;
//   - greedy-decodes the same tokens as our engine (base + adapter, f32) from every prompt.
// The F32 file must match exactly. F16, BF16 and Q8_0 (some archs only, to keep the test short)
// round the weights and llama.cpp's products round the activations too, so there a divergence is
// allowed only at a near tie: where our log-prob of our token exceeds that of llama.cpp's by less
// than TIE_MARGIN (seen once while this was written: Q8_0, llama arch, a margin of 0.04).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { exportModel, type ExportDtype } from '../../src/export/index.js';
import { CausalLM, loadAdapter, type LoraAdapter } from '../../src/model/index.js';
import { Prompter } from '../../src/prompt/index.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { nonZeroAdapter, saveTestAdapter, writeTokenizedTinyModel } from '../helpers/export-models.js';
import { LLAMA_CPP_SKIP_NOTE, nodeLlamaCppDir, readWithLlamaCpp } from '../helpers/llama-cpp-reader.js';
import type { Arch } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-export-gguf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const TIE_MARGIN = 0.1;
const NEW_TOKENS = 8;
const TEXTS = ['My dog died last week and the house feels empty.', 'I finally got the job I wanted!'];
const GGML = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;

interface Setup {
  lm: CausalLM;
  adapter: LoraAdapter;
  tokenizer: Tokenizer;
  adapterDir: string;
  texts: string[];
  prompts: number[][];
  ours: number[][];
}

async function setup(arch: Arch): Promise<Setup> {
  const base = join(root, arch);
  writeTokenizedTinyModel(base, arch, arch === 'gemma2' ? 'gemma2' : 'qwen2_5');
  const lm = await CausalLM.load(base);
  const adapterDir = join(root, `${arch}-adapter`);
  await saveTestAdapter(nonZeroAdapter(lm), adapterDir, base);
  const adapter = await loadAdapter(lm, adapterDir);
  const tokenizer = await loadTokenizer(base);
  const prompter = new Prompter(tokenizer, { labels: ['sad', 'joyful', 'angry', 'afraid'] });
  const rendered = TEXTS.map((text) => prompter.render({ text }));
  const texts = rendered.map((r) => r.prompt);
  // each whole prompt, and its first half (a context that ends mid-text)
  const prompts = rendered.flatMap((r) => [Array.from(r.ids), Array.from(r.ids).slice(0, Math.floor(r.ids.length / 2))]);
  const engine = new Engine(lm, { tokenizer, kvBudgetBytes: 2 ** 26 });
  const results = await engine.generate(prompts.map((prompt) => ({ prompt, temperature: 0, maxTokens: NEW_TOKENS, stopTokenIds: [] })), { adapter });
  engine.free();
  return { lm, adapter, tokenizer, adapterDir, texts, prompts, ours: results.map((r) => Array.from(r.samples[0]!.tokens)) };
}

/** log p(ours) - log p(theirs) after `context`, from our forward (f32, base + adapter). */
async function logprobMargin(s: Setup, context: number[], ours: number, theirs: number): Promise<number> {
  const r = context.length - 1;
  const out = await s.lm.forward(
    { tokens: Int32Array.from(context), seqOffsets: Int32Array.of(0, context.length), targetRows: Int32Array.of(r, r), targetTokens: Int32Array.of(ours, theirs) },
    { adapter: s.adapter, keepForBackward: false },
  );
  return out.logp[0]! - out.logp[1]!;
}

/** Index of the first token llama.cpp's continuation differs at, or -1. */
const firstDifference = (a: readonly number[], b: readonly number[]) => a.findIndex((t, i) => t !== b[i]);

describe.skipIf(!nodeLlamaCppDir)(`GGUF export read by llama.cpp${nodeLlamaCppDir ? '' : ` (skipped: ${LLAMA_CPP_SKIP_NOTE})`}`, () => {
  describe.each([
    ['qwen2', ['f32', 'q8_0']],
    ['gemma2', ['f32']],
    ['llama', ['f32', 'bf16', 'f16']],
  ] as const)('%s', (arch, dtypes) => {
    it(`loads with the tokenizer and chat template, and decodes our greedy tokens (${dtypes.join(', ')})`, async () => {
      const s = await setup(arch);
      try {
        const files: string[] = [];
        for (const dtype of dtypes as readonly ExportDtype[]) {
          const r = await exportModel({ checkpoint: s.adapterDir, format: 'gguf', out: join(root, `${arch}-gguf`), dtype });
          expect([r.dtype, r.weightsKind, r.mergedTensors]).toEqual([dtype.toUpperCase(), 'adapter', 7 * (arch === 'gemma2' ? 4 : 2)]);
          files.push(r.path);
        }
        const readings = await readWithLlamaCpp(files, { texts: s.texts, prompts: s.prompts, newTokens: NEW_TOKENS });
        readings.forEach((ll, k) => {
          const dtype = dtypes[k]!;
          expect(ll.metadata['general.architecture']).toBe(arch);
          expect(ll.metadata['general.file_type']).toBe({ f32: 0, f16: 1, q8_0: 7, bf16: 32 }[dtype]);
          expect(ll.metadata['tokenizer.chat_template']).toBe(s.tokenizer.chatTemplate!.source);
          expect(ll.metadata['tokenizer.ggml.eos_token_id']).toBe(s.tokenizer.eosTokenId);
          expect(ll.tensorTypes['blk.0.attn_q.weight']).toBe(GGML[dtype.toUpperCase() as keyof typeof GGML]);
          expect(ll.tensorTypes['blk.0.attn_norm.weight']).toBe(GGML.F32);
          s.texts.forEach((_, i) => expect(ll.tokens[i], `llama.cpp's tokens of prompt text ${i}`).toEqual(s.prompts[2 * i]));
        });
        for (const [k, ll] of readings.entries()) {
          const dtype = dtypes[k]!;
          for (let p = 0; p < s.prompts.length; p++) {
            const theirs = ll.greedy[p]!;
            const at = firstDifference(s.ours[p]!, theirs);
            if (dtype === 'f32' || at < 0) {
              expect(theirs, `${arch} ${dtype} prompt ${p}`).toEqual(s.ours[p]);
              continue;
            }
            const margin = await logprobMargin(s, [...s.prompts[p]!, ...s.ours[p]!.slice(0, at)], s.ours[p]![at]!, theirs[at]!);
            expect(margin, `${arch} ${dtype} prompt ${p}: llama.cpp chose ${theirs[at]} over our ${s.ours[p]![at]} at token ${at}`).toBeLessThan(TIE_MARGIN);
          }
        }
      } finally {
        s.lm.free();
      }
    });
  });
});
