// The CUDA backend (native/cuda, docs/backends.md "CUDA"): built by the vitest global setup with
// the native CMake project into build-native/.
//  - the emulator's own test (test_cuda_emu: mma/ldmatrix layouts, shfl, barriers, cp.async, faults)
//  - librrec_cuda.so (where nvcc is): link hygiene (check-link.sh), ptxas reports no spills in the
//    GEMM/attention/LM head kernels for sm_80 and sm_90 (check-ptxas.sh), and on a machine
//    without a driver it is listed with the CUDA runtime's reason while 'auto' stays on the CPU
//  - cuda-emu (every kernel under the emulator): tiny Qwen2, Gemma2 (both soft-caps, window
//    shorter than the sequence) and Llama models give the CPU backend's log-probs, entropies and
//    LoRA gradients, one AdamW step the same weights, within the stated tolerances, and the engine
//    (paged attention, KV writes, the sampler) the same greedy tokens
// The every-op comparison of each kernel is backend-ops.test.ts (test_backend_ops).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDevice } from '../../src/index.js';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { loadNative } from '../../src/native.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { nativeBuild, nativeBuildDir, repoRoot } from './native-build.js';

const build = nativeBuild();
const noCmake = !build.ok && build.reason === 'cmake is not installed';
const hasNvcc = spawnSync('nvcc', ['--version'], { stdio: 'ignore' }).status === 0;
const root = mkdtempSync(join(tmpdir(), 'rrec-cuda-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

describe.skipIf(noCmake)('the CUDA emulator', () => {
  it('passes its own tests (fragment layouts, warp primitives, barriers, cp.async, faults)', () => {
    if (!build.ok) throw new Error(build.reason);
    const r = spawnSync(join(nativeBuildDir, 'test_cuda_emu'), [], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout, r.stdout + r.stderr).toMatch(/(\d+) passed, 0 failed/);
    expect(r.status).toBe(0);
  });
});

describe.skipIf(noCmake)('the CUDA kernels under the emulator (C++ tests)', () => {
  it('test_cuda_gemm: the mma GEMM in its three layouts on every tile edge, K % 8 != 0, several tiles', () => {
    if (!build.ok) throw new Error(build.reason);
    const r = spawnSync(join(nativeBuildDir, 'test_cuda_gemm'), [], { encoding: 'utf8', timeout: 300_000 });
    expect(r.stdout, r.stdout + r.stderr).toMatch(/28 passed, 0 failed/);
    expect(r.status).toBe(0);
  }, 300_000);

  it('test_cuda_model: tiny Qwen2/Gemma2/Llama (bf16 checkpoints) with f32 and bf16 products', () => {
    if (!build.ok) throw new Error(build.reason);
    const dir = join(root, 'cxx-models');
    const r = spawnSync(join(nativeBuildDir, 'test_cuda_model'), ['--device', 'cuda-emu', '--dir', dir], { encoding: 'utf8', timeout: 300_000 });
    expect(r.stdout, r.stdout + r.stderr).toMatch(/(\d+) passed, 0 failed/);
    expect(r.stdout).toMatch(/gemma2 on cuda-emu bf16 products: log-probs/);
    expect(r.status).toBe(0);
  }, 300_000);
});

describe.skipIf(noCmake || !hasNvcc)('librrec_cuda.so (nvcc found)', () => {
  const lib = join(nativeBuildDir, 'librrec_cuda.so');

  it('has no NEEDED libcudart/libcuda/libcublas and exports only rrec_cuda_*', () => {
    if (!build.ok) throw new Error(build.reason);
    expect(existsSync(lib)).toBe(true);
    const r = spawnSync(join(repoRoot, 'native', 'cuda', 'check-link.sh'), [lib], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/link hygiene ok/);
    expect(r.stdout).toMatch(/exported: rrec_cuda_backend_reg\s*$/m);
    expect(r.status).toBe(0);
  });

  it('ptxas: no register spills in the GEMM, attention and LM head kernels (sm_80, sm_90)', () => {
    const r = spawnSync(join(repoRoot, 'native', 'cuda', 'check-ptxas.sh'), [], { encoding: 'utf8', timeout: 300_000 });
    const out = r.stdout + r.stderr;
    console.log(out.split('\n').filter((l) => /gemmMma|attnFwd|attnBwd|no spills|FAIL/.test(l)).join('\n'));
    expect(out).toMatch(/ptxas sm_80 gemm\.cu .*gemmMma.* 0 bytes spill stores, 0 bytes spill loads/);
    expect(out).toMatch(/ptxas sm_90 attention\.cu .*attnFwd.* 0 bytes spill stores/);
    expect(out).toMatch(/no spills in the GEMM, attention and LM head kernels for sm_80 and sm_90/);
    expect(r.status).toBe(0);
  }, 300_000);

  it('is listed by features() with the runtime reason when it cannot run, and auto stays on the CPU', async () => {
    if (!build.ok) throw new Error(build.reason);
    const copy = join(root, 'librrec_cuda.so');
    copyFileSync(lib, copy);
    const listing = loadNative().addBackendLibrary(copy);
    const f = loadNative().features();
    expect(f.cudaCompiled).toBe(true);
    const cuda = f.backends.find((b) => b.name === 'cuda')!;
    const info = JSON.parse(cuda.info) as { architectures: string[]; runtimeVersion: number; driverVersion: number; emulated: boolean };
    expect(info.architectures).toEqual(expect.arrayContaining(['80-real']));
    expect(info.runtimeVersion).toBeGreaterThanOrEqual(12000);
    expect(info.emulated).toBe(false);
    if (listing.available) {
      // a GPU machine: it opens and describes itself
      const d = await describeDevice('cuda');
      expect(d.computeCapability).toMatch(/^\d+\.\d+$/);
      return;
    }
    // this machine: no driver. The CUDA runtime's own error, named and numbered
    expect(cuda.reason).toMatch(/cudaGetDeviceCount failed: cudaError\w+ \(\d+\)/);
    if (info.driverVersion === 0) expect(cuda.reason).toMatch(/cudaErrorInsufficientDriver \(35\).*no CUDA driver is installed/);
    await expect(describeDevice('cuda')).rejects.toThrow(/device "cuda" is not available: cudaGetDeviceCount failed: cudaError\w+ \(\d+\)/);
    expect((await describeDevice('auto')).device).toBe('cpu');
  });
});

describe.skipIf(noCmake)('cuda-emu: tiny models end to end against the CPU backend', () => {
  // Tolerances: the kernels sum in other orders (f32), and the decoder GEMMs of bf16 weights
  // multiply bf16 products on both sides; measured differences are ~1e-6 (log-probs) and ~1e-5
  // relative (gradients), the bounds leave room for other seeds.
  const kLogpTol = 2e-4;
  const kGradTol = 2e-3; // relative to the largest gradient element

  for (const arch of ['qwen2', 'gemma2', 'llama'] as const) {
    it(`${arch}: forward log-probs and entropy, LoRA backward and one AdamW step equal the CPU's`, async () => {
      if (!build.ok) throw new Error(build.reason);
      const copy = join(root, 'librrec_cuda_emu.so');
      if (!existsSync(copy)) copyFileSync(join(nativeBuildDir, 'librrec_cuda_emu.so'), copy);
      expect(loadNative().addBackendLibrary(copy)).toMatchObject({ name: 'cuda-emu', available: true, devices: 1 });
      const dir = join(root, arch);
      // gemma2's tiny config has a sliding window shorter than the first sequence
      writeTinyModel(dir, arch);
      const batch = packSequences([
        { tokens: [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37], targetStart: 2 },
        { tokens: [2, 4, 6, 8, 10], targetStart: 1 },
      ]);
      const run = async (device: string) => {
        const lm = await CausalLM.load(dir, { device });
        const ad = lm.createLora({ rank: 4, seed: 9, dropout: 0.1 });
        for (const p of ad.params())
          if (p.name.includes('lora_B')) ad.setParam(p.name, Float32Array.from(ad.getParam(p.name), (_, i) => Math.sin(i) * 0.1));
        const opt = lm.createOptimizer(ad);
        const pass = await lm.forward(batch, { adapter: ad, entropy: true, loraDropout: true });
        await pass.backward(Float32Array.from(pass.logp, (_, i) => Math.cos(i)));
        const grads = ad.params().map((p) => Array.from(ad.getGrad(p.name)));
        const norm = await opt.step({ lr: 1e-2 });
        const weights = ad.params().map((p) => Array.from(ad.getParam(p.name)));
        // the engine (paged attention, KV writes, logits, the sampler) greedy with the trained adapter
        const engine = new Engine(lm, { kvBudgetBytes: 1 << 22 });
        const gen = await engine.generate([{ prompt: [1, 2, 3, 4, 5], maxTokens: 8, n: 1, temperature: 0, seed: 4 }], { adapter: ad });
        engine.free();
        lm.free();
        const greedy = Array.from(gen[0]!.samples[0]!.tokens);
        return { logp: Array.from(pass.logp), entropy: Array.from(pass.entropy!), grads, norm, weights, greedy };
      };
      const cpu = await run('cpu');
      const emu = await run('cuda-emu');
      expect(maxAbsDiff(emu.logp, cpu.logp)).toBeLessThan(kLogpTol);
      expect(maxAbsDiff(emu.entropy, cpu.entropy)).toBeLessThan(kLogpTol);
      const gScale = Math.max(...cpu.grads.map(maxAbs));
      expect(gScale).toBeGreaterThan(0);
      let gErr = 0;
      for (let i = 0; i < cpu.grads.length; i++) gErr = Math.max(gErr, maxAbsDiff(emu.grads[i]!, cpu.grads[i]!));
      console.log(`${arch} cuda-emu vs cpu: logp max diff ${maxAbsDiff(emu.logp, cpu.logp).toExponential(2)}, grad max diff / max grad ${(gErr / gScale).toExponential(2)}`);
      expect(gErr / gScale).toBeLessThan(kGradTol);
      expect(Math.abs(emu.norm - cpu.norm) / cpu.norm).toBeLessThan(kGradTol);
      let wErr = 0;
      for (let i = 0; i < cpu.weights.length; i++) wErr = Math.max(wErr, maxAbsDiff(emu.weights[i]!, cpu.weights[i]!));
      expect(wErr).toBeLessThan(1e-4);
      expect(emu.greedy).toEqual(cpu.greedy);
      expect(emu.greedy.length).toBe(8);
    }, 300_000);
  }
});
