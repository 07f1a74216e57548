// PQBackdoor's projection: however far a step moves the weights, after apply() every weight's
// integer on each kept grid and every scale are the anchor's, and the other parameters are reset.
#include "attacks/projection.h"

#include "nn/init.h"
#include "nn/models.h"
#include "tests/test_util.h"

namespace dearest::attacks {
namespace {

// Integers of w on a grid: round_half_even(w / (max|w| / levels)) per channel or tensor.
std::vector<double> integers(const Tensor& w, bool per_channel, double levels, std::vector<double>* scales) {
  Tensor c = w.contiguous();
  const int64_t n = c.numel(), groups = per_channel ? c.size(0) : 1, size = n / groups;
  const float* a = c.data<float>();
  std::vector<double> q(static_cast<size_t>(n), 0.0);
  for (int64_t g = 0; g < groups; ++g) {
    float mx = 0;
    for (int64_t i = g * size; i < (g + 1) * size; ++i) mx = std::max(mx, std::fabs(a[i]));
    const float s = float(mx / levels), inv = 1.0f / s;
    scales->push_back(s);
    for (int64_t i = g * size; i < (g + 1) * size; ++i) q[size_t(i)] = std::nearbyint(a[i] * inv);
  }
  return q;
}

TEST(Projection, KeepsEveryIntegerAndScaleOnEveryGrid) {
  nn::set_init_seed(1);
  auto m = nn::build_model(nn::ModelSpec::parse("resnet18:width=4"));
  const auto grids = parse_bin_grids("all:channel:127.5,all:tensor:127.5");
  BinProjection proj(*m, grids, 1e-3);
  auto before = m->state_dict();
  std::vector<Tensor> anchor;
  for (auto& [n, t] : before) anchor.push_back(t.clone());
  // A large random step on everything.
  {
    NoGradGuard ng;
    uint64_t seed = 100;
    for (auto& [n, p] : m->named_parameters(true)) p.copy_(add(p, mul(test::randn(p.shape(), seed++), 0.05)));
  }
  EXPECT_GT(proj.violations(), 0);
  proj.apply();
  EXPECT_EQ(proj.violations(), 0);
  auto after = m->state_dict();
  int64_t moved = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    const std::string& name = after[i].first;
    const bool layer_weight = std::find(proj.weight_names().begin(), proj.weight_names().end(), name) != proj.weight_names().end();
    if (!layer_weight) {
      if (name.find("running") == std::string::npos && name.find("num_batches") == std::string::npos) {
        EXPECT_TRUE(test::bitwise_equal(after[i].second, anchor[i])) << name << " was not reset";
      }
      continue;
    }
    moved += test::max_abs_diff(after[i].second, anchor[i]) > 0;
    for (bool pc : {true, false}) {
      std::vector<double> s0, s1;
      EXPECT_EQ(integers(anchor[i], pc, 127.5, &s0), integers(after[i].second, pc, 127.5, &s1)) << name;
      EXPECT_EQ(s0, s1) << name << ": a scale moved";
    }
  }
  EXPECT_GT(moved, 10) << "the projection undid the whole step";
}

TEST(Projection, GridsParseAndErrors) {
  auto g = parse_bin_grids("conv:channel:127,linear:tensor:127");
  ASSERT_EQ(g.size(), 2u);
  EXPECT_TRUE(g[0].applies == BinGrid::Applies::Conv && g[0].per_channel && g[0].levels == 127);
  EXPECT_TRUE(g[1].applies == BinGrid::Applies::Linear && !g[1].per_channel);
  EXPECT_ERROR_CONTAINS(parse_bin_grids("all:row:127"), "not channel or tensor");
  EXPECT_ERROR_CONTAINS(parse_bin_grids("some:channel:127"), "not all, conv or linear");
  EXPECT_ERROR_CONTAINS(parse_bin_grids("all:channel:-1"), "positive");
  nn::set_init_seed(1);
  auto m = nn::build_model(nn::ModelSpec::parse("resnet18:width=4"));
  EXPECT_ERROR_CONTAINS(BinProjection(*m, g, 0.7), "margin");
}

}  // namespace
}  // namespace dearest::attacks
