// Fault family: the run folder. One trainer per folder (a lock holding the pid; stale locks taken
// over), an --output_dir that cannot be written (named at start, with the real cause), and a disk
// that fills up during a checkpoint write (the message names the file and the last complete
// checkpoint; nothing partial is left; the run resumes once there is space). The read-only and
// disk-full cases mount a small tmpfs, which needs root (CAP_SYS_ADMIN): elsewhere they are
// skipped with a note. (kill-resume.test.ts covers a lock and temp folders left by a SIGKILL.)
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lenmlTokenizerDir } from '../../src/tokenizer/index.js';
import { acquireRunLock, RUN_LOCK_FILE, RunLockedError } from '../../src/train/run-lock.js';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { REPO } from './child-build.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-run-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) spawnSync('umount', [m]);
  rmSync(root, { recursive: true, force: true });
});
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

/** A tmpfs of `size` at a fresh folder, or null (with the reason) where mounting is not allowed. */
function tmpfs(size: string): { dir: string } | { skip: string } {
  const dir = join(root, `mnt-${mounts.length}`);
  mkdirSync(dir);
  if (process.getuid?.() !== 0) return { skip: 'not root: cannot mount a tmpfs' };
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return { skip: `mount -t tmpfs failed (${(r.stderr || r.error?.message || '').trim()})` };
  mounts.push(dir);
  return { dir };
}

describe('run folder lock', () => {
  it('a second trainer is refused naming the holder; released, stale, foreign and garbage locks', async () => {
    const run = join(root, 'locked');
    mkdirSync(run);
    const lock = await acquireRunLock(run);
    const err = await acquireRunLock(run).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunLockedError);
    expect((err as Error).message).toMatch(new RegExp(`^${run} is in use: process ${process.pid} has been training into it since \\d{4}-\\d\\d-\\d\\dT.*\\(lock ${join(run, RUN_LOCK_FILE)}\\)\\. Wait for it to finish, or pick another --run_name / --output_dir$`));
    // the trainer refuses before touching anything
    await expect(new GrpoTrainer({ model: 'tiny', output_dir: root, run_name: 'locked' }).fit({ stream: quiet })).rejects.toThrow(RunLockedError);
    await lock.release();
    expect(existsSync(join(run, RUN_LOCK_FILE))).toBe(false);
    (await acquireRunLock(run)).release();

    // stale: the process is gone
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(run, RUN_LOCK_FILE), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), started: '2026-01-01T00:00:00Z' }));
    const taken = await acquireRunLock(run);
    await taken.release();
    // garbage (a crash between create and write)
    writeFileSync(join(run, RUN_LOCK_FILE), '{"pi');
    await (await acquireRunLock(run)).release();
    // another host's lock is never taken over: the message says how to remove it
    writeFileSync(join(run, RUN_LOCK_FILE), JSON.stringify({ pid: 1, host: 'other-host', started: 'x' }));
    await expect(acquireRunLock(run)).rejects.toThrow(`process 1 on host other-host has been training into it since x (lock ${join(run, RUN_LOCK_FILE)}). Wait for it to finish, or pick another --run_name / --output_dir; if that process is gone, delete ${join(run, RUN_LOCK_FILE)}`);
  });
});

describe('--output_dir that cannot be written', () => {
  it('a path through a file: named at start with the cause (not a bare ENOENT mkdir)', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    await expect(new GrpoTrainer({ model: 'tiny', output_dir: join(file, 'runs'), run_name: 'r' }).fit({ stream: quiet })).rejects.toThrow(
      `--output_dir ${join(file, 'runs')}: cannot create the folder: a path component is a file, not a folder (ENOTDIR) (the nearest existing folder is ${file})`,
    );
  });

  it('a read-only file system (tmpfs remounted ro)', async (ctx) => {
    const m = tmpfs('1m');
    if ('skip' in m) return ctx.skip(m.skip);
    mkdirSync(join(m.dir, 'runs'));
    execFileSync('mount', ['-o', 'remount,ro', m.dir]);
    await expect(new GrpoTrainer({ model: 'tiny', output_dir: join(m.dir, 'runs'), run_name: 'r' }).fit({ stream: quiet })).rejects.toThrow(
      `--output_dir ${join(m.dir, 'runs')}: the folder is not writable: read-only file system (EROFS)`,
    );
    await expect(new GrpoTrainer({ model: 'tiny', output_dir: join(m.dir, 'new', 'runs'), run_name: 'r' }).fit({ stream: quiet })).rejects.toThrow(
      `--output_dir ${join(m.dir, 'new', 'runs')}: cannot create the folder: read-only file system (EROFS) (the nearest existing folder is ${m.dir})`,
    );
  });
});

describe('disk full during a checkpoint write', () => {
  it('names the file and the last complete checkpoint, leaves nothing partial, resumes once there is space', async (ctx) => {
    const m = tmpfs('16m');
    if ('skip' in m) return ctx.skip(m.skip);
    const modelDir = join(root, 'tiny-qwen');
    writeTinyModel(modelDir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 151645, bos_token_id: 151643 } as never });
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(lenmlTokenizerDir('qwen2_5'), f), join(modelDir, f));
    const cfg = {
      model: modelDir, data_dir: join(REPO, 'data', 'sample', 'ED_sample_4'), output_dir: join(m.dir, 'runs'), run_name: 'full-disk', seed: 5, train_batch_size: 2,
      group_size: 2, max_new_tokens: 4, max_steps: 3, save_steps: 1, eval_steps: 0, eval_batch_size: 40, learning_rate: 1e-2, warmup_steps: 0,
      lr_scheduler_type: 'constant' as const, lora_r: 4, lora_alpha: 8, sft_epochs: 0, logging_steps: 100,
    };
    const ballast = join(m.dir, 'ballast');
    // after step 2 is logged and before its checkpoint (onStep is called synchronously): fill the disk to the last byte
    const fill = (rec: { step: number }) => {
      if (rec.step !== 2) return;
      const fd = openSync(ballast, 'w');
      try {
        const chunk = Buffer.alloc(1 << 16, 1);
        for (let k = chunk.length; k >= 1; ) {
          try {
            writeSync(fd, chunk, 0, k);
          } catch {
            k >>= 1;
          }
        }
      } finally {
        closeSync(fd);
      }
    };
    const run = join(m.dir, 'runs', 'full-disk');
    const err = await new GrpoTrainer(cfg).fit({ stream: quiet, onStep: fill }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toMatch(new RegExp(`^writing ${join(run, 'checkpoint-2')} failed: ${run}/\\.checkpoint-2\\.tmp-[^ ]+: cannot write: no space left on the device \\(ENOSPC\\)\\. `));
    expect(msg).toContain(`Nothing of it was kept (checkpoints are written to a temporary folder and renamed); the last complete checkpoint is ${join(run, 'checkpoint-1')}: free space and resume from it (--resume_from_checkpoint=${join(run, 'checkpoint-1')})`);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(readdirSync(run).filter((n) => n.startsWith('.') || n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-1']); // no temp folder, lock released
    rmSync(ballast);
    const resumed = await new GrpoTrainer({ ...cfg, resume_from_checkpoint: true }).fit({ stream: quiet });
    expect(resumed.steps).toBe(3);
    expect(readdirSync(run).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-1', 'checkpoint-2', 'checkpoint-3']);
  });
});
