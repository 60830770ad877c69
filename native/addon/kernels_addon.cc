// TEST-ONLY exports: the CPU matmul kernels (native/cpu/matmul_kernels.h) called directly on typed
// arrays, for test/kernels/ (correctness against a float64 reference) and bench/kernels.ts
// (GFLOP/s). Not part of the library's API: names start with an underscore and src/native.ts
// does not type them. Synchronous on purpose (they block the JS thread while they run).
//
//   _matmulForward(out, inp, w, dtype, M, K, N, bias|null, accumulate, impl?, reps?)
//   _matmulBackwardInput(dinp, dout, w, dtype, M, K, N, impl?, reps?)
//   _matmulBackwardWeight(dweight|null, dbias|null, dout, inp, M, K, N, impl?, reps?, bf16Products?)
// out/inp/... are Float32Array (T = float) or Float64Array (T = double, dtype must be "F64");
// w is a Uint8Array over the stored weight bytes [N, K] (any byteOffset: tests pass unaligned
// views), dtype "F32" | "BF16" | "F16" | "F64", or "BF16_PRODUCTS" (BF16 with Mat::bf16Products). impl: "auto" (what the model uses), "generic"
// (portable loops), "avx512" or "avx2" (each throws where it cannot run). reps (default 1) runs the kernel that
// many times; every call returns the seconds the runs took (steady clock, measured here).
//   _matmulKernelInfo() -> { avx512, threads (OpenMP), smallM, bf16Dot (on now), bf16DotCompiled }
//   _matmulSetSmallM(m) -> previous value (forward: M below it uses the dot-product kernel)
//   _matmulSetBf16Dot(on) -> previous value (opt-in bf16 x bf16 forward for BF16 weights, M >= smallM)
//   _matmulSetSerialStreamBytes(bytes) -> previous value (the dot kernels split W between threads
//     from this many bytes of W on; default 65536)
//   _matmulSetRowWalkM(m) -> previous value (the forward's dot kernels, AVX-512 and AVX2, walk W one
//     row at a time for M up to m rows; default 2, 0 = always 6-row tiles / 4-row groups;
//     bit-identical either way)
//   _loraKernels(on) -> previous setting (the rank-specialised adapter kernels, lora_avx512.cc)
//   _avx512Kernels(on) -> previous setting (every AVX-512 kernel: off = what a CPU without AVX-512 runs)
//   _attentionKernels(on) -> previous setting (the float attention's AVX-512 path, attention_avx512.cc)
//   _lmHeadForward(logp, lse, entropy|null, hidden, w, dtype, targets, n, C, V, softcap, fused?, reps?)
//   _lmHeadBackward(dhidden, dw|null, hidden, w, dtype, targets, lse, dlogp, n, C, V, softcap, fused?, reps?)
//   _logitsRowsLse(logits, lse, R, V, softcap, reps?): the sampling rows' soft-cap + lse (logits_rows_lse)
//     the LM head's log-softmax at the targets and its backward (model_ops.h) on hidden [n, C]
//     (Float32Array, or Float64Array with F64 weights) against W [V, C]; logp, lse, entropy, dlogp
//     are Float64Array, targets an Int32Array; dhidden/dw accumulate. fused (default true): the
//     fused float path (lm_head_fused.cc), false: the unfused one (lm_head.cc). Returns seconds.
//   _fmaPeak(seconds) -> GFLOP/s of a register-only fp32 FMA loop on every OpenMP thread
//   _bf16Peak(seconds) -> GFLOP/s of a register-only vdpbf16ps loop (AVX512_BF16: what the bf16
//     products run on) on every OpenMP thread; null where the CPU lacks AVX512_BF16
//   _memReadBandwidth(megabytes, passes) -> GB/s of reading a buffer of that size `passes` times,
//     every OpenMP thread summing its own contiguous slice with vector loads (the buffer is
//     allocated with huge pages where the OS allows, filled, read once untimed, then timed)
#include <napi.h>
#include <omp.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "addon/compute_thread.h"
#include "cpu/matmul_kernels.h"
#include "cpu/model_ops.h"
#include "cpu/ops.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace rrec::addon {

