// `pocketlora eval`: a model (optionally with a PEFT LoRA adapter) scored on a data file (host/eval/):
//   text     perplexity by llama-perplexity's method (host/eval/perplexity.h)
//   alpaca / chat   validation loss over response tokens, prompts masked as in training (host/eval/validation_loss.h)
//   choices  multiple choice by log-likelihood, acc and acc_norm as lm-evaluation-harness (host/eval/multiple_choice.h)
// Every score comes from the training step engine's eval program, on either backend, over an f32 or NF4 base.
#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "host/core/error.h"
#include "host/eval/multiple_choice.h"
#include "host/eval/peft_lora_adapter.h"
#include "host/eval/perplexity.h"
#include "host/eval/validation_loss.h"
#include "host/tokenizer/tokenizer.h"
#include "host/train/trainer.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

struct EvalArgs {
  std::string model, tokenizer, adapter, quant = "none", data, format = "text", tmpl, backend = "auto";
  std::int64_t ctx = 0, batch = 1;
  bool json = false;
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("eval: cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_eval(const EvalArgs& a) {
  if (a.format != "text" && a.format != "alpaca" && a.format != "chat" && a.format != "choices")
    throw InvalidArgument("--format '" + a.format + "': expected text, alpaca, chat or choices");
  if (a.batch < 1) throw InvalidArgument(fmt::format("--batch {}: expected at least 1", a.batch));
  const auto t0 = std::chrono::steady_clock::now();
  const auto tok = load_tokenizer(a.tokenizer.empty() ? find_tokenizer(a.model) : std::filesystem::path(a.tokenizer));
  const LlamaModel model = load_llama_model(a.model, parse_base_quant(a.quant), BaseLoad::Deferred);
  const std::int64_t ctx = a.ctx > 0 ? a.ctx : std::min<std::int64_t>(512, model.config.max_seq_len);
  if (ctx > model.config.max_seq_len)
    throw InvalidArgument(
        fmt::format("--ctx {} is longer than the model's context length {}", ctx, model.config.max_seq_len));
  const LoraAdapter adapter = a.adapter.empty() ? LoraAdapter{} : load_peft_lora_adapter(a.adapter, model);

  // Refuse bad data before the engine is built.
  std::vector<std::int32_t> tokens;
  std::optional<TrainData> data;
  std::vector<ChoiceQuestion> questions;
  if (a.format == "text") {
    tokens = tok->encode(read_text(a.data), true);  // BOS first, as llama-perplexity tokenizes
    perplexity_windows(tokens, ctx, model.config.max_seq_len, tok->bos_id());
  } else if (a.format == "choices") {
    questions = read_choice_questions(a.data);
    choice_windows(*tok, questions, ctx);
  } else {
    TrainDataOptions o;
    o.path = a.data;
    o.format = parse_data_format(a.format);
    if (!a.tmpl.empty()) o.chat_template = parse_chat_template(a.tmpl);
    o.seq_len = ctx;
    o.pack = false;
    o.validation_fraction = 0;
    data.emplace(*tok, o, model.config.max_seq_len, model.config.vocab_size);
  }

  auto be = make_backend(resolve_backend_kind(a.backend));
  StepEngineOptions eo;
  eo.micro_batch = a.batch;
  eo.seq_len = ctx;
  eo.token_scores = a.format == "text" || a.format == "choices";
  TrainStepEngine engine(*be, model, adapter, eo);
  const auto t1 = std::chrono::steady_clock::now();

  nlohmann::json j = {{"model", a.model},
                      {"quant", a.quant},
                      {"adapter", a.adapter.empty() ? nlohmann::json(nullptr) : nlohmann::json(a.adapter)},
                      {"data", a.data},
                      {"format", a.format},
                      {"ctx", ctx},
                      {"batch", a.batch},
                      {"backend", be->describe()}};
  std::string summary;
  if (a.format == "text") {
    const PerplexityResult r = text_perplexity(engine, tokens, ctx, model.config.max_seq_len, tok->bos_id());
    j.update({{"task", "perplexity"},
              {"ppl", r.ppl},
              {"ppl_error", r.ppl_error},
              {"mean_nll", r.mean_nll},
              {"text_tokens", r.text_tokens},
              {"chunks", r.chunks},
              {"scored_tokens", r.scored_tokens}});
    summary = fmt::format("{} tokens, {} chunks of {}, {} scored\nPPL = {:.4f} +/- {:.5f} (mean NLL {:.6f})",
                          r.text_tokens, r.chunks, ctx, r.scored_tokens, r.ppl, r.ppl_error, r.mean_nll);
  } else if (a.format == "choices") {
    const MultipleChoiceResult r = multiple_choice(engine, *tok, questions);
    nlohmann::json per = nlohmann::json::array();
    for (std::size_t q = 0; q < r.scores.size(); ++q)
      per.push_back({{"line", questions[q].line},
                     {"loglik", r.scores[q].loglik},
                     {"tokens", r.scores[q].tokens},
                     {"pred", r.scores[q].pred},
                     {"pred_norm", r.scores[q].pred_norm},
                     {"answer", questions[q].answer}});
    j.update({{"task", "multiple_choice"},
              {"questions", r.questions},
              {"acc", r.acc},
              {"acc_norm", r.acc_norm},
              {"scores", per}});
    summary = fmt::format("{} questions: acc {:.4f}, acc_norm {:.4f}", r.questions, r.acc, r.acc_norm);
  } else {
    const ValidationLossResult r = validation_loss(engine, *data);
    j.update({{"task", "validation_loss"},
              {"loss", r.loss},
              {"ppl", r.ppl},
              {"records", r.records},
              {"windows", r.windows},
              {"targets", r.targets},
              {"truncated", r.truncated},
              {"dropped_no_targets", r.dropped_no_targets}});
    summary =
        fmt::format("{} records ({} cut to {} tokens, {} without a target), {} target tokens\nloss {:.6f}, PPL {:.4f}",
                    r.records, r.truncated, ctx, r.dropped_no_targets, r.targets, r.loss, r.ppl);
  }
  const auto t2 = std::chrono::steady_clock::now();
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double eval_s = std::chrono::duration<double>(t2 - t1).count();
  j.update({{"load_s", load_s}, {"eval_s", eval_s}});
  if (a.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} ({} base{}), backend {}\n{}\nload {:.2f} s, eval {:.2f} s\n", a.model,
                           model.quant == BaseQuant::Nf4 ? "NF4" : "f32",
                           a.adapter.empty() ? "" : ", adapter " + a.adapter, be->describe(), summary, load_s, eval_s);
  return 0;
}

