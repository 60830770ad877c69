// AdamW over a parameter set and the global gradient norm. The norm is deterministic: every
// parameter's blocks write partial sums (double) into one array, one block adds them in order.
// AdamW refreshes a parameter's bf16 copy in the same pass (full fine-tuning's master weights).
#include "cuda/ops.h"

namespace rrec_dev {

constexpr int kNormBlocks = 64, kNormThreads = 256;

RREC_KERNEL void sumSquaresKernel(double* partial, const float* g, int64_t n) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) s += double(g[i]) * double(g[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

RREC_KERNEL void sumPartialsKernel(double* out, const double* partial, int n) {
  __shared__ double scratch[32];
  double s = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) s += partial[i];
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = s;
}

struct AdamWStepF {
  float clip, decay, oneMinusBeta1, beta2, oneMinusBeta2, stepSize, bc2sqrt, eps;
};

RREC_KERNEL void adamwKernel(float* value, const float* grad, float* m, float* v, uint16_t* copy, int64_t n, AdamWStepF h) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = grad[i] * h.clip;
    float x = value[i] * h.decay;
    const float mi = m[i] + (g - m[i]) * h.oneMinusBeta1;
    const float vi = v[i] * h.beta2 + g * g * h.oneMinusBeta2;
    const float denom = sqrtf(vi) / h.bc2sqrt + h.eps;
    x -= h.stepSize * mi / denom;
    m[i] = mi;
    v[i] = vi;
    value[i] = x;
    if (copy) copy[i] = f32_to_bf16(x);
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

void gradNormSq(Ctx& c, const rrec_grad_norm_args& a) {
  if (a.count < 0 || (a.count > 0 && (!a.grads || !a.numel))) bad("grads/numel missing");
  if (!a.result) bad("result is missing");
  Temp partial(c, sizeof(double) * (size_t(a.count) * kNormBlocks + 1));
  double* p = partial.as<double>();
  int used = 0;
  for (int i = 0; i < a.count; i++) {
    if (a.numel[i] < 0) bad("numel[" + std::to_string(i) + "] is negative");
    if (a.numel[i] == 0) continue;
    const float* g = ptr<float>(a.grads[i], a.numel[i], "grads[i]");
    RREC_LAUNCH(sumSquaresKernel, kNormBlocks, kNormThreads, 0, c.stream, p + used, g, a.numel[i]);
    launched("grad_norm_sq");
    used += kNormBlocks;
  }
  double* result = p + size_t(a.count) * kNormBlocks;
  RREC_LAUNCH(sumPartialsKernel, 1, kNormThreads, 0, c.stream, result, p, used);
  launched("grad_norm_sq (sum)");
  d2h(a.result, result, sizeof(double), c.stream);
}

void adamw(Ctx& c, const rrec_adamw_args& a) {
  if (a.count < 0 || (a.count > 0 && !a.params)) bad("params missing");
  const AdamWStepF h{static_cast<float>(a.clip), static_cast<float>(a.decay), static_cast<float>(1 - a.beta1), static_cast<float>(a.beta2),
                     static_cast<float>(1 - a.beta2), static_cast<float>(a.step_size), static_cast<float>(a.bc2sqrt), static_cast<float>(a.eps)};
  for (int i = 0; i < a.count; i++) {
    const rrec_adamw_param& p = a.params[i];
    if (p.numel < 0) bad("params[" + std::to_string(i) + "].numel is negative");
    if (p.numel == 0) continue;
    float* value = ptr<float>(p.value, p.numel, "value");
    const float* grad = ptr<float>(p.grad, p.numel, "grad");
    float* m = ptr<float>(p.m, p.numel, "m");
    float* v = ptr<float>(p.v, p.numel, "v");
    uint16_t* copy = ptr<uint16_t>(p.bf16_copy, p.numel, "bf16_copy", true);
    RREC_LAUNCH(adamwKernel, gridFor(p.numel, 256), 256, 0, c.stream, value, grad, m, v, copy, p.numel, h);
    launched("adamw");
  }
}

}  // namespace rrec::cuda
