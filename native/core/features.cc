// Build and CPU feature report (see features.h).
#include "rrec/features.h"

#include <cstdlib>
#include <thread>

#ifndef RREC_VERSION
#define RREC_VERSION "0.1.0"
#endif

namespace rrec {

static const char* compiledSimdLevel() {
#if defined(__AVX512F__)
  return "avx512";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__SSE2__)
  return "sse2";
#else
  return "none";
#endif
}

static std::string runtimeSimdLevel(bool* bf16) {
  *bf16 = false;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
    *bf16 = __builtin_cpu_supports("avx512bf16");
#endif
    return "avx512";
  }
  if (__builtin_cpu_supports("avx2")) return "avx2";
  if (__builtin_cpu_supports("sse2")) return "sse2";
#endif
  return "none";
}

int defaultThreadCount() {
  const char* env = std::getenv("RREC_NUM_THREADS");
  if (env != nullptr) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n > 0 && n <= 1024) return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

Features queryFeatures() {
  Features f;
  f.version = RREC_VERSION;
  f.compiledSimd = compiledSimdLevel();
  f.cpuSimd = runtimeSimdLevel(&f.avx512bf16);
  f.threads = defaultThreadCount();
  unsigned hw = std::thread::hardware_concurrency();
  f.hardwareThreads = hw == 0 ? 1 : static_cast<int>(hw);
  return f;
}

}  // namespace rrec
