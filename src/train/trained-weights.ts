/**
 * The trained weights of a run, in the one layout every saver here uses:
 *
 *   adapter/              a LoRA adapter in PEFT's format (LoRA runs), or
 *   model.safetensors     every trained weight under its Hugging Face name, F32 (full fine-tunes)
 *
 * A trainer checkpoint (`checkpoint-<step>/`) and the best model (`best/`) both hold one of the
 * two (a full fine-tune's best/ also holds the base's config.json, generation_config.json and
 * tokenizer files, so that it is itself a model folder transformers or CausalLM.load can open); a plain PEFT adapter folder (adapter_config.json at its top) is read too. locateWeights says
 * which a folder holds, so a caller can load the base model the right way (a full fine-tune needs
 * `CausalLM.load(dir, { fullFinetune: true })`), and applyWeights puts them on the model.
 */
import { copyFile, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ADAPTER_CONFIG_NAME, configJsonText, loadAdapter, readSafetensors, saveAdapter, writeSafetensors, type CausalLM, type LoraAdapter } from '../model/index.js';

/** The adapter's subfolder in a checkpoint. */
export const ADAPTER_DIR = 'adapter';
/** The full fine-tune weights in a checkpoint. */
export const MODEL_FILE = 'model.safetensors';

/** Where a folder's trained weights are: a PEFT adapter folder, or a full-weights file. */
export type WeightsLocation = { kind: 'adapter'; dir: string } | { kind: 'full'; file: string };

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/**
 * What `dir` holds: `<dir>/adapter/` (a LoRA checkpoint), `<dir>/model.safetensors` (a full
 * fine-tune checkpoint) or `<dir>/adapter_config.json` (a PEFT adapter folder itself). The error
 * names the folder and what was looked for.
 */
export async function locateWeights(dir: string): Promise<WeightsLocation> {
  const abs = resolve(dir);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new Error(`${abs}: no such folder (expected a checkpoint folder or a PEFT adapter folder)`);
  }
  if (!st.isDirectory()) throw new Error(`${abs}: not a folder (expected a checkpoint folder or a PEFT adapter folder)`);
  if (await isFile(join(abs, ADAPTER_DIR, ADAPTER_CONFIG_NAME))) return { kind: 'adapter', dir: join(abs, ADAPTER_DIR) };
  if (await isFile(join(abs, ADAPTER_CONFIG_NAME))) return { kind: 'adapter', dir: abs };
  if (await isFile(join(abs, MODEL_FILE))) return { kind: 'full', file: join(abs, MODEL_FILE) };
  throw new Error(`${abs}: holds no trained weights (looked for ${ADAPTER_DIR}/${ADAPTER_CONFIG_NAME}, ${ADAPTER_CONFIG_NAME} and ${MODEL_FILE})`);
}

/** The base model's files a full fine-tune's model folder carries beside its weights (copied when present). */
export const MODEL_FOLDER_FILES = [
  'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'tokenizer.model', 'chat_template.jinja',
] as const;

/**
 * Writes the trained weights into `dir` (an existing, empty folder) in the layout above. An
 * adapter's base_model_name_or_path is the base model's resolved folder (what PEFT records for a
 * base loaded from a folder, and what it and vLLM load the base from), unless given. With
 * `modelFolder`, full weights come with the base's config.json (torch_dtype float32, as stored)
 * and tokenizer files.
 */
export async function writeTrainedWeights(
  dir: string,
  parts: { lm: CausalLM; adapter: LoraAdapter | null },
  opts: { baseModelNameOrPath?: string | null; modelFolder?: boolean } = {},
): Promise<void> {
  if (parts.adapter) {
    await saveAdapter(parts.adapter, join(dir, ADAPTER_DIR), { baseModelNameOrPath: opts.baseModelNameOrPath ?? resolve(parts.lm.dir) });
    return;
  }
  const params = parts.lm.params();
  if (params.length === 0) throw new Error('writeTrainedWeights: no adapter and the model has no trainable weights (load it with fullFinetune: true)');
  await writeSafetensors(join(dir, MODEL_FILE), params.map((p) => ({ name: p.name, shape: p.shape, data: parts.lm.getParam(p.name) })), { metadata: { format: 'pt' } });
  if (!opts.modelFolder) return;
  const base = resolve(parts.lm.dir);
  const config = JSON.parse(await readFile(join(base, 'config.json'), 'utf8')) as Record<string, unknown>;
  const stored: Record<string, unknown> = { ...config, torch_dtype: 'float32' };
  if ('dtype' in config) stored['dtype'] = 'float32';
  await writeFile(join(dir, 'config.json'), configJsonText(stored));
  for (const f of MODEL_FOLDER_FILES) if (await isFile(join(base, f))) await copyFile(join(base, f), join(dir, f));
}

/**
 * Puts the weights at `where` on `lm`: returns the loaded adapter, or null for full weights (set
 * in place; `lm` must have been loaded with fullFinetune: true). Every trained tensor of the model
 * must be in the file with its shape, and the file may hold no other.
 */
export async function applyWeights(lm: CausalLM, where: WeightsLocation): Promise<LoraAdapter | null> {
  if (where.kind === 'adapter') return loadAdapter(lm, where.dir);
  if (!lm.config.fullFinetune) throw new Error(`${where.file}: full fine-tune weights need the model loaded with fullFinetune: true`);
  const params = lm.params();
  const tensors = await readSafetensors(where.file);
  const known = new Set(params.map((p) => p.name));
  const extra = [...tensors.keys()].filter((n) => !known.has(n));
  if (extra.length > 0) throw new Error(`${where.file}: tensor "${extra[0]}" is not a weight of the ${lm.config.architecture} model at ${lm.dir}${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`);
  for (const p of params) {
    const t = tensors.get(p.name);
    if (!t) throw new Error(`${where.file}: tensor "${p.name}" is missing`);
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i]))
      throw new Error(`${where.file}: tensor "${p.name}" has shape [${t.shape.join(', ')}], the model at ${lm.dir} expects [${p.shape.join(', ')}]`);
  }
  for (const p of params) lm.setParam(p.name, tensors.get(p.name)!.data);
  return null;
}