namespace {

using cpu::Mat;

enum class Impl { Auto, Generic, Avx512, Avx2, Packed };

Impl implArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Impl::Auto;
  if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "impl must be \"auto\", \"generic\" or \"avx512\"");
  const std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s == "auto") return Impl::Auto;
  if (s == "generic") return Impl::Generic;
  if (s == "avx512") {
    if (!cpu::matmul_avx512_compiled()) throw Napi::Error::New(info.Env(), "impl \"avx512\": not compiled into this binary");
    return Impl::Avx512;
  }
  if (s == "avx2") {
    if (!cpu::matmul_avx2_available()) throw Napi::Error::New(info.Env(), "impl \"avx2\": this CPU or binary has no AVX2 path");
    return Impl::Avx2;
  }
  if (s == "packed") return Impl::Packed;  // forward only; checked against the Mat by the caller
  throw Napi::TypeError::New(info.Env(), "impl must be \"auto\", \"generic\", \"avx512\", \"avx2\" or \"packed\", got \"" + s + "\"");
}

int intArg(const Napi::CallbackInfo& info, size_t i, const char* what, int min) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (v != static_cast<int>(v) || v < min)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer >= " + std::to_string(min) + ", got " + std::to_string(v));
  return static_cast<int>(v);
}

int repsArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return 1;
  return intArg(info, i, "reps", 1);
}

bool isF64(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

// A float typed array of the compute type T with at least `need` elements; null/undefined -> nullptr
// when `optional`.
template <typename T>
T* floats(const Napi::Value& v, size_t need, const char* what, bool optional = false) {
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  constexpr napi_typedarray_type want = sizeof(T) == 4 ? napi_float32_array : napi_float64_array;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a " + (sizeof(T) == 4 ? "Float32Array" : "Float64Array"));
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (t.ElementLength() < need)
    throw Napi::RangeError::New(v.Env(), std::string(what) + " has " + std::to_string(t.ElementLength()) + " elements, needs " +
                                             std::to_string(need));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset());
}

Mat weightArg(const Napi::CallbackInfo& info, size_t iw, size_t idt, int N, int K) {
  Napi::Env env = info.Env();
  if (!info[idt].IsString()) throw Napi::TypeError::New(env, "dtype must be a string");
  Mat m;
  std::string dt = info[idt].As<Napi::String>().Utf8Value();
  if (dt == "BF16_PRODUCTS") {  // BF16 weights with Mat::bf16Products set
    m.bf16Products = true;
    dt = "BF16";
  }
  if (!parseDType(dt, &m.dtype)) throw Napi::TypeError::New(env, "dtype must be F32, BF16, F16 or F64, got \"" + dt + "\"");
  if (!info[iw].IsTypedArray() || info[iw].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "w must be a Uint8Array over the stored weight bytes");
  Napi::Uint8Array w = info[iw].As<Napi::Uint8Array>();
  const size_t need = static_cast<size_t>(N) * K * dtypeSize(m.dtype);
  if (w.ByteLength() < need)
    throw Napi::RangeError::New(env, "w has " + std::to_string(w.ByteLength()) + " bytes, needs " + std::to_string(need) +
                                         " for [" + std::to_string(N) + ", " + std::to_string(K) + "] " + dt);
  m.data = w.Data();
  m.rows = N;
  m.cols = K;
  return m;
}

// Runs f reps times on the compute thread (every OpenMP region must run there: compute_thread.h)
// and returns the seconds it took; f reports a failure by throwing std::runtime_error, which comes
// back here as a JS error (no N-API call may happen off the JS thread).
template <class F>
double timed(Napi::Env env, int reps, F&& f) {
  double seconds = 0;
  try {
    runOnComputeThread([&] {
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < reps; r++) f();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    });
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return seconds;
}

