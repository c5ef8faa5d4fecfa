#include "host/eval/multiple_choice.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/tokenizer/tokenizer.h"
#include "host/util/json_field.h"

namespace pocketlora {

std::vector<ChoiceQuestion> read_choice_questions(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("multiple choice: cannot open " + path.string());
  std::vector<ChoiceQuestion> out;
  std::string text;
  for (std::int64_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string origin = fmt::format("{}: line {}", path.string(), line);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw FormatError(fmt::format("{}: not JSON ({})", origin, e.what()));
    }
    ChoiceQuestion q;
    q.line = line;
    q.question = json_field::string(j, "question", origin);
    q.answer = json_field::integer(j, "answer", origin);
    if (!j.contains("choices") || !j["choices"].is_array())
      throw FormatError(origin + ": field 'choices': expected an array of strings");
    for (std::size_t i = 0; i < j["choices"].size(); ++i) {
      if (!j["choices"][i].is_string())
        throw FormatError(
            fmt::format("{}: field 'choices[{}]': expected string, found {}", origin, i, j["choices"][i].type_name()));
      q.choices.push_back(j["choices"][i].get<std::string>());
    }
    if (q.choices.size() < 2)
      throw FormatError(fmt::format("{}: {} choice(s), at least 2 expected", origin, q.choices.size()));
    if (q.answer < 0 || q.answer >= static_cast<std::int64_t>(q.choices.size()))
      throw FormatError(
          fmt::format("{}: answer {} is not an index of the {} choices", origin, q.answer, q.choices.size()));
    out.push_back(std::move(q));
  }
  if (out.empty()) throw InvalidArgument("multiple choice: " + path.string() + " holds no question");
  return out;
}

std::pair<std::vector<std::int32_t>, std::vector<std::int32_t>> encode_choice_pair(const Tokenizer& tok,
                                                                                   std::string context,
                                                                                   std::string continuation) {
  const std::size_t kept = context.find_last_not_of(' ');
  const std::size_t n_spaces = context.size() - (kept == std::string::npos ? 0 : kept + 1);
  if (n_spaces > 0) {
    continuation = context.substr(context.size() - n_spaces) + continuation;
    context.resize(context.size() - n_spaces);
  }
  const std::vector<std::int32_t> whole = tok.encode(context + continuation, false);
  std::vector<std::int32_t> ctx = tok.encode(context, false);
  const std::size_t n = std::min(ctx.size(), whole.size());
  return {std::move(ctx), std::vector<std::int32_t>(whole.begin() + static_cast<std::ptrdiff_t>(n), whole.end())};
}

std::int64_t code_points(const std::string& utf8) {
  std::int64_t n = 0;
  for (unsigned char c : utf8) n += (c & 0xC0) != 0x80;  // count every byte but UTF-8 continuation bytes
  return n;
}

std::vector<ScoredWindow> choice_windows(const Tokenizer& tok, const std::vector<ChoiceQuestion>& questions,
                                         std::int64_t n_ctx) {
  std::vector<ScoredWindow> windows;
  for (const auto& q : questions)
    for (std::size_t c = 0; c < q.choices.size(); ++c) {
      auto [ctx, cont] = encode_choice_pair(tok, q.question, " " + q.choices[c]);
      if (cont.empty())
        throw InvalidArgument(fmt::format("multiple choice: line {}: choice {} encodes to no token", q.line, c));
      std::vector<std::int32_t> ids;
      if (auto bos = tok.bos_id()) ids.push_back(*bos);
      ids.insert(ids.end(), ctx.begin(), ctx.end());
      ids.insert(ids.end(), cont.begin(), cont.end());
      if (ids.size() <= cont.size())
        throw InvalidArgument(
            fmt::format("multiple choice: line {}: nothing precedes choice {} (an empty question "
                        "and a vocabulary without BOS)",
                        q.line, c));
      if (static_cast<std::int64_t>(cont.size()) >= n_ctx)
        throw InvalidArgument(fmt::format("multiple choice: line {}: choice {} is {} tokens, the context holds {}",
                                          q.line, c, cont.size(), n_ctx));
      if (static_cast<std::int64_t>(ids.size()) > n_ctx)
        ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(n_ctx));
      ScoredWindow w;
      w.first = static_cast<std::int64_t>(ids.size() - cont.size());
      w.ids = std::move(ids);
      windows.push_back(std::move(w));
    }
  return windows;
}

namespace {
// numpy's argmax: the first of equal maxima.
std::int64_t first_argmax(const std::vector<double>& v) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = i;
  return static_cast<std::int64_t>(best);
}
}  // namespace

MultipleChoiceResult multiple_choice(TrainStepEngine& engine, const Tokenizer& tok,
                                     const std::vector<ChoiceQuestion>& questions) {
  const auto windows = choice_windows(tok, questions, engine.options().seq_len);
  const auto nll = score_windows(engine, windows, tok.bos_id().value_or(0));
  MultipleChoiceResult r;
  r.questions = static_cast<std::int64_t>(questions.size());
  std::size_t w = 0;
  std::int64_t right = 0, right_norm = 0;
  for (const auto& q : questions) {
    ChoiceScore s;
    std::vector<double> normed;
    for (std::size_t c = 0; c < q.choices.size(); ++c, ++w) {
      double ll = 0;
      for (double v : nll[w]) ll -= v;
      s.loglik.push_back(ll);
      s.tokens.push_back(static_cast<std::int64_t>(nll[w].size()));
      normed.push_back(ll / static_cast<double>(std::max<std::int64_t>(1, code_points(q.choices[c]))));
    }
    s.pred = first_argmax(s.loglik);
    s.pred_norm = first_argmax(normed);
    right += s.pred == q.answer;
    right_norm += s.pred_norm == q.answer;
    r.scores.push_back(std::move(s));
  }
  r.acc = static_cast<double>(right) / static_cast<double>(r.questions);
  r.acc_norm = static_cast<double>(right_norm) / static_cast<double>(r.questions);
  return r;
}

}  // namespace pocketlora
