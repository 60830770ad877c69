// Builds the native core's standalone CMake project (native/CMakeLists.txt: the C++ tests and the
// test backend libraries) into build-native/, incrementally. Run once per `npm test` by
// test/native/global-setup.ts; tests read the result with nativeBuild().
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const nativeBuildDir = join(repoRoot, 'build-native');
const statusFile = join(nativeBuildDir, 'rrec-build-status.json');

export interface NativeBuild {
  ok: boolean;
  /** Why the build was skipped or failed. */
  reason?: string;
  seconds?: number;
}

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

export function buildNative(): NativeBuild {
  if (!has('cmake')) return { ok: false, reason: 'cmake is not installed' };
  const t0 = Date.now();
  const run = (args: string[]) => execFileSync('cmake', args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  try {
    if (!existsSync(join(nativeBuildDir, 'CMakeCache.txt'))) run(['-S', 'native', '-B', nativeBuildDir, '-DCMAKE_BUILD_TYPE=Release']);
    run(['--build', nativeBuildDir, '-j', '2']);
  } catch (err) {
    const e = err as { stderr?: Buffer; stdout?: Buffer; message: string };
    const out = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`.split('\n').slice(-40).join('\n');
    return { ok: false, reason: `the native CMake build failed:\n${out || e.message}` };
  }
  return { ok: true, seconds: (Date.now() - t0) / 1000 };
}

export function recordBuild(b: NativeBuild): void {
  if (existsSync(nativeBuildDir)) writeFileSync(statusFile, JSON.stringify(b));
}

export function nativeBuild(): NativeBuild {
  if (!existsSync(statusFile)) return { ok: false, reason: 'global setup did not run (test/native/global-setup.ts)' };
  return JSON.parse(readFileSync(statusFile, 'utf8')) as NativeBuild;
}
