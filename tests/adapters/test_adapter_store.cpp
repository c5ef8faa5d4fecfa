// The adapter store: every operation on a tiny synthetic adapter (2 layers, r=2, q and v), the files it keeps
// byte for byte, kill-safety (a killed add's temporary is never listed and the next add clears it; a rename
// killed before its manifest rewrite), corrupt manifests and adapter files reported by path and skipped, the base
// fingerprint check refused and forced, and name validation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/adapters/adapter_store.h"
#include "host/adapters/gguf_lora.h"
#include "adapters/tiny_adapter_fixtures.h"
#include "host/core/error.h"
#include "host/util/read_file.h"
#include "host/util/sha256.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;
using test::tiny_llama_config;

AdapterBase tiny_base(std::string fingerprint = "sampled-sha256-v1:base-a") {
  return {tiny_llama_config(), RopeLayout::Interleaved, std::move(fingerprint), "nf4", "tiny.bin"};
}

// A PEFT pair for tiny_llama_config() with r=2 on q and v; element values differ per tensor (salt).
fs::path write_source(const fs::path& dir, int salt = 1) {
  const std::map<std::string, std::pair<std::int64_t, std::int64_t>> out_in = {{"q", {8, 8}}, {"v", {4, 8}}};
  PeftAdapter a;
  a.config.r = 2;
  a.config.lora_alpha = 4;
  a.config.targets = {"q", "v"};
  a.config.base_model_name_or_path = "tiny";
  for (int i = 0; i < 2; ++i)
    for (const auto& [t, shape] : out_in) {
      const std::string p = "layers." + std::to_string(i) + "." + t + ".";
      for (const auto& [suffix, s] : {std::pair{"A", Shape{2, shape.second}}, std::pair{"B", Shape{shape.first, 2}}}) {
        Tensor x = Tensor::zeros(s);
        for (std::int64_t k = 0; k < x.numel(); ++k) x.data<float>()[k] = float(salt * 100 + k) * 0.01f;
        a.tensors.emplace_back(p + suffix, std::move(x));
      }
    }
  write_peft_adapter(dir, a, tiny_llama_config(), RopeLayout::Interleaved);
  return dir;
}

std::string bytes_of(const fs::path& p) { return read_file_text(p); }

std::string sha_of(const fs::path& p) {
  const std::string b = bytes_of(p);
  return sha256_hex({reinterpret_cast<const std::uint8_t*>(b.data()), b.size()});
}

// A pid that was a real process and is gone: a temporary named after it is what a killed writer leaves.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

TEST(AdapterStore, AddKeepsThePeftPairAndTheManifest) {
  TempDir tmp;
  const fs::path src = write_source(tmp / "run");
  std::ofstream(src / "metrics.jsonl") << "not copied\n";
  AdapterStore store(tmp / "store");
  EXPECT_TRUE(store.list().adapters.empty());  // a store that does not exist yet lists as empty

  AdapterOrigin origin;
  origin.steps = 8;
  origin.final_loss = 2.5;
  origin.final_val_loss = 2.75;
  const AdapterManifest m = store.add(src, "shakespeare-r2", tiny_base(), origin);
  EXPECT_EQ(m.name, "shakespeare-r2");
  EXPECT_TRUE(m.enabled);
  EXPECT_EQ(m.rank, 2);
  EXPECT_EQ(m.alpha, 4);
  EXPECT_EQ(m.targets, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(m.base_fingerprint, "sampled-sha256-v1:base-a");  // no training run: the given model's
  EXPECT_FALSE(m.base_from_training_run);
  EXPECT_EQ(m.base_quant, "nf4");
  EXPECT_EQ(m.base_model, "tiny.bin");
  EXPECT_EQ(m.steps, 8);
  EXPECT_EQ(m.final_loss, 2.5);
  EXPECT_EQ(m.final_val_loss, 2.75);
  EXPECT_EQ(m.created.size(), 20u) << m.created;  // 2026-12-02T08:14:02Z
  EXPECT_EQ(m.size_bytes,
            fs::file_size(src / "adapter_model.safetensors") + fs::file_size(src / "adapter_config.json"));

  const fs::path dir = tmp / "store" / "shakespeare-r2";
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json"})
    EXPECT_EQ(bytes_of(dir / f), bytes_of(src / f)) << f;
  EXPECT_FALSE(fs::exists(dir / "metrics.jsonl"));
  const auto j = nlohmann::json::parse(bytes_of(dir / "manifest.json"));
  EXPECT_EQ(j["format"], "pocketlora-adapter");
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(j["files"][0]["name"], "adapter_model.safetensors");
  EXPECT_EQ(j["files"][0]["sha256"], sha_of(src / "adapter_model.safetensors"));
  EXPECT_EQ(j["training"]["final_val_loss"], 2.75);

  const AdapterListing l = store.list();
  ASSERT_EQ(l.adapters.size(), 1u);
  EXPECT_TRUE(l.problems.empty());
  EXPECT_EQ(l.adapters[0].name, "shakespeare-r2");
  EXPECT_EQ(store.show("shakespeare-r2").size_bytes, m.size_bytes);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.show("absent"); }), {"absent", "no adapter"}));
}

