// Prints SHA-256 digests of what the CPU path computes on the tiny models of each architecture:
// log-probs, entropies, every LoRA and full fine-tune gradient, the weights after two AdamW
// steps, and the engine's sampled tokens and log-probs for a fixed seed (greedy and sampled, with
// prefix sharing). Run before and after a change that must not move a bit (the backend seam did
// this) and compare the two outputs:
//   npx vitest run test/reference/cpu-digests.ts --config test/reference/digests.vitest.config.ts
// writes $RREC_DIGESTS_OUT (default /tmp/rrec-cpu-digests.json).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { loadNative } from '../../src/native.js';
import { ARCHS, writeTinyModel } from '../helpers/tiny-models.js';

const digest = (a: ArrayLike<number> & { buffer?: ArrayBufferLike }) =>
  createHash('sha256').update(Buffer.from((a as Float32Array).buffer, (a as Float32Array).byteOffset, (a as Float32Array).byteLength)).digest('hex').slice(0, 16);

function batch(vocab: number) {
  const make = (n: number, k: number) => Array.from({ length: n }, (_, i) => (i * 41 + k * 13 + 7) % vocab);
  return packSequences([{ tokens: make(30, 1), targetStart: 10 }, { tokens: make(75, 2), targetStart: 50 }, { tokens: make(9, 3), targetStart: 1 }]);
}

it('records the digests', async () => {
  const root = mkdtempSync(join(tmpdir(), 'rrec-digests-'));
  const out: Record<string, string> = { kernels: loadNative().features().matmulKernels, threads: String(loadNative().features().threads) };
  try {
    for (const arch of ARCHS) {
      for (const dtype of ['F32', 'BF16'] as const) {
        const dir = join(root, `${arch}-${dtype}`);
        writeTinyModel(dir, arch, { dtype });
        for (const precision of ['fp32', 'bf16'] as const) {
          const key = `${arch}/${dtype}/${precision}`;
          // LoRA with dropout, two optimizer steps
          const lm = await CausalLM.load(dir, { matmulPrecision: precision });
          const ad = lm.createLora({ rank: 4, alpha: 8, dropout: 0.1, seed: 3 });
          for (const p of ad.params())
            if (p.name.includes('lora_B')) ad.setParam(p.name, Float32Array.from(ad.getParam(p.name), (_, i) => Math.sin(i + 1) * 0.05));
          const opt = lm.createOptimizer(ad);
          for (let s = 0; s < 2; s++) {
            ad.zeroGrad();
            const pass = await lm.forward(batch(lm.config.vocabSize), { adapter: ad, entropy: true, loraDropout: true, dropoutSeed: 11 + s });
            out[`${key}/lora/logp${s}`] = digest(pass.logp);
            out[`${key}/lora/entropy${s}`] = digest(pass.entropy!);
            await pass.backward(Float64Array.from(pass.logp, (_, i) => Math.cos(i)));
            out[`${key}/lora/grads${s}`] = createHash('sha256').update(ad.params().map((p) => digest(ad.getGrad(p.name))).join()).digest('hex').slice(0, 16);
            out[`${key}/lora/norm${s}`] = String(await opt.step({ lr: 1e-2, maxGradNorm: 0.5, weightDecay: 0.01 }));
          }
          out[`${key}/lora/weights`] = createHash('sha256').update(ad.params().map((p) => digest(ad.getParam(p.name))).join()).digest('hex').slice(0, 16);
          const ref = await lm.forward(batch(lm.config.vocabSize), { keepForBackward: false });
          out[`${key}/base/logp`] = digest(ref.logp);
          const eng = new Engine(lm, { kvBudgetBytes: 1 << 22, blockSize: 8, maxBatchTokens: 24 });
          const prompts = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [5, 9, 2], [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]];
          for (const [name, params] of [['greedy', { temperature: 0 }], ['sampled', { temperature: 0.9, topK: 20, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1, presencePenalty: 0.2, n: 3, seed: 42 }]] as const) {
            const res = await eng.generate(prompts.map((p) => ({ prompt: p, maxTokens: 12, ...params })), { adapter: ad });
            const toks = res.flatMap((r) => r.samples.map((s) => Array.from(s.tokens).join(','))).join('|');
            out[`${key}/engine/${name}/tokens`] = createHash('sha256').update(toks).digest('hex').slice(0, 16);
            out[`${key}/engine/${name}/logprobs`] = createHash('sha256').update(res.flatMap((r) => r.samples.map((s) => digest(s.logprobs))).join()).digest('hex').slice(0, 16);
          }
          eng.free();
          lm.free();
          // full fine-tune
          const full = await CausalLM.load(dir, { fullFinetune: true, matmulPrecision: precision });
          const fo = full.createOptimizer();
          for (let s = 0; s < 2; s++) {
            full.zeroGrad();
            const pass = await full.forward(batch(full.config.vocabSize), { entropy: true, recomputeActivations: s === 1 });
            out[`${key}/full/logp${s}`] = digest(pass.logp);
            await pass.backward(Float64Array.from(pass.logp, (_, i) => Math.sin(i)));
            out[`${key}/full/grads${s}`] = createHash('sha256').update(full.params().map((p) => digest(full.getGrad(p.name))).join()).digest('hex').slice(0, 16);
            out[`${key}/full/norm${s}`] = String(await fo.step({ lr: 1e-3, maxGradNorm: 1.0 }));
          }
          out[`${key}/full/weights`] = createHash('sha256').update(full.params().map((p) => digest(full.getParam(p.name))).join()).digest('hex').slice(0, 16);
          full.free();
        }
      }
      // float64 build
      const d64 = await CausalLM.load(join(root, `${arch}-F32`), { dtype: 'float64' });
      const a64 = d64.createLora({ rank: 2, seed: 1 });
      const p64 = await d64.forward(batch(d64.config.vocabSize), { adapter: a64 });
      out[`${arch}/f64/logp`] = digest(p64.logp);
      await p64.backward(Float64Array.from(p64.logp, (_, i) => Math.cos(i)));
      out[`${arch}/f64/grads`] = createHash('sha256').update(a64.params().map((p) => digest(a64.getGrad(p.name))).join()).digest('hex').slice(0, 16);
      d64.free();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  writeFileSync(process.env.RREC_DIGESTS_OUT ?? '/tmp/rrec-cpu-digests.json', JSON.stringify(out, null, 1) + '\n');
}, 600_000);
