// One model from three files: stories260K as llama2.c .bin, GGUF (F32 and quantized) and HF safetensors yield the
// same config and weights (HF q/k un-permuted), and a plain CPU forward on the loaded weights reproduces the
// independent reference logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/test_data.h"
#include "harness/op_harness.h"
#include "host/core/error.h"
#include "host/model/llama2c.h"
#include "host/model/llama_weights.h"
#include "host/ref/eigen_view.h"

using namespace pocketlora;
using namespace pocketlora::test;

namespace {

// llama2.c run.c forward (fp64 here), interleaved RoPE, GQA; returns logits for each position of `tokens`.
std::vector<std::vector<double>> forward(const LlamaWeights& w, const std::vector<int>& tokens) {
  const auto& c = w.config;
  const std::int64_t D = c.dim, HD = c.head_dim, KV = c.kv_dim(), H = c.hidden_dim;
  // Returns a copy: matrix_d() is a view into the temporary converted tensor.
  auto mat = [&](const std::string& n) -> RowMatrixD { return as_matrix_d(w.at(n).to(DType::F64)); };
  auto vec = [&](const std::string& n) {
    Tensor t = w.at(n).to(DType::F64);
    return Eigen::VectorXd(Eigen::Map<Eigen::VectorXd>(t.data<double>(), t.numel()));
  };
  auto rmsnorm = [&](const Eigen::VectorXd& x, const Eigen::VectorXd& g) {
    return Eigen::VectorXd(x.cwiseProduct(g) / std::sqrt(x.squaredNorm() / static_cast<double>(D) + c.rms_eps));
  };
  auto rope = [&](Eigen::VectorXd& v, std::int64_t n, int pos) {
    for (std::int64_t i = 0; i < n; i += 2) {
      const double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(i % HD) / static_cast<double>(HD));
      const double a = pos * f, c0 = std::cos(a), s0 = std::sin(a), x0 = v[i], x1 = v[i + 1];
      v[i] = x0 * c0 - x1 * s0;
      v[i + 1] = x0 * s0 + x1 * c0;
    }
  };
  const RowMatrixD emb = mat("tok_embeddings"), out = mat("output");
  std::vector<std::vector<Eigen::VectorXd>> kc(static_cast<std::size_t>(c.n_layers)), vc(static_cast<std::size_t>(c.n_layers));
  std::vector<std::vector<double>> logits;
  for (int pos = 0; pos < static_cast<int>(tokens.size()); ++pos) {
    Eigen::VectorXd x = emb.row(tokens[static_cast<std::size_t>(pos)]).transpose();
    for (std::int64_t l = 0; l < c.n_layers; ++l) {
      const std::string p = "layers." + std::to_string(l) + ".";
      Eigen::VectorXd xb = rmsnorm(x, vec(p + "attention_norm"));
      Eigen::VectorXd q = mat(p + "attention.wq") * xb, k = mat(p + "attention.wk") * xb, v = mat(p + "attention.wv") * xb;
      rope(q, D, pos);
      rope(k, KV, pos);
      kc[static_cast<std::size_t>(l)].push_back(k);
      vc[static_cast<std::size_t>(l)].push_back(v);
      Eigen::VectorXd att_out = Eigen::VectorXd::Zero(D);
      for (std::int64_t h = 0; h < c.n_heads; ++h) {
        const std::int64_t kvh = h / (c.n_heads / c.n_kv_heads);
        std::vector<double> s(static_cast<std::size_t>(pos + 1));
        double mx = -1e300;
        for (int t = 0; t <= pos; ++t) {
          s[static_cast<std::size_t>(t)] = q.segment(h * HD, HD).dot(kc[static_cast<std::size_t>(l)][static_cast<std::size_t>(t)].segment(kvh * HD, HD)) / std::sqrt(static_cast<double>(HD));
          mx = std::max(mx, s[static_cast<std::size_t>(t)]);
        }
        double z = 0;
        for (auto& e : s) z += (e = std::exp(e - mx));
        for (int t = 0; t <= pos; ++t)
          att_out.segment(h * HD, HD) += s[static_cast<std::size_t>(t)] / z * vc[static_cast<std::size_t>(l)][static_cast<std::size_t>(t)].segment(kvh * HD, HD);
      }
      x += mat(p + "attention.wo") * att_out;
      xb = rmsnorm(x, vec(p + "ffn_norm"));
      Eigen::VectorXd g = mat(p + "feed_forward.w1") * xb, u = mat(p + "feed_forward.w3") * xb;
      Eigen::VectorXd hb(H);
      for (std::int64_t i = 0; i < H; ++i) hb[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
      x += mat(p + "feed_forward.w2") * hb;
    }
    x = rmsnorm(x, vec("norm"));
    Eigen::VectorXd lg = out * x;
    logits.emplace_back(lg.data(), lg.data() + lg.size());
  }
  return logits;
}

// |a - b| <= tol + rel_amax * max|a| per tensor.
// export.py's 256-byte header: magic "ak42", version, 7 int32 params, shared-classifier byte, then (version 2)
// the int32 group size, zero padded.
void write_llama2c_header(std::ofstream& out, const LlamaConfig& c, std::int32_t version, std::int32_t group) {
  std::vector<char> h(256, 0);
  const std::uint32_t magic = 0x616b3432;
  const std::int32_t p[7] = {static_cast<std::int32_t>(c.dim), static_cast<std::int32_t>(c.hidden_dim),
                             static_cast<std::int32_t>(c.n_layers), static_cast<std::int32_t>(c.n_heads),
                             static_cast<std::int32_t>(c.n_kv_heads), static_cast<std::int32_t>(c.vocab_size),
                             static_cast<std::int32_t>(c.max_seq_len)};
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &version, 4);
  std::memcpy(h.data() + 8, p, 28);
  h[36] = 1;  // shared classifier
  if (version == 2) std::memcpy(h.data() + 37, &group, 4);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
}

