/**
 * The best model so far and early stopping, both by valid accuracy.
 *
 * Every valid evaluation is shown to observe(step, accuracy). The first one sets the best; a later
 * one improves on it only when its accuracy is strictly higher (a tie keeps the earlier step, the
 * shorter-trained model). Each evaluation that does not improve counts towards the patience; an
 * improvement resets the count. With patience N > 0 the run stops when N evaluations in a row
 * have not improved (HF's EarlyStoppingCallback with threshold 0); patience 0 never stops.
 *
 * state() / restore() carry the tracker through a checkpoint, so a resumed run stops where an
 * uninterrupted one would.
 */

/** What a checkpoint stores (snake_case: it is written to trainer_state.json). */
export interface EarlyStoppingState {
  /** Step of the best evaluation so far; null before the first. */
  best_step: number | null;
  /** Its valid accuracy; null before the first. */
  best_accuracy: number | null;
  /** Evaluations since the best one (0 right after an improvement). */
  evals_without_improvement: number;
}

export interface Observation {
  /** This evaluation is the new best (the caller saves the best model). */
  improved: boolean;
  /** The patience is used up: stop training. */
  stop: boolean;
}

export class EarlyStopping {
  private bestStep: number | null = null;
  private bestAccuracy: number | null = null;
  private without = 0;

  /** patience: evaluations without improvement before stopping; 0: never stop. */
  constructor(readonly patience: number) {
    if (!Number.isSafeInteger(patience) || patience < 0) throw new RangeError(`early stopping patience must be an integer >= 0, got ${patience}`);
  }

  /** Records the valid accuracy measured after `step` optimizer steps. */
  observe(step: number, accuracy: number): Observation {
    if (!Number.isFinite(accuracy)) throw new RangeError(`early stopping: accuracy at step ${step} is ${accuracy}, not a finite number`);
    if (this.bestAccuracy === null || accuracy > this.bestAccuracy) {
      this.bestStep = step;
      this.bestAccuracy = accuracy;
      this.without = 0;
      return { improved: true, stop: false };
    }
    this.without++;
    return { improved: false, stop: this.patience > 0 && this.without >= this.patience };
  }

  get best(): { step: number; accuracy: number } | null {
    return this.bestStep === null || this.bestAccuracy === null ? null : { step: this.bestStep, accuracy: this.bestAccuracy };
  }

  get evalsWithoutImprovement(): number {
    return this.without;
  }

  state(): EarlyStoppingState {
    return { best_step: this.bestStep, best_accuracy: this.bestAccuracy, evals_without_improvement: this.without };
  }

  /** Restores what state() returned; `where` names the source for errors (a trainer_state.json). */
  restore(state: unknown, where: string): void {
    const s = state as Partial<EarlyStoppingState> | null;
    const ok =
      typeof s === 'object' && s !== null &&
      (s.best_step === null || (Number.isSafeInteger(s.best_step) && s.best_step! >= 0)) &&
      (s.best_accuracy === null || Number.isFinite(s.best_accuracy)) &&
      (s.best_step === null) === (s.best_accuracy === null) &&
      Number.isSafeInteger(s.evals_without_improvement) && s.evals_without_improvement! >= 0;
    if (!ok) throw new Error(`${where}: "early_stopping" must be {best_step, best_accuracy, evals_without_improvement}, got ${JSON.stringify(state)}`);
    this.bestStep = s.best_step!;
    this.bestAccuracy = s.best_accuracy!;
    this.without = s.evals_without_improvement!;
  }
}
