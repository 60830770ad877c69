// Peer timings for bench/kernels.ts: the same three products through OpenBLAS cblas_sgemm and
// oneDNN matmul, in a separate process so that the addon never links either library. Built by
// bench/kernels.ts when the Debian packages are there (libopenblas-dev, libdnnl-dev):
//   g++ -std=c++17 -O2 [-DPEER_OPENBLAS -I/usr/include/x86_64-linux-gnu] [-DPEER_DNNL]
//       bench/peer_gemm.cc -o peer_gemm [-lopenblas] [-ldnnl]
// Usage: peer_gemm <openblas|dnnl> <seconds per case> then one case per stdin line,
//   "<fwd|bwdI|bwdW> <F32|BF16> M K N"
// and prints one line per case: GFLOP/s (median of 5 timed batches), or "nan" when unsupported.
// Shapes as in native/cpu/ops.h: W [N, K] row-major (nn.Linear), fwd out = inp @ W^T,
// bwdI dinp += dout @ W, bwdW dW += dout^T @ inp. oneDNN gets its weights pre-packed (format
// "any", reordered once outside the timing) for fwd, as an inference engine would hold them; its
// BF16 case converts the activations to bf16 too (bf16 x bf16 -> f32: less precise than ours).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#ifdef PEER_OPENBLAS
#include <cblas.h>
#endif
#ifdef PEER_DNNL
#include <dnnl.hpp>
#endif

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Median seconds per call over 5 batches of calls, each batch about `target` / 5 seconds.
double medianSeconds(const std::function<void()>& f, double target) {
  f();
  double t0 = now();
  f();
  const double one = std::max(now() - t0, 1e-7);
  const int reps = std::max(1, static_cast<int>(target / 5 / one));
  std::vector<double> ts;
  for (int b = 0; b < 5; b++) {
    t0 = now();
    for (int r = 0; r < reps; r++) f();
    ts.push_back((now() - t0) / reps);
  }
  std::sort(ts.begin(), ts.end());
  return ts[2];
}

std::vector<float> randv(size_t n) {
  std::vector<float> v(n);
  unsigned s = 12345;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>((s >> 8) & 0xffff) / 65536.0f - 0.5f;
  }
  return v;
}

#ifdef PEER_OPENBLAS
double openblas(const std::string& op, const std::string& dt, int M, int K, int N, double target) {
  if (dt != "F32") return NAN;  // sgemm only; OpenBLAS's sbgemm wants bf16 activations too
  auto W = randv(size_t(N) * K), A = randv(size_t(M) * std::max(K, N)), C = randv(size_t(M) * std::max(K, N));
  auto dW = randv(size_t(N) * K);
  std::function<void()> f;
  if (op == "fwd")
    f = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.f, A.data(), K, W.data(), K, 0.f, C.data(), N); };
  else if (op == "bwdI")
    f = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, K, N, 1.f, A.data(), N, W.data(), K, 1.f, C.data(), K); };
  else
    f = [&] { cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, M, 1.f, A.data(), N, C.data(), K, 1.f, dW.data(), K); };
  return 2.0 * M * N * K / medianSeconds(f, target) / 1e9;
}
#endif

#ifdef PEER_DNNL
double dnnlPeer(const std::string& op, const std::string& dt, int M, int K, int N, double target) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dtp = memory::data_type;
  static engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const bool bf = dt == "BF16";
  if (bf && op != "fwd") return NAN;
  const dtp in = bf ? dtp::bf16 : dtp::f32;
  memory::desc src, wei, dst;
  primitive_attr attr;
  if (op == "fwd") {  // [M,K] x [K,N] with W^T: weights packed by oneDNN
    src = memory::desc({M, K}, in, tag::ab);
    wei = memory::desc({K, N}, in, tag::any);
    dst = memory::desc({M, N}, dtp::f32, tag::ab);
  } else {
    post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
    if (op == "bwdI") {  // dout [M,N] x W [N,K]
      src = memory::desc({M, N}, dtp::f32, tag::ab);
      wei = memory::desc({N, K}, dtp::f32, tag::ab);
      dst = memory::desc({M, K}, dtp::f32, tag::ab);
    } else {  // dout^T [N,M] x inp [M,K]
      src = memory::desc({N, M}, dtp::f32, tag::ba);
      wei = memory::desc({M, K}, dtp::f32, tag::ab);
      dst = memory::desc({N, K}, dtp::f32, tag::ab);
    }
  }
  matmul::primitive_desc pd(matmul::desc(src, wei, dst), attr, eng);  // oneDNN 2.x API
  memory srcM(pd.src_desc(), eng), weiM(pd.weights_desc(), eng), dstM(pd.dst_desc(), eng);
  // fill: plain f32 data reordered into whatever layout / type the primitive chose
  auto fill = [&](memory& m, const memory::desc& plainDesc, size_t n) {
    auto v = randv(n);
    memory plain(plainDesc, eng, v.data());
    reorder(plain, m).execute(s, plain, m);
    s.wait();
  };
  if (op == "fwd") {
    fill(srcM, memory::desc({M, K}, dtp::f32, tag::ab), size_t(M) * K);
    fill(weiM, memory::desc({K, N}, dtp::f32, tag::ba), size_t(N) * K);  // W [N,K] seen as [K,N]
  } else {
    fill(srcM, memory::desc(pd.src_desc().dims(), dtp::f32, op == "bwdI" ? tag::ab : tag::ba), size_t(M) * N);
    fill(weiM, memory::desc(pd.weights_desc().dims(), dtp::f32, tag::ab), size_t(op == "bwdI" ? N : M) * K);
  }
  fill(dstM, memory::desc(pd.dst_desc().dims(), dtp::f32, tag::ab), op == "bwdW" ? size_t(N) * K : size_t(M) * (op == "fwd" ? N : K));
  matmul prim(pd);
  auto f = [&] {
    prim.execute(s, {{DNNL_ARG_SRC, srcM}, {DNNL_ARG_WEIGHTS, weiM}, {DNNL_ARG_DST, dstM}});
    s.wait();
  };
  return 2.0 * M * N * K / medianSeconds(f, target) / 1e9;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: peer_gemm <openblas|dnnl> <seconds per case>  (cases on stdin)\n");
    return 2;
  }
  const std::string lib = argv[1];
  const double target = std::atof(argv[2]);
  std::string op, dt;
  int M, K, N;
  while (std::cin >> op >> dt >> M >> K >> N) {
    double g = NAN;
#ifdef PEER_OPENBLAS
    if (lib == "openblas") g = openblas(op, dt, M, K, N, target);
#endif
#ifdef PEER_DNNL
    if (lib == "dnnl") g = dnnlPeer(op, dt, M, K, N, target);
#endif
    std::printf("%.3f\n", g);
    std::fflush(stdout);
  }
  return 0;
}
