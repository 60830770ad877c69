// Exact resume: a GRPO run interrupted after step k, checkpointed, and resumed in a fresh model
// gives the same per-step metrics as the uninterrupted run, bit for bit (float32 model).
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, type AdamW, type LoraAdapter } from '../../src/model/index.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { grpoStep, type GrpoStepConfig } from '../../src/train/grpo-step.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'gemma2');
writeTinyModel(dir, 'gemma2');

const examples = [0, 1, 2].map((k) => ({ promptIds: Int32Array.from({ length: 5 + 2 * k }, (_, i) => (i * 17 + k * 29 + 11) % 256) }));
const reward = (_: unknown, s: { tokens: Int32Array }) => {
  const v = s.tokens.length ? Array.from(s.tokens).filter((t) => t % 3 === 0).length / s.tokens.length : 0;
  return { total: v, parts: { mod3: v } };
};
const cfg: GrpoStepConfig = {
  groupSize: 4, maxNewTokens: 7, sampling: { temperature: 1, topP: 0.95 }, seed: 11, beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.28,
  lossType: 'dapo', advantageVariant: 'groupStd', maskTruncated: false, numIterations: 2, lr: 1e-2, maxGradNorm: 1, weightDecay: 0.01,
  maxTokensPerMicroBatch: 40,
};

/** Metrics without the wall-clock ones. */
function deterministic(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('time/') && !k.startsWith('tokens_per_second/')));
}

async function run(lm: CausalLM, adapter: LoraAdapter, optimizer: AdamW, from: number, to: number) {
  const engine = new Engine(lm, { kvBudgetBytes: 1 << 24 });
  const out: Record<string, number>[] = [];
  for (let step = from; step < to; step++) out.push(deterministic((await grpoStep({ lm, engine, adapter, optimizer, reward }, examples, cfg, step)).metrics));
  return out;
}

describe('checkpoint and resume', () => {
  it('a run resumed from a checkpoint repeats the uninterrupted run exactly', async () => {
    const a = await CausalLM.load(dir);
    const adA = a.createLora({ rank: 4, alpha: 8, dropout: 0.1, seed: 1 });
    const full = await run(a, adA, a.createOptimizer(adA), 0, 4);
    a.free();

    // interrupted after 2 steps
    const b = await CausalLM.load(dir);
    const adB = b.createLora({ rank: 4, alpha: 8, dropout: 0.1, seed: 1 });
    const optB = b.createOptimizer(adB);
    const first = await run(b, adB, optB, 0, 2);
    const runDir = join(root, 'run');
    const ckpt = await saveCheckpoint(runDir, { lm: b, adapter: adB, optimizer: optB }, { step: 2, cursor: { epoch: 0, batch: 2 } });
    expect(readdirSync(ckpt).sort()).toEqual(['adapter', 'optimizer.safetensors', 'trainer_state.json']);
    b.free();

    // resumed in a fresh process-like state: new model, adapter and optimizer from the files
    const c = await CausalLM.load(dir);
    const { adapter, optimizer, state } = await loadCheckpoint(ckpt, c);
    expect(state).toEqual({ step: 2, cursor: { epoch: 0, batch: 2 } });
    expect(optimizer.steps).toBe(4); // numIterations = 2 updates per step
    const rest = await run(c, adapter!, optimizer, 2, 4);
    c.free();
    expect([...first, ...rest]).toEqual(full);
    // the run learned something, so equality is not trivially about untouched weights
    expect(full[3]!.grad_norm).toBeGreaterThan(0);
  });

  it('full fine-tune checkpoints restore every weight and the optimizer', async () => {
    const lm = await CausalLM.load(dir, { fullFinetune: true });
    const opt = lm.createOptimizer();
    const engine = new Engine(lm, { kvBudgetBytes: 1 << 24 });
    await grpoStep({ lm, engine, adapter: null, optimizer: opt, reward }, examples, { ...cfg, numIterations: 1 }, 0);
    const ckpt = await saveCheckpoint(join(root, 'run-full'), { lm, adapter: null, optimizer: opt }, { step: 1 });
    const names = lm.params().map((p) => p.name);
    const values = names.map((n) => Array.from(lm.getParam(n)));
    const moments = opt.getState();
    lm.free();
    const again = await CausalLM.load(dir, { fullFinetune: true });
    const { adapter, optimizer } = await loadCheckpoint(ckpt, again);
    expect(adapter).toBeNull();
    names.forEach((n, i) => expect(Array.from(again.getParam(n))).toEqual(values[i]));
    const st = optimizer.getState();
    expect(st.step).toBe(moments.step);
    st.m.forEach((m, i) => expect(Array.from(m)).toEqual(Array.from(moments.m[i]!)));
    again.free();
  });

  it('a save that fails midway leaves the previous checkpoint and no temp folder', async () => {
    const lm = await CausalLM.load(dir);
    const ad = lm.createLora({ rank: 2, seed: 3 });
    const opt = lm.createOptimizer(ad);
    const runDir = join(root, 'run-crash');
    const ok = await saveCheckpoint(runDir, { lm, adapter: ad, optimizer: opt }, { step: 5 });
    await expect(
      saveCheckpoint(runDir, { lm, adapter: ad, optimizer: opt }, { step: 5, note: 'second' }, { beforeCommit: () => { throw new Error('crash'); } }),
    ).rejects.toThrow('crash');
    expect(readdirSync(runDir)).toEqual(['checkpoint-5']);
    const { state } = await loadCheckpoint(ok, lm);
    expect(state).toEqual({ step: 5 });
    expect(existsSync(join(ok, 'adapter', 'adapter_model.safetensors'))).toBe(true);
    lm.free();
  });
});
