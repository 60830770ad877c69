// AVX-512 float matrix products against stored weights W [N, K] (F32, BF16 or F16, read with
// only their element alignment). One register-blocked microkernel shape serves the three products,
//   C[MR x NV*16] (=|+=) sum_r A[r*lda + i] * B[r*ldb + j]   (i < MR rows, j < NV*16 columns),
// MR x NV accumulators in zmm registers (12 x 2 here), A broadcast, B loaded as vectors, both
// packed by gemmPacked so that the loop reads contiguous, aligned memory:
//   forward           out[M,N]  = inp @ W^T: A = inp rows, B = W^T panels (transposed in registers,
//                                            bf16/f16 widened to f32 once)
//   backward_input    dinp[M,K] += dout @ W: A = dout rows, B = W row segments
//   backward_weight   dW[N,K]   += dout^T @ inp: A = dout columns, B = inp row segments
// Cache blocking: kKC reduction steps per pass so a B panel (kKC x 32 floats, 32 KiB) stays in L1
// while the row blocks of A (kMC rows, in L2) stream past it. Threads get one output tile each
// (over N, or over M when N is narrow); products under ~1M multiply-adds stay on one thread.
// Decode-sized M takes two other paths: the forward below gSmallM rows uses K-vectorised dot
// products straight from W (4 x 6 tiles, each weight loaded once per 4 rows of inp; packing W
// would cost as much as the product), and backward_input with M <= 4 sweeps W's rows once with
// dinp held in registers. Scratch buffers are thread-local and only grow: fresh pages cost ~11 us
// each on this machine (docs/machine-limits.md).
// Two facts of this core shaped the code: it sustains about one 64-byte load per cycle, and a
// load that straddles two cache lines costs two, so loads are kept out of FMAs where reused and
// aligned where the data is read in place. Results are bit-identical whatever the thread count and
// wherever W and the activations sit in memory (see dotTile): each output element is always summed
// in the same order.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <utility>

#include "matmul_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RREC_MATMUL_AVX512 1
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's AVX-512 headers seed results with _mm512_undefined_*(), which -Wall then reports as
// "'__Y' may be used uninitialized" wherever such an intrinsic is inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#else
#define RREC_MATMUL_AVX512 0
#endif

namespace rrec::cpu {

#if RREC_MATMUL_AVX512

namespace {
// Run-time dispatch: the kernels below are compiled for AVX-512 whatever the build's -march (a
// prebuilt binary is built for x86-64-v2), and entered only when cpuid reports the features:
// F + BW + DQ + VL for the f32 kernels, and AVX512_BF16 as well for the bf16-product paths.
// RREC_MATMUL=generic turns them off (tests of the portable path, diagnosis), RREC_MATMUL=avx2 too
// (tests of the AVX2 path, matmul_avx2.cc, on an AVX-512 machine).
bool envSkipsAvx512() {
  __builtin_cpu_init();  // cpuid before any __builtin_cpu_supports (this runs in a static initialiser)
  return matmul_override() != MatmulOverride::None;
}
const bool gHasAvx512 = !envSkipsAvx512() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#if defined(__clang__) || __GNUC__ >= 12
const bool gHasBf16 = gHasAvx512 && __builtin_cpu_supports("avx512bf16");
#else
const bool gHasBf16 = false;  // this compiler's __builtin_cpu_supports cannot ask
#endif
// What the kernels use: the CPU's features unless matmul_avx512_set_enabled(false) (tests).
bool gCpuAvx512 = gHasAvx512;
bool gCpuBf16 = gHasBf16;
}  // namespace

bool matmul_avx512_compiled() { return gCpuAvx512; }
bool matmul_avx512_bf16() { return gCpuBf16; }

// Everything from here to the entry points is compiled for AVX-512 (see above); the std headers
// were included before, so their inline functions keep the build's baseline target.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma,f16c")
#endif

namespace {

constexpr int kMR = 12;          // rows of A per microkernel (accumulators: kMR x kNV zmm)
constexpr int kNV = 2;           // 16-float vectors of B per microkernel
constexpr int kNR = kNV * 16;    // columns per microkernel
constexpr int kKC = 256;         // reduction steps per pass (B micro-panel kKC x kNR = 32 KiB)
constexpr int kNC = 512;         // forward: columns of W^T packed per pass (kKC x kNC = 512 KiB)
constexpr int kMC = 240;         // rows of A per pass over a packed B block (multiple of kMR)
constexpr int kDotMR = 4;        // dot-product kernel: rows of inp x rows of W per tile
constexpr int kDotNW = 6;        // (24 accumulators; 4 x 4 measured ~20% slower at M = 8..16)

// Forward: M below this uses the dot-product kernel. Packing W^T costs about as much as a product
// with ~16 rows, so the dot kernel (W read in place, each 4 x 6 tile of weights reused by every
// row block of inp from L1) wins for decode batches; measured crossover between M = 32 and 64.
int gSmallM = 32;
// Forward with M up to this many rows (decode of one or two sequences): the dot kernels walk each
// thread's share of W one row at a time, in address order, with the M x 1 tile and no software
// prefetch, instead of 6-row tiles. A walk in address order is one ascending stream per thread,
// which the hardware prefetcher follows at about the read bandwidth; a 6-row tile reads six
// interleaved 1.8 KiB row streams that it picks up late. C++ harness over the bench model's bf16
// weights as [N, 896] rows (memory-mapped, aligned and 32 bytes off), 2 threads, on a Zen 4 host:
// M = 1 15-21 GB/s (6-row tiles, prefetch one tile ahead) vs 23-48 (row walk) beside a read probe
// of 26-48; M = 2 14-21 vs 21-45; at M = 4 the row walk loses (14-20 vs 14-19 for the tiles and
// 18-30 with the tiles' prefetch two tiles ahead into L2). Each output is summed in the same
// order either way (one accumulator per output, same k steps), so the results are bit-identical.
int gRowWalkM = 2;
// From M = 3 on (6-row tiles), each tile prefetches the W rows of the tile this many ahead into L2
// (T1). Engine decode, interleaved in one process, same Zen 4 host: 4 sequences 76 -> 102 tok/s,
// 16 sequences 183 -> 230 against one tile ahead into L1 (T0); two tiles ahead are ~21 KiB of
// requests in flight per thread, more than L1's miss buffers hold.
constexpr int kDotPfTiles = 2;

// ---- weight element loaders: 16 elements -> 16 floats
struct LoadF32 {
  using E = float;
  static __m512 ld(const E* p) { return _mm512_loadu_ps(p); }
  static __m512 ldm(const E* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct LoadBF16 {
  using E = uint16_t;
  static __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
  static __m512 ld(const E* p) { return widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 ldm(const E* p, __mmask16 m) { return widen(_mm256_maskz_loadu_epi16(m, p)); }
};
struct LoadF16 {
  using E = uint16_t;
  static __m512 ld(const E* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static __m512 ldm(const E* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};

#include "avx512_lanes.h"  // hsum, tailMask (inside this anonymous namespace: see the header)

// ---- thread-local scratch that only grows (64-byte aligned)
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      size_t bytes = (n * sizeof(float) + 4095) & ~size_t(4095);
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      cap = bytes / sizeof(float);
    }
    return p;
  }
};
thread_local Scratch tlsA, tlsB, tlsC;

// ---- the GEMM microkernel
// C[i*ldc + j] (=|+=) sum_{r<kc} A[r*lda + i] * B[r*ldb + j] (+ bias[j]) for i < MR, j < NV*16,
// the last vector of columns limited to `last`.
template <int MR, int NV, class L>
void gemmTile(int kc, const float* A, long lda, const typename L::E* B, long ldb, float* C, long ldc, __mmask16 last,
              bool addC, const float* bias) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
  // The C tile is read and written only after kc steps (thousands of cycles): fetch its lines now
  // so that the stores at the end do not wait on L3/DRAM, 24 misses deep.
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + j * 16), _MM_HINT_T0);
  for (int r = 0; r < kc; r++) {
    __m512 b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) b[j] = j == NV - 1 ? L::ldm(B + j * 16, last) : L::ld(B + j * 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512 a = _mm512_set1_ps(A[i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
    }
    A += lda;
    B += ldb;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    float* c = C + i * ldc;
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) {
      const __mmask16 m = j == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      __m512 v = acc[i][j];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j * 16));
      if (addC) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + j * 16));
      _mm512_mask_storeu_ps(c + j * 16, m, v);
    }
  }
}

