// GFLOP/s of the CPU matmul kernels (native/cpu/matmul*.cc) on Qwen2.5-0.5B shapes, before (the
// portable loops, "generic") and after (what the model runs, "auto"), as a fraction of this
// machine's fp32 FMA peak measured in the same run, beside OpenBLAS cblas_sgemm and oneDNN matmul
// when their Debian packages are installed (peers run in a child process, bench/peer_gemm.cc; the
// addon never links them). Each figure is the median of R rounds (default 5); every round measures
// the peak, then every case with each implementation, then each peer, so slow drifts of this
// shared machine hit all columns alike.
//
// Run from the repository root after `npx node-gyp rebuild` (tsx is not installed, so compile):
//   sh bench/run-kernels.sh            # = tsc -p bench/tsconfig.json && node <out>/bench/kernels.js
// Options: --rounds=5 --seconds=0.04 (per timed batch) --no-peers --quick (M=16 and 512 only)
//   --openblas-coretype=SkylakeX. Threads: OMP_NUM_THREADS (default every core) for ours and oneDNN,
//   the same count for OpenBLAS.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Floats, KernelExports, KernelImpl, WeightDtype } from '../test/kernels/kernels-addon.js';

type Op = 'fwd' | 'bwdI' | 'bwdW';
interface Case {
  op: Op;
  dtype: 'F32' | 'BF16';
  M: number;
  K: number;
  N: number;
}

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const option = (name: string, def: number): number => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : def;
};
const ROUNDS = option('rounds', 5);
const BATCH_SECONDS = option('seconds', 0.04);
const root = resolve(process.env.RREC_ROOT ?? process.cwd());
const requireFromRoot = createRequire(join(root, 'package.json'));
const addon = (requireFromRoot('node-gyp-build') as (dir: string) => unknown)(root) as KernelExports & {
  features(): { compiledSimd: string; avx512bf16: boolean };
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
};

// ---- cases: Qwen2.5-0.5B projections (K x N = hidden x hidden, hidden -> MLP, MLP -> hidden)
const shapes: [number, number][] = [
  [896, 896],
  [896, 4864],
  [4864, 896],
];
const Ms = flag('quick') ? [16, 512] : [1, 4, 16, 512];
const cases: Case[] = [];
for (const dtype of ['F32', 'BF16'] as const)
  for (const [K, N] of shapes)
    for (const M of Ms)
      for (const op of ['fwd', 'bwdI', 'bwdW'] as const) if (op !== 'bwdW' || dtype === 'F32') cases.push({ op, dtype, M, K, N });

// ---- data (one set of buffers per case, filled once)
function randomFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) & 0xffff) / 65536 - 0.5;
  }
  return a;
}
function weightBytes(N: number, K: number, dtype: 'F32' | 'BF16'): Uint8Array {
  const f = randomFloats(N * K, N + K);
  if (dtype === 'F32') return new Uint8Array(f.buffer);
  const u32 = new Uint32Array(f.buffer);
  const h = new Uint16Array(N * K);
  for (let i = 0; i < h.length; i++) h[i] = (u32[i]! + 0x7fff + ((u32[i]! >>> 16) & 1)) >>> 16;
  return new Uint8Array(h.buffer);
}

interface Buffers {
  w: Uint8Array;
  a: Float32Array; // inp / dout, sized for the larger of the two
  b: Float32Array; // out / dinp
  dw: Float32Array | null;
}
const buffers = new Map<Case, Buffers>();
function buffersFor(c: Case): Buffers {
  let b = buffers.get(c);
  if (!b) {
    const big = c.M * Math.max(c.K, c.N);
    b = {
      w: c.op === 'bwdW' ? new Uint8Array(0) : weightBytes(c.N, c.K, c.dtype),
      a: randomFloats(big, 1),
      b: randomFloats(big, 2),
      dw: c.op === 'bwdW' ? randomFloats(c.N * c.K, 3) : null,
    };
    buffers.set(c, b);
  }
  return b;
}

