// recomputeActivations: backward recomputes each decoder layer from its kept input. It runs the
// same code on the same values, so log-probs and every gradient (LoRA with dropout, and full
// fine-tune) must equal the stored-activation path bit for bit; that path is itself checked
// against finite differences and PyTorch (backward-fd.test.ts, forward-hf.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { ARCHS, writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-recompute-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function batch(vocab: number) {
  const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 41 + k * 13 + 7) % vocab);
  return packSequences([{ tokens: make(30, 1), targetStart: 10 }, { tokens: make(75, 2), targetStart: 50 }]);
}

interface Holder {
  params(): { name: string; shape: number[] }[];
  getGrad(name: string): Float32Array | Float64Array;
  zeroGrad(): void;
}

async function gradients(lm: CausalLM, holder: Holder, opts: object, recompute: boolean) {
  holder.zeroGrad();
  const b = batch(lm.config.vocabSize);
  const pass = await lm.forward(b, { ...opts, recomputeActivations: recompute });
  const logp = Float64Array.from(pass.logp);
  await pass.backward(Float64Array.from(logp, (_, i) => Math.cos(i)));
  return { logp, grads: holder.params().map((p) => Float64Array.from(holder.getGrad(p.name))) };
}

describe.each(ARCHS)('%s: recomputed activations', (arch) => {
  const dir = join(root, arch);
  writeTinyModel(dir, arch);

  it('LoRA (with dropout): identical log-probs and gradients', async () => {
    const lm = await CausalLM.load(dir);
    const adapter = lm.createLora({ rank: 4, alpha: 8, dropout: 0.2, seed: 5 });
    for (const p of adapter.params())
      if (p.name.includes('lora_B')) adapter.setParam(p.name, Float32Array.from(adapter.getParam(p.name), (_, i) => Math.sin(i + 1) * 0.1));
    const opts = { adapter, loraDropout: true, dropoutSeed: 77 };
    const a = await gradients(lm, adapter, opts, false);
    const b = await gradients(lm, adapter, opts, true);
    expect(b.logp).toEqual(a.logp);
    expect(b.grads).toEqual(a.grads);
    expect(a.grads.some((g) => g.some((v) => v !== 0))).toBe(true);
    lm.free();
  });

  it('full fine-tune: identical gradients of every weight', async () => {
    const lm = await CausalLM.load(dir, { fullFinetune: true });
    const a = await gradients(lm, lm, {}, false);
    const b = await gradients(lm, lm, {}, true);
    expect(b.logp).toEqual(a.logp);
    expect(b.grads).toEqual(a.grads);
    lm.free();
  });
});