template <class L>
using TileFn = void (*)(int, const float*, long, const typename L::E*, long, float*, long, __mmask16, bool, const float*);

template <class L, size_t... I>
constexpr std::array<TileFn<L>, sizeof...(I)> makeTiles(std::index_sequence<I...>) {
  return {&gemmTile<static_cast<int>(I / kNV) + 1, static_cast<int>(I % kNV) + 1, L>...};
}

// Runs the microkernel over a block: rows [0, mr) of C (any mr <= kMR), columns [0, w) (w <= kNR).
template <class L>
inline void tile(int mr, int w, int kc, const float* A, long lda, const typename L::E* B, long ldb, float* C, long ldc,
                 bool addC, const float* bias) {
  static constexpr auto tiles = makeTiles<L>(std::make_index_sequence<kMR * kNV>{});
  const int nv = (w + 15) / 16;
  tiles[(mr - 1) * kNV + (nv - 1)](kc, A, lda, B, ldb, C, ldc, tailMask(w - (nv - 1) * 16), addC, bias);
}

// ---- opt-in bf16 x bf16 microkernel (AVX512_BF16 vdpbf16ps), forward with BF16 weights only
// Same tile shape, but each reduction step is a pair of k: A holds (inp[2r], inp[2r+1]) rounded to
// bf16 and packed in one 32-bit word, B holds the matching pair of W's bf16 values; vdpbf16ps adds
// both products into f32 accumulators. Twice the FMA peak, but inp loses its low 16 mantissa bits
// (relative error up to 2^-9 per element): training needs f32-accurate activations, so this is off
// unless matmul_avx512_set_bf16_dot(1) or RREC_BF16_DOT=1 (decode / eval-only callers).
template <int MR, int NV>
void gemmTileBf16(int kc, const float* Aw, long lda, const float* Bw, long ldb, float* C, long ldc, __mmask16 last,
                  bool addC, const float* bias) {
  const uint32_t* A = reinterpret_cast<const uint32_t*>(Aw);
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) acc[i][j] = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc + j * 16), _MM_HINT_T0);
  for (int r = 0; r < kc; r++) {
    __m512i b[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) b[j] = _mm512_loadu_si512(Bw + j * 16);  // packed, zero-padded
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
      const __m512i a = _mm512_set1_epi32(static_cast<int>(A[i]));
#pragma GCC unroll 4
      for (int j = 0; j < NV; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a, (__m512bh)b[j]);
    }
    A += lda;
    Bw += ldb;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
    float* c = C + i * ldc;
#pragma GCC unroll 4
    for (int j = 0; j < NV; j++) {
      const __mmask16 m = j == NV - 1 ? last : static_cast<__mmask16>(0xffff);
      __m512 v = acc[i][j];
      if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + j * 16));
      if (addC) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c + j * 16));
      _mm512_mask_storeu_ps(c + j * 16, m, v);
    }
  }
}

using TileBf16Fn = void (*)(int, const float*, long, const float*, long, float*, long, __mmask16, bool, const float*);
template <size_t... I>
constexpr std::array<TileBf16Fn, sizeof...(I)> makeTilesBf16(std::index_sequence<I...>) {
  return {&gemmTileBf16<static_cast<int>(I / kNV) + 1, static_cast<int>(I % kNV) + 1>...};
}
inline void tileBf16(int mr, int w, int kc, const float* A, long lda, const float* B, long ldb, float* C, long ldc,
                     bool addC, const float* bias) {
  static constexpr auto tiles = makeTilesBf16(std::make_index_sequence<kMR * kNV>{});
  const int nv = (w + 15) / 16;
  tiles[(mr - 1) * kNV + (nv - 1)](kc, A, lda, B, ldb, C, ldc, tailMask(w - (nv - 1) * 16), addC, bias);
}

int gBf16Dot = [] {
  const char* e = std::getenv("RREC_BF16_DOT");
  return e && e[0] == '1' && gCpuBf16 ? 1 : 0;
}();

// ---- packing
// ap[r*kMR + i] = src[(m0 + i)*lds + k0 + r] for i < mr, r < kc: kMR rows of a row-major matrix
// interleaved so the microkernel reads one contiguous kMR-float group per reduction step.
void packRows(float* ap, const float* src, long lds, int mr, int kc) {
  for (int i = 0; i < mr; i++) {
    const float* s = src + i * lds;
    for (int r = 0; r < kc; r++) ap[r * kMR + i] = s[r];
  }
}

// bp[r*kNR + j] = W[(n0 + j)*K + k0 + r] as float for j < nw (zero for nw <= j < kNR): a kNR-column
// panel of W^T. Reads W along its rows 16 at a time and transposes 16x16 blocks in registers.
template <class L>
void packPanelT(float* bp, const typename L::E* W, long K, int nw, int kc) {
  int r0 = 0;
  for (; r0 + 16 <= kc; r0 += 16) {
    for (int j0 = 0; j0 < kNR; j0 += 16) {
      __m512 v[16];
      for (int j = 0; j < 16; j++) v[j] = j0 + j < nw ? L::ld(W + (j0 + j) * K + r0) : _mm512_setzero_ps();
      transpose16x16(v);  // v[j][r] -> v[r][j]
      // v[r] now holds reduction step r0 + r for columns j0..j0+15
      for (int r = 0; r < 16; r++) _mm512_storeu_ps(bp + (r0 + r) * kNR + j0, v[r]);
    }
  }
  if (r0 < kc) {
    const __mmask16 m = tailMask(kc - r0);
    for (int j = 0; j < kNR; j++) {
      alignas(64) float row[16];
      _mm512_store_ps(row, j < nw ? L::ldm(W + j * K + r0, m) : _mm512_setzero_ps());
      for (int r = r0; r < kc; r++) bp[r * kNR + j] = row[r - r0];
    }
  }
}

