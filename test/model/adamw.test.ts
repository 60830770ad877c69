// AdamW against torch.optim.AdamW's update written out by hand (float64), with
// clip_grad_norm_'s coefficient max_norm / (norm + 1e-6); and exact save/restore of its state.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences, type LoraAdapter } from '../../src/model/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-adamw-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'llama');
writeTinyModel(dir, 'llama');
const batch = packSequences([{ tokens: Array.from({ length: 9 }, (_, i) => (i * 31 + 2) % 256), targetStart: 2 }]);

interface Hyper { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; maxGradNorm: number }

/** torch.optim.AdamW (amsgrad=False, maximize=False) after clip_grad_norm_, in float64. */
function referenceStep(p: Float64Array[], g: Float64Array[], m: Float64Array[], v: Float64Array[], t: number, h: Hyper): number {
  let ss = 0;
  for (const gi of g) for (const x of gi) ss += x * x;
  const norm = Math.sqrt(ss);
  const clip = h.maxGradNorm > 0 ? Math.min(1, h.maxGradNorm / (norm + 1e-6)) : 1;
  const bc1 = 1 - h.beta1 ** t;
  const bc2 = 1 - h.beta2 ** t;
  for (let k = 0; k < p.length; k++) {
    for (let i = 0; i < p[k]!.length; i++) {
      const grad = g[k]![i]! * clip;
      p[k]![i]! *= 1 - h.lr * h.weightDecay;
      m[k]![i] = h.beta1 * m[k]![i]! + (1 - h.beta1) * grad;
      v[k]![i] = h.beta2 * v[k]![i]! + (1 - h.beta2) * grad * grad;
      const denom = Math.sqrt(v[k]![i]!) / Math.sqrt(bc2) + h.eps;
      p[k]![i]! -= (h.lr / bc1) * (m[k]![i]! / denom);
    }
  }
  return norm;
}

async function accumulate(lm: CausalLM, adapter: LoraAdapter, scale: number) {
  const pass = await lm.forward(batch, { adapter });
  await pass.backward(new Float64Array(pass.logp.length).fill(scale));
}

describe('AdamW', () => {
  it.each([
    { maxGradNorm: 0, weightDecay: 0 },
    { maxGradNorm: 0.05, weightDecay: 0.1 },
  ])('matches the torch update over 3 steps (clip %o)', async ({ maxGradNorm, weightDecay }) => {
    const lm = await CausalLM.load(dir, { dtype: 'float64' });
    const adapter = lm.createLora({ rank: 2, targets: ['q_proj', 'down_proj'], seed: 4 });
    const opt = lm.createOptimizer(adapter);
    const names = adapter.params().map((p) => p.name);
    const p = names.map((n) => Float64Array.from(adapter.getParam(n)));
    const m = p.map((x) => new Float64Array(x.length));
    const v = p.map((x) => new Float64Array(x.length));
    const h: Hyper = { lr: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay, maxGradNorm };
    for (let t = 1; t <= 3; t++) {
      adapter.zeroGrad();
      await accumulate(lm, adapter, -1);
      const g = names.map((n) => Float64Array.from(adapter.getGrad(n)));
      const want = referenceStep(p, g, m, v, t, h);
      const got = await opt.step(h);
      expect(got).toBeCloseTo(want, 10);
      names.forEach((n, k) => {
        const cur = adapter.getParam(n);
        for (let i = 0; i < cur.length; i++) expect(Math.abs(cur[i]! - p[k]![i]!)).toBeLessThan(1e-12);
      });
    }
    expect(opt.steps).toBe(3);
    lm.free();
  });

  it('restores its state exactly: a resumed optimizer takes the same next step', async () => {
    const lm = await CausalLM.load(dir);
    const adapter = lm.createLora({ rank: 2, seed: 4 });
    const opt = lm.createOptimizer(adapter);
    const h = { lr: 5e-3, maxGradNorm: 1 };
    for (let t = 0; t < 2; t++) {
      adapter.zeroGrad();
      await accumulate(lm, adapter, -1);
      await opt.step(h);
    }
    const saved = opt.getState();
    const names = adapter.params().map((p) => p.name);
    const params = names.map((n) => adapter.getParam(n).slice());
    // path A: keep going
    adapter.zeroGrad();
    await accumulate(lm, adapter, -1);
    await opt.step(h);
    const after = names.map((n) => adapter.getParam(n).slice());
    // path B: a new adapter + optimizer restored from the saved values and state
    const adapter2 = lm.createLora({ rank: 2, seed: 99 });
    names.forEach((n, k) => adapter2.setParam(n, params[k]!));
    const opt2 = lm.createOptimizer(adapter2);
    opt2.setState(saved);
    expect(opt2.steps).toBe(2);
    adapter2.zeroGrad();
    await accumulate(lm, adapter2, -1);
    await opt2.step(h);
    names.forEach((n, k) => expect(Array.from(adapter2.getParam(n))).toEqual(Array.from(after[k]!)));
    expect(() => opt2.setState({ ...saved, m: saved.m.slice(1) })).toThrow(/tensors/);
    lm.free();
  });
});
