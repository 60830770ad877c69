// The sampler against exact expected frequencies on a small vocabulary: logits are given directly
// to the native sampler through the test-only export _sampleFromLogits (the same function the
// engine calls per sequence), N draws with a fixed seed, and a chi-square statistic compared with
// the 0.999 quantile of its distribution. Tokens that must be excluded must never appear. Every
// case runs twice: float32 logits (the engine's path for float models: vectorised exp, chunked
// inverse CDF) and float64 logits (the float64 build's path, libm exp).
import { describe, expect, it } from 'vitest';
import { loadNative, type NativeSamplingParams } from '../../src/native.js';

const native = loadNative();
const N = 20000;
const Z32 = Float32Array.of(1.2, -0.3, 2.0, 0.4, 0.0, -1.5, 1.7, 0.9);

// chi-square 0.999 quantiles by degrees of freedom
const CHI2_999 = [0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12];

function softmax(z: ArrayLike<number>, t = 1): number[] {
  const m = Math.max(...Array.from(z, (x) => x / t));
  const e = Array.from(z, (x) => Math.exp(x / t - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function renormalize(p: number[], keep: (i: number) => boolean): number[] {
  const q = p.map((x, i) => (keep(i) ? x : 0));
  const s = q.reduce((a, b) => a + b, 0);
  return q.map((x) => x / s);
}

function drawFrom(
  Z: Float32Array | Float64Array,
  params: NativeSamplingParams,
  opts: { history?: number[]; promptLen?: number; allowed?: Uint8Array } = {},
): number[] {
  const out = native._sampleFromLogits(Z, { seed: 1234, ...params }, {
    count: N,
    history: opts.history ? Int32Array.from(opts.history) : undefined,
    promptLen: opts.promptLen,
    allowed: opts.allowed,
  });
  const counts = new Array<number>(Z.length).fill(0);
  for (const t of out) counts[t]!++;
  return counts;
}

function expectDistribution(counts: number[], expected: number[]): void {
  let chi2 = 0;
  let df = -1;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] === 0) {
      expect(counts[i], `token ${i} must never be drawn`).toBe(0);
      continue;
    }
    const e = expected[i]! * N;
    chi2 += (counts[i]! - e) ** 2 / e;
    df++;
  }
  if (df > 0) expect(chi2, `chi2 ${chi2.toFixed(2)} with ${df} df; counts ${counts}`).toBeLessThan(CHI2_999[df]!);
}

describe.each([
  ['float32', Z32],
  ['float64', Float64Array.from(Z32)],
] as const)('sampler distributions, %s logits (chi-square, fixed seed, N = 20000)', (_kind, Z) => {
  const draw = (params: NativeSamplingParams, opts: { history?: number[]; promptLen?: number; allowed?: Uint8Array } = {}): number[] =>
    drawFrom(Z, params, opts);

  it('temperature 1 and 0.5 sample softmax(z / T)', () => {
    expectDistribution(draw({ temperature: 1 }), softmax(Z));
    expectDistribution(draw({ temperature: 0.5 }), softmax(Z, 0.5));
    expectDistribution(draw({ temperature: 2 }), softmax(Z, 2));
  });

  it('temperature 0 is the argmax', () => {
    const c = draw({ temperature: 0 });
    expect(c[2]).toBe(N);
  });

  it('top-k keeps the k most likely tokens', () => {
    const p = softmax(Z);
    expectDistribution(draw({ topK: 3 }), renormalize(p, (i) => [2, 6, 0].includes(i)));
    expectDistribution(draw({ topK: 1 }), renormalize(p, (i) => i === 2));
  });

  it('top-p keeps the smallest most-likely prefix reaching p', () => {
    const p = softmax(Z);
    const order = p.map((x, i) => [x, i] as const).sort((a, b) => b[0] - a[0]);
    for (const topP of [0.5, 0.8, 0.95]) {
      const keep = new Set<number>();
      let cum = 0;
      for (const [x, i] of order) {
        if (cum >= topP) break;
        keep.add(i);
        cum += x;
      }
      expectDistribution(draw({ topP }), renormalize(p, (i) => keep.has(i)));
    }
  });

  it('top-k then top-p at temperature 0.7', () => {
    const p = softmax(Z, 0.7);
    const top4 = [2, 6, 0, 7];
    const q = renormalize(p, (i) => top4.includes(i));
    const order = top4.map((i) => [q[i]!, i] as const).sort((a, b) => b[0] - a[0]);
    const keep = new Set<number>();
    let cum = 0;
    for (const [x, i] of order) {
      if (cum >= 0.7) break;
      keep.add(i);
      cum += x;
    }
    expectDistribution(draw({ temperature: 0.7, topK: 4, topP: 0.7 }), renormalize(p, (i) => keep.has(i)));
  });

  it('min-p keeps tokens with p >= min_p * p_max', () => {
    const p = softmax(Z);
    const pmax = Math.max(...p);
    for (const minP of [0.1, 0.3, 0.6]) expectDistribution(draw({ minP }), renormalize(p, (i) => p[i]! >= minP * pmax));
  });

  it('repetition and presence penalties change the logits of seen tokens only', () => {
    // tokens 2 (z 2.0 > 0) and 5 (z -1.5 < 0) in the prompt, token 6 in the output
    const history = [2, 5, 6];
    const rp = 1.8;
    const zr = Array.from(Z, (z, i) => ([2, 5, 6].includes(i) ? (z > 0 ? z / rp : z * rp) : z));
    expectDistribution(draw({ repetitionPenalty: rp }, { history, promptLen: 2 }), softmax(zr));
    const zp = Array.from(Z, (z, i) => (i === 6 ? z - 1.0 : z));
    expectDistribution(draw({ presencePenalty: 1.0 }, { history, promptLen: 2 }), softmax(zp));
  });

  it('a mask (the answer constraint) renormalises over the allowed tokens', () => {
    const allowed = Uint8Array.of(0, 1, 0, 1, 1, 0, 0, 0);
    expectDistribution(draw({}, { allowed }), renormalize(softmax(Z), (i) => allowed[i] === 1));
    const g = draw({ temperature: 0 }, { allowed });
    expect(g[3]).toBe(N);
  });

  it('draws are a pure function of (seed, sample, token index)', () => {
    const a = native._sampleFromLogits(Z, { seed: 7 }, { count: 50, sample: 3, startIndex: 10 });
    const b = native._sampleFromLogits(Z, { seed: 7 }, { count: 40, sample: 3, startIndex: 20 });
    expect(Array.from(a.subarray(10))).toEqual(Array.from(b));
    const c = native._sampleFromLogits(Z, { seed: 8 }, { count: 50, sample: 3, startIndex: 10 });
    expect(Array.from(c)).not.toEqual(Array.from(a));
  });
});

