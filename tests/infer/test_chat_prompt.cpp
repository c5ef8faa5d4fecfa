// Generation prompts in a chat template (host/infer/chat_prompt.h): the prompt is exactly what the trainer's
// formatting of the same conversation (host/data tokenize_record) puts before the assistant's answer, so a model
// fine-tuned on that format is asked in it; the stop tokens end the assistant's turn.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/test_data.h"
#include "host/core/error.h"
#include "host/infer/chat_prompt.h"

namespace pocketlora {
namespace {

TEST(ChatPrompt, Llama3PromptIsTheTrainingFormatUpToTheAnswer) {
  POCKETLORA_REQUIRE_DATA(path, "tokenizers/llama3/tokenizer.json");
  const auto tok = load_tokenizer(path);
  const auto prompt = chat_generation_prompt(*tok, ChatTemplate::Llama3, "Name a colour.", "Be brief.");
  Record r;
  r.messages = {{"system", "Be brief."}, {"user", "Name a colour."}, {"assistant", "Blue."}};
  const Example ex = tokenize_record(*tok, r, ChatTemplate::Llama3);
  // The training ids: the prompt, then the answer's tokens (trained), then <|eot_id|>.
  ASSERT_LT(prompt.size(), ex.ids.size());
  EXPECT_EQ(std::vector<std::int32_t>(ex.ids.begin(), ex.ids.begin() + static_cast<std::ptrdiff_t>(prompt.size())),
            prompt);
  const auto answer = std::vector<std::int32_t>(ex.ids.begin() + static_cast<std::ptrdiff_t>(prompt.size()),
                                                ex.ids.end() - 1);
  EXPECT_EQ(tok->decode(answer), "Blue.");
  const auto stop = chat_stop_tokens(*tok, ChatTemplate::Llama3);
  EXPECT_NE(std::find(stop.begin(), stop.end(), *tok->token_to_id("<|eot_id|>")), stop.end());
  EXPECT_THROW(chat_generation_prompt(*tok, ChatTemplate::ChatML, "hi"), InvalidArgument);  // no <|im_start|>
}

TEST(ChatPrompt, Llama2PromptIsTheUserTurn) {
  POCKETLORA_REQUIRE_DATA(path, "models/stories260K/tok512.bin");
  const auto tok = load_tokenizer(path);
  const auto prompt = chat_generation_prompt(*tok, ChatTemplate::Llama2, "Tell a story.");
  EXPECT_EQ(prompt, tok->encode("[INST] Tell a story. [/INST]", true));
  EXPECT_EQ(chat_stop_tokens(*tok, ChatTemplate::Llama2), std::vector<std::int32_t>{*tok->eos_id()});
}

}  // namespace
}  // namespace pocketlora
