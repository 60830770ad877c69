// The CUDA emulator's own tests (native/tests/cuda_emu): that the device layer's instructions do
// what the PTX ISA says, checked against plain scalar code, so that the every-op test of the
// cuda-emu backend tests the kernels and not the emulator.
//   mma + ldmatrix    16x16x8 tiles loaded from shared memory (plain and .trans) multiply like a
//                     scalar matmul of the bf16-rounded inputs; the documented register layout
//                     (fragments built by hand) gives the same
//   warp primitives   shfl idx/xor/down/up, ballot, against the lane arithmetic
//   barriers          neighbours' shared-memory writes seen after __syncthreads (full and partial warps)
//   cp.async          data present after wait_group, zero-filled when invalid, absent before the wait
//   atomics, bf16     atomicAdd from every thread; f32 -> bf16 rounding equals rrec::f32ToBf16
//   faults            a barrier not every thread reaches is reported as a deadlock; a read past a
//                     device buffer faults with the kernel's name (both in a forked child)
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cuda/device.cuh"
#include "rrec/dtype.h"

using namespace rrec_dev;

namespace {

int passed = 0, failed = 0;
void check(const std::string& what, bool ok, const std::string& detail = "") {
  (ok ? passed : failed)++;
  if (!ok) std::printf("FAIL %s %s\n", what.c_str(), detail.c_str());
  else std::printf("ok   %s\n", what.c_str());
}

template <typename T>
T* dalloc(size_t n) {
  return static_cast<T*>(rrec_emu::device_alloc(n * sizeof(T)));
}

// C[16][16] = A[16][16] B^T where B is given as W[16 n][16 k] (nn.Linear layout). A from
// ldmatrix_x4 of a row-major tile (or .trans of a k-major one), W from ldmatrix_x4 (two n8 tiles).
RREC_KERNEL void mmaTile(float* C, const uint16_t* A, const uint16_t* W, int aKMajor) {
  __shared__ __attribute__((aligned(16))) uint16_t sa[16][24], sw[16][24];  // padded rows, 48 bytes
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) {
    sa[i / 16][i % 16] = A[i];
    sw[i / 16][i % 16] = W[i];
  }
  __syncthreads();
  uint32_t a[4], b[4];
  if (!aKMajor) ldmatrix_x4(a, &sa[lane % 16][(lane / 16) * 8]);
  else ldmatrix_x4_trans(a, &sa[(lane / 16) * 8 + lane % 8][((lane / 8) % 2) * 8]);  // sa[k][m]
  ldmatrix_x4(b, &sw[(lane / 16) * 8 + lane % 8][((lane / 8) % 2) * 8]);
  for (int j = 0; j < 2; j++) {
    float c[4] = {0, 0, 0, 0};
    const uint32_t bj[2] = {b[2 * j], b[2 * j + 1]};
    mma_m16n8k16_bf16(c, a, bj);
    const int g = lane / 4, t = lane % 4;
    C[g * 16 + j * 8 + 2 * t] = c[0];
    C[g * 16 + j * 8 + 2 * t + 1] = c[1];
    C[(g + 8) * 16 + j * 8 + 2 * t] = c[2];
    C[(g + 8) * 16 + j * 8 + 2 * t + 1] = c[3];
  }
}

// The same product with fragments built from the documented layout directly (no ldmatrix).
RREC_KERNEL void mmaByLayout(float* C, const uint16_t* A, const uint16_t* B /* [16 k][8 n] */) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  const uint32_t a[4] = {pack_bf16x2(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]), pack_bf16x2(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]),
                         pack_bf16x2(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]),
                         pack_bf16x2(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9])};
  const uint32_t b[2] = {pack_bf16x2(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]), pack_bf16x2(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g])};
  float c[4] = {1, 2, 3, 4};  // accumulates onto C
  mma_m16n8k16_bf16(c, a, b);
  C[g * 8 + 2 * t] = c[0];
  C[g * 8 + 2 * t + 1] = c[1];
  C[(g + 8) * 8 + 2 * t] = c[2];
  C[(g + 8) * 8 + 2 * t + 1] = c[3];
}

RREC_KERNEL void shuffles(int* out) {
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  const int v = lane * 10 + w;
  int* o = out + threadIdx.x * 6;
  o[0] = __shfl_sync(kFull, v, (lane * 7) % 32);
  o[1] = __shfl_xor_sync(kFull, v, 5);
  o[2] = __shfl_down_sync(kFull, v, 3);
  o[3] = __shfl_up_sync(kFull, v, 2);
  o[4] = static_cast<int>(__ballot_sync(kFull, lane % 3 == 0));
  o[5] = static_cast<int>(warp_sum(static_cast<float>(lane)));
}

