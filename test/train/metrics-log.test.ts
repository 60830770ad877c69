// Metrics JSONL (append, resume truncation, torn lines) and the progress reporter on a fake TTY
// and a fake pipe.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MetricsLog,
  ProgressReporter,
  formatDuration,
  formatMetricValue,
  formatRecord,
  parseMetricsLog,
  readMetricsLog,
  type ProgressStream,
} from '../../src/train/metrics-log.js';

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'rrec-metrics-test-'));
  made.push(d);
  return d;
}

describe('JSONL records', () => {
  it('step and epoch first, undefined dropped, non-finite as null', () => {
    expect(formatRecord({ reward: 0.5, step: 3, epoch: 0.25, kl: Number.NaN, x: undefined, 'rewards/format/mean': 1 })).toBe(
      '{"step":3,"epoch":0.25,"reward":0.5,"kl":null,"rewards/format/mean":1}\n',
    );
    expect(() => formatRecord({ step: 1.5, epoch: 0 })).toThrow(/step must be a non-negative integer, got 1.5/);
    expect(() => formatRecord({ step: 1, epoch: Number.NaN })).toThrow(/epoch must be a finite number/);
  });
  it('a torn last line is ignored, a bad middle line is an error with its line number', () => {
    expect(parseMetricsLog('{"step":1,"epoch":0.1}\n{"step":2,"ep')).toEqual([{ step: 1, epoch: 0.1 }]);
    expect(() => parseMetricsLog('{"step":1,"epoch":0.1}\n{oops\n{"step":3,"epoch":0.3}\n', 'm.jsonl')).toThrow(/^m\.jsonl:2: not valid JSON/);
  });
  it('appends one line per step, written through at once', async () => {
    const file = path.join(await tmp(), 'run', 'metrics.jsonl');
    const log = await MetricsLog.open(file);
    await log.append({ step: 1, epoch: 0.5, loss: 0.1 });
    expect(await readFile(file, 'utf8')).toBe('{"step":1,"epoch":0.5,"loss":0.1}\n'); // before close
    await log.append({ step: 2, epoch: 1, loss: 0.2 });
    await log.close();
    await expect(log.append({ step: 3, epoch: 1.5 })).rejects.toThrow(/is closed/);
    expect(await readMetricsLog(file)).toEqual([{ step: 1, epoch: 0.5, loss: 0.1 }, { step: 2, epoch: 1, loss: 0.2 }]);
    const again = await MetricsLog.open(file, { sync: true });
    await again.append({ step: 3, epoch: 1.5 });
    await again.close();
    expect((await readMetricsLog(file)).map((r) => r.step)).toEqual([1, 2, 3]);
  });
  it('resume: records after the checkpoint step and a torn line are dropped', async () => {
    const file = path.join(await tmp(), 'metrics.jsonl');
    await writeFile(file, '{"step":1,"epoch":0.1}\n{"step":2,"epoch":0.2}\n{"step":3,"epoch":0.3}\n{"step":4,"ep');
    const log = await MetricsLog.open(file, { resumeAfterStep: 2 });
    await log.append({ step: 3, epoch: 0.3, loss: 1 });
    await log.close();
    expect(await readFile(file, 'utf8')).toBe('{"step":1,"epoch":0.1}\n{"step":2,"epoch":0.2}\n{"step":3,"epoch":0.3,"loss":1}\n');
    expect(await readMetricsLog(path.join(path.dirname(file), 'none.jsonl'))).toEqual([]);
  });
});

class FakeStream implements ProgressStream {
  out = '';
  constructor(readonly isTTY: boolean, readonly columns = 100) {}
  write(text: string): boolean {
    this.out += text;
    return true;
  }
}

