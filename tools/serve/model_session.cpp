#include "tools/serve/model_session.h"

#include <algorithm>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/infer/chat_prompt.h"
#include "host/infer/text_stream.h"

namespace pocketlora::serve {

ModelSession::ModelSession(const std::filesystem::path& model, const std::filesystem::path& tokenizer,
                           BackendKind backend)
    : path_(model), model_(load_llama_model(model, BaseQuant::None)), tok_(load_tokenizer(tokenizer)) {
  if (tok_->vocab_size() > model_.config.vocab_size)
    throw InvalidArgument(fmt::format("{}: tokenizer {} has {} tokens, the model's vocabulary {}", model.string(),
                                      tokenizer.string(), tok_->vocab_size(), model_.config.vocab_size));
  be_ = make_backend(backend);
}

GenerateOutcome ModelSession::generate(const GenerateRequest& r, const AdapterStore& store,
                                       const std::function<bool(const std::string&, std::int32_t)>& on_piece) {
  std::lock_guard lock(mu_);
  if (!decoder_) decoder_ = std::make_unique<Decoder>(*be_, upload_llama(*be_, model_));
  GenerateOptions opt;
  opt.max_tokens = r.max_tokens;
  opt.sampling = r.sampling;
  if (r.adapter) opt.adapters.push_back({resident_.index(*decoder_, model_, path_, store, *r.adapter), r.scale});
  std::vector<std::int32_t> prompt;
  if (r.chat) {
    const ChatTemplate t = detect_chat_template(*tok_);
    prompt = chat_generation_prompt(*tok_, t, r.prompt);
    opt.stop = chat_stop_tokens(*tok_, t);
  } else {
    prompt = tok_->encode(r.prompt, tok_->bos_id().has_value());
    if (const auto eos = tok_->eos_id()) opt.stop = {*eos};
  }
  // Primed with the prompt (its text dropped): the first generated piece keeps its leading space, which
  // SentencePiece drops from the first piece of a text, so the page can append it to the prompt.
  TextStream stream(*tok_);
  for (const std::int32_t id : prompt) stream.push(id);
  GenerateOutcome out;
  try {
    const GenerateResult g = pocketlora::generate(*decoder_, prompt, opt, [&](std::int32_t id) {
      ++out.tokens;
      const bool stop = std::find(opt.stop.begin(), opt.stop.end(), id) != opt.stop.end();
      if (!stop && !on_piece(stream.push(id), id))
        throw CancelledError(fmt::format("generation cancelled after {} tokens", out.tokens));
    });
    const std::string tail = stream.finish();
    if (!tail.empty()) on_piece(tail, -1);
    out.stop = g.stopped ? "eos" : "max_tokens";
    const auto decoded = static_cast<double>(g.tokens.size()) - 1;
    out.tokens_per_s = decoded > 0 && g.decode_seconds > 0 ? decoded / g.decode_seconds : 0.0;
  } catch (const CancelledError&) {
    out.stop = "cancelled";
  }
  return out;
}

}  // namespace pocketlora::serve
