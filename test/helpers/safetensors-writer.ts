// Writes real safetensors files (and the sharded layout Hugging Face uses) for tests.
//
// Format (https://github.com/huggingface/safetensors):
//   u64 little-endian N = byte length of the JSON header
//   N bytes of UTF-8 JSON: { "<name>": { "dtype", "shape", "data_offsets": [begin, end] }, ...,
//                            "__metadata__": { "<key>": "<string value>" } }   (metadata optional)
//     padded with spaces (0x20) so that 8 + N is a multiple of 8
//   the tensor bytes, little-endian, row-major; data_offsets are relative to the end of the header
//     and tile the data section without gaps.
//
// Values are given as Float32Array and converted to the stored dtype here: BF16 by round-to-nearest-
// even of the f32 bits, F16 by a correct f32 -> IEEE half conversion (RNE, subnormals, inf, NaN).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type SafetensorsDtype = 'F32' | 'BF16' | 'F16';

export interface TensorSpec {
  name: string;
  dtype: SafetensorsDtype;
  /** Hugging Face (PyTorch) order, outermost first, e.g. [out_features, in_features]. */
  shape: number[];
  /** Row-major values; length must equal the product of shape. */
  data: Float32Array;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bits of x as an f32. */
export function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

/** The f32 whose bits are `bits`. */
export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0]!;
}

/** f32 -> bf16 bits, round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
    return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, sign kept
  }
  const lsb = (bits >>> 16) & 1;
  // Adding 0x7fff + lsb carries into the upper half exactly when the lower half is above the
  // halfway point, or at it and the upper half is odd. Overflow to inf is the correct result.
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** f32 -> IEEE 754 binary16 bits, round to nearest, ties to even. */
export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x007fffff;

  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x0200 | (mant >>> 13) : 0); // inf / NaN
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    // Subnormal half (or zero). The value is m * 2^(e-1-10) with the implicit bit made explicit;
    // shift right by (14 - e) bits of the 24-bit significand, rounding to nearest even.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to +-0
    const m = mant | 0x00800000;
    const shift = 14 - e; // 14..24
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1; // may carry into the normal range: fine
    return sign | h;
  }
  // Normal: keep 10 mantissa bits, round the dropped 13 bits to nearest even.
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // carry may bump exponent / reach inf: correct
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** The value x takes after being stored as `dtype` and read back (as an f32/f64 number). */
export function roundToDtype(x: number, dtype: SafetensorsDtype): number {
  switch (dtype) {
    case 'F32':
      return Math.fround(x);
    case 'BF16':
      return bf16BitsToF32(f32ToBf16Bits(x));
    case 'F16':
      return f16BitsToF32(f32ToF16Bits(x));
  }
}

export function dtypeBytes(dtype: SafetensorsDtype): number {
  return dtype === 'F32' ? 4 : 2;
}

/** Encodes one tensor's values as little-endian bytes of its dtype. */
export function encodeTensorData(t: TensorSpec): Buffer {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) {
    throw new Error(`tensor ${t.name}: data has ${t.data.length} values but shape [${t.shape.join(', ')}] needs ${n}`);
  }
  const buf = Buffer.alloc(n * dtypeBytes(t.dtype));
  if (t.dtype === 'F32') {
    for (let i = 0; i < n; i++) buf.writeFloatLE(t.data[i]!, i * 4);
  } else {
    const conv = t.dtype === 'BF16' ? f32ToBf16Bits : f32ToF16Bits;
    for (let i = 0; i < n; i++) buf.writeUInt16LE(conv(t.data[i]!), i * 2);
  }
  return buf;
}

/** Builds the bytes of a safetensors file holding `tensors` in the order given. */
export function encodeSafetensors(tensors: TensorSpec[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) header['__metadata__'] = metadata;
  const blobs: Buffer[] = [];
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    seen.add(t.name);
    const blob = encodeTensorData(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + blob.length] };
    offset += blob.length;
    blobs.push(blob);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...blobs]);
}

export function writeSafetensors(path: string, tensors: TensorSpec[], metadata?: Record<string, string>): void {
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}

export function shardFileName(k: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, '0');
  return `model-${pad(k)}-of-${pad(n)}.safetensors`;
}

/**
 * Splits `tensors` (in order) into `shardCount` contiguous groups of roughly equal byte size and
 * writes model-0000k-of-0000n.safetensors plus model.safetensors.index.json, as HF's
 * save_pretrained does. total_size is the sum of the tensor data bytes (headers excluded).
 * Returns the weight map.
 */
export function writeShardedSafetensors(
  dir: string,
  tensors: TensorSpec[],
  shardCount: number,
  metadata: Record<string, string> = { format: 'pt' },
): Record<string, string> {
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new Error(`shardCount must be a positive integer, got ${shardCount}`);
  if (shardCount > tensors.length) throw new Error(`shardCount ${shardCount} exceeds the ${tensors.length} tensors`);
  mkdirSync(dir, { recursive: true });
  const sizes = tensors.map((t) => t.shape.reduce((a, b) => a * b, 1) * dtypeBytes(t.dtype));
  const total = sizes.reduce((a, b) => a + b, 0);

  // Greedy cut: close shard k once its cumulative size reaches k/shardCount of the total, while
  // leaving at least one tensor for each remaining shard.
  const groups: TensorSpec[][] = Array.from({ length: shardCount }, () => []);
  let acc = 0; // bytes placed so far
  let k = 0; // current shard
  for (let i = 0; i < tensors.length; i++) {
    const shardsAfter = shardCount - 1 - k;
    const current = groups[k]!;
    if (current.length > 0 && shardsAfter > 0) {
      const full = acc >= ((k + 1) * total) / shardCount;
      const mustLeaveOneEach = tensors.length - i === shardsAfter;
      if (full || mustLeaveOneEach) k++;
    }
    groups[k]!.push(tensors[i]!);
    acc += sizes[i]!;
  }

  const weightMap: Record<string, string> = {};
  groups.forEach((g, idx) => {
    const file = shardFileName(idx + 1, shardCount);
    writeSafetensors(join(dir, file), g, metadata);
    for (const t of g) weightMap[t.name] = file;
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index, null, 2) + '\n');
  return weightMap;
}
