// BlockManager and KvPool (see block_manager.h).
#include "block_manager.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "rrec/errors.h"

namespace rrec {

BlockManager::BlockManager(int numBlocks) : ref_(static_cast<size_t>(numBlocks), 0) { reset(); }

void BlockManager::reset() {
  std::fill(ref_.begin(), ref_.end(), 0);
  free_.clear();
  for (int b = numBlocks() - 1; b >= 0; b--) free_.push_back(b);
}

int BlockManager::allocate() {
  if (free_.empty()) return -1;
  const int b = free_.back();
  free_.pop_back();
  ref_[b] = 1;
  return b;
}

void BlockManager::decref(int b) {
  if (--ref_[b] == 0) free_.push_back(b);
}

namespace {
void* mapZeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE);  // first touch of 4 KiB pages is slow on these machines
#endif
  return p;
}
}  // namespace

template <typename T>
KvPool<T>::KvPool(int layers, int numBlocks, int blockSize, int kvWidth)
    : layers_(layers), numBlocks_(numBlocks), blockSize_(blockSize), kvWidth_(kvWidth) {
  layerElems_ = static_cast<size_t>(numBlocks) * blockSize * kvWidth;
  bytes_ = layerElems_ * layers * sizeof(T);
  k_ = static_cast<T*>(mapZeroed(bytes_));
  try {
    v_ = static_cast<T*>(mapZeroed(bytes_));
  } catch (...) {
    munmap(k_, bytes_);
    throw;
  }
}

template <typename T>
KvPool<T>::~KvPool() {
  if (k_) munmap(k_, bytes_);
  if (v_) munmap(v_, bytes_);
}

template <typename T>
void KvPool<T>::copyBlock(int dst, int src) {
  const size_t n = static_cast<size_t>(blockSize_) * kvWidth_;
  for (int l = 0; l < layers_; l++) {
    std::memcpy(k(l) + rowOffset(dst, 0), k(l) + rowOffset(src, 0), n * sizeof(T));
    std::memcpy(v(l) + rowOffset(dst, 0), v(l) + rowOffset(src, 0), n * sizeof(T));
  }
}

int64_t availableMemoryBytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  int64_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    long long v;
    if (std::sscanf(line, "MemAvailable: %lld kB", &v) == 1) {
      kb = v;
      break;
    }
  }
  std::fclose(f);
  return kb * 1024;
}

template class KvPool<float>;
template class KvPool<double>;

}  // namespace rrec
