// A straightforward float64 forward pass of the three causal-LM architectures (Llama, Qwen2,
// Gemma2) written from the Hugging Face modeling code, for tests only: readable, slow, no
// dependencies. It reads HF-named tensors + an HF config (as tiny-models.ts makes them), so it is
// a second reference for the addon, independent of llama.cpp. The math is spelled out at the top
// of test/helpers/tiny-models.ts.
//
// One deliberate knob: `ggmlGeluF16`. llama.cpp's CPU backend evaluates GELU (and so Gemma2's
// GEGLU) through a 65536-entry table indexed by the input rounded to f16, whose entries are the
// f32 GELU rounded to f16 (ggml-cpu vec.h, GGML_GELU_FP16). That is a ~2^-11 relative error per
// activation that HF does not have. With the knob on, this forward reproduces the table exactly,
// which lets a test hold llama.cpp to a tight tolerance; with it off (default) it is the HF math.
import { f16BitsToF32, f32ToF16Bits, type TensorSpec } from '../helpers/safetensors-writer.js';
import { headDim, type TinyConfig } from '../helpers/tiny-models.js';

export interface NaiveForwardOptions {
  /** Emulate llama.cpp's f16-table GELU (CPU backend). Default false: exact HF gelu_pytorch_tanh. */
  ggmlGeluF16?: boolean;
  /**
   * Compute RoPE's inv_freq, angle, cos and sin as float32 values, as HF's rotary embedding does
   * (its inv_freq, positions·inv_freq and cos/sin are float32 tensors whatever the model dtype).
   * Default false: float64 throughout. The two differ by ~1e-6 in log-probs at position ~20.
   */
  ropeF32?: boolean;
  /** If given, filled with how often the Gemma2 softcaps bite (raw |value| above the cap). */
  stats?: SoftcapStats;
  /** Return the last layer's hidden states after the final norm [T][hidden] instead of logits (RecPO's embeddings). */
  finalHidden?: boolean;
}

export interface SoftcapStats {
  attnScores: number;
  attnScoresOverCap: number;
  logits: number;
  logitsOverCap: number;
}

export interface NaiveModel {
  config: TinyConfig;
  tensors: TensorSpec[];
}

type Vec = Float64Array;

function rmsNorm(x: Vec, w: Float32Array, eps: number, gemmaPlusOne: boolean): Vec {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = x[i]! * r * (gemmaPlusOne ? 1 + w[i]! : w[i]!);
  return y;
}

