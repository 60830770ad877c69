// See export_tensor.h.
#include "addon/export_tensor.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace rrec::addon {

namespace {

constexpr size_t kQ8Block = 32;                         // QK8_0
constexpr size_t kQ8BlockBytes = 2 + kQ8Block;          // sizeof(block_q8_0): f16 d + int8 qs[32]

void decodeRows(const void* src, DType t, size_t n, float* out) {
  switch (t) {
    case DType::F32:
      std::memcpy(out, src, n * 4);
      return;
    case DType::BF16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; i++) out[i] = bf16ToF32(s[i]);
      return;
    }
    case DType::F16: {
      const uint16_t* s = static_cast<const uint16_t*>(src);
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; i++) out[i] = f16ToF32(s[i]);
      return;
    }
    case DType::F64:
      break;
  }
  throw std::invalid_argument(std::string("cannot export a tensor stored as ") + dtypeName(t));
}

std::vector<float> decoded(const void* src, DType t, size_t n) {
  std::vector<float> v(n);
  decodeRows(src, t, n, v.data());
  return v;
}

// W[rows, cols] += scale * (B[rows, r] @ A[r, cols]); each output row is independent.
void foldLora(float* w, size_t rows, size_t cols, const LoraFold& l) {
  const size_t r = static_cast<size_t>(l.rank);
  const std::vector<float> a = decoded(l.a, l.aType, r * cols);
  const std::vector<float> b = decoded(l.b, l.bType, rows * r);
  const float scale = static_cast<float>(l.scale);
#pragma omp parallel
  {
    std::vector<float> delta(cols);
#pragma omp for schedule(static)
    for (size_t n = 0; n < rows; n++) {
      std::fill(delta.begin(), delta.end(), 0.0f);
      for (size_t k = 0; k < r; k++) {
        const float c = b[n * r + k];
        const float* ak = a.data() + k * cols;
        for (size_t j = 0; j < cols; j++) delta[j] += c * ak[j];
      }
      float* wn = w + n * cols;
      for (size_t j = 0; j < cols; j++) wn[j] += delta[j] * scale;
    }
  }
}

// Row h * half + i of each head moves to row 2i + h.
std::vector<float> permutedRows(const std::vector<float>& w, size_t rows, size_t cols, int heads) {
  const size_t d = rows / static_cast<size_t>(heads), half = d / 2;
  std::vector<float> out(w.size());
#pragma omp parallel for schedule(static)
  for (size_t src = 0; src < rows; src++) {
    const size_t head = src / d, within = src % d, h = within / half, i = within % half;
    const size_t dst = head * d + 2 * i + h;
    std::memcpy(out.data() + dst * cols, w.data() + src * cols, cols * 4);
  }
  return out;
}

void quantizeQ8_0(const float* x, size_t n, uint8_t* out) {
  const size_t blocks = n / kQ8Block;
#pragma omp parallel for schedule(static)
  for (size_t blk = 0; blk < blocks; blk++) {
    const float* v = x + blk * kQ8Block;
    float amax = 0.0f;
    for (size_t j = 0; j < kQ8Block; j++) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t* o = out + blk * kQ8BlockBytes;
    const uint16_t dh = f32ToF16(d);
    std::memcpy(o, &dh, 2);
    for (size_t j = 0; j < kQ8Block; j++) {
      const int8_t q = static_cast<int8_t>(std::roundf(v[j] * id));
      std::memcpy(o + 2 + j, &q, 1);
    }
  }
}

void encode(const float* x, size_t n, ExportDType t, uint8_t* out) {
  switch (t) {
    case ExportDType::F32:
      std::memcpy(out, x, n * 4);
      return;
    case ExportDType::BF16:
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; i++) {
        const uint16_t h = f32ToBf16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case ExportDType::F16:
#pragma omp parallel for schedule(static)
      for (size_t i = 0; i < n; i++) {
        const uint16_t h = f32ToF16(x[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case ExportDType::Q8_0:
      quantizeQ8_0(x, n, out);
      return;
  }
}

}  // namespace

bool parseExportDType(const std::string& s, ExportDType* out) {
  if (s == "F32") { *out = ExportDType::F32; return true; }
  if (s == "BF16") { *out = ExportDType::BF16; return true; }
  if (s == "F16") { *out = ExportDType::F16; return true; }
  if (s == "Q8_0") { *out = ExportDType::Q8_0; return true; }
  return false;
}

size_t exportBytes(ExportDType t, size_t rows, size_t cols) {
  const size_t n = rows * cols;
  switch (t) {
    case ExportDType::F32: return 4 * n;
    case ExportDType::BF16:
    case ExportDType::F16: return 2 * n;
    case ExportDType::Q8_0: return n / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

// Fabian Giesen's float_to_half_fast3_rtne: the FPU does the rounding (normal halves by the
// integer add of 0xfff + the odd bit, subnormals by adding a magic 0.5f).
uint16_t f32ToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  if (u >= 0x47800000u) return static_cast<uint16_t>(sign | (u > 0x7f800000u ? 0x7e00u : 0x7c00u));  // >= 2^16: inf, or NaN
  if (u < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
    const uint32_t magicBits = 126u << 23;  // 0.5f: ((127 - 15) + (23 - 10) + 1) << 23
    float a, magic;
    std::memcpy(&a, &u, 4);
    std::memcpy(&magic, &magicBits, 4);
    a += magic;
    uint32_t r;
    std::memcpy(&r, &a, 4);
    return static_cast<uint16_t>(sign | (r - magicBits));
  }
  const uint32_t odd = (u >> 13) & 1u;
  u += 0xc8000fffu + odd;  // rebias the exponent ((15 - 127) << 23, mod 2^32) and round
  return static_cast<uint16_t>(sign | (u >> 13));
}

void transformTensor(const TensorTransform& t, uint8_t* out) {
  const size_t n = t.rows * t.cols;
  if (t.outType == ExportDType::Q8_0 && t.cols % kQ8Block != 0)
    throw std::invalid_argument("Q8_0 needs rows of a multiple of 32 values, got " + std::to_string(t.cols));
  if (t.permuteHeads < 0 || (t.permuteHeads > 0 && t.rows % (2 * static_cast<size_t>(t.permuteHeads)) != 0))
    throw std::invalid_argument("the RoPE row permutation needs rows (" + std::to_string(t.rows) + ") to split into " +
                                std::to_string(t.permuteHeads) + " heads of an even size");
  if (t.lora && t.lora->rank <= 0) throw std::invalid_argument("LoRA rank must be positive");
  std::vector<float> w = decoded(t.src, t.srcType, n);
  if (t.lora) foldLora(w.data(), t.rows, t.cols, *t.lora);
  if (t.addOne) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) w[i] += 1.0f;
  }
  if (t.permuteHeads > 0) w = permutedRows(w, t.rows, t.cols, t.permuteHeads);
  encode(w.data(), n, t.outType, out);
}

}  // namespace rrec::addon
