#!/usr/bin/env node
/**
 * `rrec-emotion <command> [flags]`: the command-line entry point. Each command lives in its own
 * file under src/cli/ and returns an exit code; this file only dispatches.
 */
import { closeNames } from '../util/close-names.js';
import { CliUsageError } from './args.js';
import { runEval } from './eval.js';
import { runExport } from './export.js';
import { runInfer } from './infer.js';
import { runInfo } from './info.js';
import { runPreprocess } from './preprocess.js';
import { runReport } from './report.js';
import { runTrain } from './train.js';
import { packageVersion } from './version.js';

type Command = { run: (argv: string[]) => Promise<number>; help: string };

const commands: Record<string, Command> = {
  preprocess: { run: runPreprocess, help: 'CSV splits -> Arrow dataset (Hugging Face save_to_disk layout)' },
  train: { run: runTrain, help: 'GRPO training (SFT warm start, evaluation, checkpoints, resume, early stopping)' },
  eval: { run: (argv) => runEval(argv), help: 'accuracy, macro-F1, per-class metrics, confusion matrix of a model or checkpoint on a split' },
  infer: { run: (argv) => runInfer(argv), help: "a model's reasoning and label for situations (--text, --input or stdin)" },
  export: { run: (argv) => runExport(argv), help: 'a trained model as a Hugging Face folder (adapter merged) or a GGUF file for llama.cpp' },
  report: { run: (argv) => runReport(argv), help: 'rebuild <run>/report.html (charts, confusion matrix, sample completions) from the run folder' },
  info: { run: runInfo, help: 'what the native addon was built with and what this CPU offers' },
};

function usage(): string {
  const lines = ['Usage: rrec-emotion <command> [flags]', '', 'Commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(12)} ${c.help}`);
  lines.push('', 'Run `rrec-emotion <command> --help` for the flags of a command; `rrec-emotion --version` for the version.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(packageVersion());
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 1 : 0;
  }
  const command = commands[name];
  if (!command) {
    const close = closeNames(name, Object.keys(commands));
    console.error(`rrec-emotion: unknown command "${name}"${close.length > 0 ? `; did you mean ${close.join(', ')}?` : ''}\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof CliUsageError) {
      console.error(`rrec-emotion ${name}: ${err.message}\nRun \`rrec-emotion ${name} --help\` for the flags.`);
      return 2;
    }
    console.error(`rrec-emotion ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
