// Lane helpers shared by the AVX-512 kernel files (matmul_avx512.cc, lora_avx512.cc). Include it
// after the file's `#pragma GCC target` (or clang attribute push), inside that file's anonymous
// namespace, so the helpers are compiled for AVX-512 and stay local to the file: nothing with
// AVX-512 code can then be picked by the linker for a baseline caller elsewhere.
#pragma once
#include <immintrin.h>

// Sum of the 16 lanes (_mm512_reduce_add_ps trips -Wuninitialized in GCC 12's headers).
inline float hsum(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));
  __m128 q = _mm512_castps512_ps128(v);
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

// In-register transpose of a 16x16 block of 32-bit lanes: v[i][j] -> v[j][i].
inline void transpose16x16(__m512 v[16]) {
  __m512 t[16];
  for (int j = 0; j < 16; j += 2) {
    t[j] = _mm512_unpacklo_ps(v[j], v[j + 1]);
    t[j + 1] = _mm512_unpackhi_ps(v[j], v[j + 1]);
  }
  for (int j = 0; j < 16; j += 4) {
    v[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
    v[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xee);
    v[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
    v[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xee);
  }
  for (int j = 0; j < 4; j++) {
    t[j] = _mm512_shuffle_f32x4(v[j], v[j + 4], 0x88);
    t[j + 4] = _mm512_shuffle_f32x4(v[j], v[j + 4], 0xdd);
    t[j + 8] = _mm512_shuffle_f32x4(v[j + 8], v[j + 12], 0x88);
    t[j + 12] = _mm512_shuffle_f32x4(v[j + 8], v[j + 12], 0xdd);
  }
  for (int j = 0; j < 8; j++) {
    v[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    v[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
}

// The first min(n, 16) lanes.
inline __mmask16 tailMask(int n) { return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1u); }
