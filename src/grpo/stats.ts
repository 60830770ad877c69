/**
 * Mean and standard deviation of a slice of numbers, in float64, shared by advantages.ts and
 * metrics.ts.
 *
 * The mean is computed shifted by the slice's first value, mean = x0 + sum(x_i - x0) / n, so a
 * slice of identical values has a mean exactly equal to that value and every deviation x_i - mean
 * is exactly 0 (a plain sum / n can round 0.1 + 0.1 + 0.1 / 3 away from 0.1 and leave tiny
 * nonzero "advantages" in a group that carries no signal).
 */

/** Mean of xs[start, end) in float64 (end > start). */
export function sliceMean(xs: ArrayLike<number>, start: number, end: number): number {
  const x0 = xs[start] as number;
  let sum = 0;
  for (let i = start + 1; i < end; i++) sum += (xs[i] as number) - x0;
  return x0 + sum / (end - start);
}

/**
 * Sample (unbiased, Bessel-corrected: divides by n - 1) standard deviation of xs[start, end),
 * as torch.std computes by default and TRL uses; 0 when the slice has fewer than 2 values
 * (TRL's convention for num_generations = 1).
 */
export function sliceSampleStd(xs: ArrayLike<number>, start: number, end: number): number {
  const n = end - start;
  if (n < 2) return 0;
  const mean = sliceMean(xs, start, end);
  let ss = 0;
  for (let i = start; i < end; i++) {
    const d = (xs[i] as number) - mean;
    ss += d * d;
  }
  return Math.sqrt(ss / (n - 1));
}

/** Whether every value of xs[start, end) equals the first (true for an empty or 1-long slice). */
export function sliceAllEqual(xs: ArrayLike<number>, start: number, end: number): boolean {
  const x0 = xs[start];
  for (let i = start + 1; i < end; i++) if (xs[i] !== x0) return false;
  return true;
}
