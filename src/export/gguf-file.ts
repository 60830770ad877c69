/**
 * The GGUF v3 container (ggml-org/ggml docs/gguf.md), little-endian:
 *
 *   "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
 *   kv_count x { string key | u32 value_type | value }
 *   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
 *   zero padding to `general.alignment` (default 32)
 *   tensor data: tensor i at data_start + offset_i, every offset a multiple of the alignment
 *
 * string = u64 byte length + UTF-8 bytes (no terminator); array = u32 item type + u64 count +
 * items. ne[] is ggml order: ne[0] is the innermost dimension (the Hugging Face shape reversed).
 *
 * encodeGgufHeader builds everything up to the data section from the tensors' sizes, so a writer
 * can stream the tensors after it one at a time (writeGgufFile).
 */
import { open } from 'node:fs/promises';

/** gguf_type: the kv value types. */
export const GgufType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufScalarType = Exclude<keyof typeof GgufType, 'ARRAY'>;

/** ggml_type of the tensor encodings this project writes, with their block size and bytes per block. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;
const BLOCK: Record<GgmlTypeName, { values: number; bytes: number }> = {
  F32: { values: 1, bytes: 4 },
  F16: { values: 1, bytes: 2 },
  BF16: { values: 1, bytes: 2 },
  Q8_0: { values: 32, bytes: 34 }, // block_q8_0: f16 scale + 32 int8
};

export type GgufValue =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | { type: 'ARRAY'; itemType: GgufScalarType; values: readonly (number | bigint | boolean | string)[] };

export interface GgufKv {
  key: string;
  value: GgufValue;
}

/** A tensor's entry in the header. */
export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] innermost. */
  ne: readonly number[];
  type: GgmlTypeName;
}

export const u32 = (value: number): GgufValue => ({ type: 'UINT32', value });
export const i32 = (value: number): GgufValue => ({ type: 'INT32', value });
export const f32 = (value: number): GgufValue => ({ type: 'FLOAT32', value });
export const str = (value: string): GgufValue => ({ type: 'STRING', value });
export const bool = (value: boolean): GgufValue => ({ type: 'BOOL', value });
export const arr = (itemType: GgufScalarType, values: readonly (number | bigint | boolean | string)[]): GgufValue => ({ type: 'ARRAY', itemType, values });

export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Bytes of a tensor's data; throws when its rows do not split into the type's blocks. */
export function ggufTensorBytes(t: GgufTensorInfo): number {
  const b = BLOCK[t.type];
  if (!b) throw new Error(`gguf tensor ${t.name}: unknown ggml type ${String(t.type)}`);
  if ((t.ne[0] ?? 1) % b.values !== 0) throw new Error(`gguf tensor ${t.name}: ${t.type} needs rows of a multiple of ${b.values} values, ne[0] is ${t.ne[0]}`);
  return (t.ne.reduce((a, c) => a * c, 1) / b.values) * b.bytes;
}

/** Growable little-endian byte sink. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = Buffer.alloc(cap);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void { this.ensure(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.ensure(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.ensure(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.ensure(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: number | bigint): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  i64(v: number | bigint): void { this.ensure(8); this.buf.writeBigInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  padTo(alignment: number): void { const r = this.length % alignment; if (r) { const n = alignment - r; this.ensure(n); this.buf.fill(0, this.length, this.length + n); this.length += n; } }
  result(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeScalar(w: ByteWriter, type: GgufScalarType, v: number | bigint | boolean | string, key: string): void {
  const num = (): number => {
    if (typeof v !== 'number') throw new Error(`gguf kv ${key}: ${type} needs a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case 'UINT8': return w.u8(num());
    case 'INT8': return w.i8(num());
    case 'UINT16': return w.u16(num());
    case 'INT16': return w.i16(num());
    case 'UINT32': return w.u32(num());
    case 'INT32': return w.i32(num());
    case 'FLOAT32': return w.f32(num());
    case 'FLOAT64': return w.f64(num());
    case 'UINT64':
    case 'INT64':
      if (typeof v !== 'number' && typeof v !== 'bigint') throw new Error(`gguf kv ${key}: ${type} needs a number or bigint`);
      return type === 'UINT64' ? w.u64(v) : w.i64(v);
    case 'BOOL':
      if (typeof v !== 'boolean') throw new Error(`gguf kv ${key}: BOOL needs a boolean`);
      return w.u8(v ? 1 : 0);
    case 'STRING':
      if (typeof v !== 'string') throw new Error(`gguf kv ${key}: STRING needs a string`);
      return w.string(v);
  }
}

/** The alignment a kv list sets (general.alignment, u32), else the default. */
export function ggufAlignment(kvs: readonly GgufKv[]): number {
  const kv = kvs.find((k) => k.key === 'general.alignment');
  const alignment = kv && kv.value.type === 'UINT32' ? Number(kv.value.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!(alignment > 0 && alignment % 8 === 0)) throw new Error(`general.alignment must be a positive multiple of 8, got ${alignment}`);
  return alignment;
}

