// The LM head's log-softmax at the targets and its backward (native/cpu/lm_head*.cc), the fused
// float path (lm_head_fused.cc: vocabulary tiles consumed in cache, vectorised exp) and the unfused
// one (lm_head.cc: logits in full, std::exp in double), both against a float64 reference computed
// here, and against each other, through the addon's test-only exports.
//
// Shapes are awkward on purpose: V not a multiple of any tile width, targets on tile boundaries,
// 1 row (the dot-product kernels, 4096-column tiles), 300 rows (two row blocks of the fused path),
// a vocabulary of one tile (row sub-blocks), Gemma's final soft-cap on. Weights F32 (full fine-tune: dW too) and BF16 with bf16 products (a
// LoRA model under matmulPrecision bf16: hidden rounded to bf16, products summed in f32).
//
// Tolerances, per row r: E_r = 1e-5 * max_v S_rv + 3e-7 * cap, S_rv = sum_k |h_rk w_vk|, bounds the
// error of one float32 logit (as test/kernels/matmul.test.ts bounds a product; the reference for
// bf16 products multiplies the bf16-rounded hidden, so the bound is the same) plus the float
// tanh's absolute error (~1e-7) times the cap. lse: E_r + 2e-6 (float partial sums of at most 256
// terms per lane, expVec 1.4 ulp); logp: 2 E_r + 2e-6; entropy: 4 E_r + 1e-5. dhidden[r, k] within
// tolD * sum_v |dz_rv w_vk| + 1e-9 and dW[v, k] within tolD * sum_r |dz_rv h_rk| + 1e-9, where
// tolD = 4 max_r E_r + 1e-5 for f32 products (dz = g (1[v = t] - p) cap' inherits the logits'
// error relatively), plus for bf16 products the rounding of the factors to bf16 (8 significant
// bits: 2^-8 relative each): 2^-8 for dhidden (dz rounded, W stored in bf16) and 2^-7 for the
// fused path's dW (dz and hidden rounded; the unfused path's dW is f32).
//
// Where the CPU has AVX-512 the fused path runs its row kernels (soft-cap, max, exp, sums, dz:
// lm_head_fused.cc) as AVX-512 intrinsics compiled for AVX-512 whatever the build's -march; with
// _avx512Kernels(false) it runs the portable loops (and the products the AVX2 or portable ones,
// f32 products: bf16Products needs AVX512_BF16, so that run's reference multiplies the unrounded
// hidden and takes no bf16 allowance). Both are held to the same bounds and to each other.
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../src/native.js';
import { encodeTensorData, roundToDtype } from '../helpers/safetensors-writer.js';
import type { LmHeadExports } from './kernels-addon.js';

const addon = loadNative() as unknown as LmHeadExports & {
  _avx512Kernels(on: boolean): boolean;
  _matmulKernelInfo(): { avx512: boolean };
};
const hasAvx512 = addon._matmulKernelInfo().avx512;

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

interface Case {
  n: number;
  C: number;
  V: number;
  cap: number;
  scale: number; // hidden values in [-scale, scale]
  dtype: 'F32' | 'BF16_PRODUCTS';
}

interface Result {
  logp: Float64Array;
  lse: Float64Array;
  ent: Float64Array;
  dh: Float32Array;
  dw: Float32Array;
}

function setup(c: Case, seed: number) {
  const next = rng(seed);
  const stored = c.dtype === 'F32' ? 'F32' : 'BF16';
  const wData = new Float32Array(c.V * c.C);
  for (let i = 0; i < wData.length; i++) wData[i] = next() * 2;
  const enc = encodeTensorData({ name: 'w', dtype: stored, shape: [c.V, c.C], data: wData });
  const wBytes = new Uint8Array(new ArrayBuffer(enc.length + 2), 2, enc.length); // element alignment only
  wBytes.set(enc);
  const W = Float64Array.from(wData, (x) => roundToDtype(x, stored));
  const hidden = new Float32Array(c.n * c.C);
  for (let i = 0; i < hidden.length; i++) hidden[i] = next() * 2 * c.scale;
  // the product's view of hidden: bf16-rounded under bf16 products
  const H = Float64Array.from(hidden, (x) => (c.dtype === 'F32' ? x : roundToDtype(x, 'BF16')));
  const targets = new Int32Array(c.n);
  const special = [0, c.V - 1, 511, 512, 4095, 4096, 3519, 3520, 1023, 1024];
  for (let i = 0; i < c.n; i++) {
    const s = special[i % special.length]!;
    targets[i] = i < special.length && s < c.V ? s : Math.floor((next() + 0.5) * c.V) % c.V;
  }
  const dlogp = Float64Array.from({ length: c.n }, () => next() * 2);
  return { wBytes, W, hidden, H, targets, dlogp };
}

