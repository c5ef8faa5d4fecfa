#pragma once
// A generation prompt in a chat template (host/data's templates, as the trainer formats its data): the user turn
// as tokenize_record writes it, followed by the opening of the assistant's turn the model is to complete, and the
// tokens that end that turn.
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/dataset.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

// Llama 2: BOS "[INST] {user} [/INST]"; Llama 3: ... <|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n;
// ChatML: ... <|im_end|>\n<|im_start|>assistant\n. An empty system message is left out.
std::vector<std::int32_t> chat_generation_prompt(const Tokenizer& tok, ChatTemplate tmpl, const std::string& user,
                                                 const std::string& system = {});
// EOS, plus <|eot_id|> (Llama 3) or <|im_end|> (ChatML) when the tokenizer has them.
std::vector<std::int32_t> chat_stop_tokens(const Tokenizer& tok, ChatTemplate tmpl);

}  // namespace pocketlora
