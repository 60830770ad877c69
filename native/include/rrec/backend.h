// The math core's view of a device: a C++ wrapper over one opened backend (the C table of
// backend_abi.h), tensor references into its opaque buffers, and an owning device array. The core
// (native/core) talks to devices only through this header; it never includes a backend's own
// headers and never dereferences device memory.
//
// Errors: every failing call throws rrec::BackendError (or ArgumentError for RREC_ERR_ARGUMENT)
// carrying the backend's message prefixed with its name.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "rrec/backend_abi.h"
#include "rrec/dtype.h"

namespace rrec {

// A backend call failed (out of memory, an unsupported op, a device error).
class BackendError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DeviceInfo {
  std::string name, description;
  uint64_t totalMemory = 0, freeMemory = 0;
  int computeMajor = 0, computeMinor = 0;
  bool hostMemory = false;
  bool bf16Products = false;  // rrec_device_info::bf16_products
};

// A reference to `dtype` elements starting `offset` bytes into a backend buffer (not owning).
struct TensorRef {
  rrec_buffer* buf = nullptr;
  uint64_t offset = 0;
  DType dtype = DType::F32;

  bool empty() const { return buf == nullptr; }
  // The reference `elems` elements further on.
  TensorRef at(int64_t elems) const { return {buf, offset + static_cast<uint64_t>(elems) * dtypeSize(dtype), dtype}; }
  rrec_tensor raw() const { return rrec_tensor{buf, offset, static_cast<int32_t>(dtype), 0}; }
};

// A weight matrix W [rows = N, cols = K] in nn.Linear layout on a device (the neutral weight type
// of the model, on any device).
struct Weight {
  TensorRef t;
  int rows = 0, cols = 0;
  // Multiply in bf16 where the backend can (see rrec_matrix::bf16_products).
  bool bf16Products = false;
  // The backend's packed forward form of these weights (RREC_OP_PACK_WEIGHT), or empty. Only for
  // weights that do not change after it is made (the model packs frozen weights only).
  TensorRef packed;
  bool empty() const { return t.empty(); }
  rrec_matrix raw() const {
    return rrec_matrix{t.raw(), rows, cols, bf16Products ? 1 : 0, 0, packed.empty() ? rrec_tensor{nullptr, 0, 0, 0} : packed.raw()};
  }
};

// Owned through std::shared_ptr (openDevice makes them): every DeviceArray keeps its backend alive,
// so buffers outliving their model (a forward pass, an optimizer, an engine) free safely.
class Backend : public std::enable_shared_from_this<Backend> {
 public:
  // Takes ownership of ctx (closed by the destructor). `library` keeps a dlopen handle alive for
  // as long as any backend opened from it (null for the built-in CPU backend).
  Backend(std::string name, int device, const rrec_backend_i* iface, void* ctx, std::shared_ptr<void> library);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // "cpu", "cuda", "cuda-emu", ...; device index within the backend; "cuda:1" style label.
  const std::string& name() const { return name_; }
  int device() const { return device_; }
  std::string label() const { return device_ == 0 ? name_ : name_ + ":" + std::to_string(device_); }
  DeviceInfo describe() const;
  bool supports(int op, DType activations) const { return iface_->supports(ctx_, op, static_cast<int32_t>(activations)) != 0; }
  bool canWrapHost() const { return iface_->wrap_host != nullptr; }

  // ---- memory
  rrec_buffer* alloc(uint64_t bytes, uint32_t flags = 0);
  void release(rrec_buffer* b) noexcept {
    if (b) iface_->free_buffer(ctx_, b);
  }
  rrec_buffer* wrapHost(const void* host, uint64_t bytes);  // nullptr when the backend cannot
  void upload(const TensorRef& dst, const void* src, DType srcType, uint64_t count);
  void download(void* dst, DType dstType, const TensorRef& src, uint64_t count) const;
  void copy(const TensorRef& dst, const TensorRef& src, uint64_t bytes);
  void zero(const TensorRef& dst, uint64_t bytes);
  void synchronize();

  // ---- ops: run(RREC_OP_..., its argument struct)
  template <typename Args>
  void run(int op, const Args& args) {
    runRaw(op, &args);
  }
  void runRaw(int op, const void* args);

 private:
  [[noreturn]] void fail(const rrec_status& st, const char* what) const;
  std::string name_;
  int device_;
  const rrec_backend_i* iface_;
  void* ctx_;
  std::shared_ptr<void> library_;
};

// An owning array of `numel` elements of one dtype on a backend (contents undefined until written).
// resize() reallocates only to grow (the contents are then lost), so scratch buffers reused across
// steps cost one allocation each.
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(Backend& be, DType t, int64_t numel, uint32_t flags = 0) { reset(be, t, numel, flags); }
  ~DeviceArray() { free(); }
  DeviceArray(DeviceArray&& o) noexcept { *this = std::move(o); }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      free();
      be_ = std::move(o.be_);
      buf_ = o.buf_;
      dtype_ = o.dtype_;
      numel_ = o.numel_;
      capacity_ = o.capacity_;
      o.buf_ = nullptr;
      o.numel_ = o.capacity_ = 0;
    }
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void reset(Backend& be, DType t, int64_t numel, uint32_t flags = 0) {
    free();
    be_ = be.shared_from_this();
    dtype_ = t;
    numel_ = capacity_ = numel;
    if (numel > 0) buf_ = be.alloc(static_cast<uint64_t>(numel) * dtypeSize(t), flags);
  }
  // Grows (losing the contents) when numel exceeds the capacity; sets the size either way.
  void resize(Backend& be, DType t, int64_t numel) {
    if (buf_ && be_.get() == &be && t == dtype_ && numel <= capacity_) {
      numel_ = numel;
      return;
    }
    reset(be, t, numel);
  }
  void free() noexcept {
    if (buf_ && be_) be_->release(buf_);
    buf_ = nullptr;
    be_.reset();
    numel_ = capacity_ = 0;
  }
  // Writes zeros over the current size.
  void zero() {
    if (buf_) be_->zero(ref(), bytes());
  }
  // A deep copy on the same backend.
  DeviceArray clone() const {
    DeviceArray c;
    if (!buf_) return c;
    c.reset(*be_, dtype_, numel_);
    be_->copy(c.ref(), ref(), bytes());
    return c;
  }

  TensorRef ref() const { return {buf_, 0, dtype_}; }
  TensorRef at(int64_t elems) const { return ref().at(elems); }
  rrec_tensor raw() const { return ref().raw(); }
  bool empty() const { return buf_ == nullptr; }
  int64_t numel() const { return numel_; }
  uint64_t bytes() const { return static_cast<uint64_t>(numel_) * dtypeSize(dtype_); }
  DType dtype() const { return dtype_; }
  Backend* backend() const { return be_.get(); }

 private:
  std::shared_ptr<Backend> be_;
  rrec_buffer* buf_ = nullptr;
  DType dtype_ = DType::F32;
  int64_t numel_ = 0, capacity_ = 0;
};

// rrec_tensor of an optional array: absent (buf NULL) when the array is empty.
inline rrec_tensor rawOrAbsent(const DeviceArray& a) { return a.empty() ? rrec_tensor{nullptr, 0, 0, 0} : a.raw(); }
inline rrec_tensor absentTensor() { return rrec_tensor{nullptr, 0, 0, 0}; }

}  // namespace rrec