// ---- thread tiling: one tile of the [rows x cols] output per thread
struct Split {
  int tr = 1, tc = 1;  // row tiles x column tiles
};
// Products under kSerialWork multiply-adds run on the calling thread: a parallel region costs a
// wake-up of every worker, and on a loaded machine a descheduled worker stalls the whole call for
// a scheduler slice (milliseconds), far more than the microseconds such a product takes.
constexpr double kSerialWork = 1 << 20;
// Threads a parallel region opened here will really get: 1 when called from inside another
// parallel region (nested regions run on the calling thread alone; blocked attention calls these
// kernels per head from its own parallel loop), else OpenMP's team size. Work split for more
// threads than the team has would leave parts of the output uncomputed.
inline int teamThreads(double work) {
  if (work < kSerialWork || omp_in_parallel()) return 1;
  return std::max(1, omp_get_max_threads());
}
// Decode-sized products (the dot kernels) are bound by streaming W from memory, and one core
// streams about half of what two do, so they are split from gSerialStreamBytes of W on, far below
// kSerialWork: at M = 1 the q/k/v/o products of a Qwen2.5-0.5B layer (230 KiB to 1.6 MiB of bf16
// weights, 26% of its bytes) used to run on one thread. With the workers spinning between regions
// (GOMP_SPINCOUNT, one compute thread) a region costs ~1-2 us; streaming 64 KiB takes ~2.5 us.
int gSerialStreamBytes = 1 << 16;  // matmul_avx512_set_serial_stream_bytes
inline int streamThreads(int M, int N, int K, int elementBytes) {
  const double w = double(N) * K;
  return w * elementBytes >= gSerialStreamBytes ? teamThreads(kSerialWork) : teamThreads(M * w);
}
Split splitOutput(int rows, int cols, int rowQuant, int colQuant, double work) {
  const int T = teamThreads(work);
  Split s;
  s.tc = std::clamp(cols / (4 * colQuant), 1, T);
  s.tr = std::clamp(T / s.tc, 1, std::max(1, (rows + rowQuant - 1) / rowQuant));
  return s;
}
// [begin, end) of part p of n items in `parts` parts, boundaries multiples of quant.
inline std::pair<int, int> range(int n, int parts, int p, int quant) {
  const int blocks = (n + quant - 1) / quant;
  const int per = (blocks + parts - 1) / parts;
  const int b = std::min(n, p * per * quant), e = std::min(n, (p + 1) * per * quant);
  return {b, e};
}

// Runs fn(r0, r1, c0, c1) once per thread on that thread's tile of a rows x cols output (row
// bounds multiples of kMR, column bounds of kNR; `work` in multiply-adds picks the thread count).
template <class F>
void forEachOutputTile(int rows, int cols, double work, F&& fn) {
  const Split s = splitOutput(rows, cols, kMR, kNR, work);
#pragma omp parallel num_threads(s.tr * s.tc)
  {
    const int t = omp_get_thread_num();
    const auto [r0, r1] = range(rows, s.tr, t / s.tc, kMR);
    const auto [c0, c1] = range(cols, s.tc, t % s.tc, kNR);
    if (r0 < r1 && c0 < c1) fn(r0, r1, c0, c1);
  }
}

// ---- the packed GEMM driver shared by forward and backward-input
// C[m, c] (=|+=) sum_r A(m, r) B(r, c) for rows [m0, m1), columns [c0, c1), r < R, where
// packA(ap, m, mr, r0, rc) writes rows m..m+mr of A for steps r0..r0+rc as [rc][kMR] and
// packB(bp, c, w, r0, rc) writes columns c..c+w of B as a [rc][kNR] panel (zero beyond w).
// Loops (outer to inner): reduction block (kKC) -> pack every row of A once -> column block (kNC)
// -> pack its B panels -> row block (kMC, keeps its A in L2) -> B panel (stays in L1) -> kMR rows.
// Each A element is packed once per reduction block and each B element once per row block.
template <bool kBf16Dot = false, class PackA, class PackB>
void gemmPacked(float* C, long ldc, int m0, int m1, int c0, int c1, int R, PackA&& packA, PackB&& packB,
                bool accumulate, const float* bias) {
  const int chunks = (m1 - m0 + kMR - 1) / kMR;
  float* ap = tlsA.get(static_cast<size_t>(chunks) * kMR * kKC);
  float* bp = tlsB.get(static_cast<size_t>(kKC) * kNC);
  for (int r0 = 0; r0 < R; r0 += kKC) {
    const int rc = std::min(kKC, R - r0);
    for (int i = 0; i < chunks; i++)
      packA(ap + static_cast<size_t>(i) * rc * kMR, m0 + i * kMR, std::min(kMR, m1 - m0 - i * kMR), r0, rc);
    const bool addC = accumulate || r0 > 0;
    for (int nc0 = c0; nc0 < c1; nc0 += kNC) {
      const int ncw = std::min(kNC, c1 - nc0);
      for (int p = 0; p * kNR < ncw; p++)
        packB(bp + static_cast<size_t>(p) * rc * kNR, nc0 + p * kNR, std::min(kNR, ncw - p * kNR), r0, rc);
      const float* b0 = r0 == 0 && bias ? bias + nc0 : nullptr;
      for (int mc0 = m0; mc0 < m1; mc0 += kMC) {
        const int mcw = std::min(kMC, m1 - mc0);
        const float* apc = ap + static_cast<size_t>((mc0 - m0) / kMR) * rc * kMR;
        auto run = [&](int p, int i) {
          const int mr = std::min(kMR, mcw - i * kMR), w = std::min(kNR, ncw - p * kNR);
          const float* a = apc + static_cast<size_t>(i) * rc * kMR;
          const float* b = bp + static_cast<size_t>(p) * rc * kNR;
          float* c = C + static_cast<size_t>(mc0 + i * kMR) * ldc + nc0 + p * kNR;
          const float* bb = b0 ? b0 + p * kNR : nullptr;
          if constexpr (kBf16Dot) {
            tileBf16(mr, w, rc, a, kMR, b, kNR, c, ldc, addC, bb);
            return;
          }
          tile<LoadF32>(mr, w, rc, a, kMR, b, kNR, c, ldc, addC, bb);
        };
        if (rc >= 64) {  // compute-bound: each B panel (rc x kNR) stays in L1 across the row chunks
          for (int p = 0; p * kNR < ncw; p++)
            for (int i = 0; i * kMR < mcw; i++) run(p, i);
        } else {  // short reduction: C traffic dominates, so sweep each kMR rows of C front to back
          for (int i = 0; i * kMR < mcw; i++)
            for (int p = 0; p * kNR < ncw; p++) run(p, i);
        }
      }
    }
  }
}

