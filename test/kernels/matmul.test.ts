// The CPU matmul kernels (native/cpu/matmul*.cc) against a float64 reference computed here, through
// the addon's test-only exports. Every implementation the binary holds is checked: the portable
// loops ("generic"), what the model calls ("auto"), on AVX-512 CPUs each forward kernel forced on
// (dot products for decode-sized M, the packed GEMM otherwise), and on AVX2 CPUs the AVX2 kernels
// (matmul_avx2.cc; an AVX-512 CPU runs them too).
//
// Tolerance: the reference sums in float64 the products of exactly the float32 inputs and the
// exactly decoded stored weights, so the only error is float32 rounding in the kernel. Each element
// must satisfy |got - ref| <= 1e-5 * S, with S = sum_k |x_k * w_k| + |bias| + |initial value| the
// magnitude that a float32 sum of those terms can be wrong by a multiple of (at most ~K * 6e-8 * S
// in the worst case, far less for blocked sums); a wrong index or a dropped term errs by O(S).
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native.js';
import { encodeTensorData, roundToDtype, type SafetensorsDtype } from '../helpers/safetensors-writer.js';
import type { KernelExports, KernelImpl } from './kernels-addon.js';

const addon = loadNative() as unknown as KernelExports;
const info = addon._matmulKernelInfo();

const Ms = [1, 3, 16, 17, 64, 100];
const KNs = [1, 7, 64, 100, 896];
const TOL = 1e-5;

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

/** n random floats in a Float32Array that starts one element into its buffer (not 64-byte aligned). */
function randF32(n: number, next: () => number): Float32Array {
  const a = new Float32Array(n + 1).subarray(1);
  for (let i = 0; i < n; i++) a[i] = next() * 2;
  return a;
}

interface Weights {
  bytes: Uint8Array; // stored W [N,K], at `offset` bytes into its buffer
  values: Float64Array; // the stored values decoded exactly
}

function makeWeights(N: number, K: number, dtype: SafetensorsDtype, offset: number, next: () => number): Weights {
  const data = new Float32Array(N * K);
  for (let i = 0; i < data.length; i++) data[i] = next() * 2;
  const enc = encodeTensorData({ name: 'w', dtype, shape: [N, K], data });
  const buf = new ArrayBuffer(enc.length + offset + 8);
  const bytes = new Uint8Array(buf, offset, enc.length);
  bytes.set(enc);
  const values = new Float64Array(N * K);
  for (let i = 0; i < values.length; i++) values[i] = roundToDtype(data[i]!, dtype);
  return { bytes, values };
}

/** Checks got against ref elementwise with bound TOL * mag; returns the worst |err| / mag. */
function expectClose(got: ArrayLike<number>, ref: Float64Array, mag: Float64Array, what: string): number {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(got[i]! - ref[i]!) / (mag[i]! + 1e-30);
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  if (!(worst <= TOL)) expect.fail(`${what}: element ${at} is ${got[at]}, reference ${ref[at]} (|err| / magnitude = ${worst})`);
  return worst;
}

// Forward kernels to check on this binary: [label, impl, smallM override (forces dot or packed)].
const forwardImpls: [string, KernelImpl, number | null][] = [
  ['generic', 'generic', null],
  ['auto', 'auto', null],
  ...(info.avx512
    ? ([
        ['avx512 dot', 'avx512', 1 << 30],
        ['avx512 packed', 'avx512', 1],
      ] as [string, KernelImpl, number][])
    : []),
  // the AVX2 path's dot products (M < 6) and packed GEMM are both reached by Ms below
  ...(info.avx2 ? ([['avx2', 'avx2', null]] as [string, KernelImpl, null][]) : []),
];
const otherImpls: KernelImpl[] = ['generic', 'auto', ...(info.avx512 ? (['avx512'] as const) : []), ...(info.avx2 ? (['avx2'] as const) : [])];

