/**
 * `npm run bench`: one command, one table. Runs every group of figures (bench/groups/*.ts), each in
 * its own process, then prints one table (name, unit, ours median [min–max], peer, peer median,
 * ratio, note) and optionally writes the report as JSON.
 *   npm run bench                          full run (~15-20 minutes on 2 cores)
 *   npm run bench -- --quick               smaller budgets, same figures (under 2 minutes; checks
 *                                          structure, its numbers are not the ones to quote)
 *   npm run bench -- --json FILE           also writes { machine, versions, figures } to FILE
 *   npm run bench -- --only=matmul,layer   some groups: memory, matmul, layer, sample, grpo
 * Every ratio is against a peer measured in the same run, rounds alternating ours and the peer,
 * medians of at least 5 rounds, oriented so that > 1 means we are better. Peers are optional: a
 * missing one gives peer null, ratio null and a note saying how to install it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from './lib/atomic-write.js';
import type { Figure } from './lib/figures.js';
import type { GroupOutput } from './lib/group.js';
import { machineInfo, versions } from './lib/machine.js';
import { repoRoot } from './lib/paths.js';
import { REQUIRED_FIGURES, reportProblems, type Report } from './lib/report.js';
import { formatTable } from './lib/table.js';
import { MALLOC_KEEP_ENV } from './lib/torch-peer.js';

/** Groups in run order; the prefix of their figure names; extra environment (both sides of a comparison share it). */
const GROUPS: { name: string; prefix: string; env: Record<string, string> }[] = [
  { name: 'memory', prefix: 'memory.', env: {} },
  { name: 'matmul', prefix: 'matmul.', env: MALLOC_KEEP_ENV },
  { name: 'layer', prefix: 'train.', env: MALLOC_KEEP_ENV },
  { name: 'sample', prefix: 'sample.', env: MALLOC_KEEP_ENV },
  { name: 'grpo', prefix: 'grpo.', env: MALLOC_KEEP_ENV }, // torch_grpo.py peers grpo.step's training half
];

function parseArgs(argv: readonly string[]): { quick: boolean; json: string | null; only: string[] | null } {
  let json: string | null = null;
  let only: string[] | null = null;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--json') {
      json = argv[++i] ?? null;
      if (json === null) throw new Error('--json needs a file name');
    } else if (a.startsWith('--json=')) json = a.slice('--json='.length);
    else if (a.startsWith('--only=')) only = a.slice('--only='.length).split(',').filter((s) => s !== '');
    else throw new Error(`unknown argument ${a}; usage: npm run bench -- [--quick] [--json FILE] [--only=${GROUPS.map((g) => g.name).join(',')}]`);
  }
  const unknown = only?.filter((o) => !GROUPS.some((g) => g.name === o)) ?? [];
  if (unknown.length > 0) throw new Error(`--only: unknown group(s) ${unknown.join(', ')}; groups: ${GROUPS.map((g) => g.name).join(', ')}`);
  return { quick, json, only };
}

/**
 * sample.decode.b1's roofline: the sample group measures the bandwidth in its own rounds and sets
 * roofline_fraction; the fraction over memory.bandwidth (another group, minutes away) goes into the
 * note beside it, and is the fraction only when the group did not set one.
 */
function fillRoofline(figures: Figure[]): void {
  const b1 = figures.find((f) => f.name === 'sample.decode.b1');
  const bw = figures.find((f) => f.name === 'memory.bandwidth');
  if (!b1) return;
  if (bw && b1.weight_bytes_per_token) {
    const fraction = (b1.ours.median * b1.weight_bytes_per_token) / (bw.ours.median * 1e9);
    b1.note += `; ${(100 * fraction).toFixed(0)}% of memory.bandwidth's roofline (${((bw.ours.median * 1e9) / b1.weight_bytes_per_token).toFixed(1)} tok/s)`;
    if (typeof b1.roofline_fraction !== 'number') b1.roofline_fraction = fraction;
  } else if (typeof b1.roofline_fraction !== 'number') {
    b1.roofline_fraction = null;
    b1.note += '; roofline_fraction needs a bandwidth measured in the same run';
  }
}

function main(): number {
  const { quick, json, only } = parseArgs(process.argv.slice(2));
  const here = dirname(fileURLToPath(import.meta.url));
  const root = repoRoot();
  const groups = GROUPS.filter((g) => !only || only.includes(g.name));
  const started = new Date();
  const t0 = performance.now();
  const machine = { ...machineInfo() };
  const work = mkdtempSync(join(tmpdir(), 'rrec-bench-run-'));
  const figures: Figure[] = [];
  const errors: string[] = [];
  const groupSeconds: Record<string, number> = {};
  try {
    for (const g of groups) {
      const out = join(work, `${g.name}.json`);
      const tg = performance.now();
      console.error(`=== ${g.name} ===`);
      const r = spawnSync(process.execPath, [join(here, 'groups', `${g.name}.js`), ...(quick ? ['--quick'] : []), `--figures-out=${out}`], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, ...g.env },
        cwd: root,
      });
      groupSeconds[g.name] = Math.round((performance.now() - tg) / 100) / 10;
      if (existsSync(out)) {
        const res = JSON.parse(readFileSync(out, 'utf8')) as GroupOutput;
        figures.push(...res.figures);
        if (res.error) errors.push(`${g.name}: ${res.error.split('\n')[0]}`);
      } else {
        errors.push(`${g.name}: exited ${r.status ?? r.signal} without figures`);
      }
      if (r.status !== 0 && !errors.some((e) => e.startsWith(`${g.name}:`))) errors.push(`${g.name}: exit ${r.status ?? r.signal}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  fillRoofline(figures);
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  const report: Report & { run: Record<string, unknown> } = {
    machine: { ...machine, load_average_1min_end: loadavg()[0] },
    versions: versions(root),
    figures,
    run: { mode: quick ? 'quick' : 'full', started: started.toISOString(), seconds, group_seconds: groupSeconds, errors },
  };
  console.log(`\n# rrec-emotion bench (${quick ? '--quick: small budgets, for checking; quote a full run' : 'full'}), ${started.toISOString()}, ${seconds} s`);
  console.log(`# ${String(machine.cpu_model)}, ${String(machine.cores)} cores, ${String(machine.threads)} threads; load average ${Number(machine.load_average_1min_start).toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`);
  console.log(`# ${Object.entries(report.versions).map(([k, v]) => `${k} ${v ?? '-'}`).join(', ')}`);
  console.log('# ratio > 1: ours is better (ours/peer for ↑ figures, peer/ours for ↓); peers measured in the same run, interleaved\n');
  console.log(formatTable(figures));
  const required = REQUIRED_FIGURES.filter((n) => groups.some((g) => n.startsWith(g.prefix)));
  const problems = reportProblems(report, required);
  if (json) {
    writeFileAtomic(resolve(json), JSON.stringify(report, null, 2) + '\n');
    console.log(`\nwrote ${resolve(json)}`);
  }
  for (const e of errors) console.error(`error: ${e}`);
  for (const p of problems) console.error(`report problem: ${p}`);
  return errors.length > 0 || problems.length > 0 ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 2;
}