// ---- forward, packed GEMM (M >= gSmallM): A = inp rows, B = W^T panels
template <class L>
void forwardPacked(float* out, const float* inp, const typename L::E* W, const float* bias, int M, int N, int K,
                   bool accumulate) {
  forEachOutputTile(M, N, double(M) * N * K, [&](int m0, int m1, int n0, int n1) {
    gemmPacked(
        out, N, m0, m1, n0, n1, K,
        [&](float* ap, int m, int mr, int r0, int rc) { packRows(ap, inp + static_cast<size_t>(m) * K + r0, K, mr, rc); },
        [&](float* bp, int n, int w, int r0, int rc) { packPanelT<L>(bp, W + static_cast<size_t>(n) * K + r0, K, w, rc); },
        accumulate, bias);
  });
}

// ap[r*kMR + i] = bf16 pair (x_i[2(r0+r)], x_i[2(r0+r)+1]) as one 32-bit word (low half first) for
// i < mr, r < rc, where x_i = src + i*lds holds n valid floats (a missing partner is 0). Rounds to
// nearest even (vcvtne2ps2bf16, as f32ToBf16), 32 floats per instruction.
void packRowPairsBf16(float* ap, const float* src, long lds, int mr, int r0, int rc, int n) {
  // 16 pair-steps of every row at once: 16 rows (mr real, the rest zero) of 16 words each,
  // transposed in registers, then kMR words stored per step (rows past mr get zeros, unread).
  static_assert(kMR <= 16, "one register holds a step's kMR words");
  constexpr __mmask16 kRowMask = static_cast<__mmask16>((1u << kMR) - 1u);
  for (int rb = 0; rb < rc; rb += 16) {
    const int e0 = 2 * (r0 + rb);                       // first float of this block in each row
    const int cnt = std::max(0, std::min(32, n - e0));  // valid floats in it
    __m512 v[16];
    for (int i = 0; i < 16; i++) {
      if (i < mr) {
        const float* x = src + i * lds + e0;
        const __m512 lo = _mm512_maskz_loadu_ps(tailMask(cnt), x);
        const __m512 hi = _mm512_maskz_loadu_ps(tailMask(std::max(0, cnt - 16)), x + 16);
        v[i] = (__m512)_mm512_cvtne2ps_pbh(hi, lo);
      } else {
        v[i] = _mm512_setzero_ps();
      }
    }
    transpose16x16(v);  // v[r] lane i: row i's word at pair step rb + r
    const int re = std::min(16, rc - rb);
    for (int r = 0; r < re; r++) _mm512_mask_storeu_ps(ap + static_cast<size_t>(rb + r) * kMR, kRowMask, v[r]);
  }
}

// Opt-in bf16 x bf16 forward (see gemmTileBf16): reduction steps are pairs of k, so K must be even.
// W's rows viewed as 32-bit words are exactly the pairs, so its panels are the f32 transpose
// applied to raw words; inp's pairs are rounded to bf16 (nearest even) while being packed.
void forwardPackedBf16Dot(float* out, const float* inp, const uint16_t* W, const float* bias, int M, int N, int K,
                          bool accumulate) {
  const int K2 = K / 2;
  forEachOutputTile(M, N, double(M) * N * K, [&](int m0, int m1, int n0, int n1) {
    gemmPacked<true>(
        out, N, m0, m1, n0, n1, K2,
        [&](float* ap, int m, int mr, int r0, int rc) { packRowPairsBf16(ap, inp + static_cast<size_t>(m) * K, K, mr, r0, rc, K); },
        [&](float* bp, int n, int w, int r0, int rc) {
          packPanelT<LoadF32>(bp, reinterpret_cast<const float*>(W + static_cast<size_t>(n) * K + 2 * r0), K2, w, rc);
        },
        accumulate, bias);
  });
}

// ---- forward, dot products (decode-sized M)
// C[i*ldc + j] (=|+=) dot(A[i*lda .. +K], W[j*ldw .. +K]) (+ bias[j]) for i < MR, j < NW.
// The first `peel` elements (< 16) are done with one masked step so that the main loop's loads of
// W and A start on cache-line (f32) or half-line (bf16/f16) boundaries: a 64-byte load that
// straddles two lines costs two on this core, which halves the loop's speed when every load does.
// pf, when set, is the weights of the tile kDotPfTiles ahead (same layout), prefetched into L2 in
// step, so the weight stream from DRAM runs that far ahead (short row streams the hardware
// prefetchers pick up late).
template <int MR, int NW, class L>
void dotTile(int K, int peel, const float* A, long lda, const typename L::E* W, long ldw, float* C, long ldc,
             bool addC, const float* bias, const typename L::E* pf) {
  __m512 acc[MR][NW];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NW; j++) acc[i][j] = _mm512_setzero_ps();
  auto masked = [&](int k, __mmask16 m) {
    __m512 w[NW];
    for (int j = 0; j < NW; j++) w[j] = L::ldm(W + j * ldw + k, m);
    for (int i = 0; i < MR; i++) {
      const __m512 a = _mm512_maskz_loadu_ps(m, A + i * lda + k);
      for (int j = 0; j < NW; j++) acc[i][j] = _mm512_fmadd_ps(a, w[j], acc[i][j]);
    }
  };
  // Elements 0..peel-1 go to the lanes that their residues mod 16 occupy in the main loop (the top
  // `peel` lanes of the aligned vector just before W; masked-off lanes are never read), so every
  // lane sums one residue class in increasing k, the same as with no peel at all; the lanes are
  // rotated back before the final sum. The result is then independent of where W and inp sit in
  // memory (a model loaded from a sharded file must compute bit-for-bit what the single file does).
  int k = 0;
  if (peel > 0 && peel < K) {
    masked(peel - 16, static_cast<__mmask16>(~((1u << (16 - peel)) - 1u)));
    k = peel;
  }
  for (; k + 16 <= K; k += 16) {
    if (pf)
      for (int j = 0; j < kDotNW; j++) _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldw + k), _MM_HINT_T1);
    __m512 w[NW];
    for (int j = 0; j < NW; j++) {
      w[j] = L::ld(W + j * ldw + k);
      // Keep w[j] in a register: GCC would otherwise fold the load into each of the MR FMAs
      // (MR x NW loads instead of MR + NW; this core sustains about one 64-byte load per cycle).
      __asm__("" : "+v"(w[j]));
    }
    for (int i = 0; i < MR; i++) {
      const __m512 a = _mm512_loadu_ps(A + i * lda + k);
      for (int j = 0; j < NW; j++) acc[i][j] = _mm512_fmadd_ps(a, w[j], acc[i][j]);
    }
  }
  if (k < K) masked(k, tailMask(K - k));
  if (peel > 0 && peel < K) {  // lane l holds residue (l + peel) mod 16: rotate to lane = residue
    const __m512i rot = _mm512_and_si512(_mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                          _mm512_set1_epi32(peel)),
                                         _mm512_set1_epi32(15));
    for (int i = 0; i < MR; i++)
      for (int j = 0; j < NW; j++) acc[i][j] = _mm512_permutexvar_ps(rot, acc[i][j]);
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NW; j++) {
      float v = hsum(acc[i][j]) + (bias ? bias[j] : 0.0f);
      float& c = C[i * ldc + j];
      c = addC ? c + v : v;
    }
}

