// Checkpoint folders: atomic writes (a failed write and a process killed mid-write both leave the
// previous checkpoint readable), listing, rotation with a protected best, stale-temp clean-up.
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkpointName,
  cleanStaleTemps,
  latestCheckpoint,
  listCheckpoints,
  readJsonFile,
  rotateCheckpoints,
  writeDirAtomic,
  writeJsonSynced,
} from '../../src/train/checkpoint-dir.js';

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});
async function tmpRun(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'rrec-ckpt-test-'));
  made.push(d);
  return d;
}

/** Writes a checkpoint holding state.json = {step} and weights.bin. */
async function saveCheckpoint(runDir: string, step: number, payload = 'w'): Promise<string> {
  const dir = path.join(runDir, checkpointName(step));
  await writeDirAtomic(dir, async (tmp) => {
    await writeJsonSynced(path.join(tmp, 'state.json'), { step });
    await mkdir(path.join(tmp, 'adapter'));
    await writeFile(path.join(tmp, 'adapter', 'weights.bin'), payload);
  });
  return dir;
}

describe('writeDirAtomic', () => {
  it('writes a new folder and leaves no temporary sibling', async () => {
    const run = await tmpRun();
    const dir = await saveCheckpoint(run, 20);
    expect(await readJsonFile(path.join(dir, 'state.json'))).toEqual({ step: 20 });
    expect(await readFile(path.join(dir, 'adapter', 'weights.bin'), 'utf8')).toBe('w');
    expect(await readdir(run)).toEqual(['checkpoint-20']);
  });

  it('replaces an existing folder whole (no file of the old one survives)', async () => {
    const run = await tmpRun();
    const dir = path.join(run, 'checkpoint-5');
    await writeDirAtomic(dir, async (tmp) => writeFile(path.join(tmp, 'old-only.txt'), 'old'));
    await writeDirAtomic(dir, async (tmp) => writeFile(path.join(tmp, 'new.txt'), 'new'));
    expect(await readdir(dir)).toEqual(['new.txt']);
    expect(await readdir(run)).toEqual(['checkpoint-5']);
  });

  it('a write that fails midway leaves the previous checkpoint as it was, and no temp folder', async () => {
    const run = await tmpRun();
    const dir = await saveCheckpoint(run, 40, 'good');
    await expect(
      writeDirAtomic(dir, async (tmp) => {
        await writeJsonSynced(path.join(tmp, 'state.json'), { step: 999 });
        throw new Error('disk full (simulated)');
      }),
    ).rejects.toThrow('disk full (simulated)');
    expect(await readJsonFile(path.join(dir, 'state.json'))).toEqual({ step: 40 });
    expect(await readFile(path.join(dir, 'adapter', 'weights.bin'), 'utf8')).toBe('good');
    expect(await readdir(run)).toEqual(['checkpoint-40']);
  });

  it('a failure just before the commit (beforeCommit throws) changes nothing', async () => {
    const run = await tmpRun();
    await expect(
      writeDirAtomic(path.join(run, 'checkpoint-1'), async (tmp) => writeFile(path.join(tmp, 'a'), 'a'), {
        beforeCommit: () => {
          throw new Error('crash before rename');
        },
      }),
    ).rejects.toThrow('crash before rename');
    expect(await readdir(run)).toEqual([]);
  });

  it('a process killed (SIGKILL) midway leaves the previous checkpoint readable', async () => {
    const run = await tmpRun();
    await saveCheckpoint(run, 20, 'step-20');
    // checkpoint-dir.ts and the one module it imports (util/atomic-fs.ts, node builtins only)
    // transpile to standalone ES modules, laid out as in src/ so the relative import resolves.
    const here = path.dirname(fileURLToPath(import.meta.url));
    const modRoot = path.join(run, '..', `${path.basename(run)}-mods`);
    made.push(modRoot);
    for (const rel of ['train/checkpoint-dir', 'util/atomic-fs']) {
      const source = await readFile(path.join(here, '../../src', `${rel}.ts`), 'utf8');
      const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      await mkdir(path.join(modRoot, path.dirname(rel)), { recursive: true });
      await writeFile(path.join(modRoot, `${rel}.js`), js);
    }
    await writeFile(path.join(modRoot, 'package.json'), '{"type":"module"}');
    const modFile = path.join(modRoot, 'train', 'checkpoint-dir.js');
    const child = `
      import { writeDirAtomic } from ${JSON.stringify(modFile)};
      import { writeFile } from 'node:fs/promises';
      import path from 'node:path';
      await writeDirAtomic(${JSON.stringify(path.join(run, 'checkpoint-20'))}, async (tmp) => {
        await writeFile(path.join(tmp, 'state.json'), '{"step": 40, "half');
        process.kill(process.pid, 'SIGKILL');
      });`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8' });
    expect(r.signal).toBe('SIGKILL');
    const names = (await readdir(run)).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^\.checkpoint-20\.tmp-\d+-[0-9a-f]+$/);
    expect(names[1]).toBe('checkpoint-20');
    // the survivor is the complete previous checkpoint, and the leftover is not listed
    expect(await readJsonFile(path.join(run, 'checkpoint-20', 'state.json'))).toEqual({ step: 20 });
    expect(await readFile(path.join(run, 'checkpoint-20', 'adapter', 'weights.bin'), 'utf8')).toBe('step-20');
    expect((await listCheckpoints(run)).map((c) => c.step)).toEqual([20]);
    const cleaned = await cleanStaleTemps(run);
    expect(cleaned.removed).toEqual([names[0]]);
    expect(await readdir(run)).toEqual(['checkpoint-20']);
  });

  it('refuses to replace a file and reserved dot names', async () => {
    const run = await tmpRun();
    await writeFile(path.join(run, 'checkpoint-3'), 'not a folder');
    await expect(writeDirAtomic(path.join(run, 'checkpoint-3'), async () => {})).rejects.toThrow(/exists and is not a folder/);
    await expect(writeDirAtomic(path.join(run, '.x'), async () => {})).rejects.toThrow(/reserved for temporary folders/);
    expect(await readdir(run)).toEqual(['checkpoint-3']);
  });
});