void expect_same_weights(const LlamaWeights& a, const LlamaWeights& b, double tol, double rel_amax = 0) {
  ASSERT_TRUE(a.config.same_architecture(b.config)) << a.config.summary() << " vs " << b.config.summary();
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (auto& [name, t] : a.tensors) {
    const Tensor& u = b.at(name);
    ASSERT_EQ(t.shape(), u.shape()) << name;
    double worst = 0, amax = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      worst = std::max(worst, static_cast<double>(std::fabs(t.data<float>()[i] - u.data<float>()[i])));
      amax = std::max(amax, static_cast<double>(std::fabs(t.data<float>()[i])));
    }
    EXPECT_LE(worst, tol + rel_amax * amax) << name << " (" << model_source_name(a.source) << " vs " << model_source_name(b.source) << ")";
  }
}

TEST(ModelLoad, ThreeStories260KFilesAreTheSameModel) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(gguf, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  auto a = load_llama_weights(bin), b = load_llama_weights(gguf), c = load_llama_weights(hf);
  EXPECT_EQ(a.config.dim, 64);
  EXPECT_EQ(a.config.hidden_dim, 172);
  EXPECT_EQ(a.config.n_kv_heads, 4);
  EXPECT_EQ(b.config.max_seq_len, 128);  // the GGUF converter wrote 128 (shared/data README)
  expect_same_weights(a, b, 0.0);
  expect_same_weights(a, c, 0.0);  // exact: the HF q/k permutation is undone row by row
}