template <class L>
using DotFn = void (*)(int, int, const float*, long, const typename L::E*, long, float*, long, bool, const float*,
                       const typename L::E*);
template <class L, size_t... I>
constexpr std::array<DotFn<L>, sizeof...(I)> makeDots(std::index_sequence<I...>) {
  return {&dotTile<static_cast<int>(I / kDotNW) + 1, static_cast<int>(I % kDotNW) + 1, L>...};
}

template <class L>
void forwardDot(float* out, const float* inp, const typename L::E* W, const float* bias, int M, int N, int K,
                bool accumulate) {
  static constexpr auto dots = makeDots<L>(std::make_index_sequence<kDotMR * kDotNW>{});
  constexpr int es = sizeof(typename L::E), vecBytes = 16 * es;
  // Peel so that W's loads are aligned: possible for every row when a row is a whole number of
  // vectors long (K = 896, 4864: yes) and W itself sits on an element boundary.
  const uintptr_t w0 = reinterpret_cast<uintptr_t>(W);
  const int peel = (static_cast<size_t>(K) * es) % vecBytes == 0 && w0 % es == 0
                       ? static_cast<int>(((vecBytes - w0 % vecBytes) % vecBytes) / es)
                       : 0;
  // inp copied so that element `peel` of each row is 64-byte aligned, like W's (rows Kp apart).
  const int shift = (16 - peel) % 16;
  const long Kp = (K + 16 + 15) / 16 * 16;
  float* abuf = tlsA.get(static_cast<size_t>(M) * Kp + 16);
  for (int m = 0; m < M; m++)
    std::copy(inp + static_cast<size_t>(m) * K, inp + static_cast<size_t>(m + 1) * K, abuf + m * Kp + shift);
  const float* A = abuf + shift;
  if (M <= gRowWalkM) {  // one row of W at a time, in order (see gRowWalkM)
    const auto dot = dots[static_cast<size_t>(M - 1) * kDotNW];  // the M x 1 tile
#pragma omp parallel for schedule(static) if (streamThreads(M, N, K, sizeof(typename L::E)) > 1)
    for (int n = 0; n < N; n++)
      dot(K, peel, A, Kp, W + static_cast<size_t>(n) * K, K, out + n, N, accumulate, bias ? bias + n : nullptr, nullptr);
    return;
  }
  // bf16/f16 rows are widened as they are loaded, once per row block of inp: measured faster than
  // widening each weight block into an f32 buffer first (half the bytes through L1 per load).
  const int blocks = (N + kDotNW - 1) / kDotNW;
#pragma omp parallel for schedule(static) if (streamThreads(M, N, K, sizeof(typename L::E)) > 1)
  for (int b = 0; b < blocks; b++) {
    const int n0 = b * kDotNW, nw = std::min(kDotNW, N - n0);
    const typename L::E* wb = W + static_cast<size_t>(n0) * K;
    for (int m0 = 0; m0 < M; m0 += kDotMR) {
      const int mr = std::min(kDotMR, M - m0);
      const size_t fi = static_cast<size_t>(mr - 1) * kDotNW + (nw - 1);
      const float* a = A + static_cast<size_t>(m0) * Kp;
      float* c = out + static_cast<size_t>(m0) * N + n0;
      const float* bb = bias ? bias + n0 : nullptr;
      // prefetch a block of W kDotPfTiles ahead during the first pass over this one (later passes hit L1)
      const typename L::E* pf = m0 == 0 && n0 + (kDotPfTiles + 1) * kDotNW <= N ? wb + static_cast<size_t>(kDotPfTiles * kDotNW) * K : nullptr;
      dots[fi](K, peel, a, Kp, wb, K, c, N, accumulate, bb, pf);
    }
  }
}

// ---- forward, bf16 products, decode-sized M (Mat::bf16Products): the dot-product kernel above with
// inp rounded to bf16 once and vdpbf16ps consuming 32 weights (one 64-byte line of a row) per
// instruction: a quarter of the f32 path's instructions per byte of W, whose stream is all that
// matters at this M. C[i*ldc + j] (=|+=) sum_k A_i[k] W_j[k] (+ bias[j]), K even, A rows bf16.
template <int MR, int NW>
void dotTileBf16(int K, const uint16_t* A, long lda, const uint16_t* W, long ldw, float* C, long ldc, bool addC,
                 const float* bias, const uint16_t* pf) {
  __m512 acc[MR][NW];
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NW; j++) acc[i][j] = _mm512_setzero_ps();
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    if (pf)
      for (int j = 0; j < kDotNW; j++) _mm_prefetch(reinterpret_cast<const char*>(pf + j * ldw + k), _MM_HINT_T1);
    __m512i w[NW];
    for (int j = 0; j < NW; j++) {
      w[j] = _mm512_loadu_si512(W + j * ldw + k);
      __asm__("" : "+v"(w[j]));  // one load per row, reused by the MR rows of A (see dotTile)
    }
    for (int i = 0; i < MR; i++) {
      const __m512i a = _mm512_loadu_si512(A + i * lda + k);
      for (int j = 0; j < NW; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a, (__m512bh)w[j]);
    }
  }
  if (k < K) {  // K - k even: (K - k) / 2 pairs in 32-bit lanes
    const __mmask16 m = tailMask((K - k) / 2);
    __m512i w[NW];
    for (int j = 0; j < NW; j++) w[j] = _mm512_maskz_loadu_epi32(m, W + j * ldw + k);
    for (int i = 0; i < MR; i++) {
      const __m512i a = _mm512_maskz_loadu_epi32(m, A + i * lda + k);
      for (int j = 0; j < NW; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)a, (__m512bh)w[j]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int j = 0; j < NW; j++) {
      float v = hsum(acc[i][j]) + (bias ? bias[j] : 0.0f);
      float& c = C[i * ldc + j];
      c = addC ? c + v : v;
    }
}

using DotBf16Fn = void (*)(int, const uint16_t*, long, const uint16_t*, long, float*, long, bool, const float*, const uint16_t*);
template <size_t... I>
constexpr std::array<DotBf16Fn, sizeof...(I)> makeDotsBf16(std::index_sequence<I...>) {
  return {&dotTileBf16<static_cast<int>(I / kDotNW) + 1, static_cast<int>(I % kDotNW) + 1>...};
}

