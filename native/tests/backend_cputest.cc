// A backend library for the registry's tests: the CPU backend, compiled into its own shared
// library and registered under the name "cputest". Loaded with dlopen like the CUDA backend, it
// proves the mechanism (file name -> entry point, ABI version, listing, device: "cputest") and
// joins test_backend_ops like any other backend.
#include "rrec/backend_abi.h"

extern "C" const rrec_backend_reg* rrec_cpu_backend_reg(uint32_t hostAbi);

namespace {
rrec_backend_reg reg;
}

extern "C" __attribute__((visibility("default"))) const rrec_backend_reg* rrec_cputest_backend_reg(uint32_t hostAbi) {
  const rrec_backend_reg* cpu = rrec_cpu_backend_reg(hostAbi);
  if (!cpu) return nullptr;
  reg = *cpu;
  reg.name = "cputest";
  return &reg;
}
