// Model registry: the paths file and $RREC_MODEL_PATHS, lookup, direct folders, and the errors for
// unknown names, missing folders and incomplete ones.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelPathError, loadModelPaths, lookupModel, missingModelFiles, resolveModelPath } from '../../src/train/paths.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'rrec-paths-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function modelDir(name: string, files: string[]): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(path.join(dir, f), f.endsWith('.json') ? '{}' : 'x');
  return dir;
}

async function expectError(p: Promise<unknown>): Promise<ModelPathError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelPathError);
    return e as ModelPathError;
  }
  throw new Error('expected a ModelPathError');
}

describe('loadModelPaths', () => {
  it('reads ./paths.json when present, relative folders against the file; the variable overrides it', async () => {
    const cwd = path.join(root, 'proj');
    await mkdir(cwd, { recursive: true });
    await writeFile(path.join(cwd, 'paths.json'), JSON.stringify({ qwen: 'models/qwen', gemma: '/abs/gemma' }));
    const r = await loadModelPaths({ cwd, env: { RREC_MODEL_PATHS: JSON.stringify({ gemma: 'g2', 'Qwen/Qwen2.5-0.5B-Instruct': '/m/q05' }) } });
    expect(r.paths).toEqual({ qwen: path.join(cwd, 'models/qwen'), gemma: path.join(cwd, 'g2'), 'Qwen/Qwen2.5-0.5B-Instruct': '/m/q05' });
    expect(r.sources).toEqual([path.join(cwd, 'paths.json'), '$RREC_MODEL_PATHS']);
  });
  it('no file and no variable: an empty registry', async () => {
    const r = await loadModelPaths({ cwd: path.join(root, 'empty-cwd'), env: {} });
    expect(r).toEqual({ paths: {}, sources: [] });
  });
  it('--paths_file must exist; bad JSON and bad entries name where they are', async () => {
    await expect(loadModelPaths({ pathsFile: path.join(root, 'nope.json'), env: {} })).rejects.toThrow(/nope\.json: cannot read the model paths file \(no such file\)/);
    const bad = path.join(root, 'bad.json');
    await writeFile(bad, '{"qwen": ');
    await expect(loadModelPaths({ pathsFile: bad, env: {} })).rejects.toThrow(/bad\.json: not valid JSON/);
    await writeFile(bad, '{"qwen": 3}');
    await expect(loadModelPaths({ pathsFile: bad, env: {} })).rejects.toThrow(/bad\.json: model "qwen" maps to 3; expected a folder path/);
    await writeFile(bad, '["qwen"]');
    await expect(loadModelPaths({ pathsFile: bad, env: {} })).rejects.toThrow(/expected a JSON object mapping model names to folders, got an array/);
    await expect(loadModelPaths({ cwd: root, env: { RREC_MODEL_PATHS: 'qwen=/m' } })).rejects.toThrow(/^\$RREC_MODEL_PATHS: not valid JSON/);
  });
});

describe('resolveModelPath', () => {
  it('a registry name (exact or any case) or a folder path', async () => {
    const dir = await modelDir('good', ['config.json', 'model.safetensors', 'tokenizer.json']);
    const paths = { qwen: dir };
    expect(await resolveModelPath('qwen', paths)).toBe(dir);
    expect(await resolveModelPath('QWEN', paths)).toBe(dir);
    expect(await resolveModelPath(dir, {})).toBe(dir);
    expect(await resolveModelPath('good', {}, { cwd: root })).toBe(dir);
  });
  it('sharded weights: every shard of the index must be there', async () => {
    const dir = await modelDir('sharded', ['config.json', 'tokenizer.json', 'model-00001-of-00002.safetensors']);
    await writeFile(
      path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }),
    );
    expect(await missingModelFiles(dir)).toEqual(['model-00002-of-00002.safetensors']);
    await writeFile(path.join(dir, 'model-00002-of-00002.safetensors'), 'x');
    expect(await resolveModelPath(dir, {})).toBe(dir);
  });
  it('unknown name: lists the known ones and how to add it', async () => {
    const e = await expectError(resolveModelPath('llama', { qwen: '/q', gemma: '/g' }, { cwd: root }));
    expect(e.message).toBe(
      'unknown model "llama": not in the paths registry and not a folder. Known models: gemma, qwen. ' +
        'Add it to paths.json (or --paths_file, or $RREC_MODEL_PATHS) as {"llama": "/path/to/model"}, or pass a model folder',
    );
    expect((await expectError(resolveModelPath('llama', {}, { cwd: root }))).message).toMatch(/The paths registry is empty/);
  });
  it('registry entry whose folder is missing', async () => {
    const e = await expectError(resolveModelPath('gemma', { gemma: path.join(root, 'not-downloaded') }));
    expect(e.message).toMatch(/model "gemma" maps to .*not-downloaded, which is not a folder/);
    expect(e.dir).toBe(path.join(root, 'not-downloaded'));
  });
  it('incomplete folder: names every missing piece', async () => {
    const dir = await modelDir('partial', ['model.safetensors']);
    const e = await expectError(resolveModelPath('q', { q: dir }));
    expect(e.missing).toEqual(['config.json', 'tokenizer.json']);
    expect(e.message).toBe(`model folder ${dir} (model "q") is incomplete: missing config.json, tokenizer.json`);
    const empty = await modelDir('empty', []);
    expect((await expectError(resolveModelPath(empty, {}))).missing).toEqual(['config.json', 'weights (*.safetensors)', 'tokenizer.json']);
  });
  it('an ambiguous case-insensitive name is refused', () => {
    expect(() => lookupModel('qwen', { Qwen: '/a', QWEN: '/b' })).toThrow(/matches several registry entries: Qwen, QWEN/);
    expect(lookupModel('Qwen', { Qwen: '/a', QWEN: '/b' })).toBe('/a');
  });
});
