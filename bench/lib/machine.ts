/**
 * What the figures were measured on: the machine (CPU, cores, threads, what the addon was built
 * with, RAM, OS, load) and the versions of ours and of every peer. Peers that are not installed
 * give null.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { nativeFeatures } from '../../src/index.js';
import { torchVersion } from './torch-peer.js';
import { findNodeLlamaCpp } from './llama-cpp.js';

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** Physical cores from /proc/cpuinfo ("cpu cores" x distinct "physical id"), else the thread count. */
function physicalCores(): number {
  const info = readOr('/proc/cpuinfo');
  const perSocket = Number(/^cpu cores\s*:\s*(\d+)/m.exec(info)?.[1] ?? NaN);
  const sockets = new Set([...info.matchAll(/^physical id\s*:\s*(\d+)/gm)].map((m) => m[1])).size || 1;
  return Number.isFinite(perSocket) ? perSocket * sockets : availableParallelism();
}

export function machineInfo(): Record<string, unknown> {
  const osRelease = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readOr('/etc/os-release'))?.[1] ?? null;
  const flags = /^flags\s*:\s*(.*)$/m.exec(readOr('/proc/cpuinfo'))?.[1]?.split(' ') ?? [];
  return {
    cpu_model: cpus()[0]?.model ?? null,
    cores: physicalCores(),
    hardware_threads: availableParallelism(),
    threads: nativeFeatures().threads,
    features: nativeFeatures(),
    cpu_flags: flags.filter((f) => /^(avx2|avx512f|avx512_bf16|avx512_vnni|avx512bw|amx_bf16|amx_int8|fma)$/.test(f)),
    ram_bytes: totalmem(),
    os: `${osRelease ?? type()} (${type()} ${release()})`,
    load_average_1min_start: loadavg()[0],
  };
}

/** `dpkg-query` version of a Debian package, or null. */
function debVersion(pkg: string): string | null {
  try {
    const v = execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return v === '' ? null : v;
  } catch {
    return null;
  }
}

export function versions(root: string): Record<string, string | null> {
  const pkg = JSON.parse(readOr(join(root, 'package.json'), '{}')) as { version?: string };
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dirty !== '') commit += '+dirty';
  } catch {
    commit = null;
  }
  const nlc = findNodeLlamaCpp(root);
  return {
    node: process.version,
    'rrec-emotion': pkg.version ? `${pkg.version}${commit ? ` (${commit})` : ''}` : null,
    'rrec-emotion-native': nativeFeatures().version,
    torch: torchVersion(),
    'node-llama-cpp': nlc ? ((JSON.parse(readOr(join(nlc, 'package.json'), '{}')) as { version?: string }).version ?? null) : null,
    openblas: debVersion('libopenblas0') ?? debVersion('libopenblas-dev'),
    onednn: debVersion('libdnnl2') ?? debVersion('libdnnl-dev'),
  };
}
