/**
 * Model folders for the export tests: a tiny random model of an architecture (tiny-models.ts:
 * weights whose logits are far from uniform, so greedy tokens are well separated) with a real
 * tokenizer's vocabulary and files (the npm tokenizer packages), and a LoRA adapter on it whose
 * lora_B is not zero (a fresh adapter's B is, and merging it would change nothing).
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CausalLM, saveAdapter, type LoraAdapter, type LoraTarget } from '../../src/model/index.js';
import { lenmlTokenizerDir, type LenmlTokenizerName } from '../../src/tokenizer/index.js';
import { MODEL_FILES, tinyTokenizerJson } from './tokenizer-folders.js';
import { mulberry32, writeTinyModel, type Arch, type TinyModel } from './tiny-models.js';
import type { SafetensorsDtype } from './safetensors-writer.js';

/** The tokenizer ids a model with this tokenizer needs in config.json. */
const TOKENIZER_IDS: Record<LenmlTokenizerName, { vocab_size: number; bos_token_id: number; eos_token_id: number | number[]; pad_token_id?: number }> = {
  qwen2_5: { vocab_size: 151936, bos_token_id: 151643, eos_token_id: 151645 },
  gemma2: { vocab_size: 256000, bos_token_id: 2, eos_token_id: [1, 107], pad_token_id: 0 },
};

/**
 * Writes a tiny `arch` model with `tokenizer`'s vocabulary and tokenizer files into `dir`; 'tiny'
 * keeps the 256-token vocabulary and writes the character-level tokenizer of tokenizer-folders.ts
 * (with a chat template): enough for exports that only copy the tokenizer.
 */
export function writeTokenizedTinyModel(dir: string, arch: Arch, tokenizer: LenmlTokenizerName | 'tiny', opts: { seed?: number; dtype?: SafetensorsDtype } = {}): TinyModel {
  if (tokenizer === 'tiny') {
    const model = writeTinyModel(dir, arch, { seed: opts.seed ?? 1, dtype: opts.dtype ?? 'F32' });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', bos_token: '<s>', chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}" }));
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }));
    return model;
  }
  const ids = TOKENIZER_IDS[tokenizer];
  const overrides: Record<string, unknown> = { vocab_size: ids.vocab_size, bos_token_id: ids.bos_token_id, eos_token_id: ids.eos_token_id };
  if (arch === 'gemma2') overrides['pad_token_id'] = ids.pad_token_id ?? 0;
  const model = writeTinyModel(dir, arch, { seed: opts.seed ?? 1, dtype: opts.dtype ?? 'F32', overrides: overrides as never });
  const src = lenmlTokenizerDir(tokenizer);
  copyFileSync(join(src, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  copyFileSync(join(src, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify(MODEL_FILES[tokenizer].generationConfig, null, 2)}\n`);
  return model;
}

/** A LoRA adapter on `lm` with seeded non-zero lora_B (scale: lora_B values uniform in ±bScale). */
export function nonZeroAdapter(lm: CausalLM, opts: { rank?: number; alpha?: number; targets?: LoraTarget[]; seed?: number; bScale?: number } = {}): LoraAdapter {
  const adapter = lm.createLora({ rank: opts.rank ?? 4, alpha: opts.alpha ?? 8, targets: opts.targets ?? ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], seed: opts.seed ?? 3 });
  const next = mulberry32(opts.seed ?? 3);
  for (const p of adapter.params()) {
    if (!p.name.endsWith('lora_B.weight')) continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    adapter.setParam(p.name, Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * 2 * (opts.bScale ?? 0.05)));
  }
  return adapter;
}

/** Saves `adapter` as a PEFT folder. */
export async function saveTestAdapter(adapter: LoraAdapter, dir: string, base: string): Promise<void> {
  await saveAdapter(adapter, dir, { baseModelNameOrPath: base });
}
