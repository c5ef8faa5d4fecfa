// `pocketlora generate`: text generation with the decoder (host/infer/): the base model, any number of PEFT
// adapters resident at once (each with its own scale), KV cache, sampling, the text streamed to stdout as it is
// generated. Timings (prompt processing and decode tokens/s) go to stderr so stdout is only the text.
#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "host/core/error.h"
#include "host/eval/peft_lora_adapter.h"
#include "host/infer/chat_prompt.h"
#include "host/infer/generate.h"
#include "host/infer/text_stream.h"
#include "host/model/llama_model.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/trainer.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct GenerateArgs {
  std::string model, tokenizer, prompt, tmpl, backend = "auto", quant = "none";
  std::vector<std::string> adapters;
  SamplingOptions sampling;
  std::int64_t max_tokens = 256, context = 0;
  bool quiet = false;
};

// DIR or DIR:SCALE (the last ':' followed by a number; a directory may itself contain ':').
std::pair<std::string, float> parse_adapter_arg(const std::string& s) {
  const auto colon = s.rfind(':');
  if (colon != std::string::npos && colon + 1 < s.size()) {
    try {
      std::size_t used = 0;
      const std::string tail = s.substr(colon + 1);
      const float scale = std::stof(tail, &used);
      if (used == tail.size()) {
        if (!std::isfinite(scale)) throw InvalidArgument("--adapter " + s + ": scale is not finite");
        return {s.substr(0, colon), scale};
      }
    } catch (const std::logic_error&) {
    }
  }
  return {s, 1.0f};
}

int run_generate(const GenerateArgs& a) {
  const std::filesystem::path model_path = a.model;
  const std::filesystem::path tok_path = a.tokenizer.empty() ? find_tokenizer(model_path) : std::filesystem::path(a.tokenizer);
  const auto tok = load_tokenizer(tok_path);
  LlamaModel model = load_llama_model(model_path, parse_base_quant(a.quant), BaseLoad::Deferred);
  if (tok->vocab_size() > model.config.vocab_size)
    throw InvalidArgument(fmt::format("generate: tokenizer {} has {} tokens, the model's vocabulary {}",
                                      tok_path.string(), tok->vocab_size(), model.config.vocab_size));
  auto be = make_backend(resolve_backend_kind(a.backend));
  Decoder d(*be, upload_llama(*be, model), a.context);
  GenerateOptions opt;
  opt.max_tokens = a.max_tokens;
  opt.sampling = a.sampling;
  for (const auto& spec : a.adapters) {
    const auto [dir, scale] = parse_adapter_arg(spec);
    const std::size_t i = d.add_adapter(load_peft_lora_adapter(dir, model), dir);
    opt.adapters.push_back({i, scale});
  }
  std::vector<std::int32_t> prompt;
  if (a.tmpl.empty()) {
    prompt = tok->encode(a.prompt, tok->bos_id().has_value());
    if (const auto eos = tok->eos_id()) opt.stop = {*eos};
  } else {
    const ChatTemplate t = parse_chat_template(a.tmpl);
    prompt = chat_generation_prompt(*tok, t, a.prompt);
    opt.stop = chat_stop_tokens(*tok, t);
  }
  TextStream stream(*tok);
  const GenerateResult r = generate(d, prompt, opt, [&](std::int32_t id) {
    if (std::find(opt.stop.begin(), opt.stop.end(), id) != opt.stop.end()) return;
    std::cout << stream.push(id) << std::flush;
  });
  std::cout << stream.finish() << "\n";
  if (!a.quiet) {
    const auto decoded = static_cast<double>(r.tokens.size() - 1);
    std::cerr << fmt::format(
        "[{}] prompt {} tokens in {:.1f} ms ({:.1f} tok/s), generated {} tokens, decode {:.1f} tok/s, stop: {}\n",
        be->describe(), r.prompt_tokens, r.prefill_seconds * 1e3, r.prompt_tokens / r.prefill_seconds, r.tokens.size(),
        decoded > 0 && r.decode_seconds > 0 ? decoded / r.decode_seconds : 0.0, r.stopped ? "end token" : "max tokens");
  }
  return 0;
}

CommandRegistration register_cmd_generate("generate", "Generate text with the base model and any PEFT adapters (KV cache, sampling)",
                        [](CLI::App& sub) -> Action {
                          auto a = std::make_shared<GenerateArgs>();
                          sub.add_option("--model", a->model, "llama2.c .bin, GGUF, HF safetensors or bnb-4bit model")
                              ->required();
                          sub.add_option("--tokenizer", a->tokenizer,
                                         "tokenizer file (default: the GGUF's own, or the one beside the model)");
                          sub.add_option("--adapter", a->adapters,
                                         "PEFT adapter directory, optionally :SCALE (repeatable; all apply)");
                          sub.add_option("--prompt", a->prompt, "the prompt text (BOS added)")->required();
                          sub.add_option("--template", a->tmpl, "chat template: llama2, llama3 or chatml (default: none)");
                          sub.add_option("--temperature", a->sampling.temperature, "0: greedy")->capture_default_str();
                          sub.add_option("--top-k", a->sampling.top_k, "0: off")->capture_default_str();
                          sub.add_option("--top-p", a->sampling.top_p, "1: off")->capture_default_str();
                          sub.add_option("--seed", a->sampling.seed, "sampling seed")->capture_default_str();
                          sub.add_option("--max-tokens", a->max_tokens, "most tokens generated")->capture_default_str();
                          sub.add_option("--context", a->context, "KV cache positions (default: the model's)");
                          sub.add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
                          sub.add_option("--quant", a->quant, "base linears: none (f32) or nf4")->capture_default_str();
                          sub.add_flag("--quiet", a->quiet, "no timing line on stderr");
                          return [a] { return run_generate(*a); };
                        });

}  // namespace
}  // namespace pocketlora::cli
