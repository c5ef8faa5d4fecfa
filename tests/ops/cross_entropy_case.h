#pragma once
// The chunked cross-entropy op case, shared by tests/ops/test_cross_entropy.cpp and tests/ops/test_loop_limit.cpp
// (which states count-dependent tolerances for its sizes past the loop limit by overriding tolerance()).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "harness/op_case.h"
#include "host/ref/cross_entropy.h"

#if POCKETLORA_HAS_VULKAN
#include "host/ops/cross_entropy.h"
#endif

namespace pocketlora::test {

// Columns [v0, v0 + c) of a 2-D f32 tensor.
inline Tensor column_slice(const Tensor& t, std::int64_t v0, std::int64_t c) {
  const std::int64_t rows = t.dim(0), cols = t.dim(1);
  Tensor part = Tensor::zeros({rows, c});
  for (std::int64_t r = 0; r < rows; ++r)
    std::copy_n(t.data<float>() + r * cols + v0, c, part.data<float>() + r * c);
  return part;
}

// Cross-entropy of logits [T, V] (uniform in [-8, 8]) over labels (a fraction ignored), computed by the GPU
// over vocabulary chunks of `chunk` columns: lse per token, the loss sum and the valid count added onto totals
// that start at kTotals0 (the op accumulates), and dlogits = scale * (softmax - onehot) per chunk with scale =
// grad_scale / valid read from a buffer. Gradient check: L = grad_scale * mean loss w.r.t. logits.
class CrossEntropyCase : public OpCase {
 public:
  struct Spec {
    std::int64_t T = 1, V = 1, chunk = 1;
    double ignored_fraction = 0.3;  // >= 1: every token ignored
    float grad_scale = 1.0f;
    std::optional<std::vector<std::int32_t>> labels;  // explicit labels instead of random ones
    float logit_range = 8;
    std::uint64_t logit_seed = 1;
  };
  CrossEntropyCase(const std::string& prefix, Spec s) : s_(std::move(s)) {
    name = prefix + "/" + std::to_string(s_.T) + "x" + std::to_string(s_.V) + "_chunk" + std::to_string(s_.chunk);
    if (s_.ignored_fraction >= 1) name += "_all_ignored";
    if (s_.labels) name += "_given_labels";
  }

  std::int64_t chunks() const { return (s_.V + s_.chunk - 1) / s_.chunk; }
  // Tokens that count (not ignore_index).
  std::int64_t valid() const {
    const Tensor l = labels();
    return std::count_if(l.data<std::int32_t>(), l.data<std::int32_t>() + s_.T,
                         [](std::int32_t x) { return x != kIgnoreIndex; });
  }
  Tensor labels() const {
    if (s_.labels) return int_tensor(*s_.labels);
    Tensor u = random_tensor({s_.T, 2}, 2, 0, 1);
    Tensor l = Tensor::zeros({s_.T}, DType::I32);
    for (std::int64_t t = 0; t < s_.T; ++t)
      l.data<std::int32_t>()[t] =
          s_.ignored_fraction >= 1 || u.data<float>()[2 * t] < s_.ignored_fraction
              ? kIgnoreIndex
              : static_cast<std::int32_t>(u.data<float>()[2 * t + 1] * static_cast<float>(s_.V - 1));
    return l;
  }

  // The gradient of grad_scale * mean: what the trainer writes into the scale buffer (grad_scale when nothing is
  // valid, where every row is zero anyway).
  double scale() const { return s_.grad_scale / static_cast<double>(std::max<std::int64_t>(1, valid())); }

