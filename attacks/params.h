// An attack's hyperparameters: a table of names with the reference default and what each means,
// overridden by key=value. Unknown names and values that do not parse are errors that list what
// is accepted, so a typo never silently runs the default.
#pragma once
#include <string>
#include <vector>

#include "tensor/json.h"

namespace dearest::attacks {

struct ParamDef {
  std::string name, value, help;
};

class Params {
 public:
  Params(std::string owner, std::vector<ParamDef> defs);
  void set(const std::string& name, const std::string& value);
  void set(const std::string& assignment);  // "name=value"
  bool has(const std::string& name) const;

  const std::string& str(const std::string& name) const;
  double num(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  bool flag(const std::string& name) const;  // true/false/1/0/yes/no
  std::vector<std::string> list(const std::string& name) const;  // comma separated
  std::vector<int64_t> integers(const std::string& name) const;

  const std::vector<ParamDef>& defs() const { return defs_; }
  std::string table() const;  // name, value, help: for --help and the docs
  Json to_json() const;

 private:
  std::string owner_;
  std::vector<ParamDef> defs_;
  const ParamDef& def(const std::string& name) const;
};

}  // namespace dearest::attacks
