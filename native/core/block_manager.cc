// BlockManager and KvPool (see block_manager.h).
#include "block_manager.h"

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

KvPool::KvPool(Backend& be, DType t, int layers, int numBlocks, int blockSize, int kvWidth)
    : be_(be), layers_(layers), blockSize_(blockSize), kvWidth_(kvWidth) {
  layerElems_ = static_cast<int64_t>(numBlocks) * blockSize * kvWidth;
  k_.reset(be, t, layerElems_ * layers, RREC_ALLOC_LAZY);
  v_.reset(be, t, layerElems_ * layers, RREC_ALLOC_LAZY);
}

void KvPool::copyBlock(int dst, int src) {
  const int64_t n = static_cast<int64_t>(blockSize_) * kvWidth_;
  const uint64_t bytes = static_cast<uint64_t>(n) * dtypeSize(k_.dtype());
  for (int l = 0; l < layers_; l++) {
    be_.copy(k(l).at(dst * n), k(l).at(src * n), bytes);
    be_.copy(v(l).at(dst * n), v(l).at(src * n), bytes);
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


}  // namespace rrec
