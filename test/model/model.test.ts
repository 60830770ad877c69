// Properties of the native model that need no reference implementation: packing invariance,
// adapter on/off, float32 against float64, bf16 and sharded checkpoints, argument checking and
// the rules for concurrent use.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { mulberry32, writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const qwenDir = join(root, 'qwen2');
writeTinyModel(qwenDir, 'qwen2');
const gemmaDir = join(root, 'gemma2');
writeTinyModel(gemmaDir, 'gemma2');

function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}
const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 29 + k * 13 + 7) % 256);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('packing', () => {
  it.each([qwenDir, gemmaDir])('a packed batch gives each sequence the log-probs it gets alone (%s)', async (dir) => {
    const lm = await CausalLM.load(dir);
    const seqs = [make(7, 1), make(15, 2), make(3, 3), make(11, 4)].map((tokens, i) => ({ tokens, targetStart: 1 + (i % 2) }));
    const packed = await lm.forward(packSequences(seqs), { keepForBackward: false });
    const batch = packSequences(seqs);
    for (let s = 0; s < seqs.length; s++) {
      const alone = await lm.forward(packSequences([seqs[s]!]), { keepForBackward: false });
      const slice = packed.logp.subarray(batch.targetOffsets[s]!, batch.targetOffsets[s + 1]!);
      expect(maxAbsDiff(slice, alone.logp)).toBeLessThan(1e-5);
    }
    lm.free();
  });
});

