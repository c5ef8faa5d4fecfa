#pragma once
// An SVG loss curve of a run: the training loss per step and the validation loss where it was measured, on axes
// with "nice" ticks (1, 2, 5 × 10^k) and labels, a legend and a title. Self-contained SVG 1.1 (no scripts, no
// external fonts), valid XML; non-finite losses (skipped steps) are left out of the curves.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "host/train/metrics_log.h"

namespace pocketlora {

struct LossCurves {
  std::vector<std::pair<double, double>> train;       // (step, loss)
  std::vector<std::pair<double, double>> validation;  // (step, loss)
};

LossCurves loss_curves(const std::vector<StepMetrics>& records);

std::string loss_plot_svg(const LossCurves& curves, const std::string& title);
// Written atomically, so a viewer refreshing it never sees half a file.
void write_loss_plot(const std::filesystem::path& path, const LossCurves& curves, const std::string& title);

// The 1/2/5 × 10^k step nearest to (hi − lo) / target, and the multiples of it inside [lo, hi] (the axes are
// widened to the multiples around the data, so their ends are ticks).
double nice_step(double lo, double hi, int target = 5);
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace pocketlora
