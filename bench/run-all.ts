/**
 * `npm run bench`: runs each benchmark in turn and passes its table through.
 *   npm run bench                       kernels (matmul GFLOP/s beside OpenBLAS/oneDNN when installed),
 *                                       layer (LoRA layer step beside PyTorch when installed),
 *                                       engine (sampling tokens/s beside llama.cpp when installed)
 *   npm run bench -- --quick            fewer shapes and rounds
 *   npm run bench -- --only=layer,kernels
 * Peers are optional: a missing one is reported and skipped. Numbers are from this machine, this
 * run; compare ratios within one run only.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');

const benches: { name: string; file: string; args: string[]; env?: Record<string, string> }[] = [
  { name: 'kernels', file: 'kernels.js', args: quick ? ['--quick', '--rounds=3'] : ['--rounds=5'] },
  { name: 'layer', file: 'layer.js', args: quick ? ['--rounds=3', '--warmup=2'] : ['--rounds=5'] },
  { name: 'engine', file: 'engine.js', args: [], env: quick ? { RREC_BENCH_TOKENS: '16' } : {} },
];

let failed = 0;
for (const b of benches) {
  if (only && !only.includes(b.name)) continue;
  console.log(`\n=== ${b.name} ===`);
  const r = spawnSync(process.execPath, [join(here, b.file), ...b.args], { stdio: 'inherit', env: { ...process.env, ...b.env } });
  if (r.status !== 0) {
    console.error(`bench ${b.name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exitCode = failed > 0 ? 1 : 0;
