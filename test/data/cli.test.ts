/** `rrec-emotion preprocess` flags, output and exit codes (runPreprocess called directly). */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPreprocess } from '../../src/cli/preprocess.js';
import { loadDataset } from '../../src/data/index.js';
import { fixture, tempDirs } from './util.js';

const tmp = tempDirs();
afterAll(tmp.cleanup);

async function cli(argv: string[], cwd?: string): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPreprocess(argv, { out: (t) => out.push(t), err: (t) => err.push(t), cwd: cwd ?? (await tmp.make()) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('runPreprocess', () => {
  it('--help prints the flags and returns 0', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--dataset_name', '--input_dir', '--output_name', '--output_dir', '--labels', '--drop_duplicates', '--drop_conflicts', '--overwrite', '--download', '--help']) {
      expect(r.out).toContain(flag);
    }
    expect(r.out).toMatch(/^Usage: rrec-emotion preprocess/);
  });

  it('writes to --output_dir and prints a readable report', async () => {
    const out = path.join(await tmp.make(), 'mini_processed');
    const r = await cli([`--input_dir=${fixture('mini')}`, `--output_dir=${out}`]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('dataset ED_easy_4: 4 labels [0=sad, 1=joyful, 2=angry, 3=afraid]');
    // split, rows, per-class counts, dup texts(extra rows), conflicts(texts/rows), dropped
    expect(r.out).toMatch(/^train\s+14\s+4\s+5\s+3\s+2\s+2\(2\)\s+1\/3\s+0$/m);
    expect(r.out).toMatch(/^valid\s+2\s+0\s+1\s+0\s+1\s+0\(0\)\s+0\/0\s+0$/m);
    expect(r.out).toContain('conflict lines 4=sad,11=sad,12=angry: "i was sad & tired"');
    expect(r.out).toContain('1 text appears in more than one split');
    expect(r.out).toContain(`output ${out}`);
    expect((await loadDataset(out)).splits.train!.numRows).toBe(14);
  });

  it('defaults: input data/<dataset_name>, output data/<dataset_name>_processed under cwd', async () => {
    const cwd = await tmp.make();
    // --input_dir relative to cwd; output defaults to data/ED_easy_4_processed
    const rel = path.relative(cwd, fixture('mini'));
    const r = await cli([`--input_dir=${rel}`, '--drop_duplicates', '--drop_conflicts'], cwd);
    expect(r.code).toBe(0);
    const out = path.join(cwd, 'data', 'ED_easy_4_processed');
    expect((await loadDataset(out)).splits.train!.numRows).toBe(10);
    // --output_name
    const r2 = await cli([`--input_dir=${rel}`, '--output_name=other'], cwd);
    expect(r2.code).toBe(0);
    expect(existsSync(path.join(cwd, 'data', 'other', 'dataset_dict.json'))).toBe(true);
    // a second run into the same place needs --overwrite
    const r3 = await cli([`--input_dir=${rel}`, '--output_name=other'], cwd);
    expect(r3.code).toBe(1);
    expect(r3.err).toContain('already exists; pass overwrite (--overwrite)');
    expect((await cli([`--input_dir=${rel}`, '--output_name=other', '--overwrite'], cwd)).code).toBe(0);
  });

  it('a missing default input folder says where it looked', async () => {
    const cwd = await tmp.make();
    const r = await cli(['--dataset_name=ED_easy_4'], cwd);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(cwd, 'data', 'ED_easy_4')}: input folder not found; pass --input_dir=DIR`);
    // with ../shared/data/<name> present (relative to cwd), the message points at it
    const proj = path.join(cwd, 'proj');
    await mkdir(proj);
    await mkdir(path.join(cwd, 'shared', 'data', 'ED_easy_4'), { recursive: true });
    const r2 = await cli([], proj);
    expect(r2.err).toContain(`(the ED_easy_4 files are at ${path.join(cwd, 'shared', 'data', 'ED_easy_4')})`);
  });

  it('--labels for a dataset that is not built in; without them, a clear error', async () => {
    const out = path.join(await tmp.make(), 'custom');
    const ok = await cli(['--dataset_name=ED_x', '--labels=a,b,c,d', `--input_dir=${fixture('mini')}`, `--output_dir=${out}`]);
    expect(ok.code).toBe(0);
    expect((await loadDataset(out)).labelNames).toEqual(['a', 'b', 'c', 'd']);
    const bad = await cli(['--dataset_name=ED_x', `--input_dir=${fixture('mini')}`, `--output_dir=${out}-2`]);
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('unknown dataset "ED_x"; known datasets: ED_easy_4');
  });

  it('data errors return 1 with file and line', async () => {
    const r = await cli([`--input_dir=${fixture('bad_label')}`, `--output_dir=${path.join(await tmp.make(), 'o')}`]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(fixture('bad_label'), 'test.csv')}:3: label "joy" is not an integer label id`);
  });

  it('an unknown flag returns 2 and names it', async () => {
    const r = await cli(['--dataset=ED_easy_4']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown flag "--dataset"; did you mean --dataset_name?');
    expect(r.err).toContain('--help');
  });

  it('--download fails with an offline message', async () => {
    const r = await cli(['--download']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('downloading is unavailable');
    expect(r.err).toContain('--input_dir');
  });

  it('rejects positional arguments, both output flags, and a path as --output_name', async () => {
    expect((await cli(['ED_easy_4'])).err).toContain('unexpected argument "ED_easy_4"');
    const both = await cli(['--output_dir=/tmp/x', '--output_name=y']);
    expect([both.code, both.err.includes('either --output_dir or --output_name')]).toEqual([2, true]);
    const p = await cli(['--output_name=a/b']);
    expect([p.code, p.err.includes('--output_name must be a plain folder name')]).toEqual([2, true]);
  });

  it('--json prints the full report', async () => {
    const out = path.join(await tmp.make(), 'j');
    const r = await cli([`--input_dir=${fixture('mini')}`, `--output_dir=${out}`, '--json']);
    const report = JSON.parse(r.out) as { splits: { train: { rowsWritten: number } } };
    expect(report.splits.train.rowsWritten).toBe(14);
  });
});
