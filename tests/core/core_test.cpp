#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>

#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"
#include "asr/core/thread_pool.h"
#include "test_support.h"

namespace asr {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 check value and an all-zero block.
  EXPECT_EQ(crc32c("123456789", 9), 0xe3069283u);
  char zeros[32] = {};
  EXPECT_EQ(crc32c(zeros, sizeof zeros), 0x8a9136aau);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
  uint32_t whole = crc32c(s.data(), s.size());
  uint32_t part = crc32c_extend(crc32c(s.data(), 13), s.data() + 13, s.size() - 13);
  EXPECT_EQ(whole, part);
}

TEST(AtomicFile, WritesAndLeavesNoTemp) {
  test::TempDir dir;
  auto path = dir / "out.txt";
  write_file_atomic(path, "hello");
  EXPECT_EQ(read_file(path), "hello");
  write_file_atomic(path, "replaced");
  EXPECT_EQ(read_file(path), "replaced");
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
}

TEST(AtomicFile, MissingDirectoryIsAnErrorNamingThePath) {
  test::TempDir dir;
  try {
    write_file_atomic(dir / "no/such/dir/x", "data");
    FAIL() << "expected asr::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir"), std::string::npos) << e.what();
  }
}

TEST(ThreadPool, ParallelForCoversRangeAndRethrows) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(0, hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(pool.parallel_for(0, 100, [](size_t i) { if (i == 42) throw Error("boom"); }), Error);
}

}  // namespace asr
