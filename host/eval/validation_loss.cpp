#include "host/eval/validation_loss.h"

#include <fmt/format.h>

#include <cmath>

#include "host/core/error.h"

namespace pocketlora {

ValidationLossResult validation_loss(TrainStepEngine& engine, const TrainData& data) {
  if (data.seq_len() != engine.options().seq_len)
    throw InvalidArgument(fmt::format("validation loss: data in windows of {} tokens, the engine runs {}",
                                      data.seq_len(), engine.options().seq_len));
  if (!data.validation().empty())
    throw InvalidArgument("validation loss: the data was split (build it with validation_fraction 0)");
  const std::optional<double> loss = engine.loss(data.train(), data.pad_id());
  if (!loss) throw InvalidArgument("validation loss: no target token in the data");
  ValidationLossResult r;
  r.loss = *loss;
  r.ppl = std::exp(*loss);
  r.records = data.stats().records;
  r.windows = static_cast<std::int64_t>(data.train().size());
  r.targets = data.stats().train_targets;
  r.truncated = data.stats().truncated;
  r.dropped_no_targets = data.stats().dropped_no_targets;
  return r;
}

}  // namespace pocketlora
