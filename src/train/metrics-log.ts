/**
 * Training metrics out of the process: a JSONL log (one object per optimizer step, appended and
 * written through at once) and a progress reporter (a single redrawn line on a terminal, plain
 * lines every logging_steps otherwise, e.g. under CI or `| tee`).
 *
 * Each JSONL line is `{"step": k, "epoch": e, ...metrics}` with step = global optimizer step
 * (1-based: the record written after the k-th update) and epoch fractional, as the HF Trainer's
 * log_history. Metric names are TRL GRPOTrainer's where one exists (see StepMetrics). Non-finite
 * numbers are written as null (JSON has no NaN).
 *
 * Resuming: MetricsLog.open(file, { resumeAfterStep: k }) drops the records of steps > k (written
 * after the checkpoint the run resumes from) and a torn last line, so the log of a resumed run
 * reads like that of an uninterrupted one.
 */

import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Metric names of one step. TRL's names: loss, reward, reward_std, `rewards/<func>/mean`,
 * `rewards/<func>/std`, frac_reward_zero_std, `completions/mean_length`, `completions/max_length`,
 * `completions/clipped_ratio`, kl, entropy, `clip_ratio/region_mean`, grad_norm, learning_rate,
 * num_tokens. Ours (no TRL counterpart): `tokens_per_second/generate`, `tokens_per_second/train`,
 * `time/generate`, `time/score`, `time/train`, `time/step` (seconds).
 */
export interface StepMetrics {
  loss?: number;
  reward?: number;
  reward_std?: number;
  frac_reward_zero_std?: number;
  kl?: number;
  grad_norm?: number;
  learning_rate?: number;
  'completions/mean_length'?: number;
  'completions/max_length'?: number;
  'completions/clipped_ratio'?: number;
  'clip_ratio/region_mean'?: number;
  'tokens_per_second/generate'?: number;
  'tokens_per_second/train'?: number;
  'time/generate'?: number;
  'time/score'?: number;
  'time/train'?: number;
  'time/step'?: number;
  [name: string]: number | string | boolean | null | undefined;
}

/** One JSONL line. */
export type StepRecord = StepMetrics & {
  /** Global optimizer step (1-based). */
  step: number;
  /** Fractional epoch. */
  epoch: number;
};

function checkRecord(r: StepRecord): void {
  if (!Number.isSafeInteger(r.step) || r.step < 0) throw new RangeError(`metrics record: step must be a non-negative integer, got ${String(r.step)}`);
  if (typeof r.epoch !== 'number' || !Number.isFinite(r.epoch) || r.epoch < 0) throw new RangeError(`metrics record: epoch must be a finite number >= 0, got ${String(r.epoch)}`);
}

/** The JSON line for a record: step and epoch first, undefined dropped, non-finite numbers null. */
export function formatRecord(r: StepRecord): string {
  checkRecord(r);
  const { step, epoch, ...rest } = r;
  const obj: Record<string, unknown> = { step, epoch };
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    obj[k] = typeof v === 'number' && !Number.isFinite(v) ? null : v;
  }
  return `${JSON.stringify(obj)}\n`;
}

