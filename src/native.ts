/**
 * The one place that loads the compiled addon and types its whole surface.
 *
 * Resolution follows node-gyp-build: `prebuilds/<platform>-<arch>/*.node` (prebuildify layout)
 * first, then `build/Release/rrec_emotion.node` from a source build. A missing binary fails with a
 * message that says where we looked and how to build it.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeForwardOptions, NativeSamplingParams } from './native-options.generated.js';

export type { NativeForwardOptions, NativeSamplingParams } from './native-options.generated.js';

/** What this build of the native core can do. */
export interface NativeFeatures {
  /** Version of the native core, e.g. "0.1.0". */
  version: string;
  /** Widest SIMD the binary was compiled for: "avx512" | "avx2" | "sse2" | "none". */
  compiledSimd: string;
  /** Widest SIMD the running CPU supports. */
  cpuSimd: string;
  /** Whether the CPU has AVX512_BF16 (used by the bf16 kernels). */
  avx512bf16: boolean;
  /**
   * Matmul kernels chosen at run time: "avx512-bf16" (AVX-512 with bf16 products), "avx512",
   * "avx2" (AVX2 + FMA, float products), or "generic" (portable loops, compiled for `compiledSimd`).
   * The AVX-512 and AVX2 kernels are built into every x86-64 binary and used when this CPU has
   * them, so a binary built for x86-64-v2 (the prebuilt ones) still runs them here;
   * RREC_MATMUL=avx2 skips the AVX-512 ones, RREC_MATMUL=generic forces the portable loops.
   */
  matmulKernels: 'avx512-bf16' | 'avx512' | 'avx2' | 'generic';
  /** Whether a CUDA backend library (librrec_cuda.so) was found (see `backends` for whether it can run). */
  cudaCompiled: boolean;
  /** Every backend found: the built-in CPU backend first, then the libraries loaded at run time. */
  backends: NativeBackendListing[];
  /** Folders searched for backend libraries (librrec_<name>.so). */
  backendSearchPath: string[];
  /** Worker threads the CPU backend uses (env RREC_NUM_THREADS, else the hardware count). */
  threads: number;
  /** Hardware threads reported by the OS. */
  hardwareThreads: number;
}

/** One entry of rrec/options.def as the addon reports it. */
export interface NativeOptionEntry {
  name: string;
  kind: string;
  doc: string;
}

/** One backend the addon can run on (native/include/rrec/backend_registry.h). */
export interface NativeBackendListing {
  /** 'cpu', 'cuda', 'cuda-emu', ... (what `device` takes, with ':N' for device N). */
  name: string;
  /** The shared library it came from; null for the built-in CPU backend. */
  library: string | null;
  available: boolean;
  /** Why it cannot be used ("no CUDA driver", "library failed to load: ...", ...); null when available. */
  reason: string | null;
  devices: number;
  /** The library's build description as JSON text (architectures, runtime and driver versions), "{}" if none. */
  info: string;
}

/** A device as opened: what describeDevice() reports. */
export interface NativeDeviceInfo {
  /** 'cpu', 'cuda:0', ... */
  device: string;
  backend: string;
  name: string;
  description: string;
  totalMemory: number;
  freeMemory: number;
  /** '9.0' on an H100/H200; null on the CPU. */
  computeCapability: string | null;
  /** Whether bf16 products run there (see LoadOptions.matmulPrecision). */
  bf16Products: boolean;
}

/** Where a model runs: 'auto' (the first available CUDA device, else the CPU), 'cpu', 'cuda', 'cuda:N', or any listed backend's name. */
export type Device = 'auto' | 'cpu' | 'cuda' | `cuda:${number}` | (string & {});

/** Float arrays the addon returns: Float32Array for float32 models, Float64Array for float64 ones. */
export type NativeFloats = Float32Array | Float64Array;

/** A packed ragged batch (see src/model/batch.ts). */
export interface NativeBatch {
  tokens: Int32Array;
  seqOffsets: Int32Array;
  positions?: Int32Array;
  targetRows: Int32Array;
  targetTokens: Int32Array;
  /** Rows whose final-norm hidden state the pass returns (RecPO's embeddings). */
  hiddenRows?: Int32Array;
}

export interface NativeModelConfig {
  architecture: 'llama' | 'qwen2' | 'gemma2';
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  tiedEmbeddings: boolean;
  slidingWindow: number;
  attnSoftcap: number;
  finalSoftcap: number;
  dtype: 'float32' | 'float64';
  fullFinetune: boolean;
  /** 'bf16': decoder projections multiply bf16 x bf16 where the CPU can (see LoadOptions.matmulPrecision). */
  matmulPrecision: MatmulPrecision;
  /** The device the model's weights live on: 'cpu', 'cuda:0', ... */
  device: string;
  /**
   * Bytes of the packed forward copies of the decoder weights (the CPU packs frozen weights once at
   * load into the layout its forward kernels stream; one more copy of the decoder projections);
   * 0 when none were made: a full fine-tune, another device, no AVX-512, or RREC_PACKED_WEIGHTS=0.
   */
  packedWeightBytes: number;
}

