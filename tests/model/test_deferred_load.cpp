// Loading a base without a host copy of it (docs/MEMORY.md): BaseLoad::Deferred holds each frozen linear as a
// conversion from the mapped file, and the table, head and norms as readers of its rows, run at upload; the result
// is the resident load's, byte for byte, for every format; the memory planner never runs a conversion; and a fresh
// process that loads and uploads an NF4 base peaks at about the NF4 base, not the f32 model, and holds no host copy
// of the table.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/run_cli.h"
#include "common/test_data.h"
#include "host/backend/backend.h"
#include "host/core/error.h"
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

// The table, head and norms of every layer: what a deferred load reads a row range at a time.
std::vector<std::pair<std::string, const FrozenTensor*>> frozen_tensors(const LlamaModel& m) {
  std::vector<std::pair<std::string, const FrozenTensor*>> out{
      {"tok_embeddings", &m.tok_embeddings}, {"output", &m.output}, {"norm", &m.norm}};
  for (std::size_t l = 0; l < m.layers.size(); ++l) {
    out.emplace_back("layer " + std::to_string(l) + " attn_norm", &m.layers[l].attn_norm);
    out.emplace_back("layer " + std::to_string(l) + " ffn_norm", &m.layers[l].ffn_norm);
  }
  return out;
}

void expect_same_bytes(const Tensor& want, const Tensor& got, const std::string& what) {
  ASSERT_EQ(want.shape(), got.shape()) << what;
  ASSERT_EQ(want.dtype(), got.dtype()) << what;
  EXPECT_EQ(std::memcmp(want.raw(), got.raw(), want.nbytes()), 0) << what;
}

// Deferred, the table, head and norms are readers of the mapped file (nothing of them resident); read whole or a
// few rows at a time (as the upload reads them) they are the resident load's bytes.
void expect_same_frozen_tensors(const LlamaModel& resident, const LlamaModel& deferred, const std::string& origin) {
  const auto r = frozen_tensors(resident), d = frozen_tensors(deferred);
  ASSERT_EQ(r.size(), d.size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    const std::string what = origin + " " + r[i].first;
    EXPECT_FALSE(r[i].second->is_deferred()) << what;
    ASSERT_TRUE(d[i].second->is_deferred()) << what;
    EXPECT_EQ(d[i].second->shape(), r[i].second->shape()) << what;
    EXPECT_EQ(d[i].second->dtype(), DType::F32) << what;
    const Tensor want = r[i].second->values();
    expect_same_bytes(want, d[i].second->values(), what);
    const std::int64_t rows = want.dim(0);
    for (std::int64_t first = 0; first < rows; first += 7) {
      const std::int64_t n = std::min<std::int64_t>(7, rows - first);
      expect_same_bytes(want.slice_rows(first, first + n).clone(), d[i].second->rows(first, n),
                        what + " rows from " + std::to_string(first));
    }
    EXPECT_THROW(d[i].second->rows(rows - 1, 2), Error) << what;
  }
}

TEST(DeferredLoad, EveryFormatMakesTheResidentLoadsWeights) {
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
      EXPECT_EQ(deferred.output.same_as(deferred.tok_embeddings), resident.output.same_as(resident.tok_embeddings))
          << what;  // ties kept
      expect_same_frozen_tensors(resident, deferred, what);
    }
}

// A model open with an f32 base (a C API pl_model loaded with "none") gives a train job its NF4 base from the same
// readers: the linears an NF4 load converts, byte for byte; what cannot be derived is refused (nullopt).
TEST(DeferredLoad, AnF32DeferredModelGivesTheNf4LoadsBaseFromItsOwnReaders) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf");
  test::TempDir tmp;
  fs::create_directories(tmp / "bnb");
  write_bnb4bit(hf, tmp / "bnb" / "model.safetensors");
  for (const fs::path& path : {bin, hf}) {
    const LlamaModel f32 = load_llama_model(path, BaseQuant::None, BaseLoad::Deferred);
    const std::optional<LlamaModel> nf4 = with_base_quant(f32, BaseQuant::Nf4);
    ASSERT_TRUE(nf4) << path;
    EXPECT_EQ(nf4->quant, BaseQuant::Nf4);
    EXPECT_TRUE(nf4->tok_embeddings.same_as(f32.tok_embeddings)) << path;  // the same reader, not a copy
    const LlamaModel want = load_llama_model(path, BaseQuant::Nf4, BaseLoad::Resident);
    const auto r = linears(want), d = linears(*nf4);
    ASSERT_EQ(r.size(), d.size());
    for (std::size_t i = 0; i < r.size(); ++i) {
      ASSERT_TRUE(d[i]->is_deferred() && d[i]->is_nf4()) << path << " linear " << i;
      expect_same_linear(*r[i], d[i]->materialized(), path.string() + " linear " + std::to_string(i));
    }
    EXPECT_TRUE(with_base_quant(f32, BaseQuant::None));
    EXPECT_FALSE(with_base_quant(load_llama_model(path, BaseQuant::Nf4, BaseLoad::Deferred), BaseQuant::None));
    EXPECT_FALSE(with_base_quant(load_llama_model(path, BaseQuant::None, BaseLoad::Resident), BaseQuant::Nf4));
  }
  // A bnb-4bit checkpoint is NF4 however it is asked for, as the loader has it.
  const LlamaModel bnb = load_llama_model(tmp / "bnb", BaseQuant::None, BaseLoad::Deferred);
  ASSERT_TRUE(with_base_quant(bnb, BaseQuant::None));
  EXPECT_EQ(with_base_quant(bnb, BaseQuant::None)->quant, BaseQuant::Nf4);
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

