// Early stopping in GrpoTrainer.fit(): with a learning rate too small to change a float32 weight,
// valid accuracy is the same at every evaluation, so the first evaluation stays the best and the
// run must stop exactly `patience` evaluations later: with eval_steps 2 and patience 2 the
// evaluations are at steps 2 (best), 4, 6 -> 6 steps. A run cut at step 4 and resumed stops at the
// same step (the tracker's state travels in the checkpoint).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const root = mkdtempSync(join(tmpdir(), 'rrec-early-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

let model: string;
beforeAll(async () => {
  model = await writeAnswerModel(join(root, 'answer-model'), ['sad', 'joyful', 'angry', 'afraid']);
});
const base = () => ({
  model, data_dir: sample, output_dir: join(root, 'runs'), seed: 2, sft_epochs: 0, max_steps: 40, eval_steps: 2, save_steps: 2,
  save_total_limit: 0, early_stopping_patience: 2, max_new_tokens: 12, train_batch_size: 2, group_size: 2, eval_batch_size: 40,
  learning_rate: 1e-30, warmup_steps: 0, lr_scheduler_type: 'constant' as const,
});
const evalSteps = (runDir: string) => readFileSync(join(runDir, 'eval.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; accuracy: number });

describe('early stopping', () => {
  it('stops after `patience` evaluations without a higher valid accuracy', async () => {
    const r = await new GrpoTrainer({ ...base(), run_name: 'stop' }).fit({ stream: quiet });
    expect(r.stopReason).toBe('early_stopping');
    expect(r.stoppedEarly).toBe(true);
    expect(r.steps).toBe(6);
    const evals = evalSteps(r.runDir);
    expect(evals.map((e) => e.step)).toEqual([2, 4, 6]);
    expect(new Set(evals.map((e) => e.accuracy)).size).toBe(1); // the premise: nothing changed
    expect(r.bestStep).toBe(2);
    expect(r.bestValidAccuracy).toBe(evals[0]!.accuracy);
    expect(r.evalAfter!.accuracy).toBe(evals[2]!.accuracy); // the final model's evaluation is the one at step 6
    expect(readFileSync(join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(6);
    expect(readdirSync(r.runDir).filter((n) => n.startsWith('checkpoint-')).sort()).toEqual(['checkpoint-2', 'checkpoint-4', 'checkpoint-6']);
    const state = JSON.parse(readFileSync(join(r.runDir, 'checkpoint-6', 'trainer_state.json'), 'utf8')) as { early_stopping: unknown };
    expect(state.early_stopping).toEqual({ best_step: 2, best_accuracy: evals[0]!.accuracy, evals_without_improvement: 2 });
    expect(JSON.parse(readFileSync(join(r.runDir, 'best', 'best.json'), 'utf8')).step).toBe(2);
  });

  it('a run resumed from a checkpoint stops where the uninterrupted run stops', async () => {
    const first = await new GrpoTrainer({ ...base(), run_name: 'resumed', max_steps: 4 }).fit({ stream: quiet });
    expect([first.steps, first.stopReason]).toEqual([4, 'completed']);
    const r = await new GrpoTrainer({ ...base(), run_name: 'resumed', resume_from_checkpoint: true }).fit({ stream: quiet });
    expect([r.steps, r.stopReason, r.bestStep]).toEqual([6, 'early_stopping', 2]);
    expect(evalSteps(r.runDir).map((e) => e.step)).toEqual([2, 4, 6]);
  });
});