TEST(AdapterStore, AddRefusesAnExistingNameAndAnAdapterOfAnotherShape) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  store.add(write_source(tmp / "a"), "one", tiny_base(), {});
  EXPECT_TRUE(
      mentions(error_of<InvalidArgument>([&] { store.add(write_source(tmp / "b", 2), "one", tiny_base(), {}); }),
               {"'one'", "already exists"}));
  EXPECT_EQ(bytes_of(tmp / "store/one/adapter_model.safetensors"), bytes_of(tmp / "a/adapter_model.safetensors"));

  AdapterBase wider = tiny_base();
  wider.config.dim = 16, wider.config.head_dim = 8;  // every lora_A of the source is [2, 8], this base wants [2, 16]
  EXPECT_THROW(store.add(tmp / "a", "two", wider, {}), Error);
  EXPECT_TRUE(mentions(error_of<IoError>([&] { store.add(tmp / "missing", "three", tiny_base(), {}); }), {"missing"}));
  EXPECT_EQ(store.list().adapters.size(), 1u);
  EXPECT_FALSE(fs::exists(tmp / "store/two"));
}

TEST(AdapterStore, EnableDisableRenameExportDelete) {
  TempDir tmp;
  const fs::path src = write_source(tmp / "run");
  AdapterStore store(tmp / "store");
  store.add(src, "a1", tiny_base(), {});

  store.set_enabled("a1", false);
  EXPECT_FALSE(store.list().adapters.at(0).enabled);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.check_base("a1", "sampled-sha256-v1:base-a"); }),
                       {"'a1'", "disabled"}));
  store.set_enabled("a1", true);
  EXPECT_TRUE(store.show("a1").enabled);

  store.add(write_source(tmp / "run2", 2), "a2", tiny_base(), {});
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.rename("a1", "a2"); }), {"'a2'", "already exists"}));
  store.rename("a1", "renamed");
  EXPECT_FALSE(fs::exists(tmp / "store/a1"));
  const AdapterListing l = store.list();
  ASSERT_EQ(l.adapters.size(), 2u);
  EXPECT_EQ(l.adapters[0].name, "a2");
  EXPECT_EQ(l.adapters[1].name, "renamed");
  EXPECT_EQ(nlohmann::json::parse(bytes_of(tmp / "store/renamed/manifest.json"))["name"], "renamed");
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.set_enabled("a1", false); }), {"'a1'", "no adapter"}));

  store.export_peft("renamed", tmp / "out");
  for (const char* f : {"adapter_model.safetensors", "adapter_config.json"})
    EXPECT_EQ(bytes_of(tmp / "out" / f), bytes_of(src / f)) << f;
  EXPECT_FALSE(fs::exists(tmp / "out/manifest.json"));

  store.remove("renamed");
  EXPECT_FALSE(fs::exists(tmp / "store/renamed"));
  ASSERT_EQ(store.list().adapters.size(), 1u);
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.remove("renamed"); }), {"'renamed'", "no adapter"}));
  for (const auto& e : fs::directory_iterator(tmp / "store"))  // no temporary left behind
    EXPECT_TRUE(e.path().filename() == "a2" || e.path().filename() == ".lock") << e.path();
}

