/**
 * Timing our CPU matmul kernels directly through the addon's test-only exports
 * (native/addon/kernels_addon.cc): deterministic operands per case, a timed batch of about
 * `batchSeconds` calibrated once per case and implementation, GFLOP/s = 2 M K N / seconds.
 */
import { loadNative } from '../../src/native.js';
import type { Floats, KernelExports, KernelImpl } from '../../test/kernels/kernels-addon.js';
import { median } from './figures.js';
import type { GemmCase } from './gemm-peer.js';

export type KernelAddon = KernelExports & {
  /** GB/s of reading a buffer of `megabytes` MiB `passes` times with every OpenMP thread. */
  _memReadBandwidth(megabytes: number, passes: number): number;
  /** GFLOP/s of a register-only vdpbf16ps loop on every OpenMP thread; null without AVX512_BF16. */
  _bf16Peak(seconds: number): number | null;
};

export function kernelAddon(): KernelAddon {
  return loadNative() as unknown as KernelAddon;
}

export function randomFloats(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = ((s >>> 8) & 0xffff) / 65536 - 0.5;
  }
  return a;
}

/** W [N, K] as stored bytes: f32, or bf16 rounded to nearest even. */
export function weightBytes(N: number, K: number, dtype: 'F32' | 'BF16'): Uint8Array {
  const f = randomFloats(N * K, N + K);
  if (dtype === 'F32') return new Uint8Array(f.buffer);
  const u32 = new Uint32Array(f.buffer);
  const h = new Uint16Array(N * K);
  for (let i = 0; i < h.length; i++) h[i] = (u32[i]! + 0x7fff + ((u32[i]! >>> 16) & 1)) >>> 16;
  return new Uint8Array(h.buffer);
}

export const gemmFlops = (c: GemmCase): number => 2 * c.M * c.K * c.N;

export class MatmulTimer {
  private readonly buffers = new Map<GemmCase, { w: Uint8Array; a: Float32Array; b: Float32Array; dw: Float32Array | null }>();
  private readonly reps = new Map<string, number>();

  constructor(
    private readonly addon: KernelExports,
    private readonly batchSeconds: number,
  ) {}

  private buffersFor(c: GemmCase) {
    let b = this.buffers.get(c);
    if (!b) {
      const big = c.M * Math.max(c.K, c.N);
      b = {
        w: c.op === 'bwdW' ? new Uint8Array(0) : weightBytes(c.N, c.K, c.dtype),
        a: randomFloats(big, 1),
        b: randomFloats(big, 2),
        dw: c.op === 'bwdW' ? randomFloats(c.N * c.K, 3) : null,
      };
      this.buffers.set(c, b);
    }
    return b;
  }

  /** Seconds of `reps` calls; `products`: BF16 weights multiplied in bf16 (Mat::bf16Products, matmulPrecision 'bf16'). */
  run(c: GemmCase, impl: KernelImpl, reps: number, products = false): number {
    const b = this.buffersFor(c);
    const dtype = products && c.dtype === 'BF16' ? 'BF16_PRODUCTS' : c.dtype;
    if (c.op === 'fwd') return this.addon._matmulForward(b.b, b.a, b.w, dtype, c.M, c.K, c.N, null, false, impl, reps);
    if (c.op === 'bwdI') return this.addon._matmulBackwardInput(b.b, b.a, b.w, dtype, c.M, c.K, c.N, impl, reps);
    return this.addon._matmulBackwardWeight(b.dw as Floats, null, b.a, b.b, c.M, c.K, c.N, impl, reps);
  }

  /** GFLOP/s of one timed batch of about batchSeconds (the batch size is calibrated on first use). */
  measure(c: GemmCase, impl: KernelImpl, products = false): number {
    const key = `${c.op} ${c.dtype} ${c.M} ${c.K} ${c.N} ${impl} ${products}`;
    let reps = this.reps.get(key);
    if (reps === undefined) {
      this.run(c, impl, 1, products); // warm: scratch buffers, pages, caches
      const one = Math.max(this.run(c, impl, 1, products), 1e-7);
      reps = Math.max(1, Math.round(this.batchSeconds / one));
      this.reps.set(key, reps);
    }
    return (gemmFlops(c) * reps) / this.run(c, impl, reps, products) / 1e9;
  }

  /** The median of `batches` timed batches: what bench/peer_gemm.cc reports for a peer. */
  measureMedian(c: GemmCase, impl: KernelImpl, batches = 5, products = false): number {
    return median(Array.from({ length: batches }, () => this.measure(c, impl, products)));
  }
}
