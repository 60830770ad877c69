// `rrec-emotion export`: the flags reach exportModel (a merged folder that loads back) and bad
// usage is refused naming the flag (the export itself is tested in test/export/).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliUsageError } from '../../src/cli/args.js';
import { runExport } from '../../src/cli/export.js';
import { CausalLM } from '../../src/model/index.js';
import { nonZeroAdapter, saveTestAdapter, writeTokenizedTinyModel } from '../helpers/export-models.js';

const root = mkdtempSync(join(tmpdir(), 'rrec-cli-export-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('rrec-emotion export', () => {
  it('writes a merged folder from a PEFT adapter whose base_model_name_or_path is a folder here', async () => {
    const base = join(root, 'base');
    writeTokenizedTinyModel(base, 'qwen2', 'tiny');
    const lm = await CausalLM.load(base);
    await saveTestAdapter(nonZeroAdapter(lm), join(root, 'adapter'), base);
    lm.free();
    const lines: string[] = [];
    expect(await runExport([`--checkpoint=${join(root, 'adapter')}`, '--format=merged', `--out=${join(root, 'out')}`], { out: (t) => lines.push(t) })).toBe(0);
    expect(lines.join('\n')).toMatch(/model +.*\/base\nweights +LoRA adapter .*adapter folded into 14 weights\nwrote +.*\/out \(merged, F32, [\d.]+ MiB/);
    expect(readdirSync(join(root, 'out'))).toContain('model.safetensors');
    (await CausalLM.load(join(root, 'out'))).free();
  });

  it('refuses bad usage naming the flag', async () => {
    await expect(runExport(['--out=x'])).rejects.toThrow(/--format: needed/);
    await expect(runExport(['--format=onnx', '--out=x'])).rejects.toThrow(/--format: expected one of merged, gguf, got "onnx"/);
    await expect(runExport(['--format=merged'])).rejects.toThrow(/--out: needed/);
    await expect(runExport(['--format=merged', '--out=x', '--dtype=q8_0'])).rejects.toThrow(CliUsageError);
    const help: string[] = [];
    expect(await runExport(['--help'], { out: (t) => help.push(t) })).toBe(0);
    expect(help[0]).toMatch(/--format=merged\|gguf/);
  });
});
