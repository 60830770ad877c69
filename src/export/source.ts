/**
 * What an export reads: a base model folder plus, optionally, trained weights on it, resolved the
 * way `rrec-emotion eval` resolves them (src/train/trained-model.ts): a checkpoint-<step>/ or
 * best/ folder of a run (LoRA or full fine-tune), a run folder (its best/), or a PEFT adapter
 * folder (its base: --model, else its adapter_config.json's base_model_name_or_path when that is a
 * model folder here, else the built-in model).
 *
 * The tensors are listed in transformers' module order, each with what the native transform needs:
 * the stored bytes (from the base folder, or the full fine-tune's model.safetensors), and for a
 * LoRA-adapted projection its lora_A / lora_B bytes and scale (alpha / r, or alpha / sqrt(r)
 * with rsLoRA), so that the merge W + scale * B A happens in the addon.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ADAPTER_WEIGHTS_NAME, checkPerLayerTargets, readAdapterConfig, type LoadedAdapterConfig } from '../model/peft.js';
import type { NativeStoredDtype, NativeTensorTransform } from '../native.js';
import { locateTrainedModel } from '../train/trained-model.js';
import type { RunInfo } from '../train/run-info.js';
import type { WeightsLocation } from '../train/trained-weights.js';
import { pathKind } from '../util/atomic-fs.js';
import { ModelTensors } from './model-tensors.js';

export interface ExportSourceOptions {
  /** Trained weights: checkpoint-<step>/, best/, a run folder or a PEFT adapter folder; absent: the base model alone. */
  checkpoint?: string | null;
  /** Base model: 'tiny', a paths-registry name or a folder (default: the run's, see above). */
  model?: string | null;
  pathsFile?: string | null;
  /** Parent of the built-in model's folder (default "runs"). */
  outputDir?: string;
  /** Seed of the built-in model when it is first built (default 42). */
  seed?: number;
}

/** A tensor to export: its HF name and shape, and the inputs of its native transform. */
export interface SourceTensor {
  name: string;
  shape: number[];
  /** The stored dtype of the weight (before any merge). */
  dtype: NativeStoredDtype;
  /** Whether a LoRA update is folded into it. */
  merged: boolean;
  /** Reads the bytes: the transform's src, srcDtype and lora. */
  read(): Promise<Pick<NativeTensorTransform, 'src' | 'srcDtype' | 'lora'>>;
}

/** Module order within a decoder layer (transformers' declaration order). */
const LAYER_ORDER = [
  'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj',
  'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj',
  'input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm', 'post_feedforward_layernorm',
];

/** Sort key: embeddings, layers (by index, then module), final norm, LM head, anything else. */
function orderKey(name: string): [number, number, number, string] {
  if (name === 'model.embed_tokens.weight') return [0, 0, 0, name];
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  if (m) {
    const at = LAYER_ORDER.indexOf(m[2]!);
    return [1, Number(m[1]), at < 0 ? LAYER_ORDER.length : at * 2 + (m[3] === 'bias' ? 1 : 0), name];
  }
  if (name === 'model.norm.weight') return [2, 0, 0, name];
  if (name === 'lm_head.weight') return [3, 0, 0, name];
  return [4, 0, 0, name];
}

export function compareTensorNames(a: string, b: string): number {
  const x = orderKey(a), y = orderKey(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x[3] < y[3] ? -1 : x[3] > y[3] ? 1 : 0;
}

/** Buffers some checkpoints carry that are not weights (recomputed by the model). */
const NOT_WEIGHTS = /\.rotary_emb\.inv_freq$/;

async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : `not valid JSON (${(e as Error).message})`}`, { cause: e });
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${file}: not a JSON object`);
  return v as Record<string, unknown>;
}

interface AdapterTensors {
  config: LoadedAdapterConfig;
  tensors: ModelTensors;
  file: string;
  scale: number;
  /** base weight name -> [lora_A name, lora_B name] as stored in the file */
  pairs: Map<string, [string, string]>;
}

/** Pairs every lora_A / lora_B of the adapter with its base weight, checking names and shapes. */
async function openAdapter(dir: string, base: ModelTensors, numLayers: number): Promise<AdapterTensors> {
  const config = await readAdapterConfig(dir);
  checkPerLayerTargets(config.file, config.perLayerTargets, numLayers);
  const file = join(dir, ADAPTER_WEIGHTS_NAME);
  const tensors = await ModelTensors.openFile(file);
  try {
    const { rank, alpha, rslora, targets } = config.lora;
    const byCanonical = new Map<string, string>();
    for (const name of tensors.names()) {
      const canonical = name.replace(/\.(lora_[AB])\.default\.weight$/, '.$1.weight');
      if (byCanonical.has(canonical)) throw new Error(`${file}: tensor "${name}" holds the same tensor as "${byCanonical.get(canonical)}"`);
      byCanonical.set(canonical, name);
    }
    const pairs = new Map<string, [string, string]>();
    for (let l = 0; l < numLayers; l++) {
      for (const t of targets) {
        const module = `model.layers.${l}.${t === 'gate_proj' || t === 'up_proj' || t === 'down_proj' ? 'mlp' : 'self_attn'}.${t}`;
        const weight = `${module}.weight`;
        const aName = byCanonical.get(`base_model.model.${module}.lora_A.weight`);
        const bName = byCanonical.get(`base_model.model.${module}.lora_B.weight`);
        if (aName === undefined || bName === undefined)
          throw new Error(`${file}: tensor "base_model.model.${module}.lora_${aName === undefined ? 'A' : 'B'}.weight" is missing (adapter_config.json targets ${targets.join(', ')})`);
        const w = base.info(weight).shape;
        const a = tensors.info(aName).shape, b = tensors.info(bName).shape;
        if (a.length !== 2 || a[0] !== rank || a[1] !== w[1]) throw new Error(`${file}: tensor "${aName}" has shape [${a.join(', ')}], expected [${rank}, ${w[1]}] (lora_A is [r, in_features])`);
        if (b.length !== 2 || b[0] !== w[0] || b[1] !== rank) throw new Error(`${file}: tensor "${bName}" has shape [${b.join(', ')}], expected [${w[0]}, ${rank}] (lora_B is [out_features, r])`);
        pairs.set(weight, [aName, bName]);
        byCanonical.delete(`base_model.model.${module}.lora_A.weight`);
        byCanonical.delete(`base_model.model.${module}.lora_B.weight`);
      }
    }
    const extra = [...byCanonical.values()];
    if (extra.length > 0) throw new Error(`${file}: tensor "${extra[0]}" belongs to no ${targets.join('/')} weight of the ${numLayers}-layer base model${extra.length > 1 ? ` (and ${extra.length - 1} more)` : ''}`);
    return { config, tensors, file, scale: rslora ? alpha / Math.sqrt(rank) : alpha / rank, pairs };
  } catch (e) {
    await tensors.close();
    throw e;
  }
}