/** y = W x (+ b), W stored [out, in] row-major (nn.Linear). */
function linear(w: TensorSpec, x: Vec, b?: TensorSpec): Vec {
  const [out, inn] = w.shape as [number, number];
  if (x.length !== inn) throw new Error(`linear ${w.name}: input has ${x.length} values, weight expects ${inn}`);
  const y = new Float64Array(out);
  const W = w.data;
  for (let o = 0; o < out; o++) {
    let s = b ? b.data[o]! : 0;
    const row = o * inn;
    for (let i = 0; i < inn; i++) s += W[row + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/** HF rotate_half RoPE on one head vector (pairs i, i + d/2), in place. */
function ropeInPlace(v: Vec, offset: number, d: number, pos: number, theta: number, f32: boolean): void {
  const half = d / 2;
  const r = f32 ? Math.fround : (x: number) => x;
  for (let i = 0; i < half; i++) {
    // HF: inv_freq = 1 / base ** (arange(0, d, 2).float() / d); freqs = inv_freq * pos; cos, sin
    const invFreq = r(1 / r(Math.pow(theta, r((2 * i) / d))));
    const ang = r(pos * invFreq);
    const c = r(Math.cos(ang));
    const s = r(Math.sin(ang));
    const a = v[offset + i]!;
    const b = v[offset + i + half]!;
    v[offset + i] = a * c - b * s;
    v[offset + i + half] = b * c + a * s;
  }
}

const silu = (x: number): number => x / (1 + Math.exp(-x));

/** gelu_pytorch_tanh = 0.5 x (1 + tanh(sqrt(2/π) (x + 0.044715 x³))). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

const toF16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/** ggml's CPU GELU: table lookup at f16(x) of f16(gelu_f32(.)); identity past |x| >= 10. */
export function ggmlGeluF16(x: number): number {
  if (x <= -10) return 0;
  if (x >= 10) return x;
  const xh = toF16(x);
  // ggml evaluates the table entry in f32 (tanhf); f64 here differs by far less than the f16 step.
  const g = 0.5 * xh * (1 + Math.tanh(Math.fround(0.7978845608028654) * xh * (1 + Math.fround(0.044715) * xh * xh)));
  return toF16(g);
}

/**
 * Logits [T][vocab] for `tokens` (positions 0..T-1, no cache, batch of one sequence).
 * logits[t] predicts token t+1. With opts.finalHidden: the final-norm hidden states [T][hidden].
 */
export function naiveForward(model: NaiveModel, tokens: readonly number[], opts: NaiveForwardOptions = {}): Vec[] {
  const c = model.config;
  const arch = c.model_type;
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const get = (name: string): TensorSpec => {
    const t = byName.get(name);
    if (!t) throw new Error(`naiveForward(${arch}): tensor ${name} missing`);
    return t;
  };
  const opt = (name: string): TensorSpec | undefined => byName.get(name);

  const hidden = c.hidden_size;
  const nHead = c.num_attention_heads;
  const nKv = c.num_key_value_heads;
  const group = nHead / nKv;
  const d = headDim(c);
  const eps = c.rms_norm_eps;
  const gemma = c.model_type === 'gemma2';
  const T = tokens.length;

  const scale = gemma ? 1 / Math.sqrt(c.query_pre_attn_scalar) : 1 / Math.sqrt(d);
  const attnCap = gemma ? c.attn_logit_softcapping : null;
  const finalCap = gemma ? c.final_logit_softcapping : null;
  const act = gemma ? (opts.ggmlGeluF16 ? ggmlGeluF16 : geluTanh) : silu;

  // Embedding (Gemma2 scales by sqrt(hidden), computed in the activation dtype: f32 here).
  const E = get('model.embed_tokens.weight');
  const embScale = gemma ? Math.fround(Math.sqrt(hidden)) : 1;
  let h: Vec[] = tokens.map((tok) => {
    if (!Number.isInteger(tok) || tok < 0 || tok >= c.vocab_size) throw new Error(`naiveForward: token ${tok} outside vocab ${c.vocab_size}`);
    const x = new Float64Array(hidden);
    for (let i = 0; i < hidden; i++) x[i] = E.data[tok * hidden + i]! * embScale;
    return x;
  });

  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    const sliding = gemma && l % 2 === 0 ? c.sliding_window : null;

    // Attention block.
    const a = h.map((x) => rmsNorm(x, get(`${p}.input_layernorm.weight`).data, eps, gemma));
    const q = a.map((x) => linear(get(`${p}.self_attn.q_proj.weight`), x, opt(`${p}.self_attn.q_proj.bias`)));
    const k = a.map((x) => linear(get(`${p}.self_attn.k_proj.weight`), x, opt(`${p}.self_attn.k_proj.bias`)));
    const v = a.map((x) => linear(get(`${p}.self_attn.v_proj.weight`), x, opt(`${p}.self_attn.v_proj.bias`)));
    for (let t = 0; t < T; t++) {
      const f32 = opts.ropeF32 ?? false;
      for (let hh = 0; hh < nHead; hh++) ropeInPlace(q[t]!, hh * d, d, t, c.rope_theta, f32);
      for (let kh = 0; kh < nKv; kh++) ropeInPlace(k[t]!, kh * d, d, t, c.rope_theta, f32);
    }
    const attnOut: Vec[] = [];
    for (let i = 0; i < T; i++) {
      const o = new Float64Array(nHead * d);
      for (let hh = 0; hh < nHead; hh++) {
        const kh = Math.floor(hh / group);
        const scores: number[] = [];
        const keys: number[] = [];
        for (let j = 0; j <= i; j++) {
          if (sliding !== null && i - j >= sliding) continue; // HF: tril(diagonal=-W) masked
          let s = 0;
          for (let e = 0; e < d; e++) s += q[i]![hh * d + e]! * k[j]![kh * d + e]!;
          s *= scale;
          if (attnCap != null) {
            if (opts.stats) {
              opts.stats.attnScores++;
              if (Math.abs(s) > attnCap) opts.stats.attnScoresOverCap++;
            }
            s = attnCap * Math.tanh(s / attnCap);
          }
          scores.push(s);
          keys.push(j);
        }
        const m = Math.max(...scores);
        let z = 0;
        const w = scores.map((s) => {
          const e = Math.exp(s - m);
          z += e;
          return e;
        });
        keys.forEach((j, n) => {
          const aw = w[n]! / z;
          for (let e = 0; e < d; e++) o[hh * d + e]! += aw * v[j]![kh * d + e]!;
        });
      }
      attnOut.push(o);
    }
    h = h.map((x, t) => {
      let y = linear(get(`${p}.self_attn.o_proj.weight`), attnOut[t]!);
      if (gemma) y = rmsNorm(y, get(`${p}.post_attention_layernorm.weight`).data, eps, true);
      const r = new Float64Array(hidden);
      for (let i = 0; i < hidden; i++) r[i] = x[i]! + y[i]!;
      return r;
    });

    // MLP block.
    const preName = gemma ? `${p}.pre_feedforward_layernorm.weight` : `${p}.post_attention_layernorm.weight`;
    h = h.map((x) => {
      const m = rmsNorm(x, get(preName).data, eps, gemma);
      const g = linear(get(`${p}.mlp.gate_proj.weight`), m);
      const u = linear(get(`${p}.mlp.up_proj.weight`), m);
      const gu = new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) gu[i] = act(g[i]!) * u[i]!;
      let y = linear(get(`${p}.mlp.down_proj.weight`), gu);
      if (gemma) y = rmsNorm(y, get(`${p}.post_feedforward_layernorm.weight`).data, eps, true);
      const r = new Float64Array(hidden);
      for (let i = 0; i < hidden; i++) r[i] = x[i]! + y[i]!;
      return r;
    });
  }

  const normed = h.map((x) => rmsNorm(x, get('model.norm.weight').data, eps, gemma));
  if (opts.finalHidden) return normed;
  const head = c.tie_word_embeddings ? E : get('lm_head.weight');
  return normed.map((n) => {
    const logits = linear(head, n);
    if (finalCap != null) {
      for (let i = 0; i < logits.length; i++) {
        if (opts.stats) {
          opts.stats.logits++;
          if (Math.abs(logits[i]!) > finalCap) opts.stats.logitsOverCap++;
        }
        logits[i] = finalCap * Math.tanh(logits[i]! / finalCap);
      }
    }
    return logits;
  });
}

/** log_softmax over the last axis, in f64. */
export function logSoftmax(logits: Vec): Vec {
  let m = -Infinity;
  for (const x of logits) m = Math.max(m, x);
  let z = 0;
  for (const x of logits) z += Math.exp(x - m);
  const lz = m + Math.log(z);
  return logits.map((x) => x - lz);
}

/** log-probabilities [T][vocab]: naiveForward then logSoftmax per position. */
export function naiveLogprobs(model: NaiveModel, tokens: readonly number[], opts: NaiveForwardOptions = {}): Vec[] {
  return naiveForward(model, tokens, opts).map(logSoftmax);
}
