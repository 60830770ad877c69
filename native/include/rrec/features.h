// What this build of the native core can do: the SIMD level it was compiled for, the SIMD level
// the running CPU offers and how many threads it will use. The backends (and their kernels) are
// listed by rrec/backend_registry.h.
#pragma once
#include <string>

namespace rrec {

struct Features {
  std::string version;        // the core's version, "MAJOR.MINOR.PATCH"
  std::string compiledSimd;   // widest x86 SIMD the compiler was allowed to emit: "avx512" | "avx2" | "sse2" | "none"
  std::string cpuSimd;        // widest SIMD the running CPU supports (runtime check)
  bool avx512bf16 = false;    // CPU has AVX512_BF16 (vdpbf16ps), used by bf16 kernels
  int threads = 1;            // worker threads the CPU backend uses
  int hardwareThreads = 1;    // std::thread::hardware_concurrency()
};

// Reads compile-time macros and the CPU's feature bits; cheap, safe to call often.
Features queryFeatures();

// Number of CPU worker threads: RREC_NUM_THREADS if set to a positive integer, else the
// hardware thread count.
int defaultThreadCount();

}  // namespace rrec
