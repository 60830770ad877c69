// RMSNorm (w or Gemma's 1 + w) and rotary embeddings, forward and backward, in f32 as the CPU's
// float path computes them (native/cpu/norm_rope.cc): one block per row for the norms, the
// weight gradient one column per thread walking the rows in order.
#include <cmath>

#include "cuda/ops.h"

namespace rrec_dev {

constexpr int kNormThreads = 256;

RREC_KERNEL void rmsnormKernel(float* out, float* rstd, const float* inp, const float* w, int C, float eps, int plusOne) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* x = inp + row * C;
  float ss = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
  ss = block_sum(ss, scratch);
  const float r = 1.0f / sqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[row] = r;
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[row * C + c] = x[c] * r * (plusOne ? 1.0f + w[c] : w[c]);
}

// dx_c += r g_c dy_c - x_c r^3 / C * sum_j dy_j g_j x_j
RREC_KERNEL void rmsnormBwdKernel(float* dinp, const float* dout, const float* inp, const float* w, const float* rstd, int C, int plusOne) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* x = inp + row * C;
  const float* dy = dout + row * C;
  float dot = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += dy[c] * (plusOne ? 1.0f + w[c] : w[c]) * x[c];
  dot = block_sum(dot, scratch);
  const float r = rstd[row], k = dot * r * r * r / float(C);
  for (int c = threadIdx.x; c < C; c += blockDim.x) dinp[row * C + c] += r * (plusOne ? 1.0f + w[c] : w[c]) * dy[c] - x[c] * k;
}

RREC_KERNEL void rmsnormDwKernel(float* dw, const float* dout, const float* inp, const float* rstd, int M, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0;
  for (int m = 0; m < M; m++) s += dout[int64_t(m) * C + c] * inp[int64_t(m) * C + c] * rstd[m];
  dw[c] += s;
}

// One thread per (row, pair i): angle = pos * inv_freq[i] in f32 (HF), cos/sin of it in double
// then rounded to f32 as the CPU does; every head of the row rotated by it.
RREC_KERNEL void ropeKernel(float* x, const int32_t* pos, const float* invFreq, int M, int H, int D, float sign) {
  const int half = D / 2;
  const int64_t n = int64_t(M) * half;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int m = static_cast<int>(i / half), p = static_cast<int>(i % half);
    const float angle = static_cast<float>(pos[m]) * invFreq[p];
    const float cs = static_cast<float>(cos(static_cast<double>(angle)));
    const float sn = sign * static_cast<float>(sin(static_cast<double>(angle)));
    for (int h = 0; h < H; h++) {
      float* v = x + (int64_t(m) * H + h) * D;
      const float a = v[p], b = v[p + half];
      v[p] = a * cs - b * sn;
      v[p + half] = b * cs + a * sn;
    }
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

void rmsnorm(Ctx& c, const rrec_rmsnorm_args& a) {
  positive(a.M, "M");
  positive(a.C, "C");
  const int64_t n = int64_t(a.M) * a.C;
  float* out = ptr<float>(a.out, n, "out");
  float* rstd = ptr<float>(a.rstd, a.M, "rstd");
  const float* x = ptr<float>(a.inp, n, "inp");
  const float* w = ptr<float>(a.weight, a.C, "weight");
  RREC_LAUNCH(rmsnormKernel, a.M, kNormThreads, 0, c.stream, out, rstd, x, w, a.C, static_cast<float>(a.eps), a.plus_one);
  launched("rmsnorm");
}

void rmsnormBwd(Ctx& c, const rrec_rmsnorm_args& a) {
  positive(a.M, "M");
  positive(a.C, "C");
  const int64_t n = int64_t(a.M) * a.C;
  const float* rstd = ptr<float>(a.rstd, a.M, "rstd");
  const float* x = ptr<float>(a.inp, n, "inp");
  const float* w = ptr<float>(a.weight, a.C, "weight");
  float* dx = ptr<float>(a.dinp, n, "dinp");
  float* dw = ptr<float>(a.dweight, a.C, "dweight", true);
  const float* dy = ptr<float>(a.dout, n, "dout");
  RREC_LAUNCH(rmsnormBwdKernel, a.M, kNormThreads, 0, c.stream, dx, dy, x, w, rstd, a.C, a.plus_one);
  launched("rmsnorm_bwd");
  if (dw) {
    RREC_LAUNCH(rmsnormDwKernel, (a.C + 127) / 128, 128, 0, c.stream, dw, dy, x, rstd, a.M, a.C);
    launched("rmsnorm_bwd dweight");
  }
}

void rope(Ctx& c, const rrec_rope_args& a, bool backward) {
  positive(a.M, "M");
  positive(a.H, "H");
  if (a.D <= 0 || a.D % 2) bad("D must be positive and even, got " + std::to_string(a.D));
  float* x = ptr<float>(a.x, int64_t(a.M) * a.H * a.D, "x");
  const int32_t* pos = ptr<int32_t>(a.pos, a.M, "pos");
  // inv_freq as HF builds it: theta ^ -(2i / D) with the exponent in f32, the power in double
  const int half = a.D / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; i++)
    inv[i] = 1.0f / static_cast<float>(std::pow(a.theta, static_cast<double>(static_cast<float>(2 * i) / static_cast<float>(a.D))));
  Temp t(c, sizeof(float) * half);
  h2d(t.p, inv.data(), sizeof(float) * half, c.stream);
  RREC_LAUNCH(ropeKernel, gridFor(int64_t(a.M) * half, 128), 128, 0, c.stream, x, pos, t.as<float>(), a.M, a.H, a.D, backward ? -1.0f : 1.0f);
  launched(backward ? "rope_bwd" : "rope");
}

}  // namespace rrec::cuda
