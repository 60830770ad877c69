// The bf16 tensor-core GEMM path of the CUDA backend (gemmMma: ldmatrix, mma.sync, cp.async,
// zero-filled edge chunks) in its three layouts on awkward shapes the every-op test does not
// reach: tiles hanging over every edge (M = 130, N = 72, K = 200 with a partial k-tile), K not a
// multiple of 8 (the padded weight copy), M just above the small-M path, exact tiles, several
// tiles per dimension. Inputs are bf16-representable, so rounding them is exact and the float64
// CPU path is the reference: the only difference left is the order of the f32 sums.
//   test_cuda_gemm [--backend cuda-emu|cuda]      exit 0 when every check passes
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "rrec/backend.h"
#include "rrec/backend_registry.h"
#include "rrec/dtype.h"

using namespace rrec;

namespace {

using Vec = std::vector<double>;
int passed = 0, failed = 0;

Vec bf16Values(std::mt19937_64& g, size_t n) {
  std::uniform_real_distribution<double> u(-1, 1);
  Vec v(n);
  for (double& x : v) x = bf16ToF32(f32ToBf16(static_cast<float>(u(g))));
  return v;
}

DeviceArray put(Backend& be, DType t, const Vec& h) {
  DeviceArray a(be, t, std::max<int64_t>(1, int64_t(h.size())));
  if (t == DType::BF16) {
    std::vector<float> f(h.begin(), h.end());
    be.upload(a.ref(), f.data(), DType::F32, h.size());
  } else {
    be.upload(a.ref(), h.data(), DType::F64, h.size());
  }
  return a;
}
Vec get(Backend& be, const DeviceArray& a, size_t n) {
  Vec h(n);
  be.download(h.data(), DType::F64, a.ref(), n);
  return h;
}
Weight weight(const DeviceArray& a, int rows, int cols) {
  Weight w;
  w.t = a.ref();
  w.rows = rows;
  w.cols = cols;
  w.bf16Products = true;
  return w;
}

void check(const std::string& what, const Vec& got, const Vec& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); i++) num = std::max(num, std::fabs(got[i] - ref[i])), den = std::max(den, std::fabs(ref[i]));
  const double err = den > 0 ? num / den : num;
  const bool ok = got.size() == ref.size() && std::isfinite(err) && err < 1e-5;
  (ok ? passed : failed)++;
  std::printf("%s %-56s err %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), err);
}

}  // namespace

int main(int argc, char** argv) {
  std::string name = "cuda-emu";
  for (int i = 1; i + 1 < argc; i++)
    if (std::string(argv[i]) == "--backend") name = argv[i + 1];
  std::shared_ptr<Backend> ref = openDevice("cpu"), dut = openDevice(name);
  std::mt19937_64 g(11);
  struct Shape {
    int M, K, N;
  };
  for (const Shape s : {Shape{130, 64, 72}, Shape{65, 200, 130}, Shape{17, 37, 53}, Shape{9, 96, 64}, Shape{200, 256, 40}, Shape{64, 64, 64},
                        Shape{129, 136, 192}}) {
    const Vec x = bf16Values(g, size_t(s.M) * s.K), w = bf16Values(g, size_t(s.N) * s.K), b = bf16Values(g, s.N);
    const Vec o0 = bf16Values(g, size_t(s.M) * s.N), dy = bf16Values(g, size_t(s.M) * s.N), dw0 = bf16Values(g, size_t(s.N) * s.K);
    const std::string tag = "M" + std::to_string(s.M) + " K" + std::to_string(s.K) + " N" + std::to_string(s.N);
    auto fwd = [&](Backend& be, DType act, bool acc) {
      DeviceArray dx = put(be, act, x), dW = put(be, act == DType::F64 ? DType::F64 : DType::BF16, w), db = put(be, act, b), out = put(be, act, o0);
      const rrec_matmul_args a{out.raw(), dx.raw(), weight(dW, s.N, s.K).raw(), db.raw(), s.M, acc ? 1 : 0};
      be.run(RREC_OP_MATMUL, a);
      return get(be, out, o0.size());
    };
    for (bool acc : {false, true}) check(name + " matmul (mma) " + tag + (acc ? " +=" : ""), fwd(*dut, DType::F32, acc), fwd(*ref, DType::F64, acc));
    auto bwdIn = [&](Backend& be, DType act) {
      DeviceArray gout = put(be, act, dy), dW = put(be, act == DType::F64 ? DType::F64 : DType::BF16, w), dx = put(be, act, x);
      const rrec_matmul_args a{dx.raw(), gout.raw(), weight(dW, s.N, s.K).raw(), absentTensor(), s.M, 0};
      be.run(RREC_OP_MATMUL_BWD_INPUT, a);
      return get(be, dx, x.size());
    };
    check(name + " matmul_bwd_input (mma, W .trans) " + tag, bwdIn(*dut, DType::F32), bwdIn(*ref, DType::F64));
    auto bwdW = [&](Backend& be, DType act) {
      DeviceArray gout = put(be, act, dy), inp = put(be, act, x), dW = put(be, act, dw0);
      const rrec_matmul_bwd_weight_args a{dW.raw(), absentTensor(), gout.raw(), inp.raw(), s.M, s.K, s.N, 1};
      be.run(RREC_OP_MATMUL_BWD_WEIGHT, a);
      return get(be, dW, dw0.size());
    };
    check(name + " matmul_bwd_weight (mma, both .trans) " + tag, bwdW(*dut, DType::F32), bwdW(*ref, DType::F64));
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
