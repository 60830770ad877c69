// The export's native tensor transforms (native/addon/export_tensor.cc) against references
// written here in TypeScript: every half-precision value and rounding midpoint, torch's bf16
// rounding (src/model/safetensors.ts's f32ToBf16Bits), ggml's Q8_0 block layout by hand, the LoRA
// merge in float64, the RoPE row permutation of test/helpers/gguf-writer.ts.
import { describe, expect, it } from 'vitest';
import { f32ToBf16Bits } from '../../src/model/safetensors.js';
import { loadNative, type NativeTensorTransform } from '../../src/native.js';
import { permuteForGgufLlamaRope } from '../helpers/gguf-writer.js';
import { mulberry32 } from '../helpers/tiny-models.js';

const native = loadNative();
const transform = (t: NativeTensorTransform) => native.transformTensor(t);
const bytesOf = (a: Float32Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const f32Bytes = (values: ArrayLike<number>) => bytesOf(Float32Array.from(values));
const asF32 = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const asU16 = (b: Uint8Array) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);

/** IEEE half bits -> value, written from the format's definition. */
function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() / 2 ** 32 - 0.5) * 2 * scale);
}

describe('transformTensor: dtype conversion', () => {
  it('encodes every half value to itself and rounds every midpoint to even (F32 -> F16)', async () => {
    const values: number[] = [];
    const want: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const v = halfValue(h);
      if (Number.isNaN(v)) continue;
      values.push(v);
      want.push(h);
      const exp = (h >> 10) & 0x1f;
      // the midpoint to the next larger magnitude (exactly representable in f32): ties to even
      if (exp < 30 || (exp === 30 && (h & 0x3ff) < 0x3ff)) {
        const up = halfValue(h + 1);
        values.push((v + up) / 2);
        want.push((h & 1) === 0 ? h : h + 1);
      }
    }
    // beyond the largest half (65504): 65519.996 still rounds down, 65520 (the midpoint to 2^16) to inf
    values.push(65519.99609375, 65520, 1e6, -65520);
    want.push(0x7bff, 0x7c00, 0x7c00, 0xfc00);
    const out = asU16(await transform({ src: f32Bytes(values), srcDtype: 'F32', rows: values.length, cols: 1, outDtype: 'F16' }));
    let bad = 0;
    for (let i = 0; i < values.length; i++) if (out[i] !== want[i]) bad++;
    expect(bad).toBe(0);
    const nan = asU16(await transform({ src: f32Bytes([NaN]), srcDtype: 'F32', rows: 1, cols: 1, outDtype: 'F16' }));
    expect(Number.isNaN(halfValue(nan[0]!))).toBe(true);
  });

  it('rounds to bf16 as torch does, and decodes BF16 / F16 sources exactly', async () => {
    const x = randomValues(4096, 7, 3);
    x.set([0, -0, 1e-40, -3.4e38, Infinity, 1 + 2 ** -8, 1 + 3 * 2 ** -8], 0);
    const bf = asU16(await transform({ src: bytesOf(x), srcDtype: 'F32', rows: 64, cols: 64, outDtype: 'BF16' }));
    expect(Array.from(bf)).toEqual(Array.from(x, (v) => f32ToBf16Bits(v)));
    // BF16 source back to F32: the bits shifted up
    const back = asF32(await transform({ src: bytesOf(bf), srcDtype: 'BF16', rows: 64, cols: 64, outDtype: 'F32' }));
    const u32 = new Uint32Array(back.buffer, back.byteOffset, back.length);
    expect(Array.from(u32)).toEqual(Array.from(bf, (h) => (h << 16) >>> 0));
    const halves = Uint16Array.from({ length: 0x7c00 }, (_, i) => i); // every finite positive half
    const fromHalf = asF32(await transform({ src: bytesOf(halves), srcDtype: 'F16', rows: halves.length, cols: 1, outDtype: 'F32' }));
    expect(Array.from(fromHalf)).toEqual(Array.from(halves, halfValue));
  });
});

describe('transformTensor: Q8_0', () => {
  /** ggml's quantize_row_q8_0_ref, written out: per 32 values, d = amax / 127, q = round(x / d). */
  function q8Reference(x: Float32Array, halfBits: (v: number) => number): Uint8Array {
    const out = new Uint8Array((x.length / 32) * 34);
    const view = new DataView(out.buffer);
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      const d = Math.fround(amax / 127);
      const id = d === 0 ? 0 : Math.fround(1 / d);
      view.setUint16(b * 34, halfBits(d), true);
      for (let j = 0; j < 32; j++) {
        const v = Math.fround(x[b * 32 + j]! * id);
        view.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.round(Math.abs(v))); // roundf: halves away from zero
      }
    }
    return out;
  }

  it('writes ggml block_q8_0 bytes (f16 scale, 32 int8) equal to the reference', async () => {
    const x = randomValues(96 * 64, 11, 0.5);
    x.fill(0, 0, 32); // an all-zero block: d = 0, q = 0
    x[40] = 0.25; // a block whose max sits at one value
    const encodeHalf = async (v: number) => asU16(await transform({ src: f32Bytes([v]), srcDtype: 'F32', rows: 1, cols: 1, outDtype: 'F16' }))[0]!;
    const scales = new Map<number, number>();
    for (let b = 0; b < x.length / 32; b++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]!));
      const d = Math.fround(amax / 127);
      scales.set(d, await encodeHalf(d)); // the F16 path is checked exhaustively above
    }
    const got = await transform({ src: bytesOf(x), srcDtype: 'F32', rows: 96, cols: 64, outDtype: 'Q8_0' });
    expect(got.length).toBe((96 * 64 * 34) / 32);
    expect(Buffer.from(got).equals(Buffer.from(q8Reference(x, (v) => scales.get(v)!)))).toBe(true);
    // dequantised values are within half a step of the input, plus the f16 rounding of the step
    // (relative 2^-11) times |q| <= 127: 0.5 + 127 / 2048 = 0.562 steps
    const view = new DataView(got.buffer, got.byteOffset, got.byteLength);
    let worst = 0;
    for (let b = 0; b < x.length / 32; b++) {
      const d = halfValue(view.getUint16(b * 34, true));
      for (let j = 0; j < 32; j++) worst = Math.max(worst, Math.abs(view.getInt8(b * 34 + 2 + j) * d - x[b * 32 + j]!) / (d || 1));
    }
    expect(worst).toBeLessThan(0.5621);
  });

  it('refuses rows that are not a multiple of 32 values', async () => {
    await expect(async () => transform({ src: f32Bytes(new Float32Array(48)), srcDtype: 'F32', rows: 1, cols: 48, outDtype: 'Q8_0' })).rejects.toThrow(/Q8_0 needs cols to be a multiple of 32, got 48/);
  });
});

