// A small JSON reader for config.json, safetensors headers and index files.
// Parses the whole document into a tree; errors carry the byte offset and what was expected.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace rrec {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  static Json parse(const char* data, size_t size);  // throws JsonError("... at byte N")
  static Json parse(const std::string& s) { return parse(s.data(), s.size()); }

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }
  static const char* typeName(Type t);

  bool boolean() const { return bool_; }
  double number() const { return number_; }
  // True when the literal had no fraction or exponent and fits in int64.
  bool isInteger() const { return type_ == Type::Number && integer_; }
  int64_t integer() const { return int_; }
  const std::string& string() const { return string_; }
  const std::vector<Json>& array() const { return array_; }
  // Keys in document order are kept in `keys()`; lookup through find().
  const std::vector<std::string>& keys() const { return keys_; }
  const Json* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

 private:
  friend class JsonParser;
  Type type_ = Type::Null;
  bool bool_ = false;
  bool integer_ = false;
  double number_ = 0;
  int64_t int_ = 0;
  std::string string_;
  std::vector<Json> array_;
  std::vector<std::string> keys_;
  std::vector<Json> values_;  // parallel to keys_
  std::map<std::string, size_t> index_;
};

}  // namespace rrec