function run(c: Case, impl: KernelImpl, reps: number): number {
  const b = buffersFor(c);
  const dt: WeightDtype = c.dtype;
  if (c.op === 'fwd') return addon._matmulForward(b.b, b.a, b.w, dt, c.M, c.K, c.N, null, false, impl, reps);
  if (c.op === 'bwdI') return addon._matmulBackwardInput(b.b, b.a, b.w, dt, c.M, c.K, c.N, impl, reps);
  return addon._matmulBackwardWeight(b.dw as Floats, null, b.a, b.b, c.M, c.K, c.N, impl, reps);
}

const flops = (c: Case): number => 2 * c.M * c.K * c.N;
const repsFor = new Map<string, number>();
/** GFLOP/s of one timed batch of about BATCH_SECONDS (calibrated once per case and impl). */
function measure(c: Case, impl: KernelImpl): number {
  const key = `${c.op} ${c.dtype} ${c.M} ${c.K} ${c.N} ${impl}`;
  let reps = repsFor.get(key);
  if (reps === undefined) {
    run(c, impl, 1); // warm: scratch buffers, pages, caches
    const one = Math.max(run(c, impl, 1), 1e-7);
    reps = Math.max(1, Math.round(BATCH_SECONDS / one));
    repsFor.set(key, reps);
  }
  return (flops(c) * reps) / run(c, impl, reps) / 1e9;
}

