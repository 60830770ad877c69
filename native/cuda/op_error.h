// The error the backend's host code throws inside the library; the table's functions catch it
// and return its code with the message (no C++ exception crosses the C boundary).
#pragma once
#include <stdexcept>
#include <string>

#include "rrec/backend_abi.h"

namespace rrec::cuda {

struct OpError : std::runtime_error {
  int32_t code;
  OpError(int32_t c, const std::string& m) : std::runtime_error(m), code(c) {}
};

[[noreturn]] inline void bad(const std::string& m) { throw OpError(RREC_ERR_ARGUMENT, m); }

}  // namespace rrec::cuda
