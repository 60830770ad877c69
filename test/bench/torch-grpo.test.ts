// grpo.step's PyTorch peer (bench/peers/torch_grpo.py) computes our GRPO loss: on a tiny random
// Qwen2 (bf16 weights, widened to f32 on both sides), replayed rollouts split into several
// micro-batches, a seeded adapter and old log-probs on both sides of the clip range, torch's loss
// and adapter gradient norm equal ours (src/grpo + the native forward/backward), and torch's loss
// formula on our log-probs equals ours to float64 rounding. Skips without /usr/bin/python3 + torch.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oursOnCheck, perturbAdapter, replayTokens, writeAdapter, writeReplay, type Replay } from '../../bench/lib/grpo-replay.js';
import { TorchLayerPeer, torchVersion } from '../../bench/lib/torch-peer.js';
import { CausalLM, createRandomModel, type GrpoStepConfig } from '../../src/index.js';
import { microBatches } from '../../src/train/grpo-step.js';

const haveTorch = torchVersion() !== null;
const script = join(__dirname, '..', '..', 'bench', 'peers', 'torch_grpo.py');
const V = 256;

/** 7 sequences of 5-11 prompt tokens and 1-9 completion tokens; two truncated. */
function replay(budget: number): Replay {
  let x = 12345;
  const next = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) % V;
  const seqs = Array.from({ length: 7 }, (_, i) => {
    const P = 5 + ((i * 3) % 7), N = 1 + ((i * 5) % 9);
    return { tokens: Array.from({ length: P + N }, next), prompt_len: P, truncated: (i % 3 === 1 ? 1 : 0) as 0 | 1 };
  });
  return { seqs, advantages: seqs.map(() => 0), micro_batches: microBatches(seqs, budget) };
}

describe.skipIf(!haveTorch)('torch_grpo.py: the GRPO loss of ours, in torch', () => {
  let dir: string;
  let lm: CausalLM;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rrec-torch-grpo-'));
    await createRandomModel(join(dir, 'model'), { architecture: 'qwen2', vocabSize: V, hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 96, ropeTheta: 1e6 }, { seed: 3, dtype: 'BF16' });
    lm = await CausalLM.load(join(dir, 'model'), { matmulPrecision: 'fp32' });
  });
  afterAll(() => {
    lm?.free();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [lossType, maskTruncated] of [['grpo', false], ['dapo', true]] as const) {
    it(`loss_type ${lossType}${maskTruncated ? ', mask_truncated' : ''}: loss and gradient norm agree`, async () => {
      const r = replay(30);
      expect(r.micro_batches.length).toBeGreaterThan(2);
      const cfg = { beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.28, lossType, maskTruncated, maxNewTokens: 9 } as GrpoStepConfig;
      const adapter = lm.createLora({ rank: 4, alpha: 8, seed: 5 });
      perturbAdapter(adapter, 11);
      const ours = await oursOnCheck(lm, adapter, r, cfg, 7);
      const ratios = r.old_logp!.map((o, k) => Math.exp(r.policy_logp![k]! - o));
      expect(Math.min(...ratios)).toBeLessThan(0.8); // both clips are exercised
      expect(Math.max(...ratios)).toBeGreaterThan(1.28);
      writeReplay(join(dir, 'replay.json'), r);
      await writeAdapter(join(dir, 'adapter.safetensors'), adapter);
      const args = ['--model', join(dir, 'model'), '--threads=1', '--rank=4', '--alpha=8', '--beta=0.04', '--eps_low=0.2', '--eps_high=0.28', `--loss_type=${lossType}`, '--max_completion_length=9', `--mask_truncated=${maskTruncated ? 1 : 0}`];
      const peer = await TorchLayerPeer.start(script, args);
      try {
        const t = await peer.request({ cmd: 'check', replay: join(dir, 'replay.json'), adapter: join(dir, 'adapter.safetensors') });
        expect(t.tokens).toBe(replayTokens(r));
        expect(Math.abs(ours.loss)).toBeGreaterThan(1e-3); // not a trivially zero loss
        expect(Math.abs((t.loss as number) - ours.loss) / Math.abs(ours.loss)).toBeLessThan(1e-3);
        expect(Math.abs((t.loss_from_ours_logp as number) - ours.loss) / Math.abs(ours.loss)).toBeLessThan(1e-9);
        expect(Math.abs((t.grad_norm as number) - ours.gradNorm) / ours.gradNorm).toBeLessThan(1e-3);
        expect(t.policy_logp_max_abs_diff as number).toBeLessThan(1e-4);
        expect(t.ref_logp_max_abs_diff as number).toBeLessThan(1e-4);
        // the timed step runs on the same replay (bf16) and reports its three parts
        const s = await peer.request({ cmd: 'step', replay: join(dir, 'replay.json') });
        for (const k of ['reference_ms', 'train_ms', 'optimizer_ms', 'loss', 'grad_norm']) expect(Number.isFinite(s[k])).toBe(true);
        await expect(peer.request({ cmd: 'nope' })).rejects.toThrow(/unknown command/);
      } finally {
        await peer.close();
      }
    });
  }
});