/** Parses JSONL text; a torn last line (no newline, not valid JSON) is ignored. */
export function parseMetricsLog(text: string, file = 'metrics log'): StepRecord[] {
  const lines = text.split('\n');
  const complete = text.endsWith('\n') || text === '' ? lines.slice(0, -1) : lines;
  const out: StepRecord[] = [];
  complete.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as StepRecord);
    } catch (e) {
      const last = i === complete.length - 1 && !text.endsWith('\n');
      if (last) return; // torn write of a crashed run
      throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`, { cause: e });
    }
  });
  return out;
}

/** Every record of a metrics file ([] when it does not exist). */
export async function readMetricsLog(file: string): Promise<StepRecord[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return parseMetricsLog(text, file);
}

export interface MetricsLogOptions {
  /** Keep only records with step <= this (the step of the checkpoint being resumed). */
  resumeAfterStep?: number;
  /** fsync after every line (default false: each line is written through to the OS at once). */
  sync?: boolean;
}

/** Appends one JSON line per step to a file. */
export class MetricsLog {
  private constructor(
    readonly file: string,
    private fh: FileHandle | null,
    private readonly sync: boolean,
  ) {}

  /** Opens (creating folders and the file) for appending; see MetricsLogOptions. */
  static async open(file: string, opts: MetricsLogOptions = {}): Promise<MetricsLog> {
    const abs = path.resolve(file);
    await mkdir(path.dirname(abs), { recursive: true });
    let text: string | null = null;
    try {
      text = await readFile(abs, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (text !== null && text !== '') {
      const records = parseMetricsLog(text, abs);
      const after = opts.resumeAfterStep;
      const kept = after === undefined ? records : records.filter((r) => typeof r.step !== 'number' || r.step <= after);
      const rewritten = kept.map(formatRecord).join('');
      if (rewritten !== text) {
        // Rewrite through a temporary file so a crash now cannot lose the kept records.
        const tmp = `${abs}.tmp-${process.pid}`;
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(rewritten);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, abs);
      }
    }
    return new MetricsLog(abs, await open(abs, 'a'), opts.sync ?? false);
  }

  /** Writes one record as a line (written through before the promise resolves). */
  async append(record: StepRecord): Promise<void> {
    if (this.fh === null) throw new Error(`metrics log ${this.file} is closed`);
    await this.fh.write(formatRecord(record));
    if (this.sync) await this.fh.datasync();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}

/** Where progress goes: process.stdout or a test double. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Steps of the whole run. */
  totalSteps: number;
  /** Plain mode: a line every this many steps (and at the last step). Default 1. */
  loggingSteps?: number;
  /** Default process.stdout. */
  stream?: ProgressStream;
  /** Override the stream's isTTY (a bar on a TTY, plain lines otherwise). */
  isTTY?: boolean;
  /** Monotonic clock in milliseconds (default performance.now). */
  now?: () => number;
  /** Metrics shown, in order (default DEFAULT_PROGRESS_KEYS); absent ones are skipped. */
  keys?: readonly string[];
  /** Word in front of the bar (default "train"). */
  label?: string;
  /** What one step is, for the rate (default "step": `2.10 s/step`). */
  unit?: string;
}

/** The metrics of a GRPO step's line, most wanted first (a narrow terminal drops the last ones). */
export const DEFAULT_PROGRESS_KEYS: readonly string[] = Object.freeze([
  'reward', 'kl', 'loss', 'completions/mean_length', 'learning_rate', 'grad_norm',
]);

/** Short names of metrics in a progress line. */
const SHORT_NAMES: Readonly<Record<string, string>> = { 'completions/mean_length': 'len', learning_rate: 'lr', grad_norm: 'gnorm' };

/** Short number: 4 significant digits, exponent form for very small or large magnitudes. */
export function formatMetricValue(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/** `75s` -> `1m15s`; `3725s` -> `1h02m05s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const p = (n: number): string => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${p(m)}m${p(r)}s`;
  if (m > 0) return `${m}m${p(r)}s`;
  return `${r}s`;
}

/** Progress of a run: a redrawn bar on a TTY, plain lines otherwise. */
export class ProgressReporter {
  readonly tty: boolean;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly total: number;
  private readonly every: number;
  private readonly keys: readonly string[];
  private readonly label: string;
  private readonly unit: string;
  private startStep = 0;
  private startTime: number;
  /** A bar is on screen (a message must clear it first). */
  private barShown = false;

  constructor(opts: ProgressOptions) {
    if (!Number.isInteger(opts.totalSteps) || opts.totalSteps < 0) throw new RangeError(`totalSteps must be an integer >= 0, got ${opts.totalSteps}`);
    this.stream = opts.stream ?? process.stdout;
    this.tty = opts.isTTY ?? this.stream.isTTY === true;
    this.now = opts.now ?? (() => performance.now());
    this.total = opts.totalSteps;
    this.every = Math.max(1, opts.loggingSteps ?? 1);
    this.keys = opts.keys ?? DEFAULT_PROGRESS_KEYS;
    this.label = opts.label ?? 'train';
    this.unit = opts.unit ?? 'step';
    this.startTime = this.now();
  }

  /** (Re)starts the clock at `step` completed steps (the resumed step; 0 for a fresh run). */
  start(step = 0): void {
    this.startStep = step;
    this.startTime = this.now();
    if (this.tty) this.draw(step, null);
  }

  /** Reports a finished step (SFT and evaluation progress have no epoch). */
  update(record: StepMetrics & { step: number; epoch?: number }): void {
    if (this.tty) this.draw(record.step, record);
    else if (record.step % this.every === 0 || record.step === this.total) this.stream.write(`${this.plainLine(record)}\n`);
  }

  /** A line of text (an eval result, a checkpoint saved) that does not garble the bar. */
  message(text: string): void {
    if (this.tty && this.barShown) {
      this.stream.write('\r\x1b[K');
      this.barShown = false;
    }
    this.stream.write(`${text}\n`);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.tty && this.barShown) this.stream.write('\n');
    this.barShown = false;
  }

  /** `eta 14m56s` and `3.20 s/step` ('' before the first step). */
  private timing(step: number): { eta: string; rate: string } {
    const done = step - this.startStep;
    if (done <= 0) return { eta: '', rate: '' };
    const perStep = (this.now() - this.startTime) / 1000 / done;
    return { eta: `eta ${formatDuration(perStep * Math.max(0, this.total - step))}`, rate: `${perStep.toFixed(perStep < 10 ? 2 : 1)} s/${this.unit}` };
  }

  private metricParts(record: StepMetrics | null): string[] {
    if (!record) return [];
    return this.keys.filter((k) => typeof record[k] === 'number').map((k) => `${SHORT_NAMES[k] ?? k}=${formatMetricValue(record[k])}`);
  }

  /** Width a line may take: the terminal's columns less one; plain lines to a file are not cut. */
  private width(): number {
    return this.stream.columns !== undefined ? Math.max(40, this.stream.columns - 1) : this.tty ? 79 : Number.POSITIVE_INFINITY;
  }

  /**
   * `head` then as many of `parts` as fit the width, in order (what matters first: the step, the
   * ETA, then the metrics by importance, the epoch and the rate last).
   */
  private fit(head: string, parts: readonly string[]): string {
    const width = this.width();
    let line = head;
    for (const p of parts) {
      if (p === '') continue;
      if (line.length + 1 + p.length > width) break;
      line += ` ${p}`;
    }
    return line.length > width ? `${line.slice(0, width - 1)}…` : line;
  }

  /** `train 20/300 6% eta 14m56s reward=0.85 kl=1.20e-3 loss=0.01 len=42 lr=5.00e-7 gnorm=0.3 epoch 0.27 3.20 s/step` */
  plainLine(record: StepMetrics & { step: number; epoch?: number }): string {
    const pct = this.total === 0 ? 100 : Math.floor((100 * record.step) / this.total);
    const t = this.timing(record.step);
    const epoch = typeof record.epoch === 'number' ? `epoch ${record.epoch.toFixed(2)}` : '';
    return this.fit(`${this.label} ${record.step}/${this.total} ${pct}%`, [t.eta, ...this.metricParts(record), epoch, t.rate]);
  }

  private draw(step: number, record: StepMetrics | null): void {
    const frac = this.total === 0 ? 1 : Math.min(1, step / this.total);
    const barWidth = 20;
    const filled = Math.round(frac * barWidth);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
    const t = this.timing(step);
    const line = this.fit(`${this.label} ${step}/${this.total} ${bar} ${Math.floor(frac * 100)}%`, [t.eta, ...this.metricParts(record), t.rate]);
    this.stream.write(`\r${line}\x1b[K`);
    this.barShown = true;
  }
}
