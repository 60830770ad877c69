// exp for float written so that GCC vectorises the loops that call it (no libm call, no branch;
// needs -fno-trapping-math, set in binding.gyp / CMakeLists.txt): Cephes' expf range reduction and
// degree-6 polynomial. Max relative error 8.3e-8 (1.4 ulp) over [-87, 88], measured against
// double-precision exp; the result is clamped to [exp(-87.34), exp(88.38)] instead of going to 0
// or inf. About 5x faster than calling expf per element in the SiLU loop (measured 2026-11-25:
// 2.1 vs 10.1 ms for 4M elements on this 2-core AVX-512 machine, one thread).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rrec::cpu {

inline float expVec(float x) {
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.37626f ? 88.37626f : x;
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);  // x = n ln2 + r, |r| <= ln2 / 2
  float r = x - n * 0.693359375f;                              // ln2 in two parts: exact n * hi
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// exp(x): the vectorisable one for float, libm's for double (the finite-difference build keeps
// full precision).
template <typename T>
inline T expT(T x) {
  if constexpr (std::is_same_v<T, float>) return expVec(x);
  else return std::exp(x);
}

// tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error ~1e-7 for float (relative error grows as x -> 0,
// which is fine where tanh is added to 1, as in GELU); libm's for double.
template <typename T>
inline T tanhT(T x) {
  if constexpr (std::is_same_v<T, float>) return 1.0f - 2.0f / (expVec(2.0f * x) + 1.0f);
  else return std::tanh(x);
}

}  // namespace rrec::cpu
