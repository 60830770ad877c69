/**
 * Trainer selection: `{ trainer: 'grpo' | 'recpo', ...config }` -> GrpoTrainer (answer parsing,
 * the default) or RecpoTrainer (src/recpo: a hidden-state decision over label embeddings).
 */
import { RecpoTrainer } from '../recpo/trainer.js';
import { GrpoTrainer } from './trainer.js';

export function createTrainer(config: { trainer?: 'grpo' | 'recpo' } & Record<string, unknown> = {}, opts: { now?: Date } = {}): GrpoTrainer {
  const { trainer = 'grpo', ...rest } = config;
  if (trainer === 'recpo') return new RecpoTrainer(rest, opts);
  if (trainer !== 'grpo') throw new Error(`trainer: expected one of grpo, recpo, got ${JSON.stringify(trainer)}`);
  return new GrpoTrainer(rest, opts);
}
