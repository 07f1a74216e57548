#include "attacks/projection.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "autograd/grad_mode.h"

namespace dearest::attacks {

std::vector<BinGrid> parse_bin_grids(const std::string& text) {
  std::vector<BinGrid> out;
  std::istringstream is(text);
  for (std::string item; std::getline(is, item, ',');) {
    if (item.empty()) continue;
    std::vector<std::string> f;
    std::istringstream fs(item);
    for (std::string s; std::getline(fs, s, ':');) f.push_back(s);
    DEAREST_CHECK(f.size() == 3, "grids: expected APPLIES:channel|tensor:LEVELS items (e.g. all:channel:127.5), got \"", item, "\"");
    BinGrid g;
    if (f[0] == "all") g.applies = BinGrid::Applies::All;
    else if (f[0] == "conv") g.applies = BinGrid::Applies::Conv;
    else if (f[0] == "linear") g.applies = BinGrid::Applies::Linear;
    else fail("grids: \"", f[0], "\" is not all, conv or linear");
    DEAREST_CHECK(f[1] == "channel" || f[1] == "tensor", "grids: \"", f[1], "\" is not channel or tensor");
    g.per_channel = f[1] == "channel";
    char* end = nullptr;
    g.levels = std::strtod(f[2].c_str(), &end);
    DEAREST_CHECK(end && *end == 0 && g.levels > 0, "grids: levels must be a positive number, got \"", f[2], "\"");
    out.push_back(g);
  }
  DEAREST_CHECK(!out.empty(), "grids: none given");
  return out;
}

BinProjection::BinProjection(nn::Module& model, std::vector<BinGrid> grids, double margin) {
  DEAREST_CHECK(margin >= 0 && margin < 0.5, "projection: margin must be in [0, 0.5), got ", margin);
  NoGradGuard ng;
  std::vector<std::pair<std::string, std::string>> kinds;  // weight name -> Conv2d/Linear
  for (auto& [name, m] : model.named_modules())
    if (m->type() == "Conv2d" || m->type() == "Linear") kinds.emplace_back(name.empty() ? "weight" : name + ".weight", m->type());
  for (auto& [name, t] : model.named_parameters(true)) {
    Entry e;
    e.param = t;
    e.anchor = t.detach().clone();
    std::string kind;
    for (auto& [n, k] : kinds)
      if (n == name) kind = k;
    if (!kind.empty()) {
      e.projected = true;
      const Tensor w0 = e.anchor.contiguous();
      const int64_t n = w0.numel(), C = w0.size(0), per = n / C;
      const float* a = w0.data<float>();
      std::vector<double> lo(size_t(n), -std::numeric_limits<double>::infinity()),
          hi(size_t(n), std::numeric_limits<double>::infinity());
      std::vector<uint8_t> pinned(size_t(n), 0);
      for (const auto& g : grids) {
        if (g.applies == BinGrid::Applies::Conv && kind != "Conv2d") continue;
        if (g.applies == BinGrid::Applies::Linear && kind != "Linear") continue;
        const int64_t groups = g.per_channel ? C : 1, size = n / groups;
        for (int64_t c = 0; c < groups; ++c) {
          float mx = 0;
          for (int64_t i = c * size; i < (c + 1) * size; ++i) mx = std::max(mx, std::fabs(a[i]));
          if (mx == 0) continue;
          const double s = double(mx) / g.levels;
          for (int64_t i = c * size; i < (c + 1) * size; ++i) {
            if (std::fabs(a[i]) == mx) pinned[size_t(i)] = 1;
            const double r = std::nearbyint(double(a[i]) / s);  // half-even, as torch.round
            lo[size_t(i)] = std::max({lo[size_t(i)], (r - 0.5 + margin) * s, -double(mx)});
            hi[size_t(i)] = std::min({hi[size_t(i)], (r + 0.5 - margin) * s, double(mx)});
          }
        }
      }
      (void)per;
      e.lo = Tensor::empty({n});
      e.hi = Tensor::empty({n});
      float* lp = e.lo.data<float>();
      float* hp = e.hi.data<float>();
      for (int64_t i = 0; i < n; ++i) {
        // Pinned, or a margin that leaves no room (|W0| within m of a bin edge on two grids): W0.
        if (pinned[size_t(i)] || lo[size_t(i)] > hi[size_t(i)]) {
          lp[i] = hp[i] = a[i];
        } else {
          // Bounds rounded inward in f32, so the f32 weight is inside the exact bin.
          lp[i] = std::nextafter(float(lo[size_t(i)]), std::numeric_limits<float>::infinity());
          hp[i] = std::nextafter(float(hi[size_t(i)]), -std::numeric_limits<float>::infinity());
          if (lp[i] > hp[i]) lp[i] = hp[i] = a[i];
        }
      }
      names_.push_back(name);
    }
    entries_.push_back(std::move(e));
  }
  DEAREST_CHECK(!names_.empty(), "projection: the model has no conv or linear weight");
}

void BinProjection::apply() {
  NoGradGuard ng;
  for (auto& e : entries_) {
    if (!e.projected) {
      e.param.copy_(e.anchor);
      continue;
    }
    Tensor w = e.param.contiguous().clone();
    float* d = w.data<float>();
    const float* lp = e.lo.data<float>();
    const float* hp = e.hi.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) d[i] = std::min(std::max(d[i], lp[i]), hp[i]);
    e.param.copy_(w);
  }
}

int64_t BinProjection::violations() const {
  int64_t v = 0;
  for (const auto& e : entries_) {
    if (!e.projected) continue;
    Tensor w = e.param.detach().contiguous();
    const float* d = w.data<float>();
    const float* lp = e.lo.data<float>();
    const float* hp = e.hi.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) v += d[i] < lp[i] || d[i] > hp[i];
  }
  return v;
}

}  // namespace dearest::attacks
