#pragma once
// The optimizer op case, shared by tests/ops/test_optimizers.cpp and tests/ops/test_loop_limit.cpp: several
// optimizer steps over several parameter tensors, each step the global gradient norm (with clipping) followed by
// one update per tensor, recorded as one sequence; the learning rate falls from step to step (a schedule), and each
// step's constants come from their own tensor, as the trainer writes them. Outputs per step: the norm, the clip
// scale, the skip flag and
// first bad tensor, every parameter (and, for Adafactor when asked, rms(u) of every tensor); after the last step
// the optimizer state. No gradient check: an optimizer update has no backward.
#include <cmath>
#include <string>
#include <vector>

#include "harness/op_case.h"
#include "host/ref/optimizer.h"

#if POCKETLORA_HAS_VULKAN
#include "host/ops/optimizer.h"
#endif

namespace pocketlora::test {

class OptimizerCase : public OpCase {
 public:
  struct Spec {
    OptimizerConfig cfg;
    std::vector<Shape> shapes;
    std::int64_t steps = 1;
    bool check_rms = false;  // Adafactor: also compare rms(u) of every tensor at every step
  };
  OptimizerCase(const std::string& case_name, Spec s) : s_(std::move(s)) {
    name = case_name;
    const std::size_t n = s_.shapes.size();
    // Names built by += : GCC 12 -O3 reports a false -Wrestrict on "literal" + std::to_string(...).
    auto label = [](const char* what, std::size_t tensor, std::int64_t step) {
      std::string l = what;
      if (tensor != kNone) (l += " ") += std::to_string(tensor);
      if (step > 0) (l += " step ") += std::to_string(step);
      return l;
    };
    for (std::int64_t step = 1; step <= s_.steps; ++step) {
      layout_.push_back({Out::Norm, label("norm", kNone, step)});
      layout_.push_back({Out::Clip, label("clip_scale", kNone, step)});
      layout_.push_back({Out::Skip, label("skip, first_bad", kNone, step)});
      for (std::size_t i = 0; i < n; ++i) layout_.push_back({Out::Param, label("param", i, step)});
      if (s_.check_rms)
        for (std::size_t i = 0; i < n; ++i) layout_.push_back({Out::Rms, label("rms(u)", i, step)});
    }
    for (std::size_t i = 0; i < n; ++i) {
      const OptimizerState st = make_optimizer_state(s_.cfg, s_.shapes[i]);
      if (st.m.defined()) layout_.push_back({Out::State, label("m", i, 0)});
      if (st.v.defined()) layout_.push_back({Out::State, label("v", i, 0)});
      if (st.row.defined()) layout_.push_back({Out::State, label("adafactor row", i, 0)});
      if (st.col.defined()) layout_.push_back({Out::State, label("adafactor col", i, 0)});
    }
  }

