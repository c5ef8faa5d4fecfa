// `pocketlora export --model PATH --adapter PATH --format peft|gguf|merged --out PATH [--dtype ...]`: converts a
// LoRA adapter between PEFT and llama.cpp's GGUF LoRA, or merges it into its base (host/adapters/adapter_export.h
// lists what each --format/--dtype/--out writes).
#include <fmt/format.h>

#include "host/adapters/adapter_export.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

CommandRegistration register_cmd_export("export", "Export a LoRA adapter (PEFT, GGUF LoRA) or merge it into its base", [](CLI::App& sub) {
  auto opt = std::make_shared<ExportOptions>();
  auto model = std::make_shared<std::string>(), adapter = std::make_shared<std::string>(),
       out = std::make_shared<std::string>(), format = std::make_shared<std::string>();
  sub.add_option("--model", *model, "Base checkpoint the adapter was trained on (llama2.c .bin, GGUF, HF)")->required();
  sub.add_option("--adapter", *adapter, "PEFT adapter directory or GGUF LoRA file")->required();
  sub.add_option("--format", *format, "peft | gguf | merged")->required();
  sub.add_option("--out", *out, "Output directory or file (.gguf for GGUF)")->required();
  sub.add_option("--dtype", opt->dtype, "f32 | f16 (peft/gguf/merged), q8_0 | q4_0 | q4_k_m (merged .gguf), nf4")
      ->capture_default_str();
  return [=] {
    opt->model = *model;
    opt->adapter = *adapter;
    opt->out = *out;
    opt->format = parse_export_format(*format);
    const ExportResult r = export_adapter(*opt);
    fmt::print("wrote {} -> {}\n", r.description, r.path.string());
    return 0;
  };
});

}  // namespace
}  // namespace pocketlora::cli