/** Precision of the decoder layers' matrix products against bf16-stored weights. */
export type MatmulPrecision = 'fp32' | 'bf16';

export interface NativeParamInfo {
  name: string;
  shape: number[];
}

export interface NativeAdapterHandle {
  params(): NativeParamInfo[];
  getParam(name: string): NativeFloats;
  setParam(name: string, values: NativeFloats): void;
  getGrad(name: string): NativeFloats;
  zeroGrad(): void;
  scale(): number;
}

export interface NativeForwardPassHandle {
  logp(): NativeFloats;
  entropy(): NativeFloats | null;
  canBackward(): boolean;
  /** [h * hidden] final-norm hidden states at batch.hiddenRows; null when none were asked for. */
  hidden(): NativeFloats | null;
  /** dlogp [n]; dhidden [h * hidden] (dLoss/dhidden of the hidden rows), optional. */
  backward(dlogp: NativeFloats, dhidden?: NativeFloats | null): Promise<void>;
  release(): void;
}

export interface NativeOptimizerState {
  step: number;
  m: NativeFloats[];
  v: NativeFloats[];
}

export interface NativeOptimizerHandle {
  step(h: { lr: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; maxGradNorm?: number }): Promise<number>;
  gradNorm(): number;
  steps(): number;
  getState(): NativeOptimizerState;
  setState(state: NativeOptimizerState): void;
}

export interface NativeModelHandle {
  config(): NativeModelConfig;
  createAdapter(cfg: { rank?: number; alpha?: number; dropout?: number; rslora?: boolean; targets?: string[]; seed?: number }): NativeAdapterHandle;
  forward(
    batch: NativeBatch,
    adapter: NativeAdapterHandle | null,
    opts: NativeForwardOptions,
  ): Promise<NativeForwardPassHandle>;
  params(): NativeParamInfo[];
  getParam(name: string): NativeFloats;
  setParam(name: string, values: NativeFloats): void;
  getGrad(name: string): NativeFloats;
  zeroGrad(): void;
  createOptimizer(adapter: NativeAdapterHandle | null): NativeOptimizerHandle;
  busy(): boolean;
  free(): void;
}

export interface NativeEngineRequest extends NativeSamplingParams {
  prompt: Int32Array;
}

/** Tokens sampled in one engine step (or ended by abort), one entry per event. */
export interface NativeStepEvents {
  request: Int32Array;
  sample: Int32Array;
  /** -1 for an event that only reports a finish (abort). */
  token: Int32Array;
  logprob: Float32Array;
  /** 0 running, 1 stop, 2 length, 3 abort. */
  finish: Uint8Array;
  /** Whether the session still has unfinished sequences. */
  active: boolean;
}

export interface NativeEngineStats {
  steps: number;
  prefillTokens: number;
  decodeTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
  decodeOnlyTokens: number;
  preemptions: number;
  peakBlocks: number;
  /** Blocks in use now (0 between generations). */
  usedBlocks: number;
  numBlocks: number;
  blockSize: number;
  blockBytes: number;
}

export interface NativeEngineHandle {
  /** Opens a session; false when there was nothing to do. Throws if one is open or a request is invalid. */
  start(requests: NativeEngineRequest[], adapter: NativeAdapterHandle | null): boolean;
  step(): Promise<NativeStepEvents>;
  abort(): NativeStepEvents;
  active(): boolean;
  stats(): NativeEngineStats;
  resetStats(): void;
  free(): void;
}

export interface NativeTokenBytes {
  bytes: Uint8Array;
  offsets: Int32Array;
}

/** A dtype a tensor is stored in (safetensors names). */
export type NativeStoredDtype = 'F32' | 'BF16' | 'F16';

/**
 * One tensor of a weight export (native/addon/export_tensor.h): decode `src` ([rows, cols],
 * row-major; a 1-D tensor of n values is rows n, cols 1), fold `lora` in (W += scale * B @ A),
 * add 1 (`addOne`), permute each of `permuteHeads` heads' rows from HF's RoPE pairing to GGUF
 * llama's, encode as `outDtype` (Q8_0: ggml's blocks of 32, cols % 32 == 0).
 */
export interface NativeTensorTransform {
  src: Uint8Array;
  srcDtype: NativeStoredDtype;
  rows: number;
  cols: number;
  /** a: lora_A [rank, cols], b: lora_B [rows, rank], as stored. */
  lora?: { a: Uint8Array; aDtype: NativeStoredDtype; b: Uint8Array; bDtype: NativeStoredDtype; rank: number; scale: number } | null;
  addOne?: boolean;
  permuteHeads?: number;
  outDtype: NativeStoredDtype | 'Q8_0';
}

