/**
 * Classification metrics of an evaluation run, from gold and predicted label indices.
 *
 * pred[i] = -1 marks an invalid answer (no parsable `<answer>` or not a known label). It counts as
 * wrong for accuracy and as a false negative of the gold class, and as a false positive of no
 * class (it has its own column in the confusion matrix).
 *
 * Per class c, with tp, fp, fn counted over the K known classes:
 *   precision = tp / (tp + fp)         0 when tp + fp = 0
 *   recall    = tp / (tp + fn)         0 when tp + fn = 0 (support 0)
 *   f1        = 2 tp / (2 tp + fp + fn) 0 when that denominator is 0
 * the zero_division=0 convention of scikit-learn's precision_recall_fscore_support (its F1 is the
 * same 2tp / (2tp + fp + fn) form). macro_f1 is the unweighted mean of f1 over all K classes, as
 * sklearn's f1_score(y_true, y_pred, labels=range(K), average='macro', zero_division=0): the
 * invalid marker is not a class, and a class absent from both gold and predictions counts with
 * f1 = 0 (sklearn does the same when labels are given explicitly).
 */

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Gold examples of this class. */
  support: number;
}

export interface EvalMetrics {
  /** Examples evaluated. */
  n: number;
  /** Correct / n (invalid answers are wrong); 0 when n = 0. */
  accuracy: number;
  /** Mean per-class F1 over the K classes (see the file comment). */
  macro_f1: number;
  /** Invalid answers / n. */
  invalid_rate: number;
  /** Per class, in label-index order. */
  per_class: ClassMetrics[];
  /**
   * K rows (gold class) x K + 1 columns (predicted class, then "invalid"): counts.
   * confusion[g][p] = examples of gold class g predicted as p; confusion[g][K] = invalid ones.
   */
  confusion: number[][];
  /** Mean completion length in tokens; null when no lengths were given. */
  mean_output_length: number | null;
}

export interface EvalInput {
  /** Gold label index of each example, in [0, numClasses). */
  gold: ArrayLike<number>;
  /** Predicted label index, or -1 for an invalid answer. */
  pred: ArrayLike<number>;
  /** K, the number of classes. */
  numClasses: number;
  /** Completion length (tokens) of each example, for mean_output_length. */
  outputLengths?: ArrayLike<number>;
}

/** Index of the invalid column in a confusion matrix row (= numClasses). */
export const INVALID_PREDICTION = -1;

export function classificationMetrics(input: EvalInput): EvalMetrics {
  const { gold, pred, numClasses: K } = input;
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`numClasses must be a positive integer, got ${K}`);
  if (gold.length !== pred.length) throw new RangeError(`gold has ${gold.length} labels but pred has ${pred.length}`);
  const n = gold.length;
  const confusion = Array.from({ length: K }, () => new Array<number>(K + 1).fill(0));
  let correct = 0;
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const g = gold[i]!;
    const p = pred[i]!;
    if (!Number.isInteger(g) || g < 0 || g >= K) throw new RangeError(`gold[${i}] = ${g} is not a class index in [0, ${K})`);
    if (!Number.isInteger(p) || p < -1 || p >= K) throw new RangeError(`pred[${i}] = ${p} is not a class index in [0, ${K}) or -1 (invalid)`);
    const row = confusion[g]!;
    if (p === INVALID_PREDICTION) {
      invalid++;
      row[K]!++;
    } else {
      row[p]!++;
      if (p === g) correct++;
    }
  }
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < K; c++) {
    const tp = confusion[c]![c]!;
    let predicted = 0; // tp + fp: column sum over gold rows
    for (let g = 0; g < K; g++) predicted += confusion[g]![c]!;
    let support = 0; // tp + fn: row sum including invalid
    for (let p = 0; p <= K; p++) support += confusion[c]![p]!;
    const fp = predicted - tp;
    const fn = support - tp;
    perClass.push({
      precision: predicted === 0 ? 0 : tp / predicted,
      recall: support === 0 ? 0 : tp / support,
      f1: 2 * tp + fp + fn === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn),
      support,
    });
  }
  let meanLength: number | null = null;
  if (input.outputLengths !== undefined) {
    const L = input.outputLengths;
    if (L.length !== n) throw new RangeError(`outputLengths has ${L.length} entries for ${n} examples`);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const l = L[i]!;
      if (!Number.isFinite(l) || l < 0) throw new RangeError(`outputLengths[${i}] = ${l} is not a length >= 0`);
      sum += l;
    }
    meanLength = n === 0 ? 0 : sum / n;
  }
  return {
    n,
    accuracy: n === 0 ? 0 : correct / n,
    macro_f1: perClass.reduce((s, c) => s + c.f1, 0) / K,
    invalid_rate: n === 0 ? 0 : invalid / n,
    per_class: perClass,
    confusion,
    mean_output_length: meanLength,
  };
}

/**
 * A plain-text report: the headline numbers, a per-class table and the confusion matrix.
 * `labels` names the classes (length numClasses).
 */
export function formatEvalReport(m: EvalMetrics, labels: readonly string[]): string {
  const K = m.per_class.length;
  if (labels.length !== K) throw new RangeError(`formatEvalReport: ${labels.length} labels for ${K} classes`);
  const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
  const f3 = (v: number): string => v.toFixed(3);
  const lines: string[] = [];
  lines.push(`examples ${m.n}  accuracy ${pct(m.accuracy)}  macro-F1 ${f3(m.macro_f1)}  invalid ${pct(m.invalid_rate)}` + (m.mean_output_length === null ? '' : `  mean length ${m.mean_output_length.toFixed(1)} tokens`));
  lines.push('');
  const w = Math.max(5, ...labels.map((l) => l.length), 'invalid'.length);
  const col = (s: string, width = 9): string => s.padStart(width);
  lines.push(`${'class'.padEnd(w)}${col('precision', 10)}${col('recall')}${col('f1')}${col('support')}`);
  m.per_class.forEach((c, i) => {
    lines.push(`${labels[i]!.padEnd(w)}${col(f3(c.precision), 10)}${col(f3(c.recall))}${col(f3(c.f1))}${col(String(c.support))}`);
  });
  lines.push('');
  const cw = Math.max('invalid'.length, ...labels.map((l) => l.length)) + 1;
  lines.push(`${'gold \\ pred'.padEnd(Math.max(w, 11))}${[...labels, 'invalid'].map((l) => l.padStart(cw)).join('')}`);
  m.confusion.forEach((row, g) => {
    lines.push(`${labels[g]!.padEnd(Math.max(w, 11))}${row.map((v) => String(v).padStart(cw)).join('')}`);
  });
  return lines.join('\n');
}
