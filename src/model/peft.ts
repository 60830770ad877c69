/**
 * LoRA adapters on disk in Hugging Face PEFT's format: a folder holding
 *   adapter_config.json         LoraConfig.save_pretrained's JSON (json.dumps(indent=2, sort_keys=True))
 *   adapter_model.safetensors   the lora_A [r, in] / lora_B [out, r] tensors, F32 (PEFT's default)
 *                               or BF16, named base_model.model.<module path>.lora_{A,B}.weight
 * so that `PeftModel.from_pretrained(base, dir)` (and vLLM, llama.cpp's convert_lora_to_gguf) load
 * what saveAdapter writes, and loadAdapter loads what PEFT writes.
 *
 * The config mirrors PEFT v0.17.1 (src/peft/config.py PeftConfigMixin/PeftConfig, src/peft/tuners/
 * lora/config.py LoraConfig): every dataclass field with its default, minus runtime_config, which
 * LoraConfig.to_dict drops. v0.17.1 is the last release before `peft_version` was added (0.18), so
 * every PEFT from 0.17.1 on loads it without a warning (newer fields take their defaults).
 * PeftModel.save_pretrained sets inference_mode true and, for a task type, auto_mapping null.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ALL_LORA_TARGETS, type CausalLM, type LoraAdapter, type LoraOptions, type LoraTarget } from './causal-lm.js';
import { writeDirFilesAtomic } from '../util/atomic-fs.js';
import { encodeSafetensors, SafetensorsError, SafetensorsFile } from './safetensors.js';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';
/** PEFT's pickle format (torch.save); recognised only to say it is not supported. */
export const ADAPTER_PICKLE_NAME = 'adapter_model.bin';
/** The PEFT release whose adapter_config.json fields saveAdapter writes. */
export const PEFT_CONFIG_FORMAT = '0.17.1';

/** Bad or unsupported adapter folder. The message starts with the file; `field`/`tensor` say what. */
export class AdapterError extends Error {
  readonly file: string;
  readonly field: string | undefined;
  readonly tensor: string | undefined;
  constructor(file: string, problem: string, where: { field?: string; tensor?: string } = {}, options?: { cause?: unknown }) {
    const at = where.field !== undefined ? `field "${where.field}": ` : where.tensor !== undefined ? `tensor "${where.tensor}": ` : '';
    super(`${file}: ${at}${problem}`, options);
    this.name = 'AdapterError';
    this.file = file;
    this.field = where.field;
    this.tensor = where.tensor;
  }
}

// ───────────────────────── Python's json.dumps(indent=2, sort_keys=True) ─────────────────────────

/** A number Python holds as a float (printed 0.0, 1e-05), as opposed to an int (printed 0, 16). */
class PyFloat {
  constructor(readonly value: number) {}
}
type PyJson = null | boolean | number | string | PyFloat | PyJson[] | { [key: string]: PyJson };

/** Python's repr(float): shortest round-trip digits; exponent form when exp10 < -4 or >= 16. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const sign = neg ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intLen = exp + 1;
  if (digits.length <= intLen) return `${sign}${digits}${'0'.repeat(intLen - digits.length)}.0`;
  return `${sign}${digits.slice(0, intLen)}.${digits.slice(intLen)}`;
}

/** json.dumps with ensure_ascii: JSON.stringify escapes, plus \uXXXX for DEL and non-ASCII. */
function pythonString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function pythonJson(v: PyJson, indent: string): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return pythonString(v);
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new RangeError(`pythonJson: ${v} is not an int; wrap floats in PyFloat`);
    return String(v);
  }
  if (v instanceof PyFloat) return pythonFloatRepr(v.value);
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + pythonJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${pythonString(k)}: ${pythonJson(v[k]!, inner)}`).join(',\n')}\n${indent}}`;
}

// ───────────────────────────── adapter_config.json ─────────────────────────────

export interface AdapterConfigOptions {
  /** The base model's hub id or path, as PEFT records it (base_model.name_or_path); null if unknown. */
  baseModelNameOrPath: string | null;
  /** The base model's hub revision; default null. */
  revision?: string | null;
}

/** Module names in target_modules are written sorted (PEFT writes list(set), in hash order). */
function configObject(options: LoraAdapter['options'], opts: AdapterConfigOptions): { [key: string]: PyJson } {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: opts.baseModelNameOrPath,
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    // lora_alpha is an int in PEFT's signature; a fractional alpha is kept as a float.
    lora_alpha: Number.isSafeInteger(options.alpha) ? options.alpha : new PyFloat(options.alpha),
    lora_bias: false,
    lora_dropout: new PyFloat(options.dropout),
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    qalora_group_size: 16,
    r: options.rank,
    rank_pattern: {},
    revision: opts.revision ?? null,
    target_modules: [...new Set(options.targets)].sort(),
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: options.rslora,
  };
}

