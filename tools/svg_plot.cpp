#include "tools/svg_plot.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace dearest::cli {

namespace {
std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
const char* color(size_t k) {
  static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  return colors[k % 8];
}

// The opening of every chart: the canvas, a white background and the title centred at title_x.
void open_svg(std::ostringstream& os, double W, double H, double title_x, const std::string& title) {
  os << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
     << "<rect width='100%' height='100%' fill='white'/>\n"
     << "<text x='" << title_x << "' y='22' text-anchor='middle' font-size='15'>" << esc(title) << "</text>\n";
}

void save(const std::string& path, const std::string& svg) {
  // The process id in the temporary's name: two studies over one folder write the same figures.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    DEAREST_CHECK(out.good(), tmp, ": cannot write");
    out << svg;
  }
  DEAREST_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename the plot into place");
}

}  // namespace

void write_line_chart(const std::string& path, const std::string& title, const std::string& x_label,
                      const std::string& y_label, const std::vector<Series>& series, double y_lo, double y_hi) {
  const double W = 720, H = 420, L = 70, R = 170, T = 40, B = 50;
  double x0 = INFINITY, x1 = -INFINITY, a = INFINITY, b = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), a = std::min(a, y), b = std::max(b, y);
    }
  if (y_lo < y_hi) a = y_lo, b = y_hi;
  if (!(x0 < x1)) x0 -= 1, x1 += 1;
  if (!(a < b)) a -= 1, b += 1;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - a) / (b - a) * (H - T - B); };
  std::ostringstream os;
  open_svg(os, W, H, W / 2, title);
  for (int i = 0; i <= 5; ++i) {  // grid and tick labels
    const double y = a + (b - a) * i / 5, x = x0 + (x1 - x0) * i / 5;
    char ly[32], lx[32];
    std::snprintf(ly, sizeof ly, "%.3g", y);
    std::snprintf(lx, sizeof lx, "%.3g", x);
    os << "<line x1='" << L << "' x2='" << W - R << "' y1='" << py(y) << "' y2='" << py(y) << "' stroke='#ddd'/>"
       << "<text x='" << L - 6 << "' y='" << py(y) + 4 << "' text-anchor='end'>" << ly << "</text>\n"
       << "<text x='" << px(x) << "' y='" << H - B + 16 << "' text-anchor='middle'>" << lx << "</text>\n";
  }
  os << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
     << "' fill='none' stroke='#333'/>\n"
     << "<text x='" << (L + W - R) / 2 << "' y='" << H - 12 << "' text-anchor='middle'>" << esc(x_label) << "</text>\n"
     << "<text transform='translate(16," << (T + H - B) / 2 << ") rotate(-90)' text-anchor='middle'>" << esc(y_label)
     << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const char* c = color(k);
    os << "<polyline fill='none' stroke='" << c << "' stroke-width='2' points='";
    for (auto [x, y] : series[k].points) os << px(x) << "," << py(std::min(b, std::max(a, y))) << " ";
    os << "'/>\n<line x1='" << W - R + 12 << "' x2='" << W - R + 32 << "' y1='" << T + 12 + 18 * k << "' y2='"
       << T + 12 + 18 * k << "' stroke='" << c << "' stroke-width='2'/><text x='" << W - R + 38 << "' y='"
       << T + 16 + 18 * k << "'>" << esc(series[k].name) << "</text>\n";
  }
  os << "</svg>\n";
  save(path, os.str());
}

