/**
 * CausalLM: a Hugging Face model folder loaded into the native addon, with LoRA adapters, the
 * differentiable forward (per-token log-probs of chosen targets) and its backward, and AdamW.
 * Every long call returns a Promise and runs off the JS thread.
 */
import { loadNative, type Device, type MatmulPrecision, type NativeAdapterHandle, type NativeBatch, type NativeFloats, type NativeForwardPassHandle, type NativeModelConfig, type NativeModelHandle, type NativeOptimizerHandle, type NativeOptimizerState, type NativeParamInfo } from '../native.js';

import { LORA_MODULES, NATIVE_FORWARD_DEFAULTS, type LoraModule } from '../native-options.generated.js';

/** A projection module LoRA can adapt (native/include/rrec/options.def). */
export type LoraTarget = LoraModule;
export const ALL_LORA_TARGETS: readonly LoraTarget[] = LORA_MODULES;

export interface LoadOptions {
  /** Compute type: float32 (weights may stay bf16 as stored) or float64 (tests, finite differences). */
  dtype?: 'float32' | 'float64';
  /** Train every weight instead of an adapter (copies weights into trainable fp32/fp64 buffers). */
  fullFinetune?: boolean;
  /**
   * Precision of the decoder layers' products with bf16-stored weights, in training and sampling
   * alike. 'fp32' (default): activations stay f32, results match an f32 reference to ~1e-6.
   * 'bf16': activations (and backward's gradients) are rounded to bf16 and multiplied with
   * AVX512_BF16 dot products, about twice as fast, as PyTorch's bf16 matmuls compute; each product
   * is then within ~2^-9 of its row's magnitude (test/kernels/matmul.test.ts bounds it by 4e-3).
   * Applies to the decoder projections and the LM head (the log-softmax stays f32). With
   * fullFinetune the projections multiply bf16 copies of the f32 master weights, which every
   * optimizer step and setParam refresh (the LM head and embedding stay f32). Without the
   * AVX512_BF16 kernels (features().matmulKernels) or with f32 weights in LoRA mode, 'bf16'
   * computes exactly what 'fp32' does.
   */
  matmulPrecision?: MatmulPrecision;
  /**
   * Where the weights live and every op runs: 'auto' (default: the first available CUDA device,
   * else the CPU), 'cpu', 'cuda', 'cuda:N', or the name of any backend `nativeFeatures().backends`
   * lists. A device that is not available is an error naming it and the reason.
   */
  device?: Device;
}

export interface LoraOptions {
  /** Rank r of A [r, in] and B [out, r]. Default 8. */
  rank?: number;
  /** Scale numerator: the update is (alpha / r) B A x. Default 16. */
  alpha?: number;
  /** Dropout on the adapter's input during training passes. Default 0. */
  dropout?: number;
  /** Scale alpha / sqrt(r) instead of alpha / r. Default false. */
  rslora?: boolean;
  /** Modules to adapt. Default all seven. */
  targets?: readonly LoraTarget[];
  /** Seed of A's kaiming-uniform initialisation. Default 0. */
  seed?: number;
}

export interface ForwardOptions {
  /** The adapter to apply; null or absent runs the base model (GRPO's reference). */
  adapter?: LoraAdapter | null;
  /** Also compute each target row's entropy (nats). */
  entropy?: boolean;
  /** Keep activations so backward() can run. Default true. */
  keepForBackward?: boolean;
  /** Apply the adapter's dropout (training passes). Default false. */
  loraDropout?: boolean;
  /** Dropout masks are a pure function of this seed. */
  dropoutSeed?: number;
  /**
   * Activation checkpointing: keep only each decoder layer's input and recompute the layer during
   * backward(). Same gradients (bit for bit), about one more forward pass of time, and the memory
   * of the attention probabilities (heads x L^2 per sequence) and ~10 [tokens, hidden|intermediate]
   * buffers per layer saved: for long sequences or big batches. Default false.
   */
  recomputeActivations?: boolean;
}

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this (<= 0 or absent: no clipping). */
  maxGradNorm?: number;
}

export class ForwardResult {
  /** log p(target | prefix) for each target, in batch order. */
  readonly logp: NativeFloats;
  /** Entropy of each target row's distribution, when asked for. */
  readonly entropy: NativeFloats | null;
  /** [h * hidden] final-norm hidden states at batch.hiddenRows, row-major; null when none were asked for. */
  readonly hidden: NativeFloats | null;
  constructor(private readonly pass: NativeForwardPassHandle) {
    this.logp = pass.logp();
    this.entropy = pass.entropy();
    this.hidden = pass.hidden();
  }
  /**
   * Accumulates d(loss)/d(params) given d(loss)/d(logp) (one value per target) and, optionally,
   * d(loss)/d(hidden) for the hidden rows (same layout as `hidden`). Frees the activations.
   */
  async backward(dlogp: NativeFloats, dhidden?: NativeFloats): Promise<void> {
    if (dlogp.length !== this.logp.length)
      throw new RangeError(`backward: got ${dlogp.length} gradients for ${this.logp.length} targets`);
    if (dhidden && dhidden.length !== (this.hidden?.length ?? 0))
      throw new RangeError(`backward: got ${dhidden.length} hidden-state gradients for ${this.hidden?.length ?? 0} hidden values`);
    await this.pass.backward(dlogp, dhidden ?? null);
  }
  get canBackward(): boolean {
    return this.pass.canBackward();
  }
  /** Frees the activations without a backward. */
  release(): void {
    this.pass.release();
  }
}

