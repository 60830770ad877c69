// The packed forward (native/cpu/matmul_packed.cc): W packed once into 48-column panels, as the
// model packs its frozen decoder weights at load (Mat::packed). Three properties, each against
// values computed independently of the packed kernels:
//   1. within float32 (F32 weights) or bf16-activation (BF16 products) rounding of a float64
//      reference computed here, on shapes with N not a multiple of 48, K past the 256-step block,
//      odd K (F32), bias and accumulate;
//   2. bit-identical to the unpacked kernels from M = 32 on (smallM: their register-blocked GEMM
//      sums each output in the same 256-step blocks), so training numerics do not move;
//   3. the same bits for a row whatever the batch it is in (M = 1 ... 40, decode tiles of 1-4 rows
//      over several panels, 8-row tiles and their tails): a sequence decoded alone and in a batch
//      gets the same logits.
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native.js';
import { encodeTensorData, roundToDtype, type SafetensorsDtype } from '../helpers/safetensors-writer.js';
import type { KernelExports } from './kernels-addon.js';

const addon = loadNative() as unknown as KernelExports;
const info = addon._matmulKernelInfo();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function randF32(n: number, next: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = next() * 2;
  return a;
}

function makeWeights(N: number, K: number, dtype: SafetensorsDtype, next: () => number): { bytes: Uint8Array; values: Float64Array } {
  const data = randF32(N * K, next);
  const bytes = encodeTensorData({ name: 'w', dtype, shape: [N, K], data });
  const values = new Float64Array(N * K);
  for (let i = 0; i < values.length; i++) values[i] = roundToDtype(data[i]!, dtype);
  return { bytes, values };
}

/** x rounded to bf16, nearest even (what the bf16 products multiply). */
function bf16(x: number): number {
  return roundToDtype(x, 'BF16');
}

type Dt = 'F32' | 'BF16_PRODUCTS';
const cases: { dt: Dt; shapes: [number, number, number][] }[] = [
  { dt: 'F32', shapes: [[1, 896, 130], [3, 67, 49], [5, 300, 47], [16, 896, 97], [33, 513, 96], [40, 7, 1]] },
  { dt: 'BF16_PRODUCTS', shapes: [[1, 896, 130], [2, 70, 17], [4, 600, 200], [16, 896, 97], [37, 1100, 48], [9, 2, 50]] },
];
const available = (dt: Dt) => info.avx512 && (dt === 'F32' || info.bf16DotCompiled);

describe('packed forward (W packed once, 48-column panels)', () => {
  for (const { dt, shapes } of cases)
    it.skipIf(!available(dt))(`${dt}: within rounding of a float64 reference`, () => {
      // F32: each element within 1e-5 * S (S = sum |x w| + |bias| + |init|: float32 rounding of
      // that many terms), as test/kernels/matmul.test.ts. BF16 products: the reference multiplies
      // inp rounded to bf16, as the kernel does, so the same float32 bound holds; an error of
      // 2^-9 S would mean the rounding or a pair is wrong.
      for (const [M, K, N] of shapes) {
        const next = rng(M * 131 + K * 7 + N);
        const W = makeWeights(N, K, dt === 'F32' ? 'F32' : 'BF16', next);
        const inp = randF32(M * K, next);
        const bias = randF32(N, next);
        for (const accumulate of [false, true]) {
          const init = randF32(M * N, next);
          const out = Float32Array.from(init);
          addon._matmulForward(out, inp, W.bytes, dt, M, K, N, bias, accumulate, 'packed');
          let worst = 0;
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) {
              let s = bias[n]! + (accumulate ? init[m * N + n]! : 0);
              let a = Math.abs(bias[n]!) + (accumulate ? Math.abs(init[m * N + n]!) : 0);
              for (let k = 0; k < K; k++) {
                const x = dt === 'F32' ? inp[m * K + k]! : bf16(inp[m * K + k]!);
                const p = x * W.values[n * K + k]!;
                s += p;
                a += Math.abs(p);
              }
              worst = Math.max(worst, Math.abs(out[m * N + n]! - s) / a);
            }
          expect(worst, `${dt} M=${M} K=${K} N=${N} accumulate=${accumulate}`).toBeLessThanOrEqual(1e-5);
        }
      }
    });

  for (const dt of ['F32', 'BF16_PRODUCTS'] as const)
    it.skipIf(!available(dt))(`${dt}: bit-identical to the unpacked kernels from M = 32 on`, () => {
      expect(info.smallM, 'the unpacked forward switches to its packed GEMM at M = 32').toBe(32);
      for (const [M, K, N] of [[32, 896, 100], [64, 1100, 49], [100, 130, 300]] as const) {
        const next = rng(M + K + N);
        const W = makeWeights(N, K, dt === 'F32' ? 'F32' : 'BF16', next);
        const inp = randF32(M * K, next);
        const bias = randF32(N, next);
        const init = randF32(M * N, next);
        const packed = Float32Array.from(init);
        const unpacked = Float32Array.from(init);
        addon._matmulForward(packed, inp, W.bytes, dt, M, K, N, bias, true, 'packed');
        addon._matmulForward(unpacked, inp, W.bytes, dt, M, K, N, bias, true, 'auto');
        expect(Array.from(packed), `${dt} M=${M} K=${K} N=${N}`).toEqual(Array.from(unpacked));
      }
    });

  for (const dt of ['F32', 'BF16_PRODUCTS'] as const)
    it.skipIf(!available(dt))(`${dt}: a row gets the same bits in every batch size`, () => {
      const [K, N] = [600, 200];
      const Mmax = 40;
      const next = rng(4242);
      const W = makeWeights(N, K, dt === 'F32' ? 'F32' : 'BF16', next);
      const inp = randF32(Mmax * K, next);
      const bias = randF32(N, next);
      const alone = new Float32Array(Mmax * N);
      for (let m = 0; m < Mmax; m++) {
        const row = new Float32Array(N);
        addon._matmulForward(row, inp.subarray(m * K, (m + 1) * K), W.bytes, dt, 1, K, N, bias, false, 'packed');
        alone.set(row, m * N);
      }
      for (const M of [2, 3, 4, 5, 8, 9, 16, 17, 31, 32, 40]) {
        const out = new Float32Array(M * N);
        addon._matmulForward(out, inp.subarray(0, M * K), W.bytes, dt, M, K, N, bias, false, 'packed');
        expect(Array.from(out), `${dt} M=${M}`).toEqual(Array.from(alone.subarray(0, M * N)));
      }
    });

  it('says when there is no packed form (F16 weights; BF16 without bf16 products)', () => {
    const W = makeWeights(8, 16, 'F16', rng(1));
    expect(() => addon._matmulForward(new Float32Array(8), new Float32Array(16), W.bytes, 'F16', 1, 16, 8, null, false, 'packed')).toThrow(
      /impl "packed": this CPU or binary has no packed forward for these weights/,
    );
  });
});