void forwardDotBf16(float* out, const float* inp, const uint16_t* W, const float* bias, int M, int N, int K,
                    bool accumulate) {
  static constexpr auto dots = makeDotsBf16(std::make_index_sequence<kDotMR * kDotNW>{});
  const long Kp = (K + 31) / 32 * 32;  // bf16 elements per row of the rounded copy of inp
  uint16_t* abuf = reinterpret_cast<uint16_t*>(tlsA.get(static_cast<size_t>(M) * Kp / 2 + 16));
  for (int m = 0; m < M; m++) {
    const float* x = inp + static_cast<size_t>(m) * K;
    uint16_t* a = abuf + m * Kp;
    for (int k = 0; k < K; k += 32) {
      const int cnt = std::min(32, K - k);
      const __m512 lo = _mm512_maskz_loadu_ps(tailMask(cnt), x + k);
      const __m512 hi = _mm512_maskz_loadu_ps(tailMask(std::max(0, cnt - 16)), x + k + 16);
      _mm512_storeu_si512(a + k, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
  }
  if (M <= gRowWalkM) {  // one row of W at a time, in order (see gRowWalkM)
    const auto dot = dots[static_cast<size_t>(M - 1) * kDotNW];  // the M x 1 tile
#pragma omp parallel for schedule(static) if (streamThreads(M, N, K, 2) > 1)
    for (int n = 0; n < N; n++)
      dot(K, abuf, Kp, W + static_cast<size_t>(n) * K, K, out + n, N, accumulate, bias ? bias + n : nullptr, nullptr);
    return;
  }
  const int blocks = (N + kDotNW - 1) / kDotNW;
#pragma omp parallel for schedule(static) if (streamThreads(M, N, K, 2) > 1)
  for (int b = 0; b < blocks; b++) {
    const int n0 = b * kDotNW, nw = std::min(kDotNW, N - n0);
    const uint16_t* wb = W + static_cast<size_t>(n0) * K;
    for (int m0 = 0; m0 < M; m0 += kDotMR) {
      const int mr = std::min(kDotMR, M - m0);
      const size_t fi = static_cast<size_t>(mr - 1) * kDotNW + (nw - 1);
      const uint16_t* pf = m0 == 0 && n0 + (kDotPfTiles + 1) * kDotNW <= N ? wb + static_cast<size_t>(kDotPfTiles * kDotNW) * K : nullptr;
      dots[fi](K, abuf + m0 * Kp, Kp, wb, K, out + static_cast<size_t>(m0) * N + n0, N, accumulate,
               bias ? bias + n0 : nullptr, pf);
    }
  }
}

// ---- backward input: dinp[M,K] += dout[M,N] @ W[N,K]
// bp[r*kNR + j] = W[r*K + j] as float for j < w (zero beyond): a kNR-column panel of W, rows in place
// (no transpose), widened once here instead of once per row block of dout. Reading W in row
// segments keeps the weight stream sequential, which matters when M is small and W comes from DRAM.
template <class L>
void packPanelN(float* bp, const typename L::E* W, long K, int w, int rc) {
  for (int r = 0; r < rc; r++) {
    const typename L::E* src = W + r * K;
    float* dst = bp + r * kNR;
    for (int j = 0; j < kNR; j += 16) {
      const int n = std::max(0, std::min(16, w - j));
      _mm512_storeu_ps(dst + j, n == 16 ? L::ld(src + j) : L::ldm(src + j, tailMask(n)));
    }
  }
}

// A = dout rows, B = W rows (panels of kNR columns of W, widened to f32).
template <class L>
void backwardInput(float* dinp, const float* dout, const typename L::E* W, int M, int N, int K) {
  forEachOutputTile(M, K, double(M) * N * K, [&](int m0, int m1, int k0, int k1) {
    gemmPacked(
        dinp, K, m0, m1, k0, k1, N,
        [&](float* ap, int m, int mr, int r0, int rc) { packRows(ap, dout + static_cast<size_t>(m) * N + r0, N, mr, rc); },
        [&](float* bp, int k, int w, int r0, int rc) { packPanelN<L>(bp, W + static_cast<size_t>(r0) * K + k, K, w, rc); },
        true, nullptr);
  });
}

// bf16 x bf16 backward input (see gemmTileBf16): reduction steps are pairs of W's rows (n, n+1),
// N odd padded with a zero row. A = dout's pairs rounded to bf16; B = the two rows' bf16 values
// interleaved into 32-bit words, read straight from W's bits.
void packPanelNPairs(float* bp, const uint16_t* W, long K, int N, int n0, int w, int rc) {
  uint32_t* b = reinterpret_cast<uint32_t*>(bp);
  for (int r = 0; r < rc; r++) {
    const int n = n0 + 2 * r;
    const uint16_t* lo = W + static_cast<size_t>(n) * K;
    const uint16_t* hi = n + 1 < N ? lo + K : nullptr;
    for (int j = 0; j < kNR; j += 16) {
      const int cnt = std::max(0, std::min(16, w - j));
      const __mmask16 m = tailMask(cnt);
      const __m512i a = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo + j));
      const __m512i h = hi ? _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, hi + j)), 16) : _mm512_setzero_si512();
      _mm512_storeu_si512(b + static_cast<size_t>(r) * kNR + j, _mm512_or_si512(a, h));
    }
  }
}

void backwardInputBf16Dot(float* dinp, const float* dout, const uint16_t* W, int M, int N, int K) {
  const int N2 = (N + 1) / 2;
  forEachOutputTile(M, K, double(M) * N * K, [&](int m0, int m1, int k0, int k1) {
    gemmPacked<true>(
        dinp, K, m0, m1, k0, k1, N2,
        [&](float* ap, int m, int mr, int r0, int rc) { packRowPairsBf16(ap, dout + static_cast<size_t>(m) * N, N, mr, r0, rc, N); },
        [&](float* bp, int k, int w, int r0, int rc) { packPanelNPairs(bp, W + k, K, N, 2 * r0, w, rc); }, true,
        nullptr);
  });
}

// ---- backward weight: dW[N,K] += dout[M,N]^T @ inp[M,K]
// C = dW (rows n, columns k), reduction over m: A(n, m) = dout[m, n], already n-contiguous, so its
// pack is a copy of kMR floats per step (all chunks at once, see packColsAll); B(m, k) = inp rows. Both are packed (rather than read in
// place) because each reduction step would otherwise touch a new 4 KiB page for A and for B.
// Packs A(n, r) = src[r*lds + n] for n in [n0, n1), r < rc into kMR-row chunks (chunk i at
// ap + i*rc*kMR, as gemmPacked reads them), 16 steps at a time across all chunks: dout is read
// row by row in order, not 16 KiB apart per step (one page per step per chunk otherwise).
void packColsAll(float* ap, const float* src, long lds, int n0, int n1, int rc) {
  const int chunks = (n1 - n0 + kMR - 1) / kMR;
  for (int rb = 0; rb < rc; rb += 16) {
    const int re = std::min(rc, rb + 16);
    for (int i = 0; i < chunks; i++) {
      const int mr = std::min(kMR, n1 - n0 - i * kMR);
      float* d = ap + static_cast<size_t>(i) * rc * kMR;
      const float* sc = src + n0 + i * kMR;
      for (int r = rb; r < re; r++)
        for (int j = 0; j < mr; j++) d[r * kMR + j] = sc[r * lds + j];
    }
  }
}

