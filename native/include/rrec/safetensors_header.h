// The one safetensors header validator of the project. The native loader (safetensors.cc, for
// memory-mapped model weights and adapters) and the TypeScript reader (src/model/safetensors.ts,
// for adapters, checkpoints and export, through the addon's parseSafetensorsHeader) both call it,
// so a file is accepted or refused, with the same message, whichever side opens it.
//
// Layout: u64 little-endian N, N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}?, "<name>": {"dtype", "shape", "data_offsets": [b, e]}, ...},
// then the data section; tensor bytes at [8 + N + b, 8 + N + e). The offsets tile the data section
// exactly (sorted by b: start at 0, no gaps, no overlaps, the last ends at the end of the file), as
// the Rust crate requires.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "rrec/errors.h"

namespace rrec {

// A refused file. what() is "<file>: <problem>" or "<file>: tensor "<name>": <problem>".
class SafetensorsError : public LoadError {
 public:
  SafetensorsError(const std::string& file, const std::string& problem, const std::string& tensor = std::string(),
                   bool hasTensor = false);
  std::string file, problem, tensor;
  bool hasTensor;
};

struct SafetensorsEntry {
  std::string name;
  std::string dtype;            // as written: "F32", "BF16", "I64", ...
  size_t elementBytes = 0;
  std::vector<int64_t> shape;   // PyTorch order
  uint64_t begin = 0, end = 0;  // relative to the data section
};

struct SafetensorsHeader {
  uint64_t headerBytes = 0;  // N (padding included)
  uint64_t dataStart = 0;    // 8 + N
  bool hasMetadata = false;
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsEntry> tensors;  // header order
};

// The Rust crate refuses headers above 100 MB; so do we (a corrupt length must not allocate GBs).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100000000;

// N from the file's first 8 bytes (`prefix`, `prefixBytes` of them available), checked against the
// file size and the limit.
uint64_t safetensorsHeaderLength(const std::string& file, const uint8_t* prefix, size_t prefixBytes, uint64_t fileSize);

// Validates the N-byte JSON header against the file size; returns the tensor table.
SafetensorsHeader parseSafetensorsHeader(const std::string& file, const uint8_t* json, size_t n, uint64_t fileSize);

// Bytes per element of every dtype the format names (sub-byte and packed types excluded); 0 if unknown.
size_t safetensorsDtypeBytes(const std::string& dtype);

}  // namespace rrec
