// GFLOP/s of the CPU matmul kernels (native/cpu/matmul*.cc) on Qwen2.5-0.5B shapes, before (the
// portable loops, "generic") and after (what the model runs, "auto"), as a fraction of this
// machine's fp32 FMA peak measured in the same run, beside OpenBLAS cblas_sgemm and oneDNN matmul
// when their Debian packages are installed (peers run in a child process, bench/peer_gemm.cc; the
// addon never links them). Each figure is the median of R rounds (default 5); every round measures
// the peak, then every case with each implementation, then each peer, so slow drifts of this
// shared machine hit all columns alike.
//
// The detailed table behind the matmul.* figures of `npm run bench` (bench/groups/matmul.ts).
// Run from the repository root after `npx node-gyp rebuild` (tsx is not installed, so compile):
//   sh bench/run-kernels.sh            # = tsc -p bench/tsconfig.json --outDir dist/bench && node dist/bench/bench/kernels.js
// Options: --rounds=5 --seconds=0.04 (per timed batch) --no-peers --quick (M=16 and 512 only)
//   --openblas-coretype=SkylakeX. Threads: OMP_NUM_THREADS (default every core) for ours and oneDNN,
//   the same count for OpenBLAS.
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import type { KernelImpl } from '../test/kernels/kernels-addon.js';
import { median as medianOf } from './lib/figures.js';
import { buildGemmPeers, runGemmPeer, type GemmCase as Case } from './lib/gemm-peer.js';
import { MatmulTimer, kernelAddon } from './lib/matmul.js';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(`--${name}`);
const option = (name: string, def: number): number => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : def;
};
const ROUNDS = option('rounds', 5);
const BATCH_SECONDS = option('seconds', 0.04);
const root = resolve(process.env.RREC_ROOT ?? process.cwd());
const addon = kernelAddon();

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

const median = (xs: number[]): number => (xs.length === 0 ? NaN : medianOf(xs));
const timer = new MatmulTimer(addon, BATCH_SECONDS);
const measure = (c: Case, impl: KernelImpl): number => timer.measure(c, impl);

// ---- peers (optional)
function buildPeers() {
  if (flag('no-peers')) return { peers: [], notes: ['peers skipped (--no-peers)'] };
  const coretypeArg = args.find((x) => x.startsWith('--openblas-coretype='));
  return buildGemmPeers(root, addon._matmulKernelInfo().threads, coretypeArg ? coretypeArg.split('=')[1]! : 'SkylakeX');
}
const runPeer = (p: ReturnType<typeof buildPeers>['peers'][number]): number[] => runGemmPeer(p, cases, BATCH_SECONDS * 5);

// ---- main
const f = (addon as unknown as { features(): { compiledSimd: string } }).features();
const info = addon._matmulKernelInfo();
const { peers, notes } = buildPeers();
console.log(`# matmul kernels: ${info.threads} OpenMP threads (of ${availableParallelism()} cores; set OMP_NUM_THREADS to change), compiled ${f.compiledSimd}, avx512 kernels ${info.avx512}, forward dot kernel below M=${info.smallM}`);
for (const n of notes) console.log(`# ${n}`);
console.log(`# ${ROUNDS} rounds, batches of ~${BATCH_SECONDS}s; figures are medians over rounds`);
// On a shared 2-core machine a busy neighbour stalls any 2-thread call for a scheduler slice (ms):
// the load average says how much of that the run saw. OMP_NUM_THREADS=1 gives per-core figures.
const load0 = loadavg()[0]!;

const peak: number[] = [];
// the AVX2 kernels (matmul_avx2.cc) as a column of their own where they run: what CPUs without
// AVX-512 get (an AVX-512 CPU runs them too)
const impls: KernelImpl[] = ['generic', 'auto', ...(info.avx2 ? (['avx2'] as const) : [])];
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
const head = ['op', 'W', 'M', 'K', 'N', 'before', 'after', 'after/peak', 'speedup', ...(info.avx2 ? ['avx2'] : []), ...(withBf16Dot ? ['bf16 dot (opt-in)'] : []), ...peers.map((p) => p.name)];
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
  const avx2Col = info.avx2 ? [median(results.get(`${i} avx2`)!).toFixed(1)] : [];
  console.log(
    `| ${[c.op, w, c.M, c.K, c.N, before.toFixed(1), after.toFixed(1), `${((100 * after) / peakMedian).toFixed(0)}%`, `${(after / before).toFixed(1)}x`, ...avx2Col, ...dotCol, ...peerCols].join(' | ')} |`,
  );
});
console.log('');
console.log('# GFLOP/s = 2*M*K*N / seconds. fwd: out[M,N] = inp[M,K] @ W^T; bwdI: dinp[M,K] += dout @ W; bwdW: dW[N,K] += dout^T @ inp (no stored weights, so F32 rows only).');
if (info.avx2) console.log('# avx2: the AVX2 + FMA kernels (matmul_avx2.cc) forced on: what a CPU without AVX-512 runs instead of "after" (float products, bf16 weights widened).');
console.log('# bf16 dot (opt-in): RREC_BF16_DOT=1 / matmul_avx512_set_bf16_dot(1); rounds inp to bf16 (vdpbf16ps), off by default: not f32-accurate.');
console.log('# oneDNN fwd uses weights it packed beforehand; its BF16 fwd also rounds the activations to bf16 (ours keep them f32). OpenBLAS has no f32 x bf16 product.');
