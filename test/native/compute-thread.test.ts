// Every OpenMP region of the addon runs on its one compute thread (native/addon/compute_thread.h),
// including the synchronous calls: optimizer.gradNorm(), setParam's bf16 refresh, and the
// test/bench kernel exports. Why it matters: libgomp gives each thread that opens a parallel region
// a team of its own, and once it manages more threads than there are CPUs it stops spinning
// between regions (its "throttled" spin count, 100), so every later region of the engine's decode
// pays futex wake-ups. Measured on 2 cores: one _bf16Peak call on the JS thread took
// single-sequence decode from ~30 to ~22 tok/s for the rest of the process (context switches
// 5.5K -> 133K over the same runs). A region opened on another thread shows up as new OS threads
// (its team's workers), so the test counts the process's threads around such calls.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { nativeFeatures } from '../../src/index.js';
import { loadNative } from '../../src/native.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import type { KernelExports } from '../kernels/kernels-addon.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-compute-thread-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const threadCount = (): number => readdirSync('/proc/self/task').length;
type Probes = KernelExports & { _memReadBandwidth(mb: number, passes: number): number; _bf16Peak(s: number): number | null };

describe('OpenMP regions stay on the compute thread', () => {
  it.skipIf(nativeFeatures().threads < 2 || process.platform !== 'linux')('synchronous native calls open no OpenMP team on the JS thread', async () => {
    const dir = join(root, 'qwen2');
    // intermediate 1024: the MLP weights have 65536 elements, where the bf16 refresh goes parallel
    writeTinyModel(dir, 'qwen2', { dtype: 'BF16', overrides: { intermediate_size: 1024 } });
    const lm = await CausalLM.load(dir, { fullFinetune: true, matmulPrecision: 'bf16' });
    const opt = lm.createOptimizer();
    const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 5) % 256);
    const pass = await lm.forward(packSequences([{ tokens, targetStart: 1 }]));
    await pass.backward(new Float32Array(pass.logp.length).fill(-0.1));
    await opt.step({ lr: 1e-3 });
    const before = threadCount(); // the compute thread's team and libuv's pool exist by now

    expect(opt.gradNorm()).toBeGreaterThan(0);
    const name = 'model.layers.0.mlp.gate_proj.weight';
    const w = Float32Array.from({ length: 1024 * 64 }, (_, i) => ((i % 97) - 48) / 1000);
    lm.setParam(name, w);
    expect(lm.getParam(name)[5]).toBeCloseTo(w[5]!, 6);
    const k = loadNative() as unknown as Probes;
    const [M, K, N] = [64, 256, 256]; // 4M multiply-adds: a parallel product
    const out = new Float32Array(M * N);
    k._matmulForward(out, new Float32Array(M * K).fill(0.5), new Uint8Array(new Float32Array(N * K).fill(0.25).buffer), 'F32', M, K, N, null, false);
    expect(out[0]).toBeCloseTo(0.5 * 0.25 * K, 3);
    expect(k._memReadBandwidth(8, 1)).toBeGreaterThan(0);
    k._fmaPeak(0.01);
    k._bf16Peak(0.01);

    expect(threadCount(), 'OS threads after the synchronous calls').toBe(before);
    lm.free();
  });
});
