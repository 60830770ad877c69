// The export path's tensor math (export_tensor.h) over typed arrays, for src/export/:
//
//   transformTensor({ src: Uint8Array, srcDtype: "F32"|"BF16"|"F16", rows, cols,
//                     lora?: { a: Uint8Array, aDtype, b: Uint8Array, bDtype, rank, scale } | null,
//                     addOne?: boolean, permuteHeads?: number, outDtype: "F32"|"BF16"|"F16"|"Q8_0" })
//     -> Promise<Uint8Array> of the encoded tensor
//
// The byte arrays are the stored little-endian tensors ([rows, cols], A [rank, cols], B [rows,
// rank]); their sizes are checked here, with messages naming the argument. The work runs on the
// compute thread (a large embedding takes seconds); the input arrays stay referenced until it is
// done and are only read, the output array is allocated here and written there.
#include <napi.h>

#include <memory>
#include <string>

#include "addon/export_tensor.h"
#include "convert.h"
#include "worker.h"

namespace rrec::addon {

namespace {

struct Bytes {
  const uint8_t* data;
  size_t size;
};

Bytes bytesField(const Napi::Object& o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(o.Env(), what + "." + key + " must be a Uint8Array");
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  return {a.Data(), a.ByteLength()};
}

DType storedType(const Napi::Object& o, const char* key, const std::string& what) {
  Napi::Value v = o.Get(key);
  DType t;
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (!parseDType(s, &t) || t == DType::F64)
    throw Napi::TypeError::New(o.Env(), what + "." + key + " must be \"F32\", \"BF16\" or \"F16\", got " + (v.IsString() ? "\"" + s + "\"" : "a non-string"));
  return t;
}

size_t countField(const Napi::Object& o, const char* key, const std::string& what, double min, double def = -1) {
  const double v = numberField(o, key, def);
  if (!(v >= min) || v != static_cast<double>(static_cast<size_t>(v)))
    throw Napi::RangeError::New(o.Env(), what + "." + key + " must be an integer >= " + std::to_string(static_cast<int>(min)) + ", got " + std::to_string(v));
  return static_cast<size_t>(v);
}

void checkSize(Napi::Env env, const Bytes& b, size_t want, const std::string& what) {
  if (b.size != want)
    throw Napi::RangeError::New(env, what + " has " + std::to_string(b.size) + " bytes, its shape and dtype need " + std::to_string(want));
}

Napi::Value TransformTensor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "transformTensor: the argument must be an object");
  Napi::Object o = info[0].As<Napi::Object>();
  const std::string what = "transformTensor";
  auto t = std::make_shared<TensorTransform>();
  t->rows = countField(o, "rows", what, 1);
  t->cols = countField(o, "cols", what, 1);
  t->srcType = storedType(o, "srcDtype", what);
  const Bytes src = bytesField(o, "src", what);
  checkSize(env, src, t->rows * t->cols * dtypeSize(t->srcType), what + ".src");
  t->src = src.data;
  Napi::Value out = o.Get("outDtype");
  if (!out.IsString() || !parseExportDType(out.As<Napi::String>().Utf8Value(), &t->outType))
    throw Napi::TypeError::New(env, what + ".outDtype must be \"F32\", \"BF16\", \"F16\" or \"Q8_0\"");
  t->addOne = boolField(o, "addOne", false);
  t->permuteHeads = static_cast<int>(countField(o, "permuteHeads", what, 0, 0));
  auto lora = std::make_shared<LoraFold>();
  Napi::Value lv = o.Get("lora");
  if (!lv.IsUndefined() && !lv.IsNull()) {
    if (!lv.IsObject()) throw Napi::TypeError::New(env, what + ".lora must be an object or null");
    Napi::Object l = lv.As<Napi::Object>();
    const std::string lw = what + ".lora";
    lora->rank = static_cast<int>(countField(l, "rank", lw, 1));
    lora->scale = numberField(l, "scale", 0);
    lora->aType = storedType(l, "aDtype", lw);
    lora->bType = storedType(l, "bDtype", lw);
    const Bytes a = bytesField(l, "a", lw), b = bytesField(l, "b", lw);
    const size_t r = static_cast<size_t>(lora->rank);
    checkSize(env, a, r * t->cols * dtypeSize(lora->aType), lw + ".a ([rank, cols])");
    checkSize(env, b, t->rows * r * dtypeSize(lora->bType), lw + ".b ([rows, rank])");
    lora->a = a.data;
    lora->b = b.data;
    t->lora = lora.get();
  }
  if (t->outType == ExportDType::Q8_0 && t->cols % 32 != 0)
    throw Napi::RangeError::New(env, what + ": Q8_0 needs cols to be a multiple of 32, got " + std::to_string(t->cols));
  if (t->permuteHeads > 0 && t->rows % (2 * static_cast<size_t>(t->permuteHeads)) != 0)
    throw Napi::RangeError::New(env, what + ": rows (" + std::to_string(t->rows) + ") do not split into " + std::to_string(t->permuteHeads) +
                                         " heads of an even size");

  Napi::Uint8Array result = Napi::Uint8Array::New(env, exportBytes(t->outType, t->rows, t->cols));
  uint8_t* dst = result.Data();
  auto resultRef = std::make_shared<Napi::ObjectReference>(Napi::Persistent(static_cast<Napi::Object>(result)));
  return PromiseWorker::Queue(
      env, "rrec.transformTensor", [t, lora, dst]() { transformTensor(*t, dst); },
      [resultRef](Napi::Env) -> Napi::Value {
        Napi::Value v = resultRef->Value();
        resultRef->Reset();
        return v;
      },
      nullptr, {o});
}

}  // namespace

void InitExport(Napi::Env env, Napi::Object exports) {
  exports.Set("transformTensor", Napi::Function::New(env, TransformTensor, "transformTensor"));
}

}  // namespace rrec::addon
