#pragma once
// Shared helpers for the tokenizer tests: fixture readers and a random Unicode text generator.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "host/tokenizer/utf8.h"

namespace pocketlora::test {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(read_text(p)); }

// llama.cpp's vocab test files: cases in .inp separated by "\n__ggml_vocab_test__\n"; line i of .out holds the
// ids of case i (no BOS).
struct VocabCase {
  std::string text;
  std::vector<std::int32_t> ids;
};

inline std::vector<VocabCase> read_ggml_vocab_cases(const std::filesystem::path& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  const std::string in = read_text(inp);
  std::vector<VocabCase> cases;
  for (std::size_t pos = 0; pos < in.size();) {
    const std::size_t e = in.find(sep, pos);
    if (e == std::string::npos) break;
    cases.push_back({in.substr(pos, e - pos), {}});
    pos = e + sep.size();
  }
  std::ifstream out(inp.string().substr(0, inp.string().size() - 4) + ".out");
  std::string line;
  for (auto& c : cases) {
    if (!std::getline(out, line)) break;
    std::istringstream ls(line);
    for (std::int32_t id; ls >> id;) c.ids.push_back(id);
  }
  return cases;
}

// Random valid UTF-8 mixing ASCII, whitespace, Latin accents, combining marks, CJK, Hangul and emoji.
inline std::string random_unicode(std::mt19937& rng, int max_chars) {
  static const char32_t ranges[][2] = {
      {0x20, 0x7E},       {0x20, 0x20},       {0x0A, 0x0A},     {0x09, 0x0D},     {0xA0, 0x24F},
      {0x300, 0x36F},     {0x391, 0x3C9},     {0x410, 0x44F},   {0x5D0, 0x5EA},   {0x620, 0x64A},
      {0x900, 0x97F},     {0x2000, 0x206F},   {0x3000, 0x303F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF},
      {0xAC00, 0xD7A3},   {0xFE00, 0xFE0F},   {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}, {0x1, 0x1F},
  };
  std::uniform_int_distribution<int> nchars(0, max_chars);
  std::uniform_int_distribution<std::size_t> pick(0, std::size(ranges) - 1);
  std::string s;
  const int n = nchars(rng);
  for (int i = 0; i < n; ++i) {
    const auto& r = ranges[pick(rng)];
    std::uniform_int_distribution<std::uint32_t> cp(r[0], r[1]);
    char32_t c = cp(rng);
    if (c >= 0xD800 && c <= 0xDFFF) c = 0xE000;
    utf8::append(s, c);
  }
  return s;
}

inline void write_bytes(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace pocketlora::test