// GGUF-LoRA export through the one GGUF writer: the file reads back (read_gguf_lora) to the tensors the store
// holds, in whichever row order the base keeps q/k (the file is the same for an interleaved and a rotate_half
// base); the base check of load() applies.
TEST(AdapterStore, GgufExportRoundTripsTheTensors) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  store.add(write_source(tmp / "run"), "g", tiny_base(), {});
  store.export_gguf("g", tiny_base(), tmp / "g.gguf");
  const PeftAdapter want = store.load("g", tiny_base());
  const PeftAdapter got = read_gguf_lora(tmp / "g.gguf", tiny_llama_config(), RopeLayout::Interleaved);
  test::expect_same_tensors(want, got);
  EXPECT_EQ(got.config.r, 2);
  EXPECT_EQ(got.config.lora_alpha, 4.0);
  EXPECT_EQ(got.config.targets, (std::vector<std::string>{"q", "v"}));

  AdapterBase rotate_half = tiny_base();
  rotate_half.qk_layout = RopeLayout::RotateHalf;
  store.export_gguf("g", rotate_half, tmp / "g-rh.gguf");
  EXPECT_EQ(bytes_of(tmp / "g-rh.gguf"), bytes_of(tmp / "g.gguf"));
  test::expect_same_tensors(store.load("g", rotate_half),
                            read_gguf_lora(tmp / "g-rh.gguf", tiny_llama_config(), RopeLayout::RotateHalf));

  store.export_gguf("g", tiny_base(), tmp / "g16.gguf", DType::F16);
  const PeftAdapter half = read_gguf_lora(tmp / "g16.gguf", tiny_llama_config(), RopeLayout::Interleaved);
  ASSERT_EQ(half.tensors.size(), want.tensors.size());
  for (const auto& [n, t] : want.tensors)
    for (std::int64_t i = 0; i < t.numel(); ++i)  // f16 keeps 11 significant bits
      EXPECT_NEAR(test::find(half, n).data<float>()[i], t.data<float>()[i], 1e-3 * std::fabs(t.data<float>()[i]));

  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.export_gguf("g", tiny_base(), tmp / "x.gguf", DType::I32); }),
                       {"'g'", "f32 or f16"}));
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] {
                         store.export_gguf("g", tiny_base("sampled-sha256-v1:base-b"), tmp / "x.gguf");
                       }),
                       {"'g'", "another base model"}));
  store.set_enabled("g", false);
  EXPECT_THROW(store.export_gguf("g", tiny_base(), tmp / "x.gguf"), InvalidArgument);
  EXPECT_FALSE(fs::exists(tmp / "x.gguf"));
  store.export_gguf("g", tiny_base("sampled-sha256-v1:base-b"), tmp / "x.gguf", DType::F32, /*force=*/true);
  EXPECT_EQ(bytes_of(tmp / "x.gguf"), bytes_of(tmp / "g.gguf"));
}

TEST(AdapterStore, KilledAddLeavesATemporaryThatIsNeverListedAndTheNextAddRemoves) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  store.add(write_source(tmp / "run"), "kept", tiny_base(), {});
  // What a SIGKILLed add leaves: its half-copied directory under the writer's temp name, no manifest yet.
  const fs::path torn = tmp / "store" / ("half.tmp." + std::to_string(dead_pid()));
  fs::create_directories(torn);
  fs::copy_file(tmp / "run/adapter_config.json", torn / "adapter_config.json");
  std::ofstream(torn / "adapter_model.safetensors") << "truncat";

  AdapterListing l = store.list();
  ASSERT_EQ(l.adapters.size(), 1u);
  EXPECT_EQ(l.adapters[0].name, "kept");
  EXPECT_TRUE(l.problems.empty()) << l.problems[0].path;

  store.add(write_source(tmp / "run2", 2), "half", tiny_base(), {});
  EXPECT_FALSE(fs::exists(torn));
  EXPECT_EQ(store.list().adapters.size(), 2u);
}

TEST(AdapterStore, AConcurrentReaderSeesEveryAdapterWholeWhileAWriterChangesThem) {
  TempDir tmp;
  write_source(tmp / "run");
  AdapterStore store(tmp / "store");
  store.add(tmp / "run", "steady", tiny_base(), {});
  std::atomic<bool> done{false};
  std::atomic<int> listings{0};
  std::vector<std::string> seen_problems;
  std::thread reader([&] {
    const AdapterStore view(tmp / "store");
    while (!done.load()) {
      const AdapterListing l = view.list();
      for (const auto& p : l.problems) seen_problems.push_back(p.path.string() + ": " + p.message);
      for (const auto& m : l.adapters)
        if (m.name != "steady" && m.name != "moving" && m.name != "moved")
          seen_problems.push_back("unexpected adapter " + m.name);
      if (std::none_of(l.adapters.begin(), l.adapters.end(),
                       [](const AdapterManifest& m) { return m.name == "steady"; }))
        seen_problems.push_back("steady missing");
      ++listings;
    }
  });
  // At least 10 rounds, and on until the reader has listed 20 times while the writes were still going on.
  for (int i = 0; i < 10 || (listings.load() < 20 && i < 2000); ++i) {
    store.add(tmp / "run", "moving", tiny_base(), {});
    store.set_enabled("moving", false);
    store.set_enabled("steady", i % 2 == 0);
    store.rename("moving", "moved");
    store.remove("moved");
  }
  done = true;
  reader.join();
  EXPECT_GE(listings.load(), 20);
  EXPECT_TRUE(seen_problems.empty()) << seen_problems.size() << " bad listings, first: " << seen_problems[0];
}

