#include "attacks/params.h"

#include <cstdlib>
#include <sstream>

#include "tensor/error.h"

namespace dearest::attacks {

Params::Params(std::string owner, std::vector<ParamDef> defs) : owner_(std::move(owner)), defs_(std::move(defs)) {}

const ParamDef& Params::def(const std::string& name) const {
  for (const auto& d : defs_)
    if (d.name == name) return d;
  std::string known;
  for (const auto& d : defs_) known += (known.empty() ? "" : ", ") + d.name;
  fail(owner_, ": unknown parameter \"", name, "\" (known: ", known, ")");
}

bool Params::has(const std::string& name) const {
  for (const auto& d : defs_)
    if (d.name == name) return true;
  return false;
}

void Params::set(const std::string& name, const std::string& value) { const_cast<ParamDef&>(def(name)).value = value; }

void Params::set(const std::string& assignment) {
  const size_t eq = assignment.find('=');
  DEAREST_CHECK(eq != std::string::npos && eq > 0, owner_, ": expected name=value, got \"", assignment, "\"");
  set(assignment.substr(0, eq), assignment.substr(eq + 1));
}

const std::string& Params::str(const std::string& name) const { return def(name).value; }

double Params::num(const std::string& name) const {
  const std::string& v = str(name);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  DEAREST_CHECK(!v.empty() && end && *end == 0, owner_, ": ", name, " must be a number, got \"", v, "\"");
  return d;
}

int64_t Params::integer(const std::string& name) const {
  const std::string& v = str(name);
  char* end = nullptr;
  const long long i = std::strtoll(v.c_str(), &end, 10);
  DEAREST_CHECK(!v.empty() && end && *end == 0, owner_, ": ", name, " must be an integer, got \"", v, "\"");
  return i;
}

bool Params::flag(const std::string& name) const {
  const std::string& v = str(name);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  fail(owner_, ": ", name, " must be true or false, got \"", v, "\"");
}

std::vector<std::string> Params::list(const std::string& name) const {
  std::vector<std::string> out;
  std::istringstream is(str(name));
  std::string item;
  while (std::getline(is, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int64_t> Params::integers(const std::string& name) const {
  std::vector<int64_t> out;
  for (const auto& s : list(name)) {
    char* end = nullptr;
    const long long i = std::strtoll(s.c_str(), &end, 10);
    DEAREST_CHECK(end && *end == 0, owner_, ": ", name, " must be integers separated by commas, got \"", str(name), "\"");
    out.push_back(i);
  }
  return out;
}

std::string Params::table() const {
  size_t w = 0, v = 0;
  for (const auto& d : defs_) {
    w = std::max(w, d.name.size());
    v = std::max(v, d.value.size());
  }
  std::ostringstream os;
  for (const auto& d : defs_)
    os << "  " << d.name << std::string(w - d.name.size() + 2, ' ') << d.value << std::string(v - d.value.size() + 2, ' ')
       << d.help << "\n";
  return os.str();
}

Json Params::to_json() const {
  Json j = Json::object();
  for (const auto& d : defs_) j.set(d.name, d.value);
  return j;
}

}  // namespace dearest::attacks
