// A small JSON value with a strict parser and a writer: enough for safetensors headers, run
// manifests and results files. Objects keep their key order (deterministic output).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dearest {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;
  Json(bool b) : type_(Type::Bool), bool_(b) {}
  Json(double d) : type_(Type::Number), num_(d) {}
  Json(int64_t i) : type_(Type::Number), num_(double(i)) {}
  Json(int i) : type_(Type::Number), num_(i) {}
  Json(std::string s) : type_(Type::String), str_(std::move(s)) {}
  Json(const char* s) : type_(Type::String), str_(s) {}
  static Json array() { Json j; j.type_ = Type::Array; return j; }
  static Json object() { Json j; j.type_ = Type::Object; return j; }

  // `where` names the file in error messages.
  static Json parse(const std::string& text, const std::string& where = "json");
  std::string dump(int indent = -1) const;

  Type type() const { return type_; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_string() const { return type_ == Type::String; }
  bool is_number() const { return type_ == Type::Number; }
  bool as_bool() const;
  double as_number() const;
  int64_t as_int() const;  // must be integral
  const std::string& as_string() const;
  const std::vector<Json>& items() const;                          // array
  const std::vector<std::pair<std::string, Json>>& members() const;  // object
  bool contains(const std::string& key) const;
  const Json& operator[](const std::string& key) const;  // throws naming the key when absent
  Json& set(const std::string& key, Json value);         // object: insert or replace
  Json& push(Json value);                                 // array

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  double num_ = 0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

}  // namespace dearest
