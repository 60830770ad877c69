// The safetensors header validator (see rrec/safetensors_header.h). Messages are part of the
// contract: tests on both sides (test/model/load-errors, test/model/peft, test/model/safetensors)
// match them.
#include "rrec/safetensors_header.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "rrec/json.h"

namespace rrec {

SafetensorsError::SafetensorsError(const std::string& f, const std::string& p, const std::string& t, bool ht)
    : LoadError(ht ? f + ": tensor \"" + t + "\": " + p : f + ": " + p), file(f), problem(p), tensor(t), hasTensor(ht) {}

size_t safetensorsDtypeBytes(const std::string& d) {
  static const std::map<std::string, size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8},
  };
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

namespace {

// Strict UTF-8 (what TextDecoder with fatal: true accepts): no overlong forms, no surrogates,
// nothing above U+10FFFF.
bool validUtf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else out += c;
  }
  return out + "\"";
}

// JSON text of a value, for messages (JSON.stringify's output for the values a header holds).
std::string jsonText(const Json& j) {
  switch (j.type()) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return j.boolean() ? "true" : "false";
    case Json::Type::Number: {
      if (j.isInteger()) return std::to_string(j.integer());
      if (!std::isfinite(j.number())) return "null";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", j.number());
      // the shortest form that reads back the same, as JavaScript prints numbers
      for (int p = 1; p <= 17; p++) {
        char b2[32];
        std::snprintf(b2, sizeof b2, "%.*g", p, j.number());
        if (std::strtod(b2, nullptr) == j.number()) return b2;
      }
      return buf;
    }
    case Json::Type::String: return quoted(j.string());
    case Json::Type::Array: {
      std::string out = "[";
      for (size_t i = 0; i < j.array().size(); i++) out += (i ? "," : "") + jsonText(j.array()[i]);
      return out + "]";
    }
    case Json::Type::Object: {
      std::string out = "{";
      for (size_t i = 0; i < j.keys().size(); i++) out += (i ? "," : "") + quoted(j.keys()[i]) + ":" + jsonText(*j.find(j.keys()[i]));
      return out + "}";
    }
  }
  return "?";
}

// A non-negative integer that JavaScript holds exactly (Number.isSafeInteger), as the TS reader
// accepted: 3 and 3.0 alike.
bool isCount(const Json& j, uint64_t* out) {
  if (!j.isNumber()) return false;
  const double v = j.number();
  if (!(v >= 0) || v > 9007199254740991.0 || std::floor(v) != v) return false;
  *out = j.isInteger() ? static_cast<uint64_t>(j.integer()) : static_cast<uint64_t>(v);
  return true;
}

std::string shapeText(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s;
}

std::string range(uint64_t b, uint64_t e) { return "[" + std::to_string(b) + ", " + std::to_string(e) + "]"; }

}  // namespace

