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

// Tick positions covering [lo, hi] with about `target` intervals of a 1/2/5 × 10^k step (exposed for tests).
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace pocketlora
