/**
 * Model registry: short names (`qwen`, `gemma`, `Qwen/Qwen2.5-0.5B-Instruct`) -> local Hugging
 * Face model folders, like the reference project's paths.py, but read from configuration instead
 * of edited source.
 *
 * Sources, later ones overriding earlier entries of the same name:
 *  1. a JSON file: `--paths_file` (must exist), else `./paths.json` when present;
 *  2. the environment variable RREC_MODEL_PATHS, holding the same JSON.
 * The JSON is one object of name -> folder, e.g. `{"qwen": "/models/Qwen2.5-0.5B-Instruct"}`.
 * Relative folders in the file are relative to the file's folder; in the variable, to the
 * working directory.
 *
 * resolveModelPath(name, paths) looks the name up (exactly, then case-insensitively), else takes
 * it as a folder path, and checks the folder holds a loadable model: config.json, safetensors
 * weights (every shard an index names) and tokenizer.json. Errors list every missing piece.
 */

import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

export const PATHS_ENV_VAR = 'RREC_MODEL_PATHS';
export const DEFAULT_PATHS_FILE = 'paths.json';

/** Model name -> absolute folder. */
export type ModelPaths = Readonly<Record<string, string>>;

/** A bad registry, an unknown name, or a missing / incomplete model folder. */
export class ModelPathError extends Error {
  constructor(
    message: string,
    /** The model name or folder asked for. */
    readonly model?: string,
    /** The folder checked, when one was. */
    readonly dir?: string,
    /** What the folder lacks. */
    readonly missing: readonly string[] = [],
  ) {
    super(message);
    this.name = 'ModelPathError';
  }
}

/** Checks parsed JSON is a name -> non-empty string object; resolves relative folders against `base`. */
export function parseModelPaths(json: unknown, where: string, base: string): Record<string, string> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ModelPathError(`${where}: expected a JSON object mapping model names to folders, got ${Array.isArray(json) ? 'an array' : JSON.stringify(json)}`);
  }
  const out: Record<string, string> = {};
  for (const [name, dir] of Object.entries(json as Record<string, unknown>)) {
    if (name.trim() === '') throw new ModelPathError(`${where}: a model name is empty`);
    if (typeof dir !== 'string' || dir.trim() === '') {
      throw new ModelPathError(`${where}: model "${name}" maps to ${JSON.stringify(dir)}; expected a folder path (a non-empty string)`);
    }
    out[name] = path.resolve(base, dir);
  }
  return out;
}

export interface LoadModelPathsOptions {
  /** --paths_file; when given it must exist. */
  pathsFile?: string | null;
  /** Folder for the default ./paths.json and for relative folders in the variable (default process.cwd()). */
  cwd?: string;
  /** Environment (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
}

export interface LoadedModelPaths {
  paths: ModelPaths;
  /** What was read, in order: file paths and/or `$RREC_MODEL_PATHS`. */
  sources: string[];
}

/** Reads the registry from the file and the environment variable (see the file comment). */
export async function loadModelPaths(opts: LoadModelPathsOptions = {}): Promise<LoadedModelPaths> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const paths: Record<string, string> = {};
  const sources: string[] = [];

  const explicit = opts.pathsFile !== undefined && opts.pathsFile !== null && opts.pathsFile !== '';
  const file = path.resolve(cwd, explicit ? (opts.pathsFile as string) : DEFAULT_PATHS_FILE);
  let text: string | null = null;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || explicit) {
      throw new ModelPathError(`${file}: cannot read the model paths file (${code === 'ENOENT' ? 'no such file' : (code ?? String(e))})`);
    }
  }
  if (text !== null) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ModelPathError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    Object.assign(paths, parseModelPaths(json, file, path.dirname(file)));
    sources.push(file);
  }

  const raw = env[PATHS_ENV_VAR];
  if (raw !== undefined && raw.trim() !== '') {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (e) {
      throw new ModelPathError(`$${PATHS_ENV_VAR}: not valid JSON (${(e as Error).message}); expected e.g. {"qwen": "/models/Qwen2.5-0.5B-Instruct"}`);
    }
    Object.assign(paths, parseModelPaths(json, `$${PATHS_ENV_VAR}`, cwd));
    sources.push(`$${PATHS_ENV_VAR}`);
  }
  return { paths: Object.freeze(paths), sources };
}

