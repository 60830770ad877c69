// `rrec-emotion train --trainer=recpo` end to end on a small model and the shipped sample, then
// `rrec-emotion eval` of its checkpoint reporting both decision rules on the same completions;
// RecPO flags without --trainer=recpo are refused by name.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runEval } from '../../src/cli/eval.js';
import { runInfer } from '../../src/cli/infer.js';
import { runTrain } from '../../src/cli/train.js';
import { lenmlTokenizerDir } from '../../src/tokenizer/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-recpo-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'tiny-qwen');
writeTinyModel(modelDir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 151645, bos_token_id: 151643 } as never });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(lenmlTokenizerDir('qwen2_5'), f), join(modelDir, f));

describe('rrec-emotion train --trainer=recpo', () => {
  it('trains, checkpoints, and eval reports the similarity decision beside answer parsing', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const code = await runTrain([
        '--trainer=recpo', `--model=${modelDir}`, `--data_dir=${sample}`, `--output_dir=${join(root, 'runs')}`, '--run_name=r', '--max_steps=1',
        '--train_batch_size=2', '--max_new_tokens=4', '--sft_epochs=0', '--eval_batch_size=40', '--reward_softmax_weight=1', '--reward_format_weight=0.5',
        '--advantage_type=loo', '--item_emb_refresh_steps=0', '--similarity_temperature=0.05', '--epsilon_low=0.2', '--epsilon_high=0.28', '--temperature=1',
      ]);
      expect(code).toBe(0);
      const text = log.mock.calls.map((c) => String(c[0])).join('\n');
      expect(text).toMatch(/valid after RecPO: +similarity decision accuracy \d\.\d{4}, macro-F1 \d\.\d{4}; answer parsing accuracy \d\.\d{4}/);
      const saved = JSON.parse(readFileSync(join(root, 'runs', 'r', 'recpo.json'), 'utf8')) as Record<string, unknown>;
      expect([saved.advantage_type, saved.similarity_temperature, saved.reward_format_weight]).toEqual(['loo', 0.05, 0.5]);
    } finally {
      log.mockRestore();
      write.mockRestore();
    }
    const lines: string[] = [];
    expect(await runEval([`--checkpoint=${join(root, 'runs', 'r', 'checkpoint-1')}`, '--limit=8'], { out: (t) => lines.push(t) })).toBe(0);
    const out = lines.join('\n');
    expect(out).toContain('RecPO similarity decision (tau 0.05)');
    expect(out).toContain('answer parsing of the same completions');
    const json: string[] = [];
    expect(await runEval([`--checkpoint=${join(root, 'runs', 'r', 'checkpoint-1')}`, '--limit=8', '--json'], { out: (t) => json.push(t) })).toBe(0);
    const report = JSON.parse(json.join('\n')) as { metrics: { n: number }; similarity_metrics: { n: number; invalid_rate: number } };
    expect(report.similarity_metrics.n).toBe(8);
    expect(report.similarity_metrics.invalid_rate).toBe(0);
    expect(report.metrics.n).toBe(8);
    const inf: string[] = [];
    expect(await runInfer([`--checkpoint=${join(root, 'runs', 'r', 'checkpoint-1')}`, '--text=my dog died', '--json'], { out: (t) => inf.push(t) })).toBe(0);
    const row = JSON.parse(inf[0]!) as { similarity_label: string; similarity_probs: Record<string, number> };
    expect(['sad', 'joyful', 'angry', 'afraid']).toContain(row.similarity_label);
    expect(Object.values(row.similarity_probs).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('refuses RecPO flags without --trainer=recpo and lists them in --help', async () => {
    await expect(runTrain(['--similarity_temperature=0.1'])).rejects.toThrow(/--similarity_temperature is a RecPO option; add --trainer=recpo/);
    await expect(runTrain(['--trainer=ppo'])).rejects.toThrow(/--trainer: expected one of grpo, recpo, got "ppo"/);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await runTrain(['--help'])).toBe(0);
    const text = log.mock.calls.map((c) => String(c[0])).join('\n');
    log.mockRestore();
    for (const k of ['trainer', 'reward_softmax_weight', 'reward_format_weight', 'advantage_type', 'item_emb_refresh_steps', 'epsilon_low', 'similarity_temperature', 'label_descriptions'])
      expect(text).toContain(k);
  });
});
