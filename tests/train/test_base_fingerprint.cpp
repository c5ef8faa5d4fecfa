// Base-model fingerprint: equal for the same bytes wherever they live, different for another file, another
// quantization or a changed weight in the sampled ranges; the digest of a small file is rebuilt here from the
// documented byte stream.
#include <gtest/gtest.h>

#include <fstream>

#include "common/error_message.h"
#include "common/test_data.h"
#include "host/core/error.h"
#include "host/train/base_fingerprint.h"
#include "host/util/sha256.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::mentions;
using test::TempDir;

void write_bytes(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string patterned(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + (i >> 11)) & 0xff);
  return s;
}

void flip_byte_at(const fs::path& p, std::size_t offset) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(BaseFingerprint, SmallFileIsHashedWholeAsDocumented) {
  TempDir tmp;
  const std::string bytes = patterned(1000);
  write_bytes(tmp / "model.bin", bytes);
  const std::string stream = "file model.bin 1000\n" + bytes + "quant nf4\n";
  EXPECT_EQ(base_model_fingerprint(tmp / "model.bin", "nf4"),
            "sampled-sha256-v1:" + sha256_hex({reinterpret_cast<const std::uint8_t*>(stream.data()), stream.size()}));
}

TEST(BaseFingerprint, SameBytesElsewhereMatchOtherQuantOrFileDoesNot) {
  POCKETLORA_REQUIRE_DATA(model, "models/stories260K/stories260K.bin");
  TempDir tmp;
  fs::create_directory(tmp / "moved");
  fs::copy_file(model, tmp / "moved" / "stories260K.bin");
  const std::string fp = base_model_fingerprint(model, "nf4");
  EXPECT_EQ(fp.rfind("sampled-sha256-v1:", 0), 0u);
  EXPECT_EQ(fp.size(), 18u + 64u);
  EXPECT_EQ(base_model_fingerprint(tmp / "moved" / "stories260K.bin", "nf4"), fp);
  EXPECT_NE(base_model_fingerprint(model, "none"), fp);
  flip_byte_at(tmp / "moved" / "stories260K.bin", fs::file_size(model) / 2);
  EXPECT_NE(base_model_fingerprint(tmp / "moved" / "stories260K.bin", "nf4"), fp);
}

TEST(BaseFingerprint, LargeFileSamplesEdgesAndMiddle) {
  TempDir tmp;
  const fs::path big = tmp / "model.safetensors";
  const std::size_t size = 9u << 20;  // 9 MiB: past the whole-file limit
  write_bytes(big, patterned(size));
  const std::string fp = base_model_fingerprint(big, "nf4");
  // Head (a header), tail, and the first and last middle samples (at 1 MiB and at size − 1 MiB − 64 KiB).
  for (std::size_t offset : {std::size_t{10}, size - 10, std::size_t{1} << 20, size - (1u << 20) - 1}) {
    flip_byte_at(big, offset);
    EXPECT_NE(base_model_fingerprint(big, "nf4"), fp) << offset;
    flip_byte_at(big, offset);
  }
  EXPECT_EQ(base_model_fingerprint(big, "nf4"), fp);
  // The documented trade: a byte between samples is not read.
  flip_byte_at(big, (1u << 20) + (64u << 10) + 100);
  EXPECT_EQ(base_model_fingerprint(big, "nf4"), fp);
}

TEST(BaseFingerprint, DirectoryCoversModelFilesOnly) {
  TempDir tmp;
  write_bytes(tmp / "config.json", "{\"hidden_size\": 8}");
  write_bytes(tmp / "model.safetensors", patterned(4096));
  write_bytes(tmp / "tokenizer.json", "{}");
  const std::string fp = base_model_fingerprint(tmp.path(), "none");
  write_bytes(tmp / "tokenizer.json", "{\"changed\": true}");
  EXPECT_EQ(base_model_fingerprint(tmp.path(), "none"), fp);
  write_bytes(tmp / "config.json", "{\"hidden_size\": 16}");
  EXPECT_NE(base_model_fingerprint(tmp.path(), "none"), fp);
  fs::create_directory(tmp / "empty");
  EXPECT_TRUE(mentions(error_of<IoError>([&] { base_model_fingerprint(tmp / "empty", "none"); }),
                       {"empty", "no model file"}));
  EXPECT_TRUE(mentions(error_of<IoError>([&] { base_model_fingerprint(tmp / "absent", "none"); }), {"absent"}));
}

}  // namespace
}  // namespace pocketlora