/** Trainable tensors shared by adapters and fully fine-tuned models. */
interface ParamHolder {
  params(): NativeParamInfo[];
  getParam(name: string): NativeFloats;
  setParam(name: string, values: NativeFloats): void;
  getGrad(name: string): NativeFloats;
  zeroGrad(): void;
}

/**
 * Access to trainable tensors by name: an adapter's (PEFT names, e.g.
 * base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight) or, in full fine-tune mode, a
 * model's (HF names). Values and gradients are copies.
 */
abstract class TrainableTensors {
  protected abstract get holder(): ParamHolder;
  params(): NativeParamInfo[] {
    return this.holder.params();
  }
  getParam(name: string): NativeFloats {
    return this.holder.getParam(name);
  }
  setParam(name: string, values: NativeFloats): void {
    this.holder.setParam(name, values);
  }
  getGrad(name: string): NativeFloats {
    return this.holder.getGrad(name);
  }
  zeroGrad(): void {
    this.holder.zeroGrad();
  }
}

export class LoraAdapter extends TrainableTensors {
  /** @internal */
  constructor(readonly handle: NativeAdapterHandle, readonly options: Required<Omit<LoraOptions, 'targets'>> & { targets: LoraTarget[] }) {
    super();
  }
  protected get holder(): ParamHolder {
    return this.handle;
  }
  /** alpha / r (or alpha / sqrt(r) with rsLoRA). */
  get scale(): number {
    return this.handle.scale();
  }
}

export class AdamW {
  /** @internal */
  constructor(private readonly handle: NativeOptimizerHandle) {}
  /** Clips (optionally) and applies one AdamW update; resolves to the global grad norm before clipping. */
  step(opts: AdamWOptions): Promise<number> {
    return this.handle.step(opts);
  }
  /** Global L2 norm of the current gradients. */
  gradNorm(): number {
    return this.handle.gradNorm();
  }
  /** Number of steps taken (AdamW's t). */
  get steps(): number {
    return this.handle.steps();
  }
  /** Moments and step count, for exact checkpoint/resume. */
  getState(): NativeOptimizerState {
    return this.handle.getState();
  }
  setState(state: NativeOptimizerState): void {
    this.handle.setState(state);
  }
}

export class CausalLM extends TrainableTensors implements ParamHolder {
  private constructor(private readonly handle: NativeModelHandle, readonly dir: string) {
    super();
  }
  protected get holder(): ParamHolder {
    return this.handle;
  }

  /** Loads config.json + model.safetensors (or a sharded index) from a Hugging Face model folder. */
  static async load(dir: string, opts: LoadOptions = {}): Promise<CausalLM> {
    const native = loadNative();
    const handle = await native.loadModel(dir, {
      dtype: opts.dtype ?? 'float32',
      fullFinetune: opts.fullFinetune ?? false,
      matmulPrecision: opts.matmulPrecision ?? 'fp32',
      device: opts.device ?? 'auto',
    });
    return new CausalLM(handle, dir);
  }

  /** @internal The native handle, for the sampling engine (src/engine). */
  get native(): NativeModelHandle {
    return this.handle;
  }

  get config(): NativeModelConfig {
    return this.handle.config();
  }

  createLora(opts: LoraOptions = {}): LoraAdapter {
    const full = {
      rank: opts.rank ?? 8,
      alpha: opts.alpha ?? 16,
      dropout: opts.dropout ?? 0,
      rslora: opts.rslora ?? false,
      targets: [...(opts.targets ?? ALL_LORA_TARGETS)],
      seed: opts.seed ?? 0,
    };
    return new LoraAdapter(this.handle.createAdapter(full), full);
  }

  async forward(batch: NativeBatch, opts: ForwardOptions = {}): Promise<ForwardResult> {
    const pass = await this.handle.forward(
      { tokens: batch.tokens, seqOffsets: batch.seqOffsets, positions: batch.positions, targetRows: batch.targetRows, targetTokens: batch.targetTokens, hiddenRows: batch.hiddenRows },
      opts.adapter ? opts.adapter.handle : null,
      {
        entropy: opts.entropy ?? NATIVE_FORWARD_DEFAULTS.entropy,
        keepForBackward: opts.keepForBackward ?? NATIVE_FORWARD_DEFAULTS.keepForBackward,
        loraDropout: opts.loraDropout ?? NATIVE_FORWARD_DEFAULTS.loraDropout,
        dropoutSeed: opts.dropoutSeed ?? NATIVE_FORWARD_DEFAULTS.dropoutSeed,
        recomputeActivations: opts.recomputeActivations ?? NATIVE_FORWARD_DEFAULTS.recomputeActivations,
      },
    );
    return new ForwardResult(pass);
  }

  /** AdamW over the adapter's tensors, or over every weight of a model loaded with fullFinetune. */
  createOptimizer(adapter?: LoraAdapter): AdamW {
    return new AdamW(this.handle.createOptimizer(adapter ? adapter.handle : null));
  }

  get busy(): boolean {
    return this.handle.busy();
  }
  /** Releases the weights; refused while a call is running. */
  free(): void {
    this.handle.free();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.free();
  }
}