RREC_KERNEL void neighbours(int* out, int rounds) {
  __shared__ int s[1024];
  const int n = blockDim.x, t = threadIdx.x;
  int acc = 0;
  for (int r = 0; r < rounds; r++) {
    s[t] = t * 3 + r + static_cast<int>(blockIdx.x) * 1000;
    __syncthreads();
    acc += s[(t + 1 + r) % n];
    __syncthreads();
  }
  out[blockIdx.x * n + t] = acc;
}

RREC_KERNEL void asyncCopy(int* out, const int* src) {
  RREC_DYN_SMEM(int, s);
  const int t = threadIdx.x;
  cp_async16(&s[t * 4], &src[t * 4], t % 2 == 0);
  cp_async_commit();
  out[t * 8] = s[t * 4];  // before the wait: not yet there (the emulator fills shared memory with 0xcd)
  cp_async_wait<0>();
  for (int i = 0; i < 4; i++) out[t * 8 + 1 + i] = s[t * 4 + i];
}

RREC_KERNEL void atomics(float* f, int* i) {
  atomicAdd(f, 1.0f);
  atomicAdd(i, static_cast<int>(threadIdx.x));
}

RREC_KERNEL void deadlock() {
  if (threadIdx.x < 16) __syncwarp();  // half of warp 0 waits for the other half, which waits for the block
  else __syncthreads();
  __syncthreads();
}

RREC_KERNEL void overrun(float* p, int n) {
  if (threadIdx.x == 0) p[0] = p[n + 4];  // 16 bytes past the end: the guard page
}

void testMma() {
  std::mt19937 g(1);
  std::uniform_real_distribution<float> u(-1, 1);
  uint16_t *A = dalloc<uint16_t>(256), *W = dalloc<uint16_t>(256), *AT = dalloc<uint16_t>(256);
  float* C = dalloc<float>(256);
  for (int i = 0; i < 256; i++) A[i] = rrec::f32ToBf16(u(g)), W[i] = rrec::f32ToBf16(u(g));
  for (int m = 0; m < 16; m++)
    for (int k = 0; k < 16; k++) AT[k * 16 + m] = A[m * 16 + k];
  for (int kMajor : {0, 1}) {
    RREC_LAUNCH(mmaTile, dim3(1), dim3(32), 0, nullptr, C, kMajor ? AT : A, W, kMajor);
    double err = 0;
    for (int m = 0; m < 16; m++)
      for (int n = 0; n < 16; n++) {
        double s = 0;
        for (int k = 0; k < 16; k++) s += double(rrec::bf16ToF32(A[m * 16 + k])) * rrec::bf16ToF32(W[n * 16 + k]);
        err = std::max(err, std::fabs(s - C[m * 16 + n]));
      }
    check(std::string("ldmatrix_x4") + (kMajor ? "_trans" : "") + " + mma_m16n8k16_bf16 = scalar matmul", err < 1e-5, "max err " + std::to_string(err));
  }
  uint16_t* B = dalloc<uint16_t>(128);
  for (int i = 0; i < 128; i++) B[i] = rrec::f32ToBf16(u(g));
  RREC_LAUNCH(mmaByLayout, dim3(1), dim3(32), 0, nullptr, C, A, B);
  double err = 0;
  for (int m = 0; m < 16; m++)
    for (int n = 0; n < 8; n++) {
      double s = 1 + (m >= 8 ? 2 : 0) + (n % 2);
      for (int k = 0; k < 16; k++) s += double(rrec::bf16ToF32(A[m * 16 + k])) * rrec::bf16ToF32(B[k * 8 + n]);
      err = std::max(err, std::fabs(s - C[m * 8 + n]));
    }
  check("mma fragments in the PTX ISA's layout (built by hand) = scalar matmul + C", err < 1e-5, "max err " + std::to_string(err));
  rrec_emu::device_free(A), rrec_emu::device_free(W), rrec_emu::device_free(AT), rrec_emu::device_free(B), rrec_emu::device_free(C);
}

