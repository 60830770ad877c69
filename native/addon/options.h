// Reading the boundary's options from JS objects, expanded from rrec/options.def (the one list of
// their names, types and defaults): SamplingParams of an engine request and ForwardOptions of a
// forward pass. optionTables() exports the same lists to JS (src/native.ts: nativeOptionTables).
#pragma once
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "convert.h"
#include "rrec/engine.h"
#include "rrec/model.h"

namespace rrec::addon {

namespace options_detail {

inline std::vector<std::string> stringArray(const Napi::Object& o, const char* key, const std::vector<std::string>& def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an array of strings");
  std::vector<std::string> out;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + "[" + std::to_string(i) + "] must be a string");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

inline std::string stringField(const Napi::Object& o, const char* key, const std::string& def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline double integerField(const Napi::Object& o, const char* key, double def) {
  const double v = numberField(o, key, def);
  if (!std::isfinite(v) || v != std::floor(v)) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an integer");
  return v;
}

// One reader per kind of options.def
inline void read(const Napi::Object& o, const char* key, int& dst, const char* kind) {
  (void)kind;
  dst = static_cast<int>(integerField(o, key, dst));
}
inline void read(const Napi::Object& o, const char* key, double& dst, const char*) { dst = numberField(o, key, dst); }
inline void read(const Napi::Object& o, const char* key, bool& dst, const char*) { dst = boolField(o, key, dst); }
inline void read(const Napi::Object& o, const char* key, uint64_t& dst, const char*) {
  const double v = integerField(o, key, static_cast<double>(dst));
  if (v < 0) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be >= 0");
  dst = static_cast<uint64_t>(v);
}
inline void read(const Napi::Object& o, const char* key, std::vector<int32_t>& dst, const char*) {
  Napi::Value v = o.Get(key);
  if (!v.IsUndefined() && !v.IsNull()) dst = int32Array(v, key);
}
inline void read(const Napi::Object& o, const char* key, std::vector<std::string>& dst, const char*) { dst = stringArray(o, key, dst); }
inline void read(const Napi::Object& o, const char* key, std::string& dst, const char*) { dst = stringField(o, key, dst); }

}  // namespace options_detail

inline SamplingParams samplingParamsOf(const Napi::Object& o) {
  SamplingParams p;
#define RREC_SAMPLING(kind, name, ctype, def, doc) options_detail::read(o, #name, p.name, #kind);
#include "rrec/options.def"
#undef RREC_SAMPLING
  return p;
}

inline ForwardOptions forwardOptionsOf(const Napi::Object& o) {
  ForwardOptions f;
#define RREC_FORWARD(kind, name, ctype, def, doc) options_detail::read(o, #name, f.name, #kind);
#include "rrec/options.def"
#undef RREC_FORWARD
  return f;
}

// { sampling: [{ name, kind, doc }], forward: [...], loraModules: [{ name, parent }] }
inline Napi::Value optionTables(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto entry = [&](const char* name, const char* kind, const char* doc) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", name);
    e.Set("kind", kind);
    e.Set("doc", doc);
    return e;
  };
  Napi::Array sampling = Napi::Array::New(env), forward = Napi::Array::New(env), modules = Napi::Array::New(env);
#define RREC_SAMPLING(kind, name, ctype, def, doc) sampling[sampling.Length()] = entry(#name, #kind, doc);
#define RREC_FORWARD(kind, name, ctype, def, doc) forward[forward.Length()] = entry(#name, #kind, doc);
#define RREC_LORA_MODULE(name, parent)        \
  {                                           \
    Napi::Object m = Napi::Object::New(env);  \
    m.Set("name", #name);                     \
    m.Set("parent", #parent);                 \
    modules[modules.Length()] = m;            \
  }
#include "rrec/options.def"
#undef RREC_SAMPLING
#undef RREC_FORWARD
#undef RREC_LORA_MODULE
  Napi::Object out = Napi::Object::New(env);
  out.Set("sampling", sampling);
  out.Set("forward", forward);
  out.Set("loraModules", modules);
  return out;
}

}  // namespace rrec::addon
