/**
 * `rrec-emotion export`: a trained model (LoRA folded into the base, or full fine-tune weights) as
 * a Hugging Face folder (`--format=merged`) or a llama.cpp GGUF file (`--format=gguf`). See
 * src/export/.
 *
 * Exit codes: 0 written, 1 a model / I/O problem, 2 bad usage (flag named).
 */
import { exportModel, type ExportDtype, type ExportFormat } from '../export/index.js';
import { CliUsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { intAtLeast, noPositional, nonEmpty, oneOf } from './flag-values.js';

const FORMATS = ['merged', 'gguf'] as const;
const DTYPES = ['auto', 'f32', 'bf16', 'f16', 'q8_0'] as const;

const FLAGS: FlagSpecs = {
  checkpoint: { type: 'string', metavar: 'DIR', help: 'trained weights: <run>/checkpoint-N, <run>/best (LoRA or full fine-tune), a run folder (its best/) or a PEFT adapter folder; absent: the base model alone' },
  format: { type: 'string', metavar: FORMATS.join('|'), help: 'merged: a Hugging Face model folder (config.json, tokenizer, safetensors); gguf: one GGUF file for llama.cpp' },
  out: { type: 'string', metavar: 'DIR', help: 'merged: the folder to write; gguf: a folder (for <out>/model-<dtype>.gguf) or a file name ending in .gguf' },
  dtype: { type: 'string', metavar: DTYPES.join('|'), help: "stored dtype of the weights (merged: f32, bf16; gguf: f32, bf16, f16, q8_0); auto: the base model's", default: 'auto' },
  model: { type: 'string', metavar: 'NAME|DIR', help: "base model: \"tiny\", a paths-registry name or a folder (default: the run's; for a PEFT folder its base_model_name_or_path when that folder exists, else tiny)" },
  paths_file: { type: 'string', metavar: 'FILE', help: 'JSON file mapping model names to folders (default: ./paths.json when present)' },
  output_dir: { type: 'string', metavar: 'DIR', help: 'where the built-in tiny model is built (DIR/builtin-tiny-qwen2), as train does', default: 'runs' },
  seed: { type: 'int', help: "seed of the built-in tiny model's weights when it is first built, as train's", default: 42 },
  overwrite: { type: 'boolean', help: 'replace an earlier export at --out', default: false },
};

const USAGE = 'rrec-emotion export --checkpoint=DIR --format=merged|gguf --out=DIR [--dtype=auto|f32|bf16|f16|q8_0]';
const DESCRIPTION = [
  'Folds the trained weights into the base model and writes what other tools load: a Hugging Face',
  'folder (transformers, vLLM, PEFT-free) or a GGUF file with the tokenizer and chat template',
  '(llama.cpp, ollama, LM Studio). The tensor math runs in the native addon, one tensor at a time.',
].join('\n');

export function exportHelp(): string {
  return formatHelp(USAGE, DESCRIPTION, FLAGS);
}

export async function runExport(argv: string[], io: { out?: (text: string) => void } = {}): Promise<number> {
  const out = io.out ?? ((t: string) => console.log(t));
  if (argv.includes('--help') || argv.includes('-h')) {
    out(exportHelp());
    return 0;
  }
  const { flags, positional } = parseFlags(argv, FLAGS);
  noPositional(positional);
  if (flags.format === undefined) throw new CliUsageError(`--format: needed (${FORMATS.join(' or ')})`);
  const format: ExportFormat = oneOf(flags, 'format', FORMATS, 'merged');
  const target = nonEmpty(flags, 'out');
  if (target === undefined) throw new CliUsageError('--out: needed (the folder, or for gguf a .gguf file, to write)');
  const dtype: ExportDtype = oneOf(flags, 'dtype', DTYPES, 'auto');
  if (format === 'merged' && (dtype === 'f16' || dtype === 'q8_0')) throw new CliUsageError(`--dtype: a merged folder is written in f32 or bf16, got "${dtype}"`);
  const t0 = performance.now();
  const r = await exportModel({
    format, out: target, dtype, overwrite: flags.overwrite === true,
    checkpoint: nonEmpty(flags, 'checkpoint') ?? null, model: nonEmpty(flags, 'model') ?? null, pathsFile: nonEmpty(flags, 'paths_file') ?? null,
    outputDir: nonEmpty(flags, 'output_dir') ?? 'runs', seed: intAtLeast(flags, 'seed', 0, 42),
  });
  const what = r.weightsKind === 'adapter' ? `LoRA adapter ${r.weightsDir} folded into ${r.mergedTensors} weights` : r.weightsKind === 'full' ? `full fine-tune weights ${r.weightsDir}` : 'no trained weights (the base model)';
  out([
    `model    ${r.modelDir}`,
    `weights  ${what}`,
    `wrote    ${r.path} (${format}, ${r.dtype}, ${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  ].join('\n'));
  return 0;
}