// Counts the rows a model's deferred table (tied head) and norms read.
void count_rows_read(LlamaModel& m, std::shared_ptr<std::int64_t> rows) {
  const auto counted = [&](const FrozenTensor& t) {
    return FrozenTensor::deferred(t.shape(), [t, rows](std::int64_t first, std::int64_t count) {
      *rows += count;
      return t.rows(first, count);
    });
  };
  const bool tied = m.output.same_as(m.tok_embeddings);
  m.tok_embeddings = counted(m.tok_embeddings);
  m.output = tied ? m.tok_embeddings : counted(m.output);
  m.norm = counted(m.norm);
  for (auto& L : m.layers) {
    L.attn_norm = counted(L.attn_norm);
    L.ffn_norm = counted(L.ffn_norm);
  }
}

TEST(DeferredLoad, ThePlannerSizesDeferredLinearsWithoutConvertingThemAndUploadConvertsEachOnce) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  const LlamaModel resident = load_llama_model(bin, BaseQuant::Nf4, BaseLoad::Resident);
  LlamaModel deferred = load_llama_model(bin, BaseQuant::Nf4, BaseLoad::Deferred);
  auto calls = std::make_shared<int>(0);
  auto rows = std::make_shared<std::int64_t>(0);
  count_conversions(deferred, calls);
  count_rows_read(deferred, rows);
  ASSERT_TRUE(deferred.output.same_as(deferred.tok_embeddings));  // stories260K ties its head
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
  EXPECT_EQ(*rows, 0);
  EXPECT_EQ(pd.resident_bytes, pr.resident_bytes);  // sized from the shape as from the codes
  EXPECT_EQ(pd.peak_bytes(), pr.peak_bytes());
  const std::uint64_t before = be->memory_in_use();
  const BackendLlama bd = upload_llama(*be, deferred, DType::F16);
  EXPECT_EQ(*calls, static_cast<int>(7 * deferred.layers.size()));
  const auto& c = deferred.config;
  // The tied table once, every norm once.
  EXPECT_EQ(*rows, c.vocab_size + c.dim * (1 + 2 * c.n_layers));
  auto be_resident = make_backend(BackendKind::Cpu);
  const BackendLlama br = upload_llama(*be_resident, resident, DType::F16);
  EXPECT_EQ(be->memory_in_use() - before, be_resident->memory_in_use());
  // What the backend holds: the resident load's upload, byte for byte (f16 table converted chunk by chunk).
  expect_same_bytes(be_resident->read(br.tok_embeddings), be->read(bd.tok_embeddings), "tok_embeddings");
  EXPECT_EQ(bd.output.id, bd.tok_embeddings.id);  // tied: one upload
  expect_same_bytes(be_resident->read(br.norm), be->read(bd.norm), "norm");
  expect_same_bytes(be_resident->read(br.layers[0].ffn_norm), be->read(bd.layers[0].ffn_norm), "ffn_norm");
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

// A 1-layer model whose embedding table is 128 MiB of f32 (vocabulary 65,536 x dim 512) against one whose table is
// 1 MiB: the CPU backend keeps its own f32 copy of the table (what backend_bytes counts), and the host holds none
// beside it — after the upload, and at peak no more than the upload's chunk and its file pages above it. Before the
// table was deferred, the host's f32 table doubled both.
TEST(DeferredLoad, UploadingATableHoldsNoHostCopyOfIt) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer's shadow memory and quarantine make RSS figures meaningless";
#endif
  test::TempDir tmp;
  const std::int32_t dim = 512, hidden = 1536;
  write_llama2c(tmp / "small.bin", dim, hidden, 1, 512);
  write_llama2c(tmp / "large.bin", dim, hidden, 1, 65536);
  const nlohmann::json small = forward_memory(tmp / "small.bin"), large = forward_memory(tmp / "large.bin");
  const auto diff = [&](const char* key) {
    return static_cast<double>(large[key].get<std::uint64_t>()) - static_cast<double>(small[key].get<std::uint64_t>());
  };
  const double table = 4.0 * dim * (65536 - 512), mib = 1 << 20;
  const double backend = diff("backend_bytes");
  EXPECT_NEAR(backend, table, 1 * mib);  // the backend's copy
  EXPECT_LE(diff("rss_anon_after_upload_bytes"), backend + 8 * mib)
      << "anonymous memory after the upload grew " << diff("rss_anon_after_upload_bytes") / mib << " MiB for a "
      << table / mib << " MiB table";
  // At peak: the backend's copy plus one 16 MiB f32 chunk and its file pages, plus allocator slack.
  const double bound = backend + 2 * 16 * mib + 12 * mib;
  EXPECT_LE(diff("peak_rss_bytes"), bound) << "peak grew " << diff("peak_rss_bytes") / mib << " MiB";
  EXPECT_LT(bound, 2 * table);  // so the check tells a host copy apart
  EXPECT_LT(diff("rss_file_after_upload_bytes"), 8 * mib);  // the table's file pages dropped
}

}  // namespace
}  // namespace pocketlora
