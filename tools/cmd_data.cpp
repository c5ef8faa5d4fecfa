// `pocketlora data stats FILE --tokenizer TOK [--format auto|alpaca|chat|text] [--template NAME] [--seq-len N]
// [--pack] [--json]`: record counts, token-length statistics, truncation, masked fraction, packing fill.
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/data/dataset.h"
#include "host/data/dataset_stats.h"
#include "host/tokenizer/tokenizer.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct StatsArgs {
  std::string file, tokenizer, format = "auto", tmpl, separator = "<|endoftext|>";
  std::int64_t seq_len = 512;
  bool pack = false, json = false;
};

int run(const StatsArgs& a) {
  const DataFormat fmt = parse_data_format(a.format);
  auto tok = load_tokenizer(a.tokenizer);
  const ChatTemplate tmpl = a.tmpl.empty() ? detect_chat_template(*tok) : parse_chat_template(a.tmpl);
  nlohmann::json out = {{"file", a.file}};
  out.update(dataset_stats(read_records(a.file, fmt, a.separator), *tok, tmpl, a.seq_len, a.pack));
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (auto& [k, v] : out.items()) fmt::print("{:<18} {}\n", k, v.dump());
  return 0;
}

CommandRegistration register_cmd_data("data", "Training data tools", [](CLI::App& sub) {
  sub.require_subcommand(1);
  auto a = std::make_shared<StatsArgs>();
  CLI::App* stats = sub.add_subcommand("stats", "Counts, token lengths, masked fraction, packing of a dataset");
  stats->add_option("file", a->file, "Alpaca JSON/JSONL, chat JSONL or text file")->required();
  stats->add_option("--tokenizer", a->tokenizer, "tokenizer.model / tokenizer.bin / tokenizer.json / GGUF")->required();
  stats->add_option("--format", a->format, "auto, alpaca, chat, text")->capture_default_str();
  stats->add_option("--template", a->tmpl, "llama2, llama3, chatml (default: detected from the tokenizer)");
  stats->add_option("--separator", a->separator, "Document separator for plain text")->capture_default_str();
  stats->add_option("--seq-len", a->seq_len, "Training sequence length")->capture_default_str();
  stats->add_flag("--pack", a->pack, "Pack examples into seq_len windows");
  stats->add_flag("--json", a->json, "Machine-readable output");
  return Action([a] { return run(*a); });
});

}  // namespace
}  // namespace pocketlora::cli
