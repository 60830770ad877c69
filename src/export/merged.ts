/**
 * Merged export: the trained model as a Hugging Face model folder that transformers'
 * `AutoModelForCausalLM.from_pretrained(dir)`, vLLM or this project's `CausalLM.load` read:
 *
 *   config.json               the base's, torch_dtype set to the stored dtype
 *   generation_config.json    the base's, else bos/eos/pad from config.json (as save_pretrained does)
 *   tokenizer.json, tokenizer_config.json, ...   the base's tokenizer files, copied; a chat template
 *                             the base has only through this project's built-in (Gemma-2) is written
 *                             into tokenizer_config.json
 *   model.safetensors         every weight, LoRA folded in (W + scale * B A, in the addon), F32 or
 *                             BF16; above maxShardBytes, model-0000k-of-0000n.safetensors shards and
 *                             model.safetensors.index.json as transformers writes them
 *
 * Written into a temporary sibling folder and renamed into place; one tensor is in memory at a time.
 */
import { copyFile, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configJsonText } from '../model/create.js';
import { encodeSafetensorsHeader } from '../model/safetensors.js';
import { loadNative } from '../native.js';
import { loadTokenizer } from '../tokenizer/index.js';
import { pathKind, writeDirAtomic, writeFileSynced } from '../util/atomic-fs.js';
import { INDEX_FILE, SINGLE_FILE } from './model-tensors.js';
import type { ExportSource, SourceTensor } from './source.js';

/** Tokenizer files a Hugging Face folder may hold (copied when present). */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'tokenizer.model', 'chat_template.jinja',
] as const;

/** transformers' default max_shard_size ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

export type MergedDtype = 'F32' | 'BF16';

export interface MergedExportOptions {
  dtype: MergedDtype;
  /** Shards above this many bytes of tensor data (default 5 GB, transformers' default). */
  maxShardBytes?: number;
  /** Called before each tensor is written (index from 0). */
  onTensor?: (index: number, total: number, name: string) => void;
}

const TORCH_DTYPE: Record<MergedDtype, string> = { F32: 'float32', BF16: 'bfloat16' };
const BYTES: Record<MergedDtype, number> = { F32: 4, BF16: 2 };

/** Groups tensors into shards in order, a new shard when the next tensor would pass the limit. */
function planShards(tensors: readonly SourceTensor[], bytesOf: (t: SourceTensor) => number, max: number): SourceTensor[][] {
  const shards: SourceTensor[][] = [];
  let current: SourceTensor[] = [];
  let size = 0;
  for (const t of tensors) {
    const b = bytesOf(t);
    if (current.length > 0 && size + b > max) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += b;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

async function writeShard(file: string, tensors: readonly SourceTensor[], dtype: MergedDtype, step: (t: SourceTensor) => void): Promise<void> {
  const native = loadNative();
  const entries = tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * BYTES[dtype] }));
  const { head, order } = encodeSafetensorsHeader(entries, { format: 'pt' });
  const fh = await open(file, 'wx');
  try {
    await fh.write(head);
    for (const i of order) {
      const t = tensors[i]!;
      step(t);
      const [rows, cols] = t.shape.length === 2 ? [t.shape[0]!, t.shape[1]!] : [t.shape.reduce((a, b) => a * b, 1), 1];
      const bytes = await native.transformTensor({ ...(await t.read()), rows, cols, outDtype: dtype });
      await fh.write(bytes);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The tokenizer_config.json to write: the base's, with the chat template added when the folder has
 * none of its own and this project's loader supplies its built-in one (Gemma-2's npm tokenizer).
 */
async function tokenizerConfigText(modelDir: string): Promise<string> {
  const text = await readFile(join(modelDir, 'tokenizer_config.json'), 'utf8');
  const cfg = JSON.parse(text) as Record<string, unknown>;
  if (cfg['chat_template'] != null || (await pathKind(join(modelDir, 'chat_template.jinja'))) === 'other') return text;
  const tok = await loadTokenizer(modelDir);
  if (tok.chatTemplate === null) return text;
  return `${JSON.stringify({ ...cfg, chat_template: tok.chatTemplate.source }, null, 2)}\n`;
}

/** Writes the merged model folder `outDir` (see the file comment). */
export async function exportMerged(source: ExportSource, outDir: string, opts: MergedExportOptions): Promise<{ files: string[]; bytes: number }> {
  const { dtype } = opts;
  if (dtype !== 'F32' && dtype !== 'BF16') throw new RangeError(`merged export: dtype must be F32 or BF16, got ${String(dtype)}`);
  const modelDir = source.modelDir;
  if ((await pathKind(join(modelDir, 'tokenizer.json'))) !== 'other')
    throw new Error(`${modelDir}: has no tokenizer.json; a merged model folder needs the tokenizer (copy it into the base model folder)`);
  const bytesOf = (t: SourceTensor) => t.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
  const total = source.tensors.reduce((s, t) => s + bytesOf(t), 0);
  const shards = planShards(source.tensors, bytesOf, opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES);
  const names = shards.length === 1 ? [SINGLE_FILE] : shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const files: string[] = [];

  await writeDirAtomic(outDir, async (tmp) => {
    const config: Record<string, unknown> = { ...source.config, torch_dtype: TORCH_DTYPE[dtype] };
    if ('dtype' in source.config) config['dtype'] = TORCH_DTYPE[dtype];
    await writeFileSynced(join(tmp, 'config.json'), configJsonText(config));
    files.push('config.json');

    const gen = join(modelDir, 'generation_config.json');
    if ((await pathKind(gen)) === 'other') await copyFile(gen, join(tmp, 'generation_config.json'));
    else {
      const c = source.config;
      const fields = Object.fromEntries(['bos_token_id', 'eos_token_id', 'pad_token_id'].filter((k) => c[k] != null).map((k) => [k, c[k]]));
      await writeFileSynced(join(tmp, 'generation_config.json'), `${JSON.stringify({ _from_model_config: true, ...fields }, null, 2)}\n`);
    }
    files.push('generation_config.json');

    for (const f of TOKENIZER_FILES) {
      const from = join(modelDir, f);
      if ((await pathKind(from)) !== 'other') continue;
      if (f === 'tokenizer_config.json') await writeFileSynced(join(tmp, f), await tokenizerConfigText(modelDir));
      else await copyFile(from, join(tmp, f));
      files.push(f);
    }

    let done = 0;
    for (let s = 0; s < shards.length; s++) {
      await writeShard(join(tmp, names[s]!), shards[s]!, dtype, (t) => opts.onTensor?.(done++, source.tensors.length, t.name));
      files.push(names[s]!);
    }
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      shards.forEach((shard, s) => shard.forEach((t) => (weightMap[t.name] = names[s]!)));
      const sorted = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
      await writeFileSynced(join(tmp, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2)}\n`);
      files.push(INDEX_FILE);
    }
  });
  return { files, bytes: total };
}