describe('adapters', () => {
  it('a fresh adapter (B = 0) changes nothing, a trained one does, and null is the base model', async () => {
    const lm = await CausalLM.load(qwenDir);
    const batch = packSequences([{ tokens: make(12, 5), targetStart: 3 }]);
    const base = (await lm.forward(batch, { keepForBackward: false })).logp;
    const adapter = lm.createLora({ rank: 4, alpha: 8 });
    expect(adapter.scale).toBe(2);
    const fresh = (await lm.forward(batch, { adapter, keepForBackward: false })).logp;
    expect(maxAbsDiff(fresh, base)).toBe(0);
    const opt = lm.createOptimizer(adapter);
    const pass = await lm.forward(batch, { adapter });
    await pass.backward(new Float32Array(pass.logp.length).fill(-1));
    const norm = await opt.step({ lr: 1e-2 });
    expect(norm).toBeGreaterThan(0);
    const trained = (await lm.forward(batch, { adapter, keepForBackward: false })).logp;
    expect(maxAbsDiff(trained, base)).toBeGreaterThan(1e-4);
    // the loss was -sum(logp): one step of descent must raise the log-probs on average
    const mean = (a: ArrayLike<number>) => Array.from(a).reduce((x, y) => x + y, 0) / a.length;
    expect(mean(trained)).toBeGreaterThan(mean(base));
    const again = (await lm.forward(batch, { keepForBackward: false })).logp;
    expect(maxAbsDiff(again, base)).toBe(0);
    lm.free();
  });

  it('rsLoRA scales by alpha / sqrt(r)', async () => {
    const lm = await CausalLM.load(qwenDir);
    expect(lm.createLora({ rank: 4, alpha: 8, rslora: true }).scale).toBeCloseTo(4, 12);
    lm.free();
  });

  it('A starts kaiming-uniform within +-1/sqrt(in), B at zero, and the seed decides A', async () => {
    const lm = await CausalLM.load(qwenDir);
    const a1 = lm.createLora({ rank: 4, seed: 1 });
    const a2 = lm.createLora({ rank: 4, seed: 1 });
    const a3 = lm.createLora({ rank: 4, seed: 2 });
    const name = 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight';
    const A = a1.getParam(name);
    expect(A.length).toBe(4 * 160);
    const bound = 1 / Math.sqrt(160);
    expect(Math.max(...A.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...A.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    expect(maxAbsDiff(A, a2.getParam(name))).toBe(0);
    expect(maxAbsDiff(A, a3.getParam(name))).toBeGreaterThan(0);
    expect(Math.max(...a1.getParam(name.replace('lora_A', 'lora_B')).map(Math.abs))).toBe(0);
    lm.free();
  });
});

describe('precision', () => {
  it('float32 gradients agree with float64 gradients', async () => {
    const f32 = await CausalLM.load(gemmaDir, { dtype: 'float32' });
    const f64 = await CausalLM.load(gemmaDir, { dtype: 'float64' });
    const batch = packSequences([{ tokens: make(14, 6), targetStart: 2 }, { tokens: make(9, 7), targetStart: 4 }]);
    const rand = uniform(3);
    const coef = Float64Array.from({ length: batch.targetRows.length }, () => rand() - 0.5);
    const ads = [f32, f64].map((lm) => lm.createLora({ rank: 2, seed: 5 }));
    for (const ad of ads)
      for (const p of ad.params())
        if (p.name.includes('lora_B')) {
          const r = uniform(9);
          ad.setParam(p.name, Float64Array.from({ length: p.shape[0]! * p.shape[1]! }, () => (r() - 0.5) * 0.2));
        }
    for (const [lm, ad] of [[f32, ads[0]!], [f64, ads[1]!]] as const) {
      const pass = await lm.forward(batch, { adapter: ad });
      await pass.backward(coef);
    }
    for (const p of ads[1]!.params()) {
      const g64 = ads[1]!.getGrad(p.name);
      const g32 = ads[0]!.getGrad(p.name);
      const scale = Math.max(...g64.map(Math.abs));
      expect(maxAbsDiff(g32, g64) / scale, p.name).toBeLessThan(1e-4);
    }
    f32.free();
    f64.free();
  });

  it('bf16 weights computed in float32 match the same bf16 values computed in float64', async () => {
    const dir = join(root, 'llama-bf16');
    writeTinyModel(dir, 'llama', { dtype: 'BF16' });
    const a = await CausalLM.load(dir);
    const b = await CausalLM.load(dir, { dtype: 'float64' });
    const batch = packSequences([{ tokens: make(16, 8), targetStart: 1 }]);
    const la = (await a.forward(batch, { keepForBackward: false })).logp;
    const lb = (await b.forward(batch, { keepForBackward: false })).logp;
    expect(maxAbsDiff(la, lb)).toBeLessThan(2e-5);
    a.free();
    b.free();
  });

  it('a sharded checkpoint loads to the same model as a single file', async () => {
    const dir = join(root, 'qwen2-sharded');
    writeTinyModel(dir, 'qwen2', { sharded: 3 });
    const a = await CausalLM.load(dir);
    const b = await CausalLM.load(qwenDir);
    const batch = packSequences([{ tokens: make(10, 9), targetStart: 1 }]);
    const la = (await a.forward(batch, { keepForBackward: false })).logp;
    const lb = (await b.forward(batch, { keepForBackward: false })).logp;
    expect(maxAbsDiff(la, lb)).toBe(0);
    a.free();
    b.free();
  });
});

describe('arguments and lifetimes', () => {
  it('rejects bad batches with a message naming the array, index and value', async () => {
    const lm = await CausalLM.load(qwenDir);
    const good = packSequences([{ tokens: make(5, 1), targetStart: 1 }]);
    await expect(lm.forward({ ...good, tokens: Int32Array.from([1, 2, 300, 4, 5]) })).rejects.toThrow(/tokens\[2\] = 300 is outside the vocabulary/);
    await expect(lm.forward({ ...good, targetRows: Int32Array.from([0, 1, 2, 9]) })).rejects.toThrow(/targetRows\[3\] = 9/);
    await expect(lm.forward({ ...good, seqOffsets: Int32Array.from([0, 4]) })).rejects.toThrow(/seqOffsets\[S\] = 4 but there are 5 tokens/);
    await expect(lm.forward({ ...good, tokens: new Float32Array(5) as unknown as Int32Array })).rejects.toThrow(/Int32Array/);
    const pass = await lm.forward(good);
    await expect(pass.backward(new Float32Array(2))).rejects.toThrow(/2 gradients for 4 targets/);
    await pass.backward(new Float32Array(4));
    await expect(pass.backward(new Float32Array(4))).rejects.toThrow(/no activations/);
    const noKeep = await lm.forward(good, { keepForBackward: false });
    await expect(noKeep.backward(new Float32Array(4))).rejects.toThrow(/no activations/);
    expect(() => lm.createLora({ targets: ['q_proj', 'lm_head' as never] })).toThrow(/lm_head/);
    expect(() => lm.createOptimizer()).toThrow(/fullFinetune/);
    lm.free();
  });

  it('refuses to free a model while a call runs, and any use after free', async () => {
    const lm = await CausalLM.load(qwenDir);
    const batch = packSequences([{ tokens: make(64, 2), targetStart: 1 }]);
    const running = lm.forward(batch);
    expect(lm.busy).toBe(true);
    expect(() => lm.free()).toThrow(/busy/);
    const pass = await running;
    expect(lm.busy).toBe(false);
    const bw = pass.backward(new Float32Array(63));
    expect(() => lm.free()).toThrow(/busy/);
    await bw;
    lm.free();
    expect(() => lm.config).toThrow(/freed/);
    await expect(async () => lm.forward(batch)).rejects.toThrow(/freed/);
  });

  it('runs off the JS thread: the event loop turns while a long forward runs', async () => {
    const lm = await CausalLM.load(gemmaDir);
    const batch = packSequences(Array.from({ length: 8 }, (_, i) => ({ tokens: make(120, i), targetStart: 1 })));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const t0 = performance.now();
    await lm.forward(batch, { keepForBackward: false });
    const elapsed = performance.now() - t0;
    clearInterval(timer);
    // only meaningful when the pass took long enough for timers to fire
    if (elapsed > 20) expect(ticks).toBeGreaterThan(0);
    lm.free();
  });
});