function checkShape(dtype: SafetensorsDtype, M: number, K: number, N: number, seed: number): void {
  const next = rng(seed);
  const offset = dtype === 'F32' ? 4 : 2; // only the element alignment that safetensors guarantees
  const W = makeWeights(N, K, dtype, offset, next);
  const inp = randF32(M * K, next);
  const bias = randF32(N, next);
  const out0 = randF32(M * N, next);
  const dout = randF32(M * N, next);
  const dinp0 = randF32(M * K, next);
  const dw0 = randF32(N * K, next);
  const db0 = randF32(N, next);
  const tag = `${dtype} M=${M} K=${K} N=${N}`;

  // forward: prod[m,n] = sum_k inp[m,k] W[n,k], with magnitude sums
  const prod = new Float64Array(M * N);
  const prodMag = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      let a = 0;
      for (let k = 0; k < K; k++) {
        const p = inp[m * K + k]! * W.values[n * K + k]!;
        s += p;
        a += Math.abs(p);
      }
      prod[m * N + n] = s;
      prodMag[m * N + n] = a;
    }
  for (const [label, impl, smallM] of forwardImpls)
    for (const accumulate of [false, true])
      for (const withBias of [false, true]) {
        const out = Float32Array.from(out0);
        const ref = new Float64Array(M * N);
        const mag = new Float64Array(M * N);
        for (let i = 0; i < M * N; i++) {
          const n = i % N;
          ref[i] = prod[i]! + (withBias ? bias[n]! : 0) + (accumulate ? out0[i]! : 0);
          mag[i] = prodMag[i]! + (withBias ? Math.abs(bias[n]!) : 0) + (accumulate ? Math.abs(out0[i]!) : 0);
        }
        const prev = smallM === null ? null : addon._matmulSetSmallM(smallM);
        try {
          addon._matmulForward(out, inp, W.bytes, dtype, M, K, N, withBias ? bias : null, accumulate, impl);
        } finally {
          if (prev !== null) addon._matmulSetSmallM(prev);
        }
        expectClose(out, ref, mag, `forward ${label} ${tag} accumulate=${accumulate} bias=${withBias}`);
      }

  // backward input: dinp[m,k] += sum_n dout[m,n] W[n,k]
  {
    const ref = new Float64Array(M * K);
    const mag = new Float64Array(M * K);
    for (let m = 0; m < M; m++)
      for (let k = 0; k < K; k++) {
        let s = dinp0[m * K + k]!;
        let a = Math.abs(s);
        for (let n = 0; n < N; n++) {
          const p = dout[m * N + n]! * W.values[n * K + k]!;
          s += p;
          a += Math.abs(p);
        }
        ref[m * K + k] = s;
        mag[m * K + k] = a;
      }
    for (const impl of otherImpls) {
      const dinp = Float32Array.from(dinp0);
      addon._matmulBackwardInput(dinp, dout, W.bytes, dtype, M, K, N, impl);
      expectClose(dinp, ref, mag, `backward_input ${impl} ${tag}`);
    }
  }

  // backward weight (no stored weights involved: once, with the F32 sweep)
  if (dtype === 'F32') {
    const ref = new Float64Array(N * K);
    const mag = new Float64Array(N * K);
    const refB = new Float64Array(N);
    const magB = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      let sb = db0[n]!;
      let ab = Math.abs(sb);
      for (let m = 0; m < M; m++) {
        sb += dout[m * N + n]!;
        ab += Math.abs(dout[m * N + n]!);
      }
      refB[n] = sb;
      magB[n] = ab;
      for (let k = 0; k < K; k++) {
        let s = dw0[n * K + k]!;
        let a = Math.abs(s);
        for (let m = 0; m < M; m++) {
          const p = dout[m * N + n]! * inp[m * K + k]!;
          s += p;
          a += Math.abs(p);
        }
        ref[n * K + k] = s;
        mag[n * K + k] = a;
      }
    }
    for (const impl of otherImpls) {
      const dw = Float32Array.from(dw0);
      const db = Float32Array.from(db0);
      addon._matmulBackwardWeight(dw, db, dout, inp, M, K, N, impl);
      expectClose(dw, ref, mag, `backward_weight ${impl} ${tag} dweight`);
      expectClose(db, refB, magB, `backward_weight ${impl} ${tag} dbias`);
      // either output may be absent
      const dwOnly = Float32Array.from(dw0);
      addon._matmulBackwardWeight(dwOnly, null, dout, inp, M, K, N, impl);
      expectClose(dwOnly, ref, mag, `backward_weight ${impl} ${tag} dweight without dbias`);
      const dbOnly = Float32Array.from(db0);
      addon._matmulBackwardWeight(null, dbOnly, dout, inp, M, K, N, impl);
      expectClose(dbOnly, refB, magB, `backward_weight ${impl} ${tag} dbias without dweight`);
    }
  }
}

