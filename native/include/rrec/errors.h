// Error kinds the native core throws; the addon turns each into a JS Error with the same message.
#pragma once
#include <stdexcept>
#include <string>

namespace rrec {

// A model folder or file is missing, truncated, inconsistent or unsupported. The message names
// the file and, where there is one, the tensor or config field.
class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A call was given arguments that cannot be right (wrong lengths, ids out of range, ...).
class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rrec
