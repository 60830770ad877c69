// `rrec-emotion infer` (runInfer called directly) on a model that answers in the format: a label
// for every situation from --text, --input and stdin; the label is the parse of the printed
// completion, and greedy labels equal `rrec-emotion eval`'s predictions for the same texts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliUsageError } from '../../src/cli/args.js';
import { runEval } from '../../src/cli/eval.js';
import { runInfer } from '../../src/cli/infer.js';
import { parseAnswer } from '../../src/reward/index.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const LABELS = ['sad', 'joyful', 'angry', 'afraid'];
const root = mkdtempSync(join(tmpdir(), 'rrec-cli-infer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Line { index: number; text: string; completion: string; label: string | null; invalid_reason: string | null; tokens: number }

let model: string;
beforeAll(async () => {
  model = await writeAnswerModel(join(root, 'answer-model'), LABELS);
});

async function infer(args: string[], stdin?: Readable & { isTTY?: boolean }) {
  const out: string[] = [];
  const code = await runInfer([`--model=${model}`, '--max_new_tokens=12', ...args], { out: (t) => out.push(t), ...(stdin ? { stdin } : {}) });
  return { code, out };
}

describe('rrec-emotion infer', () => {
  it('--device names an unavailable device and why; --device=cpu runs', async () => {
    await expect(infer(['--device=tpu', '--text=my dog died'])).rejects.toThrow(/device "tpu" is not available: no backend named "tpu"/);
    const { code, out } = await infer(['--device=cpu', '--text=my dog died']);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/label: /);
  });

  it('prints the completion and its label for each --text and each line of --input', async () => {
    const file = join(root, 'situations.txt');
    writeFileSync(file, 'my cat ran away and never came back\n\n  i got the job i wanted  \nsomeone keyed my car\n');
    const texts = ['i won the lottery today', 'a stranger followed me home', 'my cat ran away and never came back', 'i got the job i wanted', 'someone keyed my car'];
    const { code, out } = await infer([`--text=${texts[0]}`, `--text=${texts[1]}`, `--input=${file}`]);
    expect(code).toBe(0);
    const text = out.join('\n');
    const blocks = [...text.matchAll(/^\[(\d+)\] (.*)\ncompletion: (.*)\nlabel: (.*)$/gm)];
    expect(blocks.map((b) => [Number(b[1]), b[2]])).toEqual(texts.map((t, i) => [i + 1, t]));
    for (const b of blocks) {
      const parsed = parseAnswer(b[3]!, LABELS);
      expect(parsed.ok).toBe(true);
      expect(b[4]).toBe(parsed.ok ? parsed.label : '');
      expect(LABELS).toContain(b[4]);
    }
    expect(text).toContain(`model    ${model}`);
  });

  it('greedy labels equal the predictions of `eval` for the same texts; stdin and --json', async () => {
    const predictions = join(root, 'predictions.jsonl');
    await runEval([`--model=${model}`, `--data_dir=${sample}`, '--limit=6', '--max_new_tokens=12', `--predictions=${predictions}`], { out: () => {} });
    const evalLines = readFileSync(predictions, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { text: string; pred_label: string | null; completion: string });
    const stdin = Readable.from([evalLines.map((l) => l.text).join('\n') + '\n']);
    const { out } = await infer(['--json'], stdin);
    const lines = out.map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => l.text)).toEqual(evalLines.map((l) => l.text));
    expect(lines.map((l) => l.label)).toEqual(evalLines.map((l) => l.pred_label));
    expect(lines.map((l) => l.completion)).toEqual(evalLines.map((l) => l.completion));
    expect(lines.every((l) => l.invalid_reason === null && l.tokens > 0)).toBe(true);
  });

  it('--stream writes each completion as it is generated, in pieces, the same text and label as without it', async () => {
    const texts = ['i won the lottery today', 'someone keyed my car'];
    const plain = await infer(texts.map((t) => `--text=${t}`));
    const pieces: string[] = [];
    const out: string[] = [];
    const code = await runInfer([`--model=${model}`, '--max_new_tokens=12', '--stream', ...texts.map((t) => `--text=${t}`)], { out: (t) => out.push(`${t}\n`), write: (t) => (pieces.push(t), out.push(t)) });
    expect(code).toBe(0);
    // more than one write per completion (the prefix, then the tokens as they come, then the line end)
    expect(pieces.length).toBeGreaterThan(2 * texts.length * 3);
    const streamed = [...out.join('').matchAll(/^\[(\d+)\] (.*)\ncompletion: (.*)\nlabel: (.*)$/gm)].map((b) => b.slice(1, 5));
    const blocks = [...plain.out.join('\n').matchAll(/^\[(\d+)\] (.*)\ncompletion: (.*)\nlabel: (.*)$/gm)].map((b) => b.slice(1, 5));
    expect(streamed).toHaveLength(2);
    expect(streamed).toEqual(blocks);
    await expect(runInfer([`--model=${model}`, '--stream', '--json', '--text=x'], { out: () => {} })).rejects.toThrow(/--stream .* does not combine with --json/);
  });

  it('--temperature > 0 samples: the same --sampling_seed gives the same output', async () => {
    const args = ['--json', '--temperature=1', '--sampling_seed=7', '--text=my dog died', '--text=the party was wonderful', '--text=the storm scared me'];
    const a = (await infer(args)).out;
    const b = (await infer(args)).out;
    expect(a).toEqual(b);
    for (const l of a.map((x) => JSON.parse(x) as Line)) expect(l.label === null || LABELS.includes(l.label)).toBe(true);
  });

  it('--help, and bad input refused naming the flag and the value', async () => {
    const out: string[] = [];
    expect(await runInfer(['--help'], { out: (t) => out.push(t) })).toBe(0);
    for (const f of ['--text', '--input', '--temperature', '--max_new_tokens', '--checkpoint', '--adapter', '--model']) expect(out.join('\n')).toContain(f);
    const refuse = async (args: string[], message: string | RegExp, stdin?: Readable & { isTTY?: boolean }) => {
      const e = await runInfer(args, { out: () => {}, ...(stdin ? { stdin } : {}) }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(CliUsageError);
      expect((e as Error).message).toMatch(message);
    };
    await refuse(['--temperature=-1', '--text=x'], '--temperature: expected a number >= 0, got "-1"');
    await refuse(['--temperature=hot', '--text=x'], '--temperature: expected a number, got "hot"');
    await refuse(['--batch_size=0', '--text=x'], '--batch_size: expected an integer >= 1, got "0"');
    await refuse(['--text=  '], '--text: expected a non-empty situation, got "  " (occurrence 1)');
    await refuse([`--input=${join(root, 'missing.txt')}`], `--input: cannot read "${join(root, 'missing.txt')}" (ENOENT)`);
    const tty = Object.assign(Readable.from([]), { isTTY: true });
    await refuse([], 'no situation given: pass --text="...", --input=FILE, or pipe lines on stdin', tty);
    await refuse([], 'no situation given: stdin was empty', Readable.from(['\n\n']));
  });
});
