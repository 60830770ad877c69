// Recursive-descent JSON parser (RFC 8259) for the small documents the loader reads.
#include "rrec/json.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace rrec {

const char* Json::typeName(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &values_[it->second];
}

class JsonParser {
 public:
  JsonParser(const char* p, size_t n) : s_(p), n_(n) {}

  Json document() {
    Json v = value(0);
    ws();
    if (i_ != n_) fail("end of document");
    return v;
  }

 private:
  const char* s_;
  size_t n_;
  size_t i_ = 0;
  static constexpr int kMaxDepth = 256;

  [[noreturn]] void fail(const char* expected) {
    std::string got = i_ < n_ ? std::string("'") + s_[i_] + "'" : std::string("end of input");
    throw JsonError(std::string("invalid JSON: expected ") + expected + ", found " + got + " at byte " + std::to_string(i_));
  }
  void ws() {
    while (i_ < n_ && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) i_++;
  }
  bool lit(const char* word) {
    size_t len = std::strlen(word);
    if (n_ - i_ >= len && std::memcmp(s_ + i_, word, len) == 0) {
      i_ += len;
      return true;
    }
    return false;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) fail("less nesting");
    ws();
    if (i_ >= n_) fail("a value");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      v.type_ = Json::Type::Object;
      i_++;
      ws();
      if (i_ < n_ && s_[i_] == '}') { i_++; return v; }
      for (;;) {
        ws();
        if (i_ >= n_ || s_[i_] != '"') fail("a string key");
        std::string key = str();
        ws();
        if (i_ >= n_ || s_[i_] != ':') fail("':'");
        i_++;
        Json item = value(depth + 1);
        auto it = v.index_.find(key);
        if (it != v.index_.end()) {
          v.values_[it->second] = std::move(item);  // last duplicate wins, as in JSON.parse
        } else {
          v.index_[key] = v.values_.size();
          v.keys_.push_back(key);
          v.values_.push_back(std::move(item));
        }
        ws();
        if (i_ < n_ && s_[i_] == ',') { i_++; continue; }
        if (i_ < n_ && s_[i_] == '}') { i_++; return v; }
        fail("',' or '}'");
      }
    }
    if (c == '[') {
      v.type_ = Json::Type::Array;
      i_++;
      ws();
      if (i_ < n_ && s_[i_] == ']') { i_++; return v; }
      for (;;) {
        v.array_.push_back(value(depth + 1));
        ws();
        if (i_ < n_ && s_[i_] == ',') { i_++; continue; }
        if (i_ < n_ && s_[i_] == ']') { i_++; return v; }
        fail("',' or ']'");
      }
    }
    if (c == '"') {
      v.type_ = Json::Type::String;
      v.string_ = str();
      return v;
    }
    if (lit("true")) { v.type_ = Json::Type::Bool; v.bool_ = true; return v; }
    if (lit("false")) { v.type_ = Json::Type::Bool; v.bool_ = false; return v; }
    if (lit("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    // Python's json.dumps writes these for non-finite floats; HF configs sometimes carry them.
    if (lit("NaN")) { v.type_ = Json::Type::Number; v.number_ = std::numeric_limits<double>::quiet_NaN(); return v; }
    if (lit("Infinity")) { v.type_ = Json::Type::Number; v.number_ = std::numeric_limits<double>::infinity(); return v; }
    fail("a value");
  }

  Json number() {
    size_t start = i_;
    bool integral = true;
    if (s_[i_] == '-') i_++;
    if (i_ < n_ && s_[i_] == 'I' && lit("Infinity")) {
      Json v;
      v.type_ = Json::Type::Number;
      v.number_ = -std::numeric_limits<double>::infinity();
      return v;
    }
    if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) fail("a digit");
    while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    if (i_ < n_ && s_[i_] == '.') {
      integral = false;
      i_++;
      if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) fail("a digit after '.'");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    }
    if (i_ < n_ && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integral = false;
      i_++;
      if (i_ < n_ && (s_[i_] == '+' || s_[i_] == '-')) i_++;
      if (i_ >= n_ || !(s_[i_] >= '0' && s_[i_] <= '9')) fail("a digit in the exponent");
      while (i_ < n_ && s_[i_] >= '0' && s_[i_] <= '9') i_++;
    }
    std::string text(s_ + start, i_ - start);
    Json v;
    v.type_ = Json::Type::Number;
    v.number_ = std::strtod(text.c_str(), nullptr);
    if (integral) {
      errno = 0;
      long long x = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v.integer_ = true;
        v.int_ = x;
      }
    }
    return v;
  }

  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  uint32_t hex4() {
    if (n_ - i_ < 4) fail("4 hex digits");
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
      char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
      else { i_--; fail("a hex digit"); }
    }
    return v;
  }

  std::string str() {
    i_++;  // opening quote
    std::string out;
    for (;;) {
      if (i_ >= n_) fail("closing '\"'");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) { i_--; fail("no control character in a string"); }
      if (c != '\\') { out += c; continue; }
      if (i_ >= n_) fail("an escape");
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF && n_ - i_ >= 6 && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            i_ += 2;
            uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            else { utf8(out, cp); cp = lo; }
          }
          utf8(out, cp);
          break;
        }
        default: i_--; fail("a valid escape");
      }
    }
  }
};

Json Json::parse(const char* data, size_t size) { return JsonParser(data, size).document(); }

}  // namespace rrec
