// The GEMM kernels' host entry points, shared by gemm.cu's ops and lora.cu.
#pragma once
#include "cuda/common.cuh"

namespace rrec::cuda {

// One operand of C[p][q] (+)= alpha sum_r A(p, r) B(q, r): element (i, r) at data[i * si + r * sr].
struct Operand {
  const void* data;
  int32_t dtype;  // RREC_F32 (A is always F32), or a weight dtype for B
  int64_t si, sr;
};

// f32 products (the SIMT kernel): any strides, any sizes; C[p * ldc + q].
void gemmF32(Ctx& c, float* C, int64_t ldc, Operand A, Operand B, const float* bias, int P, int Q, int R, float alpha, bool accumulate);

}  // namespace rrec::cuda
