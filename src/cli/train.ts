/**
 * `rrec-emotion train [flags]`: GRPO training (GrpoTrainer.fit) with the reference project's flags.
 * Every field of TrainConfig is a flag of the same name (`--num_train_epochs=3`, `--model=qwen`,
 * `--resume_from_checkpoint`, `--vllm_gpu_memory_utilization=0.3`, `--early_stopping_patience=3`,
 * `--eval_on_test`, ...). `--trainer=recpo` trains with RecPO instead (src/recpo: its own flags,
 * e.g. `--reward_softmax_weight`, `--similarity_temperature`, and its rollout preset). Ctrl-C
 * stops after the current step with a checkpoint.
 */
import { recpoFlagSpecs, splitTrainerFlags } from '../recpo/flags.js';
import { RecpoTrainer } from '../recpo/trainer.js';
import { configFromFlags, configValuesFromFlags, formatTrainConfigFields, trainFlagSpecs } from '../train/train-flags.js';
import { GrpoTrainer } from '../train/trainer.js';
import { parseFlags } from './args.js';

export async function runTrain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('Usage: rrec-emotion train [--trainer=grpo|recpo] [--flag=value ...]\n\nGRPO (default) or RecPO training; every flag with its default:\n\n' + formatTrainConfigFields());
    console.log('\nTrainer selection and RecPO (--trainer=recpo) options:\n\n' + Object.entries(recpoFlagSpecs()).map(([k, f]) => `${k}  ${f.help} [${f.metavar ?? f.type}]`).join('\n'));
    return 0;
  }
  const { flags, positional } = parseFlags(argv, { ...trainFlagSpecs(), ...recpoFlagSpecs() });
  if (positional.length > 0) throw new Error(`unexpected argument "${positional[0]}" (flags look like --name=value)`);
  const { trainer: kind, recpo, rest } = splitTrainerFlags(flags);
  const trainer = kind === 'recpo' ? new RecpoTrainer({ ...configValuesFromFlags(rest), ...recpo }) : new GrpoTrainer(configFromFlags(rest));
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
