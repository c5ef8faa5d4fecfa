// Loading a base without a host copy of it (docs/MEMORY.md): BaseLoad::Deferred holds each frozen linear as a
// conversion from the mapped file, run at upload; the result is the resident load's, byte for byte, for every
// format; the memory planner never runs a conversion; and a fresh process that loads and uploads an NF4 base peaks
// at about the NF4 base, not the f32 model.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/backend/backend.h"
#include "host/core/nf4_quantize.h"
#include "host/model/bnb4bit.h"
#include "host/model/llama_forward.h"
#include "host/model/llama_model.h"
#include "host/train/lora_adapter.h"
#include "host/train/step_engine.h"
#include "host/util/splitmix64.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;

std::vector<const BaseLinear*> linears(const LlamaModel& m) {
  std::vector<const BaseLinear*> out;
  for (const auto& L : m.layers)
    for (const BaseLinear* l : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) out.push_back(l);
  return out;
}

void expect_same_linear(const BaseLinear& resident, const BaseLinear& made, const std::string& what) {
  ASSERT_EQ(resident.is_nf4(), made.is_nf4()) << what;
  ASSERT_EQ(resident.shape(), made.shape()) << what;
  if (resident.is_nf4()) {
    EXPECT_EQ(resident.nf4->codes, made.nf4->codes) << what;
    EXPECT_EQ(resident.nf4->effective_absmax(), made.nf4->effective_absmax()) << what;
    EXPECT_EQ(resident.nf4->double_quant, made.nf4->double_quant) << what;
  } else {
    ASSERT_EQ(resident.plain.nbytes(), made.plain.nbytes()) << what;
    EXPECT_EQ(std::memcmp(resident.plain.raw(), made.plain.raw(), resident.plain.nbytes()), 0) << what;
  }
}

TEST(DeferredLoad, EveryFormatMakesTheResidentLoadsLinears) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(gguf, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(q8, "models/stories260K/derived/stories260K-mixed-Q8_0.gguf");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf");
  test::TempDir tmp;
  fs::create_directories(tmp / "bnb");
  write_bnb4bit(hf, tmp / "bnb" / "model.safetensors");
  for (const fs::path& path : {bin, gguf, q8, hf, tmp / "bnb"})
    for (const BaseQuant quant : {BaseQuant::None, BaseQuant::Nf4}) {
      const std::string what = path.string() + (quant == BaseQuant::Nf4 ? " nf4" : " f32");
      const LlamaModel resident = load_llama_model(path, quant, BaseLoad::Resident);
      const LlamaModel deferred = load_llama_model(path, quant, BaseLoad::Deferred);
      const auto r = linears(resident), d = linears(deferred);
      ASSERT_EQ(r.size(), d.size()) << what;
      for (std::size_t i = 0; i < r.size(); ++i) {
        EXPECT_FALSE(r[i]->is_deferred()) << what;
        ASSERT_TRUE(d[i]->is_deferred()) << what << " linear " << i;
        EXPECT_EQ(d[i]->is_nf4(), r[i]->is_nf4()) << what;  // known before conversion
        EXPECT_EQ(d[i]->shape(), r[i]->shape()) << what;
        expect_same_linear(*r[i], d[i]->materialized(), what + " linear " + std::to_string(i));
      }
      EXPECT_EQ(deferred.rope_layout, resident.rope_layout) << what;
      EXPECT_EQ(deferred.output.raw() == deferred.tok_embeddings.raw(),
                resident.output.raw() == resident.tok_embeddings.raw())
          << what;  // ties kept
    }
}

// Counts the conversions a model's deferred linears run.
void count_conversions(LlamaModel& m, std::shared_ptr<int> calls) {
  for (auto& L : m.layers)
    for (BaseLinear* l : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      l->make = [make = l->make, calls] {
        ++*calls;
        return make();
      };
}

TEST(DeferredLoad, ThePlannerSizesDeferredLinearsWithoutConvertingThemAndUploadConvertsEachOnce) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  const LlamaModel resident = load_llama_model(bin, BaseQuant::Nf4, BaseLoad::Resident);
  LlamaModel deferred = load_llama_model(bin, BaseQuant::Nf4, BaseLoad::Deferred);
  auto calls = std::make_shared<int>(0);
  count_conversions(deferred, calls);
  LoraConfig lc;
  lc.rank = 4;
  const LoraAdapter adapter = init_lora_adapter(resident.config, resident.rope_layout, lc, 1);
  StepEngineOptions o;
  o.micro_batch = 2;
  o.seq_len = 16;
  auto be = make_backend(BackendKind::Cpu);
  const StepMemoryPlan pr = plan_step_memory(resident, adapter, o, *be);
  const StepMemoryPlan pd = plan_step_memory(deferred, adapter, o, *be);
  EXPECT_EQ(*calls, 0);
  EXPECT_EQ(pd.resident_bytes, pr.resident_bytes);  // sized from the shape as from the codes
  EXPECT_EQ(pd.peak_bytes(), pr.peak_bytes());
  const std::uint64_t before = be->memory_in_use();
  upload_llama(*be, deferred);
  EXPECT_EQ(*calls, static_cast<int>(7 * deferred.layers.size()));
  auto be_resident = make_backend(BackendKind::Cpu);
  upload_llama(*be_resident, resident);
  EXPECT_EQ(be->memory_in_use() - before, be_resident->memory_in_use());
}

