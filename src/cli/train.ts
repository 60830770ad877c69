/**
 * `rrec-emotion train [--config FILE] [flags]`: GRPO training (GrpoTrainer.fit). Every field of the
 * train config is a flag of the same name (`--num_train_epochs=3`, `--model=qwen`, ...), TRL's
 * names included (`--per_device_train_batch_size`, `--gradient_accumulation_steps`, `--bf16`,
 * `--warmup_ratio`, `--eval_strategy`, ...); `--config run.yaml|run.json` reads them from a file
 * and the flags override it. `--trainer=recpo` trains with RecPO instead (src/recpo: its own flags,
 * e.g. `--reward_softmax_weight`, `--similarity_temperature`, and its rollout preset). Ctrl-C
 * stops after the current step with a checkpoint.
 */
import { recpoFlagSpecs, splitTrainerFlags } from '../recpo/flags.js';
import { RecpoTrainer } from '../recpo/trainer.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import { configValuesFromFlags, formatTrainHelp, trainFlagSpecs, wrapText } from '../train/train-flags.js';
import { GrpoTrainer } from '../train/trainer.js';
import { CliUsageError, parseFlags, type FlagSpecs, type ParsedFlags } from './args.js';
import { mergeConfig, readConfigFile } from './config-file.js';
import { packageVersion } from './version.js';

const EXTRA_FLAGS = {
  config: { type: 'string', metavar: 'FILE', help: 'a .yaml/.yml or .json file of these fields (flags override it)' },
  version: { type: 'boolean', help: 'print the version' },
} as const satisfies FlagSpecs;

export function trainHelp(): string {
  const recpo = Object.entries(recpoFlagSpecs()).flatMap(([k, f]) => {
    const text = wrapText(f.help, 80 - 32 - 1);
    const head = `  --${k}${f.type === 'boolean' ? '' : `=${f.metavar ?? f.type.toUpperCase()}`}`;
    const first = head.length < 32 ? [`${head.padEnd(32)}${text[0]}`] : [head, `${' '.repeat(32)}${text[0]}`];
    return [...first, ...text.slice(1).map((t) => `${' '.repeat(32)}${t}`)];
  });
  return (
    formatTrainHelp('rrec-emotion train [--config FILE] [--trainer=grpo|recpo] [flags]', 'GRPO (default) or RecPO training (SFT warm start, evaluation, checkpoints, resume, early stopping).', {
      '--config=FILE': EXTRA_FLAGS.config.help,
      '--version': EXTRA_FLAGS.version.help,
      '--help': 'show this help',
    }) + `\n\nTrainer selection and RecPO (--trainer=recpo):\n${recpo.join('\n')}`
  );
}

/** The train config's values of parsed flags: the --config file's fields under the flags (not yet checked). */
async function configValues(flags: ParsedFlags): Promise<{ values: Record<string, unknown>; source: string }> {
  const { config: configFile, version: _, help: __, ...fieldFlags } = flags;
  const fileFields = typeof configFile === 'string' ? await readConfigFile(configFile) : {};
  return { values: mergeConfig(fileFields, configValuesFromFlags(fieldFlags)), source: typeof configFile === 'string' ? `${configFile} and the command line` : 'command line' };
}

/** The config of parsed train flags (GRPO's): the --config file's fields under the flags. */
export async function trainConfigFromFlags(flags: ParsedFlags): Promise<TrainConfig> {
  const { values, source } = await configValues(flags);
  return resolveTrainConfig(values, { source });
}

function parseTrainArgv(argv: readonly string[]): ParsedFlags {
  const { flags, positional } = parseFlags(argv, { ...trainFlagSpecs(), ...recpoFlagSpecs(), ...EXTRA_FLAGS });
  if (positional.length > 0) throw new CliUsageError(`unexpected argument "${positional[0]}" (flags look like --name=value)`);
  return flags;
}

/** The config `rrec-emotion train ARGV` would run GRPO with (no training). */
export async function trainConfigFromArgv(argv: readonly string[]): Promise<TrainConfig> {
  return trainConfigFromFlags(splitTrainerFlags(parseTrainArgv(argv)).rest);
}

export async function runTrain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(trainHelp());
    return 0;
  }
  const flags = parseTrainArgv(argv);
  if (flags.version === true) {
    console.log(packageVersion());
    return 0;
  }
  const { trainer: kind, recpo, rest } = splitTrainerFlags(flags);
  const trainer = kind === 'recpo' ? new RecpoTrainer({ ...(await configValues(rest)).values, ...recpo }) : new GrpoTrainer(await trainConfigFromFlags(rest));
  const abort = new AbortController();
  const onSigint = () => {
    console.error('\nstopping after this step (a checkpoint will be saved); press Ctrl-C again to quit now');
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await trainer.fit({ signal: abort.signal });
    // RecPO's metrics are the similarity decision's, with the answer parsing of the same completions beside them
    const fmt = (m: { accuracy: number; macro_f1: number; invalid_rate: number; answer_accuracy?: unknown; answer_macro_f1?: unknown } | null) =>
      !m
        ? 'not evaluated'
        : typeof m.answer_accuracy === 'number'
          ? `similarity decision accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macro_f1.toFixed(4)}; answer parsing accuracy ${m.answer_accuracy.toFixed(4)}, macro-F1 ${(m.answer_macro_f1 as number).toFixed(4)}`
          : `accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macro_f1.toFixed(4)}, invalid ${(m.invalid_rate * 100).toFixed(1)}%`;
    const why = { completed: '', early_stopping: ' (early stopping)', aborted: ' (stopped by Ctrl-C)' }[r.stopReason];
    console.log(`\nsteps: ${r.steps}${why}`);
    const name = kind === 'recpo' ? 'RecPO' : 'GRPO';
    console.log(`valid before ${name}: ${fmt(r.evalBefore)}`);
    console.log(`valid after ${name}:  ${fmt(r.evalAfter)}`);
    if (r.bestStep !== null) console.log(`best valid accuracy: ${r.bestValidAccuracy!.toFixed(4)} at step ${r.bestStep}${r.bestDir ? ` (${r.bestDir})` : ''}`);
    if (r.testMetrics) console.log(`test (model of step ${r.testStep}): ${fmt(r.testMetrics)}`);
    console.log(`last checkpoint: ${r.lastCheckpoint ?? 'none'}`);
    console.log(`run folder: ${r.runDir}`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
