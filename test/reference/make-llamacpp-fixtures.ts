// Regenerates test/fixtures/llamacpp/<arch>.json: llama.cpp's log-probabilities for the tiny
// models of test/helpers/tiny-models.ts, an independent reference for the addon's forward pass.
//
//   cd test/reference/llama-cpp && npm ci && npm run fixtures
//   (npm run fixtures = tsx ../make-llamacpp-fixtures.ts [--gguf-dir DIR] [--check-only])
//
// node-llama-cpp (pinned 3.21.1, ~700 MB of prebuilt binaries) lives only in
// test/reference/llama-cpp/node_modules, never in the package's dependencies; tsx (pinned there too)
// runs this TypeScript file on Node 20. The package is imported by path at run time, so the
// project typechecks and its tests run without it installed: they read the committed fixtures.
//
// For each arch: build the tiny model (F32, seed 1), convert it to GGUF with gguf-writer.ts, load
// it in llama.cpp on the CPU (2 threads, no GPU, F32 KV cache, flash attention off), evaluate each
// prompt as ONE batch with `controlledEvaluate` asking for the next-token probabilities at every
// position, and store log(p) for all 256 tokens at every position. With the greedy sampler (the
// default, temperature 0) node-llama-cpp's probabilities are a plain f32 softmax of llama.cpp's raw
// logits over the whole vocabulary (llama/addon/AddonContext.cpp), so log(p) is the log-softmax.
// Values are rounded to 6 decimal places (absolute error <= 5e-7, well under the test tolerance).
//
// Whole-prompt batches matter for gemma2: llama.cpp's single-token decode path for it deviates by
// ~3e-4 from both HF math and its own batched path (measured; llama/qwen2 are unaffected).
//
// The script also compares with naive-forward.ts and prints the max abs difference per arch.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { encodeGguf, tinyModelGgufKvs, tinyModelGgufTensors } from '../helpers/gguf-writer.js';
import { ARCHS, type Arch, configDigest, makeTinyModel, mulberry32, weightsDigest } from '../helpers/tiny-models.js';
import { naiveLogprobs } from './naive-forward.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
const fixtureDir = join(repoRoot, 'test', 'fixtures', 'llamacpp');
const nlcDir = join(here, 'llama-cpp', 'node_modules', 'node-llama-cpp');

/** Fixture settings shared with the test (test/helpers/helpers.test.ts reads the JSON only). */
export const FIXTURE_SEED = 1;
export const PROMPT_LENGTHS = [5, 9, 16, 24] as const; // 16 and 24 > gemma2's sliding window of 8
export const PROMPT_SEED = 0x5eed1e;

/** Deterministic prompts (token ids < 256), the same for every arch. */
export function fixturePrompts(): number[][] {
  const next = mulberry32(PROMPT_SEED);
  return PROMPT_LENGTHS.map((n) => Array.from({ length: n }, () => next() % 256));
}

export interface LlamaCppFixture {
  generator: string;
  arch: Arch;
  seed: number;
  dtype: 'F32';
  configSha256: string;
  weightsSha256: string;
  ggufSha256: string;
  settings: Record<string, string | number | boolean>;
  prompts: number[][];
  /** logprobs[p][k]: position `position` of prompt p; values[v] = log P(token v | prompt[0..position]). */
  logprobs: { position: number; values: number[] }[][];
}

// The slice of node-llama-cpp's API used here (typed locally so the project typechecks without it).
interface NlcSequence {
  controlledEvaluate(input: [number, { generateNext: { probabilities: true } }][]): Promise<({ next: { probabilities?: Map<number, number> } } | undefined)[]>;
}
interface NlcContext {
  getSequence(): NlcSequence;
  dispose(): Promise<void>;
}
interface NlcModel {
  createContext(o: Record<string, unknown>): Promise<NlcContext>;
  dispose(): Promise<void>;
}
interface NlcLlama {
  loadModel(o: { modelPath: string; gpuLayers: number }): Promise<NlcModel>;
  llamaCppRelease: { repo: string; release: string };
  systemInfo: string;
  buildType: string;
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
  LlamaLogLevel: Record<string, string>;
}

