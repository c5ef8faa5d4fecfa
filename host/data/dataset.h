#pragma once
// Training data: records read from Alpaca JSON/JSONL, chat JSONL ({"messages": [{role, content}]}) or plain
// text, turned into token sequences with a loss mask.
//
// Label convention (Hugging Face's): `labels` is aligned with `ids` — labels[t] == ids[t] where token t is a
// training target and kIgnoreLabel (-100) where it is not (prompt, template scaffolding, padding). The trainer
// predicts token t from positions < t, i.e. compares logits[t-1] with labels[t]; labels[0] is always ignored.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace pocketlora {

class Tokenizer;

constexpr std::int32_t kIgnoreLabel = -100;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct Record {
  std::vector<ChatMessage> messages;  // Alpaca records become [user: prompt, assistant: output]
  bool alpaca = false;                // use the Alpaca prompt template instead of a chat template
  std::string alpaca_instruction, alpaca_input, alpaca_output;
  std::string text;                   // plain-text documents (trained on every token)
};

enum class DataFormat { Auto, Alpaca, Chat, Text };
// "auto", "alpaca", "chat", "text"; anything else is an InvalidArgument listing them.
DataFormat parse_data_format(const std::string& name);
const char* data_format_name(DataFormat f);

// Reads every record; FormatError names the file, the line/record and the field. `separator` splits plain text
// into documents (e.g. "<|endoftext|>"; empty: the whole file is one document).
std::vector<Record> read_records(const std::filesystem::path& path, DataFormat format = DataFormat::Auto,
                                 const std::string& separator = "<|endoftext|>");

struct Example {
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> labels;  // same length as ids
  std::vector<std::int32_t> segment;  // document id per token (0 for unpacked examples)
  std::vector<std::int32_t> positions;  // position ids (restart at 0 for each packed document)
};

enum class ChatTemplate { Llama2, Llama3, ChatML };
const char* chat_template_name(ChatTemplate t);
ChatTemplate parse_chat_template(const std::string& name);    // InvalidArgument listing the names
ChatTemplate detect_chat_template(const Tokenizer& tok);       // from the tokenizer's special tokens

// The Stanford Alpaca prompt (with or without input) — exactly as published.
std::string alpaca_prompt(const std::string& instruction, const std::string& input);

// Tokenizes one record with its template; prompt/scaffolding tokens get kIgnoreLabel. Special tokens of the
// template are encoded as specials; message content never is (no special-token injection from user text).
Example tokenize_record(const Tokenizer& tok, const Record& r, ChatTemplate tmpl);

}  // namespace pocketlora
