#include "host/data/dataset.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "host/core/error.h"
#include "host/tokenizer/tokenizer.h"

namespace pocketlora {

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError("cannot open dataset '" + p.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + static_cast<std::size_t>(n) > s.size()) return false;
    for (int k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) >> 6) != 2) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

std::string field(const nlohmann::json& j, const char* key, bool required, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) throw FormatError(where + ": missing field '" + key + "'");
    return {};
  }
  if (!j[key].is_string()) throw FormatError(where + ": field '" + std::string(key) + "' is not a string");
  return j[key].get<std::string>();
}

Record parse_object(const nlohmann::json& j, DataFormat fmt, const std::string& where) {
  if (!j.is_object()) throw FormatError(where + ": record is not a JSON object");
  Record r;
  const bool chat = fmt == DataFormat::Chat || (fmt == DataFormat::Auto && j.contains("messages"));
  if (chat) {
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
      throw FormatError(where + ": field 'messages' must be a non-empty array");
    for (std::size_t i = 0; i < j["messages"].size(); ++i) {
      const auto& m = j["messages"][i];
      const std::string w = where + ", message " + std::to_string(i);
      if (!m.is_object()) throw FormatError(w + ": not an object");
      ChatMessage msg{field(m, "role", true, w), field(m, "content", true, w)};
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
        throw FormatError(w + ": role '" + msg.role + "' (expected system, user or assistant)");
      r.messages.push_back(std::move(msg));
    }
    return r;
  }
  r.alpaca = true;
  r.alpaca_instruction = field(j, "instruction", true, where);
  r.alpaca_input = field(j, "input", false, where);
  r.alpaca_output = field(j, "output", true, where);
  return r;
}

}  // namespace

std::vector<Record> read_records(const std::filesystem::path& path, DataFormat format, const std::string& separator) {
  const std::string data = read_file(path);
  const std::string origin = "dataset '" + path.string() + "'";
  if (!valid_utf8(data)) throw FormatError(origin + ": not valid UTF-8");
  std::vector<Record> out;
  std::size_t first = data.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw FormatError(origin + ": empty");
  const bool json_like = data[first] == '[' || data[first] == '{';
  if (format == DataFormat::Text || (format == DataFormat::Auto && !json_like)) {
    std::size_t pos = 0;
    while (pos <= data.size()) {
      std::size_t end = separator.empty() ? std::string::npos : data.find(separator, pos);
      std::string doc = data.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      const auto b = doc.find_first_not_of(" \t\r\n"), e = doc.find_last_not_of(" \t\r\n");
      if (b != std::string::npos) {
        Record r;
        r.text = doc.substr(b, e - b + 1);
        out.push_back(std::move(r));
      }
      if (end == std::string::npos) break;
      pos = end + separator.size();
    }
  } else if (data[first] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(data);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(origin + ": invalid JSON: " + e.what());
    }
    for (std::size_t i = 0; i < j.size(); ++i)
      out.push_back(parse_object(j[i], format, origin + ", record " + std::to_string(i)));
  } else {  // JSONL
    std::istringstream lines(data);
    std::string line;
    for (std::size_t no = 1; std::getline(lines, line); ++no) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw FormatError(origin + ", line " + std::to_string(no) + ": invalid JSON: " + e.what());
      }
      out.push_back(parse_object(j, format, origin + ", line " + std::to_string(no)));
    }
  }
  if (out.empty()) throw FormatError(origin + ": no usable records");
  return out;
}

DataFormat parse_data_format(const std::string& name) {
  if (name == "auto") return DataFormat::Auto;
  if (name == "alpaca") return DataFormat::Alpaca;
  if (name == "chat") return DataFormat::Chat;
  if (name == "text") return DataFormat::Text;
  throw InvalidArgument("--format '" + name + "': expected auto, alpaca, chat or text");
}

const char* data_format_name(DataFormat f) {
  switch (f) {
    case DataFormat::Auto: return "auto";
    case DataFormat::Alpaca: return "alpaca";
    case DataFormat::Chat: return "chat";
    case DataFormat::Text: return "text";
  }
  return "?";
}

const char* chat_template_name(ChatTemplate t) {
  switch (t) {
    case ChatTemplate::Llama2: return "llama2";
    case ChatTemplate::Llama3: return "llama3";
    case ChatTemplate::ChatML: return "chatml";
  }
  return "?";
}

ChatTemplate parse_chat_template(const std::string& name) {
  if (name == "llama2") return ChatTemplate::Llama2;
  if (name == "llama3") return ChatTemplate::Llama3;
  if (name == "chatml") return ChatTemplate::ChatML;
  throw InvalidArgument("unknown chat template '" + name + "' (llama2, llama3, chatml)");
}

ChatTemplate detect_chat_template(const Tokenizer& tok) {
  if (tok.token_to_id("<|start_header_id|>")) return ChatTemplate::Llama3;
  if (tok.token_to_id("<|im_start|>")) return ChatTemplate::ChatML;
  return ChatTemplate::Llama2;
}

