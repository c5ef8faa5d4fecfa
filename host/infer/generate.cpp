#include "host/infer/generate.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "host/core/error.h"

namespace pocketlora {

GenerateResult generate(Decoder& d, std::span<const std::int32_t> prompt, const GenerateOptions& opt,
                        const std::function<void(std::int32_t)>& on_token) {
  if (prompt.empty()) throw InvalidArgument("generate: empty prompt (a BOS token at least is needed)");
  if (opt.max_tokens < 1) throw InvalidArgument("generate: max_tokens " + std::to_string(opt.max_tokens) + " < 1");
  const auto n = static_cast<std::int64_t>(prompt.size());
  if (n + opt.max_tokens > d.context())
    throw InvalidArgument("generate: prompt of " + std::to_string(n) + " tokens + max_tokens " +
                          std::to_string(opt.max_tokens) + " = " + std::to_string(n + opt.max_tokens) +
                          " exceeds the context length of " + std::to_string(d.context()) + " positions");
  Sampler sampler(opt.sampling);
  using Clock = std::chrono::steady_clock;
  const auto seconds = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  GenerateResult r;
  r.prompt_tokens = n;
  d.start(opt.adapters);
  const auto t0 = Clock::now();
  Tensor logits = d.forward(prompt);
  const auto t1 = Clock::now();
  r.prefill_seconds = seconds(t0, t1);
  for (;;) {
    const std::int32_t id = sampler.sample(std::span<const float>(logits.data<float>(), static_cast<std::size_t>(logits.numel())));
    r.tokens.push_back(id);
    if (on_token) on_token(id);
    if (std::find(opt.stop.begin(), opt.stop.end(), id) != opt.stop.end()) {
      r.stopped = true;
      break;
    }
    if (static_cast<std::int64_t>(r.tokens.size()) >= opt.max_tokens) break;
    logits = d.forward(std::span<const std::int32_t>(&r.tokens.back(), 1));
  }
  r.decode_seconds = seconds(t1, Clock::now());
  return r;
}

}  // namespace pocketlora