  // The parameters, then the gradients step by step (gradient of tensor i at step s: seed 100 s + i).
  std::vector<Tensor> inputs() const override {
    std::vector<Tensor> in;
    for (std::size_t i = 0; i < s_.shapes.size(); ++i) in.push_back(random_tensor(s_.shapes[i], 10 + i));
    for (std::int64_t step = 1; step <= s_.steps; ++step)
      for (std::size_t i = 0; i < s_.shapes.size(); ++i)
        in.push_back(random_tensor(s_.shapes[i], 100 * static_cast<std::uint64_t>(step) + i, -1, 1));
    return in;
  }
  std::vector<std::string> output_names() const override {
    std::vector<std::string> n;
    for (const auto& o : layout_) n.push_back(o.name);
    return n;
  }
  std::vector<Tensor> reference(const std::vector<Tensor>& in) const override {
    const std::size_t n = s_.shapes.size();
    std::vector<Tensor> params;
    std::vector<OptimizerState> states;
    for (std::size_t i = 0; i < n; ++i) {
      params.push_back(in[i].clone());
      states.push_back(make_optimizer_state(s_.cfg, s_.shapes[i]));
    }
    std::vector<Tensor> out;
    for (std::int64_t step = 1; step <= s_.steps; ++step) {
      const Tensor* g0 = &in[n * static_cast<std::size_t>(step)];
      std::vector<const Tensor*> gp;
      for (std::size_t i = 0; i < n; ++i) gp.push_back(g0 + i);
      const GradStats want = ref::grad_norm(gp, s_.cfg.max_grad_norm);
      const StepConstants k = step_constants(s_.cfg, lr_at(step), step);
      for (std::size_t i = 0; i < n; ++i) ref::optimizer_step(s_.cfg, k, params[i], g0[i], states[i], want);
      out.push_back(Tensor::from_vector({want.norm}, {1}));
      out.push_back(Tensor::from_vector({want.clip_scale}, {1}));
      out.push_back(int_tensor({want.skip ? 1 : 0, static_cast<std::int32_t>(want.first_bad)}));
      for (std::size_t i = 0; i < n; ++i) out.push_back(params[i].clone());
      if (s_.check_rms)
        for (std::size_t i = 0; i < n; ++i) out.push_back(rms_u(states[i], g0[i], want.clip_scale));
    }
    for (const auto& st : states)
      for (const Tensor* t : {&st.m, &st.v, &st.row, &st.col})
        if (t->defined()) out.push_back(*t);
    return out;
  }
  Tolerance tolerance(std::size_t i) const override {
    Tolerance t;
    switch (layout_.at(i).kind) {
      case Out::Norm:  // f32 sum of ~1.3k squares vs f64
        t.max_rel = 1e-5;
        t.rel_floor = 0;
        break;
      case Out::Clip:  // min(1, max_norm / (norm + 1e-6)) from that norm
        t.max_abs = 1e-6;
        break;
      case Out::Skip:  // flags: exact
        t.max_abs = 0;
        break;
      case Out::Param:
        // f32 updates of size ~lr vs f64; Lion's sign() can flip only when its argument is ~0, which random
        // gradients make vanishingly unlikely. Absolute 2e-6 (lr 1e-2, up to three steps).
        t.max_abs = 2e-6;
        break;
      case Out::Rms:
        // The parameters hardly depend on rms(u) (it only divides when above clip_threshold), so the RMS pass is
        // checked itself: f32 sum of rows * cols positive terms, measured <= 7e-7 relative at 65.6k terms; with
        // the loop cut at lavapipe's cap (no split) rms(u) was 9e-4 off.
        t.max_rel = 2e-5;
        t.rel_floor = 0;
        break;
      case Out::State:
        // f32 running averages of (clipped) gradients / squared gradients of size <= 1 vs f64: a few ulp of the
        // largest term per step.
        t.max_abs = 1e-6;
        break;
    }
    return t;
  }
#if POCKETLORA_HAS_VULKAN
  std::vector<ops::DeviceTensor> gpu(const GpuRun& run, const std::vector<Tensor>& in) const override {
    const std::size_t n = s_.shapes.size();
    std::vector<ops::DeviceTensor> P, G;
    std::vector<ops::DeviceOptimizerState> S;
    for (std::size_t i = 0; i < n; ++i) {
      P.push_back(run.up(in[i], "param"));
      std::string state_name = "p";  // built by += : GCC 12 -O3 reports a false -Wrestrict on "p" + to_string
      state_name += std::to_string(i);
      S.push_back(ops::make_optimizer_state(run.dev, run.arena, s_.cfg, s_.shapes[i], state_name));
    }
    for (std::size_t k = n; k < in.size(); ++k) G.push_back(run.up(in[k], "grad"));
    auto stats = ops::make_grad_stats(run.arena);
    // Values a later step overwrites are copied out after their step.
    auto snapshot = [&](const vk::BufferSlice& src, Shape shape, DType dtype) {
      auto t = run.zeros(shape, dtype, "snapshot");
      run.seq.copy(src, t.buf);
      return t;
    };
    std::vector<ops::DeviceTensor> out;
    for (std::int64_t step = 1; step <= s_.steps; ++step) {
      const std::vector<ops::DeviceTensor> g(G.begin() + static_cast<std::ptrdiff_t>(n * (step - 1)),
                                             G.begin() + static_cast<std::ptrdiff_t>(n * step));
      ops::grad_norm(run.seq, run.arena, g, s_.cfg.max_grad_norm, stats);
      const auto consts = run.up(step_constants_tensor(step_constants(s_.cfg, lr_at(step), step)), "step constants");
      for (std::size_t i = 0; i < n; ++i) ops::optimizer_step(run.seq, s_.cfg, consts, P[i], g[i], S[i], stats);
      // The stats words (norm and clip scale as f32 bits, skip flag, first bad tensor): optimizer_push.h.
      out.push_back(snapshot(stats.buf.sub(0, 4), {1}, DType::F32));
      out.push_back(snapshot(stats.buf.sub(4, 4), {1}, DType::F32));
      out.push_back(snapshot(stats.buf.sub(8, 8), {2}, DType::I32));
      for (std::size_t i = 0; i < n; ++i)
        out.push_back(step == s_.steps ? P[i] : snapshot(P[i].buf, s_.shapes[i], DType::F32));
      if (s_.check_rms)  // Adafactor scratch: (mean(R), rms(u))
        for (std::size_t i = 0; i < n; ++i) out.push_back(snapshot(S[i].scratch.buf.sub(4, 4), {1}, DType::F32));
    }
    for (const auto& st : S)
      for (const ops::DeviceTensor* t : {&st.m, &st.v, &st.row, &st.col})
        if (t->buf.valid()) out.push_back(*t);
    return out;
  }
#endif
  // Per step: the norm (2 flops per gradient element) and the update (per element, roughly: AdamW 15, Lion 10,
  // SGD 8, Adafactor 15 including its row / column statistics and RMS passes).
  double flops() const override {
    const double per = s_.cfg.kind == OptimizerKind::Lion ? 10 : s_.cfg.kind == OptimizerKind::SGD ? 8 : 15;
    return static_cast<double>(s_.steps) * (2 + per) * elements();
  }
  // Per step: the norm reads every gradient; the update reads the gradient and the parameter and writes the
  // parameter (AdamW also reads / writes m and v, Lion and SGD m; Adafactor reads the gradient three times and
  // its O(rows + cols) statistics).
  double bytes() const override {
    const double per = s_.cfg.kind == OptimizerKind::AdamW ? 7 : 5;
    return static_cast<double>(s_.steps) * 4 * (1 + per) * elements();
  }