TEST(AdapterStore, RenameKilledBeforeTheManifestRewriteListsTheNewName) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  store.add(write_source(tmp / "run"), "before", tiny_base(), {});
  fs::rename(tmp / "store/before", tmp / "store/after");  // the rename(2), then the kill
  const AdapterListing l = store.list();
  ASSERT_EQ(l.adapters.size(), 1u);
  EXPECT_EQ(l.adapters[0].name, "after");
  store.set_enabled("after", false);  // the next write brings the manifest in step
  EXPECT_EQ(nlohmann::json::parse(bytes_of(tmp / "store/after/manifest.json"))["name"], "after");
}

TEST(AdapterStore, CorruptManifestsAndAdapterFilesAreReportedByPathAndSkipped) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  for (const char* name : {"bad-json", "new-version", "truncated", "flipped", "good"})
    store.add(write_source(tmp / name), name, tiny_base(), {});
  const fs::path root = tmp / "store";
  std::ofstream(root / "bad-json/manifest.json", std::ios::trunc) << "{\"format\": \"pocketlora-adap";
  auto j = nlohmann::json::parse(bytes_of(root / "new-version/manifest.json"));
  j["format_version"] = 2;
  std::ofstream(root / "new-version/manifest.json", std::ios::trunc) << j.dump();
  fs::resize_file(root / "truncated/adapter_model.safetensors", 100);
  {  // same size, one byte changed: only the digest can tell
    std::fstream f(root / "flipped/adapter_model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  std::ofstream(root / "stray.txt") << "x";
  fs::create_directories(root / "bad name");

  const AdapterListing l = store.list();
  ASSERT_EQ(l.adapters.size(), 2u);
  EXPECT_EQ(l.adapters[0].name, "flipped");
  EXPECT_EQ(l.adapters[1].name, "good");
  ASSERT_EQ(l.problems.size(), 5u);
  EXPECT_EQ(l.problems[0].path, root / "bad name");
  EXPECT_TRUE(mentions(l.problems[0].message, {"bad name", "not allowed"}));
  EXPECT_EQ(l.problems[1].path, root / "bad-json");
  EXPECT_TRUE(mentions(l.problems[1].message, {(root / "bad-json/manifest.json").string(), "not valid JSON"}));
  EXPECT_EQ(l.problems[2].path, root / "new-version");
  EXPECT_TRUE(mentions(l.problems[2].message, {"format_version", "expected 1", "found 2"}));
  EXPECT_EQ(l.problems[3].path, root / "stray.txt");
  EXPECT_EQ(l.problems[4].path, root / "truncated");
  EXPECT_TRUE(mentions(l.problems[4].message, {(root / "truncated/adapter_model.safetensors").string(), "found 100"}));

  EXPECT_TRUE(mentions(error_of<FormatError>([&] { store.show("flipped"); }),
                       {(root / "flipped/adapter_model.safetensors").string(), "SHA-256", "corrupted"}));
  EXPECT_THROW(store.export_peft("flipped", tmp / "out"), FormatError);
  EXPECT_FALSE(fs::exists(tmp / "out/adapter_model.safetensors"));
  EXPECT_THROW(store.check_base("flipped", "sampled-sha256-v1:base-a"), FormatError);
  store.remove("bad-json");  // a corrupt adapter can still be deleted
  EXPECT_EQ(store.list().problems.size(), 4u);
}

TEST(AdapterStore, AManifestCannotNameAFileOutsideItsAdapter) {
  TempDir tmp;
  AdapterStore store(tmp / "store");
  store.add(write_source(tmp / "run"), "x", tiny_base(), {});
  std::ofstream(tmp / "store/secret") << "not an adapter file";
  const fs::path manifest = tmp / "store/x/manifest.json";
  auto j = nlohmann::json::parse(bytes_of(manifest));
  j["files"][1] = {{"name", "../secret"}, {"size", 19}, {"sha256", sha_of(tmp / "store/secret")}};
  std::ofstream(manifest, std::ios::trunc) << j.dump();
  const AdapterListing l = store.list();
  EXPECT_TRUE(l.adapters.empty());
  ASSERT_EQ(l.problems.size(), 2u);  // x, and the stray file itself
  EXPECT_TRUE(mentions(l.problems[1].message, {manifest.string(), "unexpected file '../secret'"}));
}

TEST(AdapterStore, AnotherBaseIsRefusedUnlessForced) {
  TempDir tmp;
  const fs::path src = write_source(tmp / "run");
  AdapterStore store(tmp / "store");
  AdapterOrigin origin;
  origin.base_fingerprint = "sampled-sha256-v1:base-b";
  origin.base_quant = "none";
  // On import: the run's checkpoint names base-b, the model given is base-a.
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.add(src, "x", tiny_base(), origin); }),
                       {"sampled-sha256-v1:base-b", "sampled-sha256-v1:base-a", "--force"}));
  EXPECT_TRUE(store.list().adapters.empty());
  const AdapterManifest m = store.add(src, "x", tiny_base(), origin, /*force=*/true);
  EXPECT_EQ(m.base_fingerprint, "sampled-sha256-v1:base-b");  // what it was trained on, not what it was forced onto
  EXPECT_TRUE(m.base_from_training_run);
  EXPECT_EQ(m.base_quant, "none");

  // Before applying.
  EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { store.check_base("x", "sampled-sha256-v1:base-a"); }),
                       {"'x'", "expected sampled-sha256-v1:base-b", "found sampled-sha256-v1:base-a"}));
  EXPECT_THROW(store.load("x", tiny_base()), InvalidArgument);
  EXPECT_EQ(store.check_base("x", "sampled-sha256-v1:base-a", /*force=*/true).name, "x");
  EXPECT_EQ(store.check_base("x", "sampled-sha256-v1:base-b").name, "x");
  const PeftAdapter forced = store.load("x", tiny_base(), /*force=*/true);
  const PeftAdapter direct = read_peft_adapter(src, tiny_llama_config(), RopeLayout::Interleaved);
  ASSERT_EQ(forced.tensors.size(), 8u);
  for (std::size_t i = 0; i < direct.tensors.size(); ++i) {
    EXPECT_EQ(forced.tensors[i].first, direct.tensors[i].first);
    EXPECT_EQ(
        std::memcmp(forced.tensors[i].second.raw(), direct.tensors[i].second.raw(), direct.tensors[i].second.nbytes()),
        0);
  }
}

