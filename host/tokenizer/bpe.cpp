// Byte-level BPE encoder/decoder. Merges run on token ids: a pre-token starts as one id per byte and the
// adjacent pair of lowest merge rank is merged until none is left (ties: leftmost first, as in Hugging Face
// tokenizers' Word::merge_all). A min-heap over pair ranks keeps long pre-tokens O(n log n); an encode call
// caches the ids of each distinct pre-token, which is what makes prose fast (words repeat).
#include <algorithm>
#include <queue>
#include <unordered_map>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/tokenizer/bpe.h"
#include "host/tokenizer/utf8.h"

namespace pocketlora {
namespace {

struct MergeInfo {
  std::int32_t rank;
  std::int32_t result;
};

// Open-addressing hash table (pair of ids -> merge): one flat array instead of 280k heap nodes, which is
// most of the load time with std::unordered_map.
class MergeTable {
 public:
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {}});
    mask_ = cap - 1;
  }
  // Keeps the first insertion of a key (the lowest rank).
  void insert(std::uint64_t k, MergeInfo m) {
    for (std::size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {k, m};
        return;
      }
    }
  }
  const MergeInfo* find(std::uint64_t k) const {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i].value;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // ids are non-negative int32: never a real key
  struct Slot {
    std::uint64_t key;
    MergeInfo value;
  };
  static std::size_t hash(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<std::size_t>(k);
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

// String -> id over the tokenizer's own piece storage: slots hold (id + 1, hash) and compare against the
// piece, so there is no per-entry node or string copy (128k entries, ~850k lookups while resolving merges).
class PieceIndex {
 public:
  void build(const std::vector<std::string>& pieces) {
    pieces_ = &pieces;
    std::size_t cap = 16;
    while (cap < 2 * pieces.size()) cap <<= 1;
    slots_.assign(cap, Slot{0, 0});
    mask_ = cap - 1;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const std::size_t h = std::hash<std::string_view>{}(pieces[i]);
      std::size_t k = h & mask_;
      bool dup = false;
      for (; slots_[k].id1 != 0; k = (k + 1) & mask_)
        if (slots_[k].hash == static_cast<std::uint32_t>(h) && pieces[slots_[k].id1 - 1] == pieces[i]) dup = true;
      if (!dup) slots_[k] = {static_cast<std::uint32_t>(i + 1), static_cast<std::uint32_t>(h)};  // first id wins
    }
  }
  std::optional<std::int32_t> find(std::string_view s) const {
    const std::size_t h = std::hash<std::string_view>{}(s);
    for (std::size_t k = h & mask_; slots_[k].id1 != 0; k = (k + 1) & mask_)
      if (slots_[k].hash == static_cast<std::uint32_t>(h) && (*pieces_)[slots_[k].id1 - 1] == s)
        return static_cast<std::int32_t>(slots_[k].id1 - 1);
    return std::nullopt;
  }

 private:
  struct Slot {
    std::uint32_t id1, hash;
  };
  const std::vector<std::string>* pieces_ = nullptr;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

class ByteBpeTokenizer final : public Tokenizer {
 public:
  // ids_ points into v_.pieces: the object must stay where it was built.
  ByteBpeTokenizer(const ByteBpeTokenizer&) = delete;
  ByteBpeTokenizer& operator=(const ByteBpeTokenizer&) = delete;

  explicit ByteBpeTokenizer(ByteBpeVocab v) : v_(std::move(v)) {
    const std::size_t n = v_.pieces.size();
    ids_.build(v_.pieces);
    std::string byte_strings[256];
    for (unsigned b = 0; b < 256; ++b) {
      utf8::append(byte_strings[b], byte_to_unicode(static_cast<std::uint8_t>(b)));
      byte_str_[b] = byte_strings[b];
      const auto id = ids_.find(byte_strings[b]);
      if (!id || v_.added[static_cast<std::size_t>(*id)])
        throw FormatError(fmt::format("{}: model.vocab has no entry for byte 0x{:02X} ('{}'), which byte-level BPE needs",
                                      v_.source, b, byte_strings[b]));
      byte_id_[b] = *id;
    }
    // Reverse alphabet for decoding: code point (all below U+0144) -> byte + 1, 0 = not in the alphabet.
    std::uint16_t rev[0x144] = {};
    for (unsigned b = 0; b < 256; ++b) rev[byte_to_unicode(static_cast<std::uint8_t>(b))] = static_cast<std::uint16_t>(b + 1);
    bytes_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& p = v_.pieces[i];
      if (v_.added[i]) {
        if (!v_.special[i]) bytes_[i] = p;  // special tokens have no surface text
        continue;
      }
      std::string& out = bytes_[i];
      for (std::size_t k = 0; k < p.size();) {
        const utf8::Char c = utf8::next(p, k);
        if (c.cp >= 0x144 || rev[c.cp] == 0)
          throw FormatError(fmt::format("{}: model.vocab entry {} ('{}') has a character outside the byte-level alphabet",
                                        v_.source, i, p));
        out += static_cast<char>(rev[c.cp] - 1);
        k += c.len;
      }
    }
    merges_.reserve(v_.merges.size());
    std::string ab;
    for (std::size_t r = 0; r < v_.merges.size(); ++r) {
      const auto& [a, b] = v_.merges[r];
      ab.assign(a).append(b);
      const auto ia = ids_.find(a), ib = ids_.find(b), ic = ids_.find(ab);
      if (!ia || !ib || !ic)
        throw FormatError(fmt::format("{}: model.merges[{}] '{} {}': {} is not in model.vocab", v_.source, r, a, b,
                                      !ia ? a : !ib ? b : a + b));
      // The first (lowest-rank) occurrence of a pair wins.
      merges_.insert(key(*ia, *ib), MergeInfo{static_cast<std::int32_t>(r), *ic});
    }
    // Added tokens matched before pre-tokenization, longest first.
    for (std::size_t i = 0; i < n; ++i)
      if (v_.added[i] && !v_.pieces[i].empty()) added_.emplace_back(v_.pieces[i], static_cast<std::int32_t>(i));
    std::stable_sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
    for (const auto& a : added_) added_first_[static_cast<unsigned char>(a.first[0])] = true;
    v_.merges.clear();
    v_.merges.shrink_to_fit();
  }

  std::vector<std::int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const override {
    std::vector<std::int32_t> out;
    if (add_bos && v_.bos) out.push_back(*v_.bos);
    Scratch s;
    std::size_t start = 0;
    if (!added_.empty()) {
      for (std::size_t i = 0; i < text.size(); ++i) {
        if (!added_first_[static_cast<unsigned char>(text[i])]) continue;
        for (const auto& [str, id] : added_) {
          // Hugging Face splits non-special added tokens always; special ones only when asked to.
          if (!parse_special && v_.special[static_cast<std::size_t>(id)]) continue;
          if (text.substr(i).starts_with(str)) {
            encode_text(text.substr(start, i - start), out, s);
            out.push_back(id);
            i += str.size() - 1;
            start = i + 1;
            break;
          }
        }
      }
    }
    encode_text(text.substr(start), out, s);
    return out;
  }

  std::string decode(std::span<const std::int32_t> ids) const override {
    std::string out;
    for (const std::int32_t id : ids) {
      check_id(id);
      out += bytes_[static_cast<std::size_t>(id)];
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
    return ids_.find(p);
  }
  TokenizerKind kind() const override { return TokenizerKind::ByteLevelBpe; }

 private:
  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32 | static_cast<std::uint32_t>(b);
  }

  struct Node {
    std::int32_t id, prev, next;
  };
  struct Cand {
    std::int32_t rank, left, left_id, right_id, result;
    bool operator>(const Cand& o) const { return rank > o.rank || (rank == o.rank && left > o.left); }
  };
  // Per-call state: the pre-token cache and reusable buffers (no allocation per merge).
  struct Scratch {
    std::vector<std::string_view> words;
    std::unordered_map<std::string_view, std::vector<std::int32_t>> cache;
    std::vector<Node> nodes;
    std::vector<Cand> heap;
    std::string mapped;
  };

  void check_id(std::int32_t id) const {
    if (id < 0 || static_cast<std::size_t>(id) >= v_.pieces.size())
      throw InvalidArgument(fmt::format("token id {} out of range for the vocabulary of {} ({} tokens)", id, v_.source,
                                        v_.pieces.size()));
  }

  void encode_text(std::string_view text, std::vector<std::int32_t>& out, Scratch& s) const {
    if (text.empty()) return;
    s.words.clear();
    llama3_pretokenize(text, s.words);
    for (const std::string_view w : s.words) {
      auto [it, fresh] = s.cache.try_emplace(w);
      if (fresh) encode_word(w, it->second, s);
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }

  std::optional<std::int32_t> merge_of(std::int32_t a, std::int32_t b, std::int32_t& rank) const {
    const MergeInfo* m = merges_.find(key(a, b));
    if (!m) return std::nullopt;
    rank = m->rank;
    return m->result;
  }

  void encode_word(std::string_view w, std::vector<std::int32_t>& ids, Scratch& s) const {
    if (w.size() == 1) {
      ids.push_back(byte_id_[static_cast<unsigned char>(w[0])]);
      return;
    }
    if (v_.ignore_merges) {
      s.mapped.clear();
      for (const char c : w) s.mapped += byte_str_[static_cast<unsigned char>(c)];
      if (const auto id = ids_.find(s.mapped); id && !v_.added[static_cast<std::size_t>(*id)]) {
        ids.push_back(*id);
        return;
      }
    }
    auto& nodes = s.nodes;
    auto& heap = s.heap;
    nodes.clear();
    heap.clear();
    const auto n = static_cast<std::int32_t>(w.size());
    for (std::int32_t i = 0; i < n; ++i) nodes.push_back({byte_id_[static_cast<unsigned char>(w[static_cast<std::size_t>(i)])], i - 1, i + 1 < n ? i + 1 : -1});
    auto push = [&](std::int32_t l) {
      if (l < 0) return;
      const std::int32_t r = nodes[static_cast<std::size_t>(l)].next;
      if (r < 0) return;
      std::int32_t rank;
      const std::int32_t a = nodes[static_cast<std::size_t>(l)].id, b = nodes[static_cast<std::size_t>(r)].id;
      if (auto res = merge_of(a, b, rank)) {
        heap.push_back({rank, l, a, b, *res});
        std::push_heap(heap.begin(), heap.end(), std::greater<>{});
      }
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      const Cand c = heap.back();
      heap.pop_back();
      Node& l = nodes[static_cast<std::size_t>(c.left)];
      // Stale if either side changed since the candidate was queued.
      if (l.id != c.left_id || l.next < 0) continue;
      Node& r = nodes[static_cast<std::size_t>(l.next)];
      if (r.id != c.right_id) continue;
      l.id = c.result;
      r.id = -1;
      l.next = r.next;
      if (r.next >= 0) nodes[static_cast<std::size_t>(r.next)].prev = c.left;
      push(l.prev);
      push(c.left);
    }
    for (std::int32_t i = 0; i >= 0; i = nodes[static_cast<std::size_t>(i)].next) ids.push_back(nodes[static_cast<std::size_t>(i)].id);
  }

  ByteBpeVocab v_;
  PieceIndex ids_;
  MergeTable merges_;
  std::int32_t byte_id_[256];
  std::string byte_str_[256];
  std::vector<std::string> bytes_;  // decoded bytes of each id
  std::vector<std::pair<std::string, std::int32_t>> added_;
  bool added_first_[256] = {};
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_bpe_tokenizer(ByteBpeVocab v) {
  const std::size_t n = v.pieces.size();
  if (n == 0) throw FormatError(fmt::format("{}: the vocabulary has no tokens", v.source));
  if (n > static_cast<std::size_t>(INT32_MAX)) throw FormatError(fmt::format("{}: {} tokens do not fit 32-bit ids", v.source, n));
  if (v.special.size() != n || v.added.size() != n)
    throw FormatError(fmt::format("{}: token flags for {} of {} tokens", v.source, std::min(v.special.size(), v.added.size()), n));
  for (auto* id : {&v.bos, &v.eos})
    if (*id && (**id < 0 || static_cast<std::size_t>(**id) >= n))
      throw FormatError(fmt::format("{}: bos/eos id {} is outside the vocabulary of {} tokens", v.source, **id, n));
  return std::make_unique<ByteBpeTokenizer>(std::move(v));
}

}  // namespace pocketlora
