// `rrec-emotion train` as a TRL user types it: --config files under the flags, --version, "did you
// mean" for a mistyped flag, --help in groups within 80 columns, TRL's TrainingArguments/GRPOConfig
// names with their meaning, and the TRL-style command line run end to end on the tiny model.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CliUsageError } from '../../src/cli/args.js';
import { runTrain, trainConfigFromArgv, trainHelp } from '../../src/cli/train.js';
import { CONFIG_GROUPS, TRAIN_CONFIG_ALIASES } from '../../src/train/config-schema.js';
import { TRAIN_CONFIG_FIELDS } from '../../src/train/config.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const sample = join(repo, 'data', 'sample', 'ED_sample_4');
const tmp = mkdtempSync(join(tmpdir(), 'rrec-train-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs `fn` with console.log and process.stdout captured; returns its result and the text. */
async function captured<T>(fn: () => Promise<T>): Promise<{ result: T; out: string }> {
  const chunks: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void chunks.push(`${a.join(' ')}\n`));
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(((s: string | Uint8Array) => (chunks.push(String(s)), true)) as never);
  try {
    return { result: await fn(), out: chunks.join('') };
  } finally {
    log.mockRestore();
    write.mockRestore();
  }
}

describe('train --help', () => {
  const help = trainHelp();
  it('lists every field in its group, the groups in order, aliases beside their field, within 80 columns', () => {
    const titles = Object.values(CONFIG_GROUPS).map((t) => `${t[0]!.toUpperCase()}${t.slice(1)}:`);
    const at = titles.map((t) => help.split('\n').indexOf(t));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    for (const f of TRAIN_CONFIG_FIELDS) {
      const line = help.split('\n').findIndex((l) => l.startsWith(`  --${f.name}`) && /^ {2}--\S+( |=|,|$)/.test(l));
      expect(line, f.name).toBeGreaterThan(at[Object.keys(CONFIG_GROUPS).indexOf(f.group)]!);
    }
    for (const [alias, a] of Object.entries(TRAIN_CONFIG_ALIASES)) expect(help).toMatch(new RegExp(`--${a.field}(=\\S+)?, (--\\w+, )*--${alias}\\b`));
    expect(help).toContain('--group_size=INT, --num_generations');
    expect(help).toContain('--matmul_precision=fp32|bf16, --bf16');
    for (const l of help.split('\n')) expect(l.length, l).toBeLessThanOrEqual(80);
  });
  it("says where the defaults differ from TRL's", () => {
    expect(help).toMatch(/Defaults that differ from TRL's:\n {2}beta 0\.04 \(TRL 0\.0.*\n {2}warmup_steps 32 \(TRL 0\)\n {2}logging_steps 1: a line every step \(TRL 10\)/);
    expect(help).toMatch(/--beta=FLOAT {2,}KL coefficient; 0 skips the reference model\s+\(TRL: 0\.0\) \(default: 0\.04\)/);
  });
  it('runTrain --help prints it', async () => {
    const { result, out } = await captured(() => runTrain(['--help']));
    expect(result).toBe(0);
    expect(out).toBe(`${help}\n`);
  });
});

describe('train flags', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    const { result, out } = await captured(() => runTrain(['--version']));
    expect(result).toBe(0);
    expect(out).toBe(`rrec-emotion ${pkg.version}\n`);
  });
  it('a mistyped flag: did you mean', async () => {
    await expect(runTrain(['--learning_rat=1'])).rejects.toThrow(new CliUsageError('unknown flag "--learning_rat"; did you mean --learning_rate, --sft_learning_rate?'));
    await expect(runTrain(['--per_device_batch_size=8'])).rejects.toThrow(/did you mean --per_device_train_batch_size\b/);
    await expect(runTrain(['--num-generation', '4'])).rejects.toThrow(/did you mean --num_generations\?/);
    await expect(runTrain(['--qqqqqqqqqqqq'])).rejects.toThrow(/^unknown flag "--qqqqqqqqqqqq"$/);
  });

  it("TRL's names with TRL's meaning", async () => {
    const cfg = await trainConfigFromArgv([
      '--per_device_train_batch_size=8', '--num_generations=4', '--gradient_accumulation_steps=2', '--bf16', '--report_to=none',
      '--warmup_ratio=0.1', '--eval_strategy=epoch', '--save_strategy=no', '--load_best_model_at_end', '--metric_for_best_model=eval_macro_f1',
      '--log_completions', '--max_prompt_length=512', '--gradient_checkpointing', '--max_completion_length=64', '--run_name=r',
    ]);
    // 8 completions x 2 micro-steps = 16 completions per optimizer step = 4 prompts x 4 generations
    expect(cfg).toMatchObject({
      train_batch_size: 4, group_size: 4, per_device_train_batch_size: 8, gradient_accumulation_steps: 2, matmul_precision: 'bf16', report_to: 'none',
      warmup_ratio: 0.1, eval_strategy: 'epoch', save_strategy: 'no', load_best_model_at_end: true, metric_for_best_model: 'macro_f1',
      log_completions: true, max_prompt_length: 512, gradient_checkpointing: true, max_new_tokens: 64,
    });
    expect((await trainConfigFromArgv(['--no-bf16'])).matmul_precision).toBe('fp32');
    expect((await trainConfigFromArgv(['--bf16=false'])).matmul_precision).toBe('fp32');
    expect((await trainConfigFromArgv(['--per_device_train_batch_size=8'])).train_batch_size).toBe(2); // 8 completions / 4 generations
    await expect(trainConfigFromArgv(['--per_device_train_batch_size=6', '--num_generations=4'])).rejects.toThrow(
      'per_device_train_batch_size: x gradient_accumulation_steps 1 = 6 completions per step, not a multiple of group_size 4',
    );
    await expect(trainConfigFromArgv(['--gradient_accumulation_steps=2'])).rejects.toThrow(/gradient_accumulation_steps: counts micro-steps .* give per_device_train_batch_size too/);
    await expect(trainConfigFromArgv(['--per_device_train_batch_size=8', '--train_batch_size=3'])).rejects.toThrow(/train_batch_size: conflicts with per_device_train_batch_size 8 x gradient_accumulation_steps 1 \/ group_size 4 = 2 prompts per step/);
    await expect(trainConfigFromArgv(['--report_to=wandb'])).rejects.toThrow(/report_to: expected none .*no wandb or tensorboard integration exists\), got "wandb"/);
    await expect(trainConfigFromArgv(['--eval_strategy=sometimes'])).rejects.toThrow(/eval_strategy: expected one of steps, epoch, no, got "sometimes"/);
    expect((await trainConfigFromArgv(['--evaluation_strategy=no'])).eval_strategy).toBe('no');
  });

  it('--config FILE (YAML or JSON): the flags override it, whichever name either uses', async () => {
    const yaml = join(tmp, 'run.yaml');
    writeFileSync(yaml, ['# yaml-language-server: $schema=../dist/train-config.schema.json', '$schema: ./train-config.schema.json', 'num_generations: 8', 'learning_rate: 1.0e-6', 'bf16: false', 'lora_target_modules: [q_proj, v_proj]', 'run_name: from-file', ''].join('\n'));
    const a = await trainConfigFromArgv(['--config', yaml]);
    expect(a).toMatchObject({ group_size: 8, learning_rate: 1e-6, matmul_precision: 'fp32', lora_target_modules: ['q_proj', 'v_proj'], run_name: 'from-file' });
    const b = await trainConfigFromArgv([`--config=${yaml}`, '--group_size=2', '--matmul_precision=bf16', '--run_name=from-flags']);
    expect(b).toMatchObject({ group_size: 2, learning_rate: 1e-6, matmul_precision: 'bf16', run_name: 'from-flags' });

    const json = join(tmp, 'run.json');
    writeFileSync(json, JSON.stringify({ learning_rte: 1e-6, train_batch_size: 0 }));
    await expect(trainConfigFromArgv(['--config', json])).rejects.toThrow(
      `invalid training config (${json} and the command line), 2 problems:\n  learning_rte: unknown field; did you mean learning_rate?\n  train_batch_size: expected an integer >= 1, got 0`,
    );
    expect(() => trainConfigFromArgv(['--config', json, '--train_batch_size=2'])).rejects.toThrow(/1 problem:\n  learning_rte: unknown field/);
  });

  it('a config file that cannot be read names the file and why', async () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'learning_rate: 1e-6\n  group_size: [4\n');
    await expect(trainConfigFromArgv(['--config', bad])).rejects.toThrow(new RegExp(`^--config ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid YAML at line \\d+, column \\d+`));
    const list = join(tmp, 'list.json');
    writeFileSync(list, '[1, 2]');
    await expect(trainConfigFromArgv(['--config', list])).rejects.toThrow(/list\.json: expected a mapping of field names to values, got a list/);
    await expect(trainConfigFromArgv(['--config', join(tmp, 'none.yaml')])).rejects.toThrow(/none\.yaml: no such file/);
    writeFileSync(join(tmp, 'run.toml'), 'learning_rate = 1e-6\n');
    await expect(trainConfigFromArgv(['--config', join(tmp, 'run.toml')])).rejects.toThrow(/expected a \.json, \.yaml or \.yml file, got "\.toml"/);
  });
});

