#include "host/train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "host/util/atomic_file.h"

namespace pocketlora {

namespace {

constexpr double kWidth = 720, kHeight = 420;
constexpr double kLeft = 72, kRight = 24, kTop = 44, kBottom = 56;
constexpr const char* kTrainColour = "#1f77b4";
constexpr const char* kValColour = "#ff7f0e";

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters other than tab/newline are not allowed in XML 1.0 at all.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A tick label: at most 6 significant digits, and no "-0".
std::string label(double v, double step) {
  if (std::abs(v) < step * 1e-9) v = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

struct Range {
  double lo = 0, hi = 1;
};

Range padded(double lo, double hi) {
  if (!(hi > lo)) {  // one value (or none): give it room so the scale is defined
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.5;
    return {lo - pad, hi + pad};
  }
  return {lo, hi};
}

}  // namespace

double nice_step(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double frac = raw / mag;  // in [1, 10): round to the nearest of 1, 2, 5, 10
  return (frac < 1.5 ? 1 : frac < 3 ? 2 : frac < 7 ? 5 : 10) * mag;
}

namespace {
std::vector<double> ticks_with_step(double lo, double hi, double step) {
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9), last = std::floor(hi / step + 1e-9);
  for (double k = first; k <= last; ++k) ticks.push_back(k * step);
  return ticks;
}
}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  return ticks_with_step(lo, hi, nice_step(lo, hi, target));
}

LossCurves loss_curves(const std::vector<StepMetrics>& records) {
  LossCurves c;
  for (const auto& r : records) {
    if (!r.skipped && std::isfinite(r.loss)) c.train.emplace_back(static_cast<double>(r.step), r.loss);
    if (r.val_loss && std::isfinite(*r.val_loss)) c.validation.emplace_back(static_cast<double>(r.step), *r.val_loss);
  }
  return c;
}

std::string loss_plot_svg(const LossCurves& curves, const std::string& title) {
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  std::size_t points = 0;
  for (const auto* series : {&curves.train, &curves.validation})
    for (const auto& [x, y] : *series) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
      ++points;
    }
  if (points == 0) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  // The axes span the outermost ticks, so every tick lies on the plot and the data stay inside.
  const Range xr0 = padded(xmin, xmax), yr0 = padded(ymin, ymax);
  const double xstep = nice_step(xr0.lo, xr0.hi), ystep = nice_step(yr0.lo, yr0.hi);
  const Range xr{std::floor(xr0.lo / xstep + 1e-9) * xstep, std::ceil(xr0.hi / xstep - 1e-9) * xstep};
  const Range yr{std::floor(yr0.lo / ystep + 1e-9) * ystep, std::ceil(yr0.hi / ystep - 1e-9) * ystep};
  const auto xt = ticks_with_step(xr.lo, xr.hi, xstep), yt = ticks_with_step(yr.lo, yr.hi, ystep);
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  const auto px = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  const auto py = [&](double y) { return kTop + (yr.hi - y) / (yr.hi - yr.lo) * ph; };

  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(kWidth) + "\" height=\"" +
       num(kHeight) + "\" viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) + "\" font-family=\"sans-serif\">\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + num(kWidth) + "\" height=\"" + num(kHeight) + "\" fill=\"white\"/>\n";
  s += "<text class=\"title\" x=\"" + num(kWidth / 2) + "\" y=\"26\" font-size=\"16\" text-anchor=\"middle\">" +
       xml_escape(title) + "</text>\n";
  // Grid, ticks and tick labels.
  s += "<g class=\"x-axis\" font-size=\"12\" text-anchor=\"middle\">\n";
  for (double t : xt) {
    const std::string x = num(px(t));
    s += "<line x1=\"" + x + "\" y1=\"" + num(kTop) + "\" x2=\"" + x + "\" y2=\"" + num(kTop + ph) +
         "\" stroke=\"#e5e5e5\"/>\n";
    s += "<line x1=\"" + x + "\" y1=\"" + num(kTop + ph) + "\" x2=\"" + x + "\" y2=\"" + num(kTop + ph + 5) +
         "\" stroke=\"black\"/>\n";
    s += "<text class=\"tick\" x=\"" + x + "\" y=\"" + num(kTop + ph + 19) + "\">" + label(t, xstep) + "</text>\n";
  }
  s += "<text class=\"label\" x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kHeight - 12) + "\">step</text>\n</g>\n";
  s += "<g class=\"y-axis\" font-size=\"12\" text-anchor=\"end\">\n";
  for (double t : yt) {
    const std::string y = num(py(t));
    s += "<line x1=\"" + num(kLeft) + "\" y1=\"" + y + "\" x2=\"" + num(kLeft + pw) + "\" y2=\"" + y +
         "\" stroke=\"#e5e5e5\"/>\n";
    s += "<line x1=\"" + num(kLeft - 5) + "\" y1=\"" + y + "\" x2=\"" + num(kLeft) + "\" y2=\"" + y +
         "\" stroke=\"black\"/>\n";
    s += "<text class=\"tick\" x=\"" + num(kLeft - 8) + "\" y=\"" + num(py(t) + 4) + "\">" + label(t, ystep) +
         "</text>\n";
  }
  s += "<text class=\"label\" x=\"18\" y=\"" + num(kTop + ph / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 18 " +
       num(kTop + ph / 2) + ")\">loss</text>\n</g>\n";
  s += "<rect class=\"frame\" x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(pw) + "\" height=\"" +
       num(ph) + "\" fill=\"none\" stroke=\"black\"/>\n";

  const auto polyline = [&](const std::vector<std::pair<double, double>>& pts, const char* cls, const char* colour) {
    std::string p;
    for (const auto& [x, y] : pts)
      if (std::isfinite(x) && std::isfinite(y)) {
        if (!p.empty()) p += ' ';
        p += num(px(x));
        p += ',';
        p += num(py(y));
      }
    if (p.empty()) return;
    s += std::string("<polyline class=\"") + cls + "\" fill=\"none\" stroke=\"" + colour +
         "\" stroke-width=\"1.5\" points=\"" + p + "\"/>\n";
  };
  polyline(curves.train, "train", kTrainColour);
  polyline(curves.validation, "validation", kValColour);
  for (const auto& [x, y] : curves.validation)
    if (std::isfinite(x) && std::isfinite(y))
      s += "<circle class=\"validation-point\" cx=\"" + num(px(x)) + "\" cy=\"" + num(py(y)) + "\" r=\"3\" fill=\"" +
           kValColour + "\"/>\n";

  s += "<g class=\"legend\" font-size=\"12\">\n";
  const double lx = kLeft + pw - 150, ly = kTop + 12;
  s += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 24) + "\" y2=\"" + num(ly) +
       "\" stroke=\"" + kTrainColour + "\" stroke-width=\"2\"/>\n";
  s += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly + 4) + "\">train</text>\n";
  s += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly + 18) + "\" x2=\"" + num(lx + 24) + "\" y2=\"" + num(ly + 18) +
       "\" stroke=\"" + kValColour + "\" stroke-width=\"2\"/>\n";
  s += "<text x=\"" + num(lx + 30) + "\" y=\"" + num(ly + 22) + "\">validation</text>\n</g>\n";
  if (points == 0)
    s += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kTop + ph / 2) +
         "\" text-anchor=\"middle\" font-size=\"14\">no data yet</text>\n";
  s += "</svg>\n";
  return s;
}

void write_loss_plot(const std::filesystem::path& path, const LossCurves& curves, const std::string& title) {
  write_file_atomic(path, loss_plot_svg(curves, title));
}

}  // namespace pocketlora
