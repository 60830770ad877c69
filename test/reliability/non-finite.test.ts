// Fault family: non-finite numbers. A NaN base model or adapter used to sample "!!!!" and evaluate
// to 0% accuracy without a word; now the first non-finite log-prob stops the evaluation (naming
// the split and row) or the training step (naming the step and what was computed).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Engine, EngineRequestError } from '../../src/engine/index.js';
import { evaluate } from '../../src/eval/run.js';
import { CausalLM } from '../../src/model/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { grpoStep, type GrpoStepConfig } from '../../src/train/grpo-step.js';
import { writeAnswerModel } from '../helpers/answer-model.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-nan-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Overwrites every 4-byte word of a safetensors data section with a float32 NaN. */
function poison(file: string): void {
  const buf = readFileSync(file);
  const start = 8 + Number(buf.readBigUInt64LE(0));
  for (let o = start; o + 4 <= buf.length; o += 4) buf.writeFloatLE(Number.NaN, o);
  writeFileSync(file, buf);
}

describe('a NaN base model', () => {
  it('the engine stops at the first sampled token, naming the request', async () => {
    const dir = join(root, 'nan-llama');
    writeTinyModel(dir, 'llama');
    poison(join(dir, 'model.safetensors'));
    const lm = await CausalLM.load(dir);
    const engine = new Engine(lm, { kvBudgetBytes: 1 << 20 });
    const err = await engine.generate([{ prompt: [1, 2, 3], maxTokens: 4 }, { prompt: [4, 5], maxTokens: 4, n: 2 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineRequestError);
    expect((err as EngineRequestError).kind).toBe('non_finite');
    expect((err as Error).message).toMatch(/^Engine: requests\[[01]\] sample [01]: the model's log-prob of the sampled token -?\d+ is NaN: its logits are not finite \(NaN or infinite weights in the model or adapter, or an overflow\)/);
    expect(engine.stats().usedBlocks).toBe(0); // the session was closed
    engine.free();
    lm.free();
  });

  it('evaluation names the split and row instead of reporting 0% accuracy', async () => {
    const dir = await writeAnswerModel(join(root, 'answer'), ['sad', 'joyful', 'angry', 'afraid']);
    const nanDir = join(root, 'answer-nan');
    rmSync(nanDir, { recursive: true, force: true });
    cpSync(dir, nanDir, { recursive: true });
    poison(join(nanDir, 'model.safetensors'));
    const lm = await CausalLM.load(nanDir);
    const tokenizer = await loadTokenizer(nanDir);
    const engine = new Engine(lm, { tokenizer, kvBudgetBytes: 1 << 24 });
    const examples = [0, 1, 2].map((k) => ({ promptIds: tokenizer.encode(`text ${k}`), label: k }));
    await expect(evaluate(engine, examples, { labels: ['sad', 'joyful', 'angry', 'afraid'], maxNewTokens: 6, describe: (i) => `valid row ${i}` })).rejects.toThrow(
      /^evaluate: valid row [012]: sample 0: the model's log-prob of the sampled token \d+ is NaN/,
    );
    engine.free();
    lm.free();
  });
});

describe('a NaN adapter during training', () => {
  it('grpoStep stops naming the step and the rollouts being sampled', async () => {
    const dir = join(root, 'llama');
    writeTinyModel(dir, 'llama');
    const lm = await CausalLM.load(dir);
    const adapter = lm.createLora({ rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], seed: 1 });
    const b = adapter.params().find((p) => p.name.endsWith('v_proj.lora_B.weight'))!;
    adapter.setParam(b.name, new Float32Array(b.shape[0]! * b.shape[1]!).fill(Number.NaN));
    const engine = new Engine(lm, { kvBudgetBytes: 1 << 22 });
    const cfg: GrpoStepConfig = {
      groupSize: 2, maxNewTokens: 4, sampling: { temperature: 1 }, seed: 1, beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dapo',
      advantageVariant: 'groupStd', maskTruncated: false, numIterations: 1, lr: 1e-3, maxGradNorm: 1, weightDecay: 0, maxTokensPerMicroBatch: 64,
    };
    await expect(
      grpoStep({ lm, engine, adapter, optimizer: lm.createOptimizer(adapter), reward: () => ({ total: 1, parts: {} }) }, [{ promptIds: Int32Array.of(1, 2, 3) }], cfg, 6),
    ).rejects.toThrow(/^grpoStep \(step 7\): sampling the rollouts of the batch's prompts failed: Engine: requests\[0\] sample [01]: the model's log-prob of the sampled token -?\d+ is NaN/);
    engine.free();
    lm.free();
  });
});