const round6 = (x: number): number => {
  if (!Number.isFinite(x)) throw new Error(`non-finite log-probability ${x}`);
  const r = Number(x.toFixed(6));
  return Object.is(r, -0) ? 0 : r;
};

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const ggufDirArg = args.indexOf('--gguf-dir');
  const checkOnly = args.includes('--check-only');
  const ggufDir = ggufDirArg >= 0 ? args[ggufDirArg + 1]! : mkdtempSync(join(tmpdir(), 'rrec-llamacpp-'));
  mkdirSync(ggufDir, { recursive: true });

  const pkg = JSON.parse(readFileSync(join(nlcDir, 'package.json'), 'utf8')) as { version: string };
  const nlc = (await import(pathToFileURL(join(nlcDir, 'dist', 'index.js')).href)) as NlcModule;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: 2, logLevel: nlc.LlamaLogLevel['error'] });
  const rel = llama.llamaCppRelease;
  const features = llama.systemInfo.replace(/\s+/g, ' ').replace(/^CPU : /, '').replace(/ \|\s*$/, '').trim();
  const generator = `node-llama-cpp ${pkg.version} (llama.cpp ${rel.repo} ${rel.release}, ${llama.buildType} binaries, CPU: ${features})`;
  console.log(generator);

  const settings = {
    backend: 'CPU',
    threads: 2,
    gpuLayers: 0,
    flashAttention: false,
    kvCacheType: 'F32',
    swaFullCache: true,
    batch: 'whole prompt in one batch',
    sampler: 'greedy (probabilities = softmax of raw logits)',
    rounding: '6 decimal places',
  };
  const prompts = fixturePrompts();

  for (const arch of ARCHS) {
    const model = makeTinyModel(arch, { seed: FIXTURE_SEED, dtype: 'F32' });
    const gguf = encodeGguf(tinyModelGgufKvs(model.config), tinyModelGgufTensors(model));
    const ggufPath = join(ggufDir, `tiny-${arch}.gguf`);
    writeFileSync(ggufPath, gguf);

    const lm = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
    const logprobs: LlamaCppFixture['logprobs'] = [];
    let maxHf = 0;
    let maxGgml = 0;
    for (const prompt of prompts) {
      // A fresh context per prompt: positions start at 0 and nothing is cached between prompts.
      const ctx = await lm.createContext({
        contextSize: 256,
        batchSize: 256,
        sequences: 1,
        threads: 2,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
        swaFullCache: true,
      });
      const out = await ctx.getSequence().controlledEvaluate(prompt.map((t) => [t, { generateNext: { probabilities: true } }]));
      const rows = prompt.map((_, position) => {
        const probs = out[position]?.next.probabilities;
        if (!probs || probs.size !== model.config.vocab_size) {
          throw new Error(`${arch}: position ${position}: expected ${model.config.vocab_size} probabilities, got ${probs?.size ?? 'none'}`);
        }
        const values = new Array<number>(model.config.vocab_size);
        for (const [tok, p] of probs) values[tok] = round6(Math.log(p));
        return { position, values };
      });
      await ctx.dispose();
      logprobs.push(rows);

      const hf = naiveLogprobs(model, prompt);
      const gg = arch === 'gemma2' ? naiveLogprobs(model, prompt, { ggmlGeluF16: true }) : hf;
      rows.forEach(({ position, values }) =>
        values.forEach((v, tok) => {
          maxHf = Math.max(maxHf, Math.abs(v - hf[position]![tok]!));
          maxGgml = Math.max(maxGgml, Math.abs(v - gg[position]![tok]!));
        }),
      );
    }
    await lm.dispose();

    const fixture: LlamaCppFixture = {
      generator,
      arch,
      seed: FIXTURE_SEED,
      dtype: 'F32',
      configSha256: configDigest(model.config),
      weightsSha256: weightsDigest(model),
      ggufSha256: createHash('sha256').update(gguf).digest('hex'),
      settings,
      prompts,
      logprobs,
    };
    const text = JSON.stringify(fixture) + '\n';
    const path = join(fixtureDir, `${arch}.json`);
    if (!checkOnly) {
      mkdirSync(fixtureDir, { recursive: true });
      writeFileSync(path, text);
    }
    console.log(
      `${arch}: ${checkOnly ? '(not written)' : path} ${(text.length / 1024).toFixed(1)} KiB; ` +
        `max |llama.cpp - naive(HF math)| = ${maxHf.toExponential(2)}` +
        (arch === 'gemma2' ? `, max |llama.cpp - naive(ggml f16 GELU)| = ${maxGgml.toExponential(2)}` : ''),
    );
  }
  await llama.dispose();
  if (ggufDirArg < 0) rmSync(ggufDir, { recursive: true, force: true });
}

// Run only as a script (the test imports fixturePrompts and the constants).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
