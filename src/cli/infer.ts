/**
 * `rrec-emotion infer`: the model's completion (its reasoning, then `<answer>label</answer>`) and
 * the parsed label for each situation given with `--text` (repeatable), `--input=FILE` (one per
 * line) or on stdin (one per line). Greedy by default (`--temperature=0`); a positive temperature
 * samples, seeded by --sampling_seed. For a RecPO run's weights (or --trainer=recpo) it also
 * prints the label RecPO decides: the highest similarity of the hidden state at `<answer>`.
 *
 * Exit codes: 0 done, 1 a model / I/O problem, 2 bad usage (flag named).
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { recpoEvalSettings, recpoEvaluate, RECPO_EVAL_FLAGS } from '../recpo/eval-settings.js';
import { parseAnswer } from '../reward/index.js';
import { checkGenerationLengths, checkTextBeforeTokenizing } from '../eval/lengths.js';
import { CliUsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { intAtLeast, noPositional, nonEmpty, numberAtLeast } from './flag-values.js';
import { describeModel, engineFor, loadModelFromFlags, maxNewTokens, MODEL_FLAGS, prompterFor, promptLabels } from './model-flags.js';

/** The labels of ED_easy_4, when neither --labels nor a run gives them. */
const DEFAULT_LABELS = ['sad', 'joyful', 'angry', 'afraid'];

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  text: { type: 'string', metavar: 'TEXT', help: 'a situation to classify', repeatable: true },
  input: { type: 'string', metavar: 'FILE', help: 'a file with one situation per line (blank lines skipped); "-" reads stdin' },
  temperature: { type: 'float', help: 'sampling temperature; 0: greedy', default: 0 },
  sampling_seed: { type: 'int', help: 'seed of the samples when temperature > 0', default: 0 },
  batch_size: { type: 'int', help: 'situations per generation batch', default: 32 },
  json: { type: 'boolean', help: 'print one JSON object per situation instead of text', default: false },
  stream: { type: 'boolean', help: 'print each completion as it is generated, one situation at a time (not with --json)', default: false },
  ...RECPO_EVAL_FLAGS,
};
FLAGS.labels = { ...FLAGS.labels!, help: `label names in label-id order, as the prompt lists them (default: the run's, else ${DEFAULT_LABELS.join(',')})` };

const USAGE = 'rrec-emotion infer [--model=NAME|DIR] [--checkpoint=DIR | --adapter=DIR] (--text=TEXT ... | --input=FILE | < FILE) [flags]';
const DESCRIPTION = [
  "Prints the model's completion (its reasoning, then <answer>label</answer>) and the parsed label",
  'for each situation. Situations come from --text (repeatable), --input=FILE or stdin, one per line.',
].join('\n');

export function inferHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, FLAGS);
}

