/**
 * `rrec-emotion train [flags]`: GRPO training (GrpoTrainer.fit) with the reference project's flags.
 * Every field of TrainConfig is a flag of the same name (`--num_train_epochs=3`, `--model=qwen`,
 * `--resume_from_checkpoint`, `--vllm_gpu_memory_utilization=0.3`, `--early_stopping_patience=3`,
 * `--eval_on_test`, ...). Ctrl-C stops after the current step with a checkpoint.
 */
import { configFromFlags, formatTrainConfigFields, trainFlagSpecs } from '../train/train-flags.js';
import { GrpoTrainer } from '../train/trainer.js';
import { parseFlags } from './args.js';

export async function runTrain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log('Usage: rrec-emotion train [--flag=value ...]\n\nGRPO training; every flag with its default:\n\n' + formatTrainConfigFields());
    return 0;
  }
  const { flags, positional } = parseFlags(argv, trainFlagSpecs());
  if (positional.length > 0) throw new Error(`unexpected argument "${positional[0]}" (flags look like --name=value)`);
  const config = configFromFlags(flags);
  const trainer = new GrpoTrainer(config);
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
