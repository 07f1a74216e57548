// Line charts as SVG files a person opens in a browser: training curves and the like.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace dearest::cli {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
};

// One panel; y range from the data (or [y_lo, y_hi] when y_lo < y_hi). Written via a temp file.
void write_line_chart(const std::string& path, const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series, double y_lo = 0, double y_hi = 0);

// Grouped bars: one group per category, one bar per series (series[k].values[i] for category i;
// NaN leaves a gap). The value is printed above each bar. y from y_lo to y_hi when y_lo < y_hi.
struct BarSeries {
  std::string name;
  std::vector<double> values;
};
void write_bar_chart(const std::string& path, const std::string& title, const std::string& y_label,
                     const std::vector<std::string>& categories, const std::vector<BarSeries>& series, double y_lo = 0,
                     double y_hi = 0);

// Points in the plane (a t-SNE map): each group its colour (or black crosses when cross is set).
struct PointGroup {
  std::string name;
  std::vector<std::pair<double, double>> points;
  bool cross = false;
};
void write_scatter(const std::string& path, const std::string& title, const std::vector<PointGroup>& groups);

}  // namespace dearest::cli
