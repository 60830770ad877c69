/**
 * llama.cpp as the reader of exported GGUF files in tests, through node-llama-cpp installed apart
 * (`cd test/reference/llama-cpp && npm ci`, which .ci/run does; bench/lib/llama-cpp.ts finds it),
 * run in a child process (llama-cpp-child.mjs says why): CPU only, one thread, F32 KV cache, flash
 * attention off, a fresh context per prompt, greedy decoding.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findNodeLlamaCpp } from '../../bench/lib/llama-cpp.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = join(here, '..', '..');
/** node-llama-cpp's folder, or null (the tests that need it skip). */
export const nodeLlamaCppDir = findNodeLlamaCpp(repoRoot);
export const LLAMA_CPP_SKIP_NOTE = 'llama.cpp (node-llama-cpp) not installed: cd test/reference/llama-cpp && npm ci';

export interface LlamaCppReading {
  /** Selected GGUF metadata as node-llama-cpp's reader parsed it ('general.architecture', 'tokenizer.chat_template', ...). */
  metadata: Record<string, unknown>;
  /** ggml type of each tensor by GGUF name (0 F32, 1 F16, 8 Q8_0, 30 BF16). */
  tensorTypes: Record<string, number>;
  /** llama.cpp's tokenization of each text (special tokens parsed). */
  tokens: number[][];
  /** llama.cpp's greedy continuation of each prompt (it does not stop at end-of-turn). */
  greedy: number[][];
}

/** Loads each GGUF file in llama.cpp (one process), tokenizes `texts`, greedy-decodes `newTokens` after each prompt. */
export async function readWithLlamaCpp(files: string[], req: { texts: string[]; prompts: number[][]; newTokens: number }): Promise<LlamaCppReading[]> {
  if (!nodeLlamaCppDir) throw new Error(LLAMA_CPP_SKIP_NOTE);
  const dir = mkdtempSync(join(tmpdir(), 'rrec-llamacpp-req-'));
  try {
    const file = join(dir, 'request.json');
    writeFileSync(file, JSON.stringify({ files, ...req }));
    const { stdout } = await promisify(execFile)(process.execPath, [join(here, 'llama-cpp-child.mjs'), nodeLlamaCppDir, file], { maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as LlamaCppReading[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
