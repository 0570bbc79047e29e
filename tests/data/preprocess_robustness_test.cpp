// asr_preprocess against what users and machines get wrong: inputs that are
// not regular files, flag values out of range, corpora with nothing usable,
// vocabularies too small, a second run on the same output, stale temporary
// directories, a stop signal. Disk-full runs and real signals are whole-binary
// tests (tests/cli/preprocess_*.sh).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <future>
#include <limits>

#include "asr/core/error.h"
#include "asr/core/exclusive_lock.h"
#include "asr/data/ljspeech.h"
#include "asr/data/preprocess.h"
#include "corpus_fixture.h"
#include "test_support.h"

namespace fs = std::filesystem;
using asr::test::TempDir;

namespace {

// The message of the asr::Error that run_preprocess throws ("" when it succeeds).
std::string failure_of(const asr::PreprocessOptions& o) {
  try {
    asr::run_preprocess(o);
  } catch (const asr::Error& e) {
    return e.what();
  }
  return "";
}

// Runs the pipeline where a FIFO may be read: a regression that opens the
// FIFO blocks, so after `limit` the test opens the writing end itself (which
// lets the blocked open finish and read EOF) and fails instead of hanging.
std::string failure_with_fifo(const asr::PreprocessOptions& o, const fs::path& fifo) {
  auto run = std::async(std::launch::async, [&] { return failure_of(o); });
  if (run.wait_for(std::chrono::seconds(30)) == std::future_status::ready) return run.get();
  int fd = ::open(fifo.c_str(), O_WRONLY);
  ::close(fd);
  run.get();
  ADD_FAILURE() << "the pipeline blocked on the FIFO " << fifo;
  return "";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "expected '" << part << "' in: " << text;
}

void expect_no_temporary_or_lock_left(const TempDir& dir) {
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".out."), std::string::npos) << "left behind: " << entry.path();
  }
}

// A failed run: no output, no temporary directory, no lock.
void expect_nothing_written(const TempDir& dir) {
  EXPECT_FALSE(fs::exists(dir / "out"));
  expect_no_temporary_or_lock_left(dir);
}

}  // namespace

TEST(PreprocessInputs, FifoAsMetadataIsRefusedWithoutOpeningIt) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  fs::remove(dir / "in" / "metadata.csv");
  ASSERT_EQ(::mkfifo((dir / "in" / "metadata.csv").c_str(), 0644), 0);
  const std::string m = failure_with_fifo(asr::test::preprocess_options(dir.path(), 1, 1), dir / "in" / "metadata.csv");
  expect_contains(m, "metadata.csv");
  expect_contains(m, "FIFO");
  expect_nothing_written(dir);
}

TEST(PreprocessInputs, AudioThatIsNotARegularFileIsRejectedByType) {
  TempDir dir;
  auto ids = asr::test::write_corpus(dir / "in", 12);
  const fs::path wavs = dir / "in" / "wavs";
  fs::remove(wavs / "T0001.wav");
  ASSERT_EQ(::mkfifo((wavs / "T0001.wav").c_str(), 0644), 0);
  fs::remove(wavs / "T0002.wav");
  fs::create_directory(wavs / "T0002.wav");
  fs::remove(wavs / "T0003.wav");
  fs::create_symlink("/dev/zero", wavs / "T0003.wav");
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  EXPECT_EQ(failure_with_fifo(o, wavs / "T0001.wav"), "");
  const std::string tsv = asr::test::slurp(dir / "out" / "rejects.tsv");
  expect_contains(tsv, "T0001\taudio file " + (wavs / "T0001.wav").string() + " is a FIFO");
  expect_contains(tsv, "T0002\taudio file " + (wavs / "T0002.wav").string() + " is a directory");
  expect_contains(tsv, "T0003\taudio file " + (wavs / "T0003.wav").string() + " is a character device");
}

TEST(PreprocessInputs, InputMustBeADirectoryWithWavs) {
  TempDir dir;
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  std::ofstream(dir / "in") << "a file, not a directory";
  std::string m = failure_of(o);
  expect_contains(m, "is a regular file, not a directory");
  expect_contains(m, "--input");
  fs::remove(dir / "in");
  asr::test::write_corpus(dir / "in", 4);
  fs::remove_all(dir / "in" / "wavs");
  m = failure_of(o);
  expect_contains(m, "no wavs/ directory");
}