type Setup = ReturnType<typeof setup>;

/** The float64 reference: logits, lse, logp, entropy, dz, dhidden, dW and the error scales. */
function reference(c: Case, s: Setup) {
  const { n, C, V, cap } = c;
  const logp = new Float64Array(n), lse = new Float64Array(n), ent = new Float64Array(n), E = new Float64Array(n);
  const dh = new Float64Array(n * C), dhMag = new Float64Array(n * C);
  const dw = new Float64Array(V * C), dwMag = new Float64Array(V * C);
  const z = new Float64Array(V), dcap = new Float64Array(V), dz = new Float64Array(V);
  for (let r = 0; r < n; r++) {
    let smax = 0;
    for (let v = 0; v < V; v++) {
      let acc = 0, mag = 0;
      for (let k = 0; k < C; k++) {
        const p = s.H[r * C + k]! * s.W[v * C + k]!;
        acc += p;
        mag += Math.abs(p);
      }
      smax = Math.max(smax, mag);
      if (cap > 0) {
        const t = Math.tanh(acc / cap);
        z[v] = cap * t;
        dcap[v] = 1 - t * t;
      } else {
        z[v] = acc;
        dcap[v] = 1;
      }
    }
    E[r] = 1e-5 * smax + 3e-7 * cap;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) mx = Math.max(mx, z[v]!);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(z[v]! - mx);
    const L = mx + Math.log(sum);
    lse[r] = L;
    logp[r] = z[s.targets[r]!]! - L;
    let h = 0;
    for (let v = 0; v < V; v++) {
      const p = Math.exp(z[v]! - L);
      h -= p * (z[v]! - L);
      dz[v] = s.dlogp[r]! * ((v === s.targets[r] ? 1 : 0) - p) * dcap[v]!;
    }
    ent[r] = h;
    for (let v = 0; v < V; v++) {
      const d = dz[v]!;
      for (let k = 0; k < C; k++) {
        const w = s.W[v * C + k]!, x = s.hidden[r * C + k]!;
        dh[r * C + k] = dh[r * C + k]! + d * w;
        dhMag[r * C + k] = dhMag[r * C + k]! + Math.abs(d * w);
        dw[v * C + k] = dw[v * C + k]! + d * x;
        dwMag[v * C + k] = dwMag[v * C + k]! + Math.abs(d * x);
      }
    }
  }
  return { logp, lse, ent, E, dh, dhMag, dw, dwMag };
}

function run(c: Case, s: Setup, fused: boolean): Result {
  const r: Result = {
    logp: new Float64Array(c.n),
    lse: new Float64Array(c.n),
    ent: new Float64Array(c.n),
    dh: new Float32Array(c.n * c.C),
    dw: new Float32Array(c.V * c.C),
  };
  addon._lmHeadForward(r.logp, r.lse, r.ent, s.hidden, s.wBytes, c.dtype, s.targets, c.n, c.C, c.V, c.cap, fused);
  addon._lmHeadBackward(r.dh, r.dw, s.hidden, s.wBytes, c.dtype, s.targets, r.lse, s.dlogp, c.n, c.C, c.V, c.cap, fused);
  return r;
}

/** Worst |got - ref| / bound over the elements; fails naming the element when it exceeds 1. */
function within(got: ArrayLike<number>, ref: ArrayLike<number>, bound: (i: number) => number, what: string): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const q = Math.abs(got[i]! - ref[i]!) / bound(i);
    if (!(q <= 1)) expect.fail(`${what}[${i}] = ${got[i]}, reference ${ref[i]}, bound ${bound(i)}`);
    worst = Math.max(worst, q);
  }
  return worst;
}

