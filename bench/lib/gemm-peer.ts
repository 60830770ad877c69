/**
 * OpenBLAS cblas_sgemm and oneDNN matmul as peers of our matmul kernels: bench/peer_gemm.cc built
 * with g++ when the Debian dev packages are there (libopenblas-dev, libdnnl-dev) and run in a
 * child process, so the addon never links either library. The executable is cached under the OS
 * temp dir, keyed by the source and the compile command.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface GemmCase {
  op: 'fwd' | 'bwdI' | 'bwdW';
  dtype: 'F32' | 'BF16';
  M: number;
  K: number;
  N: number;
}

export interface GemmPeer {
  /** e.g. "OpenBLAS 0.3 (SkylakeX)", "oneDNN". */
  name: string;
  lib: 'openblas' | 'dnnl';
  exe: string;
  env: NodeJS.ProcessEnv;
}

export const OPENBLAS_INSTALL_HINT = 'OpenBLAS peer: apt-get install libopenblas-dev (and g++)';
export const ONEDNN_INSTALL_HINT = 'oneDNN peer: apt-get install libdnnl-dev (and g++)';

/**
 * The peers that can be built here, and notes on the ones that cannot. `threads`: the thread count
 * both get (ours uses the same). OpenBLAS picks Haswell kernels on this CPU unless told otherwise;
 * its SkylakeX ones are ~1.8x faster at M=512 (docs/machine-limits.md), so `coretype` defaults to
 * SkylakeX.
 */
export function buildGemmPeers(root: string, threads: number, coretype = 'SkylakeX'): { peers: GemmPeer[]; notes: string[] } {
  const notes: string[] = [];
  const haveBlas = existsSync('/usr/include/x86_64-linux-gnu/cblas.h') || existsSync('/usr/include/cblas.h');
  const haveDnnl = existsSync('/usr/include/dnnl.hpp');
  if (!haveBlas) notes.push(OPENBLAS_INSTALL_HINT);
  if (!haveDnnl) notes.push(ONEDNN_INSTALL_HINT);
  if (!haveBlas && !haveDnnl) return { peers: [], notes };
  const src = join(root, 'bench', 'peer_gemm.cc');
  const args = ['-std=c++17', '-O2', src];
  if (haveBlas) args.push('-DPEER_OPENBLAS', '-I/usr/include/x86_64-linux-gnu', '-lopenblas');
  if (haveDnnl) args.push('-DPEER_DNNL', '-ldnnl');
  const key = createHash('sha256').update(readFileSync(src)).update(args.join(' ')).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'rrec-bench-peers');
  const exe = join(dir, `peer_gemm-${key}`);
  if (!existsSync(exe)) {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('g++', [...args, '-o', exe + '.tmp'], { stdio: ['ignore', 'ignore', 'pipe'] });
      renameSync(exe + '.tmp', exe);
    } catch (e) {
      notes.push(`matmul peers not built: g++ ${args.join(' ')} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 300)}`);
      return { peers: [], notes };
    }
  }
  const peers: GemmPeer[] = [];
  if (haveBlas) peers.push({ name: `OpenBLAS (${coretype})`, lib: 'openblas', exe, env: { ...process.env, OPENBLAS_CORETYPE: coretype, OPENBLAS_NUM_THREADS: String(threads) } });
  if (haveDnnl) peers.push({ name: 'oneDNN', lib: 'dnnl', exe, env: { ...process.env, OMP_NUM_THREADS: String(threads) } });
  return { peers, notes };
}

/** GFLOP/s of each case (NaN where the library has no such product), each the median of 5 timed batches of ~seconds/5. */
export function runGemmPeer(p: GemmPeer, cases: readonly GemmCase[], seconds: number): number[] {
  const input = cases.map((c) => `${c.op} ${c.dtype} ${c.M} ${c.K} ${c.N}`).join('\n') + '\n';
  const r = spawnSync(p.exe, [p.lib, String(seconds)], { input, env: p.env, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${p.name} peer failed (${r.status ?? r.signal}): ${r.stderr}`);
  return r.stdout.trim().split('\n').map(Number);
}
