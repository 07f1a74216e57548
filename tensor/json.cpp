#include "tensor/json.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "tensor/error.h"

namespace dearest {

namespace {

class Parser {
 public:
  Parser(const std::string& s, const std::string& where) : s_(s), where_(where) {}
  Json parse_document() {
    Json v = value();
    ws();
    if (i_ != s_.size()) error("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void error(const std::string& what) { fail(where_, ": invalid JSON at byte ", i_, ": ", what); }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  char peek() {
    ws();
    if (i_ >= s_.size()) error("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) error(std::string("expected '") + c + "'");
    ++i_;
  }
  bool literal(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (s_.compare(i_, n, w) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }
  Json value() {
    if (++depth_ > 64) error("nesting too deep");
    char c = peek();
    Json v;
    if (c == '{') v = object();
    else if (c == '[') v = array();
    else if (c == '"') v = Json(string());
    else if (literal("true")) v = Json(true);
    else if (literal("false")) v = Json(false);
    else if (literal("null")) v = Json();
    else v = number();
    --depth_;
    return v;
  }
  Json object() {
    expect('{');
    Json o = Json::object();
    if (peek() == '}') {
      ++i_;
      return o;
    }
    while (true) {
      if (peek() != '"') error("expected a key");
      std::string k = string();
      expect(':');
      if (o.contains(k)) error("duplicate key \"" + k + "\"");
      o.set(k, value());
      char c = peek();
      ++i_;
      if (c == '}') return o;
      if (c != ',') error("expected ',' or '}'");
    }
  }
  Json array() {
    expect('[');
    Json a = Json::array();
    if (peek() == ']') {
      ++i_;
      return a;
    }
    while (true) {
      a.push(value());
      char c = peek();
      ++i_;
      if (c == ']') return a;
      if (c != ',') error("expected ',' or ']'");
    }
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) error("unterminated string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) error("unterminated escape");
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
          if (i_ + 4 > s_.size()) error("short \\u escape");
          unsigned cp = std::stoul(s_.substr(i_, 4), nullptr, 16);
          i_ += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 6 <= s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
            unsigned lo = std::stoul(s_.substr(i_ + 2, 4), nullptr, 16);
            i_ += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp < 0x80) out += char(cp);
          else if (cp < 0x800) { out += char(0xC0 | (cp >> 6)); out += char(0x80 | (cp & 0x3F)); }
          else if (cp < 0x10000) { out += char(0xE0 | (cp >> 12)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
          else { out += char(0xF0 | (cp >> 18)); out += char(0x80 | ((cp >> 12) & 0x3F)); out += char(0x80 | ((cp >> 6) & 0x3F)); out += char(0x80 | (cp & 0x3F)); }
          break;
        }
        default: error("bad escape");
      }
    }
  }
  Json number() {
    size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size() && (isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
                              s_[i_] == 'E' || s_[i_] == '+' || s_[i_] == '-'))
      ++i_;
    if (start == i_ || (i_ - start == 1 && s_[start] == '-')) error("unexpected character");
    try {
      size_t used = 0;
      double d = std::stod(s_.substr(start, i_ - start), &used);
      if (used != i_ - start) error("malformed number");
      return Json(d);
    } catch (const std::logic_error&) {
      error("malformed number");
    }
  }
  const std::string& s_;
  const std::string& where_;
  size_t i_ = 0;
  int depth_ = 0;
};

void escape(std::ostringstream& os, const std::string& s) {
  os << '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': os << "\\\""; break;
      case '\\': os << "\\\\"; break;
      case '\n': os << "\\n"; break;
      case '\r': os << "\\r"; break;
      case '\t': os << "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          os << buf;
        } else {
          os << c;
        }
    }
  }
  os << '"';
}

void write(std::ostringstream& os, const Json& j, int indent, int level) {
  auto nl = [&](int l) {
    if (indent >= 0) os << '\n' << std::string(size_t(indent * l), ' ');
  };
  switch (j.type()) {
    case Json::Type::Null: os << "null"; break;
    case Json::Type::Bool: os << (j.as_bool() ? "true" : "false"); break;
    case Json::Type::Number: {
      double d = j.as_number();
      if (!std::isfinite(d)) {
        os << "null";
      } else if (d == std::floor(d) && std::fabs(d) < 9.007199254740992e15) {
        os << static_cast<int64_t>(d);
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", d);
        os << buf;
      }
      break;
    }
    case Json::Type::String: escape(os, j.as_string()); break;
    case Json::Type::Array: {
      os << '[';
      for (size_t i = 0; i < j.items().size(); ++i) {
        if (i) os << (indent >= 0 ? "," : ", ");
        nl(level + 1);
        write(os, j.items()[i], indent, level + 1);
      }
      if (!j.items().empty()) nl(level);
      os << ']';
      break;
    }
    case Json::Type::Object: {
      os << '{';
      for (size_t i = 0; i < j.members().size(); ++i) {
        if (i) os << (indent >= 0 ? "," : ", ");
        nl(level + 1);
        escape(os, j.members()[i].first);
        os << ": ";
        write(os, j.members()[i].second, indent, level + 1);
      }
      if (!j.members().empty()) nl(level);
      os << '}';
      break;
    }
  }
}

}  // namespace

Json Json::parse(const std::string& text, const std::string& where) { return Parser(text, where).parse_document(); }

std::string Json::dump(int indent) const {
  std::ostringstream os;
  write(os, *this, indent, 0);
  return os.str();
}

bool Json::as_bool() const {
  DEAREST_CHECK(type_ == Type::Bool, "json: expected a boolean");
  return bool_;
}
double Json::as_number() const {
  DEAREST_CHECK(type_ == Type::Number, "json: expected a number");
  return num_;
}
int64_t Json::as_int() const {
  DEAREST_CHECK(type_ == Type::Number && num_ == std::floor(num_) && std::fabs(num_) < 9.007199254740992e15,
                "json: expected an integer");
  return static_cast<int64_t>(num_);
}
const std::string& Json::as_string() const {
  DEAREST_CHECK(type_ == Type::String, "json: expected a string");
  return str_;
}
const std::vector<Json>& Json::items() const {
  DEAREST_CHECK(type_ == Type::Array, "json: expected an array");
  return arr_;
}
const std::vector<std::pair<std::string, Json>>& Json::members() const {
  DEAREST_CHECK(type_ == Type::Object, "json: expected an object");
  return obj_;
}
bool Json::contains(const std::string& key) const {
  if (type_ != Type::Object) return false;
  for (const auto& kv : obj_)
    if (kv.first == key) return true;
  return false;
}
const Json& Json::operator[](const std::string& key) const {
  for (const auto& kv : members())
    if (kv.first == key) return kv.second;
  fail("json: missing key \"", key, "\"");
}
Json& Json::set(const std::string& key, Json value) {
  DEAREST_CHECK(type_ == Type::Object, "json: set on a non-object");
  for (auto& kv : obj_)
    if (kv.first == key) return kv.second = std::move(value);
  obj_.emplace_back(key, std::move(value));
  return obj_.back().second;
}
Json& Json::push(Json value) {
  DEAREST_CHECK(type_ == Type::Array, "json: push on a non-array");
  arr_.push_back(std::move(value));
  return arr_.back();
}

}  // namespace dearest
