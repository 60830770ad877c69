/**
 * Counting answers across a batch: how many parsed, and how many were invalid for each reason.
 * Invalid answers already score 0 in correctnessReward; the tally makes them visible in logs.
 */
import { INVALID_REASONS, type InvalidReason, type ParsedAnswer } from './parse.js';
import type { CombinedRewardFn, RewardExample } from './rewards.js';

export interface TallySummary {
  total: number;
  valid: number;
  invalid: number;
  /** invalid / total, 0 for an empty tally. */
  invalidRate: number;
  reasons: Record<InvalidReason, number>;
}

function zeroReasons(): Record<InvalidReason, number> {
  return Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>;
}

export class RewardTally {
  total = 0;
  valid = 0;
  reasons: Record<InvalidReason, number> = zeroReasons();

  add(parsed: ParsedAnswer): void {
    this.total++;
    if (parsed.ok) this.valid++;
    else this.reasons[parsed.reason]++;
  }

  get invalid(): number {
    return this.total - this.valid;
  }

  get invalidRate(): number {
    return this.total === 0 ? 0 : this.invalid / this.total;
  }

  /** Adds another tally's counts to this one (e.g. across gradient-accumulation steps). */
  merge(other: RewardTally): void {
    this.total += other.total;
    this.valid += other.valid;
    for (const r of INVALID_REASONS) this.reasons[r] += other.reasons[r];
  }

  reset(): void {
    this.total = 0;
    this.valid = 0;
    this.reasons = zeroReasons();
  }

  toJSON(): TallySummary {
    return { total: this.total, valid: this.valid, invalid: this.invalid, invalidRate: this.invalidRate, reasons: { ...this.reasons } };
  }
}

export interface ScoredBatch {
  /** Weighted totals, one per completion. */
  total: Float64Array;
  /** Unweighted values per reward name, one per completion. */
  parts: Record<string, Float64Array>;
  parsed: ParsedAnswer[];
  tally: RewardTally;
}

/** Scores a batch of (example, completion) pairs into typed arrays, and tallies the answers. */
export function scoreCompletions(
  reward: CombinedRewardFn,
  batch: ReadonlyArray<{ example: RewardExample; completion: string }>,
): ScoredBatch {
  const n = batch.length;
  const total = new Float64Array(n);
  const parts: Record<string, Float64Array> = {};
  for (const name of reward.names) parts[name] = new Float64Array(n);
  const parsed: ParsedAnswer[] = [];
  const tally = new RewardTally();
  batch.forEach(({ example, completion }, i) => {
    const r = reward(example, completion);
    total[i] = r.total;
    for (const name of reward.names) {
      const column = parts[name];
      if (column !== undefined) column[i] = r.parts[name] ?? 0;
    }
    parsed.push(r.parsed);
    tally.add(r.parsed);
  });
  return { total, parts, parsed, tally };
}
