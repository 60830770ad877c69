// The addon builds, loads through src/native.ts, and reports features that agree with what the
// OS says about this CPU (/proc/cpuinfo, os.availableParallelism) — an independent source.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadNative, NativeLoadError, packageRoot } from '../../src/native.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function cpuFlags(): Set<string> | null {
  if (!existsSync('/proc/cpuinfo')) return null;
  const line = readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('flags'));
  return line ? new Set(line.split(':')[1]!.trim().split(/\s+/)) : null;
}

describe('native addon', () => {
  it('finds the package root', () => {
    expect(packageRoot()).toBe(repoRoot);
  });

  it('loads and reports its version and build', () => {
    const f = loadNative().features();
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(f.version).toBe(pkg.version);
    expect(['avx512', 'avx2', 'sse2', 'none']).toContain(f.compiledSimd);
    expect(typeof f.cudaCompiled).toBe('boolean');
  });

  it('reports the SIMD level the OS sees on this CPU', () => {
    const flags = cpuFlags();
    if (!flags) return; // not Linux: nothing independent to compare with
    const f = loadNative().features();
    const expected = flags.has('avx512f') ? 'avx512' : flags.has('avx2') ? 'avx2' : flags.has('sse2') ? 'sse2' : 'none';
    expect(f.cpuSimd).toBe(expected);
    expect(f.avx512bf16).toBe(flags.has('avx512_bf16'));
    // the kernels picked at run time follow the CPU, whatever -march the binary was built with
    const avx512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((x) => flags.has(x));
    const avx2 = ['avx2', 'fma', 'f16c'].every((x) => flags.has(x));
    const env = process.env.RREC_MATMUL;
    const expectedKernels =
      env === 'generic' ? 'generic'
      : env !== 'avx2' && avx512 && flags.has('avx512_bf16') ? 'avx512-bf16'
      : env !== 'avx2' && avx512 ? 'avx512'
      : avx2 ? 'avx2'
      : 'generic';
    expect(f.matmulKernels).toBe(expectedKernels);
  });

  it('RREC_MATMUL=generic switches the kernels to the portable loops at run time', () => {
    const out = execFileSync(process.execPath, ['-e', "console.log(require('node-gyp-build')(process.argv[1]).features().matmulKernels)", repoRoot], {
      env: { ...process.env, RREC_MATMUL: 'generic' },
      cwd: repoRoot,
    }).toString();
    expect(out.trim()).toBe('generic');
  });

  it('RREC_MATMUL=avx2 switches an AVX-512 CPU to the AVX2 kernels at run time', () => {
    const flags = cpuFlags();
    if (!flags || !['avx2', 'fma', 'f16c'].every((x) => flags.has(x))) return; // no AVX2 path on this CPU
    const out = execFileSync(process.execPath, ['-e', "console.log(require('node-gyp-build')(process.argv[1]).features().matmulKernels)", repoRoot], {
      env: { ...process.env, RREC_MATMUL: 'avx2' },
      cwd: repoRoot,
    }).toString();
    expect(out.trim()).toBe('avx2');
  });

  it('uses the hardware thread count unless RREC_NUM_THREADS says otherwise', () => {
    const f = loadNative().features();
    if (!process.env.RREC_NUM_THREADS) expect(f.threads).toBe(availableParallelism());
    expect(f.hardwareThreads).toBe(availableParallelism());
    // A child process with the variable set: plain node can require the built binary directly.
    const out = execFileSync(process.execPath, ['-e', "console.log(require('node-gyp-build')(process.argv[1]).features().threads)", repoRoot], {
      env: { ...process.env, RREC_NUM_THREADS: '3' },
      cwd: repoRoot,
    }).toString();
    expect(out.trim()).toBe('3');
  });

  it('fails with a message naming the file and the build command when the binary is missing', () => {
    const missing = join(repoRoot, 'build', 'no-such-binary.node');
    const code = `
      process.env.RREC_NATIVE_BINARY = ${JSON.stringify(missing)};
      import(${JSON.stringify('file://' + join(repoRoot, 'dist', 'native.js'))}).then((m) => {
        try { m.loadNative(); console.log('loaded?!'); }
        catch (e) { console.log(e.name + ': ' + e.message); }
      });`;
    if (!existsSync(join(repoRoot, 'dist', 'native.js'))) {
      // dist/ is built by `npm install` (prepare); without it, check the class directly.
      expect(new NativeLoadError('x').name).toBe('NativeLoadError');
      return;
    }
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: repoRoot }).toString();
    expect(out).toContain('NativeLoadError');
    expect(out).toContain(missing);
    expect(out).toContain('npm run build:native');
  });
});