const cases: Case[] = [
  { n: 1, C: 64, V: 10007, cap: 0, scale: 1, dtype: 'F32' },
  { n: 1, C: 64, V: 10007, cap: 30, scale: 6, dtype: 'BF16_PRODUCTS' },
  { n: 37, C: 48, V: 7777, cap: 30, scale: 6, dtype: 'F32' },
  { n: 37, C: 48, V: 7777, cap: 0, scale: 1, dtype: 'BF16_PRODUCTS' },
  { n: 300, C: 32, V: 2500, cap: 0, scale: 1.5, dtype: 'F32' },
  { n: 300, C: 32, V: 2500, cap: 50, scale: 8, dtype: 'BF16_PRODUCTS' },
  // a small vocabulary: one tile, so the rows are cut into 8 sub-blocks of 32 (dW per-thread partials)
  { n: 256, C: 16, V: 300, cap: 30, scale: 6, dtype: 'F32' },
  { n: 256, C: 16, V: 300, cap: 0, scale: 1, dtype: 'BF16_PRODUCTS' },
];

describe('LM head log-softmax: fused and unfused against a float64 reference', () => {
  for (const c of cases) {
    const tag = `n=${c.n} C=${c.C} V=${c.V} cap=${c.cap} ${c.dtype}`;
    it(tag, () => {
      const s = setup(c, c.n * 7919 + c.V + c.cap);
      const ref = reference(c, s);
      const Emax = Math.max(...ref.E);
      const tolD = 4 * Emax + 1e-5;
      const bf = c.dtype === 'F32' ? 0 : 1;
      const worst: Record<string, number> = {};
      const results: Record<string, Result> = {};
      for (const fused of [true, false]) {
        const name = fused ? 'fused' : 'unfused';
        const got = run(c, s, fused);
        results[name] = got;
        worst[`${name} lse`] = within(got.lse, ref.lse, (i) => ref.E[i]! + 2e-6, `${name} lse`);
        worst[`${name} logp`] = within(got.logp, ref.logp, (i) => 2 * ref.E[i]! + 2e-6, `${name} logp`);
        worst[`${name} entropy`] = within(got.ent, ref.ent, (i) => 4 * ref.E[i]! + 1e-5, `${name} entropy`);
        worst[`${name} dhidden`] = within(got.dh, ref.dh, (i) => (tolD + bf * 2 ** -8) * ref.dhMag[i]! + 1e-9, `${name} dhidden`);
        worst[`${name} dW`] = within(got.dw, ref.dw, (i) => (tolD + bf * (fused ? 2 ** -7 : 0)) * ref.dwMag[i]! + 1e-9, `${name} dW`);
      }
      // fused against unfused: each within its bound of the reference, so within the sum of both
      const f = results.fused!, u = results.unfused!;
      worst['fused-unfused logp'] = within(f.logp, u.logp, (i) => 2 * (2 * ref.E[i]! + 2e-6), 'fused vs unfused logp');
      if (hasAvx512) {
        // the fused path with every AVX-512 kernel off (the portable row loops) against its reference
        const was = addon._avx512Kernels(false);
        let p: Result;
        try {
          p = run(c, s, true);
        } finally {
          addon._avx512Kernels(was);
        }
        const pref = bf ? reference(c, { ...s, H: Float64Array.from(s.hidden) }) : ref;
        const ptolD = 4 * Math.max(...pref.E) + 1e-5;
        worst['portable lse'] = within(p.lse, pref.lse, (i) => pref.E[i]! + 2e-6, 'portable lse');
        worst['portable logp'] = within(p.logp, pref.logp, (i) => 2 * pref.E[i]! + 2e-6, 'portable logp');
        worst['portable entropy'] = within(p.ent, pref.ent, (i) => 4 * pref.E[i]! + 1e-5, 'portable entropy');
        worst['portable dhidden'] = within(p.dh, pref.dh, (i) => ptolD * pref.dhMag[i]! + 1e-9, 'portable dhidden');
        worst['portable dW'] = within(p.dw, pref.dw, (i) => ptolD * pref.dwMag[i]! + 1e-9, 'portable dW');
        if (!bf) {
          // the same products' reference: the two paths within the sum of their bounds of each other
          worst['avx512-portable lse'] = within(f.lse, p.lse, (i) => 2 * (ref.E[i]! + 2e-6), 'avx512 vs portable lse');
          worst['avx512-portable entropy'] = within(f.ent, p.ent, (i) => 2 * (4 * ref.E[i]! + 1e-5), 'avx512 vs portable entropy');
          worst['avx512-portable dhidden'] = within(f.dh, p.dh, (i) => 2 * (tolD * ref.dhMag[i]! + 1e-9), 'avx512 vs portable dhidden');
        }
      }
      // bit-reproducible run to run (fixed thread count)
      const again = run(c, s, true);
      expect(Buffer.from(again.logp.buffer).equals(Buffer.from(f.logp.buffer))).toBe(true);
      expect(Buffer.from(again.ent.buffer).equals(Buffer.from(f.ent.buffer))).toBe(true);
      expect(Buffer.from(again.dh.buffer).equals(Buffer.from(f.dh.buffer))).toBe(true);
      expect(Buffer.from(again.dw.buffer).equals(Buffer.from(f.dw.buffer))).toBe(true);
      // the worst error as a fraction of its bound, per quantity (read with --reporter=verbose)
      console.log(tag, Object.entries(worst).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', '));
    });
  }
});