template <typename T>
double forwardT(const Napi::CallbackInfo& info, const Mat& w, int M, int K, int N) {
  Napi::Env env = info.Env();
  T* out = floats<T>(info[0], static_cast<size_t>(M) * N, "out");
  const T* inp = floats<T>(info[1], static_cast<size_t>(M) * K, "inp");
  const T* bias = floats<T>(info[7], N, "bias", true);
  if (!info[8].IsBoolean()) throw Napi::TypeError::New(env, "accumulate must be a boolean");
  const bool acc = info[8].As<Napi::Boolean>().Value();
  const Impl impl = implArg(info, 9);
  const int reps = repsArg(info, 10);
  // "packed": W packed once (matmul_pack, outside the timing, as a model does at load), then the
  // forward reads the packed panels: what the model's frozen weights run.
  Mat wp = w;
  std::unique_ptr<void, decltype(&std::free)> packed(nullptr, &std::free);
  if (impl == Impl::Packed) {
    const size_t bytes = cpu::matmul_packed_bytes(w);
    if (!std::is_same_v<T, float> || bytes == 0)
      throw Napi::Error::New(env, "impl \"packed\": this CPU or binary has no packed forward for these weights (AVX-512; F32, or BF16_PRODUCTS with AVX512_BF16 and an even K)");
    packed.reset(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!packed) throw Napi::Error::New(env, "impl \"packed\": out of memory");
    timed(env, 1, [&] { cpu::matmul_pack(packed.get(), w); });
    wp.packed = packed.get();
  }
  return timed(info.Env(), reps, [&] {
    if constexpr (std::is_same_v<T, float>) {
      if (impl == Impl::Packed) {
        if (!cpu::matmul_forward_packed(out, inp, wp, bias, M, acc)) throw std::runtime_error("packed forward: unsupported call");
        return;
      }
      if (impl == Impl::Avx512) {
        if (!cpu::matmul_forward_avx512(out, inp, w, bias, M, acc)) throw std::runtime_error("avx512 forward: unsupported dtype");
        return;
      }
      if (impl == Impl::Avx2) {
        if (!cpu::matmul_forward_avx2(out, inp, w, bias, M, acc)) throw std::runtime_error("avx2 forward: unsupported call");
        return;
      }
    }
    if (impl == Impl::Generic) cpu::matmul_forward_generic<T>(out, inp, w, bias, M, acc);
    else cpu::matmul_forward<T>(out, inp, w, bias, M, acc);
  });
}

Napi::Value MatmulForward(const Napi::CallbackInfo& info) {
  const int M = intArg(info, 4, "M", 0), K = intArg(info, 5, "K", 0), N = intArg(info, 6, "N", 0);
  const Mat w = weightArg(info, 2, 3, N, K);
  const bool dbl = isF64(info[0]);
  if (dbl != (w.dtype == DType::F64)) throw Napi::TypeError::New(info.Env(), "Float64Array arrays go with dtype F64 weights only");
  return Napi::Number::New(info.Env(), dbl ? forwardT<double>(info, w, M, K, N) : forwardT<float>(info, w, M, K, N));
}

template <typename T>
double backwardInputT(const Napi::CallbackInfo& info, const Mat& w, int M, int K, int N) {
  T* dinp = floats<T>(info[0], static_cast<size_t>(M) * K, "dinp");
  const T* dout = floats<T>(info[1], static_cast<size_t>(M) * N, "dout");
  const Impl impl = implArg(info, 7);
  const int reps = repsArg(info, 8);
  return timed(info.Env(), reps, [&] {
    if constexpr (std::is_same_v<T, float>) {
      if (impl == Impl::Avx512) {
        if (!cpu::matmul_backward_input_avx512(dinp, dout, w, M)) throw std::runtime_error("avx512 backward_input: unsupported dtype");
        return;
      }
      if (impl == Impl::Avx2) {
        if (!cpu::matmul_backward_input_avx2(dinp, dout, w, M)) throw std::runtime_error("avx2 backward_input: unsupported dtype");
        return;
      }
    }
    if (impl == Impl::Generic) cpu::matmul_backward_input_generic<T>(dinp, dout, w, M);
    else cpu::matmul_backward_input<T>(dinp, dout, w, M);
  });
}