std::string alpaca_prompt(const std::string& instruction, const std::string& input) {
  if (input.empty())
    return "Below is an instruction that describes a task. Write a response that appropriately completes the "
           "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n";
  return "Below is an instruction that describes a task, paired with an input that provides further context. Write a "
         "response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
         "\n\n### Input:\n" + input + "\n\n### Response:\n";
}

namespace {

// Appends tokens, trained (labels = ids) or masked.
void append(Example& ex, const std::vector<std::int32_t>& ids, bool trained) {
  for (auto id : ids) {
    ex.ids.push_back(id);
    ex.labels.push_back(trained ? id : kIgnoreLabel);
  }
}

std::int32_t require_special(const Tokenizer& tok, const char* piece) {
  auto id = tok.token_to_id(piece);
  if (!id) throw InvalidArgument(std::string("the tokenizer has no special token '") + piece + "' needed by the template");
  return *id;
}

}  // namespace

Example tokenize_record(const Tokenizer& tok, const Record& r, ChatTemplate tmpl) {
  Example ex;
  const auto bos = tok.bos_id(), eos = tok.eos_id();
  if (!r.text.empty() && !r.alpaca && r.messages.empty()) {
    append(ex, tok.encode(r.text, bos.has_value(), false), true);
    if (!ex.labels.empty()) ex.labels[0] = kIgnoreLabel;  // BOS (or the first token) is never a target
    if (eos) append(ex, {*eos}, true);
  } else if (r.alpaca) {
    // Full text encoded once (so no token merges across the prompt/response boundary change), the prompt's
    // token count masked — the usual Alpaca fine-tuning recipe.
    const std::string prompt = alpaca_prompt(r.alpaca_instruction, r.alpaca_input);
    const auto full = tok.encode(prompt + r.alpaca_output, bos.has_value(), false);
    const auto p = tok.encode(prompt, bos.has_value(), false);
    const std::size_t masked = std::min(p.size(), full.size());
    ex.ids = full;
    ex.labels = full;
    for (std::size_t i = 0; i < masked; ++i) ex.labels[i] = kIgnoreLabel;
    if (eos) append(ex, {*eos}, true);
  } else {
    switch (tmpl) {
      case ChatTemplate::Llama3: {
        const auto start = require_special(tok, "<|start_header_id|>"), end = require_special(tok, "<|end_header_id|>"),
                   eot = require_special(tok, "<|eot_id|>");
        if (bos) append(ex, {*bos}, false);
        for (auto& m : r.messages) {
          const bool trained = m.role == "assistant";
          append(ex, {start}, false);
          append(ex, tok.encode(m.role, false, false), false);
          append(ex, {end}, false);
          append(ex, tok.encode("\n\n" + m.content, false, false), trained);
          append(ex, {eot}, trained);
        }
        break;
      }
      case ChatTemplate::ChatML: {
        const auto start = require_special(tok, "<|im_start|>"), end = require_special(tok, "<|im_end|>");
        for (auto& m : r.messages) {
          const bool trained = m.role == "assistant";
          append(ex, {start}, false);
          append(ex, tok.encode(m.role + "\n", false, false), false);
          append(ex, tok.encode(m.content, false, false), trained);
          append(ex, {end}, trained);
          append(ex, tok.encode("\n", false, false), false);
        }
        break;
      }
      case ChatTemplate::Llama2: {
        // Meta's reference: each (user, assistant) pair is BOS + "[INST] {user} [/INST] {answer} " + EOS; a system
        // message is folded into the first user turn between <<SYS>> markers. [INST] etc. are plain text.
        std::string system;
        std::size_t i = 0;
        if (!r.messages.empty() && r.messages[0].role == "system") system = r.messages[i++].content;
        for (; i < r.messages.size(); ++i) {
          if (r.messages[i].role != "user") throw InvalidArgument("llama2 template: expected a user turn at message " + std::to_string(i));
          std::string user = r.messages[i].content;
          if (!system.empty()) {
            user = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user;
            system.clear();
          }
          const std::string prompt = "[INST] " + user + " [/INST]";
          const auto p = tok.encode(prompt, bos.has_value(), false);
          if (i + 1 < r.messages.size() && r.messages[i + 1].role == "assistant") {
            const auto full = tok.encode(prompt + " " + r.messages[i + 1].content + " ", bos.has_value(), false);
            const std::size_t masked = std::min(p.size(), full.size());
            for (std::size_t k = 0; k < full.size(); ++k) {
              ex.ids.push_back(full[k]);
              ex.labels.push_back(k < masked ? kIgnoreLabel : full[k]);
            }
            if (eos) append(ex, {*eos}, true);
            ++i;
          } else {
            append(ex, p, false);
          }
        }
        break;
      }
    }
  }
  ex.segment.assign(ex.ids.size(), 0);
  ex.positions.resize(ex.ids.size());
  for (std::size_t t = 0; t < ex.ids.size(); ++t) ex.positions[t] = static_cast<std::int32_t>(t);
  return ex;
}

}  // namespace pocketlora
