// `pocketlora tokenize` (text -> ids and pieces) and `pocketlora detokenize` (ids -> text) for any tokenizer
// file load_tokenizer reads.
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/tokenizer/tokenizer.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct TokenizeArgs {
  std::string tokenizer, text, file;
  bool no_bos = false, special = false, json = false;
};

// Pieces can hold newlines, tabs or raw bytes; print them one per line without breaking the layout.
std::string printable(const std::string& s) {
  std::string o;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\r') o += "\\r";
    else if (c == '\\') o += "\\\\";
    else if (u < 0x20 || u == 0x7F) o += fmt::format("\\x{:02x}", u);
    else o += c;
  }
  return o;
}

int run_tokenize(const TokenizeArgs& a) {
  std::string text = a.text;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) throw IoError(fmt::format("{}: cannot open text file", a.file));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const auto tok = load_tokenizer(a.tokenizer);
  const auto ids = tok->encode(text, !a.no_bos, a.special);
  if (a.json) {
    nlohmann::json pieces = nlohmann::json::array();
    // A vocabulary may store pieces that are not valid UTF-8; dump them with U+FFFD instead of failing.
    for (auto id : ids) pieces.push_back(tok->piece(id));
    nlohmann::json out = {{"tokenizer", a.tokenizer}, {"kind", tokenizer_kind_name(tok->kind())}, {"count", ids.size()}, {"ids", ids},
                          {"pieces", pieces}};
    std::cout << out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::string line;
  for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
  std::cout << line << "\n";
  for (auto id : ids) std::cout << fmt::format("{:>8}  {}\n", id, printable(tok->piece(id)));
  std::cerr << fmt::format("{} tokens ({}, {})\n", ids.size(), tokenizer_kind_name(tok->kind()), a.tokenizer);
  return 0;
}

int run_detokenize(const std::string& tokenizer, std::string ids_text) {
  if (ids_text.empty()) {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    ids_text = ss.str();
  }
  // Accept "1 2 3", "1,2,3" or a JSON array "[1, 2, 3]".
  for (char& c : ids_text)
    if (c == ',' || c == '[' || c == ']') c = ' ';
  std::vector<std::int32_t> ids;
  std::istringstream in(ids_text);
  std::string word;
  while (in >> word) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != word.size() || v < INT32_MIN || v > INT32_MAX)
      throw InvalidArgument(fmt::format("detokenize: '{}' is not a token id", word));
    ids.push_back(static_cast<std::int32_t>(v));
  }
  const auto tok = load_tokenizer(tokenizer);
  std::cout << tok->decode(ids);
  std::cout.flush();
  return 0;
}

CommandRegistration reg_tok("tokenize", "Text to token ids and pieces (tokenizer.model, tokenizer.bin, tokenizer.json, GGUF)",
                            [](CLI::App& sub) {
                              auto a = std::make_shared<TokenizeArgs>();
                              sub.add_option("--tokenizer", a->tokenizer, "Tokenizer file")->required();
                              auto* t = sub.add_option("--text", a->text, "Text to encode");
                              auto* f = sub.add_option("--file", a->file, "File whose contents to encode");
                              t->excludes(f);
                              f->excludes(t);
                              sub.add_flag("--no-bos", a->no_bos, "Do not prepend BOS");
                              sub.add_flag("--special", a->special, "Encode special-token strings (<|eot_id|>) as their ids");
                              sub.add_flag("--json", a->json, "Machine-readable output");
                              return [a] { return run_tokenize(*a); };
                            });

CommandRegistration reg_detok("detokenize", "Token ids (--ids or stdin) to text", [](CLI::App& sub) {
  auto tokenizer = std::make_shared<std::string>();
  auto ids = std::make_shared<std::string>();
  sub.add_option("--tokenizer", *tokenizer, "Tokenizer file")->required();
  sub.add_option("--ids", *ids, "Ids separated by spaces or commas (default: read stdin)");
  return [tokenizer, ids] { return run_detokenize(*tokenizer, *ids); };
});

}  // namespace
}  // namespace pocketlora::cli