/** The exact text PEFT 0.17.1's save_pretrained writes for this adapter (no trailing newline). */
export function adapterConfigJson(options: LoraAdapter['options'], opts: AdapterConfigOptions): string {
  return pythonJson(configObject(options, opts), '');
}

// ───────────────────────────────── saving ─────────────────────────────────

export interface SaveAdapterOptions extends AdapterConfigOptions {
  /**
   * Stored tensor dtype; default float32 (PEFT keeps adapter weights in f32). bfloat16 rounds each
   * f32 value to nearest-even, as torch's `.to(torch.bfloat16)`; a float64 model's values are
   * first rounded to f32 (the precision a PEFT adapter holds).
   */
  dtype?: 'float32' | 'bfloat16';
  /** Called with the temporary folder once both files are written and synced; throwing aborts the save. */
  beforeCommit?: (tempDir: string) => void | Promise<void>;
}

/** Files an existing folder may hold for saveAdapter to replace it: what PEFT's save_pretrained writes. */
const REPLACEABLE_ENTRIES: ReadonlySet<string> = new Set([ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, ADAPTER_PICKLE_NAME, 'README.md']);

async function checkReplaceableAdapterDir(dir: string): Promise<void> {
  const entries = await readdir(dir);
  if (entries.length === 0) return;
  const foreign = entries.filter((e) => !REPLACEABLE_ENTRIES.has(e));
  if (!entries.includes(ADAPTER_CONFIG_NAME) || foreign.length > 0) {
    const why = foreign.length > 0 ? `it also holds ${foreign.slice(0, 5).map((e) => JSON.stringify(e)).join(', ')}${foreign.length > 5 ? ', …' : ''}` : `it has no ${ADAPTER_CONFIG_NAME}`;
    throw new AdapterError(dir, `exists and is not an adapter folder (${why}); refusing to replace it`);
  }
}

/**
 * Writes adapter_config.json + adapter_model.safetensors into `dir` as PEFT's
 * `model.save_pretrained(dir)` does. The folder is written whole into a temporary sibling and
 * renamed into place: a reader (or a crash) sees the old folder or the complete new one. An
 * existing folder is replaced only if it is empty or holds only adapter files (PEFT's
 * adapter_config.json, adapter_model.safetensors/.bin, README.md).
 */
export async function saveAdapter(adapter: LoraAdapter, dir: string, opts: SaveAdapterOptions): Promise<void> {
  if (opts.baseModelNameOrPath !== null && typeof opts.baseModelNameOrPath !== 'string')
    throw new TypeError('saveAdapter: baseModelNameOrPath must be a string or null');
  const dtype = opts.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'bfloat16') throw new RangeError(`saveAdapter: dtype must be 'float32' or 'bfloat16', got ${String(dtype)}`);
  const tensors = adapter.params().map((p) => ({ name: p.name, shape: p.shape, data: adapter.getParam(p.name) }));
  const weights = encodeSafetensors(tensors, { dtype: dtype === 'float32' ? 'F32' : 'BF16', metadata: { format: 'pt' } });
  const config = adapterConfigJson(adapter.options, opts);
  await writeDirFilesAtomic(
    dir,
    [
      { path: ADAPTER_WEIGHTS_NAME, data: weights },
      { path: ADAPTER_CONFIG_NAME, data: config },
    ],
    { ...(opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {}), checkReplace: checkReplaceableAdapterDir },
  );
}

// ───────────────────────────────── loading ─────────────────────────────────

/** What loadAdapter takes from adapter_config.json. */
export interface LoadedAdapterConfig {
  /** Path of the adapter_config.json read. */
  file: string;
  /** createLora options: rank = r, alpha = lora_alpha, dropout = lora_dropout, rslora = use_rslora. */
  lora: Required<Pick<LoraOptions, 'rank' | 'alpha' | 'dropout' | 'rslora'>> & { targets: LoraTarget[] };
  /**
   * Targets that target_modules names only by per-layer paths ("model.layers.3.mlp.up_proj"), with
   * the layers named; loadAdapter requires every layer of the model to be named.
   */
  perLayerTargets: ReadonlyMap<LoraTarget, ReadonlySet<number>>;
  baseModelNameOrPath: string | null;
  revision: string | null;
  /** The whole parsed JSON. */
  raw: Record<string, unknown>;
}

/** PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for llama, qwen2 and gemma2 (target_modules null). */
const DEFAULT_TARGETS: readonly LoraTarget[] = ['q_proj', 'v_proj'];
const ATTENTION: ReadonlySet<string> = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj']);

/** init_lora_weights values after which the adapter is an ordinary LoRA on the unmodified base. */
const PLAIN_INITS: ReadonlySet<unknown> = new Set([true, false, 'gaussian', 'eva', 'orthogonal']);

const isEmpty = (v: unknown): boolean =>
  v === undefined || v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/** Fields whose non-default value changes the adapter's math or adds tensors this engine lacks. */
const MUST_BE_EMPTY: readonly [string, string][] = [
  ['use_dora', 'DoRA adds a magnitude vector this engine does not apply'],
  ['layers_to_transform', 'adapters on a subset of layers are not supported'],
  ['layers_pattern', 'adapters on a subset of layers are not supported'],
  ['rank_pattern', 'per-module ranks are not supported'],
  ['alpha_pattern', 'per-module alphas are not supported'],
  ['exclude_modules', 'excluding modules is not supported'],
  ['modules_to_save', 'fully trained extra modules are not supported'],
  ['fan_in_fan_out', 'transposed (Conv1D) weights do not occur in llama/qwen2/gemma2'],
  ['lora_bias', 'a bias on lora_B is not supported'],
  ['use_qalora', 'QALoRA is not supported'],
  ['layer_replication', 'layer replication is not supported'],
  ['target_parameters', 'LoRA on parameters (not modules) is not supported'],
  ['trainable_token_indices', 'trainable tokens are not supported'],
  ['megatron_config', 'Megatron parallel layers are not supported'],
  ['alora_invocation_tokens', 'activated LoRA (aLoRA) is not supported'],
  ['use_bdlora', 'block-diagonal LoRA is not supported'],
  ['arrow_config', 'Arrow routing is not supported'],
];

const TARGET_ENTRY = /^(?:(?:model\.)?layers\.(\d+)\.)?(?:(self_attn|mlp)\.)?([a-z_]+)$/;

interface ParsedTargets {
  targets: LoraTarget[];
  /** Targets named only by per-layer paths ("model.layers.3.mlp.up_proj"): the layers named. */
  perLayer: Map<LoraTarget, Set<number>>;
}

/**
 * PEFT matches a target_modules entry against a module's full name exactly or as a dotted
 * suffix, so "q_proj", "self_attn.q_proj" and "model.layers.0.self_attn.q_proj" all name q_proj
 * modules. PEFT 0.21.0 saves target_modules="all-linear" written out as every module's full path.
 */
function parseTargets(file: string, v: unknown): ParsedTargets {
  if (v === undefined || v === null) return { targets: [...DEFAULT_TARGETS], perLayer: new Map() };
  if (typeof v === 'string') {
    if (v.toLowerCase() === 'all-linear') return { targets: [...ALL_LORA_TARGETS], perLayer: new Map() };
    throw new AdapterError(file, `${JSON.stringify(v)} is a regular expression; not supported (use a list of module names or "all-linear")`, { field: 'target_modules' });
  }
  if (!Array.isArray(v) || v.length === 0)
    throw new AdapterError(file, `expected a non-empty list of module names or "all-linear", got ${JSON.stringify(v)}`, { field: 'target_modules' });
  const everyLayer = new Set<LoraTarget>();
  const perLayer = new Map<LoraTarget, Set<number>>();
  for (const entry of v) {
    if (typeof entry !== 'string') throw new AdapterError(file, `entry ${JSON.stringify(entry)} is not a string`, { field: 'target_modules' });
    const m = TARGET_ENTRY.exec(entry);
    const leaf = m?.[3] ?? '';
    const known = (ALL_LORA_TARGETS as readonly string[]).includes(leaf);
    const scopeOk = m !== null && (m[2] === undefined ? m[1] === undefined : m[2] === (ATTENTION.has(leaf) ? 'self_attn' : 'mlp'));
    if (!known || !scopeOk)
      throw new AdapterError(file, `module ${JSON.stringify(entry)} is not supported (supported: ${ALL_LORA_TARGETS.join(', ')}, or "all-linear")`, { field: 'target_modules' });
    const target = leaf as LoraTarget;
    if (m![1] === undefined) everyLayer.add(target);
    else {
      const layers = perLayer.get(target) ?? new Set<number>();
      layers.add(Number(m![1]));
      perLayer.set(target, layers);
    }
  }
  for (const t of everyLayer) perLayer.delete(t);
  return { targets: ALL_LORA_TARGETS.filter((t) => everyLayer.has(t) || perLayer.has(t)), perLayer };
}

