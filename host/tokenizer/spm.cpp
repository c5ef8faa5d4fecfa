// SentencePiece BPE encoder/decoder. The merge loop follows SentencePiece's bpe_model.cc (and llama.cpp's
// llm_tokenizer_spm, which reproduces it): every adjacent pair whose concatenation is a piece goes into a
// max-heap keyed by (score, leftmost position); popping merges the pair if both halves are still intact.
#include <algorithm>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/tokenizer/spm.h"
#include "host/tokenizer/string_map.h"
#include "host/tokenizer/utf8.h"

namespace pocketlora {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

class SpmTokenizer final : public Tokenizer {
 public:
  explicit SpmTokenizer(SpmVocab v) : v_(std::move(v)) {
    std::fill(std::begin(byte_id_), std::end(byte_id_), -1);
    const std::size_t n = v_.pieces.size();
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = static_cast<std::int32_t>(i);
      const SpmTokenType t = v_.types[i];
      // First id wins on duplicate strings, as in SentencePiece's piece map.
      all_.emplace(v_.pieces[i], id);
      // Only normal, user-defined and unused pieces take part in merges; control, unknown and byte pieces are
      // reserved (a text containing "<s>" must not merge into BOS).
      if (t == SpmTokenType::Normal || t == SpmTokenType::UserDefined || t == SpmTokenType::Unused)
        mergeable_.emplace(v_.pieces[i], id);
      if (t == SpmTokenType::Byte) {
        unsigned b = 0;
        if (v_.pieces[i].size() == 6 && std::sscanf(v_.pieces[i].c_str(), "<0x%02X>", &b) == 1 && b < 256)
          byte_id_[b] = id;
      }
      if (t == SpmTokenType::UserDefined && !v_.pieces[i].empty()) user_defined_.push_back(v_.pieces[i]);
      if ((t == SpmTokenType::Control || t == SpmTokenType::UserDefined) && !v_.pieces[i].empty())
        specials_.emplace_back(v_.pieces[i], id);
    }
    chunkable_ = user_defined_.empty();
    for (const auto& [p, id] : mergeable_) {
      const std::size_t lead = leading_spaces(p);
      if (p.find(kSpace, lead) != std::string::npos) chunkable_ = false;
      // Characters of multi-character pieces can be merged with a neighbour; all others never are.
      if (utf8::next(p, 0).len == p.size()) continue;
      for (std::size_t k = 0; k < p.size();) {
        const utf8::Char c = utf8::next(p, k);
        if (c.cp < 0x10000) joinable_bmp_[c.cp] = true;
        else joinable_astral_.push_back(c.cp);
        k += c.len;
      }
    }
    std::sort(joinable_astral_.begin(), joinable_astral_.end());
    // Longest first so "<|im_start|>" wins over a shorter prefix.
    auto longer = [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); };
    std::stable_sort(specials_.begin(), specials_.end(), longer);
    std::stable_sort(user_defined_.begin(), user_defined_.end(),
                     [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  }

  std::vector<std::int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<std::int32_t> out;
    if (add_bos && v_.bos) out.push_back(*v_.bos);
    // Split out special-token strings first (chat templates); each raw fragment gets its own dummy prefix,
    // as llama.cpp does after a special token.
    std::size_t start = 0;
    if (parse_special && !specials_.empty()) {
      for (std::size_t i = 0; i < text.size();) {
        bool hit = false;
        for (const auto& [s, id] : specials_) {
          if (text.substr(i).starts_with(s)) {
            encode_fragment(text.substr(start, i - start), out);
            out.push_back(id);
            i += s.size();
            start = i;
            hit = true;
            break;
          }
        }
        if (!hit) ++i;
      }
    }
    encode_fragment(text.substr(start), out);
    return out;
  }

  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out;
    bool at_start = true;
    for (const std::int32_t id : ids) {
      check_id(id);
      const auto i = static_cast<std::size_t>(id);
      switch (v_.types[i]) {
        case SpmTokenType::Control:
          continue;  // BOS/EOS and friends have no surface text
        case SpmTokenType::Unknown:
          out += v_.unk_surface;
          break;
        case SpmTokenType::Byte: {
          unsigned b = 0;
          if (std::sscanf(v_.pieces[i].c_str(), "<0x%02X>", &b) == 1) out += static_cast<char>(b);
          break;
        }
        default: {
          std::string_view p = v_.pieces[i];
          // SentencePiece drops the dummy-prefix space of the first piece only.
          if (at_start && v_.add_dummy_prefix && p.starts_with(kSpace)) p.remove_prefix(kSpace.size());
          for (std::size_t k = 0; k < p.size();) {
            if (p.substr(k).starts_with(kSpace)) {
              out += ' ';
              k += kSpace.size();
            } else {
              out += p[k++];
            }
          }
        }
      }
      at_start = false;
    }
    return out;
  }

  std::string piece(std::int32_t id) const override {
    check_id(id);
    return v_.pieces[static_cast<std::size_t>(id)];
  }
  std::int32_t vocab_size() const override { return static_cast<std::int32_t>(v_.pieces.size()); }
  std::optional<std::int32_t> bos_id() const override { return v_.bos; }
  std::optional<std::int32_t> eos_id() const override { return v_.eos; }
  std::optional<std::int32_t> token_to_id(std::string_view p) const override {
    auto it = all_.find(p);
    if (it == all_.end()) return std::nullopt;
    return it->second;
  }
  TokenizerKind kind() const override { return TokenizerKind::SentencePieceBpe; }

 private:
  struct Symbol {
    std::int32_t prev, next;
    std::uint32_t off, len;  // bytes of the normalized text; len 0 = merged away
    bool frozen;             // a user-defined piece: never merged with neighbours
  };
  struct Bigram {
    float score;
    std::int32_t left, right;
    std::uint32_t len;  // combined length when queued; stale entries no longer match
    bool operator<(const Bigram& o) const { return score < o.score || (score == o.score && left > o.left); }
  };

  void check_id(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= v_.pieces.size())
      throw InvalidArgument(fmt::format("token id {} out of range for the vocabulary of {} ({} tokens)", id,
                                        v_.source, v_.pieces.size()));
  }

  std::string normalize(std::string_view raw) const {
    std::string_view t = raw;
    std::string collapsed;
    if (v_.remove_extra_whitespaces) {
      // Leading/trailing spaces dropped, inner runs collapsed to one (SentencePiece's normalizer).
      while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
      while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
      for (std::size_t i = 0; i < t.size(); ++i)
        if (t[i] != ' ' || collapsed.empty() || collapsed.back() != ' ') collapsed += t[i];
      t = collapsed;
    }
    std::string s;
    if (t.empty()) return s;
    s.reserve(t.size() + t.size() / 4 + 3);
    if (v_.add_dummy_prefix) s += kSpace;
    for (const char c : t) {
      if (c == ' ')
        s += kSpace;
      else
        s += c;
    }
    return s;
  }

  void encode_fragment(std::string_view raw, std::vector<std::int32_t>& out) const {
    const std::string s = normalize(raw);
    if (s.empty()) return;
    if (!chunkable_) {
      merge_chunk(s, out);
      return;
    }
    // No piece has "▁" after another character, so no merge crosses the start of a run of "▁"; nor can one
    // touch a character that occurs in no multi-character piece (e.g. "\n" in Llama 2). Encode each chunk
    // between such boundaries on its own (same result, shorter heaps) and reuse the ids of repeated chunks.
    std::unordered_map<std::string_view, std::vector<std::int32_t>> cache;
    const std::string_view sv = s;
    std::size_t begin = 0;
    auto flush = [&](std::size_t end) {
      const std::string_view chunk = sv.substr(begin, end - begin);
      auto [it, fresh] = cache.try_emplace(chunk);
      if (fresh) merge_chunk(chunk, it->second);
      out.insert(out.end(), it->second.begin(), it->second.end());
      begin = end;
    };
    bool prev_space = false, prev_lone = false;
    for (std::size_t i = 0; i < sv.size();) {
      const utf8::Char c = utf8::next(sv, i);
      const bool space = c.len == kSpace.size() && sv.substr(i).starts_with(kSpace);
      const bool lone = c.cp == utf8::kInvalid || !joinable(c.cp);
      if (i > begin && ((space && !prev_space) || lone || prev_lone)) flush(i);
      prev_space = space;
      prev_lone = lone;
      i += c.len;
    }
    flush(sv.size());
  }

  void merge_chunk(std::string_view s, std::vector<std::int32_t>& out) const {
    std::vector<Symbol> sym;
    sym.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      std::size_t len = 0;
      bool frozen = false;
      for (const std::string& u : user_defined_) {
        if (std::string_view(s).substr(i).starts_with(u)) {
          len = u.size();
          frozen = true;
          break;
        }
      }
      if (len == 0) len = utf8::next(s, i).len;
      const auto idx = static_cast<std::int32_t>(sym.size());
      sym.push_back({idx - 1, idx + 1, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(len), frozen});
      i += len;
    }
    sym.back().next = -1;

    std::priority_queue<Bigram> heap;
    // Unused pieces that were merged are split back into the pair that built them (SentencePiece resegment).
    StringMap<std::pair<std::string_view, std::string_view>> rev_merge;
    auto try_add = [&](std::int32_t l, std::int32_t r) {
      if (l < 0 || r < 0) return;
      const Symbol& a = sym[static_cast<std::size_t>(l)];
      const Symbol& b = sym[static_cast<std::size_t>(r)];
      if (a.frozen || b.frozen) return;
      const std::string_view text(s.data() + a.off, a.len + b.len);
      auto it = mergeable_.find(text);
      if (it == mergeable_.end()) return;
      const auto id = static_cast<std::size_t>(it->second);
      heap.push({v_.scores[id], l, r, a.len + b.len});
      if (v_.types[id] == SpmTokenType::Unused)
        rev_merge.emplace(std::string(text), std::pair{std::string_view(s.data() + a.off, a.len),
                                                       std::string_view(s.data() + b.off, b.len)});
    };
    for (std::size_t i = 1; i < sym.size(); ++i) try_add(static_cast<std::int32_t>(i - 1), static_cast<std::int32_t>(i));

    while (!heap.empty()) {
      const Bigram bg = heap.top();
      heap.pop();
      Symbol& l = sym[static_cast<std::size_t>(bg.left)];
      Symbol& r = sym[static_cast<std::size_t>(bg.right)];
      if (l.len == 0 || r.len == 0 || l.len + r.len != bg.len || l.next != bg.right) continue;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = bg.left;
      try_add(l.prev, bg.left);
      try_add(bg.left, l.next);
    }

    for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next) {
      const Symbol& x = sym[static_cast<std::size_t>(i)];
      resegment(std::string_view(s.data() + x.off, x.len), rev_merge, out);
    }
  }

  void resegment(std::string_view text, const StringMap<std::pair<std::string_view, std::string_view>>& rev,
                 std::vector<std::int32_t>& out) const {
    auto it = all_.find(text);
    if (it != all_.end()) {
      const auto id = it->second;
      if (v_.types[static_cast<std::size_t>(id)] != SpmTokenType::Unused) {
        out.push_back(id);
        return;
      }
      if (auto m = rev.find(text); m != rev.end()) {
        resegment(m->second.first, rev, out);
        resegment(m->second.second, rev, out);
        return;
      }
      out.push_back(id);
      return;
    }
    // A single character the vocabulary lacks: its UTF-8 bytes as <0xXX> tokens, or <unk>.
    if (v_.byte_fallback) {
      bool all_bytes = true;
      for (const char c : text) all_bytes = all_bytes && byte_id_[static_cast<unsigned char>(c)] >= 0;
      if (all_bytes) {
        for (const char c : text) out.push_back(byte_id_[static_cast<unsigned char>(c)]);
        return;
      }
    }
    if (v_.unk) out.push_back(*v_.unk);
  }

  static std::size_t leading_spaces(std::string_view p) {
    std::size_t k = 0;
    while (p.substr(k).starts_with(kSpace)) k += kSpace.size();
    return k;
  }

  bool joinable(char32_t cp) const {
    if (cp < 0x10000) return joinable_bmp_[cp];
    return std::binary_search(joinable_astral_.begin(), joinable_astral_.end(), cp);
  }

  SpmVocab v_;
  bool chunkable_ = false;
  std::vector<bool> joinable_bmp_ = std::vector<bool>(0x10000, false);
  std::vector<char32_t> joinable_astral_;
  StringMap<std::int32_t> all_, mergeable_;
  std::int32_t byte_id_[256];  // -1 where the vocabulary has no <0xXX> piece
  std::vector<std::string> user_defined_;
  std::vector<std::pair<std::string, std::int32_t>> specials_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_spm_tokenizer(SpmVocab v) {
  const std::size_t n = v.pieces.size();
  if (n == 0) throw FormatError(fmt::format("{}: the vocabulary has no tokens", v.source));
  if (n > static_cast<std::size_t>(INT32_MAX))
    throw FormatError(fmt::format("{}: {} tokens do not fit 32-bit ids", v.source, n));
  if (v.scores.size() != n)
    throw FormatError(fmt::format("{}: {} scores for {} tokens", v.source, v.scores.size(), n));
  if (v.types.size() != n) throw FormatError(fmt::format("{}: {} token types for {} tokens", v.source, v.types.size(), n));
  for (std::size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int>(v.types[i]);
    if (t < 1 || t > 6) throw FormatError(fmt::format("{}: token {} has type {} (expected 1..6)", v.source, i, t));
  }
  auto check = [&](const char* what, std::optional<std::int32_t>& id) {
    if (id && (*id < 0 || static_cast<std::size_t>(*id) >= n))
      throw FormatError(fmt::format("{}: {} {} is outside the vocabulary of {} tokens", v.source, what, *id, n));
  };
  check("bos id", v.bos);
  check("eos id", v.eos);
  check("unk id", v.unk);
  return std::make_unique<SpmTokenizer>(std::move(v));
}

}  // namespace pocketlora
