/**
 * The LM head's process CPU time, fused (native/cpu/lm_head_fused.cc) against unfused
 * (native/cpu/lm_head.cc), at Qwen2.5-0.5B's shape: hidden 896, vocabulary 151,936, 1024 target
 * rows, W the tied embedding of a 1-layer random model written by createRandomModel (bf16). CPU
 * time (process.cpuUsage, every thread of the process) rather than wall time, because the machine
 * is shared: run with OMP_NUM_THREADS=1 so that it is one core's work. Modes:
 *   lora-bf16: W stored bf16 with bf16 products (a LoRA model under matmulPrecision bf16, the
 *              trainer's default): forward and backward (dhidden only);
 *   full-f32:  W as f32 master weights (full fine-tune keeps the LM head f32): forward and backward
 *              with dW.
 *   rows-lse:  the sampling rows' soft-cap + log-sum-exp alone (logits_rows_lse, the part of
 *              logits_rows after its product) over R = 1, 4, 16 float rows of V logits, soft-cap 0
 *              (Qwen2.5) and 30 (Gemma2), `--reps` rounds of enough calls for ~0.2 s each; prints
 *              CPU microseconds per row and the largest |lse - float64 lse| (not part of `both`).
 * Fused and unfused runs are interleaved `--reps` times (default 3); min and median are printed.
 *   npx tsc -p bench/tsconfig.json --outDir dist/bench && OMP_NUM_THREADS=1 node dist/bench/bench/lm-head-cpu.js [--reps N] [--mode lora-bf16|full-f32|both|rows-lse]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRandomModel } from '../src/model/create.js';
import { loadNative } from '../src/native.js';

interface LmHeadAddon {
  _lmHeadForward(logp: Float64Array, lse: Float64Array, entropy: Float64Array | null, hidden: Float32Array, w: Uint8Array, dtype: string,
    targets: Int32Array, n: number, C: number, V: number, softcap: number, fused?: boolean): number;
  _logitsRowsLse(logits: Float32Array, lse: Float64Array, R: number, V: number, softcap: number, reps?: number): number;
  _lmHeadBackward(dhidden: Float32Array, dw: Float32Array | null, hidden: Float32Array, w: Uint8Array, dtype: string, targets: Int32Array,
    lse: Float64Array, dlogp: Float64Array, n: number, C: number, V: number, softcap: number, fused?: boolean): number;
}

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const reps = Number(opt('--reps', '3'));
const modeArg = opt('--mode', 'both');
const C = 896, V = 151936, n = 1024;

/** The bytes of one tensor of a safetensors file. */
function tensorBytes(file: string, name: string): Uint8Array {
  const buf = readFileSync(file);
  const hl = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hl).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const t = header[name];
  if (!t) throw new Error(`${file}: no tensor ${name}`);
  return new Uint8Array(buf.buffer, buf.byteOffset + 8 + hl + t.data_offsets[0], t.data_offsets[1] - t.data_offsets[0]);
}

function cpuSeconds(f: () => void): number {
  const t0 = process.cpuUsage();
  f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1e6;
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** rows-lse: CPU time of logits_rows_lse per row, and its error against a float64 log-sum-exp. */
function rowsLse(addon: LmHeadAddon): void {
  let s = 777;
  const rnd = (): number => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
  console.log(`logits_rows_lse CPU microseconds per row, V=${V}, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(unset)'}, ${reps} rounds`);
  for (const cap of [0, 30])
    for (const R of [1, 4, 16]) {
      // logits of a trained LM's spread: normal, sd 3, a few peaks
      const base = Float32Array.from({ length: R * V }, () => 3 * Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()));
      for (let r = 0; r < R; r++) base[r * V + ((r * 7919) % V)] = 25;
      const z = base.slice(), lse = new Float64Array(R);
      addon._logitsRowsLse(z, lse, R, V, cap, 1);
      let err = 0;
      for (let r = 0; r < R; r++) {
        let mx = -Infinity;
        const zr = Array.from(base.subarray(r * V, (r + 1) * V), (x) => (cap > 0 ? cap * Math.tanh(x / cap) : x));
        for (const x of zr) mx = Math.max(mx, x);
        let sum = 0;
        for (const x of zr) sum += Math.exp(x - mx);
        err = Math.max(err, Math.abs(lse[r]! - (mx + Math.log(sum))));
      }
      const calls = Math.max(1, Math.round(400 / R));
      const t: number[] = [];
      for (let k = 0; k < reps; k++) {
        z.set(base);
        t.push((cpuSeconds(() => addon._logitsRowsLse(z, lse, R, V, cap, calls)) / (calls * R)) * 1e6);
      }
      console.log(`  cap=${cap} R=${String(R).padEnd(2)} min ${Math.min(...t).toFixed(1)} us/row  median ${median(t).toFixed(1)} us/row  max |lse - f64| ${err.toExponential(2)}`);
    }
}