// A vocabulary larger than the float path's inverse-CDF chunk (1024 ids) and its 16-lane loops,
// with a length that is not a multiple of either: draws counted in 8 groups (id / 128 mod 8, so
// that the ids on either side of a chunk boundary fall in different groups) against the groups'
// exact softmax mass.
describe.each([
  ['float32', (z: number[]) => Float32Array.from(z)],
  ['float64', (z: number[]) => Float64Array.from(z)],
] as const)('sampler on a 5003-token vocabulary, %s logits', (_kind, make) => {
  const V = 5003;
  const zs = Array.from({ length: V }, (_, i) => 3 * Math.sin(i * 0.37) + (i % 7 === 0 ? 2 : 0));
  const Z = make(zs);
  const z32 = Array.from(Float32Array.from(zs)); // the values the sampler sees
  const group = (i: number): number => Math.floor(i / 128) % 8;
  const grouped = (p: number[]): number[] => {
    const g = new Array<number>(8).fill(0);
    p.forEach((x, i) => (g[group(i)]! += x));
    return g;
  };
  const counts = (out: Int32Array): number[] => {
    const g = new Array<number>(8).fill(0);
    for (const t of out) g[group(t)]!++;
    return g;
  };

  it('temperature 0.8: group frequencies match softmax(z / T)', () => {
    const out = native._sampleFromLogits(Z, { seed: 99, temperature: 0.8 }, { count: N });
    expectDistribution(counts(out), grouped(softmax(z32, 0.8)));
  });

  it('a mask over every third id: masked ids never drawn, the rest renormalised', () => {
    const allowed = Uint8Array.from({ length: V }, (_, i) => (i % 3 === 1 ? 1 : 0));
    const out = native._sampleFromLogits(Z, { seed: 5 }, { count: N, allowed });
    for (const t of out) expect(t % 3).toBe(1);
    expectDistribution(counts(out), grouped(renormalize(softmax(z32), (i) => allowed[i] === 1)));
  });

  it('temperature 0 is the argmax', () => {
    const best = z32.indexOf(Math.max(...z32));
    expect(Array.from(native._sampleFromLogits(Z, { temperature: 0 }, { count: 3 }))).toEqual([best, best, best]);
  });
});

it('float32 and float64 logits draw the same tokens on a 5003-token vocabulary (the float path only rounds differently)', () => {
  const V = 5003;
  const z = Float32Array.from({ length: V }, (_, i) => 3 * Math.sin(i * 0.37) + (i % 7 === 0 ? 2 : 0));
  for (const params of [{ temperature: 1 }, { temperature: 0.7, topP: 0.9 }, { temperature: 1.3, topK: 50 }, { minP: 0.05 }]) {
    const a = native._sampleFromLogits(z, { seed: 3, ...params }, { count: 5000 });
    const b = native._sampleFromLogits(Float64Array.from(z), { seed: 3, ...params }, { count: 5000 });
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
    expect(same / a.length, JSON.stringify(params)).toBeGreaterThan(0.999);
  }
});
