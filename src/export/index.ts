/**
 * Exporting a trained model for other tools: `exportModel({ checkpoint, format, out })`.
 *
 *   format 'merged'  a Hugging Face model folder (merged.ts), F32 or BF16
 *   format 'gguf'    one GGUF file for llama.cpp (gguf.ts), F32, F16, BF16 or Q8_0
 *
 * `dtype` 'auto' (the default) keeps the base model's stored dtype (config.json torch_dtype:
 * float32 -> F32, bfloat16 -> BF16, float16 -> F16 for GGUF and F32 for a merged folder).
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathKind } from '../util/atomic-fs.js';
import type { GgufDtype } from './gguf-arch.js';
import { exportGguf } from './gguf.js';
import { exportMerged, type MergedDtype } from './merged.js';
import { ExportSource, type ExportSourceOptions } from './source.js';

export { ExportSource, type ExportSourceOptions, type SourceTensor } from './source.js';
export { exportMerged, DEFAULT_MAX_SHARD_BYTES, TOKENIZER_FILES, type MergedDtype, type MergedExportOptions } from './merged.js';
export { exportGguf, type GgufExportOptions } from './gguf.js';
export type { GgufDtype } from './gguf-arch.js';

export type ExportFormat = 'merged' | 'gguf';
export type ExportDtype = 'auto' | 'f32' | 'bf16' | 'f16' | 'q8_0';

export interface ExportOptions extends ExportSourceOptions {
  format: ExportFormat;
  /** merged: the folder to write. gguf: a folder (the file is <out>/<model>-<dtype>.gguf) or a path ending in .gguf. */
  out: string;
  /** Default 'auto' (see the file comment). */
  dtype?: ExportDtype;
  /** Replace an existing export (a model folder, or the .gguf file); default false. */
  overwrite?: boolean;
  /** merged: shard above this many bytes (default transformers' 5 GB). */
  maxShardBytes?: number;
  onTensor?: (index: number, total: number, name: string) => void;
}

export interface ExportResult {
  format: ExportFormat;
  /** The folder (merged) or file (gguf) written. */
  path: string;
  /** The stored dtype of the 2-D tensors. */
  dtype: GgufDtype;
  bytes: number;
  modelDir: string;
  /** The trained weights folded in; null for the base model alone. */
  weightsDir: string | null;
  weightsKind: 'adapter' | 'full' | null;
  /** Tensors with a LoRA update folded in. */
  mergedTensors: number;
}

function chooseDtype(requested: ExportDtype, format: ExportFormat, config: Record<string, unknown>): GgufDtype {
  if (requested !== 'auto') {
    const d = requested.toUpperCase() as GgufDtype;
    if (format === 'merged' && d !== 'F32' && d !== 'BF16') throw new Error(`dtype "${requested}": a merged folder is written in f32 or bf16`);
    if (!['F32', 'BF16', 'F16', 'Q8_0'].includes(d)) throw new Error(`dtype "${requested}": expected auto, f32, bf16, f16 or q8_0`);
    return d;
  }
  const stored = config['torch_dtype'] ?? config['dtype'];
  if (stored === 'bfloat16') return 'BF16';
  if (stored === 'float16') return format === 'gguf' ? 'F16' : 'F32';
  return 'F32';
}

/** Refuses to replace anything but an earlier export, and that only with `overwrite`. */
async function checkOutput(path: string, kind: 'dir' | 'file', overwrite: boolean): Promise<void> {
  const what = await pathKind(path);
  if (what === 'absent') return;
  if (kind === 'file') {
    if (what === 'dir') throw new Error(`${path}: is a folder; refusing to replace it with the GGUF file`);
    if (!overwrite) throw new Error(`${path}: exists; pass overwrite (--overwrite) to replace it`);
    return;
  }
  if (what !== 'dir') throw new Error(`${path}: exists and is not a folder; refusing to replace it`);
  const entries = await readdir(path);
  if (entries.length === 0) return;
  if (!entries.includes('config.json')) throw new Error(`${path}: exists and is not a model folder (no config.json); refusing to replace it`);
  if (!overwrite) throw new Error(`${path}: exists; pass overwrite (--overwrite) to replace it`);
}

export async function exportModel(opts: ExportOptions): Promise<ExportResult> {
  if (opts.format !== 'merged' && opts.format !== 'gguf') throw new Error(`format "${String(opts.format)}": expected merged or gguf`);
  const source = await ExportSource.open(opts);
  try {
    const dtype = chooseDtype(opts.dtype ?? 'auto', opts.format, source.config);
    const base = { format: opts.format, dtype, modelDir: source.modelDir, weightsDir: source.weightsDir, weightsKind: source.weights?.kind ?? null, mergedTensors: source.tensors.filter((t) => t.merged).length };
    const onTensor = opts.onTensor ? { onTensor: opts.onTensor } : {};
    if (opts.format === 'merged') {
      const out = resolve(opts.out);
      await checkOutput(out, 'dir', opts.overwrite ?? false);
      const r = await exportMerged(source, out, { dtype: dtype as MergedDtype, ...(opts.maxShardBytes ? { maxShardBytes: opts.maxShardBytes } : {}), ...onTensor });
      return { ...base, path: out, bytes: r.bytes };
    }
    let file = resolve(opts.out);
    if (!file.toLowerCase().endsWith('.gguf')) {
      if ((await pathKind(file)) === 'other') throw new Error(`${file}: exists and is not a folder (give a folder, or a path ending in .gguf)`);
      const stem = (source.weightsDir ? 'model' : 'base').replace(/[^A-Za-z0-9._-]/g, '_');
      file = join(file, `${stem}-${dtype.toLowerCase()}.gguf`);
    }
    await checkOutput(file, 'file', opts.overwrite ?? false);
    await mkdir(resolve(file, '..'), { recursive: true });
    const r = await exportGguf(source, file, { dtype, ...onTensor });
    return { ...base, path: file, bytes: r.bytes };
  } finally {
    await source.close();
  }
}
