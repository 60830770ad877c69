/**
 * A figure of the benchmark: one measured quantity of ours (min / median / max over rounds) beside
 * a peer's median measured in the same run, and their ratio oriented so that > 1 means we are
 * better. Pure functions only (no I/O), so test/bench/ checks them by hand.
 */

export interface Stats {
  min: number;
  median: number;
  max: number;
}

export interface PeerFigure {
  /** What ran, e.g. "PyTorch 1.13.0 bf16" or "llama.cpp (node-llama-cpp 3.21.1)". */
  name: string;
  median: number;
}

export interface Figure {
  /** Dotted name, e.g. "sample.decode.b1". */
  name: string;
  /** e.g. "GFLOP/s", "ms", "tok/s", "GB/s", "s", "MiB". */
  unit: string;
  ours: Stats;
  peer: PeerFigure | null;
  /** ours / peer when higher is better, peer / ours when lower is better; null without a peer. */
  ratio: number | null;
  higher_is_better: boolean;
  /** What exactly was measured (shapes, budgets), or how to install a missing peer. */
  note: string;
  /** Single-sequence decode only: weight bytes read per second / measured memory bandwidth. */
  roofline_fraction?: number | null;
  /** Sampling figures: bytes of weights one decode step reads (for roofline_fraction). */
  weight_bytes_per_token?: number;
  /**
   * Training layer figures: counted GFLOP / median seconds over the median bf16 register-only peak
   * (vdpbf16ps on every thread) measured in the same rounds; null where the CPU has no AVX512_BF16.
   */
  peak_fraction?: number | null;
}

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median: no samples');
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** min / median / max of the samples; throws on an empty list or a non-finite sample. */
export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) throw new RangeError('stats: no samples');
  for (const x of samples) if (!Number.isFinite(x)) throw new RangeError(`stats: non-finite sample ${x}`);
  return { min: Math.min(...samples), median: median(samples), max: Math.max(...samples) };
}

/**
 * Ratio oriented so that > 1 means ours is better: ours / peer for throughputs (higher is better),
 * peer / ours for times and sizes (lower is better). null when either side is missing, not finite
 * or not positive.
 */
export function orientedRatio(ours: number | null | undefined, peer: number | null | undefined, higherIsBetter: boolean): number | null {
  if (ours == null || peer == null || !Number.isFinite(ours) || !Number.isFinite(peer) || ours <= 0 || peer <= 0) return null;
  return higherIsBetter ? ours / peer : peer / ours;
}

export interface FigureInput {
  name: string;
  unit: string;
  higherIsBetter: boolean;
  /** Ours, one sample per round. */
  samples: readonly number[];
  /** The peer's samples from the same rounds; null: no peer (then say why in the note). */
  peer?: { name: string; samples: readonly number[] } | null;
  note: string;
}

/** Builds a figure from per-round samples. A peer with no samples counts as no peer. */
export function makeFigure(f: FigureInput): Figure {
  const ours = stats(f.samples);
  const peer = f.peer && f.peer.samples.length > 0 ? { name: f.peer.name, median: median(f.peer.samples) } : null;
  return { name: f.name, unit: f.unit, ours, peer, ratio: orientedRatio(ours.median, peer?.median, f.higherIsBetter), higher_is_better: f.higherIsBetter, note: f.note };
}
