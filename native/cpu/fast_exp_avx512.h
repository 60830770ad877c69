// fast_exp.h's expVec and tanhT, 16 float lanes at a time, with every multiply-add written as an
// explicit FMA. Include it as avx512_lanes.h is included: after the file's `#pragma GCC target`
// (AVX-512 F/BW/DQ/VL + FMA), inside that file's anonymous namespace, and under
// `#pragma GCC optimize("fp-contract=off")`, so that GCC fuses no mul + add other than the ones
// written here: the results are then the same bits whatever the build's -march or -mtune (GCC's
// contraction depends on both: -mtune=znver* avoids FMA chains), which is the point of compiling
// these for AVX-512 in a build for x86-64-v2.
// Same range reduction, polynomial and clamping as expVec (Cephes; 1.4 ulp over [-87, 88]).
#pragma once
#include <immintrin.h>

inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.33654f)), _mm512_set1_ps(88.37626f));
  // n = floor(x log2(e) + 1/2), x = n ln2 + r (ln2 in two parts: n * hi is exact)
  const __m512 n = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                        _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
  p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));  // p r^2 + r + 1
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);  // 2^n
  return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

// 1 - 2 / (exp(2x) + 1)
inline __m512 tanh16(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(exp16(_mm512_add_ps(x, x)), one)));
}