export interface InferCliIO {
  out?: (text: string) => void;
  /** Where --stream writes text as it comes, without line ends (default process.stdout.write). */
  write?: (text: string) => void;
  /** Read when neither --text nor --input is given (default process.stdin when it is not a terminal). */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

const lines = (text: string): string[] => text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');

/** The situations: --text values, then --input's lines; stdin when neither is given. */
async function situations(texts: string[] | undefined, input: string | undefined, io: InferCliIO): Promise<string[]> {
  const out = (texts ?? []).map((t, i) => {
    if (t.trim() === '') throw new CliUsageError(`--text: expected a non-empty situation, got "${t}" (occurrence ${i + 1})`);
    return t.trim();
  });
  const stdin = io.stdin ?? process.stdin;
  if (input === '-') out.push(...lines(await readStream(stdin)));
  else if (input !== undefined) {
    let text: string;
    try {
      text = await readFile(resolve(input), 'utf8');
    } catch (e) {
      throw new CliUsageError(`--input: cannot read "${input}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const got = lines(text);
    if (got.length === 0) throw new CliUsageError(`--input: "${input}" holds no situation (every line is blank)`);
    out.push(...got);
  } else if (texts === undefined) {
    if (stdin.isTTY) throw new CliUsageError('no situation given: pass --text="...", --input=FILE, or pipe lines on stdin');
    out.push(...lines(await readStream(stdin)));
  }
  if (out.length === 0) throw new CliUsageError('no situation given: stdin was empty; pass --text="..." or --input=FILE');
  return out;
}

export async function runInfer(argv: string[], io: InferCliIO = {}): Promise<number> {
  const out = io.out ?? ((t: string) => console.log(t));
  if (argv.includes('--help') || argv.includes('-h')) {
    out(inferHelp());
    return 0;
  }
  const { flags, positional } = parseFlags(argv, FLAGS);
  noPositional(positional);
  const temperature = numberAtLeast(flags, 'temperature', 0, 0);
  const seed = intAtLeast(flags, 'sampling_seed', 0, 0);
  const batchSize = intAtLeast(flags, 'batch_size', 1, 32);
  intAtLeast(flags, 'max_new_tokens', 1);
  const texts = await situations(flags.text as string[] | undefined, nonEmpty(flags, 'input'), io);

  const model = await loadModelFromFlags(flags);
  try {
    const labels = promptLabels(flags, model, DEFAULT_LABELS);
    const prompter = prompterFor(flags, model, labels);
    const budget = maxNewTokens(flags, model);
    const engine = engineFor(model);
    // each situation fits the context and the KV cache, said in flag terms before any generation
    texts.forEach((t, i) => checkTextBeforeTokenizing(t, model.tokenizer, model.lm.config.maxPositions, `situation ${i + 1}`));
    const prompts = texts.map((text) => prompter.render({ text }).ids);
    checkGenerationLengths({ engine, maxNewTokens: budget, sets: [{ split: 'input', prompts }], kvBudgetText: 'the KV budget', warn: (m) => void process.stderr.write(`${m}\n`) });
    const recpo = recpoEvalSettings(flags, model.weightsDir);
    if (flags.json !== true) out([...describeModel(model), ''].join('\n'));
    if (flags.stream === true) {
      if (flags.json === true) throw new CliUsageError('--stream prints text as it comes; it does not combine with --json');
      const write = io.write ?? ((t: string) => void process.stdout.write(t));
      for (let i = 0; i < texts.length; i++) {
        out(`[${i + 1}] ${texts[i]}`);
        write('completion: ');
        const ids: number[] = [];
        let shown = '';
        const request = { prompt: prompter.render({ text: texts[i]! }).ids, n: 1, temperature, seed, maxTokens: budget, stop: ['</answer>'] };
        for await (const chunk of engine.stream([request], { adapter: model.adapter })) {
          ids.push(...chunk.tokens);
          // the text so far; a token may end inside a UTF-8 character (decoded as U+FFFD): wait for the rest
          const text = model.tokenizer.decode(ids, { skipSpecialTokens: true });
          if (text.endsWith('\uFFFD') && chunk.finishReason === undefined) continue;
          const flat = text.replace(/\s*\n\s*/g, ' ').trimStart();
          if (flat.startsWith(shown) && flat.length > shown.length) {
            write(flat.slice(shown.length));
            shown = flat;
          }
        }
        write('\n');
        const parsed = parseAnswer(model.tokenizer.decode(ids, { skipSpecialTokens: true }), labels);
        out(`label: ${parsed.ok ? parsed.label : `(invalid: ${parsed.detail})`}`);
        out('');
      }
      return 0;
    }
    for (let i0 = 0; i0 < texts.length; i0 += batchSize) {
      const chunk = prompts.slice(i0, i0 + batchSize);
      const results = await engine.generate(
        chunk.map((prompt) => ({ prompt, n: 1, temperature, seed, maxTokens: budget, stop: ['</answer>'] })),
        { adapter: model.adapter },
      );
      // RecPO: the similarity decision of the same completions (gold labels are not known here: 0 as a placeholder)
      const sim = recpo ? await recpoEvaluate(model, chunk.map((promptIds) => ({ promptIds, label: 0 })), results.map((r) => r.samples[0]!), labels, recpo) : null;
      results.forEach((r, k) => {
        const i = i0 + k;
        const s = r.samples[0]!;
        const completion = s.text ?? '';
        const parsed = parseAnswer(completion, labels);
        const label = parsed.ok ? parsed.label : null;
        const simLabel = sim ? labels[sim.predictions[k]!]! : null;
        if (flags.json === true) {
          const extra = sim ? { similarity_label: simLabel, similarity_probs: Object.fromEntries(labels.map((l, j) => [l, sim.probs[k]![j]!])) } : {};
          out(JSON.stringify({ index: i, text: texts[i], completion, label, invalid_reason: parsed.ok ? null : parsed.reason, ...extra, tokens: s.tokens.length, finish_reason: s.finishReason }));
        } else {
          out(`[${i + 1}] ${texts[i]}`);
          out(`completion: ${completion.replace(/\s*\n\s*/g, ' ').trim()}`);
          out(`label: ${label ?? `(invalid: ${parsed.ok ? '' : parsed.detail})`}`);
          if (sim) out(`similarity label (RecPO): ${simLabel} (p ${sim.probs[k]![sim.predictions[k]!]!.toFixed(3)})`);
          out('');
        }
      });
    }
    return 0;
  } finally {
    model.lm.free();
  }
}
