// A backend library built for another ABI version: the registry must list it as unavailable with
// the reason, and go on (test/native/backends.test.ts, test_backend_ops' listing).
#include "rrec/backend_abi.h"

namespace {
const char* info() { return "{}"; }
int32_t count(rrec_status*) { return 1; }
int32_t open(int32_t, const rrec_backend_i**, void**, rrec_status*) { return RREC_ERR_DEVICE; }
const rrec_backend_reg reg = {RREC_BACKEND_ABI_VERSION + 98, sizeof(rrec_backend_reg), "badabi", info, count, open};
}  // namespace

extern "C" __attribute__((visibility("default"))) const rrec_backend_reg* rrec_badabi_backend_reg(uint32_t) { return &reg; }