/** The addon's exports, typed in one place. Grows with each native feature. */
export interface NativeAddon {
  features(): NativeFeatures;
  loadModel(dir: string, opts: { dtype?: 'float32' | 'float64'; fullFinetune?: boolean; matmulPrecision?: MatmulPrecision; device?: Device }): Promise<NativeModelHandle>;
  /** Loads one more backend library (librrec_<name>.so) and returns its listing. */
  addBackendLibrary(path: string): NativeBackendListing;
  /** The option lists the addon was compiled from (native/include/rrec/options.def). */
  optionTables(): { sampling: NativeOptionEntry[]; forward: NativeOptionEntry[]; loraModules: { name: string; parent: string }[] };
  /** Opens a device off the JS thread and describes it; rejects naming the device and why it is unavailable. */
  describeDevice(device: Device): Promise<NativeDeviceInfo>;
  /** N from a safetensors file's first 8 bytes, checked against the file size (the one validator: native/core/safetensors_header.cc). */
  safetensorsHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number;
  /** A safetensors header validated against the file size; throws an Error with `problem` and `tensor`. */
  parseSafetensorsHeader(
    file: string,
    json: Uint8Array,
    fileSize: number,
  ): { metadata: Record<string, string> | null; tensors: { name: string; dtype: string; shape: number[]; begin: number; end: number }[] };
  /** The encoded bytes of one exported tensor (runs off the JS thread). */
  transformTensor(t: NativeTensorTransform): Promise<Uint8Array>;
  createEngine(
    model: NativeModelHandle,
    opts: { kvBudgetBytes?: number; kvMemoryFraction?: number; blockSize?: number; maxBatchTokens?: number; maxRunning?: number; prefixSharing?: boolean },
    tokenBytes: NativeTokenBytes | null,
  ): NativeEngineHandle;
  /** Test-only: `count` draws of the engine's sampler from given logits (draw i uses token index startIndex + i); Float32Array logits take the float models' path, Float64Array the float64 build's. */
  _sampleFromLogits(
    logits: Float32Array | Float64Array,
    params: NativeSamplingParams,
    opts: { count?: number; sample?: number; startIndex?: number; history?: Int32Array; promptLen?: number; allowed?: Uint8Array },
  ): Int32Array;
}

/** Raised when the compiled addon cannot be found or loaded. */
export class NativeLoadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NativeLoadError';
  }
}

const require = createRequire(import.meta.url);

/** The folder holding this package's package.json (works from src/ under tests and from dist/). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'rrec-emotion') return dir;
      } catch {
        // an unreadable package.json is not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir) throw new NativeLoadError(`rrec-emotion: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

let cached: NativeAddon | undefined;

/** The folder of the optional `@rrec-emotion/linux-x64-cuda` package (librrec_cuda.so), when installed. */
function optionalCudaPackage(): string | undefined {
  try {
    return dirname(require.resolve('@rrec-emotion/linux-x64-cuda/package.json'));
  } catch {
    return undefined;
  }
}

/** Loads (once) and returns the native addon. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  const override = process.env.RREC_NATIVE_BINARY;
  // libgomp reads its settings when the addon loads it. Unset, its spin-wait between parallel
  // regions drops to 1000 iterations here (it counts the teams of several calling threads against
  // the cores), so workers sleep on a futex between the many short regions of a decode step and
  // each wake-up costs a system call; explicitly 300000 (libgomp's usual default, well under a
  // millisecond of spinning) measured 15% faster single-sequence decode on 2 cores (2026-11-25).
  process.env.GOMP_SPINCOUNT ??= '300000';
  // Backend libraries: besides the addon's own folder, <package>/backends (where a local CMake
  // build puts librrec_cuda.so) and the optional prebuilt CUDA package. Read by the registry on
  // its first use, so set before anything is loaded; a user's RREC_BACKEND_PATH comes first.
  process.env.RREC_BACKEND_PATH = [process.env.RREC_BACKEND_PATH, join(root, 'backends'), optionalCudaPackage()]
    .filter((p): p is string => !!p)
    .join(':');
  try {
    if (override) {
      cached = require(override) as NativeAddon;
    } else {
      const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
      cached = nodeGypBuild(root) as NativeAddon;
    }
  } catch (err) {
    const looked = override
      ? override
      : `${join(root, 'prebuilds', `${process.platform}-${process.arch}`)}/*.node and ${join(root, 'build', 'Release', 'rrec_emotion.node')}`;
    throw new NativeLoadError(
      `rrec-emotion: the native addon could not be loaded (looked for ${looked}).\n` +
        `Build it from source with \`npm run build:native\` (needs python3, make and a C++17 compiler), ` +
        `or reinstall with \`npm install\`.\nCause: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  return cached;
}
