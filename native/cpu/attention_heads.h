// Per-head gathers, scatters and thread-local scratch shared by the attention files (attention.cc,
// attention_avx512.cc). Include it inside the file's anonymous namespace (for the AVX-512 file,
// inside its target region too, as avx512_lanes.h), after <cstring> and <vector>: each file gets its
// own copy, compiled for its own target.
#pragma once

// dst[i, :] = x[i * ld + 0 .. D) for i < L (x already offset to the head)
template <typename T>
void gatherHead(T* dst, const T* x, size_t ld, int L, int D) {
  for (int i = 0; i < L; i++) std::memcpy(dst + static_cast<size_t>(i) * D, x + i * ld, sizeof(T) * D);
}
// x[i * ld + d] += src[i, d]
template <typename T>
void scatterAddHead(T* x, const T* src, size_t ld, int L, int D) {
  for (int i = 0; i < L; i++) {
    T* o = x + i * ld;
    const T* s = src + static_cast<size_t>(i) * D;
    for (int d = 0; d < D; d++) o[d] += s[d];
  }
}

// Thread-local scratch that only grows (fresh pages are slow to fault in).
template <typename T>
T* scratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
