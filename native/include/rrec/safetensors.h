// Memory-mapped safetensors files: one `model.safetensors`, or shards listed by
// `model.safetensors.index.json`. Tensors are views into the mapping; nothing is read until used.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rrec/dtype.h"

namespace rrec {

// A read-only private mapping of a whole file (RAII).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws LoadError
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

struct TensorView {
  std::string name;
  std::string file;             // the file it lives in (for error messages)
  DType dtype = DType::F32;
  std::vector<int64_t> shape;   // as stored (PyTorch order, row-major)
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  std::string shapeString() const;
};

// All tensors of one checkpoint (one file or shards), by name.
class SafetensorsSet {
 public:
  // `dir` holds model.safetensors or model.safetensors.index.json (+ shards). Throws LoadError.
  static std::unique_ptr<SafetensorsSet> openDir(const std::string& dir);
  // One file, e.g. adapter_model.safetensors.
  static std::unique_ptr<SafetensorsSet> openFile(const std::string& path);

  const TensorView* find(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  void addFile(const std::string& path, const std::string& displayName);
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Reads a whole small file (config.json, an index) as text. Throws LoadError naming the file.
std::string readTextFile(const std::string& path);

// Writes tensors (given as f32 values, stored as `dtype`) to a safetensors file atomically
// (temp file, fsync, rename). Used to save adapters.
struct TensorToWrite {
  std::string name;
  std::vector<int64_t> shape;
  const float* data;
};
void writeSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors, DType dtype,
                      const std::map<std::string, std::string>& metadata);

}  // namespace rrec
