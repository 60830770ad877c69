/**
 * The safetensors tensors of a Hugging Face model folder, read as stored bytes (never decoded in
 * TypeScript: the export's native transforms take the bytes): `model.safetensors`, or the shards
 * that `model.safetensors.index.json` lists (the same rules as the native loader,
 * native/core/safetensors.cc), or a single file (a full fine-tune's trained weights).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile, type SafetensorsTensorInfo } from '../model/safetensors.js';
import { pathKind } from '../util/atomic-fs.js';
import type { NativeStoredDtype } from '../native.js';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** One stored tensor: where it is and what it is. */
export interface StoredTensor {
  name: string;
  /** PyTorch order, outermost first. */
  shape: number[];
  dtype: NativeStoredDtype;
  file: string;
}

const STORED: ReadonlySet<string> = new Set(['F32', 'BF16', 'F16']);

/** Open safetensors files and their tensors by name. */
export class ModelTensors {
  private constructor(
    private readonly files: Map<string, SafetensorsFile>,
    private readonly where: Map<string, SafetensorsFile>,
  ) {}

  /** The tensors of one file. */
  static async openFile(file: string): Promise<ModelTensors> {
    return ModelTensors.openFiles([file], null);
  }

  /** The tensors of a model folder: model.safetensors, else the shards of the index. */
  static async openDir(dir: string): Promise<ModelTensors> {
    const single = join(dir, SINGLE_FILE);
    if ((await pathKind(single)) === 'other') return ModelTensors.openFile(single);
    const index = join(dir, INDEX_FILE);
    if ((await pathKind(index)) !== 'other') throw new Error(`${dir}: no ${SINGLE_FILE} or ${INDEX_FILE} (only safetensors checkpoints are supported)`);
    let map: unknown;
    try {
      map = (JSON.parse(await readFile(index, 'utf8')) as { weight_map?: unknown }).weight_map;
    } catch (e) {
      throw new Error(`${index}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${index}: missing "weight_map" object`);
    const listed = new Map<string, string>();
    for (const [name, f] of Object.entries(map as Record<string, unknown>)) {
      if (typeof f !== 'string' || f === '' || f.includes('/') || f.includes('\\') || f === '.' || f === '..')
        throw new Error(`${index}: weight_map["${name}"] = ${JSON.stringify(f)} is not a plain file name in the folder`);
      listed.set(name, join(dir, f));
    }
    const tensors = await ModelTensors.openFiles([...new Set(listed.values())], index);
    for (const [name, file] of listed) {
      const got = tensors.where.get(name);
      if (!got) {
        await tensors.close();
        throw new Error(`${index}: tensor "${name}" is listed in weight_map but absent from ${file}`);
      }
      if (got.file !== file) {
        await tensors.close();
        throw new Error(`${index}: tensor "${name}" is listed in ${file} but stored in ${got.file}`);
      }
    }
    return tensors;
  }

  private static async openFiles(paths: readonly string[], index: string | null): Promise<ModelTensors> {
    const files = new Map<string, SafetensorsFile>();
    const where = new Map<string, SafetensorsFile>();
    try {
      for (const p of paths) {
        if ((await pathKind(p)) !== 'other') throw new Error(`${index ?? p}: ${index ? `shard ${p} is listed but missing` : 'no such file'}`);
        const f = await SafetensorsFile.open(p);
        files.set(p, f);
        for (const [name, info] of f.tensors) {
          const other = where.get(name);
          if (other) throw new Error(`${p}: tensor "${name}" is also stored in ${other.file}`);
          if (!STORED.has(info.dtype)) throw new Error(`${p}: tensor "${name}" is stored as ${info.dtype}; the export reads F32, BF16 and F16`);
          where.set(name, f);
        }
      }
    } catch (e) {
      for (const f of files.values()) await f.close();
      throw e;
    }
    return new ModelTensors(files, where);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  /** The tensor's description; throws naming the files when absent. */
  info(name: string): StoredTensor {
    const f = this.where.get(name);
    if (!f) throw new Error(`tensor "${name}" is in none of ${[...this.files.keys()].join(', ')}`);
    const t = f.info(name) as SafetensorsTensorInfo;
    return { name, shape: [...t.shape], dtype: t.dtype as NativeStoredDtype, file: f.file };
  }

  /** The stored little-endian bytes. */
  async bytes(name: string): Promise<Uint8Array> {
    const f = this.where.get(name);
    if (!f) throw new Error(`tensor "${name}" is in none of ${[...this.files.keys()].join(', ')}`);
    return f.readBytes(name);
  }

  async close(): Promise<void> {
    for (const f of this.files.values()) await f.close();
    this.files.clear();
    this.where.clear();
  }
}
