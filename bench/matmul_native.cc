// Stand-alone driver for the CPU matmul kernels without Node: a quick correctness sweep against
// a float64 reference and a timing table, for working on the kernels themselves. The numbers to
// report come from bench/kernels.ts (the shipped addon); this is the fast inner loop.
//   g++ -std=c++17 -O3 -march=native -fopenmp -Inative/include -Inative bench/matmul_native.cc
//       native/cpu/matmul.cc native/cpu/matmul_avx512.cc -o /tmp/matmul_native && /tmp/matmul_native
// Args: [check|time|both] (default both).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cpu/matmul_kernels.h"

using namespace rrec;
using namespace rrec::cpu;

namespace {

std::mt19937 rng(1234);
std::vector<float> randv(size_t n) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Weight bytes stored at `offset` bytes into a buffer (to test unaligned pointers).
struct Weights {
  std::vector<char> bytes;
  std::vector<double> val;  // the values as stored, [N,K]
  Mat mat(int N, int K, DType dt, size_t offset) const {
    Mat m;
    m.data = bytes.data() + offset;
    m.dtype = dt;
    m.rows = N;
    m.cols = K;
    return m;
  }
};
Weights makeW(int N, int K, DType dt, size_t offset) {
  Weights w;
  auto v = randv(static_cast<size_t>(N) * K);
  w.bytes.resize(offset + v.size() * 4 + 64);
  w.val.resize(v.size());
  for (size_t i = 0; i < v.size(); i++) {
    if (dt == DType::F32) {
      std::memcpy(w.bytes.data() + offset + 4 * i, &v[i], 4);
      w.val[i] = v[i];
    } else {
      uint16_t h = f32ToBf16(v[i]);
      std::memcpy(w.bytes.data() + offset + 2 * i, &h, 2);
      w.val[i] = bf16ToF32(h);
    }
  }
  return w;
}

double maxRelErr(const std::vector<float>& got, const std::vector<double>& ref) {
  double scale = 1e-30, err = 0;
  for (double r : ref) scale = std::max(scale, std::fabs(r));
  for (size_t i = 0; i < ref.size(); i++) err = std::max(err, std::fabs(got[i] - ref[i]));
  return err / scale;
}

int check() {
  int bad = 0, count = 0;
  const int Ms[] = {1, 3, 16, 17, 64, 100};
  const int Ks[] = {1, 7, 64, 100, 896};
  for (DType dt : {DType::F32, DType::BF16})
    for (int M : Ms)
      for (int K : Ks)
        for (int N : Ks) {
          const size_t off = dt == DType::F32 ? 4 : 2;
          Weights w = makeW(N, K, dt, off);
          Mat W = w.mat(N, K, dt, off);
          auto inp = randv(static_cast<size_t>(M) * K), bias = randv(N), out0 = randv(static_cast<size_t>(M) * N);
          auto dout = randv(static_cast<size_t>(M) * N);
          for (int acc = 0; acc < 2; acc++)
            for (int hb = 0; hb < 2; hb++) {
              std::vector<float> out = out0;
              matmul_forward<float>(out.data(), inp.data(), W, hb ? bias.data() : nullptr, M, acc);
              std::vector<double> ref(out.size());
              for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++) {
                  double s = acc ? out0[m * N + n] : 0.0;
                  if (hb) s += bias[n];
                  for (int k = 0; k < K; k++) s += double(inp[m * K + k]) * w.val[size_t(n) * K + k];
                  ref[m * N + n] = s;
                }
              double e = maxRelErr(out, ref);
              count++;
              if (e > 1e-5) {
                bad++;
                std::printf("forward %s M=%d K=%d N=%d acc=%d bias=%d: rel err %.3g\n", dtypeName(dt), M, K, N, acc, hb, e);
              }
            }
          {  // backward input
            auto d0 = randv(static_cast<size_t>(M) * K);
            std::vector<float> d = d0;
            matmul_backward_input<float>(d.data(), dout.data(), W, M);
            std::vector<double> ref(d.size());
            for (int m = 0; m < M; m++)
              for (int k = 0; k < K; k++) {
                double s = d0[m * K + k];
                for (int n = 0; n < N; n++) s += double(dout[m * N + n]) * w.val[size_t(n) * K + k];
                ref[m * K + k] = s;
              }
            double e = maxRelErr(d, ref);
            count++;
            if (e > 1e-5) {
              bad++;
              std::printf("backward_input %s M=%d K=%d N=%d: rel err %.3g\n", dtypeName(dt), M, K, N, e);
            }
          }
          if (dt == DType::F32) {  // backward weight (no stored dtype involved)
            auto dw0 = randv(static_cast<size_t>(N) * K), db0 = randv(N);
            std::vector<float> dw = dw0, db = db0;
            matmul_backward_weight<float>(dw.data(), db.data(), dout.data(), inp.data(), M, K, N);
            std::vector<double> ref(dw.size()), refb(N);
            for (int n = 0; n < N; n++) {
              double sb = db0[n];
              for (int m = 0; m < M; m++) sb += dout[m * N + n];
              refb[n] = sb;
              for (int k = 0; k < K; k++) {
                double s = dw0[size_t(n) * K + k];
                for (int m = 0; m < M; m++) s += double(dout[m * N + n]) * inp[m * K + k];
                ref[size_t(n) * K + k] = s;
              }
            }
            double e = std::max(maxRelErr(dw, ref), maxRelErr(db, refb));
            count++;
            if (e > 1e-5) {
              bad++;
              std::printf("backward_weight M=%d K=%d N=%d: rel err %.3g\n", M, K, N, e);
            }
          }
        }
  std::printf("check: %d of %d cases failed\n", bad, count);
  return bad;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class F>
double medianSeconds(F&& f, double minTime = 0.05) {
  f();
  int reps = 1;
  for (;;) {
    double t0 = now();
    for (int i = 0; i < reps; i++) f();
    double t = now() - t0;
    if (t > minTime / 5) break;
    reps *= 2;
  }
  std::vector<double> ts;
  for (int s = 0; s < 5; s++) {
    double t0 = now();
    for (int i = 0; i < reps; i++) f();
    ts.push_back((now() - t0) / reps);
  }
  std::sort(ts.begin(), ts.end());
  return ts[2];
}

void timing() {
  struct Shape { int K, N; };
  const Shape shapes[] = {{896, 896}, {896, 4864}, {4864, 896}};
  const int Ms[] = {1, 4, 16, 512};
  std::printf("%-6s %-5s %5s %5s %5s | %9s %9s | %9s %9s | %9s %9s\n", "dtype", "", "M", "K", "N", "fwd gen", "fwd avx",
              "bwdI gen", "bwdI avx", "bwdW gen", "bwdW avx");
  for (DType dt : {DType::F32, DType::BF16})
    for (auto sh : shapes)
      for (int M : Ms) {
        const int K = sh.K, N = sh.N;
        Weights w = makeW(N, K, dt, 0);
        Mat W = w.mat(N, K, dt, 0);
        auto inp = randv(size_t(M) * K), out = randv(size_t(M) * N), dout = randv(size_t(M) * N);
        auto dinp = randv(size_t(M) * K), dw = randv(size_t(N) * K);
        const double flop = 2.0 * M * N * K;
        double fg = medianSeconds([&] { matmul_forward_generic<float>(out.data(), inp.data(), W, nullptr, M, false); });
        double fa = medianSeconds([&] { matmul_forward_avx512(out.data(), inp.data(), W, nullptr, M, false); });
        double ig = medianSeconds([&] { matmul_backward_input_generic<float>(dinp.data(), dout.data(), W, M); });
        double ia = medianSeconds([&] { matmul_backward_input_avx512(dinp.data(), dout.data(), W, M); });
        double wg = 0, wa = 0;
        if (dt == DType::F32) {
          wg = medianSeconds([&] { matmul_backward_weight_generic<float>(dw.data(), nullptr, dout.data(), inp.data(), M, K, N); });
          wa = medianSeconds([&] { matmul_backward_weight_avx512(dw.data(), nullptr, dout.data(), inp.data(), M, K, N); });
        }
        auto g = [&](double t) { return t > 0 ? flop / t / 1e9 : 0.0; };
        std::printf("%-6s %-5s %5d %5d %5d | %9.1f %9.1f | %9.1f %9.1f | %9.1f %9.1f\n", dtypeName(dt), "", M, K, N, g(fg),
                    g(fa), g(ig), g(ia), g(wg), g(wa));
        std::fflush(stdout);
      }
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "both";
  if (argc > 2) matmul_avx512_set_small_m(std::atoi(argv[2]));
  int bad = 0;
  if (mode == "check" || mode == "both") bad = check();
  if (mode == "time" || mode == "both") timing();
  return bad ? 1 : 0;
}