describe("the issue's TRL-style command line, end to end on the tiny model", () => {
  it('trains with 16 completions per step, warm-up from warmup_ratio, TRL logging, the banner and progress with ETA; warns when warm-up outlasts the run', async () => {
    const argv = [
      '--model=tiny', `--output_dir=${join(tmp, 'runs')}`, `--data_dir=${sample}`, '--run_name=trl', '--sft_epochs=0',
      '--per_device_train_batch_size=8', '--num_generations=4', '--gradient_accumulation_steps=2', '--bf16', '--report_to=none',
      '--warmup_ratio=0.5', '--max_steps=2', '--max_completion_length=8', '--learning_rate=1e-4', '--lr_scheduler_type=linear',
      '--eval_strategy=no', '--save_strategy=no', '--logging_steps=1', '--log_completions', '--metric_for_best_model=eval_accuracy',
      '--load_best_model_at_end', '--max_prompt_length=512', '--eval_batch_size=40', '--gradient_checkpointing',
    ];
    const { result, out } = await captured(() => runTrain(argv));
    expect(result).toBe(0);
    const run = join(tmp, 'runs', 'trl');
    const steps = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(steps.map((s) => s.step)).toEqual([1, 2]);
    // warmup_ratio 0.5 of 2 steps = 1 warm-up step; HF's linear schedule: lr(0) = 0/1, lr(1) = (2 - 1) / (2 - 1) of the peak
    expect(steps.map((s) => s.learning_rate)).toEqual([0, 1e-4]);
    const info = JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')) as { config: Record<string, unknown> };
    expect(info.config).toMatchObject({ train_batch_size: 4, group_size: 4, matmul_precision: 'bf16', eval_strategy: 'no', save_strategy: 'no' });
    expect(out).toMatch(/completion \(step 1, gold \w+, reward [-\d.e]+\): /);
    expect(out).toMatch(/completion \(step 2, gold \w+, reward [-\d.e]+\): /);
    expect(out).not.toContain('warning: warmup_steps');
    // the start banner: resolved model folder, data folder and split sizes (the sample: 120/40/40), device
    expect(out).toMatch(new RegExp(`^model {6}${join(tmp, 'runs', 'builtin-tiny-qwen2')} \\(the built-in tiny model, random weights\\)$`, 'm'));
    expect(out).toMatch(new RegExp(`^data {7}${sample}: train 120, valid 40, test 40$`, 'm'));
    expect(out).toMatch(/^device {5}cpu \(/m);
    // evaluation progress with its ETA, then the result
    expect(out).toMatch(/^eval end 40\/40 100% eta 0s [\d.]+ s\/prompt\neval \(end\): accuracy/m);
    // save_strategy no: only the final checkpoint
    expect(out).toMatch(/last checkpoint: .*checkpoint-2/);

    // with an SFT warm start of 2 steps (120 examples / 60): its progress lines with the ETA
    const warm = await captured(() =>
      runTrain([...argv.filter((a) => !/^--(warmup_ratio|run_name|sft_epochs)=/.test(a)), '--warmup_steps=5', '--run_name=warm', '--sft_epochs=1', '--sft_batch_size=60']),
    );
    expect(warm.result).toBe(0);
    expect(warm.out).toMatch(/^sft 1\/2 50% eta [\dms]+ loss=[\d.e+-]+ epoch 0\.50 [\d.]+ s\/step$/m);
    expect(warm.out).toMatch(/^sft 2\/2 100% eta 0s loss=[\d.e+-]+ epoch 1\.00 [\d.]+ s\/step$/m);
    expect(warm.out).toContain("warning: warmup_steps 5 exceeds the run's 2 steps: the learning rate rises the whole run and never reaches learning_rate 0.0001");
  }, 600_000);
});
