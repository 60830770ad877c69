// The safetensors header validator (core/safetensors_header.cc) for src/model/safetensors.ts, so
// the project has one:
//
//   safetensorsHeaderLength(file, prefix: Uint8Array (the first 8 bytes), fileSize) -> N
//   parseSafetensorsHeader(file, json: Uint8Array (N bytes), fileSize)
//     -> { metadata: {str: str} | null, tensors: [{ name, dtype, shape, begin, end }] } (header order)
//
// A refused file throws an Error whose message is the native one, with `problem` and (where one
// tensor is at fault) `tensor` set, which the TypeScript side turns into its SafetensorsError.
// Both are synchronous: a header is at most 100 MB of JSON and usually a few KB, parsed as fast
// as JSON.parse did it on the same thread before.
#include <napi.h>

#include "rrec/safetensors_header.h"

namespace rrec::addon {

namespace {

struct Args {
  std::string file;
  const uint8_t* bytes;
  size_t size;
  uint64_t fileSize;
};

Args args(const Napi::CallbackInfo& info, const char* fn) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString()) throw Napi::TypeError::New(env, std::string(fn) + ": file must be a string");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, std::string(fn) + ": bytes must be a Uint8Array");
  const double size = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
  if (!(size >= 0) || size > 9007199254740991.0 || size != static_cast<double>(static_cast<uint64_t>(size)))
    throw Napi::TypeError::New(env, std::string(fn) + ": fileSize must be a non-negative integer");
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  return {info[0].As<Napi::String>().Utf8Value(), a.Data(), a.ByteLength(), static_cast<uint64_t>(size)};
}

Napi::Error refusal(Napi::Env env, const SafetensorsError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("problem", e.problem);
  if (e.hasTensor) err.Set("tensor", e.tensor);
  return err;
}

Napi::Value HeaderLength(const Napi::CallbackInfo& info) {
  const Args a = args(info, "safetensorsHeaderLength");
  try {
    return Napi::Number::New(info.Env(), static_cast<double>(safetensorsHeaderLength(a.file, a.bytes, a.size, a.fileSize)));
  } catch (const SafetensorsError& e) {
    throw refusal(info.Env(), e);
  }
}

Napi::Value ParseHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Args a = args(info, "parseSafetensorsHeader");
  SafetensorsHeader h;
  try {
    h = parseSafetensorsHeader(a.file, a.bytes, a.size, a.fileSize);
  } catch (const SafetensorsError& e) {
    throw refusal(env, e);
  }
  Napi::Object out = Napi::Object::New(env);
  if (h.hasMetadata) {
    Napi::Object m = Napi::Object::New(env);
    for (const auto& kv : h.metadata) m.Set(kv.first, kv.second);
    out.Set("metadata", m);
  } else {
    out.Set("metadata", env.Null());
  }
  Napi::Array tensors = Napi::Array::New(env, h.tensors.size());
  for (size_t i = 0; i < h.tensors.size(); i++) {
    const SafetensorsEntry& t = h.tensors[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("dtype", t.dtype);
    Napi::Array shape = Napi::Array::New(env, t.shape.size());
    for (size_t k = 0; k < t.shape.size(); k++) shape[k] = Napi::Number::New(env, static_cast<double>(t.shape[k]));
    o.Set("shape", shape);
    o.Set("begin", static_cast<double>(t.begin));
    o.Set("end", static_cast<double>(t.end));
    tensors[i] = o;
  }
  out.Set("tensors", tensors);
  return out;
}

}  // namespace

void InitSafetensors(Napi::Env env, Napi::Object exports) {
  exports.Set("safetensorsHeaderLength", Napi::Function::New(env, HeaderLength, "safetensorsHeaderLength"));
  exports.Set("parseSafetensorsHeader", Napi::Function::New(env, ParseHeader, "parseSafetensorsHeader"));
}

}  // namespace rrec::addon