uint64_t safetensorsHeaderLength(const std::string& file, const uint8_t* prefix, size_t prefixBytes, uint64_t fileSize) {
  if (fileSize < 8 || prefixBytes < 8)
    throw SafetensorsError(file, "truncated: the file has " + std::to_string(fileSize) + " bytes, less than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | prefix[i];
  if (n > kSafetensorsMaxHeaderBytes)
    throw SafetensorsError(file, "header length " + std::to_string(n) + " exceeds the " + std::to_string(kSafetensorsMaxHeaderBytes) +
                                     "-byte limit (corrupt file?)");
  if (8 + n > fileSize)
    throw SafetensorsError(file, "truncated: the header length is " + std::to_string(n) + " bytes but the file has only " +
                                     std::to_string(fileSize - 8) + " after it");
  return n;
}

SafetensorsHeader parseSafetensorsHeader(const std::string& file, const uint8_t* text, size_t n, uint64_t fileSize) {
  if (!validUtf8(text, n)) throw SafetensorsError(file, "header is not valid UTF-8");
  Json json;
  try {
    json = Json::parse(reinterpret_cast<const char*>(text), n);
  } catch (const JsonError& e) {
    throw SafetensorsError(file, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!json.isObject()) throw SafetensorsError(file, "header is not a JSON object");

  SafetensorsHeader h;
  h.headerBytes = n;
  h.dataStart = 8 + n;
  for (const std::string& name : json.keys()) {
    const Json& entry = *json.find(name);
    if (name == "__metadata__") {
      if (!entry.isObject()) throw SafetensorsError(file, "__metadata__ is not an object of strings");
      for (const std::string& k : entry.keys()) {
        const Json& v = *entry.find(k);
        if (!v.isString()) throw SafetensorsError(file, "__metadata__." + k + " is " + jsonText(v) + ", not a string");
        h.metadata[k] = v.string();
      }
      h.hasMetadata = true;
      continue;
    }
    auto fail = [&](const std::string& problem) { return SafetensorsError(file, problem, name, true); };
    if (!entry.isObject()) throw fail("header entry is not an object");
    const Json* dtype = entry.find("dtype");
    const Json* shape = entry.find("shape");
    const Json* offsets = entry.find("data_offsets");
    // JSON.stringify(undefined) is undefined: a missing field reads as such, as in the TS messages
    if (!dtype || !dtype->isString()) throw fail("dtype is " + (dtype ? jsonText(*dtype) : std::string("undefined")) + ", not a string");
    SafetensorsEntry t;
    t.name = name;
    t.dtype = dtype->string();
    t.elementBytes = safetensorsDtypeBytes(t.dtype);
    if (t.elementBytes == 0) throw fail("unsupported dtype " + t.dtype);
    bool shapeOk = shape && shape->isArray();
    uint64_t numel = 1;
    bool tooLarge = false;
    if (shapeOk) {
      for (const Json& d : shape->array()) {
        uint64_t v;
        if (!isCount(d, &v)) { shapeOk = false; break; }
        t.shape.push_back(static_cast<int64_t>(v));
        if (v != 0 && numel > 9007199254740991ull / v) tooLarge = true;
        else numel *= v;
      }
    }
    if (!shapeOk)
      throw fail("shape " + (shape ? jsonText(*shape) : std::string("undefined")) + " is not a list of non-negative integers");
    uint64_t b = 0, e = 0;
    if (!offsets || !offsets->isArray() || offsets->array().size() != 2 || !isCount(offsets->array()[0], &b) ||
        !isCount(offsets->array()[1], &e) || b > e)
      throw fail("data_offsets " + (offsets ? jsonText(*offsets) : std::string("undefined")) + " is not [begin, end] with 0 <= begin <= end");
    if (tooLarge || numel > 9007199254740991ull / t.elementBytes) throw fail("shape [" + shapeText(t.shape) + "] is too large");
    const uint64_t bytes = numel * t.elementBytes;
    if (e - b != bytes)
      throw fail("data_offsets " + range(b, e) + " hold " + std::to_string(e - b) + " bytes, but " + t.dtype + " [" + shapeText(t.shape) +
                 "] needs " + std::to_string(bytes));
    t.begin = b;
    t.end = e;
    h.tensors.push_back(std::move(t));
  }

  // The offsets must tile [0, dataBytes) exactly.
  const uint64_t dataBytes = fileSize - 8 - n;
  std::vector<const SafetensorsEntry*> byOffset;
  for (const SafetensorsEntry& t : h.tensors) byOffset.push_back(&t);
  std::stable_sort(byOffset.begin(), byOffset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t expected = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry* t : byOffset) {
    if (t->begin < expected)
      throw SafetensorsError(file, "data_offsets " + range(t->begin, t->end) + " overlap tensor \"" + previous->name + "\" (which ends at " +
                                       std::to_string(expected) + ")", t->name, true);
    if (t->begin > expected)
      throw SafetensorsError(file, "data_offsets " + range(t->begin, t->end) + " leave a gap: the previous tensor ends at " + std::to_string(expected),
                             t->name, true);
    if (t->end > dataBytes)
      throw SafetensorsError(file, "data_offsets " + range(t->begin, t->end) + " run past the end of the data section (" + std::to_string(dataBytes) +
                                       " bytes): the file is truncated", t->name, true);
    expected = t->end;
    previous = t;
  }
  if (expected != dataBytes)
    throw SafetensorsError(file, "the data section has " + std::to_string(dataBytes) + " bytes but the tensors cover " + std::to_string(expected) +
                                     ": trailing bytes after the last tensor");
  return h;
}

}  // namespace rrec
