// Trained weights on disk: which kind a folder holds (locateWeights), putting them on a model
// (applyWeights: values set exactly, mismatches refused naming file and tensor), the best model's
// folder and best.json, and run.json found from a checkpoint, best/ or adapter/ folder.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvalMetrics } from '../../src/eval/metrics.js';
import { CausalLM, writeSafetensors } from '../../src/model/index.js';
import { readBestModelInfo, removeBestModel, saveBestModel } from '../../src/train/best-model.js';
import { listCheckpoints, rotateCheckpoints } from '../../src/train/checkpoint-dir.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { findRunInfo, writeRunInfo } from '../../src/train/run-info.js';
import { applyWeights, locateWeights, writeTrainedWeights } from '../../src/train/trained-weights.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rrec-weights-'));
  dirs.push(d);
  return d;
}
const metrics = (accuracy: number): EvalMetrics => ({ n: 4, accuracy, macro_f1: 0.5, invalid_rate: 0, per_class: [], confusion: [], mean_output_length: 3 });

describe('trained weights', () => {
  it('locateWeights tells a LoRA checkpoint, a PEFT folder and a full fine-tune apart; errors name the folder', async () => {
    const root = await tmp();
    const modelDir = join(root, 'model');
    writeTinyModel(modelDir, 'llama');
    const lm = await CausalLM.load(modelDir);
    const adapter = lm.createLora({ rank: 2, seed: 4 });
    const ckpt = join(root, 'ckpt-lora');
    await mkdir(ckpt);
    await writeTrainedWeights(ckpt, { lm, adapter });
    expect(await locateWeights(ckpt)).toEqual({ kind: 'adapter', dir: join(ckpt, 'adapter') });
    expect(await locateWeights(join(ckpt, 'adapter'))).toEqual({ kind: 'adapter', dir: join(ckpt, 'adapter') });
    const loaded = await applyWeights(lm, await locateWeights(ckpt));
    for (const p of adapter.params()) expect(Array.from(loaded!.getParam(p.name))).toEqual(Array.from(adapter.getParam(p.name)));
    lm.free();

    const empty = join(root, 'empty');
    await mkdir(empty);
    await expect(locateWeights(empty)).rejects.toThrow(`${empty}: holds no trained weights (looked for adapter/adapter_config.json, adapter_config.json and model.safetensors)`);
    await expect(locateWeights(join(root, 'nope'))).rejects.toThrow(`${join(root, 'nope')}: no such folder`);
    await writeFile(join(root, 'file'), 'x');
    await expect(locateWeights(join(root, 'file'))).rejects.toThrow(`${join(root, 'file')}: not a folder`);
  });

  it('full fine-tune weights: set exactly; refused on a LoRA-mode model, with a missing, extra or misshapen tensor', async () => {
    const root = await tmp();
    const modelDir = join(root, 'model');
    writeTinyModel(modelDir, 'qwen2');
    const a = await CausalLM.load(modelDir, { fullFinetune: true });
    const names = a.params().map((p) => p.name);
    a.setParam(names[1]!, a.getParam(names[1]!).map((v) => v + 0.5));
    const ckpt = join(root, 'ckpt-full');
    await mkdir(ckpt);
    await writeTrainedWeights(ckpt, { lm: a, adapter: null });
    const where = await locateWeights(ckpt);
    expect(where).toEqual({ kind: 'full', file: join(ckpt, 'model.safetensors') });
    const b = await CausalLM.load(modelDir, { fullFinetune: true });
    expect(await applyWeights(b, where)).toBeNull();
    for (const n of names) expect(Array.from(b.getParam(n))).toEqual(Array.from(a.getParam(n)));

    const frozen = await CausalLM.load(modelDir);
    await expect(applyWeights(frozen, where)).rejects.toThrow(`${where.kind === 'full' ? where.file : ''}: full fine-tune weights need the model loaded with fullFinetune: true`);
    frozen.free();

    const params = a.params();
    const write = async (name: string, tensors: { name: string; shape: number[]; data: Float32Array }[]) => {
      const f = join(root, name);
      await writeSafetensors(f, tensors);
      return { kind: 'full' as const, file: f };
    };
    const all = params.map((p) => ({ name: p.name, shape: p.shape, data: a.getParam(p.name) as Float32Array }));
    await expect(applyWeights(b, await write('missing.safetensors', all.slice(1)))).rejects.toThrow(`missing.safetensors: tensor "${params[0]!.name}" is missing`);
    await expect(applyWeights(b, await write('extra.safetensors', [...all, { name: 'model.extra.weight', shape: [1], data: new Float32Array(1) }]))).rejects.toThrow(/extra.safetensors: tensor "model.extra.weight" is not a weight of the qwen2 model/);
    const p0 = params[0]!;
    const bad = [{ name: p0.name, shape: [p0.shape.reduce((x, y) => x * y, 1)], data: all[0]!.data }, ...all.slice(1)];
    await expect(applyWeights(b, await write('shape.safetensors', bad))).rejects.toThrow(`shape.safetensors: tensor "${p0.name}" has shape [${bad[0]!.shape.join(', ')}], the model at ${modelDir} expects [${p0.shape.join(', ')}]`);
    a.free();
    b.free();
  });

  it('best/: written atomically with best.json, replaced on improvement, ignored by rotation, removable', async () => {
    const root = await tmp();
    const modelDir = join(root, 'model');
    writeTinyModel(modelDir, 'llama');
    const lm = await CausalLM.load(modelDir);
    const adapter = lm.createLora({ rank: 2 });
    const run = join(root, 'run');
    for (const s of [1, 2, 3]) await mkdir(join(run, `checkpoint-${s}`), { recursive: true });
    expect(await readBestModelInfo(run)).toBeNull();
    await saveBestModel(run, { lm, adapter }, { step: 1, metrics: metrics(0.25) });
    await saveBestModel(run, { lm, adapter }, { step: 3, metrics: metrics(0.5) });
    expect(await readBestModelInfo(run)).toEqual({ step: 3, accuracy: 0.5, metrics: metrics(0.5) });
    await rotateCheckpoints(run, 1);
    expect((await listCheckpoints(run)).map((c) => c.step)).toEqual([3]);
    expect((await readBestModelInfo(run))!.step).toBe(3);
    expect(await removeBestModel(run)).toBe(true);
    expect(await readBestModelInfo(run)).toBeNull();
    expect(await removeBestModel(run)).toBe(false);
    lm.free();
  });

  it('run.json is found from the run, a checkpoint, best/ and a checkpoint\'s adapter/ folder', async () => {
    const run = join(await tmp(), 'run');
    const config = resolveTrainConfig({ run_name: 'run', system_prompt: 'Be brief.' });
    await mkdir(join(run, 'checkpoint-4', 'adapter'), { recursive: true });
    await writeRunInfo(run, { config, model_dir: '/m', data_dir: '/d', labels: ['a', 'b'] });
    for (const d of [run, join(run, 'checkpoint-4'), join(run, 'checkpoint-4', 'adapter')]) {
      const found = await findRunInfo(d);
      expect(found?.file).toBe(join(run, 'run.json'));
      expect(found?.info.config.system_prompt).toBe('Be brief.');
    }
    expect(await findRunInfo(join(run, '..'))).toBeNull();
    await writeFile(join(run, 'run.json'), JSON.stringify({ config: {}, model_dir: '/m', data_dir: '/d', labels: [] }));
    await expect(findRunInfo(run)).rejects.toThrow(`${join(run, 'run.json')}: "labels" must be a non-empty list of strings, got []`);
  });
});
