// Large, short-lived activation buffers come from here instead of malloc: memory mapped with
// transparent huge pages and kept for reuse after it is freed. First-touching fresh 4 KiB pages
// costs ~11 us each on these machines (shared/docs/machine-limits.md) and malloc's large blocks
// are fresh mappings every pass (and every pass after the process forks a child), which made page
// faults, not arithmetic, the largest cost of a training step.
#pragma once
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
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
  // Default-initialisation: Buf<T> b(n) and b.resize(n) leave new floats unset instead of zeroing
  // them (single-threaded memsets of every activation cost ~5 ms per forward of a 0.5B layer at
  // 4 x 256 tokens); Buf<T> b(n, T(0)) and assign(n, T(0)) still zero.
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
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