describe('matmul kernels against a float64 reference', () => {
  for (const dtype of ['F32', 'BF16'] as const)
    for (const M of Ms)
      it(`${dtype} weights, M=${M}, K and N in {${KNs.join(', ')}}`, () => {
        for (const K of KNs) for (const N of KNs) checkShape(dtype, M, K, N, M * 1_000_003 + K * 1009 + N);
      });

  it('F16 weights on a few shapes', () => {
    for (const [M, K, N] of [[1, 100, 7], [17, 64, 100], [64, 896, 64]] as const) checkShape('F16', M, K, N, M + K + N);
  });

  it('LoRA-shaped products (rank 8 and 64 as N or K) and shapes past every cache block (M > 256, K > 256, N > 512)', () => {
    for (const [M, K, N] of [[100, 896, 8], [100, 8, 896], [64, 64, 4864], [33, 4864, 64], [40, 300, 520], [300, 70, 33], [257, 40, 530]] as const)
      checkShape('F32', M, K, N, M * 7 + K * 3 + N);
  });

  it('gives bit-identical results wherever the weights sit in memory (alignment changes no rounding)', () => {
    // A model loaded from a sharded checkpoint must compute exactly what the single-file one does.
    for (const dtype of ['F32', 'BF16'] as const)
      for (const [M, K, N] of [[1, 896, 9], [4, 64, 5], [17, 896, 7], [64, 128, 33]] as const) {
        const next = rng(M + K + N);
        const inp = randF32(M * K, next);
        const dout = randF32(M * N, next);
        const base = makeWeights(N, K, dtype, 0, next);
        let ref: [Float32Array, Float32Array] | null = null;
        for (let offset = 0; offset < 64; offset += dtype === 'F32' ? 4 : 2) {
          const buf = new Uint8Array(new ArrayBuffer(base.bytes.length + 64), offset, base.bytes.length);
          buf.set(base.bytes);
          const out = new Float32Array(M * N);
          addon._matmulForward(out, inp, buf, dtype, M, K, N, null, false, 'auto');
          const dinp = new Float32Array(M * K);
          addon._matmulBackwardInput(dinp, dout, buf, dtype, M, K, N, 'auto');
          if (!ref) ref = [out, dinp];
          else {
            expect(out, `forward ${dtype} M=${M} K=${K} N=${N} at byte offset ${offset}`).toEqual(ref[0]);
            expect(dinp, `backward_input ${dtype} M=${M} K=${K} N=${N} at byte offset ${offset}`).toEqual(ref[1]);
          }
        }
      }
  });

  it.skipIf(!info.bf16DotCompiled)('opt-in bf16 x bf16 forward: within bf16 rounding of the activations (4e-3 of the magnitude)', () => {
    // inp is rounded to bf16 (relative error <= 2^-9 per element), so each element may be off by
    // up to 2^-9 * S plus f32 rounding; 4e-3 * S leaves room for both and still catches any
    // misplaced pair (an O(S) error). The default path must not be affected.
    const prev = addon._matmulSetBf16Dot(true);
    try {
      for (const [M, K, N] of [[32, 64, 7], [64, 896, 100], [100, 100, 64], [33, 1100, 40], [257, 30, 530]] as const) {
        const next = rng(M * K * N);
        const W = makeWeights(N, K, 'BF16', 2, next);
        const inp = randF32(M * K, next);
        const bias = randF32(N, next);
        for (const accumulate of [false, true]) {
          const out0 = randF32(M * N, next);
          const out = Float32Array.from(out0);
          addon._matmulForward(out, inp, W.bytes, 'BF16', M, K, N, bias, accumulate, 'auto');
          let worst = 0;
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) {
              let s = bias[n]! + (accumulate ? out0[m * N + n]! : 0);
              let a = Math.abs(bias[n]!) + (accumulate ? Math.abs(out0[m * N + n]!) : 0);
              for (let k = 0; k < K; k++) {
                const p = inp[m * K + k]! * W.values[n * K + k]!;
                s += p;
                a += Math.abs(p);
              }
              worst = Math.max(worst, Math.abs(out[m * N + n]! - s) / a);
            }
          expect(worst, `bf16 dot M=${M} K=${K} N=${N} accumulate=${accumulate}`).toBeLessThanOrEqual(4e-3);
          expect(worst, 'the activations really were rounded (this path ran)').toBeGreaterThan(1e-6);
        }
      }
    } finally {
      addon._matmulSetBf16Dot(prev);
    }
    expect(addon._matmulKernelInfo().bf16Dot).toBe(prev);
  });

  it.skipIf(!info.bf16DotCompiled)('bf16 products per weight (Mat::bf16Products): forward and backward-input within bf16 rounding', () => {
    // Same bound as above: the activation side (inp, or dout for backward-input) is rounded to bf16.
    // Odd N exercises the zero-padded last pair of W's rows in backward-input; M below smallM the
    // decode-sized forward (K = 70: a masked tail of pairs); backward-input with M <= 4 stays f32.
    for (const [M, K, N] of [[64, 896, 100], [40, 64, 7], [100, 130, 33], [257, 30, 531], [3, 64, 40], [1, 70, 13], [5, 896, 20]] as const) {
      const next = rng(7 * M + K + N);
      const W = makeWeights(N, K, 'BF16', 2, next);
      const inp = randF32(M * K, next);
      const dout = randF32(M * N, next);
      const out = new Float32Array(M * N);
      addon._matmulForward(out, inp, W.bytes, 'BF16_PRODUCTS', M, K, N, null, false, 'auto');
      const dinp0 = randF32(M * K, next);
      const dinp = Float32Array.from(dinp0);
      addon._matmulBackwardInput(dinp, dout, W.bytes, 'BF16_PRODUCTS', M, K, N, 'auto');
      let worstF = 0, worstB = 0;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let s = 0, a = 0;
          for (let k = 0; k < K; k++) {
            const p = inp[m * K + k]! * W.values[n * K + k]!;
            s += p;
            a += Math.abs(p);
          }
          worstF = Math.max(worstF, Math.abs(out[m * N + n]! - s) / a);
        }
      for (let m = 0; m < M; m++)
        for (let k = 0; k < K; k++) {
          let s = dinp0[m * K + k]!, a = Math.abs(s);
          for (let n = 0; n < N; n++) {
            const p = dout[m * N + n]! * W.values[n * K + k]!;
            s += p;
            a += Math.abs(p);
          }
          worstB = Math.max(worstB, Math.abs(dinp[m * K + k]! - s) / a);
        }
      const what = `M=${M} K=${K} N=${N}`;
      expect(worstF, `forward ${what}`).toBeLessThanOrEqual(4e-3);
      expect(worstB, `backward-input ${what}`).toBeLessThanOrEqual(4e-3);
      expect(worstF, `forward ${what} rounded (bf16 path ran)`).toBeGreaterThan(1e-6);
      if (M > 4) expect(worstB, `backward-input ${what} rounded (bf16 path ran)`).toBeGreaterThan(1e-6);
      else expect(worstB, `backward-input ${what} stays f32`).toBeLessThan(1e-5);
    }
  });

  it.skipIf(!info.bf16DotCompiled)('bf16 products in backward-weight (full fine-tune): within bf16 rounding of both operands', () => {
    // dout and inp both rounded to bf16: each product within ~2^-8 of itself, so the sum within
    // 8e-3 of the sum of |products| (with f32 rounding). Odd M leaves the last pair half empty;
    // M = 601 takes two reduction passes (256 pairs each); N and K leave tails of every tile.
    for (const [M, K, N] of [[64, 70, 30], [7, 33, 13], [601, 40, 25], [130, 100, 531]] as const) {
      const next = rng(11 * M + 3 * K + N);
      const dout = randF32(M * N, next);
      const inp = randF32(M * K, next);
      const dw0 = randF32(N * K, next);
      const dw = Float32Array.from(dw0);
      const db = new Float32Array(N);
      addon._matmulBackwardWeight(dw, db, dout, inp, M, K, N, 'auto', 1, true);
      let worst = 0, worstBias = 0;
      for (let n = 0; n < N; n++) {
        let bs = 0;
        for (let m = 0; m < M; m++) bs += dout[m * N + n]!;
        worstBias = Math.max(worstBias, Math.abs(db[n]! - bs));
        for (let k = 0; k < K; k++) {
          let s = dw0[n * K + k]!, a = Math.abs(s);
          for (let m = 0; m < M; m++) {
            const p = dout[m * N + n]! * inp[m * K + k]!;
            s += p;
            a += Math.abs(p);
          }
          worst = Math.max(worst, Math.abs(dw[n * K + k]! - s) / a);
        }
      }
      const what = `M=${M} K=${K} N=${N}`;
      expect(worst, `backward-weight ${what}`).toBeLessThanOrEqual(8e-3);
      expect(worst, `backward-weight ${what} rounded (bf16 path ran)`).toBeGreaterThan(1e-6);
      expect(worstBias, `bias ${what} stays f32`).toBeLessThan(1e-4);
    }
  });

  it('decode-sized products give the same bits on one thread and split between threads', () => {
    // The dot kernels split W between threads from 64 KiB of W (kernel default); a 1 GiB threshold
    // keeps every product here on one thread. Each output element is one thread's sum in a fixed
    // order, so the split must not change a bit.
    for (const dtype of ['F32', 'BF16', 'BF16_PRODUCTS'] as const)
      for (const [M, K, N] of [[1, 896, 128], [1, 896, 300], [3, 130, 257], [16, 64, 900]] as const) {
        const next = rng(M * 131 + K + N);
        const W = makeWeights(N, K, dtype === 'F32' ? 'F32' : 'BF16', 2, next);
        const inp = randF32(M * K, next);
        const split = new Float32Array(M * N);
        const serial = new Float32Array(M * N);
        addon._matmulForward(split, inp, W.bytes, dtype, M, K, N, null, false, 'auto');
        const prev = addon._matmulSetSerialStreamBytes(1 << 30);
        try {
          addon._matmulForward(serial, inp, W.bytes, dtype, M, K, N, null, false, 'auto');
        } finally {
          addon._matmulSetSerialStreamBytes(prev);
        }
        expect(Array.from(split), `${dtype} M=${M} K=${K} N=${N}`).toEqual(Array.from(serial));
      }
  });

  it('decode of one or two rows: the row walk gives the same bits as the row tiles', () => {
    // For M <= 2 the dot kernels walk W one row at a time in address order (a stream the hardware
    // prefetcher follows); from M = 3 on they use tiles of rows (6 in the AVX-512 kernels, 4 in the
    // AVX2 ones). A sequence decoded alone and in a batch must get the same logits, so both must
    // sum each output in the same order. _matmulSetRowWalkM(0) turns the walk off. Shapes with N
    // not a multiple of 6 or 4, odd K with a masked tail, W at an odd element offset, bias and
    // accumulate; what the model calls ('auto') and, where the CPU has AVX2, the AVX2 kernels.
    const impls: KernelImpl[] = [...(info.avx512 ? (['auto'] as const) : []), ...(info.avx2 ? (['avx2'] as const) : [])];
    for (const impl of impls)
      for (const dtype of ['F32', 'BF16', 'F16', 'BF16_PRODUCTS'] as const)
        for (const [M, K, N] of [[1, 896, 130], [2, 896, 131], [1, 62, 17], [2, 100, 5], [1, 4864, 29]] as const) {
          if (dtype === 'BF16_PRODUCTS' && (K % 2 !== 0 || impl === 'avx2')) continue;
          const next = rng(M * 977 + K + 7 * N);
          const W = makeWeights(N, K, dtype === 'BF16_PRODUCTS' ? 'BF16' : dtype, dtype === 'F32' ? 4 : 2, next);
          const inp = randF32(M * K, next);
          const bias = randF32(N, next);
          const init = randF32(M * N, next);
          const walk = Float32Array.from(init);
          const tiles = Float32Array.from(init);
          addon._matmulForward(walk, inp, W.bytes, dtype, M, K, N, bias, true, impl);
          const prev = addon._matmulSetRowWalkM(0);
          try {
            addon._matmulForward(tiles, inp, W.bytes, dtype, M, K, N, bias, true, impl);
          } finally {
            addon._matmulSetRowWalkM(prev);
          }
          expect(prev, 'default row-walk limit').toBe(2);
          expect(Array.from(walk), `${impl} ${dtype} M=${M} K=${K} N=${N}`).toEqual(Array.from(tiles));
        }
  });

  it('the double build (F64 weights, Float64Array activations) matches to 1e-12', () => {
    const [M, K, N] = [5, 33, 17];
    const next = rng(99);
    const w = new Float64Array(N * K).map(() => next());
    const inp = new Float64Array(M * K).map(() => next());
    const out = new Float64Array(M * N);
    addon._matmulForward(out, inp, new Uint8Array(w.buffer), 'F64', M, K, N, null, false, 'auto');
    const dinp = new Float64Array(M * K);
    addon._matmulBackwardInput(dinp, out, new Uint8Array(w.buffer), 'F64', M, K, N, 'auto');
    const dw = new Float64Array(N * K);
    addon._matmulBackwardWeight(dw, null, out, inp, M, K, N, 'auto');
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += inp[m * K + k]! * w[n * K + k]!;
        expect(Math.abs(out[m * N + n]! - s)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(s)));
      }
    for (let m = 0; m < M; m++)
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let n = 0; n < N; n++) s += out[m * N + n]! * w[n * K + k]!;
        expect(Math.abs(dinp[m * K + k]! - s)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(s)));
      }
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        let s = 0;
        for (let m = 0; m < M; m++) s += out[m * N + n]! * inp[m * K + k]!;
        expect(Math.abs(dw[n * K + k]! - s)).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(s)));
      }
  });

  it('rejects arrays that are too short, naming the argument', () => {
    const w = new Uint8Array(4 * 3 * 4);
    expect(() => addon._matmulForward(new Float32Array(5), new Float32Array(6), w, 'F32', 2, 3, 4, null, false)).toThrow(/out has 5 elements, needs 8/);
    expect(() => addon._matmulForward(new Float32Array(8), new Float32Array(6), w.subarray(1), 'F32', 2, 3, 4, null, false)).toThrow(/w has 47 bytes/);
    expect(() => addon._matmulForward(new Float32Array(8), new Float32Array(6), w, 'Q4' as 'F32', 2, 3, 4, null, false)).toThrow(/dtype/);
  });
});