Napi::Value MatmulBackwardInput(const Napi::CallbackInfo& info) {
  const int M = intArg(info, 4, "M", 0), K = intArg(info, 5, "K", 0), N = intArg(info, 6, "N", 0);
  const Mat w = weightArg(info, 2, 3, N, K);
  const bool dbl = isF64(info[0]);
  if (dbl != (w.dtype == DType::F64)) throw Napi::TypeError::New(info.Env(), "Float64Array arrays go with dtype F64 weights only");
  return Napi::Number::New(info.Env(), dbl ? backwardInputT<double>(info, w, M, K, N) : backwardInputT<float>(info, w, M, K, N));
}

template <typename T>
double backwardWeightT(const Napi::CallbackInfo& info, int M, int K, int N) {
  T* dw = floats<T>(info[0], static_cast<size_t>(N) * K, "dweight", true);
  T* db = floats<T>(info[1], N, "dbias", true);
  const T* dout = floats<T>(info[2], static_cast<size_t>(M) * N, "dout");
  const T* inp = floats<T>(info[3], static_cast<size_t>(M) * K, "inp");
  const Impl impl = implArg(info, 7);
  const int reps = repsArg(info, 8);
  const bool bf16 = info.Length() > 9 && info[9].IsBoolean() && info[9].As<Napi::Boolean>().Value();
  return timed(info.Env(), reps, [&] {
    if constexpr (std::is_same_v<T, float>) {
      if (impl == Impl::Avx512) {
        cpu::matmul_backward_weight_avx512(dw, db, dout, inp, M, K, N, bf16);
        return;
      }
      if (impl == Impl::Avx2) {
        cpu::matmul_backward_weight_avx2(dw, db, dout, inp, M, K, N);
        return;
      }
    }
    if (impl == Impl::Generic) cpu::matmul_backward_weight_generic<T>(dw, db, dout, inp, M, K, N);
    else cpu::matmul_backward_weight<T>(dw, db, dout, inp, M, K, N, bf16);
  });
}

Napi::Value MatmulBackwardWeight(const Napi::CallbackInfo& info) {
  const int M = intArg(info, 4, "M", 0), K = intArg(info, 5, "K", 0), N = intArg(info, 6, "N", 0);
  const bool dbl = isF64(info[2]);
  return Napi::Number::New(info.Env(), dbl ? backwardWeightT<double>(info, M, K, N) : backwardWeightT<float>(info, M, K, N));
}

Napi::Value MatmulKernelInfo(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx512", cpu::matmul_avx512_compiled());
  o.Set("avx2", cpu::matmul_avx2_available());
  o.Set("threads", omp_get_max_threads());
  const int sm = cpu::matmul_avx512_set_small_m(1);
  cpu::matmul_avx512_set_small_m(sm);
  o.Set("smallM", sm);
  const int bd = cpu::matmul_avx512_set_bf16_dot(1);  // reads back whether the path exists
  cpu::matmul_avx512_set_bf16_dot(bd);
  o.Set("bf16Dot", bd != 0);
  o.Set("bf16DotCompiled", cpu::matmul_avx512_bf16());  // the bf16 paths can run on this CPU
  return o;
}

Napi::Value MatmulSetBf16Dot(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "on must be a boolean");
  return Napi::Boolean::New(info.Env(), cpu::matmul_avx512_set_bf16_dot(info[0].As<Napi::Boolean>().Value() ? 1 : 0) != 0);
}

Napi::Value MatmulSetSmallM(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::matmul_avx512_set_small_m(intArg(info, 0, "smallM", 1)));
}

Napi::Value MatmulSetSerialStreamBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::matmul_avx512_set_serial_stream_bytes(intArg(info, 0, "bytes", 0)));
}

Napi::Value MatmulSetRowWalkM(const Napi::CallbackInfo& info) {
  const int m = intArg(info, 0, "m", 0);
  cpu::matmul_avx2_set_row_walk_m(m);
  return Napi::Number::New(info.Env(), cpu::matmul_avx512_set_row_walk_m(m));
}

Napi::Value LoraKernelsSetEnabled(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "_loraKernels: on must be a boolean");
  return Napi::Boolean::New(info.Env(), cpu::lora_kernels_set_enabled(info[0].As<Napi::Boolean>().Value()));
}

Napi::Value Avx512KernelsSetEnabled(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "_avx512Kernels: on must be a boolean");
  return Napi::Boolean::New(info.Env(), cpu::matmul_avx512_set_enabled(info[0].As<Napi::Boolean>().Value()));
}

Napi::Value AttentionKernelsSetEnabled(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsBoolean())
    throw Napi::TypeError::New(info.Env(), "_attentionKernels: on must be a boolean");
  return Napi::Boolean::New(info.Env(), cpu::attention_kernels_set_enabled(info[0].As<Napi::Boolean>().Value()));
}

#if defined(__x86_64__) && defined(__GNUC__)
// Register-only vdpbf16ps throughput of this thread for `seconds`: 24 independent accumulators,
// each instruction 16 lanes x 2 products x 2 flops. Compiled for AVX512_BF16 whatever -march;
// called only where the CPU has it (matmul_avx512_bf16).
__attribute__((target("avx512f,avx512bf16"))) double bf16FlopsOnThisThread(std::chrono::steady_clock::time_point t0,
                                                                            double seconds) {
  __m512 a[24];
  for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3a80);  // 1.0, ~1e-3
  long iters = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    for (int it = 0; it < 4096; it++) {
#pragma GCC unroll 24
      for (int j = 0; j < 24; j++) a[j] = _mm512_dpbf16_ps(a[j], x, y);
    }
    iters += 4096;
  }
  float sink = 0;
  for (int j = 0; j < 24; j++) sink += a[j][0];
  if (sink == 12345.678f) iters++;  // keep the chains alive
  return 24.0 * 64.0 * static_cast<double>(iters);
}
#endif

Napi::Value Bf16Peak(const Napi::CallbackInfo& info) {
  const double seconds = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.2;
#if defined(__x86_64__) && defined(__GNUC__)
  if (!cpu::matmul_avx512_bf16()) return info.Env().Null();
  double flops = 0, t = 0;
  runOnComputeThread([&] {  // every OpenMP region on the compute thread (compute_thread.h)
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
    flops += bf16FlopsOnThisThread(t0, seconds);
    t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  return Napi::Number::New(info.Env(), flops / t / 1e9);
#else
  (void)seconds;
  return info.Env().Null();
#endif
}

// Register-only fp32 FMA throughput: 24 independent accumulator chains per thread (enough to
// cover the FMA latency on both pipes), every OpenMP thread at once.
double fmaPeakGflops(double seconds) {
  double flops = 0;
  const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel reduction(+ : flops)
  {
#if defined(__AVX512F__)
    __m512 a[24];
    for (int i = 0; i < 24; i++) a[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i));
    const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
    constexpr double perIter = 24.0 * 32.0;
#else
    typedef float v8 __attribute__((vector_size(32)));
    v8 a[24];
    for (int i = 0; i < 24; i++) a[i] = v8{} + 1e-3f * static_cast<float>(i);
    const v8 x = v8{} + 0.999f, y = v8{} + 1e-4f;
    constexpr double perIter = 24.0 * 16.0;
#endif
    long iters = 0;
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
      for (int it = 0; it < 4096; it++) {
#pragma GCC unroll 24
        for (int j = 0; j < 24; j++) {
#if defined(__AVX512F__)
          a[j] = _mm512_fmadd_ps(a[j], x, y);
#else
          a[j] = a[j] * x + y;
#endif
        }
      }
      iters += 4096;
    }
    float sink = 0;
    for (int j = 0; j < 24; j++) sink += a[j][0];
    if (sink == 12345.678f) iters++;  // keep the chains alive
    flops += perIter * static_cast<double>(iters);
  }
  const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return flops / t / 1e9;
}

