// Counter-based random numbers: a pure function of (seed, stream, counter), so any value can be
// regenerated (dropout masks in backward) and results do not depend on thread scheduling.
#pragma once
#include <cstdint>

namespace rrec {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform double in [0, 1) from a 64-bit hash (53 random bits).
inline double toUnit(uint64_t h) { return static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0); }

inline double hashUniform(uint64_t seed, uint64_t stream, uint64_t counter) {
  return toUnit(splitmix64(splitmix64(seed ^ splitmix64(stream)) + counter));
}

// A sequential stream over the same hash.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : key_(splitmix64(seed ^ splitmix64(stream))) {}
  double uniform() { return toUnit(splitmix64(key_ + counter_++)); }
  uint64_t next() { return splitmix64(key_ + counter_++); }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace rrec