TEST(AdapterStore, NamesAreValidated) {
  for (const std::string& ok : std::vector<std::string>{"a", "my-adapter_v1.2", "7b", std::string(64, 'n')})
    EXPECT_NO_THROW(validate_adapter_name(ok)) << ok;
  const std::vector<std::pair<std::string, std::string>> bad = {{"", "empty"},
                                                                {"a/b", "'/' not allowed"},
                                                                {"..", "start with"},
                                                                {"../x", "not allowed"},
                                                                {".hidden", "start"},
                                                                {"a..b", "\"..\""},
                                                                {"a\\b", "not allowed"},
                                                                {"sp ace", "' ' not allowed"},
                                                                {"x.tmp.12", "temporary"},
                                                                {std::string(65, 'n'), "65 characters, at most 64"},
                                                                {"-x", "start"}};
  for (const auto& [name, why] : bad)
    EXPECT_TRUE(mentions(error_of<InvalidArgument>([&] { validate_adapter_name(name); }), {why})) << name;

  TempDir tmp;
  AdapterStore store(tmp / "store");
  EXPECT_THROW(store.add(write_source(tmp / "run"), "../escape", tiny_base(), {}), InvalidArgument);
  EXPECT_FALSE(fs::exists(tmp / "escape"));
  store.add(tmp / "run", "ok", tiny_base(), {});
  EXPECT_THROW(store.rename("ok", "a/b"), InvalidArgument);
  EXPECT_THROW(store.remove(".."), InvalidArgument);
  EXPECT_TRUE(fs::exists(tmp / "store/ok/manifest.json"));
}

TEST(AdapterStore, DefaultRootFollowsPocketloraHome) {
  const char* old = std::getenv("POCKETLORA_HOME");
  const std::string saved = old ? old : "";
  ::setenv("POCKETLORA_HOME", "/some/home", 1);
  EXPECT_EQ(AdapterStore::default_root(), fs::path("/some/home/adapters"));
  ::unsetenv("POCKETLORA_HOME");
  if (const char* home = std::getenv("HOME"); home && *home) {
    EXPECT_EQ(AdapterStore::default_root(), fs::path(home) / ".pocketlora/adapters");
  }
  if (old) ::setenv("POCKETLORA_HOME", saved.c_str(), 1);
}

}  // namespace
}  // namespace pocketlora