Napi::Value FmaPeak(const Napi::CallbackInfo& info) {
  const double seconds = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0.2;
  double gflops = 0;
  runOnComputeThread([&] { gflops = fmaPeakGflops(seconds); });  // OpenMP only on the compute thread (compute_thread.h)
  return Napi::Number::New(info.Env(), gflops);
}

// GB/s of reading megabytes MiB passes times (see the file's header); on the compute thread.
double memReadGBps(int megabytes, int passes) {
  constexpr size_t kAlign = size_t{2} << 20;  // 2 MiB: huge-page sized and aligned
  const size_t bytes = (static_cast<size_t>(megabytes) << 20) / kAlign * kAlign + kAlign;
  // One buffer for the process's life, grown when a larger one is asked for, never freed: the bench
  // probes before every single-sequence decode run, and faulting 512 MiB of fresh pages in again
  // each time is slow on these VMs (docs/machine-limits.md in the shared folder).
  static float* buf = nullptr;
  static size_t have = 0;
  if (bytes > have) {
    std::free(buf);
    buf = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
    have = buf ? bytes : 0;
    if (!buf) throw std::runtime_error("_memReadBandwidth: out of memory");
    madvise(buf, bytes, MADV_HUGEPAGE);  // fresh 4 KiB pages cost ~11 us each here; best effort
  }
  const size_t n = bytes / sizeof(float);
  double sink = 0;
  double seconds = 0;
#pragma omp parallel reduction(+ : sink)
  {
    const size_t nt = static_cast<size_t>(omp_get_num_threads()), t = static_cast<size_t>(omp_get_thread_num());
    const size_t lo = n / nt * t / 64 * 64, hi = t + 1 == nt ? n : n / nt * (t + 1) / 64 * 64;  // multiples of 64 floats
    for (size_t i = lo; i < hi; i++) buf[i] = static_cast<float>(i & 7);  // first touch by the reader
    auto readSlice = [&]() {
#if defined(__AVX512F__)
      __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (size_t i = lo; i < hi; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(buf + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(buf + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(buf + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(buf + i + 48));
      }
      alignas(64) float lanes[16];  // (_mm512_reduce_add_ps trips -Wuninitialized in GCC 12's headers)
      _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
      double s = 0;
      for (float x : lanes) s += x;
      return s;
#else
      float a[16] = {};
      for (size_t i = lo; i < hi; i += 16)
        for (int j = 0; j < 16; j++) a[j] += buf[i + j];
      double s = 0;
      for (float x : a) s += x;
      return s;
#endif
    };
    sink += readSlice();  // untimed: pages mapped, TLB warm
#pragma omp barrier
    std::chrono::steady_clock::time_point t0;
#pragma omp master
    t0 = std::chrono::steady_clock::now();
#pragma omp barrier
    for (int p = 0; p < passes; p++) sink += readSlice();
#pragma omp barrier
#pragma omp master
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (sink == 1.5) seconds += 1e-12;  // keep the sums alive
  return static_cast<double>(bytes) * passes / seconds / 1e9;
}

Napi::Value MemReadBandwidth(const Napi::CallbackInfo& info) {
  const int megabytes = intArg(info, 0, "megabytes", 1);
  const int passes = intArg(info, 1, "passes", 1);
  double gbps = 0;
  try {
    runOnComputeThread([&] { gbps = memReadGBps(megabytes, passes); });  // OpenMP only on the compute thread
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return Napi::Number::New(info.Env(), gbps);
}

const int32_t* int32s(const Napi::Value& v, size_t need, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array");
  Napi::Int32Array t = v.As<Napi::Int32Array>();
  if (t.ElementLength() < need) throw Napi::RangeError::New(v.Env(), std::string(what) + ": too short");
  return t.Data();
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, bool dflt) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return dflt;
  if (!info[i].IsBoolean()) throw Napi::TypeError::New(info.Env(), "fused must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Runs f with the fused LM head switched to `fused`, restoring the previous setting.
template <class F>
void withFused(bool fused, F&& f) {
  const bool prev = cpu::lm_head_fused_set_enabled(fused);
  try {
    f();
  } catch (...) {
    cpu::lm_head_fused_set_enabled(prev);
    throw;
  }
  cpu::lm_head_fused_set_enabled(prev);
}

template <typename T>
double lmHeadForwardT(const Napi::CallbackInfo& info, const Mat& w, int n, int C, int V) {
  double* logp = floats<double>(info[0], n, "logp");
  double* lse = floats<double>(info[1], n, "lse");
  double* ent = floats<double>(info[2], n, "entropy", true);
  const T* hidden = floats<T>(info[3], static_cast<size_t>(n) * C, "hidden");
  const int32_t* tg = int32s(info[6], n, "targets");
  for (int i = 0; i < n; i++)
    if (tg[i] < 0 || tg[i] >= V) throw Napi::RangeError::New(info.Env(), "targets[" + std::to_string(i) + "] outside [0, V)");
  const double cap = info[10].As<Napi::Number>().DoubleValue();
  const bool fused = boolArg(info, 11, true);
  return timed(info.Env(), repsArg(info, 12),
               [&] { withFused(fused, [&] { cpu::lm_head_logprobs<T>(logp, lse, ent, hidden, w, tg, n, C, cap); }); });
}

Napi::Value LmHeadForward(const Napi::CallbackInfo& info) {
  const int n = intArg(info, 7, "n", 1), C = intArg(info, 8, "C", 1), V = intArg(info, 9, "V", 1);
  if (!info[10].IsNumber()) throw Napi::TypeError::New(info.Env(), "softcap must be a number");
  const Mat w = weightArg(info, 4, 5, V, C);
  const bool dbl = isF64(info[3]);
  if (dbl != (w.dtype == DType::F64)) throw Napi::TypeError::New(info.Env(), "Float64Array arrays go with dtype F64 weights only");
  return Napi::Number::New(info.Env(), dbl ? lmHeadForwardT<double>(info, w, n, C, V) : lmHeadForwardT<float>(info, w, n, C, V));
}

template <typename T>
double lmHeadBackwardT(const Napi::CallbackInfo& info, const Mat& w, int n, int C, int V) {
  T* dh = floats<T>(info[0], static_cast<size_t>(n) * C, "dhidden");
  T* dw = floats<T>(info[1], static_cast<size_t>(V) * C, "dw", true);
  const T* hidden = floats<T>(info[2], static_cast<size_t>(n) * C, "hidden");
  const int32_t* tg = int32s(info[5], n, "targets");
  for (int i = 0; i < n; i++)
    if (tg[i] < 0 || tg[i] >= V) throw Napi::RangeError::New(info.Env(), "targets[" + std::to_string(i) + "] outside [0, V)");
  const double* lse = floats<double>(info[6], n, "lse");
  const double* dlogp = floats<double>(info[7], n, "dlogp");
  const double cap = info[11].As<Napi::Number>().DoubleValue();
  const bool fused = boolArg(info, 12, true);
  return timed(info.Env(), repsArg(info, 13),
               [&] { withFused(fused, [&] { cpu::lm_head_backward<T>(dh, dw, hidden, w, tg, lse, dlogp, n, C, cap); }); });
}

Napi::Value LmHeadBackward(const Napi::CallbackInfo& info) {
  const int n = intArg(info, 8, "n", 1), C = intArg(info, 9, "C", 1), V = intArg(info, 10, "V", 1);
  if (!info[11].IsNumber()) throw Napi::TypeError::New(info.Env(), "softcap must be a number");
  const Mat w = weightArg(info, 3, 4, V, C);
  const bool dbl = isF64(info[2]);
  if (dbl != (w.dtype == DType::F64)) throw Napi::TypeError::New(info.Env(), "Float64Array arrays go with dtype F64 weights only");
  return Napi::Number::New(info.Env(), dbl ? lmHeadBackwardT<double>(info, w, n, C, V) : lmHeadBackwardT<float>(info, w, n, C, V));
}

template <typename T>
double logitsRowsLseT(const Napi::CallbackInfo& info, int R, int V) {
  T* z = floats<T>(info[0], static_cast<size_t>(R) * V, "logits");
  double* lse = floats<double>(info[1], R, "lse");
  const double cap = info[4].As<Napi::Number>().DoubleValue();
  return timed(info.Env(), repsArg(info, 5), [&] { cpu::logits_rows_lse<T>(z, lse, R, V, cap); });
}

Napi::Value LogitsRowsLse(const Napi::CallbackInfo& info) {
  const int R = intArg(info, 2, "R", 1), V = intArg(info, 3, "V", 1);
  if (!info[4].IsNumber()) throw Napi::TypeError::New(info.Env(), "softcap must be a number");
  return Napi::Number::New(info.Env(), isF64(info[0]) ? logitsRowsLseT<double>(info, R, V) : logitsRowsLseT<float>(info, R, V));
}

}  // namespace

void InitKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("_matmulForward", Napi::Function::New(env, MatmulForward, "_matmulForward"));
  exports.Set("_matmulBackwardInput", Napi::Function::New(env, MatmulBackwardInput, "_matmulBackwardInput"));
  exports.Set("_matmulBackwardWeight", Napi::Function::New(env, MatmulBackwardWeight, "_matmulBackwardWeight"));
  exports.Set("_matmulKernelInfo", Napi::Function::New(env, MatmulKernelInfo, "_matmulKernelInfo"));
  exports.Set("_matmulSetSmallM", Napi::Function::New(env, MatmulSetSmallM, "_matmulSetSmallM"));
  exports.Set("_matmulSetSerialStreamBytes", Napi::Function::New(env, MatmulSetSerialStreamBytes, "_matmulSetSerialStreamBytes"));
  exports.Set("_matmulSetRowWalkM", Napi::Function::New(env, MatmulSetRowWalkM, "_matmulSetRowWalkM"));
  exports.Set("_loraKernels", Napi::Function::New(env, LoraKernelsSetEnabled, "_loraKernels"));
  exports.Set("_avx512Kernels", Napi::Function::New(env, Avx512KernelsSetEnabled, "_avx512Kernels"));
  exports.Set("_attentionKernels", Napi::Function::New(env, AttentionKernelsSetEnabled, "_attentionKernels"));
  exports.Set("_matmulSetBf16Dot", Napi::Function::New(env, MatmulSetBf16Dot, "_matmulSetBf16Dot"));
  exports.Set("_logitsRowsLse", Napi::Function::New(env, LogitsRowsLse, "_logitsRowsLse"));
  exports.Set("_lmHeadForward", Napi::Function::New(env, LmHeadForward, "_lmHeadForward"));
  exports.Set("_lmHeadBackward", Napi::Function::New(env, LmHeadBackward, "_lmHeadBackward"));
  exports.Set("_fmaPeak", Napi::Function::New(env, FmaPeak, "_fmaPeak"));
  exports.Set("_bf16Peak", Napi::Function::New(env, Bf16Peak, "_bf16Peak"));
  exports.Set("_memReadBandwidth", Napi::Function::New(env, MemReadBandwidth, "_memReadBandwidth"));
}

}  // namespace rrec::addon