// A llama2.c v1 f32 file of random weights (values do not matter, sizes do).
void write_llama2c(const fs::path& path, std::int32_t dim, std::int32_t hidden, std::int32_t layers,
                   std::int32_t vocab) {
  std::ofstream out(path, std::ios::binary);
  char header[256] = {};
  const std::uint32_t magic = 0x616b3432;
  const std::int32_t version = 1, h[7] = {dim, hidden, layers, 8, 8, vocab, 256};
  std::memcpy(header, &magic, 4);
  std::memcpy(header + 4, &version, 4);
  std::memcpy(header + 8, h, 28);
  header[36] = 1;  // tied
  out.write(header, sizeof header);
  const std::int64_t n = std::int64_t{layers} * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim +
                         std::int64_t{vocab} * dim;
  std::vector<float> chunk(1 << 20);
  std::uint64_t state = 7;
  for (std::int64_t done = 0; done < n;) {
    const auto k = static_cast<std::size_t>(std::min<std::int64_t>(n - done, static_cast<std::int64_t>(chunk.size())));
    for (std::size_t i = 0; i < k; ++i)
      chunk[i] = 0.05f * (static_cast<float>(splitmix64(state) >> 40) / 16777216.0f - 0.5f);
    out.write(reinterpret_cast<const char*>(chunk.data()), static_cast<std::streamsize>(k * 4));
    done += static_cast<std::int64_t>(k);
  }
}

// `pocketlora forward --quant nf4 --backend cpu --json` on `model`: the process's host memory figures.
nlohmann::json forward_memory(const fs::path& model) {
  const auto r = test::run_cli("forward --model " + model.string() + " --quant nf4 --backend cpu --tokens 1,2,3 --json",
                               "2>/dev/null");
  EXPECT_EQ(r.rc, 0) << r.out;
  return nlohmann::json::parse(r.out).at("host_memory");
}

// 16 layers of dim 512 / hidden 1536: 218 MB of f32 linears, 29 MB as NF4. A fresh process per model (its peak is
// its own), minus a 1-layer model's peak (the process, libraries, tables): what the other 15 layers cost at peak.
TEST(DeferredLoad, LoadingAndUploadingAnNf4BasePeaksAtTheNf4BaseNotTheF32Model) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory and quarantine make RSS figures meaningless";
#endif
  test::TempDir tmp;
  const std::int32_t dim = 512, hidden = 1536, vocab = 512;
  write_llama2c(tmp / "one.bin", dim, hidden, 1, vocab);
  write_llama2c(tmp / "big.bin", dim, hidden, 16, vocab);
  const nlohmann::json one = forward_memory(tmp / "one.bin"), big = forward_memory(tmp / "big.bin");
  const double layer_f32 = 4.0 * (4.0 * dim * dim + 3.0 * dim * hidden);
  const double extra_nf4 = static_cast<double>(big["backend_bytes"].get<std::uint64_t>()) -
                           static_cast<double>(one["backend_bytes"].get<std::uint64_t>());
  const double extra_peak = static_cast<double>(big["peak_rss_bytes"].get<std::uint64_t>()) -
                            static_cast<double>(one["peak_rss_bytes"].get<std::uint64_t>());
  const double largest_f32 = 4.0 * dim * hidden;
  // The backend's NF4 (one copy), plus one linear's f32 conversion and its NF4 in flight, plus allocator slack.
  const double bound = extra_nf4 + 2 * largest_f32 + 12.0 * (1 << 20);
  EXPECT_GT(extra_nf4, 0.1 * 15 * layer_f32);  // the NF4 base is there (~1/7 of f32)
  EXPECT_LE(extra_peak, bound) << "15 layers: " << 15 * layer_f32 / 1048576 << " MiB f32, " << extra_nf4 / 1048576
                               << " MiB NF4 on the backend, peak grew " << extra_peak / 1048576 << " MiB";
  EXPECT_LT(bound, 0.5 * 15 * layer_f32);  // so the check tells the two apart
  // The mapped file's pages are dropped once converted: what stays resident of the 218 MB file is small.
  EXPECT_LT(big["rss_file_after_upload_bytes"].get<double>() - one["rss_file_after_upload_bytes"].get<double>(),
            8.0 * (1 << 20));
}

}  // namespace
}  // namespace pocketlora
