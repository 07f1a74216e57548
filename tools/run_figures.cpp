#include "tools/run_figures.h"

#include <map>
#include <vector>

#include "tools/svg_plot.h"

namespace dearest::cli {

void write_attack_curve(const Json& summary, const std::string& svg) {
  std::vector<std::string> order;  // series in first-seen order: float first
  std::map<std::string, Series> series;
  auto add = [&](double x, const Json& verdict) {
    for (const auto& [k, m] : verdict.members())
      for (const char* what : {"cda", "asr"}) {
        const std::string name = k + (what[0] == 'c' ? " CDA" : " ASR");
        if (!series.count(name)) {
          order.push_back(name);
          series[name] = Series{name, {}};
        }
        series[name].points.emplace_back(x, 100 * m[what].as_number());
      }
  };
  if (summary.contains("start_verdict")) add(0, summary["start_verdict"]);
  double epoch = 0;
  if (summary.contains("stages"))
    for (const auto& [stage, s] : summary["stages"].members()) {
      if (!s.is_object() || !s.contains("epochs")) continue;
      for (const Json& e : s["epochs"].items()) add(++epoch, e["verdict"]);
    }
  std::vector<Series> out;
  for (const auto& n : order) out.push_back(series[n]);
  if (out.empty()) return;
  const std::string attack = summary.contains("attack") ? summary["attack"].as_string() : "attack";
  write_line_chart(svg, attack + ": CDA and ASR by epoch (0: the start model)",
                   "epoch", "%", out, 0, 100);
}

}  // namespace dearest::cli
