// Element types of stored tensors and the conversions between them.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace rrec {

// The values equal enum rrec_dtype (backend_abi.h): tensors cross the backend boundary with them.
// I32 and U8 are index and mask types of backend buffers; no stored weight has them.
enum class DType { F32 = 0, BF16 = 1, F16 = 2, F64 = 3, I32 = 4, U8 = 5 };

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::F64: return 8;
    case DType::I32: return 4;
    case DType::U8: return 1;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::U8: return "U8";
  }
  return "?";
}

// The dtype of activations of compute type T (float: F32, double: F64).
template <typename T>
constexpr DType dtypeOf() {
  return sizeof(T) == 4 ? DType::F32 : DType::F64;
}

// Safetensors dtype strings; returns false for anything we do not compute with.
inline bool parseDType(const std::string& s, DType* out) {
  if (s == "F32") { *out = DType::F32; return true; }
  if (s == "BF16") { *out = DType::BF16; return true; }
  if (s == "F16") { *out = DType::F16; return true; }
  if (s == "F64") { *out = DType::F64; return true; }
  return false;
}

inline float bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float f16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) u = sign;
    else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) { mant <<= 1; exp--; }
      mant &= 0x3ff;
      u = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Reads element i of a stored array of type t as double.
inline double loadAsDouble(const void* data, DType t, size_t i) {
  switch (t) {
    case DType::F32: { float v; std::memcpy(&v, static_cast<const char*>(data) + 4 * i, 4); return v; }
    case DType::F64: { double v; std::memcpy(&v, static_cast<const char*>(data) + 8 * i, 8); return v; }
    case DType::BF16: { uint16_t v; std::memcpy(&v, static_cast<const char*>(data) + 2 * i, 2); return bf16ToF32(v); }
    case DType::F16: { uint16_t v; std::memcpy(&v, static_cast<const char*>(data) + 2 * i, 2); return f16ToF32(v); }
    case DType::I32: { int32_t v; std::memcpy(&v, static_cast<const char*>(data) + 4 * i, 4); return v; }
    case DType::U8: return static_cast<const uint8_t*>(data)[i];
  }
  return 0;
}

}  // namespace rrec
