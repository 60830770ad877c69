// The implementations behind cpu::matmul_* (ops.h), named so that tests and benchmarks can call
// each one directly: the portable blocked loops (any CPU, T = float or double) and the AVX-512
// register-blocked kernels (T = float, weights F32/BF16/F16). matmul_* in ops.h picks the fastest
// one this binary and CPU support; these are for native/addon/kernels_addon.cc and bench/.
// Shapes as in ops.h: out/inp [M, K] x W [N, K] (nn.Linear layout) -> [M, N].
#pragma once
#include <cstdlib>
#include <cstring>

#include "ops.h"

namespace rrec::cpu {

// Portable blocked loops: the reference the fast kernels are measured against.
template <typename T>
void matmul_forward_generic(T* out, const T* inp, const Mat& w, const T* bias, int M, bool accumulate);
template <typename T>
void matmul_backward_input_generic(T* dinp, const T* dout, const Mat& w, int M);
template <typename T>
void matmul_backward_weight_generic(T* dweight, T* dbias, const T* dout, const T* inp, int M, int K, int N);

// RREC_MATMUL, read by the kernel files' cpuid checks: "generic" turns the AVX-512 and AVX2 kernels
// off, "avx2" only the AVX-512 ones; anything else (or unset) leaves the choice to cpuid.
enum class MatmulOverride { None, Avx2, Generic };
inline MatmulOverride matmul_override() {
  const char* e = std::getenv("RREC_MATMUL");
  if (!e) return MatmulOverride::None;
  if (std::strcmp(e, "generic") == 0) return MatmulOverride::Generic;
  if (std::strcmp(e, "avx2") == 0) return MatmulOverride::Avx2;
  return MatmulOverride::None;
}

// True when the AVX-512 float kernels run here: built for x86-64 (they are compiled for AVX-512
// whatever the build's -march) and this CPU has AVX512 F/BW/DQ/VL, unless RREC_MATMUL=generic.
bool matmul_avx512_compiled();
// True when the bf16-product paths (AVX512_BF16 vdpbf16ps) run here as well.
bool matmul_avx512_bf16();
// Switches the AVX-512 kernels (matmul, LoRA, attention: all ask matmul_avx512_compiled) off, so
// that this process runs what a CPU without AVX-512 runs, or on again where the CPU has them;
// returns the previous state. For tests: switch before loading a model (bf16 weight copies are
// made at load only where the bf16 kernels run).
bool matmul_avx512_set_enabled(bool on);

// AVX-512 float kernels. Each returns false, doing nothing, when it cannot handle the call (not
// compiled in, or a weight dtype other than F32/BF16/F16); the caller then uses the generic path.
// Weight pointers need only their element alignment (2 bytes for BF16/F16, 4 for F32).
bool matmul_forward_avx512(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate);
bool matmul_backward_input_avx512(float* dinp, const float* dout, const Mat& w, int M);
bool matmul_backward_weight_avx512(float* dweight, float* dbias, const float* dout, const float* inp, int M, int K,
                                   int N, bool bf16Products = false);

// AVX2 + FMA kernels (matmul_avx2.cc): the float products on x86-64 CPUs without AVX-512, same
// contract as the AVX-512 entry points (false, doing nothing, when they cannot run here: no
// AVX2/FMA/F16C, RREC_MATMUL=generic, or a weight dtype other than F32/BF16/F16). bf16Products is
// not honoured (float products). matmul_* tries AVX-512, then these, then the portable loops.
bool matmul_avx2_available();
bool matmul_forward_avx2(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate);
bool matmul_backward_input_avx2(float* dinp, const float* dout, const Mat& w, int M);
bool matmul_backward_weight_avx2(float* dweight, float* dbias, const float* dout, const float* inp, int M, int K, int N);
// The AVX2 forward's dot kernels walk W one row at a time for M up to this many rows (default 2,
// at most 5; 0 = always 4-row groups), as the AVX-512 ones do; bit-identical. Returns the previous.
int matmul_avx2_set_row_walk_m(int m);

// Tuning knobs of the AVX-512 forward, for benchmarks: below smallM rows the forward uses
// K-vectorised dot products straight from W (no packing; decode), from smallM on it packs W into
// [K, 32]-panels and runs the register-blocked GEMM. Returns the previous value.
int matmul_avx512_set_small_m(int smallM);
// The dot kernels (M < smallM) split W between threads from this many bytes of W on (default
// 64 KiB; a large value restores the old rule, split from 2^20 multiply-adds). Returns the previous.
int matmul_avx512_set_serial_stream_bytes(int bytes);
// The forward's dot kernels walk W one row at a time, in address order, for M up to this many rows
// (default 2; 0 = always 6-row tiles; at most 4); bit-identical results either way. Returns the previous.
int matmul_avx512_set_row_walk_m(int m);

// Opt-in, off by default: forward with BF16 weights and M >= smallM rounds inp to bf16 and uses
// AVX512_BF16 dot products (vdpbf16ps, twice the f32 FMA rate). Adds a relative error of up to
// 2^-9 per input element, too much for training (the model tests expect f32 accuracy); for
// sampling and evaluation. Also set by RREC_BF16_DOT=1 at load. Ignored (stays 0) when the CPU
// has no AVX512_BF16. Returns the previous value.
int matmul_avx512_set_bf16_dot(int on);

// Weights packed ahead of the forward calls (matmul_packed.cc; Mat::packed). matmul_packable: the
// packed kernels run here for this Mat (AVX-512; BF16 weights with bf16Products and AVX512_BF16,
// K even; or F32 weights). matmul_packed_bytes: the size of its packed form (0: not packable);
// matmul_pack writes it to dst (64-byte aligned, that many bytes), false when not packable.
// matmul_forward_packed: the forward from w.packed, false (nothing done) without one.
bool matmul_packable(const Mat& w);
size_t matmul_packed_bytes(const Mat& w);
bool matmul_pack(void* dst, const Mat& w);
bool matmul_forward_packed(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate);

// Low-rank adapter products (lora_avx512.cc), float, rank r in {1, 2, 4, 8, 16}; row-major, no
// padding. Each returns false, doing nothing, when it cannot run here (no AVX-512, another r);
// the caller then uses the matmul_* products.
// True when they run here for rank r (and have not been switched off).
bool lora_kernels_available(int r);
// Switches them off (false) or on again, for tests and benchmarks; returns the previous setting.
bool lora_kernels_set_enabled(bool on);
//   O[M, r]  = alpha X[M, K] W[r, K]^T
bool lora_project_avx512(float* O, const float* X, const float* W, int M, int K, int r, float alpha);
//   Y[M, K] += alpha P[M, r] W[r, K]
bool lora_expand_avx512(float* Y, const float* P, const float* W, int M, int K, int r, float alpha);
//   G[r, K] += alpha P[M, r]^T X[M, K]
bool lora_grad_avx512(float* G, const float* P, const float* X, int M, int K, int r, float alpha);

}  // namespace rrec::cpu
