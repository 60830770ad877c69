// GrpoTrainer.fit() end to end on a tiny model that uses the real Qwen2.5 tokenizer and the
// shipped sample dataset: a few steps, metrics written per step, checkpoints, evaluation, and a
// run stopped after step 1 and resumed giving the uninterrupted run's step 2.
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { lenmlTokenizerDir } from '../../src/tokenizer/index.js';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-fit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const modelDir = join(root, 'tiny-qwen');
writeTinyModel(modelDir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 151645, bos_token_id: 151643 } as never });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(lenmlTokenizerDir('qwen2_5'), f), join(modelDir, f));

const base = {
  model: modelDir, data_dir: sample, output_dir: join(root, 'runs'), seed: 3, train_batch_size: 2, group_size: 2,
  max_new_tokens: 4, max_steps: 2, save_steps: 1, eval_steps: 0, eval_batch_size: 40, learning_rate: 1e-2, warmup_steps: 0,
  lr_scheduler_type: 'constant' as const, lora_r: 4, lora_alpha: 8, sft_epochs: 0, logging_steps: 1,
};
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
const deterministic = (line: string) =>
  Object.fromEntries(Object.entries(JSON.parse(line) as Record<string, unknown>).filter(([k]) => !k.startsWith('time/') && !k.startsWith('tokens_per_second/')));

describe('GrpoTrainer.fit', () => {
  it('trains, logs every step, checkpoints, evaluates, and resumes exactly', async () => {
    const full = await new GrpoTrainer({ ...base, run_name: 'full', eval_on_start: true }).fit({ stream: quiet });
    expect(full.steps).toBe(2);
    expect(full.evalBefore!.n).toBe(40);
    expect(full.evalAfter!.n).toBe(40);
    const lines = readFileSync(join(full.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    const rec = JSON.parse(lines[0]!) as Record<string, number>;
    expect(rec.step).toBe(1);
    for (const k of ['loss', 'reward', 'reward_std', 'frac_reward_zero_std', 'kl', 'grad_norm', 'learning_rate', 'completions/mean_length']) expect(typeof rec[k]).toBe('number');
    expect(readdirSync(full.runDir).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-1', 'checkpoint-2']);

    const half = await new GrpoTrainer({ ...base, run_name: 'resumed', max_steps: 1 }).fit({ stream: quiet });
    expect(half.steps).toBe(1);
    const resumed = await new GrpoTrainer({ ...base, run_name: 'resumed', resume_from_checkpoint: true }).fit({ stream: quiet });
    expect(resumed.steps).toBe(2);
    const rlines = readFileSync(join(resumed.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rlines.map(deterministic)).toEqual(lines.map(deterministic));
  });

  it('refuses unknown config fields and resuming a run with no checkpoint', async () => {
    // @ts-expect-error a misspelt field fails tsc too (TS2561, "did you mean to write 'learning_rate'?")
    expect(() => new GrpoTrainer({ ...base, learning_rat: 1 })).toThrow(/learning_rat/);
    await expect(new GrpoTrainer({ ...base, run_name: 'nothing-here', resume_from_checkpoint: true }).fit({ stream: quiet })).rejects.toThrow(/no checkpoint/);
  });
});
