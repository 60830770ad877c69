// The C++ every-op test (native/tests/test_backend_ops.cc): every op on every backend found next
// to it (the CPU backend, the cputest library, and cuda-emu / cuda when built) against the CPU's
// float64 path, with finite-difference checks of the backward ops. Also run by ctest.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeBuild, nativeBuildDir } from './native-build.js';

const build = nativeBuild();
const noCmake = !build.ok && build.reason === 'cmake is not installed';

describe.skipIf(noCmake)('test_backend_ops', () => {
  it('every op on every registered backend matches the CPU backend (and finite differences)', () => {
    if (!build.ok) throw new Error(build.reason);
    const r = spawnSync(join(nativeBuildDir, 'test_backend_ops'), [], { encoding: 'utf8', timeout: 600_000 });
    const out = `${r.stdout}${r.stderr}`;
    const summary = /(\d+) passed, (\d+) failed, (\d+) skipped/.exec(out);
    if (r.status !== 0 || !summary) console.log(out.split('\n').filter((l) => /FAIL|backend|==/.test(l)).join('\n'));
    expect(summary, out.slice(-2000)).not.toBeNull();
    expect(Number(summary![2])).toBe(0);
    expect(Number(summary![1])).toBeGreaterThan(500);
    // the run-time loaded CPU backend joined the test without any test code of its own
    expect(out).toMatch(/== cputest: ok/);
    expect(out).toMatch(/backend badabi +unavailable: the library was built for backend ABI version 100/);
    // every CUDA kernel under the emulator (native/cuda built by g++ as librrec_cuda_emu.so)
    expect(out).toMatch(/backend cuda-emu +available/);
    expect(out).toMatch(/== cuda-emu: ok/);
    const emuChecks = out.split('\n').filter((l) => / cuda-emu /.test(l) && !/^(skip|backend|==)/.test(l));
    expect(emuChecks.filter((l) => /^FAIL/.test(l))).toEqual([]);
    // the CUDA backend runs every op of the table
    expect(out.split('\n').filter((l) => /^skip cuda-emu/.test(l))).toEqual([]);
    // librrec_cuda.so, where nvcc built it, is listed: available on a GPU machine, else with the runtime's reason
    if (/backend cuda /.test(out)) expect(out).toMatch(/backend cuda +(available|unavailable: cudaGetDeviceCount failed: cudaError\w+ \(\d+\))/);
    expect(r.status).toBe(0);
  }, 600_000);
});
