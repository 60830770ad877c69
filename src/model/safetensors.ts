/**
 * safetensors in TypeScript: a validating reader that reads only the tensors asked for, and an
 * atomic writer whose bytes match the `safetensors` Python package's `save_file`.
 *
 * Layout (https://github.com/huggingface/safetensors):
 *   u64 little-endian N, the byte length of the header
 *   N bytes of UTF-8 JSON: {"__metadata__": {str: str}?, "<name>": {"dtype", "shape", "data_offsets": [b, e]}, ...}
 *     (the writer pads it with spaces so that N is a multiple of 8)
 *   the data section: each tensor's bytes, little-endian, row-major, at [8 + N + b, 8 + N + e).
 *   The offsets tile the data section exactly: sorted by b they start at 0, touch without gaps
 *   or overlaps, and the last one ends at the end of the file (the Rust crate's rule).
 *
 * Headers are validated by the addon's parseSafetensorsHeader (native/core/safetensors_header.cc),
 * the project's one validator: the native weight loader calls the same code, so a file is accepted
 * or refused, with the same message, whichever side opens it. This file reads the bytes, decodes
 * them and writes files.
 *
 * The reader decodes the float dtypes F32, F16, BF16 and F64 to Float32Array (F64 rounded to the
 * nearest f32). Other dtypes are accepted in the header (their sizes are checked) but not decoded.
 * The writer stores F32 or BF16 (round to nearest, ties to even, as torch's `.to(torch.bfloat16)`).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic-fs.js';
import { loadNative, type NativeAddon } from '../native.js';

/** Bytes per element of every dtype the writer may name (the reader's table is the native validator's). */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8, C64: 8,
};

/** The dtypes decoded to floats. */
export type SafetensorsFloatDtype = 'F32' | 'F16' | 'BF16' | 'F64';
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16', 'F64']);

export class SafetensorsError extends Error {
  readonly file: string;
  readonly tensor: string | undefined;
  /** The message without the file and tensor. */
  readonly problem: string;
  constructor(file: string, problem: string, tensor?: string, options?: { cause?: unknown }) {
    super(tensor === undefined ? `${file}: ${problem}` : `${file}: tensor "${tensor}": ${problem}`, options);
    this.name = 'SafetensorsError';
    this.file = file;
    this.tensor = tensor;
    this.problem = problem;
  }
}

export interface SafetensorsTensorInfo {
  name: string;
  /** As written in the header, e.g. 'F32', 'BF16'. */
  dtype: string;
  /** PyTorch order, outermost first. */
  shape: number[];
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  file: string;
  /** N, the JSON header's byte length (padding included). */
  headerBytes: number;
  /** File offset of the data section: 8 + N. */
  dataStart: number;
  /** `__metadata__`, or null when absent. */
  metadata: Record<string, string> | null;
  /** Tensors in header order. */
  tensors: Map<string, SafetensorsTensorInfo>;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The addon's refusal: its message, with `problem` and (one tensor at fault) `tensor`. */
function rethrowRefusal(file: string, e: unknown): never {
  const err = e as Error & { problem?: unknown; tensor?: unknown };
  if (typeof err?.problem === 'string')
    throw new SafetensorsError(file, err.problem, typeof err.tensor === 'string' ? err.tensor : undefined, { cause: e });
  throw e;
}

/** N, the JSON header's byte length, from the file's first 8 bytes, checked against the file size. */
export function safetensorsHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  try {
    return loadNative().safetensorsHeaderLength(file, prefix, fileSize);
  } catch (e) {
    rethrowRefusal(file, e);
  }
}

/**
 * Validates a header (the JSON text after the 8-byte length) against the file size and returns
 * the tensor table. Throws SafetensorsError naming the file and tensor.
 */
export function parseSafetensorsHeader(file: string, headerJson: Uint8Array, fileSize: number): SafetensorsHeader {
  let parsed: ReturnType<NativeAddon['parseSafetensorsHeader']>;
  try {
    parsed = loadNative().parseSafetensorsHeader(file, headerJson, fileSize);
  } catch (e) {
    rethrowRefusal(file, e);
  }
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const t of parsed.tensors) tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, dataOffsets: [t.begin, t.end] });
  const N = headerJson.length;
  return { file, headerBytes: N, dataStart: 8 + N, metadata: parsed.metadata, tensors };
}

