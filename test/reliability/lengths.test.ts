// Fault family: lengths. A prompt longer than the model's context (named by split and row, with
// --max_prompt_length to cut or skip, counted in the report), a --max_new_tokens the context
// cannot hold, a KV budget too small for one sequence (named in flag terms, with the minimum that
// works), and a text far past any context refused before it is tokenized.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEval } from '../../src/cli/eval.js';
import { runInfer } from '../../src/cli/infer.js';
import { Engine } from '../../src/engine/index.js';
import { checkGenerationLengths, checkTextBeforeTokenizing, LengthError } from '../../src/eval/lengths.js';
import { CausalLM } from '../../src/model/index.js';
import { Prompter } from '../../src/prompt/index.js';
import { lenmlTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { GrpoTrainer } from '../../src/train/trainer.js';
import { writeAnswerModel } from '../helpers/answer-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const sample = join(here, '..', '..', 'data', 'sample', 'ED_sample_4');
const LABELS = ['sad', 'joyful', 'angry', 'afraid'];
const root = mkdtempSync(join(tmpdir(), 'rrec-rel-len-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WritableStream;

let model = '';
let data = '';
let ctx = 0;
const LONG_ROW = 3;
beforeAll(async () => {
  // the answer model with a context just above the sample's prompts; valid row 3 made far longer
  model = await writeAnswerModel(join(root, 'answer'), LABELS);
  const tok = await loadTokenizer(lenmlTokenizerDir('qwen2_5'));
  const prompter = new Prompter(tok, { labels: LABELS });
  data = join(root, 'data');
  mkdirSync(data);
  for (const f of ['train.csv', 'test.csv']) copyFileSync(join(sample, f), join(data, f));
  const lines = readFileSync(join(sample, 'valid.csv'), 'utf8').split('\n');
  lines[1 + LONG_ROW] = `"${'I cannot stop worrying about tomorrow. '.repeat(40).trim()}",,3`;
  writeFileSync(join(data, 'valid.csv'), lines.join('\n'));
  // the longest prompt of every other row of train and valid
  const texts = ['train', 'valid'].flatMap((split) =>
    (parse(readFileSync(join(sample, `${split}.csv`), 'utf8'), { columns: true }) as { text: string }[]).filter((_, i) => split !== 'valid' || i !== LONG_ROW).map((r) => r.text),
  );
  const longest = Math.max(...texts.map((t) => prompter.render({ text: t }).ids.length));
  ctx = longest + 40;
  const cfgFile = join(model, 'config.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), max_position_embeddings: ctx }));
});

async function evalCli(args: string[]) {
  const out: string[] = [];
  const output = join(root, `m-${Math.random().toString(36).slice(2)}.json`);
  const code = await runEval([`--model=${model}`, `--data_dir=${data}`, '--limit=12', '--max_new_tokens=12', `--output=${output}`, ...args], { out: (t) => out.push(t) });
  return { code, text: out.join('\n'), report: JSON.parse(readFileSync(output, 'utf8')) as { prompts: Record<string, unknown>; metrics: { accuracy: number; per_class: { support: number }[] } } };
}

describe('prompts longer than the context', () => {
  it('eval names the split and row (not "request 0") and offers --max_prompt_length', async () => {
    await expect(evalCli([])).rejects.toThrow(
      new RegExp(`^valid row ${LONG_ROW}: the prompt has \\d+ tokens and does not fit the model's context of ${ctx} positions \\(config\\.json max_position_embeddings\\); pass --max_prompt_length to cut \\(--long_prompts=truncate\\) or skip \\(--long_prompts=skip\\) such prompts$`),
    );
  });

  it('--max_prompt_length with skip: the row is left out of the metrics and counted', async () => {
    const r = await evalCli([`--max_prompt_length=${ctx - 20}`, '--long_prompts=skip']);
    expect(r.code).toBe(0);
    expect(r.report.prompts).toEqual({ max_prompt_length: ctx - 20, long_prompts: 'skip', truncated: 0, skipped: 1, skipped_rows: [LONG_ROW] });
    expect(r.report.metrics.per_class.reduce((a, c) => a + c.support, 0)).toBe(11);
    expect(r.text).toContain(`prompts  0 cut to ${ctx - 20} tokens, 1 skipped (not in the metrics)`);
  });

  it('--max_prompt_length with truncate (the default): cut to the last N tokens, counted, all rows scored', async () => {
    const r = await evalCli([`--max_prompt_length=${ctx - 20}`]);
    expect(r.code).toBe(0);
    expect(r.report.prompts).toMatchObject({ long_prompts: 'truncate', truncated: 1, skipped: 0 });
    expect(r.report.metrics.per_class.reduce((a, c) => a + c.support, 0)).toBe(12);
  });

  it('--max_new_tokens the context cannot hold is refused naming the context size; one that runs past it warns', async () => {
    await expect(evalCli([`--max_new_tokens=${ctx}`, `--max_prompt_length=${ctx - 20}`])).rejects.toThrow(
      `--max_new_tokens ${ctx} does not fit the model's context of ${ctx} positions (config.json max_position_embeddings): it leaves no room for a prompt; use at most ${ctx - 1} (far less in practice)`,
    );
    await expect(runInfer([`--model=${model}`, '--text=my dog died', `--max_new_tokens=${ctx}`], { out: () => {} })).rejects.toThrow(`--max_new_tokens ${ctx} does not fit the model's context of ${ctx} positions`);
    const r = await evalCli(['--max_new_tokens=30', `--max_prompt_length=${ctx - 20}`, '--long_prompts=skip']);
    expect(r.text).toMatch(new RegExp(`warning: --max_new_tokens 30 with the longest prompt \\(valid row \\d+, \\d+ tokens\\) exceeds the model's context of ${ctx} positions .*: such completions end at the context, after \\d+ tokens`));
  });

  it('training: the same checks before the first step, in flag terms', async () => {
    const base = { model, data_dir: data, output_dir: join(root, 'runs'), max_steps: 1, max_new_tokens: 8, sft_epochs: 0, eval_on_start: false };
    await expect(new GrpoTrainer({ ...base, run_name: 'long-valid' }).fit({ stream: quiet })).rejects.toThrow(new RegExp(`^valid row ${LONG_ROW}: the prompt has \\d+ tokens and does not fit the model's context of ${ctx} positions`));
    await expect(new GrpoTrainer({ ...base, run_name: 'new-tokens', max_new_tokens: ctx + 5 }).fit({ stream: quiet })).rejects.toThrow(`--max_new_tokens ${ctx + 5} does not fit the model's context of ${ctx} positions`);
  });

  it('training with max_prompt_length and long_prompts skip: the long valid row is left out of every evaluation and counted', async () => {
    const r = await new GrpoTrainer({ model, data_dir: data, output_dir: join(root, 'runs'), run_name: 'skip', max_steps: 1, max_new_tokens: 8, sft_epochs: 0, train_batch_size: 2, group_size: 2, max_prompt_length: ctx - 20, long_prompts: 'skip' }).fit({ stream: quiet });
    expect(r.steps).toBe(1);
    expect(r.trainPrompts).toEqual({ truncated: 0, skipped: [] });
    const end = JSON.parse(readFileSync(join(r.runDir, 'eval-end.json'), 'utf8')) as Record<string, unknown>;
    expect(end).toMatchObject({ prompts_truncated: 0, prompts_skipped: 1, skipped_rows: [LONG_ROW] });
  });
});

describe('KV budget too small for one sequence', () => {
  it('names --kv_memory_budget as typed, the longest prompt, and the minimum budget that works', async () => {
    const lm = await CausalLM.load(model);
    try {
      const probe = new Engine(lm, { kvBudgetBytes: 1 << 20 });
      const blockBytes = probe.stats().blockBytes;
      probe.free();
      const engine = new Engine(lm, { kvBudgetBytes: 2 * blockBytes });
      const prompts = [new Int32Array(20), new Int32Array(50), new Int32Array(35)];
      const need = Math.ceil((50 + 24) / 16) * blockBytes;
      expect(engine.minKvBudgetBytes(74)).toBe(need);
      let err: unknown;
      try {
        checkGenerationLengths({ engine, maxNewTokens: 24, sets: [{ split: 'train', prompts }], kvBudgetText: `--kv_memory_budget ${2 * blockBytes}` });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LengthError);
      expect((err as Error).message).toBe(
        `--kv_memory_budget ${2 * blockBytes} gives a KV cache of ${2 * blockBytes} bytes, too small for one sequence of 74 tokens (the longest prompt, train row 1, has 50 tokens, plus --max_new_tokens 24): ` +
          `it needs at least ${need} bytes (${(need / 2 ** 20).toFixed(1)} MiB); raise --kv_memory_budget to ${need} or more, or lower --max_new_tokens or pass --max_prompt_length`,
      );
      // the library's own message (no CLI): the engine's option names, and the minimum
      await expect(engine.generate([{ prompt: prompts[1]!, maxTokens: 24 }])).rejects.toThrow(`needs ${need / blockBytes} KV blocks but the pool holds 2 (${blockBytes} bytes each); raise kvBudgetBytes to at least ${need} or lower maxTokens`);
      engine.free();
    } finally {
      lm.free();
    }
  });

  it('the trainer with a tiny --kv_memory_budget says so before training', async () => {
    await expect(
      new GrpoTrainer({ model, data_dir: sample, output_dir: join(root, 'runs'), run_name: 'kv', max_steps: 1, max_new_tokens: 8, kv_memory_budget: 4096 }).fit({ stream: quiet }),
    ).rejects.toThrow(/^--kv_memory_budget 4096 gives a KV cache of \d+ bytes, too small for one sequence of \d+ tokens \(the longest prompt, (train|valid) row \d+, has \d+ tokens, plus --max_new_tokens 8\): it needs at least \d+ bytes/);
  });
});

describe('a text far past any context is refused before tokenizing', () => {
  it('a 50 MB text: named by row, in milliseconds', async () => {
    const tok = await loadTokenizer(lenmlTokenizerDir('qwen2_5'));
    const text = 'x'.repeat(50 * 2 ** 20);
    const t0 = performance.now();
    expect(() => checkTextBeforeTokenizing(text, tok, 4096, 'train row 7')).toThrow(
      new RegExp(`^train row 7: the text has 52428800 characters, more than ${2 * tok.maxTokenChars * 4096} \\(2 x the tokenizer's longest token, ${tok.maxTokenChars} characters, x the model's context of 4096 positions\\)`),
    );
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(() => checkTextBeforeTokenizing('short', tok, 4096, 'train row 0')).not.toThrow();
  });
});