/** Registry entry for `name`: exact, else the one case-insensitive match; undefined if none. */
export function lookupModel(name: string, paths: ModelPaths): string | undefined {
  if (Object.prototype.hasOwnProperty.call(paths, name)) return paths[name];
  const lower = name.toLowerCase();
  const hits = Object.keys(paths).filter((k) => k.toLowerCase() === lower);
  if (hits.length > 1) throw new ModelPathError(`model name "${name}" matches several registry entries: ${hits.join(', ')}; use the exact name`, name);
  return hits.length === 1 ? paths[hits[0]!] : undefined;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * What a model folder lacks to be loaded: `config.json`, weights (`*.safetensors`; with a
 * `model.safetensors.index.json`, every shard it names), `tokenizer.json`. [] when complete.
 */
export async function missingModelFiles(dir: string): Promise<string[]> {
  const names = new Set(await readdir(dir));
  const missing: string[] = [];
  if (!names.has('config.json')) missing.push('config.json');
  const index = [...names].find((n) => n.endsWith('.safetensors.index.json'));
  if (index !== undefined) {
    let shards: string[] = [];
    try {
      const json = JSON.parse(await readFile(path.join(dir, index), 'utf8')) as { weight_map?: Record<string, string> };
      shards = [...new Set(Object.values(json.weight_map ?? {}))].sort();
    } catch (e) {
      missing.push(`a readable ${index} (${(e as Error).message})`);
    }
    if (shards.length === 0 && missing.every((m) => !m.includes(index))) missing.push(`weights (${index} names no shards)`);
    for (const s of shards) if (!names.has(s)) missing.push(s);
  } else if (![...names].some((n) => n.endsWith('.safetensors'))) {
    missing.push('weights (*.safetensors)');
  }
  if (!names.has('tokenizer.json')) missing.push('tokenizer.json');
  return missing;
}

/**
 * The model folder for `name`: a registry entry, or `name` itself as a folder path. Throws a
 * ModelPathError for an unknown name (listing the known ones), a missing folder, or an incomplete
 * one (naming every missing file).
 */
export async function resolveModelPath(name: string, paths: ModelPaths, opts: { cwd?: string } = {}): Promise<string> {
  if (name.trim() === '') throw new ModelPathError('model name is empty', name);
  const entry = lookupModel(name, paths);
  let dir: string;
  if (entry !== undefined) {
    dir = entry;
    if (!(await isDir(dir))) {
      throw new ModelPathError(`model "${name}" maps to ${dir}, which is not a folder (missing or not a directory); fix the paths registry or download the model there`, name, dir);
    }
  } else {
    dir = path.resolve(opts.cwd ?? process.cwd(), name);
    if (!(await isDir(dir))) {
      const known = Object.keys(paths).sort();
      throw new ModelPathError(
        `unknown model "${name}": not in the paths registry and not a folder. ` +
          (known.length > 0 ? `Known models: ${known.join(', ')}. ` : 'The paths registry is empty. ') +
          `Add it to ${DEFAULT_PATHS_FILE} (or --paths_file, or $${PATHS_ENV_VAR}) as {"${name}": "/path/to/model"}, or pass a model folder`,
        name,
      );
    }
  }
  const missing = await missingModelFiles(dir);
  if (missing.length > 0) {
    throw new ModelPathError(`model folder ${dir}${entry !== undefined ? ` (model "${name}")` : ''} is incomplete: missing ${missing.join(', ')}`, name, dir, missing);
  }
  return dir;
}