void backwardWeight(float* dW, const float* dout, const float* inp, int M, int K, int N) {
  forEachOutputTile(N, K, double(M) * N * K, [&](int n0, int n1, int k0, int k1) {
    gemmPacked(
        dW, K, n0, n1, k0, k1, M,
        [&](float* ap, int n, int, int r0, int rc) {
          if (n == n0) packColsAll(ap, dout + static_cast<size_t>(r0) * N, N, n0, n1, rc);  // first chunk: all
        },
        [&](float* bp, int k, int w, int r0, int rc) { packPanelN<LoadF32>(bp, inp + static_cast<size_t>(r0) * K + k, K, w, rc); },
        true, nullptr);
  });
}

// ---- backward weight with bf16 products: the reduction over m runs in pairs (vdpbf16ps), so
// both operands are packed as 32-bit words holding the bf16 values of rows 2p and 2p + 1 of dout
// (A) and of inp (B) at one column (low half first; a missing row M is 0), rounded to nearest even.
// words[c] for c < width = pair of src[(2p) * lds + col0 + c] and src[(2p + 1) * lds + col0 + c].
void pairWordsF32(uint32_t* words, const float* src, long lds, int M, int p, int col0, int width) {
  const float* lo = src + static_cast<size_t>(2 * p) * lds + col0;
  const float* hi = 2 * p + 1 < M ? lo + lds : nullptr;
  for (int c = 0; c < width; c += 16) {
    const __mmask16 m = tailMask(width - c);
    const __m256i l = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, lo + c));
    const __m256i h = hi ? (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, hi + c)) : _mm256_setzero_si256();
    const __m512i w = _mm512_or_si512(_mm512_cvtepu16_epi32(l), _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    _mm512_mask_storeu_epi32(words + c, m, w);
  }
}

// A(n, p) for n in [n0, n1), pair steps p in [r0, r0 + rc), into the kMR-row chunks gemmPacked
// reads (chunk i at ap + i*rc*kMR, rows past n1 zero): row pairs of dout read in order, each once.
void packColPairsAll(float* ap, const float* dout, int N, int M, int n0, int n1, int r0, int rc) {
  const int chunks = (n1 - n0 + kMR - 1) / kMR;
  uint32_t* words = reinterpret_cast<uint32_t*>(tlsC.get(static_cast<size_t>(n1 - n0) + 16));
  uint32_t* a = reinterpret_cast<uint32_t*>(ap);
  for (int r = 0; r < rc; r++) {
    pairWordsF32(words, dout, N, M, r0 + r, n0, n1 - n0);
    for (int i = 0; i < chunks; i++) {
      const int nr = std::min(kMR, n1 - n0 - i * kMR);
      uint32_t* d = a + static_cast<size_t>(i) * rc * kMR + static_cast<size_t>(r) * kMR;
      for (int j = 0; j < nr; j++) d[j] = words[i * kMR + j];
      for (int j = nr; j < kMR; j++) d[j] = 0;
    }
  }
}

void backwardWeightBf16Dot(float* dW, const float* dout, const float* inp, int M, int K, int N) {
  const int M2 = (M + 1) / 2;
  forEachOutputTile(N, K, double(M) * N * K, [&](int n0, int n1, int k0, int k1) {
    gemmPacked<true>(
        dW, K, n0, n1, k0, k1, M2,
        [&](float* ap, int n, int, int r0, int rc) {
          if (n == n0) packColPairsAll(ap, dout, N, M, n0, n1, r0, rc);  // first chunk: all
        },
        [&](float* bp, int k, int w, int r0, int rc) {
          uint32_t* b = reinterpret_cast<uint32_t*>(bp);
          for (int r = 0; r < rc; r++) {
            pairWordsF32(b + static_cast<size_t>(r) * kNR, inp, K, M, r0 + r, k, w);
            for (int j = w; j < kNR; j++) b[static_cast<size_t>(r) * kNR + j] = 0;
          }
        },
        true, nullptr);
  });
}

// ---- backward input for decode-sized M (M <= kSmallBwdM): a GEMV-like sweep of W
// dinp[m, k-block] stays in registers (kBigNV/M vectors per row) for the whole reduction over the
// N rows of W, which are read in place, each element once: packing W would double the traffic of
// a product that is bandwidth-bound at this M.
constexpr int kSmallBwdM = 4;
constexpr int kBigNV = 16;  // accumulators: M x (kBigNV / M) zmm

template <class L, int MR>
void backwardInputSmallM(float* dinp, const float* A, const typename L::E* W, int N, int K, int k0, int k1) {
  constexpr int NV = kBigNV / MR, NB = NV * 16;
  int kk = k0;
  for (; kk + NB <= k1; kk += NB)
    gemmTile<MR, NV, L>(N, A, MR, W + kk, K, dinp + kk, K, static_cast<__mmask16>(0xffff), true, nullptr);
  for (; kk < k1; kk += kNR) tile<L>(MR, std::min(kNR, k1 - kk), N, A, MR, W + kk, K, dinp + kk, K, true, nullptr);
}

template <class L>
void backwardInputSmall(float* dinp, const float* dout, const typename L::E* W, int M, int N, int K) {
  // A(m, r) = dout[m, r] as [r][M] (for M = 1 that is dout itself)
  const float* A = dout;
  if (M > 1) {
    float* ap = tlsA.get(static_cast<size_t>(M) * N);
    for (int r = 0; r < N; r++)
      for (int i = 0; i < M; i++) ap[static_cast<size_t>(r) * M + i] = dout[static_cast<size_t>(i) * N + r];
    A = ap;
  }
  // Start the column blocks where W's rows are aligned (when every row is, i.e. a row is a whole
  // number of vectors): split loads would halve the sweep's speed. The few columns before go first.
  constexpr int es = sizeof(typename L::E), vecBytes = 16 * es;
  const uintptr_t w0 = reinterpret_cast<uintptr_t>(W);
  const int lead = (static_cast<size_t>(K) * es) % vecBytes == 0 && w0 % es == 0
                       ? std::min(K, static_cast<int>(((vecBytes - w0 % vecBytes) % vecBytes) / es))
                       : 0;
  const int T = teamThreads(double(M) * N * K);
  const int parts = std::clamp((K - lead) / (2 * kBigNV * 16), 1, T);
#pragma omp parallel num_threads(parts)
  {
    const int t = omp_get_thread_num();
    if (t == 0 && lead > 0) tile<L>(M, lead, N, A, M, W, K, dinp, K, true, nullptr);
    auto [k0, k1] = range(K - lead, parts, t, kBigNV * 16);
    k0 += lead;
    k1 += lead;
    if (k0 < k1) switch (M) {
        case 1: backwardInputSmallM<L, 1>(dinp, A, W, N, K, k0, k1); break;
        case 2: backwardInputSmallM<L, 2>(dinp, A, W, N, K, k0, k1); break;
        case 3: backwardInputSmallM<L, 3>(dinp, A, W, N, K, k0, k1); break;
        default: backwardInputSmallM<L, 4>(dinp, A, W, N, K, k0, k1); break;
      }
  }
}

