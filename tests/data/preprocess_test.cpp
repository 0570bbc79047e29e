#include "asr/data/preprocess.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "asr/audio/audio_io.h"
#include "asr/core/error.h"
#include "asr/data/dataset.h"
#include "asr/text/normalize.h"
#include "asr/text/tokenizer.h"
#include "corpus_fixture.h"
#include "test_support.h"

namespace fs = std::filesystem;
using asr::test::TempDir;

namespace {

asr::PreprocessOptions options_for(const TempDir& dir, size_t val = 3, size_t test = 3) {
  return asr::test::preprocess_options(dir.path(), val, test);
}

// Every stored utterance, across splits, by id.
std::map<std::string, asr::Dataset::Utterance> read_all(const std::string& out) {
  std::map<std::string, asr::Dataset::Utterance> all;
  for (const char* split : {"train", "val", "test"}) {
    auto ds = asr::Dataset::open(out, split, true);
    for (size_t i = 0; i < ds.size(); ++i) {
      auto u = ds.get(i);
      EXPECT_TRUE(all.emplace(u.id, u).second) << "duplicate " << u.id;
    }
  }
  return all;
}

}  // namespace

TEST(Preprocess, GoodCorpusIsStoredExactly) {
  TempDir dir;
  auto ids = asr::test::write_corpus(dir / "in", 30);
  auto summary = asr::run_preprocess(options_for(dir));
  EXPECT_EQ(summary.accepted, 30u);
  EXPECT_EQ(summary.rejected, 0u);
  EXPECT_EQ(summary.train, 24u);
  EXPECT_EQ(summary.val, 3u);
  EXPECT_EQ(summary.test, 3u);
  const std::string out = (dir / "out").string();
  for (const char* f : {"manifest.json", "tokenizer.model", "rejects.tsv"}) EXPECT_TRUE(fs::exists(dir / "out" / f)) << f;
  EXPECT_TRUE(fs::exists(dir / "out" / "train-00000-of-00003.h5"));

  auto tok = asr::Tokenizer::from_file(out + "/tokenizer.model");
  auto all = read_all(out);
  ASSERT_EQ(all.size(), ids.size());
  for (const auto& id : ids) {
    const auto& u = all.at(id);
    auto want = asr::load_audio((dir / "in" / "wavs" / (id + ".wav")).string(), 16000);
    EXPECT_EQ(asr::to_int16(u.audio.data(), u.audio.size()), asr::to_int16(want.data(), want.size())) << id;
    EXPECT_EQ(u.normalized, asr::normalize_transcript(u.text));
    std::vector<int> t(u.tokens.begin(), u.tokens.end());
    EXPECT_EQ(tok.decode(t), u.normalized) << id;
  }
  // Val and test are the last rows, in order.
  auto test = asr::Dataset::open(out, "test");
  std::set<std::string> test_ids;
  for (size_t i = 0; i < test.size(); ++i) test_ids.insert(test.id(i));
  EXPECT_EQ(test_ids, (std::set<std::string>{"T0027", "T0028", "T0029"}));
  auto m = nlohmann::json::parse(asr::test::slurp(dir / "out" / "manifest.json"));
  EXPECT_EQ(m["splits"]["train"]["utterances"], 24);
  EXPECT_EQ(m["tokenizer"]["blank_id"], 0);
}