// The sampling rows' log-sum-exp (logits_rows_lse: lm_head.cc, float rows through
// lm_head_fused.cc's row kernels in tiles of 4096 columns, tiles combined in double). Bounds: the
// capped logit within 3e-7 cap + 2^-23 |z| of cap tanh(z / cap) (float tanh's absolute error and
// the float result's rounding), lse within 2e-6 + 3e-7 cap (float partial sums of <= 256 terms per
// lane, expVec 1.4 ulp, and the cap's error, which moves lse by at most the largest logit error).
describe('LM head sampling rows: soft-cap and log-sum-exp against a float64 reference', () => {
  for (const [R, V, cap] of [
    [1, 151936, 0],
    [3, 151936, 30],
    [5, 10007, 0],
    [4, 4095, 50],
  ] as const) {
    it(`R=${R} V=${V} cap=${cap}`, () => {
      const next = rng(R * 31 + V + cap);
      const base = Float32Array.from({ length: R * V }, () => next() * 12);
      // soft-capped rows get a peak above the cap; the others none (the float sums' worst case)
      if (cap > 0) for (let r = 0; r < R; r++) base[r * V + ((r * 7919) % V)] = 40;
      const capped = Float64Array.from(base, (x) => (cap > 0 ? cap * Math.tanh(x / cap) : x));
      const lseRef = new Float64Array(R);
      for (let r = 0; r < R; r++) {
        let mx = -Infinity, sum = 0;
        for (let v = 0; v < V; v++) mx = Math.max(mx, capped[r * V + v]!);
        for (let v = 0; v < V; v++) sum += Math.exp(capped[r * V + v]! - mx);
        lseRef[r] = mx + Math.log(sum);
      }
      const paths: [string, boolean][] = hasAvx512 ? [['avx512', true], ['portable', false]] : [['portable', false]];
      for (const [name, on] of paths) {
        const was = addon._avx512Kernels(on);
        const z = base.slice(), lse = new Float64Array(R);
        try {
          addon._logitsRowsLse(z, lse, R, V, cap);
        } finally {
          addon._avx512Kernels(was);
        }
        within(z, capped, (i) => 3e-7 * cap + 2 ** -23 * Math.abs(capped[i]!), `${name} capped logits`);
        const w = within(lse, lseRef, () => 2e-6 + 3e-7 * cap, `${name} lse`);
        console.log(`R=${R} V=${V} cap=${cap} ${name}: worst lse error / bound ${w.toFixed(3)}`);
      }
    });
  }
});
