// GEMM and attention throughput of one backend at Qwen2.5-0.5B and -3B shapes (or tiny ones for
// the emulator), one JSON line per measurement:
//   {"op":"matmul","model":"qwen2.5-0.5b","shape":"M2048 K896 N4864","ms":..,"tflops":..}
//   bench_cuda [--device cuda] [--tiny]
// Used by native/cuda/gpu-check.sh; the numbers are compared there with PyTorch on the same GPU.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rrec/backend.h"
#include "rrec/backend_registry.h"

using namespace rrec;

namespace {

template <typename Fn>
double timeIt(Backend& be, Fn fn, double minSeconds) {
  fn();
  be.synchronize();
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double dt = 0;
  do {
    fn();
    be.synchronize();
    reps++;
    dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (dt < minSeconds && reps < 200);
  return dt / reps;
}

DeviceArray randomArray(Backend& be, DType t, int64_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  std::vector<double> h(n);
  for (double& x : h) x = u(g) * 0.1;
  DeviceArray a(be, t, n);
  if (t == DType::BF16) {
    std::vector<float> f(h.begin(), h.end());
    be.upload(a.ref(), f.data(), DType::F32, n);
  } else {
    be.upload(a.ref(), h.data(), DType::F64, n);
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cuda";
  bool tiny = false;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--device" && i + 1 < argc) device = argv[++i];
    else if (a == "--tiny") tiny = true;
  }
  std::shared_ptr<Backend> be = openDevice(device);
  const double minS = tiny ? 0.0 : 0.2;
  struct Gemm {
    const char* model;
    int M, K, N;
  };
  std::vector<Gemm> gemms = tiny ? std::vector<Gemm>{{"tiny", 64, 128, 192}}
                                 : std::vector<Gemm>{{"qwen2.5-0.5b", 2048, 896, 4864}, {"qwen2.5-0.5b", 2048, 4864, 896},
                                                     {"qwen2.5-3b", 2048, 2048, 11008}, {"qwen2.5-3b", 2048, 11008, 2048}};
  for (const Gemm& g : gemms) {
    DeviceArray x = randomArray(*be, DType::F32, int64_t(g.M) * g.K, 1), w = randomArray(*be, DType::BF16, int64_t(g.N) * g.K, 2);
    DeviceArray out(*be, DType::F32, int64_t(g.M) * g.N);
    Weight wt;
    wt.t = w.ref();
    wt.rows = g.N;
    wt.cols = g.K;
    wt.bf16Products = true;
    const rrec_matmul_args a{out.raw(), x.raw(), wt.raw(), absentTensor(), g.M, 0};
    const double s = timeIt(*be, [&] { be->run(RREC_OP_MATMUL, a); }, minS);
    std::printf("{\"op\":\"matmul\",\"model\":\"%s\",\"shape\":\"M%d K%d N%d bf16\",\"ms\":%.4f,\"tflops\":%.3f}\n", g.model, g.M, g.K, g.N, s * 1e3,
                2.0 * g.M * g.K * g.N / s / 1e12);
    std::fflush(stdout);
  }
  struct Attn {
    const char* model;
    int S, L, Hq, Hk, D;
  };
  std::vector<Attn> attns = tiny ? std::vector<Attn>{{"tiny", 2, 24, 4, 2, 64}}
                                 : std::vector<Attn>{{"qwen2.5-0.5b", 4, 512, 14, 2, 64}, {"qwen2.5-3b", 4, 512, 16, 2, 128}};
  for (const Attn& at : attns) {
    const int M = at.S * at.L;
    std::vector<int32_t> so;
    for (int s = 0; s <= at.S; s++) so.push_back(s * at.L);
    DeviceArray q = randomArray(*be, DType::F32, int64_t(M) * at.Hq * at.D, 3), k = randomArray(*be, DType::F32, int64_t(M) * at.Hk * at.D, 4);
    DeviceArray v = randomArray(*be, DType::F32, int64_t(M) * at.Hk * at.D, 5), out(*be, DType::F32, int64_t(M) * at.Hq * at.D);
    DeviceArray lse(*be, DType::F32, int64_t(M) * at.Hq), dso(*be, DType::I32, at.S + 1);
    be->upload(dso.ref(), so.data(), DType::I32, so.size());
    rrec_attention_args a{};
    a.out = out.raw();
    a.lse = lse.raw();
    a.q = q.raw();
    a.k = k.raw();
    a.v = v.raw();
    a.seq_offsets = dso.raw();
    a.S = at.S;
    a.M = M;
    a.Hq = at.Hq;
    a.Hk = at.Hk;
    a.D = at.D;
    a.scale = 1.0 / std::sqrt(double(at.D));
    const double s = timeIt(*be, [&] { be->run(RREC_OP_ATTENTION, a); }, minS);
    // causal: L (L + 1) / 2 scores per sequence and head, 2 matmuls of 2 D flops each
    const double flops = 4.0 * at.D * at.Hq * at.S * (double(at.L) * (at.L + 1) / 2);
    std::printf("{\"op\":\"attention_fwd\",\"model\":\"%s\",\"shape\":\"S%d L%d Hq%d Hk%d D%d causal\",\"ms\":%.4f,\"tflops\":%.3f}\n", at.model, at.S,
                at.L, at.Hq, at.Hk, at.D, s * 1e3, flops / s / 1e12);
    std::fflush(stdout);
  }
  return 0;
}
