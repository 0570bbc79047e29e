#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"
#include "asr/core/exclusive_lock.h"
#include "asr/core/file_checks.h"
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

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(FileChecks, InputsThatAreNotRegularFilesAreRefusedByType) {
  test::TempDir dir;
  auto fifo = dir / "pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto sock = dir / "sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_NE(error_of([&] { require_regular_input(fifo, "audio file"); }).find("is a FIFO"), std::string::npos);
  EXPECT_NE(error_of([&] { require_regular_input(sock, "audio file"); }).find("is a socket"), std::string::npos);
  EXPECT_NE(error_of([&] { require_regular_input("/dev/zero", "audio file"); }).find("character device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { require_regular_input(dir.path(), "audio file"); }).find("directory"), std::string::npos);
  EXPECT_NE(error_of([&] { require_regular_input(dir / "none", "audio file"); }).find("check the path"),
            std::string::npos);
  write_file_atomic(dir / "ok", "x");
  EXPECT_EQ(error_of([&] { require_regular_input(dir / "ok", "audio file"); }), "");
  ::close(fd);
}

TEST(FileChecks, OutputsMustBeRegularAndNotAnInput) {
  test::TempDir dir;
  write_file_atomic(dir / "in.txt", "x");
  std::filesystem::create_symlink(dir / "in.txt", dir / "alias.txt");
  EXPECT_NE(error_of([&] { require_writable_output("/dev/null", "output", {}); }).find("character device"),
            std::string::npos);
  EXPECT_NE(error_of([&] { require_writable_output(dir / "alias.txt", "output", {dir / "in.txt"}); })
                .find("same file as the input"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { require_writable_output(dir / "new.txt", "output", {dir / "in.txt"}); }), "");
}

TEST(ExclusiveLock, SecondHolderIsRefusedWithTheFirstHoldersPid) {
  test::TempDir dir;
  auto lock = ExclusiveLock::acquire(dir / "LOCK", "run directory x");
  EXPECT_TRUE(ExclusiveLock::is_held(dir / "LOCK"));
  std::string message = error_of([&] { ExclusiveLock::acquire(dir / "LOCK", "run directory x"); });
  EXPECT_NE(message.find("run directory x is in use by pid " + std::to_string(::getpid())), std::string::npos)
      << message;
  lock.release();
  EXPECT_FALSE(std::filesystem::exists(dir / "LOCK"));
  EXPECT_FALSE(ExclusiveLock::is_held(dir / "LOCK"));
}

TEST(ExclusiveLock, ALockFileOfADeadProcessIsTakenOverAndNamed) {
  test::TempDir dir;
  pid_t child = ::fork();
  if (child == 0) {
    auto lock = ExclusiveLock::acquire(dir / "LOCK", "x");
    ::_exit(0);  // dies holding it: the file stays, the kernel drops the lock
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(std::filesystem::exists(dir / "LOCK"));
  EXPECT_FALSE(ExclusiveLock::is_held(dir / "LOCK"));
  std::string stale;
  auto lock = ExclusiveLock::acquire(dir / "LOCK", "x", &stale);
  EXPECT_NE(stale.find("pid " + std::to_string(child)), std::string::npos) << stale;
}

}  // namespace asr
