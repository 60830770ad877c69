// Tensor transforms for exporting weights (src/export/): decode a stored tensor, optionally fold a
// LoRA update into it, apply the layout changes llama.cpp's converter makes, and encode it in the
// output dtype. No N-API here; export_addon.cc calls it on the compute thread.
//
// A tensor is [rows, cols] row-major (cols innermost, ggml's ne[0]); a 1-D tensor of n values is
// rows = n, cols = 1 (so that the per-head row permutation of a bias permutes single values).
//
// Steps, in this order, all in f32:
//   1. decode src (F32, BF16 or F16) to f32
//   2. lora:  W[rows, cols] += scale * (B[rows, r] @ A[r, cols])   (PEFT's merge: delta = (B @ A) *
//      scaling computed in f32, added to the f32 weight; one rounding at step 5)
//   3. addOne: w += 1 (Gemma2's RMSNorm weights: HF multiplies by (1 + w), GGUF stores 1 + w)
//   4. permuteHeads = H > 0: within each of H heads of d = rows / H rows, row h * d/2 + i moves to
//      row 2i + h (h in {0, 1}): HF's rotate_half RoPE pairs (i, i + d/2), GGUF llama's adjacent
//      pairs (2i, 2i + 1) (convert_hf_to_gguf.py LlamaModel.permute)
//   5. encode: F32; BF16 and F16 round to nearest even (torch's .to(); F16 overflows to inf);
//      Q8_0: blocks of 32 consecutive values of a row, each { f16 d = max|x| / 127; int8 q[32] =
//      round(x / d) (halves away from zero) }, 34 bytes a block (ggml's quantize_row_q8_0_ref).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "rrec/dtype.h"

namespace rrec::addon {

enum class ExportDType { F32, BF16, F16, Q8_0 };

// Parses "F32" | "BF16" | "F16" | "Q8_0"; false otherwise.
bool parseExportDType(const std::string& s, ExportDType* out);

// Bytes of a [rows, cols] tensor in `t` (Q8_0 needs cols % 32 == 0).
size_t exportBytes(ExportDType t, size_t rows, size_t cols);

struct LoraFold {
  const void* a = nullptr;  // [rank, cols] in aType
  DType aType = DType::F32;
  const void* b = nullptr;  // [rows, rank] in bType
  DType bType = DType::F32;
  int rank = 0;
  double scale = 0;  // alpha / r, or alpha / sqrt(r) for rsLoRA
};

struct TensorTransform {
  const void* src = nullptr;
  DType srcType = DType::F32;
  size_t rows = 0, cols = 0;
  const LoraFold* lora = nullptr;  // null: no merge
  bool addOne = false;
  int permuteHeads = 0;  // 0: no permutation
  ExportDType outType = ExportDType::F32;
};

// Writes exportBytes(t.outType, rows, cols) bytes to out. Throws std::invalid_argument for shapes
// the steps cannot take (Q8_0 with cols % 32 != 0, rows not a multiple of 2 * permuteHeads, an
// F64 source). Runs OpenMP regions: call it on the compute thread (compute_thread.h).
void transformTensor(const TensorTransform& t, uint8_t* out);

// f32 -> IEEE half bits, round to nearest even (NaN stays NaN, overflow gives inf).
uint16_t f32ToF16(float f);

}  // namespace rrec::addon
