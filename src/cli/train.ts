/**
 * `rrec-emotion train [--config FILE] [flags]`: GRPO training (GrpoTrainer.fit). Every field of the
 * train config is a flag of the same name (`--num_train_epochs=3`, `--model=qwen`, ...), TRL's
 * names included (`--per_device_train_batch_size`, `--gradient_accumulation_steps`, `--bf16`,
 * `--warmup_ratio`, `--eval_strategy`, ...); `--config run.yaml|run.json` reads them from a file
 * and the flags override it. Ctrl-C stops after the current step with a checkpoint.
 */
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import { configValuesFromFlags, formatTrainHelp, trainFlagSpecs } from '../train/train-flags.js';
import { GrpoTrainer } from '../train/trainer.js';
import { CliUsageError, parseFlags, type FlagSpecs, type ParsedFlags } from './args.js';
import { mergeConfig, readConfigFile } from './config-file.js';
import { packageVersion } from './version.js';

const EXTRA_FLAGS = {
  config: { type: 'string', metavar: 'FILE', help: 'a .yaml/.yml or .json file of these fields (flags override it)' },
  version: { type: 'boolean', help: 'print the version' },
} as const satisfies FlagSpecs;

export function trainHelp(): string {
  return formatTrainHelp('rrec-emotion train [--config FILE] [--flag=value ...]', 'GRPO training (SFT warm start, evaluation, checkpoints, resume, early stopping).', {
    '--config=FILE': EXTRA_FLAGS.config.help,
    '--version': EXTRA_FLAGS.version.help,
    '--help': 'show this help',
  });
}

/** The config of parsed train flags: the --config file's fields under the flags. */
export async function trainConfigFromFlags(flags: ParsedFlags): Promise<TrainConfig> {
  const { config: configFile, version: _, help: __, ...fieldFlags } = flags;
  const fileFields = typeof configFile === 'string' ? await readConfigFile(configFile) : {};
  return resolveTrainConfig(mergeConfig(fileFields, configValuesFromFlags(fieldFlags)), {
    source: typeof configFile === 'string' ? `${configFile} and the command line` : 'command line',
  });
}

/** The config `rrec-emotion train ARGV` would run with (no training). */
export async function trainConfigFromArgv(argv: readonly string[]): Promise<TrainConfig> {
  const { flags, positional } = parseFlags(argv, { ...trainFlagSpecs(), ...EXTRA_FLAGS });
  if (positional.length > 0) throw new CliUsageError(`unexpected argument "${positional[0]}" (flags look like --name=value)`);
  return trainConfigFromFlags(flags);
}

export async function runTrain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(trainHelp());
    return 0;
  }
  const { flags, positional } = parseFlags(argv, { ...trainFlagSpecs(), ...EXTRA_FLAGS });
  if (flags.version === true) {
    console.log(packageVersion());
    return 0;
  }
  if (positional.length > 0) throw new CliUsageError(`unexpected argument "${positional[0]}" (flags look like --name=value)`);
  const trainer = new GrpoTrainer(await trainConfigFromFlags(flags));
  const abort = new AbortController();
  const onSigint = () => {
    console.error('\nstopping after this step (a checkpoint will be saved); press Ctrl-C again to quit now');
    if (abort.signal.aborted) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await trainer.fit({ signal: abort.signal });
    const fmt = (m: { accuracy: number; macro_f1: number; invalid_rate: number } | null) =>
      m ? `accuracy ${m.accuracy.toFixed(4)}, macro-F1 ${m.macro_f1.toFixed(4)}, invalid ${(m.invalid_rate * 100).toFixed(1)}%` : 'not evaluated';
    const why = { completed: '', early_stopping: ' (early stopping)', aborted: ' (stopped by Ctrl-C)' }[r.stopReason];
    console.log(`\nsteps: ${r.steps}${why}`);
    console.log(`valid before GRPO: ${fmt(r.evalBefore)}`);
    console.log(`valid after GRPO:  ${fmt(r.evalAfter)}`);
    if (r.bestStep !== null) console.log(`best valid accuracy: ${r.bestValidAccuracy!.toFixed(4)} at step ${r.bestStep}${r.bestDir ? ` (${r.bestDir})` : ''}`);
    if (r.testMetrics) console.log(`test (model of step ${r.testStep}): ${fmt(r.testMetrics)}`);
    console.log(`last checkpoint: ${r.lastCheckpoint ?? 'none'}`);
    console.log(`run folder: ${r.runDir}`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