describe('ProgressReporter', () => {
  it('plain lines every logging_steps and at the last step', () => {
    const s = new FakeStream(false);
    let t = 0;
    const p = new ProgressReporter({ totalSteps: 5, loggingSteps: 2, stream: s, now: () => t });
    p.start(0);
    for (let step = 1; step <= 5; step++) {
      t += 1500; // 1.5 s per step
      p.update({ step, epoch: step / 5, loss: 0.0123456, reward: 0.75, learning_rate: 5e-7, other: 9 });
    }
    p.finish();
    expect(s.out.split('\n')).toEqual([
      'train 2/5 40% eta 5s reward=0.75 loss=0.01235 lr=5.00e-7 epoch 0.40 1.50 s/step',
      'train 4/5 80% eta 2s reward=0.75 loss=0.01235 lr=5.00e-7 epoch 0.80 1.50 s/step',
      'train 5/5 100% eta 0s reward=0.75 loss=0.01235 lr=5.00e-7 epoch 1.00 1.50 s/step',
      '',
    ]);
    expect(s.out).not.toContain('\r');
  });
  it('a redrawn single line on a TTY; messages clear it; a resumed run times only its own steps', () => {
    const s = new FakeStream(true, 200);
    let t = 0;
    const p = new ProgressReporter({ totalSteps: 10, stream: s, now: () => t, keys: ['reward'] });
    p.start(4);
    t = 2000;
    p.update({ step: 5, epoch: 0.5, reward: 1 });
    p.message('saved checkpoint-5');
    p.finish();
    expect(s.out).toBe(
      '\rtrain 4/10 [########............] 40%\x1b[K' +
        '\rtrain 5/10 [##########..........] 50% eta 10s reward=1 2.00 s/step\x1b[K' +
        '\r\x1b[Ksaved checkpoint-5\n',
    );
  });
  it('what matters first, fitted to the terminal width: the step and the ETA always, then the metrics that fit', () => {
    const record = { step: 20, epoch: 0.27, loss: 0.0123, reward: 0.85, kl: 0.0012, grad_norm: 0.31, learning_rate: 5e-7, 'completions/mean_length': 42.5 };
    const lineAt = (columns: number, tty: boolean) => {
      const s = new FakeStream(tty, columns);
      let t = 0;
      const p = new ProgressReporter({ totalSteps: 300, stream: s, now: () => t });
      p.start(0);
      t = 64_000; // 3.2 s per step
      p.update(record);
      return s.out.slice(s.out.lastIndexOf('\r') + 1).replace(/\x1b\[K$/, '').replace(/\n$/, '');
    };
    expect(lineAt(200, false)).toBe('train 20/300 6% eta 14m56s reward=0.85 kl=0.0012 loss=0.0123 len=42.5 lr=5.00e-7 gnorm=0.31 epoch 0.27 3.20 s/step');
    expect(lineAt(80, false)).toBe('train 20/300 6% eta 14m56s reward=0.85 kl=0.0012 loss=0.0123 len=42.5');
    expect(lineAt(80, true)).toBe('train 20/300 [#...................] 6% eta 14m56s reward=0.85 kl=0.0012');
    expect(lineAt(50, true)).toBe('train 20/300 [#...................] 6% eta 14m56s');
    for (const c of [40, 50, 80, 120]) for (const tty of [true, false]) expect(lineAt(c, tty).length).toBeLessThanOrEqual(c - 1);
  });
  it('SFT and evaluation use it too: their own label and unit', () => {
    const s = new FakeStream(false, 100);
    let t = 0;
    const p = new ProgressReporter({ totalSteps: 358, loggingSteps: 32, stream: s, now: () => t, label: 'eval valid', unit: 'prompt', keys: [] });
    p.start(0);
    t = 3200;
    p.update({ step: 32 });
    t = 35_800;
    p.update({ step: 358 });
    expect(s.out).toBe('eval valid 32/358 8% eta 33s 0.10 s/prompt\neval valid 358/358 100% eta 0s 0.10 s/prompt\n');
  });
  it('number and duration formats', () => {
    expect([0, 1, 0.123456, 12345.6, 123456, 5e-7, -2.5e-4].map(formatMetricValue)).toEqual(['0', '1', '0.1235', '12350', '1.23e+5', '5.00e-7', '-2.50e-4']);
    expect([0, 59.4, 75, 3725].map(formatDuration)).toEqual(['0s', '59s', '1m15s', '1h02m05s']);
  });
});