/** Per-layer target paths must name every layer of the model: adapters on some layers only are not supported. */
export function checkPerLayerTargets(file: string, perLayer: ReadonlyMap<LoraTarget, ReadonlySet<number>>, numLayers: number): void {
  for (const [target, layers] of perLayer) {
    const missing = Array.from({ length: numLayers }, (_, i) => i).filter((i) => !layers.has(i));
    const beyond = [...layers].filter((i) => i >= numLayers);
    if (beyond.length > 0)
      throw new AdapterError(file, `names ${target} in layer ${beyond[0]}, but the model has ${numLayers} layers`, { field: 'target_modules' });
    if (missing.length > 0)
      throw new AdapterError(file, `names ${target} in some layers only (not in layer ${missing.join(', ')}); adapters on a subset of layers are not supported`, { field: 'target_modules' });
  }
}

/** Parses and validates a PEFT adapter_config.json for a LoRA this engine can run. */
export function parseAdapterConfig(file: string, text: string): LoadedAdapterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AdapterError(file, `invalid JSON (${(e as Error).message})`, {}, { cause: e });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AdapterError(file, 'is not a JSON object');
  const cfg = raw as Record<string, unknown>;
  const bad = (field: string, problem: string): never => {
    throw new AdapterError(file, problem, { field });
  };
  const got = (v: unknown) => JSON.stringify(v) ?? String(v);

  if (cfg['peft_type'] !== 'LORA') bad('peft_type', `expected "LORA", got ${got(cfg['peft_type'])}; only LoRA adapters are supported`);
  const task = cfg['task_type'];
  if (task !== undefined && task !== null && task !== 'CAUSAL_LM') bad('task_type', `${got(task)} is not supported (expected "CAUSAL_LM")`);

  const r = cfg['r'] ?? 8;
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r <= 0) bad('r', `expected a positive integer, got ${got(r)}`);
  const alpha = cfg['lora_alpha'] ?? 8;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) bad('lora_alpha', `expected a number, got ${got(alpha)}`);
  const dropout = cfg['lora_dropout'] ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad('lora_dropout', `expected a number in [0, 1), got ${got(dropout)}`);
  const rslora = cfg['use_rslora'] ?? false;
  if (typeof rslora !== 'boolean') bad('use_rslora', `expected true or false, got ${got(rslora)}`);
  const bias = cfg['bias'] ?? 'none';
  if (bias !== 'none') bad('bias', `${got(bias)} is not supported (only "none": bias tensors are not trained)`);
  const init = cfg['init_lora_weights'] ?? true;
  if (!PLAIN_INITS.has(init))
    bad('init_lora_weights', `${got(init)} is not supported: it modifies the base weights (PiSSA/OLoRA/CorDA/LoftQ/LoRA-GA); convert the adapter to plain LoRA first`);
  for (const [field, why] of MUST_BE_EMPTY) if (!isEmpty(cfg[field])) bad(field, `${got(cfg[field])} is not supported: ${why}`);
  for (const field of ['velora_config', 'monteclora_config', 'lora_ga_config'])
    if (!isEmpty(cfg[field])) bad(field, `${got(cfg[field])} is not supported`);
  const { targets, perLayer } = parseTargets(file, cfg['target_modules']);

  const base = cfg['base_model_name_or_path'] ?? null;
  const revision = cfg['revision'] ?? null;
  return {
    file,
    lora: { rank: r as number, alpha: alpha as number, dropout: dropout as number, rslora: rslora as boolean, targets },
    perLayerTargets: perLayer,
    baseModelNameOrPath: typeof base === 'string' ? base : null,
    revision: typeof revision === 'string' ? revision : null,
    raw: cfg,
  };
}

async function fileExists(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Reads and validates `dir`/adapter_config.json. */
export async function readAdapterConfig(dir: string): Promise<LoadedAdapterConfig> {
  const file = path.join(dir, ADAPTER_CONFIG_NAME);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const dirExists = await stat(dir).then((s) => s.isDirectory(), () => false);
      throw new AdapterError(file, dirExists ? 'not found: the folder is not a PEFT adapter' : 'not found: the adapter folder does not exist', {}, { cause: e });
    }
    throw new AdapterError(file, `cannot read (${(e as Error).message})`, {}, { cause: e });
  }
  return parseAdapterConfig(file, text);
}

