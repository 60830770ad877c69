// Evaluation metrics against values worked out by hand.
import { describe, expect, it } from 'vitest';
import { classificationMetrics, formatEvalReport } from '../../src/eval/metrics.js';

const LABELS = ['sad', 'joyful', 'angry', 'afraid'];

// Ten examples, two invalid answers (-1):
//   i     0  1  2  3  4  5  6  7  8  9
//   gold  0  0  0  1  1  2  2  2  3  3
//   pred  0  1 -1  1  1  2  0 -1  3  2
// Confusion (rows gold; cols sad joyful angry afraid invalid):
//   sad    1 1 0 0 1 | joyful 0 2 0 0 0 | angry 1 0 1 0 1 | afraid 0 0 1 1 0
// correct = 5 (i = 0, 3, 4, 5, 8) -> accuracy 0.5; invalid 2/10 = 0.2
// per class (tp, fp, fn):           precision  recall  f1 = 2tp / (2tp + fp + fn)
//   sad    (1, 1, 2)  [fp: i=6]      1/2        1/3     2/5 = 0.4
//   joyful (2, 1, 0)  [fp: i=1]      2/3        1       4/5 = 0.8
//   angry  (1, 1, 2)  [fp: i=9]      1/2        1/3     2/5 = 0.4
//   afraid (1, 0, 1)                 1          1/2     2/3
// macro-F1 = (0.4 + 0.8 + 0.4 + 2/3) / 4 = 0.5666667
// The same as sklearn's f1_score(gold, pred', labels=[0, 1, 2, 3], average='macro', zero_division=0)
// with -1 mapped to any label outside [0, 4): tp/fp/fn of the four classes are unchanged.
const GOLD = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3];
const PRED = [0, 1, -1, 1, 1, 2, 0, -1, 3, 2];

describe('classificationMetrics', () => {
  const m = classificationMetrics({ gold: GOLD, pred: Int32Array.from(PRED), numClasses: 4, outputLengths: [10, 20, 30, 40, 50, 60, 70, 80, 90, 300] });
  it('accuracy, invalid rate, mean length', () => {
    expect(m.n).toBe(10);
    expect(m.accuracy).toBe(0.5);
    expect(m.invalid_rate).toBe(0.2);
    expect(m.mean_output_length).toBe(75); // (10 + ... + 90 + 300) / 10 = 750 / 10
  });
  it('confusion matrix with an invalid column', () => {
    expect(m.confusion).toEqual([
      [1, 1, 0, 0, 1],
      [0, 2, 0, 0, 0],
      [1, 0, 1, 0, 1],
      [0, 0, 1, 1, 0],
    ]);
  });
  it('per-class precision, recall, f1, support', () => {
    const want = [
      [1 / 2, 1 / 3, 0.4, 3],
      [2 / 3, 1, 0.8, 2],
      [1 / 2, 1 / 3, 0.4, 3],
      [1, 1 / 2, 2 / 3, 2],
    ];
    m.per_class.forEach((c, i) => {
      const [p, r, f, s] = want[i]!;
      expect(c.precision).toBeCloseTo(p!, 12);
      expect(c.recall).toBeCloseTo(r!, 12);
      expect(c.f1).toBeCloseTo(f!, 12);
      expect(c.support).toBe(s);
    });
  });
  it('macro-F1', () => {
    expect(m.macro_f1).toBeCloseTo((0.4 + 0.8 + 0.4 + 2 / 3) / 4, 12);
    expect(m.macro_f1).toBeCloseTo(0.5666667, 6);
  });
  it('a class absent from gold and predictions counts with f1 = 0 (zero_division = 0)', () => {
    // K = 3, gold [0, 0, 1], pred [0, 1, 1]: class 0 (1, 0, 1) f1 2/3; class 1 (1, 1, 0) f1 2/3; class 2 none -> 0
    const r = classificationMetrics({ gold: [0, 0, 1], pred: [0, 1, 1], numClasses: 3 });
    expect(r.per_class[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.macro_f1).toBeCloseTo(4 / 9, 12);
    expect(r.mean_output_length).toBeNull();
  });
  it('all invalid: accuracy 0, precision 0 by zero_division', () => {
    const r = classificationMetrics({ gold: [0, 1], pred: [-1, -1], numClasses: 2 });
    expect(r).toMatchObject({ accuracy: 0, macro_f1: 0, invalid_rate: 1 });
    expect(r.per_class.map((c) => c.precision)).toEqual([0, 0]);
  });
  it('empty input', () => {
    expect(classificationMetrics({ gold: [], pred: [], numClasses: 2, outputLengths: [] })).toMatchObject({ n: 0, accuracy: 0, invalid_rate: 0, mean_output_length: 0 });
  });
  it('errors name the index and the value', () => {
    expect(() => classificationMetrics({ gold: [0, 4], pred: [0, 0], numClasses: 4 })).toThrow('gold[1] = 4 is not a class index in [0, 4)');
    expect(() => classificationMetrics({ gold: [0], pred: [-2], numClasses: 4 })).toThrow('pred[0] = -2 is not a class index in [0, 4) or -1 (invalid)');
    expect(() => classificationMetrics({ gold: [0], pred: [0, 1], numClasses: 4 })).toThrow('gold has 1 labels but pred has 2');
    expect(() => classificationMetrics({ gold: [0], pred: [0], numClasses: 4, outputLengths: [-1] })).toThrow('outputLengths[0] = -1');
    expect(() => classificationMetrics({ gold: [], pred: [], numClasses: 0 })).toThrow(/numClasses/);
  });
});

describe('formatEvalReport', () => {
  it('headline, per-class table and confusion matrix', () => {
    const m = classificationMetrics({ gold: GOLD, pred: PRED, numClasses: 4, outputLengths: new Array(10).fill(12) });
    const text = formatEvalReport(m, LABELS);
    expect(text).toBe(
      [
        'examples 10  accuracy 50.0%  macro-F1 0.567  invalid 20.0%  mean length 12.0 tokens',
        '',
        'class   precision   recall       f1  support',
        'sad         0.500    0.333    0.400        3',
        'joyful      0.667    1.000    0.800        2',
        'angry       0.500    0.333    0.400        3',
        'afraid      1.000    0.500    0.667        2',
        '',
        'gold \\ pred     sad  joyful   angry  afraid invalid',
        'sad               1       1       0       0       1',
        'joyful            0       2       0       0       0',
        'angry             1       0       1       0       1',
        'afraid            0       0       1       1       0',
      ].join('\n'),
    );
    expect(() => formatEvalReport(m, ['a'])).toThrow(/1 labels for 4 classes/);
  });
});
