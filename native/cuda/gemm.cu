// The three GEMMs of a linear layer, C[p][q] (+)= sum_r A(p, r) B(q, r):
//   forward       out[M, N]  = x[M, K] W^T (+ bias)   p = m, q = n, r = k
//   bwd input     dx[M, K]  += dy[M, N] W              p = m, q = k, r = n  (W read transposed)
//   bwd weight    dW[N, K]  += dy^T x (+ dbias)        p = n, q = k, r = m  (both read transposed)
// Kernels:
//   gemmMma    bf16 products (BF16 weights with bf16_products; the activations rounded to bf16 into
//              a padded scratch first): 64x64 tiles, 4 warps of 32x32, mma.sync m16n8k16 fed by
//              ldmatrix (.trans for the operands stored reduction-major), a 2-stage cp.async
//              pipeline with zero-filled chunks where a tile hangs over an edge
//   gemmSimt   f32 products (F32/F16 weights, or bf16 without bf16_products): 64x64 tiles through
//              shared memory, 4x4 outputs per thread, any strides
//   gemvSmallM the forward at M <= 8 (decode): one warp per output column, all rows at once
#include "cuda/gemm.h"
#include "cuda/ops.h"

namespace rrec_dev {

// ---------------------------------------------------------------------------------------------
// bf16 tensor-core GEMM

constexpr int kBP = 64, kBQ = 64, kBK = 32, kMmaThreads = 128;

// Shared-memory tile of one operand: [rows][cols + 8] bf16 (16 bytes of padding per row: the
// eight rows an ldmatrix reads fall in distinct banks).
template <bool T>
struct TileShape {
  static constexpr int rows = T ? kBK : kBP, cols = T ? kBP : kBK, ld = cols + 8, elems = rows * ld;
};

// Issues the cp.async of one operand's tile: rows [row0, row0 + rows) x cols [col0, ...) of a
// stored matrix [rowsExt][ld] whose first colsExt columns exist (a multiple of 8).
template <bool T>
RREC_DEV void loadTile(uint16_t* s, const uint16_t* g, int64_t ld, int row0, int col0, int rowsExt, int colsExt) {
  typedef TileShape<T> S;
  constexpr int chunksPerRow = S::cols / 8, chunks = S::rows * chunksPerRow;
  for (int ch = threadIdx.x; ch < chunks; ch += kMmaThreads) {
    const int r = ch / chunksPerRow, cc = (ch % chunksPerRow) * 8;
    const int gr = row0 + r, gc = col0 + cc;
    const bool valid = gr < rowsExt && gc < colsExt;
    cp_async16(s + r * S::ld + cc, valid ? g + int64_t(gr) * ld + gc : g, valid);
  }
}

// AT: A stored [r][p] (else [p][r]); BT: B stored [r][q] (else [q][r]). Row/column extents of
// each stored matrix bound the chunks read; values past R must be zero or absent (zero-filled).
template <bool AT, bool BT>
RREC_KERNEL void __launch_bounds__(kMmaThreads) gemmMma(float* C, int64_t ldc, const uint16_t* A, int64_t lda, int aRows, int aCols,
                                                        const uint16_t* B, int64_t ldb, int bRows, int bCols, const float* bias, int P,
                                                        int Q, int R, int accumulate) {
  typedef TileShape<AT> SA;
  typedef TileShape<BT> SB;
  RREC_DYN_SMEM(uint16_t, smem);
  uint16_t* sA[2] = {smem, smem + SA::elems};
  uint16_t* sB[2] = {smem + 2 * SA::elems, smem + 2 * SA::elems + SB::elems};
  const int p0 = blockIdx.y * kBP, q0 = blockIdx.x * kBQ;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, wp = warp / 2, wq = warp % 2;
  const int nk = (R + kBK - 1) / kBK;

  float acc[2][4][4];
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

  auto issue = [&](int kb, int st) {
    const int r0 = kb * kBK;
    if (AT) loadTile<true>(sA[st], A, lda, r0, p0, aRows, aCols);
    else loadTile<false>(sA[st], A, lda, p0, r0, aRows, aCols);
    if (BT) loadTile<true>(sB[st], B, ldb, r0, q0, bRows, bCols);
    else loadTile<false>(sB[st], B, ldb, q0, r0, bRows, bCols);
    cp_async_commit();
  };

  issue(0, 0);
  for (int kb = 0; kb < nk; kb++) {
    const int st = kb & 1;
    if (kb + 1 < nk) {
      issue(kb + 1, st ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const uint16_t* a = sA[st];
    const uint16_t* b = sB[st];
    for (int ks = 0; ks < kBK / 16; ks++) {
      uint32_t af[2][4], bf[2][4];
      for (int mi = 0; mi < 2; mi++) {
        const int pr = wp * 32 + mi * 16;
        if (!AT) ldmatrix_x4(af[mi], a + (pr + lane % 16) * SA::ld + ks * 16 + (lane / 16) * 8);
        else ldmatrix_x4_trans(af[mi], a + (ks * 16 + (lane / 16) * 8 + lane % 8) * SA::ld + pr + ((lane / 8) % 2) * 8);
      }
      for (int pj = 0; pj < 2; pj++) {
        const int qc = wq * 32 + pj * 16;
        if (!BT) ldmatrix_x4(bf[pj], b + (qc + (lane / 16) * 8 + lane % 8) * SB::ld + ks * 16 + ((lane / 8) % 2) * 8);
        else ldmatrix_x4_trans(bf[pj], b + (ks * 16 + ((lane / 8) % 2) * 8 + lane % 8) * SB::ld + qc + (lane / 16) * 8);
      }
      for (int mi = 0; mi < 2; mi++)
        for (int nj = 0; nj < 4; nj++) {
          const uint32_t bb[2] = {bf[nj / 2][(nj % 2) * 2], bf[nj / 2][(nj % 2) * 2 + 1]};
          mma_m16n8k16_bf16(acc[mi][nj], af[mi], bb);
        }
    }
    __syncthreads();  // the stage is refilled by the next iteration's issue
  }

  const int g = lane / 4, t = lane % 4;
  for (int mi = 0; mi < 2; mi++)
    for (int nj = 0; nj < 4; nj++)
      for (int e = 0; e < 4; e++) {
        const int p = p0 + wp * 32 + mi * 16 + g + (e >= 2 ? 8 : 0), q = q0 + wq * 32 + nj * 8 + 2 * t + (e & 1);
        if (p < P && q < Q) {
          float v = acc[mi][nj][e] + (bias ? bias[q] : 0.0f);
          float* o = C + int64_t(p) * ldc + q;
          *o = accumulate ? *o + v : v;
        }
      }
}

constexpr size_t mmaSmemBytes(bool at, bool bt) {
  return 2 * sizeof(uint16_t) * size_t((at ? TileShape<true>::elems : TileShape<false>::elems) + (bt ? TileShape<true>::elems : TileShape<false>::elems));
}

// dst[r][c] = bf16(src[r][c]) for c < cols, 0 for cols <= c < ldd
RREC_KERNEL void toBf16Padded(uint16_t* dst, const float* src, int rows, int cols, int ldd) {
  const int64_t n = int64_t(rows) * ldd;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ldd;
    const int c = static_cast<int>(i % ldd);
    dst[i] = c < cols ? f32_to_bf16(src[r * cols + c]) : 0;
  }
}
RREC_KERNEL void copyBf16Padded(uint16_t* dst, const uint16_t* src, int rows, int cols, int ldd) {
  const int64_t n = int64_t(rows) * ldd;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / ldd;
    const int c = static_cast<int>(i % ldd);
    dst[i] = c < cols ? src[r * cols + c] : 0;
  }
}

// ---------------------------------------------------------------------------------------------
// f32 SIMT GEMM

constexpr int kST = 64, kSK = 16, kSimtThreads = 256;

template <int BT>
RREC_KERNEL void __launch_bounds__(kSimtThreads) gemmSimt(float* C, int64_t ldc, const float* A, int64_t asi, int64_t asr, const void* B,
                                                          int64_t bsi, int64_t bsr, const float* bias, int P, int Q, int R, float alpha,
                                                          int accumulate) {
  __shared__ float As[kSK][kST + 4], Bs[kSK][kST + 4];
  const int p0 = blockIdx.y * kST, q0 = blockIdx.x * kST;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;  // thread computes rows ty + 16 i, cols tx + 16 j
  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;
  for (int r0 = 0; r0 < R; r0 += kSK) {
    for (int e = threadIdx.x; e < kSK * kST; e += kSimtThreads) {
      // consecutive threads walk the reduction index first when it is the contiguous one
      const int kk = asr == 1 ? e % kSK : e / kST, ii = asr == 1 ? e / kSK : e % kST;
      const int p = p0 + ii, r = r0 + kk;
      As[kk][ii] = p < P && r < R ? A[int64_t(p) * asi + int64_t(r) * asr] : 0.0f;
      const int kb = bsr == 1 ? e % kSK : e / kST, jb = bsr == 1 ? e / kSK : e % kST;
      const int q = q0 + jb, rb = r0 + kb;
      Bs[kb][jb] = q < Q && rb < R ? loadw<BT>(B, int64_t(q) * bsi + int64_t(rb) * bsr) : 0.0f;
    }
    __syncthreads();
    for (int k = 0; k < kSK; k++) {
      float a[4], b[4];
      for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
      for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + 16 * j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      const int p = p0 + ty + 16 * i, q = q0 + tx + 16 * j;
      if (p < P && q < Q) {
        const float v = alpha * acc[i][j] + (bias ? bias[q] : 0.0f);
        float* o = C + int64_t(p) * ldc + q;
        *o = accumulate ? *o + v : v;
      }
    }
}

// ---------------------------------------------------------------------------------------------
// forward at M <= 8: out[m][n] (+)= sum_k x[m][k] W[n][k] (+ bias[n]); x rounded to bf16 when
// bf16 products are asked for (the products of bf16 pairs are exact in f32, as in the mma path)

constexpr int kSmallM = 8, kGemvWarps = 4;

template <int WT>
RREC_KERNEL void gemvSmallM(float* out, const float* x, const void* W, const float* bias, int M, int K, int N, int roundX, int accumulate) {
  const int lane = threadIdx.x % 32;
  const int n = blockIdx.x * kGemvWarps + threadIdx.x / 32;
  if (n >= N) return;  // the whole warp leaves together
  float acc[kSmallM];
  for (int m = 0; m < kSmallM; m++) acc[m] = 0.0f;
  for (int k = lane; k < K; k += 32) {
    const float w = loadw<WT>(W, int64_t(n) * K + k);
    for (int m = 0; m < kSmallM; m++)
      if (m < M) {
        const float xv = x[int64_t(m) * K + k];
        acc[m] += (roundX ? round_bf16(xv) : xv) * w;
      }
  }
  for (int m = 0; m < kSmallM; m++) {
    const float s = warp_sum(acc[m]);
    if (lane == 0 && m < M) {
      const float v = s + (bias ? bias[n] : 0.0f);
      float* o = out + int64_t(m) * N + n;
      *o = accumulate ? *o + v : v;
    }
  }
}

// dbias[n] += sum_m dout[m][n]
RREC_KERNEL void colSum(float* dbias, const float* dout, int M, int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  float s = 0;
  for (int m = 0; m < M; m++) s += dout[int64_t(m) * N + n];
  dbias[n] += s;
}

}  // namespace rrec_dev

namespace rrec::cuda {

using namespace rrec_dev;

namespace {

int64_t pad8(int64_t n) { return (n + 7) / 8 * 8; }
bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// x [rows][cols] f32 -> bf16 [rows][pad8(cols)] in t (zeros in the padding)
uint16_t* bf16Scratch(Ctx& c, Temp& t, const float* x, int rows, int cols) {
  const int ld = static_cast<int>(pad8(cols));
  RREC_LAUNCH(toBf16Padded, gridFor(int64_t(rows) * ld, 256), 256, 0, c.stream, t.as<uint16_t>(), x, rows, cols, ld);
  launched("gemm: activations to bf16");
  return t.as<uint16_t>();
}

// A BF16 weight [rows][cols] usable by the mma kernel as it is (16-byte rows), or padded into t.
const uint16_t* bf16Weight(Ctx& c, Temp& t, const void* w, int rows, int cols, int64_t* ld) {
  if (cols % 8 == 0 && aligned16(w)) {
    *ld = cols;
    return static_cast<const uint16_t*>(w);
  }
  *ld = pad8(cols);
  RREC_LAUNCH(copyBf16Padded, gridFor(int64_t(rows) * *ld, 256), 256, 0, c.stream, t.as<uint16_t>(), static_cast<const uint16_t*>(w), rows,
              cols, static_cast<int>(*ld));
  launched("gemm: weight padded");
  return t.as<uint16_t>();
}

template <bool AT, bool BT>
void launchMma(Ctx& c, float* C, int64_t ldc, const uint16_t* A, int64_t lda, int aRows, int aCols, const uint16_t* B, int64_t ldb, int bRows,
               int bCols, const float* bias, int P, int Q, int R, bool accumulate) {
  auto k = gemmMma<AT, BT>;
  const size_t smem = mmaSmemBytes(AT, BT);
  const dim3 grid((Q + kBQ - 1) / kBQ, (P + kBP - 1) / kBP);
  RREC_LAUNCH(k, grid, kMmaThreads, smem, c.stream, C, ldc, A, lda, aRows, aCols, B, ldb, bRows, bCols, bias, P, Q, R, accumulate ? 1 : 0);
  launched("gemm (mma.sync bf16)");
}

}  // namespace

void gemmF32(Ctx& c, float* C, int64_t ldc, Operand A, Operand B, const float* bias, int P, int Q, int R, float alpha, bool accumulate) {
  if (P <= 0 || Q <= 0) return;
  const dim3 grid((Q + kST - 1) / kST, (P + kST - 1) / kST);
  byWeightType(B.dtype, [&](auto bt) {
    auto k = gemmSimt<decltype(bt)::value>;
    RREC_LAUNCH(k, grid, kSimtThreads, 0, c.stream, C, ldc, static_cast<const float*>(A.data), A.si, A.sr, B.data, B.si, B.sr, bias, P, Q, R,
                alpha, accumulate ? 1 : 0);
  });
  launched("gemm (f32)");
}

void matmul(Ctx& c, const rrec_matmul_args& a) {
  positive(a.M, "M");
  const void* w = weight(a.w, "w");
  const int N = a.w.rows, K = a.w.cols, M = a.M;
  float* out = ptr<float>(a.out, int64_t(M) * N, "out");
  const float* x = ptr<float>(a.inp, int64_t(M) * K, "inp");
  const float* bias = ptr<float>(a.bias, N, "bias", true);
  const bool bf16 = a.w.bf16_products && a.w.t.dtype == RREC_BF16;
  if (M <= kSmallM) {
    byWeightType(a.w.t.dtype, [&](auto wt) {
      auto k = gemvSmallM<decltype(wt)::value>;
      RREC_LAUNCH(k, (N + kGemvWarps - 1) / kGemvWarps, 32 * kGemvWarps, 0, c.stream, out, x, w, bias, M, K, N, bf16 ? 1 : 0, a.accumulate);
    });
    launched("matmul (small M)");
    return;
  }
  if (bf16) {
    Temp xs(c, sizeof(uint16_t) * M * pad8(K)), ws(c, sizeof(uint16_t) * N * pad8(K));
    const uint16_t* xb = bf16Scratch(c, xs, x, M, K);
    int64_t ldw;
    const uint16_t* wb = bf16Weight(c, ws, w, N, K, &ldw);
    launchMma<false, false>(c, out, N, xb, pad8(K), M, static_cast<int>(pad8(K)), wb, ldw, N, static_cast<int>(ldw), bias, M, N, K, a.accumulate != 0);
    return;
  }
  gemmF32(c, out, N, Operand{x, RREC_F32, K, 1}, Operand{w, a.w.t.dtype, K, 1}, bias, M, N, K, 1.0f, a.accumulate != 0);
}

void matmulBwdInput(Ctx& c, const rrec_matmul_args& a) {
  positive(a.M, "M");
  const void* w = weight(a.w, "w");
  const int N = a.w.rows, K = a.w.cols, M = a.M;
  float* dx = ptr<float>(a.out, int64_t(M) * K, "out (dinp)");
  const float* dy = ptr<float>(a.inp, int64_t(M) * N, "inp (dout)");
  if (a.w.bf16_products && a.w.t.dtype == RREC_BF16) {
    Temp ys(c, sizeof(uint16_t) * M * pad8(N)), ws(c, sizeof(uint16_t) * N * pad8(K));
    const uint16_t* yb = bf16Scratch(c, ys, dy, M, N);
    int64_t ldw;
    const uint16_t* wb = bf16Weight(c, ws, w, N, K, &ldw);
    // B(q = k, r = n) = W[n][k]: stored reduction-major
    launchMma<false, true>(c, dx, K, yb, pad8(N), M, static_cast<int>(pad8(N)), wb, ldw, N, static_cast<int>(ldw), nullptr, M, K, N, true);
    return;
  }
  gemmF32(c, dx, K, Operand{dy, RREC_F32, N, 1}, Operand{w, a.w.t.dtype, 1, K}, nullptr, M, K, N, 1.0f, true);
}

void matmulBwdWeight(Ctx& c, const rrec_matmul_bwd_weight_args& a) {
  positive(a.M, "M");
  positive(a.K, "K");
  positive(a.N, "N");
  const int M = a.M, K = a.K, N = a.N;
  float* dw = ptr<float>(a.dweight, int64_t(N) * K, "dweight", true);
  float* db = ptr<float>(a.dbias, N, "dbias", true);
  const float* dy = ptr<float>(a.dout, int64_t(M) * N, "dout");
  const float* x = ptr<float>(a.inp, int64_t(M) * K, "inp", dw == nullptr);
  if (dw) {
    if (a.bf16_products) {
      Temp ys(c, sizeof(uint16_t) * M * pad8(N)), xs(c, sizeof(uint16_t) * M * pad8(K));
      const uint16_t* yb = bf16Scratch(c, ys, dy, M, N);
      const uint16_t* xb = bf16Scratch(c, xs, x, M, K);
      // A(p = n, r = m) = dy[m][n], B(q = k, r = m) = x[m][k]: both reduction-major
      launchMma<true, true>(c, dw, K, yb, pad8(N), M, static_cast<int>(pad8(N)), xb, pad8(K), M, static_cast<int>(pad8(K)), nullptr, N, K, M, true);
    } else {
      gemmF32(c, dw, K, Operand{dy, RREC_F32, 1, N}, Operand{x, RREC_F32, 1, K}, nullptr, N, K, M, 1.0f, true);
    }
  }
  if (db) {
    RREC_LAUNCH(colSum, (N + 127) / 128, 128, 0, c.stream, db, dy, M, N);
    launched("matmul_bwd_weight dbias");
  }
}

}  // namespace rrec::cuda