/** `.lora_A.default.weight` (PEFT's in-memory name, adapter "default") -> `.lora_A.weight` (its saved name). */
function savedName(name: string): string {
  return name.replace(/\.(lora_[AB])\.default\.weight$/, '.$1.weight');
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Index of the first NaN or infinity in `v`, or -1. */
export function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return i;
  return -1;
}

/**
 * Loads a PEFT LoRA folder onto `lm`: validates adapter_config.json, creates the adapter with
 * its r, lora_alpha, lora_dropout, use_rslora and target_modules, and sets every tensor from
 * adapter_model.safetensors (F32, F16, BF16 or F64; names with or without PEFT's ".default").
 * Every expected tensor must be present with its exact shape, and no other tensor may be.
 */
export async function loadAdapter(lm: CausalLM, dir: string): Promise<LoraAdapter> {
  const config = await readAdapterConfig(dir);
  checkPerLayerTargets(config.file, config.perLayerTargets, lm.config.numLayers);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_NAME);
  if (!(await fileExists(weightsFile))) {
    const pickle = path.join(dir, ADAPTER_PICKLE_NAME);
    if (await fileExists(pickle))
      throw new AdapterError(pickle, `pickle (torch.save) weights are not supported; convert them to ${ADAPTER_WEIGHTS_NAME} (e.g. save_pretrained(..., safe_serialization=True))`);
    throw new AdapterError(weightsFile, 'not found');
  }

  let st: SafetensorsFile;
  try {
    st = await SafetensorsFile.open(weightsFile);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new AdapterError(weightsFile, e.problem, e.tensor === undefined ? {} : { tensor: e.tensor }, { cause: e });
    throw e;
  }
  try {
    const { rank, alpha, dropout, rslora, targets } = config.lora;
    const adapter = lm.createLora({ rank, alpha, dropout, rslora, targets, seed: 0 });
    const expected = adapter.params();

    // Map the file's names to the saved form, refusing two names for one tensor.
    const inFile = new Map<string, string>();
    for (const name of st.tensors.keys()) {
      const canonical = savedName(name);
      const other = inFile.get(canonical);
      if (other !== undefined) throw new AdapterError(weightsFile, `holds the same tensor twice (also as "${other}")`, { tensor: name });
      inFile.set(canonical, name);
    }
    const expectedNames = new Set(expected.map((p) => p.name));
    const extra = [...inFile.keys()].filter((n) => !expectedNames.has(n));
    if (extra.length > 0) {
      const list = extra.slice(0, 3).map((n) => `"${inFile.get(n)}"`).join(', ');
      throw new AdapterError(
        weightsFile,
        `${extra.length} unexpected tensor(s): ${list}${extra.length > 3 ? ', …' : ''}; adapter_config.json targets ${targets.join(', ')} on a ${lm.config.numLayers}-layer ${lm.config.architecture} model`,
        { tensor: inFile.get(extra[0]!)! },
      );
    }
    for (const p of expected) {
      const name = inFile.get(p.name);
      if (name === undefined)
        throw new AdapterError(weightsFile, `missing (adapter_config.json targets ${targets.join(', ')} with r = ${rank})`, { tensor: p.name });
      const info = st.info(name);
      if (info.shape.length !== p.shape.length || info.shape.some((d, i) => d !== p.shape[i])) {
        const isA = p.name.endsWith('lora_A.weight');
        throw new AdapterError(
          weightsFile,
          `shape ${shapeText(info.shape)} but expected ${shapeText(p.shape)} (${isA ? 'lora_A is [r, in_features]' : 'lora_B is [out_features, r]'}, r = ${rank} in ${ADAPTER_CONFIG_NAME})`,
          { tensor: name },
        );
      }
    }
    for (const p of expected) {
      const name = inFile.get(p.name)!;
      let values: Float32Array;
      try {
        values = (await st.read(name)).data;
      } catch (e) {
        if (e instanceof SafetensorsError) throw new AdapterError(weightsFile, e.problem, { tensor: name }, { cause: e });
        throw e;
      }
      // A NaN/Inf adapter would load and evaluate to 0% accuracy without a word (cheap to check).
      const bad = firstNonFinite(values);
      if (bad >= 0) throw new AdapterError(weightsFile, `holds a non-finite value (${values[bad]} at flat index ${bad}); the adapter is corrupt or was saved from a diverged run`, { tensor: name });
      adapter.setParam(p.name, values);
    }
    return adapter;
  } finally {
    await st.close();
  }
}
