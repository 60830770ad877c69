// The paged KV cache: a pool of fixed-size blocks (blockSize tokens each, K and V of every layer),
// handed out by a BlockManager with reference counts so the n samples of a prompt can share the
// prompt's blocks. Memory is one lazily filled buffer per K/V on the model's device: a large budget
// costs nothing until blocks are used, and freed blocks are reused lowest-first so the touched
// part stays small.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rrec/backend.h"

namespace rrec {

class BlockManager {
 public:
  explicit BlockManager(int numBlocks);
  int numBlocks() const { return static_cast<int>(ref_.size()); }
  int numFree() const { return static_cast<int>(free_.size()); }
  int used() const { return numBlocks() - numFree(); }
  // Takes a free block (refcount 1); -1 when none is left.
  int allocate();
  void incref(int b) { ref_[b]++; }
  // Drops one reference; the block returns to the free list at zero.
  void decref(int b);
  int refcount(int b) const { return ref_[b]; }
  void reset();

 private:
  std::vector<int> ref_;
  std::vector<int> free_;  // a stack: the lowest ids on top
};

// K and V storage on the model's device: per layer [numBlocks, blockSize, Hk * D] of the
// activation type, one RREC_ALLOC_LAZY buffer each for K and V (the OS, or the device allocator,
// fills pages on first use).
class KvPool {
 public:
  KvPool(Backend& be, DType t, int layers, int numBlocks, int blockSize, int kvWidth);
  TensorRef k(int layer) const { return k_.at(static_cast<int64_t>(layer) * layerElems_); }
  TensorRef v(int layer) const { return v_.at(static_cast<int64_t>(layer) * layerElems_); }
  // Copies block src into dst in every layer (copy-on-write of a shared partly filled block).
  void copyBlock(int dst, int src);
  static int64_t blockBytes(int layers, int blockSize, int kvWidth, size_t elemBytes) {
    return 2 * static_cast<int64_t>(layers) * blockSize * kvWidth * static_cast<int64_t>(elemBytes);
  }

 private:
  Backend& be_;
  int layers_, blockSize_, kvWidth_;
  int64_t layerElems_;
  DeviceArray k_, v_;
};

// Bytes of memory the OS reports available (MemAvailable), or 0 when unknown.
int64_t availableMemoryBytes();

}  // namespace rrec