void write_bar_chart(const std::string& path, const std::string& title, const std::string& y_label,
                     const std::vector<std::string>& categories, const std::vector<BarSeries>& series, double y_lo,
                     double y_hi) {
  DEAREST_CHECK(!categories.empty() && !series.empty(), path, ": a bar chart needs categories and series");
  for (const auto& s : series)
    DEAREST_CHECK(s.values.size() == categories.size(), path, ": series \"", s.name, "\" has ", s.values.size(),
                  " values for ", categories.size(), " categories");
  const double slot = std::max(24.0, 360.0 / double(categories.size() * series.size()));
  const double L = 70, R = 170, T = 40, B = 80;
  const double group = slot * double(series.size()) + 18;
  const double W = std::max(520.0, L + R + group * double(categories.size())), H = 420;
  double a = 0, b = -INFINITY;
  for (const auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) a = std::min(a, v), b = std::max(b, v);
  if (y_lo < y_hi) a = y_lo, b = y_hi;
  if (!(a < b)) b = a + 1;
  auto py = [&](double y) { return H - B - (std::min(b, std::max(a, y)) - a) / (b - a) * (H - T - B); };
  std::ostringstream os;
  open_svg(os, W, H, (L + W - R) / 2, title);
  for (int i = 0; i <= 5; ++i) {
    const double y = a + (b - a) * i / 5;
    char ly[32];
    std::snprintf(ly, sizeof ly, "%.3g", y);
    os << "<line x1='" << L << "' x2='" << W - R << "' y1='" << py(y) << "' y2='" << py(y) << "' stroke='#ddd'/>"
       << "<text x='" << L - 6 << "' y='" << py(y) + 4 << "' text-anchor='end'>" << ly << "</text>\n";
  }
  for (size_t i = 0; i < categories.size(); ++i) {
    const double g0 = L + 9 + group * double(i);
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = series[k].values[i];
      if (!std::isfinite(v)) continue;
      const double x = g0 + slot * double(k), top = py(v), base = py(std::max(a, 0.0));
      char lv[32];
      std::snprintf(lv, sizeof lv, "%.1f", v);
      os << "<rect x='" << x << "' y='" << std::min(top, base) << "' width='" << slot - 2 << "' height='"
         << std::fabs(base - top) << "' fill='" << color(k) << "'/>"
         << "<text x='" << x + (slot - 2) / 2 << "' y='" << std::min(top, base) - 3
         << "' text-anchor='middle' font-size='9'>" << lv << "</text>\n";
    }
    os << "<text transform='translate(" << g0 + slot * double(series.size()) / 2 << "," << H - B + 14
       << ") rotate(20)' text-anchor='start'>" << esc(categories[i]) << "</text>\n";
  }
  os << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
     << "' fill='none' stroke='#333'/>\n"
     << "<text transform='translate(16," << (T + H - B) / 2 << ") rotate(-90)' text-anchor='middle'>" << esc(y_label)
     << "</text>\n";
  for (size_t k = 0; k < series.size(); ++k)
    os << "<rect x='" << W - R + 12 << "' y='" << T + 4 + 18 * k << "' width='14' height='12' fill='" << color(k)
       << "'/><text x='" << W - R + 32 << "' y='" << T + 15 + 18 * k << "'>" << esc(series[k].name) << "</text>\n";
  os << "</svg>\n";
  save(path, os.str());
}

void write_scatter(const std::string& path, const std::string& title, const std::vector<PointGroup>& groups) {
  const double W = 640, H = 520, L = 20, R = 170, T = 40, B = 20;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& g : groups)
    for (auto [x, y] : g.points) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (!(x0 < x1)) x0 -= 1, x1 += 1;
  if (!(y0 < y1)) y0 -= 1, y1 += 1;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream os;
  open_svg(os, W, H, (L + W - R) / 2, title);
  os << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B << "' fill='none' stroke='#333'/>\n";
  size_t k = 0;
  for (const auto& g : groups) {
    const std::string c = g.cross ? "#000" : color(k++);
    for (auto [x, y] : g.points) {
      if (g.cross)
        os << "<path d='M" << px(x) - 3 << "," << py(y) - 3 << "l6,6m0,-6l-6,6' stroke='#000' stroke-width='1.2'/>";
      else
        os << "<circle cx='" << px(x) << "' cy='" << py(y) << "' r='2.2' fill='" << c << "' fill-opacity='0.75'/>";
    }
    os << "\n";
  }
  k = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    const double y = T + 12 + 18 * double(i);
    if (groups[i].cross)
      os << "<path d='M" << W - R + 14 << "," << y - 4 << "l8,8m0,-8l-8,8' stroke='#000' stroke-width='1.5'/>";
    else
      os << "<circle cx='" << W - R + 18 << "' cy='" << y << "' r='4' fill='" << color(k++) << "'/>";
    os << "<text x='" << W - R + 32 << "' y='" << y + 4 << "'>" << esc(groups[i].name) << "</text>\n";
  }
  os << "</svg>\n";
  save(path, os.str());
}

}  // namespace dearest::cli
