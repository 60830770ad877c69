// Large, short-lived activation buffers come from here instead of malloc: memory mapped with
// transparent huge pages and kept for reuse after it is freed. First-touching fresh 4 KiB pages
// costs ~11 us each on these machines (shared/docs/machine-limits.md) and malloc's large blocks
// are fresh mappings every pass (and every pass after the process forks a child), which made page
// faults, not arithmetic, the largest cost of a training step.
#pragma once
#include <cstddef>
#include <vector>

namespace rrec {

// Bytes below this go to operator new; above, to the pool.
constexpr size_t kPoolMinBytes = 256 * 1024;

void* poolAllocate(size_t bytes);
void poolRelease(void* p, size_t bytes);
// Cached (freed, reusable) bytes right now; for tests and stats.
size_t poolCachedBytes();
// Returns every cached mapping to the OS.
void poolTrim();

template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() noexcept = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < kPoolMinBytes) return static_cast<T*>(::operator new(bytes));
    return static_cast<T*>(poolAllocate(bytes));
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < kPoolMinBytes) ::operator delete(p);
    else poolRelease(p, bytes);
  }
  template <typename U>
  bool operator==(const PoolAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const PoolAllocator<U>&) const noexcept { return false; }
};

// An activation buffer.
template <typename T>
using Buf = std::vector<T, PoolAllocator<T>>;

}  // namespace rrec
