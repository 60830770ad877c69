// The backend registry seen from JavaScript: the CPU backend is always there and 'auto' picks it
// here (no GPU); a backend library loaded at run time (librrec_cputest.so: the CPU backend built
// as its own shared library, registered as "cputest") is listed by features(), usable through
// `device`, and computes what the built-in CPU backend computes, bit for bit (same kernels, same
// flags); a missing, corrupt or mismatched library is reported with the reason and the CPU path
// keeps working.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeDevice } from '../../src/index.js';
import { Engine } from '../../src/engine/index.js';
import { CausalLM, packSequences } from '../../src/model/index.js';
import { loadNative } from '../../src/native.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { nativeBuild, nativeBuildDir, repoRoot } from './native-build.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-backends-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const build = nativeBuild();

describe('backend registry', () => {
  it('lists the CPU backend as available and picks it for auto', async () => {
    const f = loadNative().features();
    expect(f.backends[0]).toMatchObject({ name: 'cpu', library: null, available: true, reason: null, devices: 1 });
    const d = await describeDevice('auto');
    expect(d.device).toBe('cpu');
    expect(d.backend).toBe('cpu');
    expect(d.totalMemory).toBeGreaterThan(0);
    expect(d.computeCapability).toBeNull();
  });

  it('refuses a device that is not available, naming it and why', async () => {
    const listed = loadNative().features().backends.find((b) => b.name === 'cuda');
    if (!listed?.available) await expect(describeDevice('cuda')).rejects.toThrow(/device "cuda" is not available: /);
    await expect(describeDevice('tpu')).rejects.toThrow(/device "tpu" is not available: no backend named "tpu" was found .*backends found: cpu/);
    await expect(describeDevice('cpu:1')).rejects.toThrow(/device "cpu:1" is not available: the cpu backend has 1 device/);
    await expect(describeDevice('cpu:x')).rejects.toThrow(/device index after ':' must be a number/);
    const dir = join(root, 'refused');
    writeTinyModel(dir, 'llama');
    await expect(CausalLM.load(dir, { device: 'tpu' })).rejects.toThrow(/device "tpu" is not available/);
  });

  it('reports a missing, a corrupt and a misnamed library without breaking the CPU path', async () => {
    const n = loadNative();
    const missing = n.addBackendLibrary(join(root, 'librrec_nothing.so'));
    expect(missing).toMatchObject({ name: 'nothing', available: false });
    expect(missing.reason).toMatch(/library failed to load: .*No such file/);
    const corrupt = join(root, 'librrec_corrupt.so');
    writeFileSync(corrupt, 'this is not an ELF file');
    expect(n.addBackendLibrary(corrupt).reason).toMatch(/library failed to load: .*(invalid ELF header|file too short)/);
    const misnamed = join(root, 'backend.so');
    writeFileSync(misnamed, '');
    expect(n.addBackendLibrary(misnamed).reason).toMatch(/librrec_<name>\.so/);
    const names = n.features().backends.map((b) => b.name);
    expect(names).toEqual(expect.arrayContaining(['cpu', 'nothing', 'corrupt']));
    const dir = join(root, 'still-cpu');
    writeTinyModel(dir, 'qwen2');
    const lm = await CausalLM.load(dir, { device: 'cpu' });
    expect(lm.config.device).toBe('cpu');
    lm.free();
    await expect(describeDevice('corrupt')).rejects.toThrow(/device "corrupt" is not available: library failed to load/);
  });
});

describe.skipIf(!build.ok && build.reason === 'cmake is not installed')('a backend library loaded at run time', () => {
  const lib = join(nativeBuildDir, 'librrec_cputest.so');

  it('is found through RREC_BACKEND_PATH by a fresh process', () => {
    if (!build.ok) throw new Error(build.reason);
    const out = execFileSync(
      process.execPath,
      ['-e', `const a = require(${JSON.stringify(join(repoRoot, 'build', 'Release', 'rrec_emotion.node'))}); console.log(JSON.stringify(a.features().backends))`],
      { env: { ...process.env, RREC_BACKEND_PATH: nativeBuildDir }, encoding: 'utf8' },
    );
    const backends = JSON.parse(out) as { name: string; available: boolean; library: string | null; reason: string | null }[];
    expect(backends.find((b) => b.name === 'cputest')).toMatchObject({ available: true, library: lib });
    expect(backends.find((b) => b.name === 'badabi')?.reason).toMatch(/built for backend ABI version 100, this addon uses 2/);
  });

  it('is listed and runs a model, an adapter, backward, AdamW and the engine bit-identically to the CPU', async () => {
    if (!build.ok) throw new Error(build.reason);
    // a copy, so this process registers it under a path of its own
    const copy = join(root, 'librrec_cputest.so');
    copyFileSync(lib, copy);
    const listing = loadNative().addBackendLibrary(copy);
    expect(listing).toMatchObject({ name: 'cputest', available: true, devices: 1, reason: null });
    expect(loadNative().features().backends.map((b) => b.name)).toContain('cputest');
    expect((await describeDevice('cputest')).device).toBe('cputest');

    const dir = join(root, 'gemma2');
    writeTinyModel(dir, 'gemma2');
    const batch = packSequences([{ tokens: [3, 5, 7, 11, 13, 17, 19], targetStart: 2 }, { tokens: [2, 4, 6, 8, 10], targetStart: 1 }]);
    const run = async (device: string) => {
      const lm = await CausalLM.load(dir, { device });
      expect(lm.config.device).toBe(device);
      const ad = lm.createLora({ rank: 4, seed: 9 });
      for (const p of ad.params())
        if (p.name.includes('lora_B')) ad.setParam(p.name, Float32Array.from(ad.getParam(p.name), (_, i) => Math.sin(i) * 0.1));
      const opt = lm.createOptimizer(ad);
      const pass = await lm.forward(batch, { adapter: ad, entropy: true });
      await pass.backward(Float32Array.from(pass.logp, (_, i) => Math.cos(i)));
      const norm = await opt.step({ lr: 1e-2 });
      const weights = ad.params().map((p) => Array.from(ad.getParam(p.name)));
      const engine = new Engine(lm, { kvBudgetBytes: 1 << 22 });
      const gen = await engine.generate([{ prompt: [1, 2, 3], maxTokens: 6, n: 2, temperature: 0.8, seed: 4 }], { adapter: ad });
      engine.free();
      lm.free();
      return { logp: Array.from(pass.logp), entropy: Array.from(pass.entropy!), norm, weights, tokens: gen[0]!.samples.map((s) => Array.from(s.tokens)) };
    };
    const cpu = await run('cpu');
    const loaded = await run('cputest');
    expect(loaded).toEqual(cpu);
  });
});
