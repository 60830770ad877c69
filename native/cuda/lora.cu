// LoRA on one projection (backend_abi.h, rrec_lora_args): y += scale (drop(x) A^T) B^T and its
// backward, as f32 GEMMs (gemm.h) around a dropout kernel whose mask is the CPU's bit for bit:
// rrec::hashUniform(seed, layer * 7 + module, row * in + col) < p drops (native/include/rrec/rng.h,
// the same splitmix64 steps on the device).
#include "cuda/gemm.h"
#include "cuda/ops.h"

namespace rrec_dev {

RREC_DEV uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
RREC_DEV double hashUniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return static_cast<double>(splitmix64(splitmix64(seed ^ splitmix64(stream)) + counter) >> 11) * (1.0 / 9007199254740992.0);
}

constexpr int kModules = 7;

// out[i] (+)= v[i] * mask(i), mask 0 or 1 / (1 - p)
RREC_KERNEL void dropoutKernel(float* out, const float* v, int64_t n, double p, uint64_t seed, uint64_t stream, int accumulate) {
  const float keep = static_cast<float>(1.0 / (1.0 - p));
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float m = hashUniform(seed, stream, static_cast<uint64_t>(i)) < p ? 0.0f : keep;
    out[i] = accumulate ? out[i] + v[i] * m : v[i] * m;
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

namespace {

struct Lora {
  int M, in, out, r;
  float* y;
  const float *x, *A, *B;
  float* xa;
};

Lora check(const rrec_lora_args& a, bool backward) {
  positive(a.M, "M");
  positive(a.in, "in");
  positive(a.out, "out");
  positive(a.r, "r");
  if (!(a.dropout >= 0 && a.dropout < 1)) bad("dropout must be in [0, 1), got " + std::to_string(a.dropout));
  Lora l;
  l.M = a.M, l.in = a.in, l.out = a.out, l.r = a.r;
  l.y = ptr<float>(a.y, int64_t(a.M) * a.out, backward ? "y (dy)" : "y");
  l.x = ptr<float>(a.x, int64_t(a.M) * a.in, "x");
  l.A = ptr<float>(a.a, int64_t(a.r) * a.in, "a");
  l.B = ptr<float>(a.b, int64_t(a.out) * a.r, "b");
  l.xa = ptr<float>(a.xa, int64_t(a.M) * a.r, "xa");
  return l;
}

void dropout(Ctx& c, float* out, const float* v, int64_t n, const rrec_lora_args& a, bool accumulate) {
  const uint64_t stream = static_cast<uint64_t>(a.layer) * kModules + static_cast<uint64_t>(a.module);
  RREC_LAUNCH(dropoutKernel, gridFor(n, 256), 256, 0, c.stream, out, v, n, a.dropout, a.dropout_seed, stream, accumulate ? 1 : 0);
  launched("lora dropout");
}

}  // namespace

void lora(Ctx& c, const rrec_lora_args& a) {
  const Lora l = check(a, false);
  const int64_t nx = int64_t(l.M) * l.in;
  Temp xd(c, a.dropout > 0 ? sizeof(float) * nx : 1);
  const float* src = l.x;
  if (a.dropout > 0) {
    dropout(c, xd.as<float>(), l.x, nx, a, false);
    src = xd.as<float>();
  }
  // xa[M, r] = drop(x) A^T;  y[M, out] += scale xa B^T
  gemmF32(c, l.xa, l.r, Operand{src, RREC_F32, l.in, 1}, Operand{l.A, RREC_F32, l.in, 1}, nullptr, l.M, l.r, l.in, 1.0f, false);
  gemmF32(c, l.y, l.out, Operand{l.xa, RREC_F32, l.r, 1}, Operand{l.B, RREC_F32, l.r, 1}, nullptr, l.M, l.out, l.r, static_cast<float>(a.scale), true);
}

void loraBwd(Ctx& c, const rrec_lora_args& a) {
  const Lora l = check(a, true);
  float* dx = ptr<float>(a.dx, int64_t(l.M) * l.in, "dx", true);
  float* da = ptr<float>(a.da, int64_t(l.r) * l.in, "da", true);
  float* db = ptr<float>(a.db, int64_t(l.out) * l.r, "db", true);
  const float s = static_cast<float>(a.scale);
  const float* dy = l.y;
  const int64_t nx = int64_t(l.M) * l.in;
  // db[out, r] += s dy^T xa
  if (db) gemmF32(c, db, l.r, Operand{dy, RREC_F32, 1, l.out}, Operand{l.xa, RREC_F32, 1, l.r}, nullptr, l.out, l.r, l.M, s, true);
  if (!da && !dx) return;
  // dxa[M, r] = s dy B
  Temp dxa(c, sizeof(float) * int64_t(l.M) * l.r);
  gemmF32(c, dxa.as<float>(), l.r, Operand{dy, RREC_F32, l.out, 1}, Operand{l.B, RREC_F32, 1, l.r}, nullptr, l.M, l.r, l.out, s, false);
  if (da) {
    // da[r, in] += dxa^T drop(x)
    Temp xd(c, a.dropout > 0 ? sizeof(float) * nx : 1);
    const float* src = l.x;
    if (a.dropout > 0) {
      dropout(c, xd.as<float>(), l.x, nx, a, false);
      src = xd.as<float>();
    }
    gemmF32(c, da, l.in, Operand{dxa.as<float>(), RREC_F32, 1, l.r}, Operand{src, RREC_F32, 1, l.in}, nullptr, l.r, l.in, l.M, 1.0f, true);
  }
  if (dx) {
    // dx += drop'(dxa A): the mask applied again
    if (a.dropout > 0) {
      Temp t(c, sizeof(float) * nx);
      gemmF32(c, t.as<float>(), l.in, Operand{dxa.as<float>(), RREC_F32, l.r, 1}, Operand{l.A, RREC_F32, 1, l.in}, nullptr, l.M, l.in, l.r, 1.0f, false);
      dropout(c, dx, t.as<float>(), nx, a, true);
    } else {
      gemmF32(c, dx, l.in, Operand{dxa.as<float>(), RREC_F32, l.r, 1}, Operand{l.A, RREC_F32, 1, l.in}, nullptr, l.M, l.in, l.r, 1.0f, true);
    }
  }
}

}  // namespace rrec::cuda
