#include "asr/data/dataset.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <thread>

#include "asr/audio/audio_io.h"
#include "asr/core/error.h"
#include "asr/data/preprocess.h"
#include "corpus_fixture.h"
#include "dataset_damage.h"
#include "test_support.h"

namespace fs = std::filesystem;
using asr::test::TempDir;

namespace {

// One preprocessed corpus shared by the tests of this file (made once).
class DatasetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("asr-dataset");
    asr::test::write_corpus(*dir_ / "in", 40);
    asr::PreprocessOptions o;
    o.input = (*dir_ / "in").string();
    o.output = (*dir_ / "out").string();
    o.val = o.test = 4;
    o.vocab_size = 50;
    o.shards = 4;
    o.threads = 2;
    asr::run_preprocess(o);
  }
  static void TearDownTestSuite() { delete dir_; }
  // A private copy a test may damage.
  fs::path copy_output(const TempDir& into) {
    fs::copy(*dir_ / "out", into / "out", fs::copy_options::recursive);
    return into / "out";
  }
  static std::string out() { return (*dir_ / "out").string(); }
  static TempDir* dir_;
};
TempDir* DatasetTest::dir_ = nullptr;

// An asr::DataError (exit status 3) whose message holds every one of `needles`.
void expect_data_error(const std::vector<std::string>& needles, const std::function<void()>& fn) {
  try {
    fn();
    ADD_FAILURE() << "expected asr::DataError mentioning " << needles.front();
  } catch (const asr::DataError& e) {
    for (const auto& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << needle << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an asr::DataError: " << e.what();
  }
}

void expect_error_naming(const std::string& needle, const std::function<void()>& fn) {
  try {
    fn();
    FAIL() << "expected asr::Error mentioning " << needle;
  } catch (const asr::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST_F(DatasetTest, SizesDurationsAndManifest) {
  auto ds = asr::Dataset::open(out(), "train", true);
  EXPECT_EQ(ds.size(), 32u);
  EXPECT_EQ(ds.sample_rate(), 16000);
  double total = 0;
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds.get(i).audio.size(), static_cast<size_t>(ds.num_samples(i)));
    EXPECT_DOUBLE_EQ(ds.duration(i), ds.num_samples(i) / 16000.0);
    EXPECT_EQ(ds.get(i).tokens.size(), ds.num_tokens(i));
    total += ds.duration(i);
  }
  EXPECT_NEAR(total, ds.manifest()["splits"]["train"]["seconds"].get<double>(), 1e-6);
  EXPECT_TRUE(fs::exists(ds.tokenizer_path()));
  EXPECT_THROW(ds.get(ds.size()), std::out_of_range);
  asr::Dataset moved = std::move(ds);
  EXPECT_EQ(moved.size(), 32u);
}

TEST_F(DatasetTest, ConcurrentReadsMatchSequentialInBothCacheModes) {
  for (size_t cache : {asr::Dataset::kDefaultCacheBytes, size_t{100000}, size_t{0}}) {
    auto ds = asr::Dataset::open(out(), "train", false, cache);
    std::vector<asr::Dataset::Utterance> want;
    for (size_t i = 0; i < ds.size(); ++i) want.push_back(ds.get(i));
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        for (int rep = 0; rep < 20; ++rep)
          for (size_t k = 0; k < ds.size(); ++k) {
            size_t i = (k * 7 + t * 13 + rep) % ds.size();
            auto u = ds.get(i);
            if (u.id != want[i].id || u.audio != want[i].audio || u.tokens != want[i].tokens) ++mismatches;
          }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(mismatches.load(), 0) << "cache " << cache;
  }
}

TEST_F(DatasetTest, FlippedByteIsCaughtByChecksumUnlessSkipped) {
  TempDir tmp;
  fs::path o = copy_output(tmp);
  fs::path shard = o / "train-00001-of-00004.h5";
  asr::test::flip_byte(shard, asr::test::audio_byte_offset(shard) + 1);
  expect_data_error({shard.string(), "checksum mismatch", "asr_preprocess", "--no-verify"},
                    [&] { asr::Dataset::open(o.string(), "train"); });  // verification is the default
  EXPECT_NO_THROW(asr::Dataset::open(o.string(), "val", true)) << "other splits are unaffected";
  // Skipped, the damaged audio reads (a flipped bit of a sample is not detectable otherwise).
  auto ds = asr::Dataset::open(o.string(), "train", false);
  for (size_t i = 0; i < ds.size(); ++i) EXPECT_NO_THROW(ds.get(i));
  // The tokenizer is verified too.
  asr::test::flip_byte(o / "tokenizer.model", 20);
  expect_data_error({(o / "tokenizer.model").string(), "checksum mismatch"}, [&] { asr::Dataset::open(o.string(), "val"); });
}

TEST_F(DatasetTest, StrayShardIsAnErrorForEverySplit) {
  TempDir tmp;
  fs::path o = copy_output(tmp);
  fs::copy_file(o / "train-00000-of-00004.h5", o / "train-00004-of-00005.h5");
  for (const char* split : {"train", "val", "test"})
    expect_data_error({(o / "train-00004-of-00005.h5").string(), "not listed", "asr_preprocess"},
                      [&] { asr::Dataset::open(o.string(), split, false); });
  fs::remove(o / "train-00004-of-00005.h5");
  EXPECT_NO_THROW(asr::Dataset::open(o.string(), "train"));
}

TEST_F(DatasetTest, DeletedShardNamesTheManifestAndTheFix) {
  TempDir tmp;
  fs::path o = copy_output(tmp);
  fs::remove(o / "train-00002-of-00004.h5");
  for (bool verify : {true, false})
    expect_data_error({(o / "train-00002-of-00004.h5").string(), "manifest.json", "missing", "asr_preprocess"},
                      [&] { asr::Dataset::open(o.string(), "train", verify); });
  fs::remove(o / "tokenizer.model");
  expect_data_error({(o / "tokenizer.model").string(), "missing"}, [&] { asr::Dataset::open(o.string(), "val"); });
}

// Every number the manifest states about the shards is checked against
// them, with or without checksums: a hand edit never goes unnoticed.
TEST_F(DatasetTest, HandEditedManifestIsAnError) {
  const std::string shard = "train-00001-of-00004.h5";
  auto shard_entry = [&](nlohmann::json& m) -> nlohmann::json& {
    for (auto& e : m["splits"]["train"]["shards"])
      if (e["file"] == shard) return e;
    throw std::runtime_error("no entry");
  };
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> edits = {
      {"utterances", [&](auto& m) { shard_entry(m)["utterances"] = shard_entry(m)["utterances"].template get<int>() + 1; }},
      {"samples", [&](auto& m) { shard_entry(m)["samples"] = shard_entry(m)["samples"].template get<int64_t>() - 160; }},
      {"bytes", [&](auto& m) { shard_entry(m)["bytes"] = shard_entry(m)["bytes"].template get<int64_t>() + 1; }},
      {"seconds", [&](auto& m) { shard_entry(m)["seconds"] = shard_entry(m)["seconds"].template get<double>() + 0.5; }},
      {"splits.train.utterances", [](auto& m) { m["splits"]["train"]["utterances"] = 1000; }},
      {"splits.train.seconds", [](auto& m) { m["splits"]["train"]["seconds"] = 1.0; }},
      {"tokenizer.vocab_size", [](auto& m) { m["tokenizer"]["vocab_size"] = m["tokenizer"]["vocab_size"].template get<int>() + 3; }},
      {"checksum mismatch", [&](auto& m) { shard_entry(m)["crc32c"] = "00000000"; }},
  };
  for (const auto& [field, edit] : edits) {
    TempDir tmp;
    fs::path o = copy_output(tmp);
    asr::test::edit_manifest(o, edit);
    expect_data_error({field, "asr_preprocess"}, [&] { asr::Dataset::open(o.string(), "train"); });
    if (field != "checksum mismatch")  // structure, not checksums: caught without verification too
      expect_data_error({field, (o / "manifest.json").string()}, [&] { asr::Dataset::open(o.string(), "train", false); });
  }
}

// Token ids index the model's outputs: ids past the tokenizer, and the CTC
// blank (0, never a target), are refused even when the checksums agree.
TEST_F(DatasetTest, OutOfVocabularyTokenIdsAreAnError) {
  for (int32_t bad : {9999, 0, -2}) {
    TempDir tmp;
    fs::path o = copy_output(tmp);
    const std::string shard = "val-00001-of-00004.h5";
    asr::test::write_token(o / shard, 3, bad);
    asr::test::refresh_checksum(o, shard);
    expect_data_error({(o / shard).string(), "token id " + std::to_string(bad), "vocabulary", "asr_preprocess"},
                      [&] { asr::Dataset::open(o.string(), "val"); });
    EXPECT_NO_THROW(asr::Dataset::open(o.string(), "train"));
  }
}

// A FIFO in place of the manifest, the tokenizer or a shard is refused by its
// type; reading it would block until a writer came (FifoInPlaceOf ends such a
// read after a few seconds, so a regression fails on the message instead of hanging).
TEST_F(DatasetTest, FifosAreRefusedWithoutReading) {
  for (const char* name : {"manifest.json", "tokenizer.model", "val-00000-of-00004.h5"}) {
    TempDir tmp;
    fs::path o = copy_output(tmp);
    asr::test::FifoInPlaceOf fifo(o / name);
    for (bool verify : {true, false})
      expect_data_error({(o / name).string(), "FIFO"}, [&] { asr::Dataset::open(o.string(), "val", verify); });
  }
}

TEST_F(DatasetTest, MissingTruncatedOrForeignShardsAreClearErrors) {
  TempDir tmp;
  fs::path o = copy_output(tmp);
  fs::path shard = o / "val-00000-of-00004.h5";
  fs::resize_file(shard, 300);
  expect_error_naming(shard.string(), [&] { asr::Dataset::open(o.string(), "val"); });
  fs::remove(shard);
  expect_error_naming(shard.string(), [&] { asr::Dataset::open(o.string(), "val"); });
  fs::path train = o / "train-00000-of-00004.h5";
  std::ofstream(train, std::ios::trunc) << "not hdf5";
  expect_error_naming(train.string(), [&] { asr::Dataset::open(o.string(), "train"); });
}

TEST_F(DatasetTest, ManifestProblemsAreClearErrors) {
  TempDir tmp;
  fs::path o = copy_output(tmp);
  fs::path manifest = o / "manifest.json";
  expect_error_naming("split 'dev'", [&] { asr::Dataset::open(o.string(), "dev"); });
  auto m = nlohmann::json::parse(asr::test::slurp(manifest));
  m["format_version"] = 999;
  std::ofstream(manifest, std::ios::trunc) << m.dump();
  expect_error_naming("format version 999", [&] { asr::Dataset::open(o.string(), "train"); });
  std::ofstream(manifest, std::ios::trunc) << "{ not json";
  expect_error_naming(manifest.string(), [&] { asr::Dataset::open(o.string(), "train"); });
  fs::remove(manifest);
  expect_error_naming(manifest.string(), [&] { asr::Dataset::open(o.string(), "train"); });
}

// The 32 real LJSpeech clips: every one present, audio exactly our resampling
// of the original, transcripts as in metadata.csv, and close to sox's own
// resampling of the same file.
TEST(RealLJSpeech, Real32ClipsPreprocessExactly) {
  fs::path shared = asr::test::shared_dir();
  if (shared.empty() || !fs::exists(shared / "ljspeech-real32" / "metadata.csv"))
    GTEST_SKIP() << "../shared/ljspeech-real32 is absent";
  fs::path in = shared / "ljspeech-real32";
  TempDir dir;
  asr::PreprocessOptions o;
  o.input = in.string();
  o.output = (dir / "out").string();
  o.val = o.test = 4;
  o.vocab_size = 120;
  o.threads = 2;
  o.strict = true;
  auto summary = asr::run_preprocess(o);
  EXPECT_EQ(summary.accepted, 32u);
  std::map<std::string, std::string> text;
  {
    std::ifstream meta(in / "metadata.csv");
    std::string line;
    while (std::getline(meta, line)) text[line.substr(0, line.find('|'))] = line.substr(line.rfind('|') + 1);
  }
  ASSERT_EQ(text.size(), 32u);
  size_t seen = 0;
  bool have_sox = asr::test::run_command("command -v sox") == 0;
  for (const char* split : {"train", "val", "test"}) {
    auto ds = asr::Dataset::open(o.output, split, true);
    for (size_t i = 0; i < ds.size(); ++i, ++seen) {
      auto u = ds.get(i);
      ASSERT_TRUE(text.count(u.id)) << u.id;
      EXPECT_EQ(u.text, text[u.id]);
      const std::string wav = (in / "wavs" / (u.id + ".wav")).string();
      auto info = asr::probe_audio(wav);
      EXPECT_EQ(u.audio.size(), static_cast<size_t>(std::llround(info.frames * 16000.0 / info.sample_rate)));
      auto want = asr::load_audio(wav, 16000);
      EXPECT_EQ(asr::to_int16(u.audio.data(), u.audio.size()), asr::to_int16(want.data(), want.size())) << u.id;
      if (!have_sox || seen % 4 != 0) continue;
      fs::path raw = dir / (u.id + ".raw");
      ASSERT_EQ(asr::test::run_command("sox '" + wav + "' -t raw -e signed -b 16 -r 16000 '" + raw.string() + "'"), 0);
      std::string bytes = asr::test::slurp(raw);
      std::vector<int16_t> ref(bytes.size() / 2);
      std::memcpy(ref.data(), bytes.data(), ref.size() * 2);
      size_t n = std::min(ref.size(), u.audio.size());
      double sig = 0, err = 0;
      for (size_t k = 0; k < n; ++k) {
        double r = ref[k] / 32768.0;
        sig += r * r;
        err += (r - u.audio[k]) * (r - u.audio[k]);
      }
      EXPECT_GT(10 * std::log10(sig / std::max(err, 1e-20)), 30.0) << u.id << " vs sox";
    }
  }
  EXPECT_EQ(seen, 32u);
}
