// The activation buffer pool (see buffer_pool.h): mappings rounded up to 2 MiB, advised for huge
// pages, cached by size after release and reused by the next request of the same rounded size.
#include "rrec/buffer_pool.h"

#include <sys/mman.h>

#include <map>
#include <mutex>
#include <new>

namespace rrec {

namespace {

constexpr size_t kHuge = 2u << 20;
// Cached bytes above this are returned to the OS (largest first).
constexpr size_t kMaxCachedBytes = size_t(8) << 30;

struct Pool {
  std::mutex mu;
  std::multimap<size_t, void*> cached;  // rounded size -> mapping
  size_t cachedBytes = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: buffers may be released during exit
  return *p;
}

size_t roundUp(size_t bytes) { return (bytes + kHuge - 1) / kHuge * kHuge; }

}  // namespace

void* poolAllocate(size_t bytes) {
  const size_t size = roundUp(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.cached.find(size);
    if (it != p.cached.end()) {
      void* m = it->second;
      p.cached.erase(it);
      p.cachedBytes -= size;
      return m;
    }
  }
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(m, size, MADV_HUGEPAGE);
#endif
  return m;
}

void poolRelease(void* m, size_t bytes) {
  if (m == nullptr) return;
  const size_t size = roundUp(bytes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  p.cached.emplace(size, m);
  p.cachedBytes += size;
  while (p.cachedBytes > kMaxCachedBytes && !p.cached.empty()) {
    auto last = std::prev(p.cached.end());
    munmap(last->second, last->first);
    p.cachedBytes -= last->first;
    p.cached.erase(last);
  }
}

size_t poolCachedBytes() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.cachedBytes;
}

void poolTrim() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& kv : p.cached) munmap(kv.second, kv.first);
  p.cached.clear();
  p.cachedBytes = 0;
}

}  // namespace rrec
