// The paged KV cache: a pool of fixed-size blocks (blockSize tokens each, K and V of every layer),
// handed out by a BlockManager with reference counts so the n samples of a prompt can share the
// prompt's blocks. Memory is one anonymous mapping per K/V (huge pages advised) that the OS fills
// lazily: a large budget costs nothing until blocks are used, and freed blocks are reused
// lowest-first so the touched part stays small.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

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

// K and V storage: per layer [numBlocks, blockSize, Hk * D] of T.
template <typename T>
class KvPool {
 public:
  KvPool(int layers, int numBlocks, int blockSize, int kvWidth);
  ~KvPool();
  KvPool(const KvPool&) = delete;
  KvPool& operator=(const KvPool&) = delete;
  T* k(int layer) { return k_ + static_cast<size_t>(layer) * layerElems_; }
  T* v(int layer) { return v_ + static_cast<size_t>(layer) * layerElems_; }
  // Row of token slot `slot` of block `b` in one layer's K or V.
  size_t rowOffset(int b, int slot) const { return (static_cast<size_t>(b) * blockSize_ + slot) * kvWidth_; }
  // Copies block src into dst in every layer (copy-on-write of a shared partly filled block).
  void copyBlock(int dst, int src);
  static int64_t blockBytes(int layers, int blockSize, int kvWidth) {
    return 2 * static_cast<int64_t>(layers) * blockSize * kvWidth * static_cast<int64_t>(sizeof(T));
  }

 private:
  int layers_, numBlocks_, blockSize_, kvWidth_;
  size_t layerElems_, bytes_;
  T *k_ = nullptr, *v_ = nullptr;
};

// Bytes of memory the OS reports available (MemAvailable), or 0 when unknown.
int64_t availableMemoryBytes();

}  // namespace rrec