TEST(Preprocess, BadRowsAreRejectedWithReasonsAndGoodRowsKept) {
  TempDir dir;
  auto ids = asr::test::write_corpus(dir / "in", 20);
  fs::path in = dir / "in";
  std::ofstream(in / "wavs" / "NOTAUDIO.wav") << "plain text pretending to be a wav file";
  asr::write_wav16((in / "wavs" / "EMPTY.wav").string(), {}, 22050);
  asr::write_wav16((in / "wavs" / "LONG.wav").string(), std::vector<float>(22050 * 4, 0.1f), 22050);
  asr::write_wav16((in / "wavs" / "NOTEXT.wav").string(), asr::test::tone(1, 22050, 0.5), 22050);
  asr::write_wav16((in / "wavs" / "SHORT.wav").string(), asr::test::tone(4, 22050, 0.02), 22050);
  asr::write_wav16((in / "wavs" / "PUNCT.wav").string(), asr::test::tone(2, 22050, 0.5), 22050);
  {
    // A WAV whose header promises more data than the file holds.
    asr::write_wav16((in / "wavs" / "TRUNC.wav").string(), asr::test::tone(3, 22050, 1.0), 22050);
    fs::resize_file(in / "wavs" / "TRUNC.wav", 100);
  }
  std::ofstream meta(in / "metadata.csv", std::ios::app | std::ios::binary);
  meta << "MISSING|some words|some words\n"
       << "NOTAUDIO|some words|some words\n"
       << "EMPTY|some words|some words\n"
       << "LONG|some words|some words\n"
       << "SHORT|some words|some words\n"
       << "NOTEXT|raw only|\n"
       << "PUNCT|...|...\n"
       << "TRUNC|some words|some words\n"
       << "T0003|a duplicate id|a duplicate id\n"
       << "only two|fields\n"
       << "BADUTF|caf\xE9|caf\xE9\n"
       << "../escape|x|words\n";
  meta.close();
  auto o = options_for(dir);
  o.max_duration = 3.0;
  auto summary = asr::run_preprocess(o);
  EXPECT_EQ(summary.accepted, ids.size()) << "every good row is kept";
  const std::string tsv = asr::test::slurp(dir / "out" / "rejects.tsv");
  const std::pair<const char*, const char*> expected[] = {
      {"MISSING", "not found"},          {"NOTAUDIO", "unusable audio"}, {"EMPTY", "zero-length"},
      {"LONG", "max-duration"},          {"SHORT", "min-duration"},      {"NOTEXT", "empty transcript"}, {"PUNCT", "after normalization"},
      {"TRUNC", "audio"},                {"T0003", "duplicate id"},      {"\tmalformed line", "3 fields"},
      {"\tinvalid UTF-8", "UTF-8"},      {"not a plain file name", "escape"}};
  for (auto [who, why] : expected) {
    auto pos = tsv.find(who);
    ASSERT_NE(pos, std::string::npos) << who << " missing from rejects.tsv:\n" << tsv;
    auto line_end = tsv.find('\n', pos);
    auto line_start = tsv.rfind('\n', pos) + 1;
    EXPECT_NE(tsv.substr(line_start, line_end - line_start).find(why), std::string::npos)
        << who << ": " << tsv.substr(line_start, line_end - line_start);
  }
  EXPECT_EQ(summary.rejected, 12u) << tsv;
  auto all = read_all((dir / "out").string());
  for (const auto& id : ids) EXPECT_TRUE(all.count(id)) << id;
}

TEST(Preprocess, StrictFailsWithoutOutput) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 12);
  std::ofstream(dir / "in" / "metadata.csv", std::ios::app) << "GHOST|x|no such audio\n";
  auto o = options_for(dir, 2, 2);
  o.strict = true;
  try {
    asr::run_preprocess(o);
    FAIL() << "--strict must fail on a rejected row";
  } catch (const asr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("GHOST"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".out"), std::string::npos) << "left " << entry.path();
}

TEST(Preprocess, ExistingOutputNeedsOverwrite) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 12);
  auto o = options_for(dir, 2, 2);
  asr::run_preprocess(o);
  std::string before = asr::test::slurp(dir / "out" / "manifest.json");
  EXPECT_THROW(asr::run_preprocess(o), asr::Error);
  EXPECT_EQ(asr::test::slurp(dir / "out" / "manifest.json"), before);
  o.overwrite = true;
  o.vocab_size = 40;
  asr::run_preprocess(o);
  auto m = nlohmann::json::parse(asr::test::slurp(dir / "out" / "manifest.json"));
  EXPECT_EQ(m["options"]["vocab_size"], 40);
  // --overwrite never deletes a directory this tool did not write.
  fs::create_directories(dir / "other");
  std::ofstream(dir / "other" / "precious.txt") << "keep me";
  o.output = (dir / "other").string();
  EXPECT_THROW(asr::run_preprocess(o), asr::Error);
  EXPECT_TRUE(fs::exists(dir / "other" / "precious.txt"));
}

TEST(Preprocess, OutputIsDeterministic) {
  TempDir dir;
  asr::test::write_corpus(dir / "in", 16);
  auto o = options_for(dir, 2, 2);
  asr::run_preprocess(o);
  auto a = nlohmann::json::parse(asr::test::slurp(dir / "out" / "manifest.json"));
  o.output = (dir / "out2").string();
  o.threads = 1;
  asr::run_preprocess(o);
  auto b = nlohmann::json::parse(asr::test::slurp(dir / "out2" / "manifest.json"));
  EXPECT_EQ(a["splits"], b["splits"]) << "same input, same shards, byte for byte";
  EXPECT_EQ(a["tokenizer"]["crc32c"], b["tokenizer"]["crc32c"]);
}

TEST(Preprocess, BadOptionsAndInputs) {
  TempDir dir;
  auto o = options_for(dir);
  EXPECT_THROW(asr::run_preprocess(o), asr::Error) << "missing input directory";
  fs::create_directories(dir / "in");
  EXPECT_THROW(asr::run_preprocess(o), asr::Error) << "missing metadata.csv";
  asr::test::write_corpus(dir / "in", 5);
  EXPECT_THROW(asr::run_preprocess(o), asr::Error) << "val + test leave no training data";
  o.val = o.test = 1;
  o.tokenizer = "wordpiece";
  EXPECT_THROW(asr::run_preprocess(o), asr::Error);
  o.tokenizer = "char";
  o.sample_rate = 0;
  EXPECT_THROW(asr::run_preprocess(o), asr::Error);
  o.sample_rate = 8000;
  EXPECT_NO_THROW(asr::run_preprocess(o));
  EXPECT_EQ(asr::Dataset::open(o.output, "train").sample_rate(), 8000);
}
