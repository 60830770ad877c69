/**
 * The order in which training prompts are visited: a fresh shuffle per epoch, derived only from
 * (seed, epoch), and a cursor (epoch, index) that serialises to JSON and resumes exactly.
 *
 * Randomness: SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014; the constants of Vigna's splitmix64.c), in BigInt so every platform gives the same
 * bits. The generator of epoch e is seeded with
 *   state0(seed, e) = mix64(mix64(seed + STREAM) + e)        (all mod 2^64)
 * where STREAM separates the data order from other users of the same seed (sampling, LoRA init).
 * Being a function of (seed, epoch) alone, an epoch's order never depends on how many numbers
 * earlier epochs drew, so resuming needs no generator state, only the cursor.
 *
 * The permutation is a Fisher-Yates shuffle (Durstenfeld's, from the end) with unbiased integers:
 * a 64-bit draw r is rejected when r >= 2^64 - (2^64 mod m), then r mod m is used.
 *
 * Batches: consecutive runs of `batchSize` positions of the epoch's permutation. drop_last
 * (default true): the last batch of an epoch is dropped when it is short, so every step has the
 * same number of prompts (and groups), the step cost is even and the step count is
 * epochs * floor(n / batchSize). The dropped prompts differ from epoch to epoch since the order is
 * reshuffled. With dropLast false the last batch holds the n mod batchSize remaining prompts.
 */

const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
/** Stream tag of the data order ("dataordr" in ASCII). */
const DATA_STREAM = 0x646174616f726472n;

