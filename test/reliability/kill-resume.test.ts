// Fault family: a trainer killed with SIGKILL, during a training step and in the middle of a
// checkpoint write (child processes), then resumed with resume_from_checkpoint: the final
// adapter and optimizer bytes equal an uninterrupted run's, and so do the metrics but for
// timings. Also: the killed run's temporary checkpoint folder is removed on resume, its lock is
// found stale and taken over, and while it was alive a second trainer on the same folder was
// refused. (test/train/resume.test.ts and trainer.test.ts cover resume within one process.)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetSpec, preprocess } from '../../src/data/index.js';
import { RUN_LOCK_FILE } from '../../src/train/run-lock.js';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeAnswerModel } from '../helpers/answer-model.js';
import { childSources, REPO } from './child-build.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
// a model that answers in the format with varied labels, so that rewards differ within a group and
// every step changes the adapter and the optimizer state (a random model earns 0 everywhere)
const modelDir = await writeAnswerModel(join(root, 'answer'), ['sad', 'joyful', 'angry', 'afraid']);
const runs = join(root, 'runs');
// a small slice of the sample data, preprocessed once (the children then read Arrow, copying nothing)
const csvDir = join(root, 'csv');
mkdirSync(csvDir);
for (const [split, n] of [['train', 8], ['valid', 4], ['test', 4]] as const) {
  const lines = readFileSync(join(REPO, 'data', 'sample', 'ED_sample_4', `${split}.csv`), 'utf8').split('\n');
  writeFileSync(join(csvDir, `${split}.csv`), lines.slice(0, n + 1).join('\n') + '\n');
}
const arrowDir = join(root, 'arrow');
await preprocess({ inputDir: csvDir, outputDir: arrowDir, dataset: datasetSpec('ED_easy_4') });
const base = {
  model: modelDir, data_dir: arrowDir, output_dir: runs, seed: 5, train_batch_size: 2, group_size: 4,
  max_new_tokens: 12, max_steps: 4, save_steps: 1, eval_steps: 0, eval_batch_size: 40, learning_rate: 1e-2, warmup_steps: 0,
  lr_scheduler_type: 'constant' as const, lora_r: 4, lora_alpha: 8, sft_epochs: 0, logging_steps: 100, save_total_limit: 0, temperature: 3, top_k: 2,
};

const CHILD = `
import { syncBuiltinESMExports } from 'node:module';
import fsp from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
const [srcDir, cfgJson, pauseJson] = process.argv.slice(2);
const pause = JSON.parse(pauseJson);
if (pause) {
  // Stop for good at one point of a checkpoint write (the parent then kills -9): before the
  // temporary folder is renamed into place, or with optimizer.safetensors half written.
  const hang = () => { writeFileSync(pause.marker, String(process.pid)); return new Promise(() => {}); };
  const re = new RegExp('\\\\.checkpoint-' + pause.step + '\\\\.tmp-');
  if (pause.at === 'rename') {
    const orig = fsp.rename;
    fsp.rename = async (a, b) => { if (re.test(String(a)) && !String(a).includes('/', String(a).search(re) + 1)) await hang(); return orig(a, b); };
  } else {
    const orig = fsp.open;
    fsp.open = async (p, ...rest) => {
      const fh = await orig(p, ...rest);
      if (re.test(String(p)) && String(p).includes('optimizer.safetensors')) { await fh.write(Buffer.alloc(100, 7)); await hang(); }
      return fh;
    };
  }
  syncBuiltinESMExports();
}
const { GrpoTrainer } = await import(srcDir + '/src/train/trainer.js');
await new GrpoTrainer(JSON.parse(cfgJson)).fit({ stream: { write: () => true, isTTY: false } });
`;
const childFile = join(root, 'child.mjs');
writeFileSync(childFile, CHILD);

