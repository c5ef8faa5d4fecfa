// `pocketlora forward`: runs the Llama forward pass (host/model/llama_forward.cpp, written once) on the chosen
// backend and prints, per position, the most likely next tokens — a quick way to check that a model file, its
// NF4 base and a backend agree, e.g. `--backend cpu` vs `--backend vulkan` on the same prompt.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/model/llama_forward.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/process_memory.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct ForwardArgs {
  std::string model, tokenizer, prompt, tokens, backend = "cpu", quant = "none";
  int top_k = 3;
  bool json = false;
};

std::vector<std::int32_t> parse_ids(const std::string& s) {
  std::vector<std::int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::out_of_range(item);
      ids.push_back(static_cast<std::int32_t>(v));
    } catch (const std::logic_error&) {
      throw InvalidArgument("--tokens: '" + item + "' is not a token id (expected comma-separated integers)");
    }
  }
  return ids;
}

int run_forward(const ForwardArgs& a) {
  std::unique_ptr<Tokenizer> tok;
  if (!a.tokenizer.empty()) tok = load_tokenizer(a.tokenizer);
  std::vector<std::int32_t> ids;
  if (!a.tokens.empty()) ids = parse_ids(a.tokens);
  else if (tok) ids = tok->encode(a.prompt, true);
  else throw InvalidArgument("forward: give --tokens, or --prompt with --tokenizer");
  if (ids.empty()) throw InvalidArgument("forward: no tokens to run");

  const auto t0 = std::chrono::steady_clock::now();
  LlamaModel model = load_llama_model(a.model, parse_base_quant(a.quant), BaseLoad::Deferred);
  const std::uint64_t peak_after_load = peak_rss_bytes();
  auto be = make_backend(parse_backend_kind(a.backend));
  const auto tu = std::chrono::steady_clock::now();
  BackendLlama w = upload_llama(*be, model);
  const auto t1 = std::chrono::steady_clock::now();
  const ResidentSet after_upload = resident_set();
  const std::uint64_t peak_after_upload = peak_rss_bytes();
  Tensor logits = llama_forward_logits(*be, w, ids);
  const auto t2 = std::chrono::steady_clock::now();
  const double load_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double fwd_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();

  const std::int64_t vocab = logits.dim(1);
  const int k = static_cast<int>(std::min<std::int64_t>(std::max(1, a.top_k), vocab));
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t p = 0; p < ids.size(); ++p) {
    const float* row = logits.data<float>() + static_cast<std::int64_t>(p) * vocab;
    std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](std::int32_t x, std::int32_t y) { return row[x] > row[y]; });
    nlohmann::json top = nlohmann::json::array();
    for (int i = 0; i < k; ++i) {
      nlohmann::json e = {{"id", order[static_cast<std::size_t>(i)]}, {"logit", row[order[static_cast<std::size_t>(i)]]}};
      if (tok) e["piece"] = tok->piece(order[static_cast<std::size_t>(i)]);
      top.push_back(e);
    }
    rows.push_back({{"position", p}, {"token", ids[p]}, {"top", top}});
  }
  if (a.json) {
    std::cout << nlohmann::json{{"backend", be->describe()}, {"model", a.model}, {"source", model_source_name(model.source)},
                                {"quant", a.quant}, {"load_ms", load_ms},
                                {"upload_ms", std::chrono::duration<double, std::milli>(t1 - tu).count()},
                                {"forward_ms", fwd_ms},
                                // Host memory (docs/MEMORY.md): peaks include mapped checkpoint pages while read.
                                {"host_memory",
                                 {{"peak_rss_after_load_bytes", peak_after_load},
                                  {"peak_rss_after_upload_bytes", peak_after_upload},
                                  {"rss_anon_after_upload_bytes", after_upload.anon_bytes},
                                  {"rss_file_after_upload_bytes", after_upload.file_bytes},
                                  {"peak_rss_bytes", peak_rss_bytes()},
                                  {"backend_bytes", be->memory_in_use()}}},
                                {"positions", rows}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << fmt::format("{} ({} base, {}), backend {}\nload {:.1f} ms, forward of {} tokens {:.1f} ms\n", a.model,
                           a.quant, model_source_name(model.source), be->describe(), load_ms, ids.size(), fwd_ms);
  for (const auto& r : rows) {
    std::cout << fmt::format("pos {:4} token {:6} ->", r["position"].get<int>(), r["token"].get<int>());
    for (const auto& e : r["top"]) {
      std::cout << fmt::format("  {}", e["id"].get<int>());
      if (e.contains("piece")) std::cout << fmt::format(" '{}'", e["piece"].get<std::string>());
      std::cout << fmt::format(" ({:.3f})", e["logit"].get<float>());
    }
    std::cout << "\n";
  }
  return 0;
}

CommandRegistration register_cmd_forward("forward", "Run the model forward on a backend and print the top next tokens per position",
                        [](CLI::App& sub) -> Action {
                          auto a = std::make_shared<ForwardArgs>();
                          sub.add_option("--model", a->model, "llama2.c .bin, GGUF, HF safetensors or bnb-4bit model")
                              ->required();
                          sub.add_option("--tokenizer", a->tokenizer, "tokenizer file (for --prompt and pieces)");
                          sub.add_option("--prompt", a->prompt, "text to encode (BOS added)");
                          sub.add_option("--tokens", a->tokens, "comma-separated token ids instead of --prompt");
                          sub.add_option("--backend", a->backend, "cpu or vulkan")->capture_default_str();
                          sub.add_option("--quant", a->quant, "base linears: none (f32) or nf4")->capture_default_str();
                          sub.add_option("--top-k", a->top_k, "tokens shown per position")->capture_default_str();
                          sub.add_flag("--json", a->json, "machine-readable output");
                          return [a] { return run_forward(*a); };
                        });

}  // namespace
}  // namespace pocketlora::cli
