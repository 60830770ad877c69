// The LM head on the device: logits of a chunk of rows at a time (never a [n, V] f32 buffer for
// the whole batch: at most kChunkFloats per chunk), Gemma's final soft-cap, the log-sum-exp and
// entropy in double, the target's log-prob; the backward recomputes a chunk's logits, turns them
// into dz in place and multiplies back (dhidden += dz W, dW += dz^T hidden). The sampling rows'
// logits (LOGITS) are written whole, soft-capped, with their lse.
#include "cuda/gemm.h"
#include "cuda/ops.h"

namespace rrec_dev {

constexpr int kRowThreads = 256;

// One block per row of z [rows, V]: soft-cap in place, then lse (and logp, entropy when asked).
RREC_KERNEL void headRows(float* z, int V, float softcap, const int32_t* targets, double* logp, double* lse, double* entropy, int* err) {
  __shared__ float redf[32];
  __shared__ double redd[32];
  float* row = z + int64_t(blockIdx.x) * V;
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += kRowThreads) {
    float x = row[v];
    if (softcap > 0) row[v] = x = softcap * tanhf(x / softcap);
    mx = fmaxf(mx, x);
  }
  mx = warp_max(mx);
  __syncthreads();
  if (threadIdx.x % 32 == 0) redf[threadIdx.x / 32] = mx;
  __syncthreads();
  mx = redf[0];
  for (int w = 1; w < kRowThreads / 32; w++) mx = fmaxf(mx, redf[w]);
  double s = 0;
  for (int v = threadIdx.x; v < V; v += kRowThreads) s += exp(double(row[v]) - double(mx));
  s = block_sum(s, redd);
  const double L = double(mx) + log(s);
  if (entropy) {
    double pz = 0;
    for (int v = threadIdx.x; v < V; v += kRowThreads) pz += exp(double(row[v]) - L) * double(row[v]);
    pz = block_sum(pz, redd);
    if (threadIdx.x == 0) entropy[blockIdx.x] = L - pz;
  }
  if (threadIdx.x == 0) {
    lse[blockIdx.x] = L;
    if (logp) {
      const int t = targets[blockIdx.x];
      if (t < 0 || t >= V) {
        *err = rrec::cuda::kDevTokenRange;
        logp[blockIdx.x] = 0;
      } else {
        logp[blockIdx.x] = double(row[t]) - L;
      }
    }
  }
}

// z -> dz in place: dz_v = dlogp (1[v = target] - p_v) dcap_v
RREC_KERNEL void headGrad(float* z, int V, float softcap, const int32_t* targets, const double* lse, const double* dlogp) {
  float* row = z + int64_t(blockIdx.x) * V;
  const double L = lse[blockIdx.x], g = dlogp[blockIdx.x];
  const int t = targets[blockIdx.x];
  for (int v = threadIdx.x; v < V; v += kRowThreads) {
    float x = row[v];
    float dcap = 1.0f;
    if (softcap > 0) {
      x = softcap * tanhf(x / softcap);
      const float u = x / softcap;
      dcap = 1.0f - u * u;
    }
    const double p = exp(double(x) - L);
    row[v] = static_cast<float>(g * ((v == t ? 1.0 : 0.0) - p) * dcap);
  }
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

namespace {
constexpr int64_t kChunkFloats = int64_t(1) << 24;  // 64 MiB of logits per chunk at most
int chunkRows(int n, int V) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, kChunkFloats / V))); }
}  // namespace

void lmHead(Ctx& c, const rrec_lm_head_args& a, bool backward) {
  positive(a.n, "n");
  const void* w = weight(a.w, "w");
  const int V = a.w.rows, C = a.w.cols, n = a.n;
  const float* hidden = ptr<float>(a.hidden, int64_t(n) * C, "hidden");
  const int32_t* targets = ptr<int32_t>(a.targets, n, "targets");
  const float cap = static_cast<float>(a.softcap);
  const int rows = chunkRows(n, V);
  Temp z(c, sizeof(float) * int64_t(rows) * V);
  const Operand W{w, a.w.t.dtype, C, 1};
  if (!backward) {
    double* logp = ptr<double>(a.logp, n, "logp");
    double* lse = ptr<double>(a.lse, n, "lse");
    double* ent = ptr<double>(a.entropy, n, "entropy", true);
    for (int r0 = 0; r0 < n; r0 += rows) {
      const int m = std::min(rows, n - r0);
      gemmF32(c, z.as<float>(), V, Operand{hidden + int64_t(r0) * C, RREC_F32, C, 1}, W, nullptr, m, V, C, 1.0f, false);
      RREC_LAUNCH(headRows, m, kRowThreads, 0, c.stream, z.as<float>(), V, cap, targets + r0, logp + r0, lse + r0, ent ? ent + r0 : nullptr, c.err);
      launched("lm_head_logprobs");
    }
    return;
  }
  const double* lse = ptr<double>(a.lse, n, "lse");
  const double* dlogp = ptr<double>(a.dlogp, n, "dlogp");
  float* dh = ptr<float>(a.dhidden, int64_t(n) * C, "dhidden", true);
  float* dw = ptr<float>(a.dw, int64_t(V) * C, "dw", true);
  for (int r0 = 0; r0 < n; r0 += rows) {
    const int m = std::min(rows, n - r0);
    gemmF32(c, z.as<float>(), V, Operand{hidden + int64_t(r0) * C, RREC_F32, C, 1}, W, nullptr, m, V, C, 1.0f, false);
    RREC_LAUNCH(headGrad, m, kRowThreads, 0, c.stream, z.as<float>(), V, cap, targets + r0, lse + r0, dlogp + r0);
    launched("lm_head_bwd");
    // dhidden[m, C] += dz[m, V] W[V, C];  dW[V, C] += dz^T hidden
    if (dh) gemmF32(c, dh + int64_t(r0) * C, C, Operand{z.as<float>(), RREC_F32, V, 1}, Operand{w, a.w.t.dtype, 1, C}, nullptr, m, C, V, 1.0f, true);
    if (dw)
      gemmF32(c, dw, C, Operand{z.as<float>(), RREC_F32, 1, V}, Operand{hidden + int64_t(r0) * C, RREC_F32, 1, C}, nullptr, V, C, m, 1.0f, true);
  }
}

void logits(Ctx& c, const rrec_logits_args& a) {
  positive(a.R, "R");
  const void* w = weight(a.w, "w");
  const int V = a.w.rows, C = a.w.cols;
  float* z = ptr<float>(a.logits, int64_t(a.R) * V, "logits");
  double* lse = ptr<double>(a.lse, a.R, "lse");
  const float* hidden = ptr<float>(a.hidden, int64_t(a.R) * C, "hidden");
  gemmF32(c, z, V, Operand{hidden, RREC_F32, C, 1}, Operand{w, a.w.t.dtype, C, 1}, nullptr, a.R, V, C, 1.0f, false);
  RREC_LAUNCH(headRows, a.R, kRowThreads, 0, c.stream, z, V, static_cast<float>(a.softcap), nullptr, nullptr, lse, nullptr, c.err);
  launched("logits");
}

}  // namespace rrec::cuda