CommandRegistration register_cmd_eval(
    "eval", "Perplexity, validation loss or multiple-choice accuracy of a model (+ LoRA adapter)",
    [](CLI::App& sub) -> Action {
      auto a = std::make_shared<EvalArgs>();
      sub.add_option("--model", a->model, "llama2.c .bin, GGUF, HF safetensors or bnb-4bit model")->required();
      sub.add_option("--tokenizer", a->tokenizer, "tokenizer (default: the GGUF's, or one beside the model)");
      sub.add_option("--adapter", a->adapter, "PEFT LoRA adapter directory");
      sub.add_option("--quant", a->quant, "base linears: none (as stored, f32) or nf4")->capture_default_str();
      sub.add_option("--data", a->data, "text file, Alpaca/chat JSON(L), or choices JSONL")->required();
      sub.add_option("--ctx", a->ctx, "context (tokens per window; default min(512, model's))");
      sub.add_option("--format", a->format,
                     "text (perplexity), alpaca / chat (validation loss), choices (multiple choice)")
          ->capture_default_str();
      sub.add_option("--template", a->tmpl,
                     "chat template: llama2, llama3, chatml (default: "
                     "from the tokenizer)");
      sub.add_option("--backend", a->backend, "auto, cpu or vulkan")->capture_default_str();
      sub.add_option("--batch", a->batch, "windows per forward")->capture_default_str();
      sub.add_flag("--json", a->json, "machine-readable output");
      return [a] { return run_eval(*a); };
    });

}  // namespace
}  // namespace pocketlora::cli
