// Backward against central finite differences, in the float64 build of the model.
// Loss = sum_i c_i logp_i with fixed random c, so dLoss/dlogp = c is what backward() receives.
// Every LoRA target module (A and B) and every full-fine-tune tensor kind is probed, on each
// architecture, with GQA, Gemma2's soft-caps and sliding window biting, and LoRA dropout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences, type LoraAdapter } from '../../src/model/index.js';
import { writeTinyModel, mulberry32, type Arch } from '../helpers/tiny-models.js';

/** Uniform [0, 1) from the helpers' integer PRNG. */
function uniform(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 2 ** 32;
}

const root = mkdtempSync(join(tmpdir(), 'rrec-bwd-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const H = 1e-5; // central-difference step (float64: truncation ~H^2, rounding ~1e-16/H)
const RTOL = 1e-5;
const ATOL = 1e-8;

function batchFor(vocab: number) {
  const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 53 + k * 17 + 5) % vocab);
  // 4 sequences, completions start at different places; all but the 6-token one exceed the window
  // 8, and the 140-token one spans three of the native attention's 64-query blocks
  return packSequences([
    { tokens: make(13, 1), targetStart: 4 },
    { tokens: make(140, 4), targetStart: 120 },
    { tokens: make(6, 2), targetStart: 1 },
    { tokens: make(10, 3), targetStart: 7 },
  ]);
}

interface Holder {
  params(): { name: string; shape: number[] }[];
  getParam(name: string): Float32Array | Float64Array;
  setParam(name: string, v: Float32Array | Float64Array): void;
  getGrad(name: string): Float32Array | Float64Array;
  zeroGrad(): void;
}

async function checkGradients(lm: CausalLM, holder: Holder, adapter: LoraAdapter | null, names: string[], dropout: boolean, probesPerTensor = 3) {
  const batch = batchFor(lm.config.vocabSize);
  const rand = uniform(7);
  const coef = Float64Array.from({ length: batch.targetRows.length }, () => rand() * 2 - 1);
  const opts = { adapter, loraDropout: dropout, dropoutSeed: 1234 };
  const loss = async () => {
    const r = await lm.forward(batch, { ...opts, keepForBackward: false });
    let s = 0;
    r.logp.forEach((v, i) => (s += coef[i]! * v));
    return s;
  };
  holder.zeroGrad();
  const pass = await lm.forward(batch, opts);
  await pass.backward(coef);
  let worst = 0;
  for (const name of names) {
    const grad = holder.getGrad(name);
    const value = Float64Array.from(holder.getParam(name));
    // probe the largest-gradient entry and a few random ones
    let arg = 0;
    grad.forEach((g, i) => (Math.abs(g) > Math.abs(grad[arg]!) ? (arg = i) : 0));
    const idx = [arg, ...Array.from({ length: probesPerTensor - 1 }, () => Math.floor(rand() * value.length))];
    for (const i of idx) {
      const orig = value[i]!;
      value[i] = orig + H;
      holder.setParam(name, value);
      const up = await loss();
      value[i] = orig - H;
      holder.setParam(name, value);
      const down = await loss();
      value[i] = orig;
      holder.setParam(name, value);
      const fd = (up - down) / (2 * H);
      const err = Math.abs(fd - grad[i]!);
      worst = Math.max(worst, err / (Math.abs(fd) + 1e-3));
      expect(err, `${name}[${i}]: analytic ${grad[i]} vs finite difference ${fd}`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(fd));
    }
    expect(grad.some((g) => g !== 0), `${name} got no gradient at all`).toBe(true);
  }
  return worst;
}

function randomiseB(adapter: LoraAdapter, seed: number) {
  const rand = uniform(seed);
  for (const p of adapter.params()) {
    if (!p.name.includes('lora_B')) continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    adapter.setParam(p.name, Float64Array.from({ length: n }, () => (rand() * 2 - 1) * 0.2));
  }
}

const cases: { arch: Arch; label: string; overrides?: Record<string, unknown> }[] = [
  { arch: 'llama', label: 'GQA 4/2' },
  { arch: 'llama', label: 'no GQA', overrides: { num_key_value_heads: 4 } },
  { arch: 'qwen2', label: 'GQA, q/k/v bias, tied' },
  { arch: 'gemma2', label: 'softcaps + sliding window' },
  { arch: 'gemma2', label: 'no softcap, no window', overrides: { attn_logit_softcapping: null, final_logit_softcapping: null, sliding_window: null } },
];

describe.each(cases)('$arch ($label) backward', ({ arch, label, overrides }) => {
  const dir = join(root, `${arch}-${label.replace(/\W+/g, '_')}`);
  writeTinyModel(dir, arch, { overrides: overrides as never });

  it('LoRA A and B gradients of every target module match finite differences', async () => {
    const lm = await CausalLM.load(dir, { dtype: 'float64' });
    const adapter = lm.createLora({ rank: 2, alpha: 4, seed: 3 });
    randomiseB(adapter, 11);
    const last = lm.config.numLayers - 1;
    const names = adapter
      .params()
      .map((p) => p.name)
      .filter((n) => n.includes(`layers.0.`) || n.includes(`layers.${last}.`));
    expect(names.length).toBe(2 * 7 * 2);
    await checkGradients(lm, adapter, adapter, names, false);
    lm.free();
  });

  it('LoRA gradients with dropout (masks replayed from the seed) match finite differences', async () => {
    const lm = await CausalLM.load(dir, { dtype: 'float64' });
    const adapter = lm.createLora({ rank: 2, alpha: 4, dropout: 0.3, seed: 3, targets: ['q_proj', 'v_proj', 'down_proj'] });
    randomiseB(adapter, 12);
    const names = adapter.params().map((p) => p.name).filter((n) => n.includes('layers.0.'));
    await checkGradients(lm, adapter, adapter, names, true, 2);
    lm.free();
  });

  it('full fine-tune gradients of every tensor kind match finite differences', async () => {
    const lm = await CausalLM.load(dir, { dtype: 'float64', fullFinetune: true });
    const all = lm.params().map((p) => p.name);
    // one of each kind: embeddings, every projection and bias, every norm, lm_head / final norm
    const kinds = new Map<string, string>();
    for (const n of all) kinds.set(n.replace(/layers\.\d+\./, 'layers.N.'), n);
    const names = [...kinds.values()];
    expect(names).toContain('model.embed_tokens.weight');
    expect(names).toContain('model.norm.weight');
    await checkGradients(lm, lm, null, names, false, 2);
    lm.free();
  });
});
