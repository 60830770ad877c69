// Fault family: untrusted model, adapter and registry folders. No path written in a config.json
// index, an adapter_config.json, a train config or a paths.json makes the library read or write
// outside the folders the user named: "../" and absolute paths are refused (shard names, run and
// output names), or are only names (an adapter's base_model_name_or_path is never followed by
// loadAdapter), and a chat template cannot include files (rendered by @huggingface/jinja: no code
// execution, no file access).
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPreprocess } from '../../src/cli/preprocess.js';
import { CausalLM, loadAdapter, saveAdapter } from '../../src/model/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { resolveTrainConfig, runDir } from '../../src/train/config.js';
import { loadModelPaths, missingModelFiles, resolveModelPath } from '../../src/train/paths.js';
import { tinyTokenizerJson } from '../helpers/tokenizer-folders.js';
import { writeTinyModel } from '../helpers/tiny-models.js';
import { fixture } from '../data/util.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-rel-paths-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const secret = join(root, 'outside.safetensors'); // a file outside every model folder

describe('sharded index naming files outside the folder', () => {
  it('"../" and absolute shard names are refused by the loader and listed as missing by the registry check', async () => {
    for (const [k, name] of [['rel', '../outside.safetensors'], ['abs', secret], ['deep', 'sub/../../outside.safetensors']] as const) {
      const dir = join(root, `sharded-${k}`);
      writeTinyModel(dir, 'llama', { sharded: 2 });
      copyFileSync(join(dir, 'model-00002-of-00002.safetensors'), secret);
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
      const idx = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
      for (const t of Object.keys(idx.weight_map)) if (idx.weight_map[t] === 'model-00002-of-00002.safetensors') idx.weight_map[t] = name;
      writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(idx));
      await expect(CausalLM.load(dir)).rejects.toThrow(new RegExp(`"${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" is not a plain file name`));
      expect(await missingModelFiles(dir)).toContain(name);
      await expect(resolveModelPath(dir, {})).rejects.toThrow(/is incomplete: missing/);
    }
  });
});

describe('adapter_config.json', () => {
  it('base_model_name_or_path of "../" or an absolute path is a name only: loadAdapter reads the adapter folder alone', async () => {
    const model = join(root, 'model');
    writeTinyModel(model, 'llama');
    const lm = await CausalLM.load(model);
    try {
      const a = lm.createLora({ rank: 2, alpha: 4, targets: ['q_proj'], seed: 3 });
      for (const base of ['../../../../etc', '/etc', join(root, 'nope')]) {
        const dir = join(root, `adapter-${readdirSync(root).length}`);
        await saveAdapter(a, dir, { baseModelNameOrPath: base });
        expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).base_model_name_or_path).toBe(base);
        const b = await loadAdapter(lm, dir);
        expect(Array.from(b.getParam(a.params()[0]!.name))).toEqual(Array.from(a.getParam(a.params()[0]!.name)));
      }
      // path-like module names are refused as unknown modules, not looked up
      const dir = join(root, 'adapter-bad-target');
      await saveAdapter(a, dir, { baseModelNameOrPath: null });
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...cfg, target_modules: ['../../q_proj'] }));
      await expect(loadAdapter(lm, dir)).rejects.toThrow(/adapter_config\.json: field "target_modules"/);
    } finally {
      lm.free();
    }
  });
});

describe('train config and preprocess names cannot leave their folder', () => {
  it('run_name with "../", "/" or a leading dot is refused naming the field; a model name never becomes a path', () => {
    for (const bad of ['../escape', '/abs/run', 'a/../../b', '.hidden']) {
      expect(() => resolveTrainConfig({ run_name: bad })).toThrow(/run_name/);
    }
    const cfg = resolveTrainConfig({ model: '../../../../etc/passwd', output_dir: join(root, 'runs') }, { now: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) });
    expect(cfg.run_name).toBe('passwd-20260102-030405');
    expect(resolve(runDir(cfg)).startsWith(join(root, 'runs') + '/')).toBe(true);
  });

  it('preprocess --output_name with "../" or "/" is a usage error', async () => {
    const errs: string[] = [];
    for (const name of ['../x', '/tmp/x', '..']) expect(await runPreprocess([`--input_dir=${fixture('mini')}`, `--output_name=${name}`], { err: (t) => errs.push(t), cwd: root })).toBe(2);
    expect(errs.every((e) => /--output_name must be a plain folder name/.test(e))).toBe(true);
  });
});

describe('paths.json', () => {
  it('relative folders resolve against the file, never the working directory; a name is only a key', async () => {
    const reg = join(root, 'registry');
    mkdirSync(reg);
    writeFileSync(join(reg, 'paths.json'), JSON.stringify({ '../../x': 'models/m', up: '../elsewhere' }));
    const { paths } = await loadModelPaths({ pathsFile: join(reg, 'paths.json'), cwd: '/' });
    expect(paths['../../x']).toBe(join(reg, 'models', 'm'));
    expect(paths.up).toBe(join(root, 'elsewhere'));
    // an entry naming a folder that does not hold a model is refused before anything is read from it
    await expect(resolveModelPath('up', paths)).rejects.toThrow(`model "up" maps to ${join(root, 'elsewhere')}, which is not a folder`);
  });
});

describe('chat templates', () => {
  it('{% include %} and other file access are refused, never rendered with a file', async () => {
    const dir = join(root, 'tpl');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson()));
    writeFileSync(join(secret + '.txt'), 'SECRET-CONTENT');
    for (const tpl of [`{% include '${secret}.txt' %}`, `{% import '${secret}.txt' as x %}`, `{{ open('${secret}.txt').read() }}`]) {
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '<|end|>', chat_template: tpl }));
      let text = '';
      try {
        const tok = await loadTokenizer(dir);
        text = tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
      } catch (e) {
        expect((e as Error).message).not.toContain('SECRET-CONTENT');
        continue;
      }
      expect(text).not.toContain('SECRET-CONTENT');
    }
  });
});