void testShuffles() {
  const int nt = 64;
  int* out = dalloc<int>(nt * 6);
  RREC_LAUNCH(shuffles, dim3(1), dim3(nt), 0, nullptr, out);
  bool ok = true;
  for (int t = 0; t < nt; t++) {
    const int lane = t % 32, w = t / 32;
    auto val = [&](int l) { return l * 10 + w; };
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
      if (l % 3 == 0) ballot |= 1u << l;
    const int* o = out + t * 6;
    ok &= o[0] == val((lane * 7) % 32) && o[1] == val(lane ^ 5) && o[2] == (lane + 3 < 32 ? val(lane + 3) : val(lane)) &&
          o[3] == (lane >= 2 ? val(lane - 2) : val(lane)) && unsigned(o[4]) == ballot && o[5] == 496;
  }
  check("shfl idx/xor/down/up, ballot, warp_sum (two warps)", ok);
  rrec_emu::device_free(out);
}

void testBarriers() {
  for (int n : {256, 100}) {
    const int blocks = 3, rounds = 5;
    int* out = dalloc<int>(blocks * n);
    RREC_LAUNCH(neighbours, dim3(blocks), dim3(n), 0, nullptr, out, rounds);
    bool ok = true;
    for (int b = 0; b < blocks; b++)
      for (int t = 0; t < n; t++) {
        int e = 0;
        for (int r = 0; r < rounds; r++) e += ((t + 1 + r) % n) * 3 + r + b * 1000;
        ok &= out[b * n + t] == e;
      }
    check("__syncthreads: neighbours' writes seen, " + std::to_string(n) + " threads x 3 blocks", ok);
    rrec_emu::device_free(out);
  }
}

void testAsync() {
  const int nt = 32;
  int *out = dalloc<int>(nt * 8), *src = dalloc<int>(nt * 4);
  for (int i = 0; i < nt * 4; i++) src[i] = i + 1;
  RREC_LAUNCH(asyncCopy, dim3(1), dim3(nt), nt * 16, nullptr, out, src);
  bool data = true, early = true;
  for (int t = 0; t < nt; t++) {
    for (int i = 0; i < 4; i++) data &= out[t * 8 + 1 + i] == (t % 2 == 0 ? t * 4 + i + 1 : 0);
    early &= out[t * 8] == int(0xcdcdcdcd);
  }
  check("cp_async16: data after cp_async_wait, zeros where invalid", data);
  check("cp_async16: shared memory not yet written before the wait", early);
  rrec_emu::device_free(out), rrec_emu::device_free(src);
}

void testAtomicsBf16() {
  float* f = dalloc<float>(1);
  int* i = dalloc<int>(1);
  *f = 0, *i = 0;
  RREC_LAUNCH(atomics, dim3(4), dim3(256), 0, nullptr, f, i);
  check("atomicAdd float and int from 1024 threads", *f == 1024.0f && *i == 4 * (255 * 256 / 2));
  std::mt19937 g(3);
  bool ok = true;
  for (int k = 0; k < 200000 && ok; k++) {
    uint32_t bits = g();
    if (k % 4 == 0) bits = (bits & 0xffff0000u) | 0x8000u;  // exact ties
    float x;
    std::memcpy(&x, &bits, 4);
    ok &= f32_to_bf16(x) == rrec::f32ToBf16(x);
  }
  check("f32 -> bf16 nearest even (ties, NaN, random bits) equals rrec::f32ToBf16", ok);
  rrec_emu::device_free(f), rrec_emu::device_free(i);
}

// Runs fn in a child process; returns its stderr and whether it died.
std::string inChild(void (*fn)(), bool* died) {
  int p[2];
  if (pipe(p) != 0) return "";
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    fn();
    _exit(0);
  }
  close(p[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) err.append(buf, size_t(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  *died = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return err;
}

void testFaults() {
  bool died = false;
  std::string err = inChild([] { RREC_LAUNCH(deadlock, dim3(1), dim3(64), 0, nullptr); }, &died);
  check("a barrier some threads never reach is reported as a deadlock", died && err.find("deadlock in deadlock") != std::string::npos, err);
  err = inChild(
      [] {
        float* p = dalloc<float>(100);
        RREC_LAUNCH(overrun, dim3(1), dim3(32), 0, nullptr, p, 100);
      },
      &died);
  check("a read past a device buffer faults, naming the kernel", died && err.find("out-of-bounds access") != std::string::npos &&
                                                                      err.find("kernel overrun") != std::string::npos,
        err);
}

}  // namespace

int main() {
  testMma();
  testShuffles();
  testBarriers();
  testAsync();
  testAtomicsBf16();
  testFaults();
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
