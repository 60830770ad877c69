// Types for the addon's TEST-ONLY kernel exports (native/addon/kernels_addon.cc), shared by
// test/kernels/ and bench/kernels.ts. Not part of the library's API (src/native.ts leaves them out).

/** Which implementation to run: what the model uses, the portable loops, the AVX-512 or the AVX2 kernels. */
/** 'packed': forward only, W packed once before the timed calls (as the model packs frozen weights at load). */
export type KernelImpl = 'auto' | 'generic' | 'avx512' | 'avx2' | 'packed';
/** Stored weight dtypes; F64 goes with Float64Array activations (the double build). */
export type WeightDtype = 'F32' | 'BF16' | 'F16' | 'F64' | 'BF16_PRODUCTS'; // BF16_PRODUCTS: BF16 weights multiplied in bf16 (Mat::bf16Products)
export type Floats = Float32Array | Float64Array;

export interface KernelExports {
  /** out[M,N] (=|+=) inp[M,K] @ W^T + bias; w holds W [N,K] as stored bytes. Returns seconds for `reps` runs. */
  _matmulForward(
    out: Floats, inp: Floats, w: Uint8Array, dtype: WeightDtype, M: number, K: number, N: number,
    bias: Floats | null, accumulate: boolean, impl?: KernelImpl, reps?: number,
  ): number;
  /** dinp[M,K] += dout[M,N] @ W. */
  _matmulBackwardInput(
    dinp: Floats, dout: Floats, w: Uint8Array, dtype: WeightDtype, M: number, K: number, N: number,
    impl?: KernelImpl, reps?: number,
  ): number;
  /** dweight[N,K] += dout^T @ inp; dbias[N] += column sums of dout (either may be null); bf16Products: dout and inp rounded to bf16 (AVX512_BF16). */
  _matmulBackwardWeight(
    dweight: Floats | null, dbias: Floats | null, dout: Floats, inp: Floats, M: number, K: number, N: number,
    impl?: KernelImpl, reps?: number, bf16Products?: boolean,
  ): number;
  /** threads: what the kernels' OpenMP regions use (OMP_NUM_THREADS, else every core). */
  _matmulKernelInfo(): { avx512: boolean; avx2: boolean; threads: number; smallM: number; bf16Dot: boolean; bf16DotCompiled: boolean };
  /** Opt-in bf16 x bf16 forward (AVX512_BF16) for BF16 weights and M >= smallM. Returns the previous value. */
  _matmulSetBf16Dot(on: boolean): boolean;
  /** Forward: M below smallM uses the dot-product kernel. Returns the previous value. */
  _matmulSetSmallM(smallM: number): number;
  /** The dot kernels split W between threads from this many bytes of W on (default 65536). Returns the previous value. */
  _matmulSetSerialStreamBytes(bytes: number): number;
  /** The forward's dot kernels walk W one row at a time for M up to m rows (default 2; 0 = 6-row tiles). Returns the previous value. */
  _matmulSetRowWalkM(m: number): number;
  /** GFLOP/s of a register-only fp32 FMA loop on every OpenMP thread for `seconds`. */
  _fmaPeak(seconds: number): number;
}

/** The LM head's test-only exports (native/addon/kernels_addon.cc; fused: lm_head_fused.cc, else lm_head.cc). */
export interface LmHeadExports {
  /** logp, lse, entropy (may be null) [n] of hidden [n,C] against W [V,C] at targets. Returns seconds for `reps` runs. */
  _lmHeadForward(
    logp: Float64Array, lse: Float64Array, entropy: Float64Array | null, hidden: Floats, w: Uint8Array, dtype: WeightDtype,
    targets: Int32Array, n: number, C: number, V: number, softcap: number, fused?: boolean, reps?: number,
  ): number;
  /** The sampling rows' second half (logits_rows_lse): soft-caps logits [R,V] in place (softcap > 0), writes lse [R]. Returns seconds for `reps` runs. */
  _logitsRowsLse(logits: Floats, lse: Float64Array, R: number, V: number, softcap: number, reps?: number): number;
  /** dhidden [n,C] += dz W, dw [V,C] += dz^T hidden (dw may be null), dz from dlogp and the forward's lse. */
  _lmHeadBackward(
    dhidden: Floats, dw: Floats | null, hidden: Floats, w: Uint8Array, dtype: WeightDtype, targets: Int32Array,
    lse: Float64Array, dlogp: Float64Array, n: number, C: number, V: number, softcap: number, fused?: boolean, reps?: number,
  ): number;
}