  // logits, labels, the totals the op adds onto
  std::vector<Tensor> inputs() const override {
    return {random_tensor({s_.T, s_.V}, s_.logit_seed, -s_.logit_range, s_.logit_range), labels(),
            Tensor::from_vector({kTotals0[0], kTotals0[1]}, {2})};
  }
  std::vector<std::string> output_names() const override {
    std::vector<std::string> n = {"lse", "totals loss sum", "totals valid"};
    for (std::int64_t i = 0; i < chunks(); ++i) n.push_back("dlogits chunk " + std::to_string(i));
    return n;
  }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    Tensor lse = Tensor::zeros({s_.T}), dl = Tensor::zeros({s_.T, s_.V});
    const CrossEntropyResult r = ref::cross_entropy(in[0], in[1], lse);
    ref::cross_entropy_backward(in[0], in[1], lse, dl, scale());
    const double valid_total = kTotals0[1] + static_cast<double>(r.valid);
    std::vector<Tensor> out = {lse, Tensor::from_vector({static_cast<float>(kTotals0[0] + r.sum)}, {1}),
                               Tensor::from_vector({static_cast<float>(valid_total)}, {1})};
    for (std::int64_t i = 0; i < chunks(); ++i)
      out.push_back(column_slice(dl, i * s_.chunk, std::min(s_.chunk, s_.V - i * s_.chunk)));
    return out;
  }
  // lse: f32 online log-sum-exp over V terms vs f64: relative 1e-6 of |lse| (values ~ 8 + log V).
  // loss sum: within 1e-5 * max(1, sum). valid: an exact count.
  // dlogits are probabilities / n_valid: absolute 1e-6 / n_valid.
  // Nothing valid: the kernels must add exact zeros and write zero gradients.
  Tolerance tolerance(std::size_t i) const override {
    Tolerance t;
    const bool none_valid = valid() == 0;
    if (i == 0) {
      t.max_rel = 1e-6;
      t.rel_floor = 1.0;
    } else if (i == 2 || none_valid) {
      t.max_abs = 0;
    } else if (i == 1) {
      t.max_rel = 1e-5;
      t.rel_floor = 1.0;
    } else {
      t.max_abs = 1e-6 / static_cast<double>(std::max<std::int64_t>(1, valid()));
    }
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    auto stats = ops::make_cross_entropy_stats(run.arena, s_.T);
    auto labels = run.up(in[1], "labels"), totals = run.up(in[2], "totals");
    auto lse = run.zeros({s_.T}, DType::F32, "lse");
    auto scale_t = run.up(Tensor::from_vector({static_cast<float>(scale())}, {1}), "scale");
    std::vector<ops::DeviceTensor> parts, grads;
    for (std::int64_t i = 0; i < chunks(); ++i) {
      const std::int64_t v0 = i * s_.chunk, c = std::min(s_.chunk, s_.V - v0);
      parts.push_back(run.up(column_slice(in[0], v0, c), "logits chunk"));
      grads.push_back(run.zeros({s_.T, c}, DType::F32, "dlogits chunk"));
    }
    for (std::size_t i = 0; i < parts.size(); ++i)
      ops::cross_entropy_chunk(run.seq, parts[i], labels, static_cast<std::int64_t>(i) * s_.chunk, i == 0, stats);
    ops::cross_entropy_finalize(run.seq, labels, stats, lse, totals);
    for (std::size_t i = 0; i < parts.size(); ++i)
      ops::cross_entropy_backward_chunk(run.seq, parts[i], labels, static_cast<std::int64_t>(i) * s_.chunk, lse,
                                        scale_t, grads[i]);
    // totals is (loss sum, valid count): each word as its own output.
    std::vector<ops::DeviceTensor> out = {lse, {totals.buf.sub(0, 4), {1}, DType::F32},
                                          {totals.buf.sub(4, 4), {1}, DType::F32}};
    out.insert(out.end(), grads.begin(), grads.end());
    return out;
  }
#endif
  // Small enough that each of the <= 256 sampled logits reruns the f64 forward quickly.
  bool has_gradcheck() const override { return s_.T * s_.V <= 20000; }
  double loss(const std::vector<Tensor>& in) const override {
    Tensor lse = Tensor::zeros({s_.T}, DType::F64);
    return s_.grad_scale * ref::cross_entropy(in[0], in[1], lse).loss;
  }
  std::vector<Tensor> gradient(const std::vector<Tensor>& in) const override {
    Tensor lse = Tensor::zeros({s_.T}, DType::F64), d = Tensor::zeros({s_.T, s_.V}, DType::F64);
    ref::cross_entropy(in[0], in[1], lse);
    ref::cross_entropy_backward(in[0], in[1], lse, d, scale());
    return {d, Tensor(), Tensor()};  // labels are integers; the totals are not differentiated
  }
  // A loss of size ~log V: central-difference rounding ~ eps |L| / h ~ 1e-9.
  GradTolerance grad_tolerance() const override { return {1e-8}; }
  // Per logit: max, exp, sum in the stats pass; exp, subtract, scale in the backward.
  double flops() const override { return 8.0 * static_cast<double>(s_.T * s_.V); }
  // Logits read twice, dlogits written once (f32); labels and per-token state are O(T).
  double bytes() const override { return 12.0 * static_cast<double>(s_.T * s_.V) + 32.0 * static_cast<double>(s_.T); }

 protected:
  const Spec& spec() const { return s_; }
  static constexpr float kTotals0[2] = {0.75f, 3.0f};  // what totals hold before the op (earlier row chunks)

 private:
  Spec s_;
};

}  // namespace pocketlora::test