template <class L>
void backwardInputAny(float* dinp, const float* dout, const void* w, int M, int N, int K, bool bf16Products) {
  const auto* W = static_cast<const typename L::E*>(w);
  if constexpr (std::is_same_v<L, LoadBF16>)
    if (bf16Products && gCpuBf16 && M > kSmallBwdM) return backwardInputBf16Dot(dinp, dout, W, M, N, K);
  (void)bf16Products;
  if (M <= kSmallBwdM) backwardInputSmall<L>(dinp, dout, W, M, N, K);
  else backwardInput<L>(dinp, dout, W, M, N, K);
}

template <class L>
void forwardAny(float* out, const float* inp, const void* w, const float* bias, int M, int N, int K, bool accumulate,
                bool bf16Products) {
  const auto* W = static_cast<const typename L::E*>(w);
  if constexpr (std::is_same_v<L, LoadBF16>) {
    if ((gBf16Dot || (bf16Products && gCpuBf16)) && M >= gSmallM && K % 2 == 0)
      return forwardPackedBf16Dot(out, inp, W, bias, M, N, K, accumulate);
    if (bf16Products && gCpuBf16 && M < gSmallM && K % 2 == 0) return forwardDotBf16(out, inp, W, bias, M, N, K, accumulate);
  }
  (void)bf16Products;
  if (M < gSmallM) forwardDot<L>(out, inp, W, bias, M, N, K, accumulate);
  else forwardPacked<L>(out, inp, W, bias, M, N, K, accumulate);
}

}  // namespace

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
// The entry points below run on any x86-64 CPU: each checks gCpuAvx512 before entering a kernel.

bool matmul_avx512_set_enabled(bool on) {
  const bool prev = gCpuAvx512;
  gCpuAvx512 = on && gHasAvx512;
  gCpuBf16 = on && gHasBf16;
  if (!gCpuBf16) gBf16Dot = 0;
  return prev;
}

int matmul_avx512_set_bf16_dot(int on) {
  const int prev = gBf16Dot;
  gBf16Dot = on && gCpuBf16 ? 1 : 0;
  return prev;
}

int matmul_avx512_set_small_m(int smallM) {
  const int prev = gSmallM;
  gSmallM = std::max(1, smallM);
  return prev;
}

int matmul_avx512_set_row_walk_m(int m) {
  const int prev = gRowWalkM;
  gRowWalkM = std::clamp(m, 0, kDotMR);
  return prev;
}

int matmul_avx512_set_serial_stream_bytes(int bytes) {
  const int prev = gSerialStreamBytes;
  gSerialStreamBytes = std::max(0, bytes);
  return prev;
}


bool matmul_forward_avx512(float* out, const float* inp, const Mat& w, const float* bias, int M, bool accumulate) {
  if (!gCpuAvx512) return false;
  const int N = w.rows, K = w.cols;
  if (M <= 0 || N <= 0) return true;
  if (K <= 0) {  // empty reduction: out = bias (or unchanged)
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) {
        float& o = out[static_cast<size_t>(m) * N + n];
        const float v = bias ? bias[n] : 0.0f;
        o = accumulate ? o + v : v;
      }
    return true;
  }
  switch (w.dtype) {
    case DType::F32: forwardAny<LoadF32>(out, inp, w.data, bias, M, N, K, accumulate, false); return true;
    case DType::BF16: forwardAny<LoadBF16>(out, inp, w.data, bias, M, N, K, accumulate, w.bf16Products); return true;
    case DType::F16: forwardAny<LoadF16>(out, inp, w.data, bias, M, N, K, accumulate, false); return true;
    default: return false;
  }
}

bool matmul_backward_input_avx512(float* dinp, const float* dout, const Mat& w, int M) {
  if (!gCpuAvx512) return false;
  const int N = w.rows, K = w.cols;
  if (M <= 0 || N <= 0 || K <= 0) return true;
  switch (w.dtype) {
    case DType::F32: backwardInputAny<LoadF32>(dinp, dout, w.data, M, N, K, false); return true;
    case DType::BF16: backwardInputAny<LoadBF16>(dinp, dout, w.data, M, N, K, w.bf16Products); return true;
    case DType::F16: backwardInputAny<LoadF16>(dinp, dout, w.data, M, N, K, false); return true;
    default: return false;
  }
}

bool matmul_backward_weight_avx512(float* dweight, float* dbias, const float* dout, const float* inp, int M, int K,
                                   int N, bool bf16Products) {
  if (!gCpuAvx512) return false;
  if (M <= 0 || N <= 0) return true;
  if (dweight && K > 0) {
    if (bf16Products && gCpuBf16 && M >= 2) backwardWeightBf16Dot(dweight, dout, inp, M, K, N);
    else backwardWeight(dweight, dout, inp, M, K, N);
  }
  if (dbias) {
#pragma omp parallel for schedule(static) if (double(M) * N >= kSerialWork)
    for (int n0 = 0; n0 < N; n0 += 256) {
      const int nw = std::min(256, N - n0);
      float sum[256] = {};
      for (int m = 0; m < M; m++) {
        const float* g = dout + static_cast<size_t>(m) * N + n0;
        for (int j = 0; j < nw; j++) sum[j] += g[j];
      }
      for (int j = 0; j < nw; j++) dbias[n0 + j] += sum[j];
    }
  }
  return true;
}

#else  // not x86-64 (or not GCC/Clang): the generic kernels serve every call

bool matmul_avx512_compiled() { return false; }
bool matmul_avx512_bf16() { return false; }
int matmul_avx512_set_small_m(int) { return 0; }
int matmul_avx512_set_serial_stream_bytes(int) { return 0; }
int matmul_avx512_set_row_walk_m(int) { return 0; }
int matmul_avx512_set_bf16_dot(int) { return 0; }
bool matmul_avx512_set_enabled(bool) { return false; }
bool matmul_forward_avx512(float*, const float*, const Mat&, const float*, int, bool) { return false; }
bool matmul_backward_input_avx512(float*, const float*, const Mat&, int) { return false; }
bool matmul_backward_weight_avx512(float*, float*, const float*, const float*, int, int, int, bool) { return false; }

#endif

}  // namespace rrec::cpu
