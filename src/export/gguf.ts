/**
 * GGUF export: the trained model (LoRA folded in) as one GGUF v3 file that llama.cpp (and
 * everything built on it: node-llama-cpp, ollama, LM Studio) loads, with the architecture
 * metadata (gguf-arch.ts), the tokenizer and chat template (gguf-tokenizer.ts), and the tensors
 * in F32, F16, BF16 or Q8_0, transformed one at a time in the addon. Written to a temporary
 * sibling, fsynced and renamed into place.
 */
import { rename, unlink } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { loadNative } from '../native.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { fsyncDir, tempSibling } from '../util/atomic-fs.js';
import { ggufModelKvs, modelFacts, planGgufTensor, type GgufDtype, type GgufTensorPlan } from './gguf-arch.js';
import { writeGgufFile } from './gguf-file.js';
import { ggufTokenizerKvs } from './gguf-tokenizer.js';
import type { ExportSource, SourceTensor } from './source.js';

export interface GgufExportOptions {
  dtype: GgufDtype;
  /** general.name (default: the base model's _name_or_path, else its folder name). */
  name?: string;
  onTensor?: (index: number, total: number, name: string) => void;
}

/** Writes `file` (see the file comment); returns its size in bytes. */
export async function exportGguf(source: ExportSource, file: string, opts: GgufExportOptions): Promise<{ bytes: number; tensors: number }> {
  const { dtype } = opts;
  if (!['F32', 'F16', 'BF16', 'Q8_0'].includes(dtype)) throw new RangeError(`GGUF export: dtype must be F32, F16, BF16 or Q8_0, got ${String(dtype)}`);
  const cfgFile = `${source.modelDir}/config.json`;
  const facts = modelFacts(source.config, cfgFile);
  const tokenizer = await loadTokenizer(source.modelDir);
  const ownName = source.config['_name_or_path'];
  const name = opts.name ?? (typeof ownName === 'string' && ownName !== '' ? basename(ownName) : basename(source.modelDir));
  const planned: { plan: GgufTensorPlan; tensor: SourceTensor }[] = [];
  for (const t of source.tensors) {
    const plan = planGgufTensor(facts, t.name, t.shape, dtype);
    if (plan) planned.push({ plan, tensor: t });
  }
  const kvs = [...ggufModelKvs(facts, source.config, name, dtype), ...(await ggufTokenizerKvs(source.modelDir, tokenizer, facts.vocab))];
  const native = loadNative();
  const abs = resolve(file);
  const tmp = tempSibling(abs, 'tmp');
  let bytes: number;
  try {
    bytes = await writeGgufFile(tmp, kvs, planned.map((p) => p.plan), async (i) => {
      const { plan, tensor } = planned[i]!;
      opts.onTensor?.(i, planned.length, tensor.name);
      const [rows, cols] = tensor.shape.length === 2 ? [tensor.shape[0]!, tensor.shape[1]!] : [tensor.shape.reduce((a, b) => a * b, 1), 1];
      return native.transformTensor({ ...(await tensor.read()), rows, cols, addOne: plan.addOne, permuteHeads: plan.permuteHeads, outDtype: plan.type });
    });
    await rename(tmp, abs);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dirname(abs));
  return { bytes, tensors: planned.length };
}