/** An opened export source; close() releases its files. */
export class ExportSource {
  private constructor(
    /** The base model's folder. */
    readonly modelDir: string,
    /** The base model's config.json. */
    readonly config: Record<string, unknown>,
    /** The trained weights, or null for the base model alone. */
    readonly weights: WeightsLocation | null,
    readonly weightsDir: string | null,
    readonly run: RunInfo | null,
    /** The tensors to export, in module order. */
    readonly tensors: SourceTensor[],
    private readonly opened: ModelTensors[],
  ) {}

  static async open(opts: ExportSourceOptions = {}): Promise<ExportSource> {
    let model = opts.model ?? null;
    if (model === null && opts.checkpoint) model = await adapterBaseFolder(opts.checkpoint);
    const loc = await locateTrainedModel({
      model,
      pathsFile: opts.pathsFile ?? null,
      weights: opts.checkpoint ?? null,
      outputDir: opts.outputDir ?? 'runs',
      seed: opts.seed ?? 42,
    });
    const modelDir = resolve(loc.modelDir);
    const config = await readJsonObject(join(modelDir, 'config.json'));
    const numLayers = config['num_hidden_layers'];
    if (typeof numLayers !== 'number' || !Number.isSafeInteger(numLayers) || numLayers <= 0)
      throw new Error(`${join(modelDir, 'config.json')}: "num_hidden_layers" must be a positive integer, got ${JSON.stringify(numLayers)}`);
    const tied = config['tie_word_embeddings'] ?? (config['model_type'] === 'gemma2');

    const opened: ModelTensors[] = [];
    try {
      const base = await ModelTensors.openDir(modelDir);
      opened.push(base);
      let full: ModelTensors | null = null;
      let adapter: AdapterTensors | null = null;
      if (loc.weights?.kind === 'full') {
        full = await ModelTensors.openFile(loc.weights.file);
        opened.push(full);
        for (const name of full.names()) {
          if (!base.has(name)) throw new Error(`${loc.weights.file}: tensor "${name}" is not a weight of the model at ${modelDir}`);
          const [s, t] = [full.info(name).shape, base.info(name).shape];
          if (s.join() !== t.join()) throw new Error(`${loc.weights.file}: tensor "${name}" has shape [${s.join(', ')}], the model at ${modelDir} has [${t.join(', ')}]`);
        }
      } else if (loc.weights?.kind === 'adapter') {
        adapter = await openAdapter(loc.weights.dir, base, numLayers);
        opened.push(adapter.tensors);
      }
      const names = base.names().filter((n) => !NOT_WEIGHTS.test(n) && !(tied === true && n === 'lm_head.weight')).sort(compareTensorNames);
      const tensors = names.map((name): SourceTensor => {
        const from = full?.has(name) ? full : base;
        const info = from.info(name);
        const pair = adapter?.pairs.get(name) ?? null;
        return {
          name,
          shape: info.shape,
          dtype: info.dtype,
          merged: pair !== null,
          read: async () => {
            const src = await from.bytes(name);
            if (!pair || !adapter) return { src, srcDtype: info.dtype, lora: null };
            const [aName, bName] = pair;
            return {
              src,
              srcDtype: info.dtype,
              lora: {
                a: await adapter.tensors.bytes(aName), aDtype: adapter.tensors.info(aName).dtype,
                b: await adapter.tensors.bytes(bName), bDtype: adapter.tensors.info(bName).dtype,
                rank: adapter.config.lora.rank, scale: adapter.scale,
              },
            };
          },
        };
      });
      return new ExportSource(modelDir, config, loc.weights, loc.weightsDir, loc.run, tensors, opened);
    } catch (e) {
      for (const t of opened) await t.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    for (const t of this.opened) await t.close();
  }
}

/**
 * For a PEFT adapter folder that no run.json accompanies: its base_model_name_or_path when that is
 * a model folder on this machine (what PEFT records when the base was loaded from a folder), else
 * null (the caller's default applies).
 */
async function adapterBaseFolder(checkpoint: string): Promise<string | null> {
  const dir = resolve(checkpoint);
  if ((await pathKind(join(dir, 'adapter_config.json'))) !== 'other') return null;
  if ((await pathKind(join(dir, '..', 'run.json'))) === 'other' || (await pathKind(join(dir, '..', '..', 'run.json'))) === 'other') return null;
  const base = (await readAdapterConfig(dir)).baseModelNameOrPath;
  if (base === null) return null;
  return (await pathKind(join(resolve(base), 'config.json'))) === 'other' ? resolve(base) : null;
}
