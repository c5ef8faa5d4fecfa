#include "host/infer/chat_prompt.h"

#include "host/core/error.h"

namespace pocketlora {

namespace {

std::int32_t special(const Tokenizer& tok, const char* piece) {
  const auto id = tok.token_to_id(piece);
  if (!id) throw InvalidArgument(std::string("chat prompt: the tokenizer has no special token '") + piece + "'");
  return *id;
}

void append(std::vector<std::int32_t>& out, const std::vector<std::int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace

std::vector<std::int32_t> chat_generation_prompt(const Tokenizer& tok, ChatTemplate tmpl, const std::string& user,
                                                 const std::string& system) {
  Record r;
  if (!system.empty()) r.messages.push_back({"system", system});
  r.messages.push_back({"user", user});
  std::vector<std::int32_t> ids = tokenize_record(tok, r, tmpl).ids;
  switch (tmpl) {
    case ChatTemplate::Llama2: break;  // "[INST] ... [/INST]" is already the cue
    case ChatTemplate::Llama3:
      ids.push_back(special(tok, "<|start_header_id|>"));
      append(ids, tok.encode("assistant", false, false));
      ids.push_back(special(tok, "<|end_header_id|>"));
      append(ids, tok.encode("\n\n", false, false));
      break;
    case ChatTemplate::ChatML:
      ids.push_back(special(tok, "<|im_start|>"));
      append(ids, tok.encode("assistant\n", false, false));
      break;
  }
  return ids;
}

std::vector<std::int32_t> chat_stop_tokens(const Tokenizer& tok, ChatTemplate tmpl) {
  std::vector<std::int32_t> stop;
  if (const auto eos = tok.eos_id()) stop.push_back(*eos);
  const char* end = tmpl == ChatTemplate::Llama3 ? "<|eot_id|>" : tmpl == ChatTemplate::ChatML ? "<|im_end|>" : nullptr;
  if (end)
    if (const auto id = tok.token_to_id(end); id && (stop.empty() || stop[0] != *id)) stop.push_back(*id);
  return stop;
}

}  // namespace pocketlora