TEST(ModelLoad, ForwardReproducesReferenceLogits) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  POCKETLORA_REQUIRE_DATA(ids_path, "models/stories260K/expected/runc_t0_n200.ids.json");
  POCKETLORA_REQUIRE_DATA(logits_path, "models/stories260K/expected/logits_f32_pos0-15.bin");
  POCKETLORA_REQUIRE_DATA(hf, "models/stories260K/derived/hf/model.safetensors");
  POCKETLORA_REQUIRE_DATA(gguf, "models/stories260K/derived/stories260K-f32.gguf");
  nlohmann::json ids = nlohmann::json::parse(std::ifstream(ids_path));
  const auto& arr = ids.at("tokens_bos_plus_200");
  std::vector<int> tokens;
  for (int i = 0; i < 16; ++i) tokens.push_back(arr.at(static_cast<std::size_t>(i)).get<int>());
  std::ifstream lin(logits_path, std::ios::binary);
  std::vector<float> want(16 * 512);
  lin.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4));
  ASSERT_TRUE(lin) << "logits file shorter than 16 x 512 floats";
  // Every format must give the same logits: the strongest check of weights, naming and RoPE layout.
  for (const std::filesystem::path& rel : {bin, hf, gguf}) {
    auto w = load_llama_weights(rel);
    auto got = forward(w, tokens);
    double worst = 0;
    for (int p = 0; p < 16; ++p)
      for (int v = 0; v < 512; ++v)
        worst = std::max(worst, std::fabs(got[static_cast<std::size_t>(p)][static_cast<std::size_t>(v)] -
                                          want[static_cast<std::size_t>(p * 512 + v)]));
    // fp64 forward vs an fp32 reference: the README promises agreement to ~1e-5 absolute.
    EXPECT_LT(worst, 1e-4) << rel;
  }
}

TEST(ModelLoad, QuantizedGgufLoadsCloseToF32) {
  POCKETLORA_REQUIRE_DATA(f32, "models/stories260K/derived/stories260K-f32.gguf");
  POCKETLORA_REQUIRE_DATA(q8, "models/stories260K/derived/stories260K-mixed-Q8_0.gguf");
  auto a = load_llama_weights(f32), b = load_llama_weights(q8);
  // Q8_0: at most 0.57 of a quantization step (block amax / 127), and a block's amax <= the tensor's.
  expect_same_weights(a, b, 0.0, 0.57 / 127);
}

TEST(ModelLoad, Llama2cVersion1AndBrokenFiles) {
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  auto a = load_llama_weights(bin);
  TempDir tmp;
  // Write the same model in export.py's version 1 layout and load it back.
  {
    std::ofstream out(tmp / "v1.bin", std::ios::binary);
    auto put = [&](const void* p, std::size_t n) { out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); };
    const auto& c = a.config;
    write_llama2c_header(out, c, 1, 0);
    auto tensor = [&](const std::string& n) { const Tensor& t = a.at(n); put(t.raw(), t.nbytes()); };
    auto layers = [&](const std::string& s) {
      for (std::int64_t l = 0; l < c.n_layers; ++l) tensor("layers." + std::to_string(l) + "." + s);
    };
    layers("attention_norm");
    layers("ffn_norm");
    tensor("norm");
    tensor("tok_embeddings");
    for (auto s : {"attention.wq", "attention.wk", "attention.wv", "attention.wo", "feed_forward.w1",
                   "feed_forward.w2", "feed_forward.w3"})
      layers(s);
  }
  auto v1 = load_llama2c(tmp / "v1.bin");
  expect_same_weights(a, v1, 0.0);
  // Truncations name the tensor being read; trailing garbage is rejected too.
  std::ifstream in(bin, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), {}};
  int cases = 0;
  for (std::size_t cut : {std::size_t{0}, std::size_t{12}, std::size_t{27}, std::size_t{28}, std::size_t{5000},
                          std::size_t{200000}, bytes.size() - 1}) {
    std::ofstream(tmp / "cut.bin", std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(cut));
    ++cases;
    try {
      load_llama2c(tmp / "cut.bin");
      ADD_FAILURE() << "truncation at " << cut << " accepted";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("cut.bin"), std::string::npos) << e.what();
    }
  }
  bytes[0] = 0;  // dim 0
  std::ofstream(tmp / "bad.bin", std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW(load_llama2c(tmp / "bad.bin"), FormatError);
}

}  // namespace