describe('listCheckpoints / latestCheckpoint', () => {
  it('sorted numerically; temp, partial, stray entries ignored', async () => {
    const run = await tmpRun();
    for (const s of [100, 20, 3]) await saveCheckpoint(run, s);
    await mkdir(path.join(run, '.checkpoint-120.tmp-123-abcd'));
    await mkdir(path.join(run, 'checkpoint-07')); // not a name this module writes
    await mkdir(path.join(run, 'checkpoint-x'));
    await writeFile(path.join(run, 'checkpoint-200'), 'a file');
    await writeFile(path.join(run, 'metrics.jsonl'), '');
    const list = await listCheckpoints(run);
    expect(list.map((c) => c.name)).toEqual(['checkpoint-3', 'checkpoint-20', 'checkpoint-100']);
    expect(list[0]!.dir).toBe(path.join(run, 'checkpoint-3'));
    expect((await latestCheckpoint(run))?.step).toBe(100);
  });
  it('a run folder that does not exist has none', async () => {
    const run = await tmpRun();
    expect(await listCheckpoints(path.join(run, 'nope'))).toEqual([]);
    expect(await latestCheckpoint(path.join(run, 'nope'))).toBeNull();
  });
  it('checkpointName', () => {
    expect(checkpointName(20)).toBe('checkpoint-20');
    expect(() => checkpointName(-1)).toThrow(/non-negative integer/);
  });
});

describe('rotateCheckpoints (save_total_limit)', () => {
  it('keeps the newest `keep`', async () => {
    const run = await tmpRun();
    for (const s of [20, 40, 60, 80, 100]) await saveCheckpoint(run, s);
    const deleted = await rotateCheckpoints(run, 3);
    expect(deleted.map((c) => c.step)).toEqual([20, 40]);
    expect((await listCheckpoints(run)).map((c) => c.step)).toEqual([60, 80, 100]);
    expect((await readdir(run)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
  it('never deletes the best, given by step or folder', async () => {
    const run = await tmpRun();
    for (const s of [20, 40, 60, 80, 100]) await saveCheckpoint(run, s);
    await rotateCheckpoints(run, 2, 40);
    expect((await listCheckpoints(run)).map((c) => c.step)).toEqual([40, 80, 100]);
    await rotateCheckpoints(run, 1, path.join(run, 'checkpoint-40'));
    expect((await listCheckpoints(run)).map((c) => c.step)).toEqual([40, 100]);
  });
  it('keep 0 keeps everything; bad keep refused', async () => {
    const run = await tmpRun();
    for (const s of [1, 2]) await saveCheckpoint(run, s);
    expect(await rotateCheckpoints(run, 0)).toEqual([]);
    await expect(rotateCheckpoints(run, -1)).rejects.toThrow(/keep must be an integer >= 0, got -1/);
  });
});

describe('cleanStaleTemps', () => {
  it('restores a folder renamed aside when the crash fell between the two renames', async () => {
    const run = await tmpRun();
    const dir = await saveCheckpoint(run, 60, 'kept');
    await rename(dir, path.join(run, '.checkpoint-60.old-42-beef'));
    await mkdir(path.join(run, '.checkpoint-60.tmp-42-beef'));
    await mkdir(path.join(run, '.checkpoint-20.del-42-cafe'));
    expect(await listCheckpoints(run)).toEqual([]);
    const r = await cleanStaleTemps(run);
    expect(r.restored).toEqual(['checkpoint-60']);
    expect(r.removed.sort()).toEqual(['.checkpoint-20.del-42-cafe', '.checkpoint-60.tmp-42-beef']);
    expect(await readFile(path.join(run, 'checkpoint-60', 'adapter', 'weights.bin'), 'utf8')).toBe('kept');
    expect(await readdir(run)).toEqual(['checkpoint-60']);
  });
  it('drops an .old- copy when the new folder made it', async () => {
    const run = await tmpRun();
    await saveCheckpoint(run, 60, 'new');
    await mkdir(path.join(run, '.checkpoint-60.old-1-aa'));
    expect((await cleanStaleTemps(run)).removed).toEqual(['.checkpoint-60.old-1-aa']);
    expect(await readFile(path.join(run, 'checkpoint-60', 'adapter', 'weights.bin'), 'utf8')).toBe('new');
  });
});

describe('JSON helpers', () => {
  it('round trip, and errors naming the file', async () => {
    const run = await tmpRun();
    const f = path.join(run, 'a.json');
    await writeJsonSynced(f, { a: [1, 2], b: 'x' });
    expect(await readFile(f, 'utf8')).toBe('{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n');
    expect(await readJsonFile(f)).toEqual({ a: [1, 2], b: 'x' });
    await writeFile(f, '{"a":');
    await expect(readJsonFile(f)).rejects.toThrow(`${f}: not valid JSON`);
    await expect(readJsonFile(path.join(run, 'none.json'))).rejects.toThrow(/none\.json: cannot read \(no such file\)/);
  });
});
