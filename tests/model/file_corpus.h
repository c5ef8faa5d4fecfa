#pragma once
// Plumbing shared by the corrupt-file tests: run a reader on a generated file and classify the outcome. A case
// passes when it loads cleanly or throws a pocketlora Error whose message names the file; a crash, a sanitizer
// report, std::bad_alloc from a giant allocation, a bare std::exception or an unnamed Error fails the test.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "common/test_data.h"
#include "host/core/error.h"

namespace pocketlora::test {

inline std::vector<char> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

inline void write_all(const std::filesystem::path& p, const std::vector<char>& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct Corpus {
  TempDir& tmp;
  int cases = 0, rejected = 0, failed = 0;

  // Runs `load`; a thrown error must be a library Error whose message contains `must_name` (the file).
  void check(const std::string& name, const std::string& must_name, const std::function<void()>& load) {
    ++cases;
    try {
      load();
    } catch (const Error& e) {
      ++rejected;
      if (std::string(e.what()).find(must_name) == std::string::npos) {
        ++failed;
        ADD_FAILURE() << name << ": error does not name '" << must_name << "': " << e.what();
      }
    } catch (const std::bad_alloc&) {
      ++failed;
      ADD_FAILURE() << name << ": std::bad_alloc (a size from the file reached an allocation unchecked)";
    } catch (const std::exception& e) {
      ++failed;
      ADD_FAILURE() << name << ": bare std::exception instead of a pocketlora error: " << e.what();
    }
  }

  // Writes `bytes` under `name`, runs `load` on it; errors must name the file.
  void run(const std::string& name, const std::vector<char>& bytes,
           const std::function<void(const std::filesystem::path&)>& load) {
    const auto p = tmp / name;
    write_all(p, bytes);
    check(name, p.filename().string(), [&] { load(p); });
  }
};

}  // namespace pocketlora::test
