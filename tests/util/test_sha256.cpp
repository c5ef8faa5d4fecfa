// SHA-256 against the FIPS 180-2 appendix examples, whole and streamed in uneven pieces.
#include <gtest/gtest.h>

#include <string>

#include "host/util/sha256.h"

namespace pocketlora {
namespace {

std::string digest_in_pieces(const std::string& s, std::size_t piece) {
  Sha256 h;
  for (std::size_t i = 0; i < s.size(); i += piece) h.update(std::string_view(s).substr(i, piece));
  return h.hex_digest();
}

TEST(Sha256, FipsExamples) {
  const std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const std::uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";  // 56 bytes: padding spills
  for (std::size_t piece : {1u, 7u, 56u})
    EXPECT_EQ(digest_in_pieces(two_blocks, piece),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") << piece;
}

TEST(Sha256, MillionAsStreamed) {
  const std::string a(1000000, 'a');
  for (std::size_t piece : {63u, 64u, 1000u})
    EXPECT_EQ(digest_in_pieces(a, piece), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") << piece;
}

}  // namespace
}  // namespace pocketlora