namespace {
TEST(ModelLoad, Llama2cVersion2Int8Groups) {
  // export.py version 2: norms fp32, then every matrix as int8 values + one fp32 scale per 64 values
  // (scale = max|w| / 127, q = round(w / scale)). Loaded weights are within half a step of the originals.
  POCKETLORA_REQUIRE_DATA(bin, "models/stories260K/stories260K.bin");
  auto a = load_llama_weights(bin);
  const auto& c = a.config;
  TempDir tmp;
  {
    std::ofstream out(tmp / "v2.bin", std::ios::binary);
    auto put = [&](const void* p, std::size_t n) { out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); };
    const std::int32_t group = 64;
    write_llama2c_header(out, c, 2, group);
    auto fp32 = [&](const std::string& n) { const Tensor& t = a.at(n); put(t.raw(), t.nbytes()); };
    auto q8 = [&](const std::string& n) {
      const Tensor& t = a.at(n);
      const float* x = t.data<float>();
      std::vector<std::int8_t> q(static_cast<std::size_t>(t.numel()));
      std::vector<float> s(static_cast<std::size_t>(t.numel() / group));
      for (std::size_t g = 0; g < s.size(); ++g) {
        float m = 0;
        for (int k = 0; k < group; ++k) m = std::max(m, std::fabs(x[g * group + static_cast<std::size_t>(k)]));
        s[g] = m / 127.0f;
        for (int k = 0; k < group; ++k)
          q[g * group + static_cast<std::size_t>(k)] =
              static_cast<std::int8_t>(std::nearbyint(x[g * group + static_cast<std::size_t>(k)] / s[g]));
      }
      put(q.data(), q.size());
      put(s.data(), s.size() * 4);
    };
    auto layers = [&](const std::string& suffix, bool quantized) {
      for (std::int64_t l = 0; l < c.n_layers; ++l) {
        const std::string n = "layers." + std::to_string(l) + "." + suffix;
        quantized ? q8(n) : fp32(n);
      }
    };
    layers("attention_norm", false);
    layers("ffn_norm", false);
    fp32("norm");
    q8("tok_embeddings");
    for (auto s : {"attention.wq", "attention.wk", "attention.wv", "attention.wo", "feed_forward.w1",
                   "feed_forward.w2", "feed_forward.w3"})
      layers(s, true);
  }
  auto v2 = load_llama2c(tmp / "v2.bin");
  // Half a quantization step: max|w| / 127 / 2 per group, bounded by the tensor's max.
  expect_same_weights(a, v2, 1e-7, 0.5 / 127 * 1.0001);
}
}  // namespace

#include "host/formats/gguf_writer.h"

namespace {
TEST(ModelLoad, Llama3RopeScalingFromHfConfigAndGgufFactorsAgree) {
  // HF: rope_scaling parameters in config.json. GGUF: llama.cpp writes the same scaling as per-frequency
  // divisors in a rope_freqs.weight tensor. Both must give the same inverse frequencies.
  TempDir tmp;
  std::ofstream(tmp / "config.json") << R"({"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1,
      "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 10, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192}})";
  auto hf = llama_config_from_hf(tmp / "config.json");
  ASSERT_TRUE(hf.rope_scaling.has_value());
  const auto want = hf.rope_inv_freq(), base = rope_inv_freq(128, 500000.0);
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.embedding_length", 256);
  w.set_u32("llama.feed_forward_length", 512);
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.attention.head_count", 2);
  w.set_u32("llama.attention.head_count_kv", 1);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.set_f32("llama.rope.freq_base", 500000.0f);
  w.set_u32("llama.vocab_size", 10);
  Tensor factors = Tensor::zeros({64});
  for (int i = 0; i < 64; ++i) factors.data<float>()[i] = static_cast<float>(base[static_cast<std::size_t>(i)] / want[static_cast<std::size_t>(i)]);
  w.add_tensor("rope_freqs.weight", factors);
  w.write(tmp / "m.gguf");
  auto gc = llama_config_from_gguf(GgufFile::open(tmp / "m.gguf"));
  ASSERT_EQ(gc.rope_freq_factors.size(), 64u);
  const auto got = gc.rope_inv_freq();
  for (std::size_t i = 0; i < 64; ++i) EXPECT_NEAR(got[i], want[i], 1e-6 * want[i]) << i;  // factors stored as f32
  EXPECT_TRUE(gc.same_architecture(hf)) << gc.summary() << " vs " << hf.summary();
}
}  // namespace
