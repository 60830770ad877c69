// Randomly initialised models written as Hugging Face folders load and behave as HF's init implies.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { configJsonText, createRandomModel, hfConfig, normalValues, type ModelShape } from '../../src/model/create.js';
import { readSafetensors } from '../../src/model/safetensors.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-create-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const shapes: ModelShape[] = [
  { architecture: 'qwen2', vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 96 },
  { architecture: 'llama', vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 96 },
  { architecture: 'gemma2', vocabSize: 300, hiddenSize: 64, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 48, intermediateSize: 96, slidingWindow: 4 },
];

describe('createRandomModel', () => {
  it('draws N(0, std) values: mean ~0, std within 2% over 100k draws, reproducible', () => {
    const v = normalValues(100_000, 0.02, 5);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(3 * 0.02 / Math.sqrt(v.length) * 2);
    expect(Math.abs(std / 0.02 - 1)).toBeLessThan(0.02);
    expect(normalValues(10, 1, 5)).toEqual(normalValues(10, 1, 5));
  });

  it.each(shapes)('$architecture: loads, and a fresh model is near uniform over the vocabulary', async (shape) => {
    const dir = join(root, shape.architecture);
    await createRandomModel(dir, shape, { seed: 3, dtype: 'BF16' });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.model_type).toBe(shape.architecture);
    expect(cfg.torch_dtype).toBe('bfloat16');
    const tensors = await readSafetensors(join(dir, 'model.safetensors'), ['model.norm.weight', 'model.layers.1.mlp.down_proj.weight']);
    expect(Array.from(tensors.get('model.norm.weight')!.data).every((x) => x === (shape.architecture === 'gemma2' ? 0 : 1))).toBe(true);
    const lm = await CausalLM.load(dir);
    expect(lm.config.numLayers).toBe(2);
    const out = await lm.forward(packSequences([{ tokens: [1, 2, 3, 4, 5, 6], targetStart: 1 }]), { keepForBackward: false, entropy: true });
    // The final norm gives unit-RMS hidden states and lm_head rows are N(0, 0.02^2), so logits are
    // ~N(0, s^2) with s = 0.02 sqrt(C) = 0.16: log p = logit - ln V - s^2/2 stays within 5 s of
    // -ln V, and the entropy is ln V - s^2/2 (+- sampling noise over 300 logits).
    const s = 0.02 * Math.sqrt(64);
    for (const lp of out.logp) expect(Math.abs(lp + Math.log(300))).toBeLessThan(5 * s);
    for (const h of out.entropy!) expect(Math.abs(h - (Math.log(300) - (s * s) / 2))).toBeLessThan(0.02);
    lm.free();
  });

  it('writes float-typed config fields with a decimal point (transformers 5 validates types)', () => {
    const text = configJsonText(hfConfig(shapes[2]!, 'float32'));
    expect(text).toContain('"attn_logit_softcapping": 50.0,');
    expect(text).toContain('"final_logit_softcapping": 30.0,');
    expect(text).toContain('"rope_theta": 10000.0,');
    expect(text).toContain('"query_pre_attn_scalar": 48,'); // an int field stays an int
    expect(JSON.parse(text)).toEqual(hfConfig(shapes[2]!, 'float32'));
  });

  it('the same seed writes the same bytes', async () => {
    await createRandomModel(join(root, 'a'), shapes[0]!, { seed: 9 });
    await createRandomModel(join(root, 'b'), shapes[0]!, { seed: 9 });
    expect(readFileSync(join(root, 'a', 'model.safetensors')).equals(readFileSync(join(root, 'b', 'model.safetensors')))).toBe(true);
  });
});
