// `pocketlora adapters [--store DIR] [--json] list | show | add | enable | disable | rename | export | delete |
// check`: a thin layer over the adapter store (host/adapters/adapter_store.h), which is what the app drives. Human
// tables by default, the manifests as JSON with --json; entries the store cannot read are warnings on stderr (in
// JSON, the "problems" array), never a failed listing.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "host/adapters/adapter_store.h"
#include "host/core/error.h"
#include "host/model/llama_model.h"
#include "host/train/adapter_base.h"
#include "host/train/adapter_origin.h"
#include "tools/command_registry.h"

namespace pocketlora::cli {
namespace {

namespace fs = std::filesystem;

struct AdaptersArgs {
  std::string store, name, new_name, src, model, quant = "nf4", out, format = "peft", dtype = "f32";
  bool json = false, force = false;
};

std::string human_size(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
  return fmt::format("{:.1f} MiB", double(bytes) / (1024.0 * 1024));
}

std::string optional_number(const std::optional<double>& v) { return v ? fmt::format("{:.4f}", *v) : "-"; }

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// "sampled-sha256-v1:0123456789ab..." -> "0123456789ab": enough to tell bases apart in a table.
std::string short_fingerprint(const std::string& f) {
  const auto colon = f.rfind(':');
  return f.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

nlohmann::json manifest_with_path(const AdapterStore& store, const AdapterManifest& m) {
  nlohmann::json j = adapter_manifest_json(m);
  j["path"] = (store.root() / m.name).string();
  return j;
}

void print_manifest(const AdapterStore& store, const AdapterManifest& m) {
  fmt::print("name          {}\n", m.name);
  fmt::print("path          {}\n", (store.root() / m.name).string());
  fmt::print("enabled       {}\n", m.enabled ? "yes" : "no");
  fmt::print("created       {}\n", m.created);
  fmt::print("base          {} (quant {}, model {}, {})\n", m.base_fingerprint, m.base_quant, m.base_model,
             m.base_from_training_run ? "from the training checkpoint" : "as given at import");
  fmt::print("lora          r={} alpha={} dropout={} rslora={} targets={}\n", m.rank, m.alpha, m.dropout,
             m.rslora ? "yes" : "no", joined(m.targets));
  fmt::print("training      steps={} final_loss={} final_val_loss={}\n", m.steps ? std::to_string(*m.steps) : "-",
             optional_number(m.final_loss), optional_number(m.final_val_loss));
  fmt::print("size          {} ({} bytes)\n", human_size(m.size_bytes), m.size_bytes);
  for (const auto& f : m.files) fmt::print("file          {} {} bytes sha256 {}\n", f.name, f.size, f.sha256);
}

int run_list(const AdapterStore& store, bool json) {
  const AdapterListing l = store.list();
  if (json) {
    nlohmann::json out = {
        {"store", store.root().string()}, {"adapters", nlohmann::json::array()}, {"problems", nlohmann::json::array()}};
    for (const auto& m : l.adapters) out["adapters"].push_back(manifest_with_path(store, m));
    for (const auto& p : l.problems) out["problems"].push_back({{"path", p.path.string()}, {"error", p.message}});
    std::cout << out.dump(2) << "\n";
  } else if (l.adapters.empty()) {
    fmt::print("no adapters in {}\n", store.root().string());
  } else {
    fmt::print("{:<24} {:<7} {:>4} {:>6} {:<24} {:>6} {:>8} {:>8} {:>10} {:<12} {}\n", "NAME", "ENABLED", "R", "ALPHA",
               "TARGETS", "STEPS", "LOSS", "VAL_LOSS", "SIZE", "BASE", "CREATED");
    for (const auto& m : l.adapters)
      fmt::print("{:<24} {:<7} {:>4} {:>6} {:<24} {:>6} {:>8} {:>8} {:>10} {:<12} {}\n", m.name,
                 m.enabled ? "yes" : "no", m.rank, m.alpha, joined(m.targets), m.steps ? std::to_string(*m.steps) : "-",
                 optional_number(m.final_loss), optional_number(m.final_val_loss), human_size(m.size_bytes),
                 short_fingerprint(m.base_fingerprint), m.created);
  }
  for (const auto& p : l.problems)
    fmt::print(stderr, "pocketlora: warning: skipped {}: {}\n", p.path.string(), p.message);
  return 0;
}

int run_add(AdapterStore& store, const AdaptersArgs& a) {
  const AdapterOrigin origin = read_adapter_origin(a.src);
  // Only the configuration and the q/k row layout are needed: deferred, no weight is read.
  const LlamaModel model = load_llama_model(a.model, BaseQuant::None, BaseLoad::Deferred);
  // The fingerprint for the quantization the adapter was trained with (the run's checkpoint says; else --quant).
  const AdapterBase base = adapter_base(model, a.model, origin.base_quant.empty() ? a.quant : origin.base_quant);
  const AdapterManifest m = store.add(a.src, a.name, base, origin, a.force);
  if (a.json) {
    std::cout << manifest_with_path(store, m).dump(2) << "\n";
  } else {
    fmt::print("added {} (r={}, alpha={}, targets {}, {}) to {}\n", m.name, m.rank, m.alpha, joined(m.targets),
               human_size(m.size_bytes), store.root().string());
  }
  return 0;
}

int run_export(const AdapterStore& store, const AdaptersArgs& a) {
  if (a.format == "peft") {
    if (!a.model.empty() || a.dtype != "f32" || a.force)
      throw InvalidArgument("adapters export --format peft copies the PEFT pair as stored: --model, --dtype and "
                            "--force apply to --format gguf only");
    store.export_peft(a.name, a.out);
  } else {
    // GGUF keeps q/k rows in llama.cpp's order, which depends on the head layout: the base model supplies it, and
    // its fingerprint is checked against the adapter's as before applying it.
    const AdapterManifest m = store.show(a.name);
    fs::path model_path = a.model;
    if (model_path.empty()) {
      const auto recorded = store.recorded_base_path(a.name);
      if (!recorded)
        throw InvalidArgument(fmt::format(
            "adapters export {} --format gguf needs the base model (its head layout orders the q/k rows): neither "
            "the manifest's base '{}' nor adapter_config.json's base_model_name_or_path is a file here; pass "
            "--model (base fingerprint {})",
            a.name, m.base_model, m.base_fingerprint));
      model_path = *recorded;
    }
    const LlamaModel model = load_llama_model(model_path, BaseQuant::None, BaseLoad::Deferred);
    store.export_gguf(a.name, adapter_base(model, model_path, m.base_quant), a.out,
                      a.dtype == "f16" ? DType::F16 : DType::F32, a.force);
  }
  if (a.json)
    std::cout << nlohmann::json{{"exported", a.name}, {"format", a.format}, {"out", a.out}}.dump(2) << "\n";
  else
    fmt::print("exported {} to {} ({})\n", a.name, a.out, a.format == "gguf" ? "GGUF LoRA, " + a.dtype : "PEFT");
  return 0;
}

// Prints the adapter after a change: the manifest with --json, else `message`.
int report(const AdapterStore& store, const std::string& name, bool json, const std::string& message) {
  if (json) std::cout << manifest_with_path(store, store.show(name)).dump(2) << "\n";
  else fmt::print("{}\n", message);
  return 0;
}

CommandRegistration register_cmd_adapters(
    "adapters", "The on-device adapter store: list, show, add, enable, disable, rename, export, delete, check",
    [](CLI::App& sub) {
      sub.require_subcommand(1);
      sub.fallthrough();  // --store / --json also after the subcommand
      auto a = std::make_shared<AdaptersArgs>();
      sub.add_option("--store", a->store,
                     "Adapter store directory (default: $POCKETLORA_HOME/adapters, else ~/.pocketlora/adapters)");
      sub.add_flag("--json", a->json, "Machine-readable output");
      auto store = [a] { return AdapterStore(a->store.empty() ? AdapterStore::default_root() : fs::path(a->store)); };
      // Each subcommand's action; the one CLI11 parsed runs.
      auto actions = std::make_shared<std::vector<std::pair<CLI::App*, Action>>>();
      auto on = [actions](CLI::App* c, Action act) { actions->emplace_back(c, std::move(act)); };

      on(sub.add_subcommand("list", "Every adapter of the store (unreadable entries are warned about and skipped)"),
         [=] { return run_list(store(), a->json); });

      CLI::App* show = sub.add_subcommand("show", "One adapter's manifest, its files' SHA-256s verified");
      show->add_option("name", a->name, "Adapter name")->required();
      on(show, [=] {
        const AdapterStore s = store();
        const AdapterManifest m = s.show(a->name);
        if (a->json) std::cout << manifest_with_path(s, m).dump(2) << "\n";
        else print_manifest(s, m);
        return 0;
      });

      CLI::App* add =
          sub.add_subcommand("add", "Import a trained adapter directory (a `train --out` dir or a PEFT adapter)");
      add->add_option("src", a->src, "Directory with adapter_model.safetensors + adapter_config.json")->required();
      add->add_option("--name", a->name, "Name in the store (letters, digits, '.', '_', '-'; at most 64)")->required();
      add->add_option("--model", a->model, "The base model the adapter is for (checked against it)")->required();
      add->add_option("--quant", a->quant,
                      "Base quantization the adapter was trained with, when SRC has no checkpoint saying so (nf4|none)")
          ->capture_default_str();
      add->add_flag("--force", a->force, "Import even if the run's checkpoint names another base model");
      on(add, [=] {
        AdapterStore s = store();
        return run_add(s, *a);
      });

      for (const bool enable : {true, false}) {
        CLI::App* c =
            sub.add_subcommand(enable ? "enable" : "disable",
                               enable ? "Offer the adapter for use again" : "Keep the adapter but refuse to apply it");
        c->add_option("name", a->name, "Adapter name")->required();
        on(c, [=] {
          AdapterStore s = store();
          s.set_enabled(a->name, enable);
          return report(s, a->name, a->json, fmt::format("{} {}", enable ? "enabled" : "disabled", a->name));
        });
      }

      CLI::App* rename = sub.add_subcommand("rename", "Rename an adapter");
      rename->add_option("old", a->name, "Current name")->required();
      rename->add_option("new", a->new_name, "New name")->required();
      on(rename, [=] {
        AdapterStore s = store();
        s.rename(a->name, a->new_name);
        return report(s, a->new_name, a->json, fmt::format("renamed {} to {}", a->name, a->new_name));
      });

      CLI::App* exp = sub.add_subcommand("export", "Write the adapter out: its PEFT pair, or one llama.cpp GGUF-LoRA file");
      exp->add_option("name", a->name, "Adapter name")->required();
      exp->add_option("--format", a->format, "peft (a directory) | gguf (a file)")
          ->check(CLI::IsMember({"peft", "gguf"}))
          ->capture_default_str();
      exp->add_option("--out", a->out, "Output directory (peft: created, its adapter files replaced) or file (gguf)")
          ->required();
      exp->add_option("--model", a->model,
                      "gguf: the base model (q/k row order); default the base the adapter recorded, if that path exists");
      exp->add_option("--dtype", a->dtype, "gguf: tensor type f32 | f16")
          ->check(CLI::IsMember({"f32", "f16"}))
          ->capture_default_str();
      exp->add_flag("--force", a->force, "gguf: export even if disabled or --model is another base");
      on(exp, [=] { return run_export(store(), *a); });

      CLI::App* check =
          sub.add_subcommand("check", "The check before applying: files verified, enabled, same base as --model");
      check->add_option("name", a->name, "Adapter name")->required();
      check->add_option("--model", a->model, "The base model it is to be applied to")->required();
      check->add_flag("--force", a->force, "Accept a disabled adapter or another base (the shapes must still fit)");
      on(check, [=] {
        const AdapterStore s = store();
        const AdapterManifest m = s.show(a->name);
        const LlamaModel model = load_llama_model(a->model, BaseQuant::None, BaseLoad::Deferred);
        const AdapterBase base = adapter_base(model, a->model, m.base_quant);
        s.load(a->name, base, a->force);  // fingerprint, enabled flag, then every tensor against the model's shapes
        const bool same_base = base.fingerprint == m.base_fingerprint;
        if (a->json)
          std::cout << nlohmann::json{{"name", m.name},
                                      {"model", a->model},
                                      {"same_base", same_base},
                                      {"enabled", m.enabled},
                                      {"applicable", true}}
                           .dump(2)
                    << "\n";
        else
          fmt::print("{} can be applied to {}{}\n", m.name, a->model,
                     same_base && m.enabled ? "" : " (forced: another base or disabled)");
        return 0;
      });

      CLI::App* del = sub.add_subcommand("delete", "Delete an adapter from the store");
      del->add_option("name", a->name, "Adapter name")->required();
      on(del, [=] {
        AdapterStore s = store();
        s.remove(a->name);
        if (a->json) std::cout << nlohmann::json{{"deleted", a->name}}.dump(2) << "\n";
        else fmt::print("deleted {}\n", a->name);
        return 0;
      });

      return Action([actions] {
        for (const auto& [c, act] : *actions)
          if (c->parsed()) return act();
        throw InvalidArgument("adapters: no subcommand given");
      });
    });

}  // namespace
}  // namespace pocketlora::cli
