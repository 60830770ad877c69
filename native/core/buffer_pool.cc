// The activation buffer pool (see buffer_pool.h): mappings rounded up to 2 MiB, advised for huge
// pages, cached by size after release and reused by the next request that fits: the smallest
// cached mapping at least as large and at most twice as large (best fit). Exact-size reuse alone
// let the cache grow with every new batch shape (GRPO micro-batches change size every step), which
// showed as resident memory growing with the completion length.
#include "rrec/buffer_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

namespace rrec {

namespace {

constexpr size_t kHuge = 2u << 20;
// Cached bytes above this are returned to the OS (largest first): a quarter of the machine's
// memory, at most 8 GiB.
size_t maxCachedBytes() {
  static const size_t cap = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    const size_t quarter = pages > 0 && pageSize > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(pageSize) / 4 : size_t(8) << 30;
    return std::min(quarter, size_t(8) << 30);
  }();
  return cap;
}

struct Pool {
  std::mutex mu;
  std::multimap<size_t, void*> cached;  // mapping size -> mapping
  std::unordered_map<void*, size_t> live;  // handed-out mapping -> its size (>= the request)
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
    auto it = p.cached.lower_bound(size);
    if (it != p.cached.end() && it->first <= 2 * size) {
      void* m = it->second;
      p.live.emplace(m, it->first);
      p.cachedBytes -= it->first;
      p.cached.erase(it);
      return m;
    }
  }
  void* m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(m, size, MADV_HUGEPAGE);
#endif
  std::lock_guard<std::mutex> lock(p.mu);
  p.live.emplace(m, size);
  return m;
}

void poolRelease(void* m, size_t bytes) {
  if (m == nullptr) return;
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  auto live = p.live.find(m);
  const size_t size = live != p.live.end() ? live->second : roundUp(bytes);
  if (live != p.live.end()) p.live.erase(live);
  p.cached.emplace(size, m);
  p.cachedBytes += size;
  while (p.cachedBytes > maxCachedBytes() && !p.cached.empty()) {
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