// Why nothing is usable: counts per reason, and the first rows with theirs.
TEST(PreprocessInputs, NoUsableUtterancesSaysWhy) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 5);
  const fs::path in = dir / "in";
  fs::remove_all(in / "wavs");
  fs::create_directories(in / "wavs");
  asr::write_wav16((in / "wavs" / "T0004.wav").string(), asr::test::tone(1, 16000, 0.01), 16000);
  std::ofstream(in / "metadata.csv", std::ios::app) << "only two|fields\n";
  const std::string m = failure_of(asr::test::preprocess_options(dir.path(), 1, 1));
  expect_contains(m, "no usable utterances");
  expect_contains(m, "all 6 rows were rejected (missing audio 4, malformed line 1, too short 1)");
  expect_contains(m, "line 1 (T0000): audio not found: no " + (in / "wavs" / "T0000.wav").string() + ", .flac or .ogg");
  expect_contains(m, "line 3 (T0002)");
  EXPECT_EQ(m.find("line 4 (T0003)"), std::string::npos) << "only the first 3 rows: " << m;

  std::ofstream(in / "metadata.csv", std::ios::trunc) << "\n\n";
  expect_contains(failure_of(asr::test::preprocess_options(dir.path(), 1, 1)), "metadata.csv has no rows");
}

// FLAC and OGG are looked for under their own extensions when there is no .wav.
TEST(PreprocessInputs, AudioIsFoundUnderEveryKnownExtension) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 3);
  const fs::path wavs = dir / "in" / "wavs";
  fs::rename(wavs / "T0001.wav", wavs / "T0001.flac");  // libsndfile goes by content, not by name
  const asr::AudioLookup found = asr::locate_audio(wavs.string(), "T0001");
  EXPECT_EQ(found.path, (wavs / "T0001.flac").string());
  EXPECT_EQ(asr::locate_audio(wavs.string(), "T0000").path, (wavs / "T0000.wav").string());
  const asr::AudioLookup missing = asr::locate_audio(wavs.string(), "NONE");
  EXPECT_EQ(missing.kind, "missing audio");
  expect_contains(missing.problem, "no " + (wavs / "NONE.wav").string() + ", .flac or .ogg");
}

TEST(PreprocessOptions, EveryNumericOptionHasARange) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 6);
  const auto base = asr::test::preprocess_options(dir.path(), 1, 1);
  struct Case {
    const char* flag;
    void (*spoil)(asr::PreprocessOptions&);
  } cases[] = {
      {"--val", [](asr::PreprocessOptions& o) { o.val = static_cast<size_t>(-1); }},
      {"--test", [](asr::PreprocessOptions& o) { o.test = static_cast<size_t>(-1); }},
      {"--shards", [](asr::PreprocessOptions& o) { o.shards = 0; }},
      {"--vocab-size", [](asr::PreprocessOptions& o) { o.vocab_size = 3; }},
      {"--sample-rate", [](asr::PreprocessOptions& o) { o.sample_rate = 10'000'000; }},
      {"--threads", [](asr::PreprocessOptions& o) { o.threads = 100'000'000; }},
      {"--max-duration", [](asr::PreprocessOptions& o) { o.max_duration = std::numeric_limits<double>::infinity(); }},
      {"--min-duration", [](asr::PreprocessOptions& o) { o.min_duration = std::nan(""); }},
      {"--min-duration", [](asr::PreprocessOptions& o) { o.min_duration = -1; }},
      {"--min-duration", [](asr::PreprocessOptions& o) {
         o.min_duration = 5;
         o.max_duration = 2;
       }},
  };
  for (const Case& c : cases) {
    auto o = base;
    c.spoil(o);
    try {
      asr::validate(o);
      ADD_FAILURE() << c.flag << ": a value out of range was accepted";
    } catch (const asr::Error& e) {
      EXPECT_EQ(e.exit_code(), asr::kExitUsage) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind(c.flag, 0), 0u) << "the message must start with the flag: " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
}

// The check asr_preprocess's flags use, on the text as typed.
TEST(PreprocessOptions, FlagTextIsCheckedBeforeConversion) {
  namespace range = asr::preprocess_ranges;
  EXPECT_EQ(asr::option_value_problem(range::kVal, "250"), "");
  EXPECT_EQ(asr::option_value_problem(range::kMaxDuration, "12.5"), "");
  const std::pair<const asr::OptionRange*, const char*> bad[] = {
      {&range::kVal, "-1"},           {&range::kVal, "1e3"},           {&range::kVal, "abc"},
      {&range::kVal, ""},             {&range::kTest, "99999999999999999999"}, {&range::kShards, "0"},
      {&range::kVocabSize, "3"},      {&range::kSampleRate, "999"},    {&range::kThreads, "1025"},
      {&range::kMinDuration, "nan"},  {&range::kMaxDuration, "inf"},   {&range::kMaxDuration, "-1"},
      {&range::kMaxDuration, "1e400"}, {&range::kMaxDuration, "0"},    {&range::kMinDuration, "0.5s"},
  };
  for (auto [r, text] : bad) {
    const std::string problem = asr::option_value_problem(*r, text);
    EXPECT_FALSE(problem.empty()) << r->flag << " accepted '" << text << "'";
    EXPECT_NE(problem.find(r->what), std::string::npos) << problem;
  }
  expect_contains(asr::option_value_problem(range::kVal, "-1"), "-1 is out of range: use an integer from 0 to 100000000");
}

