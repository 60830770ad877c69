// Every op on every backend: each registered backend (the built-in CPU backend, and every library
// the registry finds next to this binary or in RREC_BACKEND_PATH) runs every op of backend_abi.h
// on random inputs of several shapes (M = 1, odd K, head_dim 64/128/256, sequences shorter and
// longer than the window, GQA ratios 1/2/7, ...) with F32 activations, and is compared against the
// CPU backend's F64 path with a tolerance per weight dtype. The backward ops are also checked by
// finite differences on the CPU's F64 path (central differences of <G, op(x)> along a random
// direction). A backend that reports an op unsupported (supports() == 0) is skipped for that op,
// and said so. Exit status 0 when every check passes.
//
//   test_backend_ops                     all backends, all ops
//   test_backend_ops --backend cuda-emu  one backend (repeatable)
//   test_backend_ops --perf              also time each op (ms, GFLOP/s or GB/s) on every backend
//   test_backend_ops --list              list the backends found and exit
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "rrec/backend.h"
#include "rrec/backend_registry.h"
#include "rrec/dtype.h"
#include "rrec/rng.h"

using namespace rrec;

namespace {

// ---------------------------------------------------------------------------------------------
// Host tensors and their device copies

using Vec = std::vector<double>;

struct Rand {
  std::mt19937_64 g;
  explicit Rand(uint64_t seed) : g(seed) {}
  double uniform(double lo = -1, double hi = 1) { return std::uniform_real_distribution<double>(lo, hi)(g); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
  Vec vec(size_t n, double s = 1) {
    Vec v(n);
    for (double& x : v) x = uniform(-s, s);
    return v;
  }
};

// Rounds values to what the dtype can hold (so both sides of a comparison see the same weights).
Vec roundTo(Vec v, DType t) {
  for (double& x : v) {
    if (t == DType::F32) x = static_cast<float>(x);
    else if (t == DType::BF16) x = bf16ToF32(f32ToBf16(static_cast<float>(x)));
  }
  return v;
}

DeviceArray put(Backend& be, DType t, const Vec& host) {
  DeviceArray a(be, t, std::max<int64_t>(1, static_cast<int64_t>(host.size())));
  if (host.empty()) return a;
  if (t == DType::F64 || t == DType::F32) {
    be.upload(a.ref(), host.data(), DType::F64, host.size());
  } else if (t == DType::BF16) {
    std::vector<uint16_t> h(host.size());
    for (size_t i = 0; i < h.size(); i++) h[i] = f32ToBf16(static_cast<float>(host[i]));
    be.upload(a.ref(), h.data(), DType::BF16, h.size());
  } else {
    throw std::runtime_error("put: unsupported dtype");
  }
  return a;
}

DeviceArray putInts(Backend& be, const std::vector<int32_t>& host) {
  DeviceArray a(be, DType::I32, std::max<int64_t>(1, static_cast<int64_t>(host.size())));
  if (!host.empty()) be.upload(a.ref(), host.data(), DType::I32, host.size());
  return a;
}

Vec get(Backend& be, const DeviceArray& a, size_t n) {
  Vec h(n);
  if (n) be.download(h.data(), DType::F64, a.ref(), n);
  return h;
}

Weight weightOf(const DeviceArray& a, int rows, int cols, bool bf16 = false) {
  Weight w;
  w.t = a.ref();
  w.rows = rows;
  w.cols = cols;
  w.bf16Products = bf16;
  return w;
}

// ---------------------------------------------------------------------------------------------
// Results

struct Tally {
  int passed = 0, failed = 0, skipped = 0;
  std::vector<std::string> failures;
};
Tally tally;

// Normalised max error: max |got - ref| / max |ref| (1 where ref is all zero and got is not).
double relErr(const Vec& got, const Vec& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) {
    num = std::max(num, std::fabs(got[i] - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  if (got.size() != ref.size()) return INFINITY;
  if (den == 0) return num == 0 ? 0 : 1;
  return num / den;
}

void check(const std::string& what, double err, double tol) {
  const bool ok = std::isfinite(err) && err <= tol;
  (ok ? tally.passed : tally.failed)++;
  if (!ok) {
    tally.failures.push_back(what);
    std::printf("FAIL %-72s err %.3g > tol %.3g\n", what.c_str(), err, tol);
  }
}

void checkClose(const std::string& what, const Vec& got, const Vec& ref, double tol) { check(what, relErr(got, ref), tol); }

// ---------------------------------------------------------------------------------------------
// The context of one run: the reference (CPU, F64) and the device under test.

struct Ctx {
  Backend& ref;   // CPU backend, F64 activations
  Backend& dut;   // the backend under test, F32 activations
  std::string name;
  bool perf = false;
  Rand rnd{12345};
};

// Tolerances (normalised max error) for F32 activations against the F64 path: F32 weights give
// float rounding of K-term sums; BF16 weights are exact on both sides (rounded first), so the same;
// bf16 products round the activations too (2^-9 relative per element).
constexpr double kTolF32 = 2e-5;
constexpr double kTolTranscendental = 5e-5;  // fast exp/tanh on the float path
constexpr double kTolBf16Products = 2e-2;

bool supported(Ctx& c, int op, const char* name) {
  if (c.dut.supports(op, DType::F32)) return true;
  tally.skipped++;
  std::printf("skip %-10s %s (not supported)\n", c.name.c_str(), name);
  return false;
}

template <typename Fn>
double timeIt(Backend& be, Fn fn) {
  fn();  // warm-up
  be.synchronize();
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double dt = 0;
  do {
    fn();
    be.synchronize();
    reps++;
    dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (dt < 0.05 && reps < 1000);
  return dt / reps;
}

void perfLine(Ctx& c, const std::string& what, double seconds, double flops, double bytes) {
  if (!c.perf) return;
  std::printf("perf %-10s %-52s %9.3f ms", c.name.c_str(), what.c_str(), seconds * 1e3);
  if (flops > 0) std::printf("  %8.1f GFLOP/s", flops / seconds / 1e9);
  if (bytes > 0) std::printf("  %8.1f GB/s", bytes / seconds / 1e9);
  std::printf("\n");
}

// ---------------------------------------------------------------------------------------------
// Matmul: out = inp W^T + bias (accumulating or not), dinp += dout W, dW += dout^T inp, db += ...

struct MatmulCase {
  int M, K, N;
  DType wt;
  bool bias, bf16;
};

Vec runMatmul(Backend& be, DType act, const MatmulCase& mc, const Vec& x, const Vec& w, const Vec& b, const Vec& out0, bool accumulate) {
  DeviceArray dx = put(be, act, x), dw = put(be, act == DType::F64 ? DType::F64 : mc.wt, w);
  DeviceArray db = mc.bias ? put(be, act, b) : DeviceArray(), dout = put(be, act, out0);
  const rrec_matmul_args a{dout.raw(), dx.raw(), weightOf(dw, mc.N, mc.K, mc.bf16).raw(), rawOrAbsent(db), mc.M, accumulate ? 1 : 0};
  be.run(RREC_OP_MATMUL, a);
  return get(be, dout, out0.size());
}

void testMatmul(Ctx& c) {
  if (!supported(c, RREC_OP_MATMUL, "matmul")) return;
  const MatmulCase cases[] = {{1, 64, 96, DType::F32, true, false},  {3, 37, 53, DType::F32, true, false},
                              {17, 128, 64, DType::BF16, false, false}, {64, 96, 130, DType::BF16, true, false},
                              {130, 64, 72, DType::F32, false, false}, {33, 128, 96, DType::BF16, true, true},
                              {2, 256, 40, DType::BF16, false, true}};
  for (const MatmulCase& mc : cases) {
    const Vec x = roundTo(c.rnd.vec(size_t(mc.M) * mc.K), DType::F32), w = roundTo(c.rnd.vec(size_t(mc.N) * mc.K), mc.wt);
    const Vec b = roundTo(c.rnd.vec(mc.N), DType::F32), o0 = roundTo(c.rnd.vec(size_t(mc.M) * mc.N), DType::F32);
    const std::string tag = "M" + std::to_string(mc.M) + " K" + std::to_string(mc.K) + " N" + std::to_string(mc.N) + " " +
                            dtypeName(mc.wt) + (mc.bias ? " +bias" : "") + (mc.bf16 ? " bf16-products" : "");
    const double tol = mc.bf16 ? kTolBf16Products : kTolF32;
    for (bool acc : {false, true})
      checkClose(c.name + " matmul " + tag + (acc ? " +=" : ""), runMatmul(c.dut, DType::F32, mc, x, w, b, o0, acc),
                 runMatmul(c.ref, DType::F64, mc, x, w, b, o0, acc), tol);
    // backward input: dinp[M, K] += dout[M, N] W
    if (c.dut.supports(RREC_OP_MATMUL_BWD_INPUT, DType::F32)) {
      auto bwd = [&](Backend& be, DType act) {
        DeviceArray dout = put(be, act, o0), dw = put(be, act == DType::F64 ? DType::F64 : mc.wt, w), dinp = put(be, act, x);
        const rrec_matmul_args a{dinp.raw(), dout.raw(), weightOf(dw, mc.N, mc.K, mc.bf16).raw(), absentTensor(), mc.M, 0};
        be.run(RREC_OP_MATMUL_BWD_INPUT, a);
        return get(be, dinp, x.size());
      };
      checkClose(c.name + " matmul_bwd_input " + tag, bwd(c.dut, DType::F32), bwd(c.ref, DType::F64), tol);
    }
    // backward weight: dW[N, K] += dout^T x; db[N] += colsum(dout)
    if (c.dut.supports(RREC_OP_MATMUL_BWD_WEIGHT, DType::F32)) {
      const Vec dw0 = roundTo(c.rnd.vec(size_t(mc.N) * mc.K), DType::F32), db0 = roundTo(c.rnd.vec(mc.N), DType::F32);
      auto bwd = [&](Backend& be, DType act, Vec* dbOut) {
        DeviceArray dout = put(be, act, o0), inp = put(be, act, x), dW = put(be, act, dw0), dB = put(be, act, db0);
        const rrec_matmul_bwd_weight_args a{dW.raw(), mc.bias ? dB.raw() : absentTensor(), dout.raw(), inp.raw(), mc.M, mc.K, mc.N,
                                            mc.bf16 ? 1 : 0};
        be.run(RREC_OP_MATMUL_BWD_WEIGHT, a);
        if (dbOut) *dbOut = get(be, dB, db0.size());
        return get(be, dW, dw0.size());
      };
      Vec dbGot, dbRef;
      checkClose(c.name + " matmul_bwd_weight " + tag, bwd(c.dut, DType::F32, &dbGot), bwd(c.ref, DType::F64, &dbRef), tol);
      if (mc.bias) checkClose(c.name + " matmul_bwd_weight dbias " + tag, dbGot, dbRef, kTolF32);
    }
  }
  if (c.perf) {
    for (const MatmulCase& mc : {MatmulCase{512, 896, 4864, DType::BF16, false, true}, MatmulCase{16, 896, 4864, DType::BF16, false, true},
                                 MatmulCase{1, 896, 4864, DType::BF16, false, false}}) {
      DeviceArray x = put(c.dut, DType::F32, c.rnd.vec(size_t(mc.M) * mc.K)), w = put(c.dut, mc.wt, c.rnd.vec(size_t(mc.N) * mc.K));
      DeviceArray o(c.dut, DType::F32, int64_t(mc.M) * mc.N);
      const rrec_matmul_args a{o.raw(), x.raw(), weightOf(w, mc.N, mc.K, mc.bf16).raw(), absentTensor(), mc.M, 0};
      const double s = timeIt(c.dut, [&] { c.dut.run(RREC_OP_MATMUL, a); });
      perfLine(c, "matmul M" + std::to_string(mc.M) + " K" + std::to_string(mc.K) + " N" + std::to_string(mc.N) + (mc.bf16 ? " bf16" : ""), s,
               2.0 * mc.M * mc.K * mc.N, double(mc.N) * mc.K * 2);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Finite differences: d/dt <G, f(x + t dir)> at t = 0 against <grad, dir>, F64 on the reference.

double fdDirectional(const std::function<double(const Vec&)>& loss, const Vec& x, const Vec& dir, double eps = 1e-5) {
  Vec xp = x, xm = x;
  for (size_t i = 0; i < x.size(); i++) {
    xp[i] += eps * dir[i];
    xm[i] -= eps * dir[i];
  }
  return (loss(xp) - loss(xm)) / (2 * eps);
}
double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}
void checkFd(const std::string& what, double analytic, double numeric) {
  const double err = std::fabs(analytic - numeric) / std::max(1e-8, std::max(std::fabs(analytic), std::fabs(numeric)));
  check("fd " + what, err, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm (w or 1 + w), forward and backward

void testRmsnorm(Ctx& c) {
  if (!supported(c, RREC_OP_RMSNORM, "rmsnorm")) return;
  for (int M : {1, 7, 33})
    for (int C : {64, 96, 257})
      for (bool plusOne : {false, true}) {
        const Vec x = roundTo(c.rnd.vec(size_t(M) * C), DType::F32), w = roundTo(c.rnd.vec(C, 0.5), DType::F32);
        const Vec g = roundTo(c.rnd.vec(size_t(M) * C), DType::F32);
        auto fwd = [&](Backend& be, DType t, const Vec& xin, const Vec& win) {
          DeviceArray dx = put(be, t, xin), dw = put(be, t, win), out(be, t, int64_t(M) * C), rstd(be, t, M);
          rrec_rmsnorm_args a{};
          a.out = out.raw();
          a.rstd = rstd.raw();
          a.inp = dx.raw();
          a.weight = dw.raw();
          a.M = M;
          a.C = C;
          a.eps = 1e-6;
          a.plus_one = plusOne;
          be.run(RREC_OP_RMSNORM, a);
          return get(be, out, size_t(M) * C);
        };
        const std::string tag = "M" + std::to_string(M) + " C" + std::to_string(C) + (plusOne ? " 1+w" : "");
        checkClose(c.name + " rmsnorm " + tag, fwd(c.dut, DType::F32, x, w), fwd(c.ref, DType::F64, x, w), kTolF32);
        auto bwd = [&](Backend& be, DType t, Vec* dwOut) {
          DeviceArray dx = put(be, t, x), dw = put(be, t, w), out(be, t, int64_t(M) * C), rstd(be, t, M);
          DeviceArray din = put(be, t, Vec(size_t(M) * C, 0.0)), dwt = put(be, t, Vec(C, 0.0)), dout = put(be, t, g);
          rrec_rmsnorm_args a{};
          a.out = out.raw();
          a.rstd = rstd.raw();
          a.inp = dx.raw();
          a.weight = dw.raw();
          a.dinp = din.raw();
          a.dweight = dwt.raw();
          a.dout = dout.raw();
          a.M = M;
          a.C = C;
          a.eps = 1e-6;
          a.plus_one = plusOne;
          be.run(RREC_OP_RMSNORM, a);
          be.run(RREC_OP_RMSNORM_BWD, a);
          *dwOut = get(be, dwt, C);
          return get(be, din, size_t(M) * C);
        };
        if (!c.dut.supports(RREC_OP_RMSNORM_BWD, DType::F32)) continue;
        Vec dwGot, dwRef;
        const Vec dxRef = bwd(c.ref, DType::F64, &dwRef);
        checkClose(c.name + " rmsnorm_bwd dx " + tag, bwd(c.dut, DType::F32, &dwGot), dxRef, kTolF32 * 5);
        checkClose(c.name + " rmsnorm_bwd dw " + tag, dwGot, dwRef, kTolF32 * 5);
        if (&c.dut == &c.ref || c.name == "cpu") {
          const Vec dir = c.rnd.vec(x.size()), dirW = c.rnd.vec(w.size());
          checkFd("rmsnorm dx " + tag, dot(dxRef, dir), fdDirectional([&](const Vec& xx) { return dot(g, fwd(c.ref, DType::F64, xx, w)); }, x, dir));
          checkFd("rmsnorm dw " + tag, dot(dwRef, dirW), fdDirectional([&](const Vec& ww) { return dot(g, fwd(c.ref, DType::F64, x, ww)); }, w, dirW));
        }
      }
}

// ---------------------------------------------------------------------------------------------
// RoPE forward and backward (the inverse rotation)

void testRope(Ctx& c) {
  if (!supported(c, RREC_OP_ROPE, "rope")) return;
  for (int D : {64, 128, 256})
    for (int H : {1, 3}) {
      const int M = 9;
      std::vector<int32_t> pos(M);
      for (int m = 0; m < M; m++) pos[m] = m * 37 + 5;
      const Vec x = roundTo(c.rnd.vec(size_t(M) * H * D), DType::F32);
      auto run = [&](Backend& be, DType t, const Vec& xin, bool backward) {
        DeviceArray dx = put(be, t, xin), dp = putInts(be, pos);
        const rrec_rope_args a{dx.raw(), dp.raw(), M, H, D, 0, 1e6};
        be.run(backward ? RREC_OP_ROPE_BWD : RREC_OP_ROPE, a);
        return get(be, dx, xin.size());
      };
      const std::string tag = "H" + std::to_string(H) + " D" + std::to_string(D);
      checkClose(c.name + " rope " + tag, run(c.dut, DType::F32, x, false), run(c.ref, DType::F64, x, false), kTolTranscendental);
      if (c.dut.supports(RREC_OP_ROPE_BWD, DType::F32))
        checkClose(c.name + " rope_bwd " + tag, run(c.dut, DType::F32, x, true), run(c.ref, DType::F64, x, true), kTolTranscendental);
      // backward is the transpose of the forward rotation: <g, R x> = <R^T g, x>
      const Vec g = c.rnd.vec(x.size());
      checkFd("rope transpose " + tag, dot(run(c.ref, DType::F64, g, true), x), dot(g, run(c.ref, DType::F64, x, false)));
    }
}

// ---------------------------------------------------------------------------------------------
// Causal packed attention (GQA, soft-cap, window), forward and backward; paged attention; KV writes

struct AttnCase {
  std::vector<int> lens;
  int Hq, Hk, D;
  double softcap;
  int window;
};

struct AttnOut {
  Vec out, lse, dq, dk, dv;
};

AttnOut runAttention(Backend& be, DType t, const AttnCase& ac, const Vec& q, const Vec& k, const Vec& v, const Vec* dout) {
  int M = 0;
  std::vector<int32_t> so = {0};
  for (int L : ac.lens) so.push_back(M += L);
  const int S = static_cast<int>(ac.lens.size());
  DeviceArray dq = put(be, t, q), dk = put(be, t, k), dv = put(be, t, v), dso = putInts(be, so);
  DeviceArray out(be, t, int64_t(M) * ac.Hq * ac.D), lse(be, t, int64_t(M) * ac.Hq);
  rrec_attention_args a{};
  a.out = out.raw();
  a.lse = lse.raw();
  a.q = dq.raw();
  a.k = dk.raw();
  a.v = dv.raw();
  a.seq_offsets = dso.raw();
  a.S = S;
  a.M = M;
  a.Hq = ac.Hq;
  a.Hk = ac.Hk;
  a.D = ac.D;
  a.window = ac.window;
  a.scale = 1.0 / std::sqrt(double(ac.D));
  a.softcap = ac.softcap;
  be.run(RREC_OP_ATTENTION, a);
  AttnOut r;
  r.out = get(be, out, size_t(M) * ac.Hq * ac.D);
  r.lse = get(be, lse, size_t(M) * ac.Hq);
  if (dout) {
    DeviceArray gq = put(be, t, Vec(q.size(), 0.0)), gk = put(be, t, Vec(k.size(), 0.0)), gv = put(be, t, Vec(v.size(), 0.0));
    DeviceArray go = put(be, t, *dout);
    a.dq = gq.raw();
    a.dk = gk.raw();
    a.dv = gv.raw();
    a.dout = go.raw();
    be.run(RREC_OP_ATTENTION_BWD, a);
    r.dq = get(be, gq, q.size());
    r.dk = get(be, gk, k.size());
    r.dv = get(be, gv, v.size());
  }
  return r;
}

void testAttention(Ctx& c) {
  if (!supported(c, RREC_OP_ATTENTION, "attention")) return;
  const AttnCase cases[] = {
      {{1}, 2, 2, 64, 0, 0},              // one token
      {{5, 12}, 4, 2, 64, 0, 0},          // GQA 2, ragged
      {{9}, 7, 1, 64, 0, 0},              // GQA 7 (Qwen2.5-0.5B's 14 / 2)
      {{20, 3}, 2, 1, 128, 0, 0},         // head_dim 128
      {{11}, 2, 2, 256, 50.0, 0},         // head_dim 256, soft-cap (Gemma2)
      {{4, 19}, 4, 2, 64, 30.0, 6},       // a window shorter than one sequence and longer than the other
      {{70}, 2, 1, 64, 0, 16},            // longer than a 64-row query block, windowed
  };
  for (const AttnCase& ac : cases) {
    int M = 0;
    for (int L : ac.lens) M += L;
    const Vec q = roundTo(c.rnd.vec(size_t(M) * ac.Hq * ac.D), DType::F32), k = roundTo(c.rnd.vec(size_t(M) * ac.Hk * ac.D), DType::F32);
    const Vec v = roundTo(c.rnd.vec(size_t(M) * ac.Hk * ac.D), DType::F32), g = roundTo(c.rnd.vec(size_t(M) * ac.Hq * ac.D), DType::F32);
    std::string tag = "S" + std::to_string(ac.lens.size()) + " M" + std::to_string(M) + " Hq" + std::to_string(ac.Hq) + " Hk" +
                      std::to_string(ac.Hk) + " D" + std::to_string(ac.D);
    if (ac.softcap > 0) tag += " cap";
    if (ac.window > 0) tag += " win" + std::to_string(ac.window);
    const bool bwd = c.dut.supports(RREC_OP_ATTENTION_BWD, DType::F32);
    const AttnOut r = runAttention(c.ref, DType::F64, ac, q, k, v, &g);
    const AttnOut d = runAttention(c.dut, DType::F32, ac, q, k, v, bwd ? &g : nullptr);
    checkClose(c.name + " attention out " + tag, d.out, r.out, kTolTranscendental);
    checkClose(c.name + " attention lse " + tag, d.lse, r.lse, kTolTranscendental);
    if (bwd) {
      checkClose(c.name + " attention_bwd dq " + tag, d.dq, r.dq, kTolTranscendental * 4);
      checkClose(c.name + " attention_bwd dk " + tag, d.dk, r.dk, kTolTranscendental * 4);
      checkClose(c.name + " attention_bwd dv " + tag, d.dv, r.dv, kTolTranscendental * 4);
    }
    if (c.name == "cpu") {
      auto loss = [&](const Vec& qq, const Vec& kk, const Vec& vv) { return dot(g, runAttention(c.ref, DType::F64, ac, qq, kk, vv, nullptr).out); };
      const Vec dirq = c.rnd.vec(q.size()), dirk = c.rnd.vec(k.size()), dirv = c.rnd.vec(v.size());
      checkFd("attention dq " + tag, dot(r.dq, dirq), fdDirectional([&](const Vec& x) { return loss(x, k, v); }, q, dirq));
      checkFd("attention dk " + tag, dot(r.dk, dirk), fdDirectional([&](const Vec& x) { return loss(q, x, v); }, k, dirk));
      checkFd("attention dv " + tag, dot(r.dv, dirv), fdDirectional([&](const Vec& x) { return loss(q, k, x); }, v, dirv));
    }
  }
  if (c.perf) {
    const AttnCase ac{{256, 256, 256, 256}, 14, 2, 64, 0, 0};
    const int M = 1024;
    const Vec q = c.rnd.vec(size_t(M) * ac.Hq * ac.D), k = c.rnd.vec(size_t(M) * ac.Hk * ac.D), v = c.rnd.vec(size_t(M) * ac.Hk * ac.D);
    const double s = timeIt(c.dut, [&] { runAttention(c.dut, DType::F32, ac, q, k, v, nullptr); });
    perfLine(c, "attention fwd 4x256 Hq14 Hk2 D64 (with transfers)", s, 4.0 * 4 * 256 * 257 / 2 * 14 * 64, 0);
  }
}

// Paged attention must give the packed forward's rows: the K/V of every sequence are written into
// a shuffled set of blocks, then each row attends through its block table.
void testPagedAttention(Ctx& c) {
  if (!supported(c, RREC_OP_PAGED_ATTENTION, "paged_attention") || !supported(c, RREC_OP_KV_WRITE, "kv_write")) return;
  const AttnCase cases[] = {{{1}, 2, 2, 64, 0, 0}, {{5, 12}, 4, 2, 64, 0, 0}, {{9}, 7, 1, 64, 0, 0}, {{11}, 2, 2, 256, 50.0, 0},
                            {{4, 19}, 4, 2, 64, 30.0, 6}};
  for (const AttnCase& ac : cases) {
    const int bs = 4, width = ac.Hk * ac.D;
    int M = 0;
    for (int L : ac.lens) M += L;
    const Vec q = roundTo(c.rnd.vec(size_t(M) * ac.Hq * ac.D), DType::F32), k = roundTo(c.rnd.vec(size_t(M) * width), DType::F32);
    const Vec v = roundTo(c.rnd.vec(size_t(M) * width), DType::F32);
    // block tables: sequence s's blocks, drawn from a shuffled pool
    int nb = 0;
    for (int L : ac.lens) nb += (L + bs - 1) / bs;
    nb += 3;
    std::vector<int32_t> pool(nb);
    for (int i = 0; i < nb; i++) pool[i] = i;
    std::shuffle(pool.begin(), pool.end(), c.rnd.g);
    std::vector<int32_t> tables, tableStart(M), pos(M), rowBlock(M), rowSlot(M);
    int row = 0, next = 0;
    for (int L : ac.lens) {
      const int ts = static_cast<int>(tables.size());
      for (int b = 0; b < (L + bs - 1) / bs; b++) tables.push_back(pool[next++]);
      for (int i = 0; i < L; i++, row++) {
        tableStart[row] = ts;
        pos[row] = i;
        rowBlock[row] = tables[ts + i / bs];
        rowSlot[row] = i % bs;
      }
    }
    auto run = [&](Backend& be, DType t) {
      DeviceArray kc = put(be, t, Vec(size_t(nb) * bs * width, 0.0)), vc = put(be, t, Vec(size_t(nb) * bs * width, 0.0));
      DeviceArray dk = put(be, t, k), dv = put(be, t, v), dq = put(be, t, q), out(be, t, int64_t(M) * ac.Hq * ac.D);
      DeviceArray dt = putInts(be, tables), dts = putInts(be, tableStart), dp = putInts(be, pos), db = putInts(be, rowBlock), dsl = putInts(be, rowSlot);
      const rrec_kv_write_args w{kc.raw(), vc.raw(), dk.raw(), dv.raw(), db.raw(), dsl.raw(), M, width, bs, 0};
      be.run(RREC_OP_KV_WRITE, w);
      rrec_paged_attention_args a{};
      a.out = out.raw();
      a.q = dq.raw();
      a.k_cache = kc.raw();
      a.v_cache = vc.raw();
      a.tables = dt.raw();
      a.table_start = dts.raw();
      a.pos = dp.raw();
      a.M = M;
      a.block_size = bs;
      a.Hq = ac.Hq;
      a.Hk = ac.Hk;
      a.D = ac.D;
      a.window = ac.window;
      a.scale = 1.0 / std::sqrt(double(ac.D));
      a.softcap = ac.softcap;
      be.run(RREC_OP_PAGED_ATTENTION, a);
      return get(be, out, size_t(M) * ac.Hq * ac.D);
    };
    std::string tag = "M" + std::to_string(M) + " Hq" + std::to_string(ac.Hq) + " Hk" + std::to_string(ac.Hk) + " D" + std::to_string(ac.D);
    if (ac.window) tag += " win";
    const Vec packed = runAttention(c.ref, DType::F64, ac, q, k, v, nullptr).out;
    checkClose(c.name + " paged_attention " + tag, run(c.dut, DType::F32), packed, kTolTranscendental);
    if (c.name == "cpu") checkClose("cpu paged_attention f64 == packed " + tag, run(c.ref, DType::F64), packed, 1e-12);
  }
}

// ---------------------------------------------------------------------------------------------
// Gated activations, embedding, add, rows, cast

void testElementwise(Ctx& c) {
  for (int act : {RREC_ACT_SILU, RREC_ACT_GELU_TANH}) {
    if (!supported(c, RREC_OP_GATED_ACT, "gated_act")) break;
    for (int64_t n : {int64_t(1), int64_t(37), int64_t(4096 + 5)}) {
      const Vec gate = roundTo(c.rnd.vec(n, 4), DType::F32), up = roundTo(c.rnd.vec(n, 2), DType::F32), dh = roundTo(c.rnd.vec(n), DType::F32);
      auto run = [&](Backend& be, DType t, const Vec& g, const Vec& u, Vec* dgate, Vec* dup) {
        DeviceArray dg = put(be, t, g), du = put(be, t, u), h(be, t, n), ddh = put(be, t, dh), dgo(be, t, n), duo(be, t, n);
        const rrec_gated_act_args a{h.raw(), dg.raw(), du.raw(), ddh.raw(), dgo.raw(), duo.raw(), n, act, 0};
        be.run(RREC_OP_GATED_ACT, a);
        if (dgate) {
          be.run(RREC_OP_GATED_ACT_BWD, a);
          *dgate = get(be, dgo, n);
          *dup = get(be, duo, n);
        }
        return get(be, h, n);
      };
      const std::string tag = std::string(act == RREC_ACT_SILU ? "silu" : "gelu_tanh") + " n" + std::to_string(n);
      Vec rg, ru, dg, du;
      const Vec ref = run(c.ref, DType::F64, gate, up, &rg, &ru);
      const bool bwd = c.dut.supports(RREC_OP_GATED_ACT_BWD, DType::F32);
      checkClose(c.name + " gated_act " + tag, run(c.dut, DType::F32, gate, up, bwd ? &dg : nullptr, bwd ? &du : nullptr), ref, kTolTranscendental);
      if (bwd) {
        checkClose(c.name + " gated_act_bwd dgate " + tag, dg, rg, kTolTranscendental);
        checkClose(c.name + " gated_act_bwd dup " + tag, du, ru, kTolTranscendental);
      }
      if (c.name == "cpu") {
        const Vec dir = c.rnd.vec(n);
        checkFd("gated_act dgate " + tag, dot(rg, dir), fdDirectional([&](const Vec& g) { return dot(dh, run(c.ref, DType::F64, g, up, nullptr, nullptr)); }, gate, dir));
        checkFd("gated_act dup " + tag, dot(ru, dir), fdDirectional([&](const Vec& u) { return dot(dh, run(c.ref, DType::F64, gate, u, nullptr, nullptr)); }, up, dir));
      }
    }
  }
  // embedding: out[m] = E[tokens[m]] * scale; dE[tokens[m]] += dout[m] * scale (tokens repeat)
  if (supported(c, RREC_OP_EMBEDDING, "embedding")) {
    for (DType wt : {DType::F32, DType::BF16}) {
      const int V = 50, C = 48, M = 13;
      std::vector<int32_t> tok(M);
      for (int m = 0; m < M; m++) tok[m] = (m * 7) % 11;  // repeats
      const Vec E = roundTo(c.rnd.vec(size_t(V) * C), wt), dout = roundTo(c.rnd.vec(size_t(M) * C), DType::F32);
      auto run = [&](Backend& be, DType t, Vec* dE) {
        DeviceArray e = put(be, t == DType::F64 ? DType::F64 : wt, E), dt = putInts(be, tok), out(be, t, int64_t(M) * C);
        DeviceArray g = put(be, t, dout), de = put(be, t, Vec(size_t(V) * C, 0.0));
        rrec_embedding_args a{};
        a.out = out.raw();
        a.dout = g.raw();
        a.demb = de.raw();
        a.tokens = dt.raw();
        a.emb = weightOf(e, V, C).raw();
        a.M = M;
        a.scale = 8.0;
        be.run(RREC_OP_EMBEDDING, a);
        if (dE) {
          be.run(RREC_OP_EMBEDDING_BWD, a);
          *dE = get(be, de, size_t(V) * C);
        }
        return get(be, out, size_t(M) * C);
      };
      Vec dRef, dGot;
      const Vec ref = run(c.ref, DType::F64, &dRef);
      const bool bwd = c.dut.supports(RREC_OP_EMBEDDING_BWD, DType::F32);
      checkClose(c.name + " embedding " + std::string(dtypeName(wt)), run(c.dut, DType::F32, bwd ? &dGot : nullptr), ref, 1e-7);
      if (bwd) checkClose(c.name + " embedding_bwd " + std::string(dtypeName(wt)), dGot, dRef, kTolF32);
    }
  }
  if (supported(c, RREC_OP_ADD, "add")) {
    const int64_t n = 1000003;
    const Vec a = roundTo(c.rnd.vec(n), DType::F32), b = roundTo(c.rnd.vec(n), DType::F32);
    auto run = [&](Backend& be, DType t) {
      DeviceArray da = put(be, t, a), db = put(be, t, b);
      const rrec_add_args x{da.raw(), db.raw(), n};
      be.run(RREC_OP_ADD, x);
      return get(be, da, n);
    };
    checkClose(c.name + " add n1000003", run(c.dut, DType::F32), run(c.ref, DType::F64), 1e-7);
  }
  if (supported(c, RREC_OP_GATHER_ROWS, "gather_rows") && supported(c, RREC_OP_SCATTER_ADD_ROWS, "scatter_add_rows")) {
    const int rowsBig = 20, W = 33;
    const std::vector<int32_t> idx = {3, 0, 19, 3, 7};  // a repeat: scatter-add must sum both
    const Vec big = roundTo(c.rnd.vec(size_t(rowsBig) * W), DType::F32), small = roundTo(c.rnd.vec(idx.size() * W), DType::F32);
    auto run = [&](Backend& be, DType t, Vec* scattered) {
      DeviceArray db = put(be, t, big), ds = put(be, t, small), di = putInts(be, idx), out(be, t, int64_t(idx.size()) * W);
      const rrec_rows_args g{out.raw(), db.raw(), di.raw(), static_cast<int32_t>(idx.size()), W};
      be.run(RREC_OP_GATHER_ROWS, g);
      const rrec_rows_args s{db.raw(), ds.raw(), di.raw(), static_cast<int32_t>(idx.size()), W};
      be.run(RREC_OP_SCATTER_ADD_ROWS, s);
      *scattered = get(be, db, big.size());
      return get(be, out, idx.size() * W);
    };
    Vec sr, sd;
    checkClose(c.name + " gather_rows", run(c.dut, DType::F32, &sd), run(c.ref, DType::F64, &sr), 0);
    checkClose(c.name + " scatter_add_rows", sd, sr, 1e-7);
  }
  if (supported(c, RREC_OP_CAST, "cast")) {
    const int64_t n = 70001;
    const Vec x = roundTo(c.rnd.vec(n, 100), DType::F32);
    auto run = [&](Backend& be) {
      DeviceArray f = put(be, DType::F32, x), b(be, DType::BF16, n), back(be, DType::F32, n);
      const rrec_cast_args a{b.raw(), f.raw(), n};
      be.run(RREC_OP_CAST, a);
      const rrec_cast_args z{back.raw(), b.raw(), n};
      be.run(RREC_OP_CAST, z);
      return get(be, back, n);
    };
    checkClose(c.name + " cast f32 -> bf16 -> f32", run(c.dut), roundTo(x, DType::BF16), 0);
  }
}

// ---------------------------------------------------------------------------------------------
// LoRA forward and backward, with and without dropout (the masks must agree bit for bit: every
// backend uses rrec::hashUniform)

void testLora(Ctx& c) {
  if (!supported(c, RREC_OP_LORA, "lora")) return;
  struct Case {
    int M, in, out, r;
    double p;
  };
  for (const Case& lc : {Case{1, 64, 48, 8, 0}, Case{9, 96, 40, 4, 0.1}, Case{33, 64, 130, 16, 0}, Case{5, 37, 29, 3, 0.3}}) {
    const Vec A = roundTo(c.rnd.vec(size_t(lc.r) * lc.in, 0.2), DType::F32), B = roundTo(c.rnd.vec(size_t(lc.out) * lc.r, 0.2), DType::F32);
    const Vec X = roundTo(c.rnd.vec(size_t(lc.M) * lc.in), DType::F32), Y0 = roundTo(c.rnd.vec(size_t(lc.M) * lc.out), DType::F32);
    const Vec dY = roundTo(c.rnd.vec(size_t(lc.M) * lc.out), DType::F32);
    struct Out {
      Vec y, dx, da, db;
    };
    auto run = [&](Backend& be, DType t, const Vec& x, const Vec& a, const Vec& b, bool backward) {
      DeviceArray dA = put(be, t, a), dB = put(be, t, b), dX = put(be, t, x), y = put(be, t, Y0), xa(be, t, int64_t(lc.M) * lc.r);
      rrec_lora_args args{};
      args.y = y.raw();
      args.x = dX.raw();
      args.a = dA.raw();
      args.b = dB.raw();
      args.xa = xa.raw();
      args.M = lc.M;
      args.in = lc.in;
      args.out = lc.out;
      args.r = lc.r;
      args.scale = 2.0;
      args.dropout = lc.p;
      args.dropout_seed = 99;
      args.layer = 3;
      args.module = 5;
      be.run(RREC_OP_LORA, args);
      Out o;
      o.y = get(be, y, Y0.size());
      if (backward) {
        DeviceArray gy = put(be, t, dY), gx = put(be, t, Vec(x.size(), 0.0)), ga = put(be, t, Vec(a.size(), 0.0)), gb = put(be, t, Vec(b.size(), 0.0));
        args.y = gy.raw();
        args.dx = gx.raw();
        args.da = ga.raw();
        args.db = gb.raw();
        be.run(RREC_OP_LORA_BWD, args);
        o.dx = get(be, gx, x.size());
        o.da = get(be, ga, a.size());
        o.db = get(be, gb, b.size());
      }
      return o;
    };
    const std::string tag = "M" + std::to_string(lc.M) + " in" + std::to_string(lc.in) + " out" + std::to_string(lc.out) + " r" +
                            std::to_string(lc.r) + (lc.p > 0 ? " dropout" : "");
    const bool bwd = c.dut.supports(RREC_OP_LORA_BWD, DType::F32);
    const Out r = run(c.ref, DType::F64, X, A, B, true);
    const Out d = run(c.dut, DType::F32, X, A, B, bwd);
    checkClose(c.name + " lora " + tag, d.y, r.y, kTolF32);
    if (bwd) {
      checkClose(c.name + " lora_bwd dx " + tag, d.dx, r.dx, kTolF32 * 5);
      checkClose(c.name + " lora_bwd da " + tag, d.da, r.da, kTolF32 * 5);
      checkClose(c.name + " lora_bwd db " + tag, d.db, r.db, kTolF32 * 5);
    }
    if (c.name == "cpu") {
      const Vec dx = c.rnd.vec(X.size()), da = c.rnd.vec(A.size()), db = c.rnd.vec(B.size());
      checkFd("lora dx " + tag, dot(r.dx, dx), fdDirectional([&](const Vec& x) { return dot(dY, run(c.ref, DType::F64, x, A, B, false).y); }, X, dx));
      checkFd("lora da " + tag, dot(r.da, da), fdDirectional([&](const Vec& a) { return dot(dY, run(c.ref, DType::F64, X, a, B, false).y); }, A, da));
      checkFd("lora db " + tag, dot(r.db, db), fdDirectional([&](const Vec& b) { return dot(dY, run(c.ref, DType::F64, X, A, b, false).y); }, B, db));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The LM head: log-probs, lse, entropy (soft-capped or not), backward into hidden and W; the
// sampling rows' logits

void testLmHead(Ctx& c) {
  if (!supported(c, RREC_OP_LM_HEAD_LOGPROBS, "lm_head_logprobs")) return;
  for (double cap : {0.0, 30.0})
    for (DType wt : {DType::F32, DType::BF16}) {
      const int n = 7, C = 64, V = 1000;
      std::vector<int32_t> tg(n);
      for (int i = 0; i < n; i++) tg[i] = (i * 131 + 17) % V;
      const Vec hid = roundTo(c.rnd.vec(size_t(n) * C), DType::F32), W = roundTo(c.rnd.vec(size_t(V) * C, 0.5), wt);
      const Vec g = c.rnd.vec(n);
      struct Out {
        Vec logp, lse, ent, dh, dw;
      };
      auto run = [&](Backend& be, DType t, const Vec& h, const Vec& w, bool backward) {
        DeviceArray dh = put(be, t, h), dw = put(be, t == DType::F64 ? DType::F64 : wt, w), dt = putInts(be, tg);
        DeviceArray lp(be, DType::F64, n), lse(be, DType::F64, n), ent(be, DType::F64, n);
        rrec_lm_head_args a{};
        a.hidden = dh.raw();
        a.w = weightOf(dw, V, C).raw();
        a.targets = dt.raw();
        a.logp = lp.raw();
        a.lse = lse.raw();
        a.entropy = ent.raw();
        a.n = n;
        a.softcap = cap;
        be.run(RREC_OP_LM_HEAD_LOGPROBS, a);
        Out o;
        o.logp = get(be, lp, n);
        o.lse = get(be, lse, n);
        o.ent = get(be, ent, n);
        if (backward) {
          DeviceArray dg = put(be, DType::F64, g), gh = put(be, t, Vec(h.size(), 0.0)), gw = put(be, t, Vec(w.size(), 0.0));
          a.dlogp = dg.raw();
          a.dhidden = gh.raw();
          a.dw = gw.raw();
          be.run(RREC_OP_LM_HEAD_BWD, a);
          o.dh = get(be, gh, h.size());
          o.dw = get(be, gw, w.size());
        }
        return o;
      };
      const std::string tag = std::string(dtypeName(wt)) + (cap > 0 ? " softcap" : "");
      const bool bwd = c.dut.supports(RREC_OP_LM_HEAD_BWD, DType::F32);
      const Out r = run(c.ref, DType::F64, hid, W, true);
      const Out d = run(c.dut, DType::F32, hid, W, bwd);
      checkClose(c.name + " lm_head logp " + tag, d.logp, r.logp, kTolTranscendental);
      checkClose(c.name + " lm_head lse " + tag, d.lse, r.lse, kTolTranscendental);
      checkClose(c.name + " lm_head entropy " + tag, d.ent, r.ent, kTolTranscendental * 4);
      if (bwd) {
        checkClose(c.name + " lm_head_bwd dhidden " + tag, d.dh, r.dh, kTolTranscendental * 4);
        checkClose(c.name + " lm_head_bwd dw " + tag, d.dw, r.dw, kTolTranscendental * 4);
      }
      if (c.name == "cpu") {
        const Vec dirh = c.rnd.vec(hid.size()), dirw = c.rnd.vec(W.size());
        checkFd("lm_head dhidden " + tag, dot(r.dh, dirh), fdDirectional([&](const Vec& h) { return dot(g, run(c.ref, DType::F64, h, W, false).logp); }, hid, dirh));
        checkFd("lm_head dw " + tag, dot(r.dw, dirw), fdDirectional([&](const Vec& w) { return dot(g, run(c.ref, DType::F64, hid, w, false).logp); }, W, dirw));
      }
      // the sampling rows' logits: lse equal to the log-prob path's, logits soft-capped
      if (c.dut.supports(RREC_OP_LOGITS, DType::F32)) {
        auto logits = [&](Backend& be, DType t, Vec* lseOut) {
          DeviceArray dh = put(be, t, hid), dw = put(be, t == DType::F64 ? DType::F64 : wt, W), z(be, t, int64_t(n) * V), lse(be, DType::F64, n);
          const rrec_logits_args a{z.raw(), lse.raw(), dh.raw(), weightOf(dw, V, C).raw(), n, 0, cap};
          be.run(RREC_OP_LOGITS, a);
          *lseOut = get(be, lse, n);
          return get(be, z, size_t(n) * V);
        };
        Vec lr, ld;
        checkClose(c.name + " logits " + tag, logits(c.dut, DType::F32, &ld), logits(c.ref, DType::F64, &lr), kTolF32 * 5);
        checkClose(c.name + " logits lse " + tag, ld, r.lse, kTolTranscendental);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling: the same logits on both sides (uploaded), the same uniforms: greedy draws must agree
// exactly; sampled draws agree but where float and double exp put u on different sides of a CDF
// step (counted: at most 2%).

void testSample(Ctx& c) {
  if (!supported(c, RREC_OP_SAMPLE, "sample")) return;
  const int V = 3000, R = 4;
  Vec z = roundTo(c.rnd.vec(size_t(R) * V, 6), DType::F32);
  std::vector<int32_t> hist = {5, 17, 17, 2999, 40};
  std::vector<uint8_t> allowed(V, 0);
  for (int v = 100; v < 140; v++) allowed[v] = 1;
  std::vector<rrec_sample_draw> draws;
  for (int i = 0; i < 200; i++) {
    rrec_sample_draw d{};
    d.temperature = i % 5 == 0 ? 0.0 : 0.3 + 0.01 * (i % 70);
    d.top_p = i % 3 == 0 ? 0.9 : 1.0;
    d.min_p = i % 7 == 0 ? 0.05 : 0.0;
    d.repetition_penalty = i % 4 == 0 ? 1.3 : 1.0;
    d.presence_penalty = i % 6 == 0 ? 0.5 : 0.0;
    d.top_k = i % 2 == 0 ? 50 : 0;
    d.u = hashUniform(7, 1, static_cast<uint64_t>(i));
    d.history = hist.data();
    d.history_len = static_cast<int32_t>(hist.size());
    d.prompt_len = 2;
    d.allowed = i % 9 == 0 ? allowed.data() : nullptr;
    d.row = i % R;
    draws.push_back(d);
  }
  auto run = [&](Backend& be, DType t, std::vector<float>* lps) {
    DeviceArray dz = put(be, t, z), lse(be, DType::F64, R);
    // lse from the LOGITS-independent definition: the host computes it in double
    Vec l(R);
    for (int r = 0; r < R; r++) {
      double mx = -INFINITY, s = 0;
      for (int v = 0; v < V; v++) mx = std::max(mx, z[size_t(r) * V + v]);
      for (int v = 0; v < V; v++) s += std::exp(z[size_t(r) * V + v] - mx);
      l[r] = mx + std::log(s);
    }
    be.upload(lse.ref(), l.data(), DType::F64, R);
    std::vector<int32_t> tokens(draws.size());
    lps->resize(draws.size());
    const rrec_sample_args a{dz.raw(), lse.raw(), V, static_cast<int32_t>(draws.size()), draws.data(), tokens.data(), lps->data()};
    be.run(RREC_OP_SAMPLE, a);
    return tokens;
  };
  std::vector<float> lr, ld;
  const std::vector<int32_t> tr = run(c.ref, DType::F64, &lr), td = run(c.dut, DType::F32, &ld);
  int greedyMismatch = 0, sampledMismatch = 0, sampled = 0, outside = 0;
  for (size_t i = 0; i < draws.size(); i++) {
    const bool greedy = draws[i].temperature < 1e-5;
    if (!greedy) sampled++;
    if (tr[i] != td[i]) (greedy ? greedyMismatch : sampledMismatch)++;
    if (draws[i].allowed && !allowed[td[i]]) outside++;
  }
  check(c.name + " sample: greedy draws equal the reference's", greedyMismatch, 0);
  check(c.name + " sample: sampled draws equal the reference's (share differing)", double(sampledMismatch) / sampled, 0.02);
  check(c.name + " sample: constrained draws stay inside the mask", outside, 0);
  Vec a(ld.begin(), ld.end()), b(lr.begin(), lr.end());
  for (size_t i = 0; i < draws.size(); i++)
    if (tr[i] != td[i]) a[i] = b[i];  // log-probs compared where the same token was drawn
  checkClose(c.name + " sample: log-probs of the drawn tokens", a, b, 1e-6);
}

// ---------------------------------------------------------------------------------------------
// AdamW and the gradient norm (with a bf16 copy refreshed in the same pass)

void testAdamw(Ctx& c) {
  if (!supported(c, RREC_OP_ADAMW, "adamw") || !supported(c, RREC_OP_GRAD_NORM_SQ, "grad_norm_sq")) return;
  const std::vector<int64_t> sizes = {1, 1000, 65537};
  std::vector<Vec> vals, grads, ms, vs;
  for (int64_t n : sizes) {
    vals.push_back(roundTo(c.rnd.vec(n), DType::F32));
    grads.push_back(roundTo(c.rnd.vec(n, 0.1), DType::F32));
    ms.push_back(roundTo(c.rnd.vec(n, 0.01), DType::F32));
    Vec v = c.rnd.vec(n, 0.001);
    for (double& x : v) x = std::fabs(x);
    vs.push_back(roundTo(v, DType::F32));
  }
  auto run = [&](Backend& be, DType t, double* normSq, std::vector<Vec>* copies) {
    std::vector<DeviceArray> dv, dg, dm, dvv, dc;
    std::vector<rrec_adamw_param> ps;
    std::vector<rrec_tensor> gt;
    for (size_t i = 0; i < sizes.size(); i++) {
      dv.push_back(put(be, t, vals[i]));
      dg.push_back(put(be, t, grads[i]));
      dm.push_back(put(be, t, ms[i]));
      dvv.push_back(put(be, t, vs[i]));
      dc.emplace_back(be, DType::BF16, sizes[i]);
    }
    for (size_t i = 0; i < sizes.size(); i++) {
      ps.push_back({dv[i].raw(), dg[i].raw(), dm[i].raw(), dvv[i].raw(), t == DType::F32 ? dc[i].raw() : absentTensor(), sizes[i]});
      gt.push_back(dg[i].raw());
    }
    const rrec_grad_norm_args gn{gt.data(), sizes.data(), static_cast<int32_t>(sizes.size()), 0, normSq};
    be.run(RREC_OP_GRAD_NORM_SQ, gn);
    const rrec_adamw_args a{ps.data(), static_cast<int32_t>(ps.size()), 0, 0.7, 1 - 1e-3 * 0.01, 0.9, 0.999, 1e-3 / 0.19, std::sqrt(1 - 0.999 * 0.999), 1e-8};
    be.run(RREC_OP_ADAMW, a);
    Vec out;
    for (size_t i = 0; i < sizes.size(); i++) {
      const Vec x = get(be, dv[i], sizes[i]), m = get(be, dm[i], sizes[i]), v = get(be, dvv[i], sizes[i]);
      out.insert(out.end(), x.begin(), x.end());
      out.insert(out.end(), m.begin(), m.end());
      out.insert(out.end(), v.begin(), v.end());
      if (copies && t == DType::F32) {
        DeviceArray back(be, DType::F32, sizes[i]);
        const rrec_cast_args ca{back.raw(), dc[i].raw(), sizes[i]};
        be.run(RREC_OP_CAST, ca);
        copies->push_back(get(be, back, sizes[i]));
        copies->push_back(roundTo(x, DType::BF16));
      }
    }
    return out;
  };
  double nr = 0, nd = 0;
  std::vector<Vec> copies;
  const Vec r = run(c.ref, DType::F64, &nr, nullptr), d = run(c.dut, DType::F32, &nd, &copies);
  checkClose(c.name + " adamw values and moments", d, r, 1e-5);
  check(c.name + " grad_norm_sq", std::fabs(nd - nr) / nr, 1e-6);
  for (size_t i = 0; i + 1 < copies.size(); i += 2) checkClose(c.name + " adamw bf16 copy refreshed", copies[i], copies[i + 1], 0);
}

// ---------------------------------------------------------------------------------------------
// Memory: upload/download conversions, copy, fill_zero, a buffer overrun refused

void testMemory(Ctx& c) {
  const Vec x = roundTo(c.rnd.vec(1000, 10), DType::F32);
  DeviceArray a = put(c.dut, DType::F32, x), b(c.dut, DType::F32, 1000);
  c.dut.copy(b.ref(), a.ref(), a.bytes());
  checkClose(c.name + " copy", get(c.dut, b, 1000), x, 0);
  c.dut.zero(b.at(10), 4 * 100);
  Vec z = x;
  for (int i = 10; i < 110; i++) z[i] = 0;
  checkClose(c.name + " fill_zero", get(c.dut, b, 1000), z, 0);
  DeviceArray h = put(c.dut, DType::BF16, x);
  checkClose(c.name + " upload f64 -> bf16, download bf16 -> f64", get(c.dut, h, 1000), roundTo(x, DType::BF16), 0);
  bool refused = false;
  try {
    c.dut.copy(b.ref(), a.at(900), a.bytes());  // reads past the end of a
  } catch (const std::exception&) {
    refused = true;
  }
  check(c.name + " a copy past the end of a buffer is refused", refused ? 0 : 1, 0);
}

}  // namespace

int main(int argc, char** argv) {
  bool perf = false, list = false;
  std::vector<std::string> only;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--perf") perf = true;
    else if (a == "--list") list = true;
    else if (a == "--backend" && i + 1 < argc) only.push_back(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--perf] [--list] [--backend NAME]...\n", argv[0]);
      return 2;
    }
  }
  const std::vector<BackendListing> backends = listBackends();
  for (const BackendListing& b : backends)
    std::printf("backend %-10s %s%s%s\n", b.name.c_str(), b.available ? "available" : "unavailable: ",
                b.available ? "" : b.reason.c_str(), b.library.empty() ? "" : (" (" + b.library + ")").c_str());
  if (list) return 0;
  std::shared_ptr<Backend> ref = openDevice("cpu");
  for (const BackendListing& b : backends) {
    if (!b.available) continue;
    if (!only.empty() && std::find(only.begin(), only.end(), b.name) == only.end()) continue;
    std::shared_ptr<Backend> dut = b.name == "cpu" ? ref : openDevice(b.name);
    const DeviceInfo info = dut->describe();
    std::printf("== %s: %s (%s)\n", b.name.c_str(), info.name.c_str(), info.description.c_str());
    Ctx c{*ref, *dut, b.name, perf};
    const int before = tally.failed;
    testMemory(c);
    testMatmul(c);
    testLora(c);
    testRmsnorm(c);
    testRope(c);
    testElementwise(c);
    testAttention(c);
    testPagedAttention(c);
    testLmHead(c);
    testSample(c);
    testAdamw(c);
    std::printf("== %s: %s\n", b.name.c_str(), tally.failed == before ? "ok" : "FAILED");
  }
  std::printf("%d passed, %d failed, %d skipped\n", tally.passed, tally.failed, tally.skipped);
  return tally.failed == 0 ? 0 : 1;
}
