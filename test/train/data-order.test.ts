// Data order: SplitMix64 against Vigna's published outputs and an independent Python port
// (the numbers below were printed by a separate Python implementation of the same definitions),
// per-epoch permutations, batching with and without drop_last, and exact resume from JSON.
import { describe, expect, it } from 'vitest';
import {
  DataOrder,
  SplitMix64,
  batchesPerEpoch,
  epochPermutation,
  epochState,
  totalTrainingSteps,
} from '../../src/train/data-order.js';

describe('SplitMix64', () => {
  it('seed 0 gives the reference sequence of splitmix64.c', () => {
    const r = new SplitMix64(0);
    expect([r.next(), r.next(), r.next()]).toEqual([0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn]);
  });
  it('seed 42 (Python port)', () => {
    const r = new SplitMix64(42);
    expect([r.next(), r.next()]).toEqual([0xbdd732262feb6e95n, 0x28efe333b266f103n]);
  });
  it('nextBelow: rejection sampling, values from the Python port', () => {
    const r = new SplitMix64(123);
    expect(Array.from({ length: 10 }, () => r.nextBelow(7))).toEqual([3, 5, 6, 1, 6, 0, 0, 6, 0, 2]);
    expect(() => r.nextBelow(0)).toThrow(/positive safe integer/);
  });
});

describe('epochPermutation', () => {
  it('epoch keys and permutations match the Python port', () => {
    expect(epochState(42, 0)).toBe(0xe7aa4228c9f2bc48n);
    expect(epochState(42, 1)).toBe(0x5f8aab69be389273n);
    expect([...epochPermutation(10, 42, 0)]).toEqual([8, 2, 5, 3, 7, 1, 0, 4, 6, 9]);
    expect([...epochPermutation(10, 42, 1)]).toEqual([2, 9, 3, 6, 0, 7, 4, 5, 1, 8]);
    expect([...epochPermutation(10, 7, 0)]).toEqual([8, 2, 3, 6, 1, 0, 7, 5, 4, 9]);
  });
  it('is a permutation, and differs by epoch', () => {
    const a = epochPermutation(1000, 42, 3);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect([...epochPermutation(1000, 42, 4)]).not.toEqual([...a]);
  });
  it('edge sizes', () => {
    expect([...epochPermutation(0, 1, 0)]).toEqual([]);
    expect([...epochPermutation(1, 1, 0)]).toEqual([0]);
  });
});

describe('DataOrder', () => {
  it('batches of the epoch permutation, drop_last by default', () => {
    // n = 10, b = 4: floor(10/4) = 2 batches per epoch; prompts perm[8], perm[9] are dropped
    const d = new DataOrder({ numExamples: 10, batchSize: 4, seed: 42 });
    expect(d.batchesPerEpoch).toBe(2);
    const b0 = d.next();
    const b1 = d.next();
    const b2 = d.next();
    expect(b0).toEqual({ epoch: 0, batchInEpoch: 0, indices: Uint32Array.of(8, 2, 5, 3) });
    expect(b1).toEqual({ epoch: 0, batchInEpoch: 1, indices: Uint32Array.of(7, 1, 0, 4) });
    expect(b2).toEqual({ epoch: 1, batchInEpoch: 0, indices: Uint32Array.of(2, 9, 3, 6) });
    expect(d.epochProgress(b1)).toBe(1);
    expect(d.epochProgress(b2)).toBe(1.5);
  });
  it('dropLast false: a short last batch', () => {
    const d = new DataOrder({ numExamples: 10, batchSize: 4, seed: 42, dropLast: false });
    expect(d.batchesPerEpoch).toBe(3);
    d.next();
    d.next();
    expect(d.next().indices).toEqual(Uint32Array.of(6, 9));
    expect(d.cursor).toEqual({ epoch: 1, index: 0 });
  });
  it('shuffle false visits rows in order', () => {
    const d = new DataOrder({ numExamples: 5, batchSize: 2, seed: 0, shuffle: false });
    expect([...d.next().indices, ...d.next().indices, ...d.next().indices]).toEqual([0, 1, 2, 3, 0, 1]);
  });
  it('resumes exactly from a JSON round trip of its state', () => {
    const opts = { numExamples: 23, batchSize: 3, seed: 9 };
    const straight = new DataOrder(opts);
    const all = Array.from({ length: 40 }, () => [...straight.next().indices]);
    const first = new DataOrder(opts);
    for (let i = 0; i < 17; i++) first.next();
    // 23 / 3 -> 7 batches per epoch; 17 = 2 * 7 + 3 batches done -> epoch 2, position 3 * 3 = 9
    const saved = JSON.parse(JSON.stringify(first.state()));
    expect(saved).toEqual({ version: 1, numExamples: 23, batchSize: 3, seed: 9, shuffle: true, dropLast: true, epoch: 2, index: 9 });
    const resumed = DataOrder.restore(saved, opts);
    const rest = Array.from({ length: 23 }, () => [...resumed.next().indices]);
    expect(rest).toEqual(all.slice(17));
  });
  it('refuses a state from another run or a corrupt one', () => {
    const s = new DataOrder({ numExamples: 10, batchSize: 2, seed: 1 }).state();
    expect(() => DataOrder.restore(s, { numExamples: 11, batchSize: 2, seed: 1 })).toThrow(/numExamples = 10, this run has 11/);
    expect(() => DataOrder.restore(s, { numExamples: 10, batchSize: 2, seed: 2 })).toThrow(/seed = 1, this run has 2/);
    expect(() => DataOrder.restore({ ...s, index: 3 })).toThrow(/index 3 is not the start of a batch/);
    expect(() => DataOrder.restore({ ...s, version: 2 })).toThrow(/not a version-1/);
    expect(() => DataOrder.restore({ ...s, epoch: -1 })).toThrow(/epoch is not a non-negative integer/);
  });
  it('too few examples for one batch with drop_last', () => {
    expect(() => new DataOrder({ numExamples: 3, batchSize: 4, seed: 0 })).toThrow(/no full batch of 4/);
  });
  it('step counts', () => {
    expect(batchesPerEpoch(2386, 4)).toBe(596);
    expect(batchesPerEpoch(2386, 4, false)).toBe(597);
    expect(totalTrainingSteps({ numExamples: 2386, batchSize: 4, epochs: 3 })).toBe(1788);
    expect(totalTrainingSteps({ numExamples: 2386, batchSize: 4, epochs: 3, maxSteps: 50 })).toBe(50);
    expect(totalTrainingSteps({ numExamples: 2386, batchSize: 4, epochs: 3, maxSteps: -1 })).toBe(1788);
  });
});
