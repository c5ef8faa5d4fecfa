#include "train/host_loss.h"

#include <algorithm>
#include <cmath>

namespace pocketlora::test {

double host_cross_entropy(const Tensor& logits, const std::vector<std::int32_t>& labels, Tensor* dlogits,
                          std::int64_t denominator) {
  const std::int64_t N = logits.dim(0), V = logits.dim(1);
  const Tensor z64 = logits.to(DType::F64);
  const double* z = z64.data<double>();
  Tensor d = Tensor::zeros({N, V}, DType::F64);
  std::int64_t count = denominator;
  if (count == 0)
    for (auto l : labels) count += l >= 0;
  double loss = 0;
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int32_t y = labels[static_cast<std::size_t>(i)];
    if (y < 0) continue;
    const double* row = z + i * V;
    const double mx = *std::max_element(row, row + V);
    double sum = 0;
    for (std::int64_t j = 0; j < V; ++j) sum += std::exp(row[j] - mx);
    loss += mx + std::log(sum) - row[y];
    for (std::int64_t j = 0; j < V; ++j)
      d.data<double>()[i * V + j] = (std::exp(row[j] - mx) / sum - (j == y ? 1.0 : 0.0)) / static_cast<double>(count);
  }
  if (dlogits) *dlogits = d.to(logits.dtype());
  return loss / static_cast<double>(count);
}

std::vector<std::int32_t> next_token_labels(const std::vector<std::int32_t>& ids, std::int64_t seq_len) {
  std::vector<std::int32_t> labels(ids.size(), -100);
  for (std::size_t i = 0; i + 1 < ids.size(); ++i)
    if ((static_cast<std::int64_t>(i) + 1) % seq_len != 0) labels[i] = ids[i + 1];
  return labels;
}

double run_step_with_host_loss(Backend& be, LlamaLoraStep& step, const std::vector<std::int32_t>& labels) {
  auto run = [&](auto&& record) {
    be.begin();
    record();
    be.end();
    be.run();
  };
  std::int64_t count = 0;
  for (auto l : labels) count += l >= 0;
  const std::int64_t rows = step.logits().dim(0);
  run([&] { step.record_body_forward(); });
  double loss = 0;
  for (std::int64_t c = 0; c < step.head_chunks(); ++c) {
    run([&] { step.record_head_forward(c); });
    const std::vector<std::int32_t> chunk(labels.begin() + c * rows, labels.begin() + (c + 1) * rows);
    Tensor dlogits;
    loss += host_cross_entropy(be.read(step.logits()), chunk, &dlogits, count);
    be.write(step.dlogits(), dlogits);
    run([&] { step.record_head_backward(c); });
  }
  run([&] { step.record_body_backward(); });
  return loss;
}

}  // namespace pocketlora::test
