// AtomicDirWriter: nothing appears before commit, an abandoned writer leaves nothing, commit replaces; and the
// sweep of temporaries left by killed writers removes only those.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "common/test_data.h"
#include "host/util/atomic_file.h"
#include "host/util/read_file.h"

namespace pocketlora {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

TEST(AtomicDir, AppearsOnlyOnCommitAndReplaces) {
  TempDir tmp;
  const fs::path target = tmp / "ckpt";
  {
    AtomicDirWriter w(target);
    write_file_atomic(w.dir() / "a.txt", "first");
    EXPECT_FALSE(fs::exists(target));
    EXPECT_EQ(w.dir().parent_path(), tmp.path());  // beside the target: the rename stays on one file system
    w.commit();
  }
  EXPECT_EQ(read_file_text(target / "a.txt"), "first");
  {
    AtomicDirWriter w(target);
    write_file_atomic(w.dir() / "b.txt", "second");
    w.commit();
  }
  EXPECT_FALSE(fs::exists(target / "a.txt"));
  EXPECT_EQ(read_file_text(target / "b.txt"), "second");
  {
    AtomicDirWriter w(target);  // abandoned (an exception mid-write): the old contents stay, the temp goes
    write_file_atomic(w.dir() / "c.txt", "third");
  }
  EXPECT_EQ(read_file_text(target / "b.txt"), "second");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicDir, TempNames) {
  EXPECT_TRUE(is_atomic_temp_name("checkpoint-3.tmp.1234"));
  EXPECT_TRUE(is_atomic_temp_name("latest_checkpoint.tmp.7"));
  EXPECT_FALSE(is_atomic_temp_name("checkpoint-3"));
  EXPECT_FALSE(is_atomic_temp_name("notes.tmp."));
  EXPECT_FALSE(is_atomic_temp_name("data.tmp.12a"));
}

TEST(AtomicDir, SweepRemovesOnlyTemporariesOfDeadWriters) {
  TempDir tmp;
  fs::create_directory(tmp / "checkpoint-9.tmp.999999999");  // beyond any pid_max: its writer is gone
  std::ofstream(tmp / "latest_checkpoint.tmp.999999998") << "x";
  const std::string mine = "checkpoint-10.tmp." + std::to_string(::getpid());
  fs::create_directory(tmp / mine);
  fs::create_directory(tmp / "checkpoint-8");
  EXPECT_EQ(remove_stale_atomic_temps(tmp.path()), 2);
  EXPECT_FALSE(fs::exists(tmp / "checkpoint-9.tmp.999999999"));
  EXPECT_FALSE(fs::exists(tmp / "latest_checkpoint.tmp.999999998"));
  EXPECT_TRUE(fs::exists(tmp / mine));
  EXPECT_TRUE(fs::exists(tmp / "checkpoint-8"));
}

}  // namespace
}  // namespace pocketlora