// ---- peers (optional)
interface Peer {
  name: string;
  exe: string;
  env: NodeJS.ProcessEnv;
}
function buildPeers(): { peers: Peer[]; notes: string[] } {
  const notes: string[] = [];
  if (flag('no-peers')) return { peers: [], notes: ['peers skipped (--no-peers)'] };
  const haveBlas = existsSync('/usr/include/x86_64-linux-gnu/cblas.h') || existsSync('/usr/include/cblas.h');
  const haveDnnl = existsSync('/usr/include/dnnl.hpp');
  if (!haveBlas) notes.push('OpenBLAS skipped: no cblas.h (apt-get install libopenblas-dev)');
  if (!haveDnnl) notes.push('oneDNN skipped: no dnnl.hpp (apt-get install libdnnl-dev)');
  if (!haveBlas && !haveDnnl) return { peers: [], notes };
  const dir = join(tmpdir(), 'rrec-bench-peers');
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, 'peer_gemm');
  const cmd = ['-std=c++17', '-O2', join(root, 'bench', 'peer_gemm.cc'), '-o', exe];
  if (haveBlas) cmd.push('-DPEER_OPENBLAS', '-I/usr/include/x86_64-linux-gnu', '-lopenblas');
  if (haveDnnl) cmd.push('-DPEER_DNNL', '-ldnnl');
  try {
    execFileSync('g++', cmd, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    notes.push(`peers skipped: g++ ${cmd.join(' ')} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 300)}`);
    return { peers: [], notes };
  }
  const peers: Peer[] = [];
  const threads = String(addon._matmulKernelInfo().threads);
  // OpenBLAS picks Haswell kernels on this CPU (and OPENBLAS_CORETYPE may be preset here); its
  // SkylakeX ones are ~1.8x faster at M=512 (docs/machine-limits.md), so use those unless
  // --openblas-coretype=NAME says otherwise.
  const coretypeArg = args.find((x) => x.startsWith('--openblas-coretype='));
  const coretype = coretypeArg ? coretypeArg.split('=')[1]! : 'SkylakeX';
  if (haveBlas) peers.push({ name: `OpenBLAS (${coretype})`, exe, env: { ...process.env, OPENBLAS_CORETYPE: coretype, OPENBLAS_NUM_THREADS: threads } });
  if (haveDnnl) peers.push({ name: 'oneDNN', exe, env: { ...process.env, OMP_NUM_THREADS: threads } });
  return { peers, notes };
}
function runPeer(p: Peer): number[] {
  const lib = p.name.startsWith('OpenBLAS') ? 'openblas' : 'dnnl';
  const input = cases.map((c) => `${c.op} ${c.dtype} ${c.M} ${c.K} ${c.N}`).join('\n') + '\n';
  const r = spawnSync(p.exe, [lib, String(BATCH_SECONDS * 5)], { input, env: p.env, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${p.name} peer failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim().split('\n').map(Number);
}

// ---- main
const f = addon.features();
const info = addon._matmulKernelInfo();
const { peers, notes } = buildPeers();
console.log(`# matmul kernels: ${info.threads} OpenMP threads (of ${availableParallelism()} cores; set OMP_NUM_THREADS to change), compiled ${f.compiledSimd}, avx512 kernels ${info.avx512}, forward dot kernel below M=${info.smallM}`);
for (const n of notes) console.log(`# ${n}`);
console.log(`# ${ROUNDS} rounds, batches of ~${BATCH_SECONDS}s; figures are medians over rounds`);
// On a shared 2-core machine a busy neighbour stalls any 2-thread call for a scheduler slice (ms):
// the load average says how much of that the run saw. OMP_NUM_THREADS=1 gives per-core figures.
const load0 = loadavg()[0]!;

const peak: number[] = [];
const impls: KernelImpl[] = ['generic', 'auto'];
const results = new Map<string, number[]>(); // `${caseIndex} ${column}` -> per-round GFLOP/s
const push = (key: string, v: number): void => {
  const a = results.get(key) ?? [];
  a.push(v);
  results.set(key, a);
};
// the opt-in bf16 x bf16 forward (AVX512_BF16), where it applies: BF16 weights, M >= smallM
const bf16DotCase = (c: Case): boolean => info.bf16DotCompiled && c.op === 'fwd' && c.dtype === 'BF16' && c.M >= info.smallM;
const withBf16Dot = cases.some(bf16DotCase);
for (let round = 0; round < ROUNDS; round++) {
  peak.push(addon._fmaPeak(0.25));
  cases.forEach((c, i) => {
    for (const impl of impls) push(`${i} ${impl}`, measure(c, impl));
    if (bf16DotCase(c)) {
      const prev = addon._matmulSetBf16Dot(true);
      push(`${i} bf16dot`, measure(c, 'avx512'));
      addon._matmulSetBf16Dot(prev);
    }
  });
  for (const p of peers) runPeer(p).forEach((g, i) => push(`${i} ${p.name}`, g));
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
}

const peakMedian = median(peak);
console.log(`# load average (1 min) at start / end: ${load0.toFixed(2)} / ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores`);
console.log(`# fp32 FMA peak, register-only, ${info.threads} threads, this run: ${peakMedian.toFixed(0)} GFLOP/s (rounds: ${peak.map((p) => p.toFixed(0)).join(' ')}; docs/machine-limits.md measured 447 on an idle machine)`);
console.log('');
const head = ['op', 'W', 'M', 'K', 'N', 'before', 'after', 'after/peak', 'speedup', ...(withBf16Dot ? ['bf16 dot (opt-in)'] : []), ...peers.map((p) => p.name)];
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map(() => '---').join('|')}|`);
cases.forEach((c, i) => {
  const before = median(results.get(`${i} generic`)!);
  const after = median(results.get(`${i} auto`)!);
  const peerCols = peers.map((p) => {
    const g = median(results.get(`${i} ${p.name}`) ?? []);
    return Number.isFinite(g) ? g.toFixed(0) : '-';
  });
  const w = c.op === 'bwdW' ? '-' : c.dtype;
  const dot = median(results.get(`${i} bf16dot`) ?? []);
  const dotCol = withBf16Dot ? [Number.isFinite(dot) ? dot.toFixed(0) : '-'] : [];
  console.log(
    `| ${[c.op, w, c.M, c.K, c.N, before.toFixed(1), after.toFixed(1), `${((100 * after) / peakMedian).toFixed(0)}%`, `${(after / before).toFixed(1)}x`, ...dotCol, ...peerCols].join(' | ')} |`,
  );
});
console.log('');
console.log('# GFLOP/s = 2*M*K*N / seconds. fwd: out[M,N] = inp[M,K] @ W^T; bwdI: dinp[M,K] += dout @ W; bwdW: dW[N,K] += dout^T @ inp (no stored weights, so F32 rows only).');
console.log('# bf16 dot (opt-in): RREC_BF16_DOT=1 / matmul_avx512_set_bf16_dot(1); rounds inp to bf16 (vdpbf16ps), off by default: not f32-accurate.');
console.log('# oneDNN fwd uses weights it packed beforehand; its BF16 fwd also rounds the activations to bf16 (ours keep them f32). OpenBLAS has no f32 x bf16 product.');
