/**
 * llama.cpp as a peer through node-llama-cpp, installed apart from the package (it pulls ~650 MB of
 * binaries): `cd test/reference/llama-cpp && npm ci`. Loaded by path, typed locally (the slice of
 * its API used here), CPU only.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const LLAMA_CPP_INSTALL_HINT = 'llama.cpp peer not installed: cd test/reference/llama-cpp && npm ci';

interface NlcSequence {
  evaluate(tokens: number[], o: Record<string, unknown>): AsyncGenerator<number, void, void>;
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
  dispose(): Promise<void>;
}
interface NlcModule {
  getLlama(o: Record<string, unknown>): Promise<NlcLlama>;
  LlamaLogLevel: Record<string, string>;
}

/** node-llama-cpp's package folder under test/reference/llama-cpp, or null. */
export function findNodeLlamaCpp(root: string): string | null {
  const dir = join(root, 'test', 'reference', 'llama-cpp', 'node_modules', 'node-llama-cpp');
  return existsSync(join(dir, 'dist', 'index.js')) ? dir : null;
}

/** Wall-clock times of one generation: start -> every sequence's first token -> the last token. */
export interface GenerationTimes {
  /** Seconds until every sequence had its first token (prefill of all prompts, one sampling step). */
  firstTokenSeconds: number;
  /** Seconds from then until every sequence had `newTokens` tokens. */
  decodeSeconds: number;
  /** Tokens generated after the first one of each sequence. */
  decodeTokens: number;
  totalSeconds: number;
  generatedTokens: number;
}

export class LlamaCpp {
  private constructor(
    private readonly llama: NlcLlama,
    private readonly model: NlcModel,
    readonly threads: number,
  ) {}

  static async load(nlcDir: string, ggufPath: string, threads: number): Promise<LlamaCpp> {
    const nlc = (await import(pathToFileURL(join(nlcDir, 'dist', 'index.js')).href)) as NlcModule;
    const llama = await nlc.getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: nlc.LlamaLogLevel['error'] });
    const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
    return new LlamaCpp(llama, model, threads);
  }

  /**
   * Generates `newTokens` tokens for each prompt concurrently (node-llama-cpp batches the
   * sequences; llama.cpp has no prefix sharing here, so repeated prompts are prefilled again).
   * The context (KV cache) is created before the clock starts.
   */
  async generate(prompts: readonly number[][], newTokens: number, temperature: number): Promise<GenerationTimes> {
    const longest = Math.max(...prompts.map((p) => p.length));
    const ctx = await this.model.createContext({ contextSize: prompts.length * (longest + newTokens + 16), batchSize: 512, sequences: prompts.length, threads: this.threads, flashAttention: false });
    try {
      const t0 = performance.now();
      let firstDone = 0;
      let tFirst = 0;
      await Promise.all(
        prompts.map(async (p, i) => {
          const seq = ctx.getSequence();
          let n = 0;
          for await (const tok of seq.evaluate(p, { temperature, seed: i + 1 })) {
            void tok;
            if (++n === 1 && ++firstDone === prompts.length) tFirst = performance.now();
            if (n >= newTokens) break;
          }
        }),
      );
      const t1 = performance.now();
      return {
        firstTokenSeconds: (tFirst - t0) / 1000,
        decodeSeconds: (t1 - tFirst) / 1000,
        decodeTokens: prompts.length * (newTokens - 1),
        totalSeconds: (t1 - t0) / 1000,
        generatedTokens: prompts.length * newTokens,
      };
    } finally {
      await ctx.dispose();
    }
  }

  async dispose(): Promise<void> {
    await this.model.dispose();
    await this.llama.dispose();
  }
}