function startChild(cfg: Record<string, unknown>, pause: { at: 'rename' | 'optimizer'; step: number; marker: string } | null): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; stderr: string }> } {
  const child = spawn(process.execPath, [childFile, childSources(), JSON.stringify(cfg), JSON.stringify(pause)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += String(d)));
  const done = new Promise<{ code: number | null; signal: string | null; stderr: string }>((res) => child.on('exit', (code, signal) => res({ code, signal, stderr })));
  return { child, done };
}
async function runChild(cfg: Record<string, unknown>): Promise<void> {
  const r = await startChild(cfg, null).done;
  if (r.code !== 0) throw new Error(`child trainer failed (${r.code ?? r.signal}): ${r.stderr}`);
}
async function waitFor(cond: () => boolean, what: string, child: ChildProcess, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the child exited (${child.exitCode ?? child.signalCode}) before ${what}`);
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const lines = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l !== '') : []);
const deterministic = (l: string) => Object.fromEntries(Object.entries(JSON.parse(l) as Record<string, unknown>).filter(([k]) => !k.startsWith('time/') && !k.startsWith('tokens_per_second/')));
/** What must equal the uninterrupted run: the final checkpoint's bytes and the metrics but for timings. */
function outcome(run: string) {
  const dir = join(runs, run);
  const ck = join(dir, 'checkpoint-4');
  const state = JSON.parse(readFileSync(join(ck, 'trainer_state.json'), 'utf8')) as Record<string, unknown>;
  return {
    entries: readdirSync(dir).filter((n) => n.startsWith('.') || n.startsWith('checkpoint-')).sort(),
    adapter: readFileSync(join(ck, 'adapter', 'adapter_model.safetensors')).toString('base64'),
    optimizer: readFileSync(join(ck, 'optimizer.safetensors')).toString('base64'),
    state,
    metrics: lines(join(dir, 'metrics.jsonl')).map(deterministic),
    evalEnd: deterministic(readFileSync(join(dir, 'eval-end.json'), 'utf8')),
  };
}

describe('kill -9 and resume', () => {
  it('killed during training and mid-checkpoint, resumed: the uninterrupted run, byte for byte', async () => {
    childSources(); // transpile once, outside the timings below
    await runChild({ ...base, run_name: 'full' });
    const full = outcome('full');
    expect(full.metrics).toHaveLength(4);
    expect(full.entries).toEqual(['checkpoint-1', 'checkpoint-2', 'checkpoint-3', 'checkpoint-4']);
    // the run trains (else equal bytes would prove little): rewards differ within a group at least once (a
    // hot, top-2 sampling of the answer model), so a gradient is non-zero and the adapter moves
    const norms = full.metrics.map((m) => m.grad_norm as number);
    expect(norms.filter((g) => g > 0).length, `grad norms ${norms.join(", ")}; ${JSON.stringify(full.metrics[0])}`).toBeGreaterThanOrEqual(1);
    expect(readFileSync(join(runs, 'full', 'checkpoint-1', 'adapter', 'adapter_model.safetensors')).equals(Buffer.from(full.adapter, 'base64'))).toBe(false);

    // One run killed three times, each resume starting where the last complete checkpoint left it:
    //  1. SIGKILL at a moment after step 2's metrics line (checkpoint-1 exists; checkpoint-2 being
    //     written, or step 3 running);
    //  2. resumed, SIGKILL with checkpoint-3 complete in its temporary folder but not yet renamed;
    //     while it hangs there, a second trainer on the same run folder is refused by the lock;
    //  3. resumed, SIGKILL with the final checkpoint-4's optimizer.safetensors half written;
    //  4. resumed to the end.
    const cfg = { ...base, run_name: 'killed' };
    const dir = join(runs, 'killed');
    {
      const { child, done } = startChild(cfg, null);
      await waitFor(() => lines(join(dir, 'metrics.jsonl')).length >= 2, 'step 2 of the run', child);
      child.kill('SIGKILL');
      expect((await done).signal).toBe('SIGKILL');
      expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(true); // left behind by the dead process
    }
    for (const pause of [{ at: 'rename', step: 3 }, { at: 'optimizer', step: 4 }] as const) {
      const marker = join(root, `${pause.at}.paused`);
      const { child, done } = startChild({ ...cfg, resume_from_checkpoint: true }, { ...pause, marker });
      await waitFor(() => existsSync(marker), `the run to pause in checkpoint-${pause.step}'s write (${pause.at})`, child);
      expect(readdirSync(dir).filter((n) => n.startsWith(`.checkpoint-${pause.step}.tmp-`))).toHaveLength(1);
      if (pause.at === 'rename') {
        await expect(new GrpoTrainer({ ...cfg, resume_from_checkpoint: true }).fit({ stream: { write: () => true } as never })).rejects.toThrow(
          new RegExp(`${dir} is in use: process ${child.pid} has been training into it since .*Wait for it to finish, or pick another --run_name`),
        );
      }
      child.kill('SIGKILL');
      expect((await done).signal).toBe('SIGKILL');
    }
    await runChild({ ...cfg, resume_from_checkpoint: true });
    const o = outcome('killed');
    expect(o.entries).toEqual(full.entries); // every temporary folder is gone (they used to stay forever), the lock released
    expect(o).toEqual(full);
  }, 600_000);
});
