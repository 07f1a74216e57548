#include "nn/schedule.h"

#include <cmath>
#include <sstream>

#include "tensor/error.h"

namespace dearest::nn {

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}
double number(const std::string& s, const std::string& where) {
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  fail("schedule: \"", s, "\" in \"", where, "\" is not a number");
}
}  // namespace

Schedule Schedule::parse(const std::string& text) {
  Schedule s;
  std::string main = text;
  const size_t plus = text.find("+warmup");
  if (plus != std::string::npos) {
    auto w = split(text.substr(plus + 1), ':');
    DEAREST_CHECK(w.size() >= 2, "schedule: warm-up needs a length: +warmup:N[:START] in \"", text, "\"");
    s.warmup_epochs = int64_t(number(w[1], text));
    if (w.size() > 2) s.warmup_start = number(w[2], text);
    main = text.substr(0, plus);
  }
  auto p = split(main.empty() ? "constant" : main, ':');
  s.kind = p[0];
  if (s.kind == "constant") {
  } else if (s.kind == "step") {
    DEAREST_CHECK(p.size() >= 2, "schedule: step needs a size: step:SIZE[:GAMMA]");
    s.step_size = int64_t(number(p[1], text));
    if (p.size() > 2) s.gamma = number(p[2], text);
    DEAREST_CHECK(s.step_size > 0, "schedule: step size must be positive");
  } else if (s.kind == "multistep") {
    DEAREST_CHECK(p.size() >= 2, "schedule: multistep needs milestones: multistep:M1/M2[:GAMMA]");
    for (const auto& m : split(p[1], '/')) s.milestones.push_back(int64_t(number(m, text)));
    if (p.size() > 2) s.gamma = number(p[2], text);
  } else if (s.kind == "cosine") {
    if (p.size() > 1) s.eta_min = number(p[1], text);
  } else if (s.kind == "exp") {
    DEAREST_CHECK(p.size() >= 2, "schedule: exp needs a gamma: exp:GAMMA");
    s.gamma = number(p[1], text);
  } else {
    fail("schedule: unknown kind \"", s.kind, "\" (constant, step, multistep, cosine, exp; +warmup:N)");
  }
  return s;
}

std::string Schedule::str() const {
  std::ostringstream os;
  os << kind;
  if (kind == "step") os << ":" << step_size << ":" << gamma;
  if (kind == "multistep") {
    os << ":";
    for (size_t i = 0; i < milestones.size(); ++i) os << (i ? "/" : "") << milestones[i];
    os << ":" << gamma;
  }
  if (kind == "cosine") os << ":" << eta_min;
  if (kind == "exp") os << ":" << gamma;
  if (warmup_epochs > 0) os << "+warmup:" << warmup_epochs << ":" << warmup_start;
  return os.str();
}

double Schedule::lr(double base, int64_t epoch, int64_t epochs, double fraction) const {
  double v = base;
  if (kind == "step") {
    v = base * std::pow(gamma, double(epoch / step_size));
  } else if (kind == "multistep") {
    int64_t passed = 0;
    for (int64_t m : milestones) passed += epoch >= m;
    v = base * std::pow(gamma, double(passed));
  } else if (kind == "cosine") {
    v = eta_min + (base - eta_min) * (1 + std::cos(M_PI * double(epoch) / double(std::max<int64_t>(1, epochs)))) / 2;
  } else if (kind == "exp") {
    v = base * std::pow(gamma, double(epoch));
  }
  if (epoch < warmup_epochs) {
    const double t = (double(epoch) + fraction) / double(warmup_epochs);
    v *= warmup_start + (1 - warmup_start) * t;
  }
  return v;
}

}  // namespace dearest::nn