// ─────────────────────────────── decoding ───────────────────────────────

let f16Table: Float32Array | null = null;
/** All 65536 half values, built once (cheaper than branching per element). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  f16Table = t;
  return t;
}

/** Decodes `count` little-endian values of a float dtype to f32. */
export function decodeFloats(bytes: Uint8Array, dtype: SafetensorsFloatDtype, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'BF16': {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u32[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
    case 'F16': {
      const table = halfTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)]!;
      break;
    }
  }
  return out;
}

export interface DecodedTensor {
  dtype: SafetensorsFloatDtype;
  shape: number[];
  data: Float32Array;
}

/** An open safetensors file: header parsed and validated, tensor bytes read on demand. */
export class SafetensorsFile {
  private constructor(private readonly fh: FileHandle, readonly header: SafetensorsHeader) {}

  static async open(file: string): Promise<SafetensorsFile> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SafetensorsError(file, code === 'ENOENT' ? 'file not found' : `cannot open (${(e as Error).message})`, undefined, { cause: e });
    }
    try {
      const size = (await fh.stat()).size;
      const lenBuf = Buffer.alloc(Math.min(8, size));
      await readExactly(fh, lenBuf, 0);
      const N = safetensorsHeaderLength(file, lenBuf, size);
      const json = Buffer.alloc(N);
      await readExactly(fh, json, 8);
      return new SafetensorsFile(fh, parseSafetensorsHeader(file, json, size));
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  get file(): string {
    return this.header.file;
  }
  get tensors(): ReadonlyMap<string, SafetensorsTensorInfo> {
    return this.header.tensors;
  }
  get metadata(): Record<string, string> | null {
    return this.header.metadata;
  }

  info(name: string): SafetensorsTensorInfo {
    const t = this.header.tensors.get(name);
    if (!t) throw new SafetensorsError(this.file, 'no such tensor in the file', name);
    return t;
  }

  /** The tensor's raw little-endian bytes. */
  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    const [begin, end] = t.dataOffsets;
    const buf = new Uint8Array(end - begin);
    await readExactly(this.fh, buf, this.header.dataStart + begin, this.file, name);
    return buf;
  }

  /** The tensor decoded to f32; throws for non-float dtypes. */
  async read(name: string): Promise<DecodedTensor> {
    const t = this.info(name);
    if (!FLOAT_DTYPES.has(t.dtype)) throw new SafetensorsError(this.file, `dtype ${t.dtype} is not a float dtype (F32, F16, BF16, F64)`, name);
    const dtype = t.dtype as SafetensorsFloatDtype;
    const count = t.shape.reduce((a, b) => a * b, 1);
    return { dtype, shape: [...t.shape], data: decodeFloats(await this.readBytes(name), dtype, count) };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readExactly(fh: FileHandle, buf: Uint8Array, position: number, file?: string, tensor?: string): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new SafetensorsError(file ?? '(safetensors)', `truncated: expected ${buf.length} bytes at offset ${position}, got ${done}`, tensor);
    done += bytesRead;
  }
}

/** Reads the named tensors (all of them when `names` is absent), decoded to f32. */
export async function readSafetensors(file: string, names?: readonly string[]): Promise<Map<string, DecodedTensor>> {
  const st = await SafetensorsFile.open(file);
  try {
    const out = new Map<string, DecodedTensor>();
    for (const name of names ?? [...st.tensors.keys()]) out.set(name, await st.read(name));
    return out;
  } finally {
    await st.close();
  }
}

// ─────────────────────────────── writing ───────────────────────────────

export type SafetensorsWriteDtype = 'F32' | 'BF16';

export interface TensorToWrite {
  name: string;
  /** PyTorch order, outermost first. */
  shape: readonly number[];
  /** Row-major values (f64 values are first rounded to f32). */
  data: ArrayLike<number>;
}