TEST(PreprocessOptions, CharTokenizerTooSmallForTheTextIsAnError) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  o.tokenizer = "char";
  o.vocab_size = 10;
  const std::string m = failure_of(o);
  expect_contains(m, "--vocab-size 10 is too small");
  expect_nothing_written(dir);
}

// A second run on an output that a live run holds fails naming the holder,
// and touches nothing of the first's.
TEST(PreprocessOutput, ALiveRunsOutputIsNotTouched) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  asr::ExclusiveLock held = asr::ExclusiveLock::acquire(dir / ".out.lock", "a test standing in for a run");
  fs::create_directories(dir / ".out.partial-1");
  std::ofstream(dir / ".out.partial-1" / "train-00000-of-00001.h5") << "being written";
  o.overwrite = true;
  const std::string m = failure_of(o);
  expect_contains(m, "is in use by pid " + std::to_string(::getpid()) + " on host ");
  EXPECT_TRUE(fs::exists(dir / ".out.partial-1" / "train-00000-of-00001.h5")) << "a live run's files were removed";
  EXPECT_FALSE(fs::exists(dir / "out"));
}

// Temporary directories whose lock no process holds are removed by the next
// run; one made on another host is left alone (its process cannot be checked).
TEST(PreprocessOutput, StaleTemporaryDirectoriesAreRemoved) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  auto make_partial = [&](const std::string& name, const std::string& holder) {
    fs::create_directories(dir / name);
    std::ofstream(dir / name / "tokenizer.model") << "half written";
    if (!holder.empty()) std::ofstream(dir / name / ".lock") << holder << "\n";
  };
  make_partial(".out.partial-4000001", std::string("pid 4000001 on host ") + host + " since 2026-01-01T00:00:00Z");
  make_partial(".out.partial-4000002", "");  // killed before it locked its directory
  make_partial(".out.partial-4000003", "pid 4000003 on host some-other-node since 2026-01-01T00:00:00Z");
  make_partial(".other.partial-4000004", "");  // another output's
  asr::run_preprocess(asr::test::preprocess_options(dir.path(), 1, 1));
  EXPECT_FALSE(fs::exists(dir / ".out.partial-4000001"));
  EXPECT_FALSE(fs::exists(dir / ".out.partial-4000002"));
  EXPECT_TRUE(fs::exists(dir / ".out.partial-4000003" / "tokenizer.model"));
  EXPECT_TRUE(fs::exists(dir / ".other.partial-4000004" / "tokenizer.model"));
  EXPECT_TRUE(fs::exists(dir / "out" / "manifest.json"));
  EXPECT_FALSE(fs::exists(dir / ".out.lock")) << "the lock file goes with the run";
  EXPECT_FALSE(fs::exists(dir / "out" / ".lock")) << "the temporary directory's lock must not be installed";
}

// A raised stop flag ends the run with 128 + the signal and no output.
TEST(PreprocessOutput, StopSignalLeavesNothingBehind) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  std::atomic<int> stop{SIGTERM};
  o.stop_signal = &stop;
  try {
    asr::run_preprocess(o);
    FAIL() << "a raised stop flag must stop the run";
  } catch (const asr::PreprocessInterrupted& e) {
    EXPECT_EQ(e.exit_code(), 128 + SIGTERM);
    expect_contains(e.what(), "stopped by SIGTERM");
  }
  expect_nothing_written(dir);
}

// --overwrite swaps the new output in: the old one is gone, nothing else left.
TEST(PreprocessOutput, OverwriteSwapsInPlace) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 8);
  auto o = asr::test::preprocess_options(dir.path(), 1, 1);
  asr::run_preprocess(o);
  std::ofstream(dir / "out" / "old-marker") << "from the first run";
  o.overwrite = true;
  asr::run_preprocess(o);
  EXPECT_TRUE(fs::exists(dir / "out" / "manifest.json"));
  EXPECT_FALSE(fs::exists(dir / "out" / "old-marker"));
  expect_no_temporary_or_lock_left(dir);
}