async function main(): Promise<void> {
  const addon = loadNative() as unknown as LmHeadAddon;
  if (modeArg === 'rows-lse') return rowsLse(addon);
  const dir = mkdtempSync(join(tmpdir(), 'lm-head-bench-'));
  try {
    await createRandomModel(dir, { architecture: 'qwen2', vocabSize: V, hiddenSize: C, numLayers: 1, numHeads: 14, numKvHeads: 2, intermediateSize: 4864 }, { seed: 1, dtype: 'BF16' });
    const bf16 = Uint8Array.from(tensorBytes(join(dir, 'model.safetensors'), 'model.embed_tokens.weight'));
    const f32 = new Float32Array(V * C);
    const u16 = new Uint16Array(bf16.buffer, bf16.byteOffset, V * C);
    const u32 = new Uint32Array(f32.buffer);
    for (let i = 0; i < V * C; i++) u32[i] = u16[i]! << 16;
    let s = 12345;
    const rnd = (): number => {
      s = (s * 48271) % 2147483647;
      return s / 2147483647;
    };
    // final-norm outputs: unit-variance rows
    const hidden = Float32Array.from({ length: n * C }, () => Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd()));
    const targets = Int32Array.from({ length: n }, () => Math.floor(rnd() * V) % V);
    const dlogp = Float64Array.from({ length: n }, () => rnd() - 0.5);
    const modes = modeArg === 'both' ? ['lora-bf16', 'full-f32'] : [modeArg];
    console.log(`LM head CPU seconds, n=${n} C=${C} V=${V}, OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS ?? '(unset)'}, ${reps} interleaved reps`);
    for (const mode of modes) {
      const w = mode === 'lora-bf16' ? bf16 : new Uint8Array(f32.buffer);
      const dtype = mode === 'lora-bf16' ? 'BF16_PRODUCTS' : 'F32';
      const times: Record<string, number[]> = {};
      const put = (k: string, t: number): void => void (times[k] ??= []).push(t);
      const logps: Record<string, Float64Array> = {};
      for (let r = 0; r < reps; r++)
        for (const fused of [false, true]) {
          const name = fused ? 'fused' : 'unfused';
          const logp = new Float64Array(n), lse = new Float64Array(n), ent = new Float64Array(n);
          put(`${name} forward`, cpuSeconds(() => addon._lmHeadForward(logp, lse, ent, hidden, w, dtype, targets, n, C, V, 0, fused)));
          const dh = new Float32Array(n * C);
          const dw = mode === 'full-f32' ? new Float32Array(V * C) : null;
          put(`${name} backward`, cpuSeconds(() => addon._lmHeadBackward(dh, dw, hidden, w, dtype, targets, lse, dlogp, n, C, V, 0, fused)));
          logps[name] = logp;
        }
      let dmax = 0;
      for (let i = 0; i < n; i++) dmax = Math.max(dmax, Math.abs(logps.fused![i]! - logps.unfused![i]!));
      console.log(`${mode} (max |logp fused - unfused| = ${dmax.toExponential(2)})`);
      for (const [k, t] of Object.entries(times))
        console.log(`  ${k.padEnd(18)} min ${Math.min(...t).toFixed(3)} s  median ${median(t).toFixed(3)} s  (${t.map((x) => x.toFixed(3)).join(', ')})`);
      for (const part of ['forward', 'backward']) {
        const u = median(times[`unfused ${part}`]!), f = median(times[`fused ${part}`]!);
        console.log(`  ${part}: fused / unfused (medians) = ${(f / u).toFixed(3)}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