export interface WriteSafetensorsOptions {
  /** Stored dtype of every tensor. Default F32. */
  dtype?: SafetensorsWriteDtype;
  /** `__metadata__`; default {"format": "pt"} as transformers and PEFT write; null for none. */
  metadata?: Record<string, string> | null;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * f32 -> bf16 bits, round to nearest, ties to even. NaN becomes 0x7FC0, as in c10's
 * `round_to_nearest_even` (the conversion behind torch's `.to(torch.bfloat16)`); overflow to inf
 * is the correctly rounded result.
 */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0]!;
  if (Number.isNaN(x)) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The bytes of a safetensors file as `safetensors.torch.save_file` writes them: tensors sorted
 * by name (all have one dtype, and the crate sorts by descending alignment, then name), compact
 * JSON with `__metadata__` first and each entry's keys in the order dtype, shape, data_offsets,
 * padded with spaces to a multiple of 8 bytes. Returned as chunks (header, then one per tensor).
 */
export function encodeSafetensors(tensors: readonly TensorToWrite[], opts: WriteSafetensorsOptions = {}): Uint8Array[] {
  const dtype = opts.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'BF16') throw new RangeError(`encodeSafetensors: dtype must be F32 or BF16, got ${String(dtype)}`);
  const size = DTYPE_BYTES[dtype]!;
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (t.shape.every((d) => isCount(d)) && t.data.length !== numel)
      throw new RangeError(`encodeSafetensors: tensor "${t.name}" has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${numel}`);
  }
  const { head, order } = encodeSafetensorsHeader(
    tensors.map((t) => ({ name: t.name, dtype, shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * size })),
    opts.metadata === undefined ? { format: 'pt' } : opts.metadata,
  );
  const blobs = order.map((i) => {
    const t = tensors[i]!;
    const numel = t.data.length;
    const blob = new Uint8Array(numel * size);
    const view = new DataView(blob.buffer);
    if (dtype === 'F32') for (let k = 0; k < numel; k++) view.setFloat32(4 * k, t.data[k]!, true);
    else for (let k = 0; k < numel; k++) view.setUint16(2 * k, f32ToBf16Bits(t.data[k]!), true);
    return blob;
  });
  return [head, ...blobs];
}

/** A tensor's header entry: what the header says about it (its bytes are written after). */
export interface SafetensorsEntry {
  name: string;
  /** Any dtype of the format ('F32', 'BF16', 'F16', ...). */
  dtype: string;
  shape: readonly number[];
  byteLength: number;
}

/**
 * The 8-byte length + JSON header of a safetensors file, as `save_file` writes it (see
 * encodeSafetensors), and the order the tensors' bytes must follow it in (indices into
 * `entries`: sorted by name).
 */
export function encodeSafetensorsHeader(entries: readonly SafetensorsEntry[], metadata: Record<string, string> | null = { format: 'pt' }): { head: Uint8Array; order: number[] } {
  const order = entries.map((_, i) => i).sort((a, b) => Buffer.compare(Buffer.from(entries[a]!.name, 'utf8'), Buffer.from(entries[b]!.name, 'utf8')));
  const header: Record<string, unknown> = {};
  if (metadata !== null) header['__metadata__'] = metadata;
  let offset = 0;
  for (const i of order) {
    const t = entries[i]!;
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) throw new RangeError(`encodeSafetensors: duplicate or reserved tensor name "${t.name}"`);
    if (!t.shape.every((d) => isCount(d))) throw new RangeError(`encodeSafetensors: tensor "${t.name}" has shape ${JSON.stringify(t.shape)}`);
    const size = DTYPE_BYTES[t.dtype];
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (size === undefined || t.byteLength !== numel * size)
      throw new RangeError(`encodeSafetensors: tensor "${t.name}" (${t.dtype} [${t.shape.join(', ')}]) has ${t.byteLength} bytes, needs ${size === undefined ? '?' : numel * size}`);
    header[t.name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const N = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + N, 0x20);
  head.writeBigUInt64LE(BigInt(N), 0);
  json.copy(head, 8);
  return { head, order };
}

/** Writes a safetensors file atomically (temp file in the same folder, fsync, rename). */
export async function writeSafetensors(file: string, tensors: readonly TensorToWrite[], opts: WriteSafetensorsOptions = {}): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, opts));
}