 private:
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  enum class Out { Norm, Clip, Skip, Param, Rms, State };
  struct OutDesc {
    Out kind;
    std::string name;
  };

  // A decaying schedule: cfg.lr, then 3/4 and 1/2 of it.
  float lr_at(std::int64_t step) const { return s_.cfg.lr * (1.0f - 0.25f * static_cast<float>(step - 1)); }
  double elements() const {
    double e = 0;
    for (const auto& s : s_.shapes) e += static_cast<double>(shape_numel(s));
    return e;
  }
  // rms of u = g * clip / sqrt(R_r / mean(R) * C_c) from the reference's statistics after the step, in f64.
  static Tensor rms_u(const OptimizerState& st, const Tensor& grad, float clip) {
    const Tensor R = st.row.to(DType::F64), C = st.col.to(DType::F64), g = grad.to(DType::F64);
    const std::int64_t rows = grad.dim(0), cols = grad.dim(1);
    double row_mean = 0, ss = 0;
    for (std::int64_t r = 0; r < rows; ++r) row_mean += R.data<double>()[r] / static_cast<double>(rows);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) {
        const double u = g.data<double>()[r * cols + c] * clip /
                         std::sqrt(R.data<double>()[r] / row_mean * C.data<double>()[c]);
        ss += u * u;
      }
    return Tensor::from_vector({static_cast<float>(std::sqrt(ss / static_cast<double>(rows * cols)))}, {1});
  }

  Spec s_;
  std::vector<OutDesc> layout_;
};

}  // namespace pocketlora::test
