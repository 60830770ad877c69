/**
 * Learning-rate schedules with linear warm-up, exactly as Hugging Face transformers'
 * `get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup` and
 * `get_cosine_schedule_with_warmup` (num_cycles = 0.5) in src/transformers/optimization.py.
 *
 * Multiplier of the base learning rate at scheduler step s (transformers' lr_lambda), with
 * W = warmup steps and N = total training steps:
 *   s < W:     s / max(1, W)                                            (every type)
 *   constant:  1
 *   linear:    max(0, (N - s) / max(1, N - W))
 *   cosine:    max(0, 0.5 * (1 + cos(pi * num_cycles * 2 * (s - W) / max(1, N - W))))
 *
 * Step indexing. torch's LambdaLR sets lr = base * lambda(0) when it is created, and the HF
 * Trainer calls `optimizer.step()` then `lr_scheduler.step()`. So the k-th optimizer update
 * (k = 1, 2, ...) uses lambda(k - 1): with warm-up the very first update has lr 0. The Trainer
 * logs `learning_rate` as read *before* `lr_scheduler.step()` ("get learning rate before
 * update"), i.e. the rate that update used. Here `learningRateAt(step)` takes `step` = the number
 * of optimizer updates already done (0 for the first), returns the rate that update uses, and is
 * what the trainer should log with it.
 */

export type LrSchedulerType = 'constant' | 'linear' | 'cosine';

export interface LrScheduleConfig {
  type: LrSchedulerType;
  /** Peak learning rate (the optimizer's base lr). */
  baseLr: number;
  /** W: steps of linear warm-up from 0. */
  warmupSteps: number;
  /** N: total optimizer steps of the run (only linear and cosine read it). */
  totalSteps: number;
  /** Cosine waves over the decay; 0.5 = a half cosine from 1 down to 0 (transformers' default). */
  numCycles?: number;
}

function checkStep(step: number, what: string): void {
  if (!Number.isInteger(step) || step < 0) throw new RangeError(`${what} must be an integer >= 0, got ${step}`);
}

/** transformers' lr_lambda: the multiplier of the base lr at scheduler step `step` (see above). */
export function lrMultiplier(type: LrSchedulerType, step: number, warmupSteps: number, totalSteps: number, numCycles = 0.5): number {
  checkStep(step, 'step');
  checkStep(warmupSteps, 'warmupSteps');
  checkStep(totalSteps, 'totalSteps');
  if (step < warmupSteps) return step / Math.max(1, warmupSteps);
  switch (type) {
    case 'constant':
      return 1;
    case 'linear':
      return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case 'cosine': {
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    }
    default:
      throw new RangeError(`unknown lr_scheduler_type ${JSON.stringify(type as string)}; expected constant, linear or cosine`);
  }
}

/** The learning rate of the optimizer update that follows `step` completed updates (0-based). */
export function learningRateAt(step: number, cfg: LrScheduleConfig): number {
  if (!Number.isFinite(cfg.baseLr) || cfg.baseLr < 0) throw new RangeError(`baseLr must be a finite number >= 0, got ${cfg.baseLr}`);
  return cfg.baseLr * lrMultiplier(cfg.type, step, cfg.warmupSteps, cfg.totalSteps, cfg.numCycles ?? 0.5);
}

/**
 * A schedule as a function of the step. Stateless on purpose: a checkpoint only needs the global
 * step to restore it (what transformers saves as `last_epoch` in scheduler.pt).
 */
export function createLrSchedule(cfg: LrScheduleConfig): (step: number) => number {
  const frozen = { ...cfg };
  learningRateAt(0, frozen); // validate now, not at step 1000
  return (step) => learningRateAt(step, frozen);
}
