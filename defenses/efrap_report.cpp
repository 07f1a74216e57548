#include <cstdio>
#include <sstream>

#include "defenses/efrap.h"

namespace dearest::defenses {

std::string EfrapOptions::describe() const {
  std::ostringstream s;
  s << iterations << " iterations/layer, Adam lr " << lr << ", lambda_A " << lambda_a << ", lambda_F " << lambda_f
    << ", lambda_P " << lambda_p << ", error weighting " << error_weighting_name(weighting) << ", seed " << seed;
  if (plateau_window > 0) s << ", plateau stop " << plateau_window << "/" << plateau_tol;
  if (block_wise) s << ", block-wise activation preservation";
  return s.str();
}

Json EfrapOptions::to_json() const {
  Json j = Json::object();
  j.set("iterations", iterations);
  j.set("lr", lr);
  j.set("lambda_a", lambda_a);
  j.set("lambda_f", lambda_f);
  j.set("lambda_p", lambda_p);
  j.set("error_weighting", error_weighting_name(weighting));
  j.set("plateau_window", plateau_window);
  j.set("plateau_tol", plateau_tol);
  j.set("seed", int64_t(seed));
  j.set("objective", objective == ObjectiveKind::Auto ? "auto" : objective == ObjectiveKind::Gram ? "gram"
                     : objective == ObjectiveKind::Fused ? "fused" : "graph");
  j.set("gram_budget_mb", gram_budget_mb);
  j.set("block_wise", block_wise);
  j.set("curve_every", curve_every);
  return j;
}

Json EfrapLayerReport::to_json() const {
  Json j = Json::object();
  j.set("name", name);
  j.set("unit", unit);
  j.set("objective", objective);
  j.set("weight_bits", weight_bits);
  j.set("input_bits", input_bits);
  j.set("weights", weights);
  j.set("iterations", iterations);
  j.set("seconds", seconds);
  j.set("setup_seconds", setup_seconds);
  j.set("loop_seconds", loop_seconds);
  j.set("flip_rate", flip_rate);
  j.set("on_grid", on_grid);
  j.set("act_error_nearest", act_error_nearest);
  j.set("act_error_learned", act_error_learned);
  Json c = Json::array();
  for (auto& p : curve) {
    Json e = Json::array();
    e.push(p.iteration);
    e.push(p.act);
    e.push(p.flip);
    e.push(p.round);
    c.push(e);
  }
  j.set("curve", c);
  return j;
}

EfrapLayerReport EfrapLayerReport::from_json(const Json& j) {
  EfrapLayerReport r;
  r.name = j["name"].as_string();
  r.unit = j["unit"].as_string();
  if (j.contains("objective")) r.objective = j["objective"].as_string();
  r.weight_bits = int(j["weight_bits"].as_int());
  r.input_bits = int(j["input_bits"].as_int());
  r.weights = j["weights"].as_int();
  r.iterations = j["iterations"].as_int();
  r.seconds = j["seconds"].as_number();
  if (j.contains("setup_seconds")) r.setup_seconds = j["setup_seconds"].as_number();
  if (j.contains("loop_seconds")) r.loop_seconds = j["loop_seconds"].as_number();
  r.flip_rate = j["flip_rate"].as_number();
  r.on_grid = j["on_grid"].as_number();
  r.act_error_nearest = j["act_error_nearest"].as_number();
  r.act_error_learned = j["act_error_learned"].as_number();
  for (auto& e : j["curve"].items())
    r.curve.push_back({e.items()[0].as_int(), e.items()[1].as_number(), e.items()[2].as_number(), e.items()[3].as_number()});
  return r;
}

std::string efrap_layer_table(const std::vector<EfrapLayerReport>& reports) {
  std::string s =
      "| layer | form | bits W/A | weights | on grid % | flip rate % | L_A nearest | L_A learned | iterations | seconds |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (auto& r : reports) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %d/%d | %ld | %.2f | %.2f | %.5g | %.5g | %ld | %.1f |\n", r.name.c_str(),
                  r.objective.c_str(), r.weight_bits, r.input_bits, long(r.weights), 100 * r.on_grid, 100 * r.flip_rate,
                  r.act_error_nearest, r.act_error_learned, long(r.iterations), r.seconds);
    s += buf;
  }
  return s;
}

Json efrap_reports_json(const std::vector<EfrapLayerReport>& reports) {
  Json r = Json::array();
  for (auto& rep : reports) r.push(rep.to_json());
  return r;
}

std::vector<EfrapLayerReport> efrap_reports_from_json(const Json& j) {
  std::vector<EfrapLayerReport> out;
  for (auto& e : j.items()) out.push_back(EfrapLayerReport::from_json(e));
  return out;
}

}  // namespace dearest::defenses
