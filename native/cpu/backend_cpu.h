// Internals shared by the CPU backend's two files: backend_cpu.cc (the rrec_backend_i table:
// memory, device description, registration) and backend_cpu_ops.cc (the ops).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "rrec/backend_abi.h"

namespace rrec::cpu {

// What an rrec_buffer handle of the CPU backend points to (the struct rrec_buffer itself is never
// defined: each backend casts the opaque handle to its own type).
struct CpuBuffer {
  enum Kind : uint8_t { kNew, kPool, kLazy, kHostView };
  void* ptr = nullptr;
  uint64_t bytes = 0;
  Kind kind = kNew;
};

inline CpuBuffer* cpuBuffer(rrec_buffer* b) { return reinterpret_cast<CpuBuffer*>(b); }

// A failed check inside an op: becomes the call's rrec_status (code and message).
struct OpError : std::runtime_error {
  int32_t code;
  OpError(int32_t c, const std::string& m) : std::runtime_error(m), code(c) {}
};

// Runs one op (throws OpError on bad arguments).
void runOp(int32_t op, const void* args);
// "matmul", "lora_bwd", ...
const char* opName(int32_t op);

}  // namespace rrec::cpu
