// `pocketlora bench tokenizer`: load time and encode/decode throughput of each tokenizer on one text
// (default: tinyshakespeare, 1.1 MB). Prints a table and writes JSON.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "bench/bench_registry.h"
#include "bench/bench_util.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora::bench {
namespace {

struct TokArgs {
  std::string data;
  std::string text = "datasets/tinyshakespeare_input.txt";
  std::vector<std::string> tokenizers = {"tokenizers/llama2/tokenizer.model", "tokenizers/llama2/tokenizer.bin",
                                         "tokenizers/llama.cpp-vocab/ggml-vocab-llama-spm.gguf",
                                         "tokenizers/llama3/tokenizer.json"};
  int reps = 5;
  std::string out = "bench-tokenizer.json";
};

int run(TokArgs& a) {
  if (a.data.empty()) {
    const char* env = std::getenv("POCKETLORA_DATA");
    a.data = env && *env ? env : "../shared/data";
  }
  const std::filesystem::path data = a.data;
  auto resolve = [&](const std::string& p) { return std::filesystem::path(p).is_absolute() ? std::filesystem::path(p) : data / p; };
  std::ifstream in(resolve(a.text), std::ios::binary);
  if (!in) {
    fmt::print(stderr, "bench tokenizer: cannot read {}\n", resolve(a.text).string());
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const double mb = static_cast<double>(text.size()) / 1e6;

  Table table({"tokenizer", "kind", "load ms", "encode ms", "MB/s", "Mtok/s", "tokens", "decode ms", "round trip"});
  nlohmann::json results = nlohmann::json::array();
  for (const std::string& t : a.tokenizers) {
    const auto path = resolve(t);
    if (!std::filesystem::exists(path)) {
      fmt::print("skipping {} (not found)\n", path.string());
      continue;
    }
    std::unique_ptr<Tokenizer> tok;
    double load_ms = 0;
    try {
      load_ms = median_ms([&] { tok = load_tokenizer(path); }, a.reps, 1);
    } catch (const std::exception& e) {
      fmt::print("skipping {}: {}\n", path.string(), e.what());
      continue;
    }
    std::vector<std::int32_t> ids;
    const double enc_ms = median_ms([&] { ids = tok->encode(text, false); }, a.reps, 1);
    std::string back;
    const double dec_ms = median_ms([&] { back = tok->decode(ids); }, a.reps, 1);
    const double mbs = mb / (enc_ms / 1e3);
    const double tps = static_cast<double>(ids.size()) / (enc_ms / 1e3);
    const bool same = back == text;
    table.row({path.filename().string(), tokenizer_kind_name(tok->kind()), fmt::format("{:.1f}", load_ms), fmt::format("{:.1f}", enc_ms),
               fmt::format("{:.2f}", mbs), fmt::format("{:.2f}", tps / 1e6), std::to_string(ids.size()),
               fmt::format("{:.1f}", dec_ms), same ? "exact" : "DIFFERS"});
    results.push_back({{"tokenizer", path.string()}, {"kind", tokenizer_kind_name(tok->kind())}, {"load_ms", load_ms},
                       {"encode_ms", enc_ms}, {"mb_per_s", mbs}, {"tokens_per_s", tps},
                       {"tokens", ids.size()}, {"decode_ms", dec_ms}, {"round_trip_exact", same}});
  }
  fmt::print("text: {} ({} bytes), median of {} runs after 1 warm-up\n", resolve(a.text).string(), text.size(), a.reps);
  table.print();
  write_json(a.out, {{"benchmark", "tokenizer"}, {"text", resolve(a.text).string()}, {"text_bytes", text.size()},
                     {"reps", a.reps}, {"results", results}});
  return 0;
}

BenchRegistration register_bench_tokenizer("tokenizer", "Tokenizer load time and encode/decode throughput (SentencePiece, byte-level BPE)",
                      [](CLI::App& sub) {
                        auto a = std::make_shared<TokArgs>();
                        sub.add_option("--data", a->data, "shared/data folder (default: $POCKETLORA_DATA or ../shared/data)");
                        sub.add_option("--text", a->text, "Text file (relative to --data unless absolute)")->capture_default_str();
                        sub.add_option("--tokenizers", a->tokenizers, "Tokenizer files (relative to --data unless absolute)");
                        sub.add_option("--reps", a->reps, "Timed repetitions")->check(CLI::PositiveNumber)->capture_default_str();
                        sub.add_option("--out", a->out, "JSON output path")->capture_default_str();
                        return [a] { return run(*a); };
                      });

}  // namespace
}  // namespace pocketlora::bench