describe('transformTensor: LoRA merge, +1, RoPE permutation', () => {
  const rows = 48, cols = 40, rank = 4;

  it('adds scale * B @ A to the weight (float64 reference), from BF16 and F32 storage', async () => {
    const w = randomValues(rows * cols, 1);
    const a = randomValues(rank * cols, 2);
    const b = randomValues(rows * rank, 3);
    const scale = 16 / rank;
    const want = new Float64Array(rows * cols);
    for (let n = 0; n < rows; n++)
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s += b[n * rank + k]! * a[k * cols + j]!;
        want[n * cols + j] = w[n * cols + j]! + scale * s;
      }
    const got = asF32(await transform({ src: bytesOf(w), srcDtype: 'F32', rows, cols, lora: { a: bytesOf(a), aDtype: 'F32', b: bytesOf(b), bDtype: 'F32', rank, scale }, outDtype: 'F32' }));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    expect(worst).toBeLessThan(1e-5);
    // BF16-stored base and adapter: decoded exactly, so the same sum of the rounded values
    const bf = (x: Float32Array) => bytesOf(Uint16Array.from(x, (v) => f32ToBf16Bits(v)));
    const unbf = (x: Float32Array) => Float32Array.from(x, (v) => new Float32Array(new Uint32Array([f32ToBf16Bits(v) << 16]).buffer)[0]!);
    const [wb, ab, bb] = [unbf(w), unbf(a), unbf(b)];
    const gotBf = asF32(await transform({ src: bf(w), srcDtype: 'BF16', rows, cols, lora: { a: bf(a), aDtype: 'BF16', b: bf(b), bDtype: 'BF16', rank, scale }, outDtype: 'F32' }));
    worst = 0;
    for (let n = 0; n < rows; n++)
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < rank; k++) s += bb[n * rank + k]! * ab[k * cols + j]!;
        worst = Math.max(worst, Math.abs(gotBf[n * cols + j]! - (wb[n * cols + j]! + scale * s)));
      }
    expect(worst).toBeLessThan(1e-5);
  });

  it('adds one and permutes rows per head as llama.cpp\'s converter does (rows and 1-D biases)', async () => {
    const w = randomValues(rows * cols, 4);
    const heads = 3; // 48 rows: 3 heads of 16
    const got = asF32(await transform({ src: bytesOf(w), srcDtype: 'F32', rows, cols, permuteHeads: heads, addOne: true, outDtype: 'F32' }));
    const want = permuteForGgufLlamaRope(w.map((v) => Math.fround(v + 1)), heads, cols);
    expect(Array.from(got)).toEqual(Array.from(want));
    const bias = randomValues(rows, 5);
    const gotBias = asF32(await transform({ src: bytesOf(bias), srcDtype: 'F32', rows, cols: 1, permuteHeads: heads, outDtype: 'F32' }));
    expect(Array.from(gotBias)).toEqual(Array.from(permuteForGgufLlamaRope(bias, heads, 1)));
  });

  it('names the argument whose size or type is wrong', async () => {
    const w = f32Bytes(new Float32Array(rows * cols));
    await expect(async () => transform({ src: w, srcDtype: 'BF16', rows, cols, outDtype: 'F32' })).rejects.toThrow(/transformTensor\.src has 7680 bytes, its shape and dtype need 3840/);
    await expect(async () =>
      transform({ src: w, srcDtype: 'F32', rows, cols, lora: { a: f32Bytes(new Float32Array(3)), aDtype: 'F32', b: f32Bytes(new Float32Array(rows * rank)), bDtype: 'F32', rank, scale: 1 }, outDtype: 'F32' }),
    ).rejects.toThrow(/lora\.a \(\[rank, cols\]\) has 12 bytes/);
    await expect(async () => transform({ src: w, srcDtype: 'F64' as never, rows, cols, outDtype: 'F32' })).rejects.toThrow(/srcDtype must be "F32", "BF16" or "F16", got "F64"/);
    await expect(async () => transform({ src: w, srcDtype: 'F32', rows, cols, permuteHeads: 5, outDtype: 'F32' })).rejects.toThrow(/do not split into 5 heads/);
  });
});
