// EarlyStopping: the best evaluation (strictly higher accuracy wins, ties keep the earlier step),
// the patience count, and its state through a checkpoint; every case worked out by hand.
import { describe, expect, it } from 'vitest';
import { EarlyStopping } from '../../src/train/early-stopping.js';

/** Feeds (step, accuracy) pairs; returns the step at which it said stop (null: never) and the tracker. */
function run(patience: number, evals: [number, number][]) {
  const es = new EarlyStopping(patience);
  for (const [step, acc] of evals) if (es.observe(step, acc).stop) return { stoppedAt: step, es };
  return { stoppedAt: null, es };
}

describe('EarlyStopping', () => {
  it('the first evaluation is the best; only a strictly higher accuracy improves on it', () => {
    const es = new EarlyStopping(0);
    expect(es.best).toBeNull();
    expect(es.observe(0, 0.25)).toEqual({ improved: true, stop: false });
    expect(es.observe(10, 0.25)).toEqual({ improved: false, stop: false }); // a tie keeps step 0
    expect(es.observe(20, 0.3)).toEqual({ improved: true, stop: false });
    expect(es.observe(30, 0.1)).toEqual({ improved: false, stop: false });
    expect(es.best).toEqual({ step: 20, accuracy: 0.3 });
    expect(es.evalsWithoutImprovement).toBe(1);
  });

  it('patience 0 never stops', () => {
    expect(run(0, [[1, 0.5], [2, 0.4], [3, 0.3], [4, 0.2], [5, 0.1]]).stoppedAt).toBeNull();
  });

  it('stops after `patience` evaluations in a row without improvement; an improvement resets the count', () => {
    // constant accuracy: best at the first, stop at the (patience + 1)-th evaluation
    expect(run(2, [[5, 0.25], [10, 0.25], [15, 0.25], [20, 0.25]]).stoppedAt).toBe(15);
    expect(run(1, [[5, 0.25], [10, 0.25]]).stoppedAt).toBe(10);
    // 0.2 (best) 0.1 (1) 0.3 (best, reset) 0.3 (1) 0.25 (2) 0.3 (3 -> stop with patience 3)
    const r = run(3, [[1, 0.2], [2, 0.1], [3, 0.3], [4, 0.3], [5, 0.25], [6, 0.3], [7, 0.9]]);
    expect(r.stoppedAt).toBe(6);
    expect(r.es.best).toEqual({ step: 3, accuracy: 0.3 });
  });

  it('state() / restore() continue exactly where it was', () => {
    const evals: [number, number][] = [[2, 0.4], [4, 0.5], [6, 0.45], [8, 0.5], [10, 0.2]];
    const whole = run(3, evals);
    expect(whole.stoppedAt).toBe(10);
    const first = new EarlyStopping(3);
    for (const [s, a] of evals.slice(0, 3)) first.observe(s, a);
    const state = JSON.parse(JSON.stringify(first.state())) as unknown; // as trainer_state.json holds it
    expect(state).toEqual({ best_step: 4, best_accuracy: 0.5, evals_without_improvement: 1 });
    const second = new EarlyStopping(3);
    second.restore(state, 'trainer_state.json');
    expect(second.observe(8, 0.5).stop).toBe(false);
    expect(second.observe(10, 0.2).stop).toBe(true);
    expect(second.state()).toEqual(whole.es.state());
  });

  it('refuses a bad patience, a non-finite accuracy and a malformed state, naming them', () => {
    expect(() => new EarlyStopping(-1)).toThrow(/patience must be an integer >= 0, got -1/);
    expect(() => new EarlyStopping(1.5)).toThrow(/got 1.5/);
    expect(() => new EarlyStopping(1).observe(3, Number.NaN)).toThrow(/accuracy at step 3 is NaN/);
    const es = new EarlyStopping(1);
    expect(() => es.restore({ best_step: 2, best_accuracy: null, evals_without_improvement: 0 }, '/r/checkpoint-2/trainer_state.json')).toThrow(
      '/r/checkpoint-2/trainer_state.json: "early_stopping" must be {best_step, best_accuracy, evals_without_improvement}, got {"best_step":2,"best_accuracy":null,"evals_without_improvement":0}',
    );
    expect(() => es.restore('x', 'f')).toThrow(/f: "early_stopping"/);
    es.restore({ best_step: null, best_accuracy: null, evals_without_improvement: 0 }, 'f');
    expect(es.best).toBeNull();
  });
});
