// Checked conversions between JS values and C++ containers for the addon.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rrec::addon {

inline std::vector<int32_t> int32Array(const Napi::Value& v, const std::string& what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw Napi::TypeError::New(v.Env(), what + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
}

inline std::vector<double> numberArray(const Napi::Value& v, const std::string& what) {
  if (v.IsTypedArray()) {
    Napi::TypedArray t = v.As<Napi::TypedArray>();
    if (t.TypedArrayType() == napi_float32_array) {
      Napi::Float32Array a = v.As<Napi::Float32Array>();
      return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
    }
    if (t.TypedArrayType() == napi_float64_array) {
      Napi::Float64Array a = v.As<Napi::Float64Array>();
      return std::vector<double>(a.Data(), a.Data() + a.ElementLength());
    }
  }
  throw Napi::TypeError::New(v.Env(), what + " must be a Float32Array or Float64Array");
}

template <typename T>
Napi::Value typedArrayOf(Napi::Env env, const T* data, size_t n) {
  if constexpr (sizeof(T) == 4) {
    Napi::Float32Array a = Napi::Float32Array::New(env, n);
    for (size_t i = 0; i < n; i++) a[i] = static_cast<float>(data[i]);
    return a;
  } else {
    Napi::Float64Array a = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; i++) a[i] = static_cast<double>(data[i]);
    return a;
  }
}

inline double numberField(const Napi::Object& o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline bool boolField(const Napi::Object& o, const char* key, bool def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline Napi::Object objectArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return Napi::Object::New(info.Env());
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an object");
  return info[i].As<Napi::Object>();
}

}  // namespace rrec::addon