/** SplitMix64's output function (a variant of MurmurHash3's fmix64): a bijection on 64 bits. */
export function mix64(x: bigint): bigint {
  let z = x & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** SplitMix64: state += gamma; output mix64(state). Same sequence as Vigna's splitmix64.c. */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: bigint | number) {
    this.state = BigInt(seed) & MASK64;
  }

  /** Next 64-bit output as an unsigned BigInt. */
  next(): bigint {
    this.state = (this.state + GOLDEN_GAMMA) & MASK64;
    return mix64(this.state);
  }

  /** Uniform integer in [0, m), m a positive safe integer; unbiased (rejection sampling). */
  nextBelow(m: number): number {
    if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`nextBelow: m must be a positive safe integer, got ${m}`);
    const big = BigInt(m);
    const limit = (1n << 64n) - ((1n << 64n) % big);
    for (;;) {
      const r = this.next();
      if (r < limit) return Number(r % big);
    }
  }
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative safe integer, got ${seed}`);
}

/** Generator seed of `epoch` (see the file comment). */
export function epochState(seed: number, epoch: number): bigint {
  checkSeed(seed);
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
  return mix64((mix64((BigInt(seed) + DATA_STREAM) & MASK64) + BigInt(epoch)) & MASK64);
}

/** The order of epoch `epoch`: a permutation of 0..n-1 from (seed, epoch) alone. */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`n must be an integer in [0, 2^32), got ${n}`);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rng = new SplitMix64(epochState(seed, epoch));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextBelow(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

export interface DataOrderOptions {
  /** Prompts in the training split. */
  numExamples: number;
  /** Prompts per batch (train_batch_size). */
  batchSize: number;
  seed: number;
  /** Reshuffle every epoch (default true); false visits 0..n-1 in order (for debugging). */
  shuffle?: boolean;
  /** Drop a short last batch of each epoch (default true; see the file comment). */
  dropLast?: boolean;
}

/** Where the next batch starts: epoch (0-based) and position in that epoch's permutation. */
export interface DataCursor {
  epoch: number;
  index: number;
}

/** Everything needed to resume, as saved in a checkpoint (plain JSON). */
export interface DataOrderState extends DataCursor {
  version: 1;
  numExamples: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
  dropLast: boolean;
}

export interface DataBatch {
  /** Epoch of this batch (0-based). */
  epoch: number;
  /** Batch number within the epoch (0-based). */
  batchInEpoch: number;
  /** Training-split row indices of the prompts, in order. */
  indices: Uint32Array;
}

/** Optimizer steps per epoch: floor(n / b) with dropLast, else ceil(n / b). */
export function batchesPerEpoch(numExamples: number, batchSize: number, dropLast = true): number {
  return dropLast ? Math.floor(numExamples / batchSize) : Math.ceil(numExamples / batchSize);
}

/** Steps of a whole run: epochs * batchesPerEpoch, capped by maxSteps when maxSteps > 0. */
export function totalTrainingSteps(opts: { numExamples: number; batchSize: number; epochs: number; dropLast?: boolean; maxSteps?: number }): number {
  const full = opts.epochs * batchesPerEpoch(opts.numExamples, opts.batchSize, opts.dropLast ?? true);
  return opts.maxSteps !== undefined && opts.maxSteps > 0 ? Math.min(full, opts.maxSteps) : full;
}

/** Iterates batches epoch after epoch without end; the trainer stops after its step count. */
export class DataOrder {
  readonly numExamples: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  /** Batches per epoch (>= 1). */
  readonly batchesPerEpoch: number;
  private cur: DataCursor = { epoch: 0, index: 0 };
  private perm: Uint32Array | null = null;
  private permEpoch = -1;

  constructor(opts: DataOrderOptions) {
    const { numExamples, batchSize } = opts;
    if (!Number.isInteger(numExamples) || numExamples < 1) throw new RangeError(`numExamples must be a positive integer, got ${numExamples}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    checkSeed(opts.seed);
    this.numExamples = numExamples;
    this.batchSize = batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? true;
    this.batchesPerEpoch = batchesPerEpoch(numExamples, batchSize, this.dropLast);
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(`${numExamples} training examples make no full batch of ${batchSize} (drop_last); lower train_batch_size`);
    }
  }

  /** Where the next batch starts (a copy). Always normalised: index < the epoch's batch span. */
  get cursor(): DataCursor {
    return { ...this.cur };
  }

  /** The order of `epoch` (cached for the current one). */
  order(epoch: number): Uint32Array {
    if (this.permEpoch !== epoch || this.perm === null) {
      this.perm = this.shuffle ? epochPermutation(this.numExamples, this.seed, epoch) : Uint32Array.from({ length: this.numExamples }, (_, i) => i);
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  /** The next batch; moves the cursor past it (to the next epoch after an epoch's last batch). */
  next(): DataBatch {
    const { epoch, index } = this.cur;
    const order = this.order(epoch);
    const end = Math.min(index + this.batchSize, this.numExamples);
    const batch: DataBatch = { epoch, batchInEpoch: index / this.batchSize, indices: order.slice(index, end) };
    const nextIndex = end;
    const epochEnds = this.dropLast ? nextIndex + this.batchSize > this.numExamples : nextIndex >= this.numExamples;
    this.cur = epochEnds ? { epoch: epoch + 1, index: 0 } : { epoch, index: nextIndex };
    return batch;
  }

  /** Fractional epoch after `batch`, as the HF Trainer logs it: epoch + (batch + 1) / batchesPerEpoch. */
  epochProgress(batch: Pick<DataBatch, 'epoch' | 'batchInEpoch'>): number {
    return batch.epoch + (batch.batchInEpoch + 1) / this.batchesPerEpoch;
  }

  /** Plain-JSON state for a checkpoint. */
  state(): DataOrderState {
    return {
      version: 1,
      numExamples: this.numExamples,
      batchSize: this.batchSize,
      seed: this.seed,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
      epoch: this.cur.epoch,
      index: this.cur.index,
    };
  }

  /**
   * A DataOrder positioned where `state` was saved. Refuses a state saved with another dataset
   * size, batch size, seed or drop/shuffle setting: the remaining batches would silently differ.
   * `expect` gives the current run's settings to compare against (defaults: the state's own).
   */
  static restore(state: unknown, expect?: DataOrderOptions): DataOrder {
    const s = state as Partial<DataOrderState> | null;
    const bad = (why: string): never => {
      throw new Error(`cannot resume the data order: ${why} (state: ${JSON.stringify(state)})`);
    };
    if (typeof s !== 'object' || s === null || s.version !== 1) bad('not a version-1 data-order state');
    const st = s as DataOrderState;
    for (const k of ['numExamples', 'batchSize', 'seed', 'epoch', 'index'] as const) {
      if (!Number.isSafeInteger(st[k]) || st[k] < 0) bad(`${k} is not a non-negative integer`);
    }
    if (typeof st.shuffle !== 'boolean' || typeof st.dropLast !== 'boolean') bad('shuffle / dropLast are not booleans');
    if (expect) {
      const want = { numExamples: expect.numExamples, batchSize: expect.batchSize, seed: expect.seed, shuffle: expect.shuffle ?? true, dropLast: expect.dropLast ?? true };
      for (const [k, v] of Object.entries(want)) {
        const got = st[k as keyof typeof want];
        if (got !== v) bad(`it was saved with ${k} = ${String(got)}, this run has ${String(v)}`);
      }
    }
    const order = new DataOrder(st);
    const span = order.dropLast ? order.batchesPerEpoch * order.batchSize : order.numExamples;
    if (st.index % st.batchSize !== 0 || st.index >= span) bad(`index ${st.index} is not the start of a batch of this epoch`);
    order.cur = { epoch: st.epoch, index: st.index };
    return order;
  }
}