/**
 * Everything before the data section (padded to the alignment), and each tensor's byte length and
 * offset in the data section (in the order given: the order the data must follow).
 */
export function encodeGgufHeader(kvs: readonly GgufKv[], tensors: readonly GgufTensorInfo[]): { header: Buffer; sizes: number[]; offsets: number[]; alignment: number } {
  const alignment = ggufAlignment(kvs);
  const w = new ByteWriter();
  w.bytes(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  const keys = new Set<string>();
  for (const { key, value } of kvs) {
    if (keys.has(key)) throw new Error(`duplicate gguf key ${key}`);
    keys.add(key);
    w.string(key);
    w.u32(GgufType[value.type]);
    if (value.type === 'ARRAY') {
      w.u32(GgufType[value.itemType]);
      w.u64(value.values.length);
      for (const item of value.values) writeScalar(w, value.itemType, item, key);
    } else {
      writeScalar(w, value.type, value.value, key);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  const sizes: number[] = [];
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`duplicate gguf tensor ${t.name}`);
    names.add(t.name);
    if (Buffer.byteLength(t.name, 'utf8') >= 64) throw new Error(`gguf tensor name too long (ggml limit 63 bytes): ${t.name}`);
    const size = ggufTensorBytes(t);
    w.string(t.name);
    w.u32(t.ne.length);
    for (const d of t.ne) w.u64(d);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offsets.push(offset);
    sizes.push(size);
    offset += Math.ceil(size / alignment) * alignment;
  }
  w.padTo(alignment);
  return { header: w.result(), sizes, offsets, alignment };
}

/** A whole GGUF file in memory (small files: tests, fixtures). */
export function encodeGguf(kvs: readonly GgufKv[], tensors: readonly (GgufTensorInfo & { data: Uint8Array })[]): Buffer {
  const { header, sizes, alignment } = encodeGgufHeader(kvs, tensors);
  const parts: Uint8Array[] = [header];
  tensors.forEach((t, i) => {
    if (t.data.length !== sizes[i]) throw new Error(`gguf tensor ${t.name}: ${t.data.length} bytes, ne [${t.ne.join(', ')}] ${t.type} needs ${sizes[i]}`);
    parts.push(t.data);
    const pad = (alignment - (t.data.length % alignment)) % alignment;
    if (pad) parts.push(new Uint8Array(pad));
  });
  return Buffer.concat(parts);
}

/**
 * Writes a GGUF file to `file` (created exclusively, fsynced), asking `data(i)` for tensor i's
 * bytes one at a time, so that only one tensor is in memory.
 */
export async function writeGgufFile(file: string, kvs: readonly GgufKv[], tensors: readonly GgufTensorInfo[], data: (index: number) => Promise<Uint8Array>): Promise<number> {
  const { header, sizes, alignment } = encodeGgufHeader(kvs, tensors);
  const fh = await open(file, 'wx');
  let written = 0;
  try {
    await fh.write(header);
    written += header.length;
    for (let i = 0; i < tensors.length; i++) {
      const bytes = await data(i);
      if (bytes.length !== sizes[i]) throw new Error(`gguf tensor ${tensors[i]!.name}: got ${bytes.length} bytes, ${tensors[i]!.type} [${tensors[i]!.ne.join(', ')}] needs ${sizes[i]}`);
      await fh.write(bytes);
      const pad = (alignment - (bytes.length % alignment)) % alignment;
      if (pad) await fh.write(new Uint8Array(pad));
      written += bytes.length + pad;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return written;
}
