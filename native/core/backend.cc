// Backend: the C++ face of one opened rrec_backend_i (see rrec/backend.h).
#include "rrec/backend.h"

#include <cstring>

#include "rrec/errors.h"

namespace rrec {

namespace {
rrec_status freshStatus() {
  rrec_status st;
  st.code = RREC_OK;
  st.message[0] = '\0';
  return st;
}
}  // namespace

Backend::Backend(std::string name, int device, const rrec_backend_i* iface, void* ctx, std::shared_ptr<void> library)
    : name_(std::move(name)), device_(device), iface_(iface), ctx_(ctx), library_(std::move(library)) {}

Backend::~Backend() {
  if (iface_ && iface_->close) iface_->close(ctx_);
}

void Backend::fail(const rrec_status& st, const char* what) const {
  std::string msg = label() + " backend: " + (st.message[0] ? std::string(st.message) : std::string(what) + " failed (code " + std::to_string(st.code) + ")");
  if (st.code == RREC_ERR_ARGUMENT) throw ArgumentError(msg);
  throw BackendError(msg);
}

DeviceInfo Backend::describe() const {
  rrec_device_info d;
  std::memset(&d, 0, sizeof d);
  rrec_status st = freshStatus();
  if (iface_->describe(ctx_, &d, &st) != RREC_OK) fail(st, "describe");
  d.name[sizeof d.name - 1] = '\0';
  d.description[sizeof d.description - 1] = '\0';
  DeviceInfo out;
  out.name = d.name;
  out.description = d.description;
  out.totalMemory = d.total_memory;
  out.freeMemory = d.free_memory;
  out.computeMajor = d.compute_major;
  out.computeMinor = d.compute_minor;
  out.hostMemory = d.host_memory != 0;
  out.bf16Products = d.bf16_products != 0;
  return out;
}

rrec_buffer* Backend::alloc(uint64_t bytes, uint32_t flags) {
  rrec_buffer* b = nullptr;
  rrec_status st = freshStatus();
  if (iface_->alloc(ctx_, bytes, flags, &b, &st) != RREC_OK) {
    if (st.code == RREC_ERR_MEMORY)
      throw BackendError(label() + " backend: out of memory allocating " + std::to_string(bytes) + " bytes" +
                         (st.message[0] ? std::string(" (") + st.message + ")" : std::string()));
    fail(st, "alloc");
  }
  return b;
}

rrec_buffer* Backend::wrapHost(const void* host, uint64_t bytes) {
  if (!iface_->wrap_host) return nullptr;
  rrec_buffer* b = nullptr;
  rrec_status st = freshStatus();
  if (iface_->wrap_host(ctx_, host, bytes, &b, &st) != RREC_OK) fail(st, "wrap_host");
  return b;
}

void Backend::upload(const TensorRef& dst, const void* src, DType srcType, uint64_t count) {
  rrec_status st = freshStatus();
  if (iface_->upload(ctx_, dst.raw(), src, static_cast<int32_t>(srcType), count, &st) != RREC_OK) fail(st, "upload");
}

void Backend::download(void* dst, DType dstType, const TensorRef& src, uint64_t count) const {
  rrec_status st = freshStatus();
  if (iface_->download(ctx_, dst, static_cast<int32_t>(dstType), src.raw(), count, &st) != RREC_OK) fail(st, "download");
}

void Backend::copy(const TensorRef& dst, const TensorRef& src, uint64_t bytes) {
  rrec_status st = freshStatus();
  if (iface_->copy(ctx_, dst.raw(), src.raw(), bytes, &st) != RREC_OK) fail(st, "copy");
}

void Backend::zero(const TensorRef& dst, uint64_t bytes) {
  rrec_status st = freshStatus();
  if (iface_->fill_zero(ctx_, dst.raw(), bytes, &st) != RREC_OK) fail(st, "fill_zero");
}

void Backend::synchronize() {
  rrec_status st = freshStatus();
  if (iface_->synchronize(ctx_, &st) != RREC_OK) fail(st, "synchronize");
}

void Backend::runRaw(int op, const void* args) {
  rrec_status st = freshStatus();
  if (iface_->run(ctx_, op, args, &st) != RREC_OK) fail(st, "op");
}

}  // namespace rrec
