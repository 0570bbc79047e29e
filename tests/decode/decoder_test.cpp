#include "asr/decode/decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "asr/audio/audio_io.h"
#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/decode/checkpoint_model.h"
#include "asr/decode/char_lm.h"
#include "asr/text/tokenizer.h"
#include "decode_fixture.h"

namespace {

namespace fs = std::filesystem;
using asr::test::TempDir;

class DecoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("asr-decoder");
    asr::test::write_test_checkpoint(*dir_ / "tiny.ckpt");
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path ckpt() { return *dir_ / "tiny.ckpt"; }
  static TempDir* dir_;
};
TempDir* DecoderTest::dir_ = nullptr;

std::string load_error(const fs::path& path) {
  try {
    asr::load_checkpoint_model(path.string());
  } catch (const asr::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an asr::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected an error loading " << path;
  return "";
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_F(DecoderTest, LoadsEverythingFromTheCheckpoint) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  EXPECT_EQ(d.sample_rate(), 16000);
  EXPECT_EQ(d.step(), 7);
  EXPECT_EQ(d.model_config().encoder.d_model, 64);  // configs/tiny.toml
  EXPECT_EQ(d.model_config().vocab_size, d.tokenizer().vocab_size());
  EXPECT_GT(d.num_parameters(), 0);
  EXPECT_EQ(d.samples_per_frame(), 3 * 4 * 4 * 4 * 4);
}

TEST_F(DecoderTest, EveryBrokenCheckpointIsAClearError) {
  TempDir dir;
  const std::string good = asr::read_file(ckpt());
  auto expect = [&](const std::string& name, const std::string& bytes, const std::string& words) {
    write_bytes(dir / name, bytes);
    std::string msg = load_error(dir / name);
    EXPECT_NE(msg.find((dir / name).string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << name << ": " << msg;
  };
  expect("truncated.ckpt", good.substr(0, good.size() / 2), "truncated");
  std::string corrupt = good;
  corrupt[corrupt.size() / 2] ^= 0x40;
  expect("corrupt.ckpt", corrupt, "corrupt");
  std::string version = good;
  version[8] = 9;  // format version field
  expect("version.ckpt", version, "version");
  expect("text.ckpt", "this is not a checkpoint at all\n", "not an asr_ddp checkpoint");
  expect("empty.ckpt", "", "");

  // Valid containers with unusable contents.
  auto data = asr::test::make_test_checkpoint();
  auto garbage = data;
  garbage.sections["model"] = "PK\x03\x04 not really a torch archive";
  asr::save_checkpoint(dir / "garbage-model.ckpt", garbage);
  EXPECT_NE(load_error(dir / "garbage-model.ckpt").find("model"), std::string::npos);
  auto no_tok = data;
  no_tok.sections.erase("tokenizer");
  asr::save_checkpoint(dir / "no-tokenizer.ckpt", no_tok);
  EXPECT_NE(load_error(dir / "no-tokenizer.ckpt").find("'tokenizer'"), std::string::npos);
  auto other_model = data;
  other_model.sections["config"] = asr::test::make_test_checkpoint(1, "configs/base.toml").sections["config"];
  asr::save_checkpoint(dir / "mismatch.ckpt", other_model);
  EXPECT_NE(load_error(dir / "mismatch.ckpt").find("different model config"), std::string::npos);
  EXPECT_NE(load_error(dir / "missing.ckpt").find("no such file"), std::string::npos);
  EXPECT_NE(load_error(dir.path()).find("directory"), std::string::npos);
}

TEST_F(DecoderTest, BeamOneIsGreedyAndBeamNeverScoresBelowIt) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  for (int v = 0; v < 4; ++v) {
    auto audio = asr::test::test_signal(16000, 1.5 + 0.5 * v, v);
    asr::DecodeOptions greedy;
    auto g = d.decode_audio(audio, greedy);
    EXPECT_TRUE(g.nbest.empty());
    for (int beam : {2, 8}) {
      asr::DecodeOptions o;
      o.beam = beam;
      o.nbest = 3;
      auto b = d.decode_audio(audio, o);
      ASSERT_FALSE(b.nbest.empty());
      EXPECT_LE(b.nbest.size(), 3u);
      EXPECT_GE(b.score, g.score - 1e-3) << "variant " << v << " beam " << beam;
      EXPECT_EQ(b.text, b.nbest[0].text);
    }
  }
}

TEST_F(DecoderTest, BatchingAndThreadsDoNotChangeResults) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  std::vector<asr::DecodeInput> inputs;
  for (int i = 0; i < 7; ++i) {
    const double sec = 0.4 + 0.37 * i;
    inputs.push_back({"u" + std::to_string(i), sec, [sec, i] { return asr::test::test_signal(16000, sec, i); }});
  }
  asr::DecodeOptions one;
  one.batch = 1;
  auto ref = d.decode(inputs, one);
  for (auto [threads, batch] : {std::pair{2, 3}, std::pair{3, 7}, std::pair{1, 4}}) {
    asr::DecodeOptions o;
    o.threads = threads;
    o.batch = batch;
    size_t calls = 0;
    auto got = d.decode(inputs, o, [&](const asr::Transcript&) { ++calls; });
    EXPECT_EQ(calls, inputs.size());
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, inputs[i].id);  // input order, whatever the batching
      EXPECT_EQ(got[i].text, ref[i].text) << "threads " << threads << " batch " << batch << " input " << i;
      EXPECT_NEAR(got[i].score, ref[i].score, 1e-3 * std::max(1.0, std::abs(ref[i].score)));
    }
  }
}

TEST_F(DecoderTest, FailingInputsAreReportedAndOthersStillDecoded) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  std::vector<asr::DecodeInput> inputs = {
      {"good", 1.0, [] { return asr::test::test_signal(16000, 1.0); }},
      {"broken", 1.0, []() -> std::vector<float> { throw asr::Error("broken.wav: not a sound file"); }},
      {"empty", 0.0, [] { return std::vector<float>{}; }},
      {"good2", 0.5, [] { return asr::test::test_signal(16000, 0.5, 2); }},
  };
  asr::DecodeOptions o;
  o.batch = 4;
  auto r = d.decode(inputs, o);
  EXPECT_TRUE(r[0].ok());
  EXPECT_NEAR(r[0].audio_seconds, 1.0, 1e-9);
  EXPECT_NE(r[1].error.find("not a sound file"), std::string::npos);
  EXPECT_NE(r[2].error.find("no audio"), std::string::npos);
  EXPECT_TRUE(r[3].ok());
  EXPECT_EQ(r[3].text, d.decode_audio(asr::test::test_signal(16000, 0.5, 2), o).text);
}

TEST_F(DecoderTest, SilenceAndTinyInputsDecode) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  // Untrained weights: silence must simply decode (a trained model's empty
  // transcript is checked in tests/cli/decode_matches_training_eval.sh).
  EXPECT_NO_THROW(d.decode_audio(std::vector<float>(16000 * 2, 0.0f), asr::DecodeOptions{}));
  auto tiny = d.decode_audio(std::vector<float>(10, 0.1f), asr::DecodeOptions{});  // shorter than one frame
  EXPECT_TRUE(tiny.text.empty());
}

TEST_F(DecoderTest, BlankDominatedOutputIsEmpty) {
  // A model whose head always prefers the blank: what a trained model does on silence.
  TempDir dir;
  auto data = asr::test::make_test_checkpoint();
  auto cfg = asr::config_from_toml_string(data.at("config"));
  asr::model::AsrModel m(cfg.model);
  asr::module_from_bytes(*m, data.at("model"), "test");
  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
      if (p.key() == "head.bias") p.value().fill_(-20).index_put_({0}, 20);
  }
  data.sections["model"] = asr::module_to_bytes(*m);
  asr::save_checkpoint(dir / "blank.ckpt", data);
  auto d = asr::Decoder::from_checkpoint((dir / "blank.ckpt").string());
  asr::DecodeOptions beam;
  beam.beam = 4;
  for (const auto& o : {asr::DecodeOptions{}, beam}) {
    auto t = d.decode_audio(std::vector<float>(16000 * 2, 0.0f), o);
    EXPECT_EQ(t.text, "");
  }
}

TEST_F(DecoderTest, LongInputsAreChunked) {
  auto d = asr::Decoder::from_checkpoint(ckpt().string());
  auto audio = asr::test::test_signal(16000, 9.0, 1);
  asr::DecodeOptions o;
  o.chunk_seconds = 3.0;
  o.chunk_overlap_seconds = 1.0;
  auto chunked = d.decode_audio(audio, o);
  EXPECT_GE(chunked.chunks, 4);
  asr::DecodeOptions whole;
  whole.chunk_seconds = 0;
  auto w = d.decode_audio(audio, whole);
  EXPECT_EQ(w.chunks, 1);
  // The greedy score sums one value per frame: stitching keeps each frame
  // once, so the scores are of the same size (not 4/3 larger).
  EXPECT_NEAR(chunked.score / w.score, 1.0, 0.25);
  o.chunk_overlap_seconds = 1.5;
  EXPECT_THROW(d.decode_audio(audio, o), asr::Error);
}

TEST(DecodeOptions, BadValuesNameTheFlag) {
  auto bad = [](auto edit, const char* flag) {
    asr::DecodeOptions o;
    edit(o);
    try {
      asr::validate_decode_options(o);
      ADD_FAILURE() << flag;
    } catch (const asr::Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  const double nan = std::nan(""), inf = HUGE_VAL;
  bad([](auto& o) { o.beam = 0; }, "--beam");
  bad([](auto& o) { o.beam = asr::kMaxBeam + 1; }, "--beam 257 is out of range: it must be between 1 and 256");
  bad([](auto& o) { o.beam = 100000; }, "--beam 100000");
  bad([](auto& o) { o.nbest = 0; }, "--nbest");
  bad([](auto& o) { o.nbest = 2; }, "--nbest 2");  // greedy has one hypothesis
  bad([](auto& o) { o.beam = 8, o.nbest = 10; }, "--nbest 10");
  for (double v : {0.0, -1.0, 1001.0, nan, inf}) bad([&](auto& o) { o.prune = v; }, "--prune");
  bad([](auto& o) { o.threads = 0; }, "--threads");
  bad([](auto& o) { o.threads = asr::kMaxThreads + 1; }, "--threads");
  bad([](auto& o) { o.batch = 0; }, "--batch");
  bad([](auto& o) { o.batch = asr::kMaxBatch + 1; }, "--batch");
  for (double v : {-1.0, 0.5, 121.0, nan, inf, -inf}) bad([&](auto& o) { o.chunk_seconds = v; }, "--chunk-seconds");
  for (double v : {-0.1, 10.0, nan, inf}) bad([&](auto& o) { o.chunk_overlap_seconds = v; }, "--chunk-overlap");
  for (double v : {-0.1, 10.5, nan, inf}) bad([&](auto& o) { o.fusion.weight = v; }, "--lm-weight");
  for (double v : {-10.5, 10.5, nan, -inf}) bad([&](auto& o) { o.fusion.length_bonus = v; }, "--lm-bonus");
  bad([&](auto& o) { o.prune = nan; }, "a finite number");
  // The edges of every range are accepted.
  asr::DecodeOptions edge;
  edge.beam = asr::kMaxBeam;
  edge.nbest = asr::kMaxBeam + 1;
  edge.prune = asr::kMaxPrune;
  edge.threads = asr::kMaxThreads;
  edge.batch = asr::kMaxBatch;
  edge.chunk_seconds = asr::kMaxChunkSeconds;
  edge.fusion.weight = asr::kMaxLmWeight;
  edge.fusion.length_bonus = -asr::kMaxLmBonus;
  EXPECT_NO_THROW(asr::validate_decode_options(edge));
  edge.chunk_seconds = 0;  // no chunking: any overlap under the cap means nothing
  edge.chunk_overlap_seconds = 0;
  EXPECT_NO_THROW(asr::validate_decode_options(edge));
  edge.chunk_seconds = asr::kMinChunkSeconds;
  edge.chunk_overlap_seconds = 0.4;
  EXPECT_NO_THROW(asr::validate_decode_options(edge));
}

TEST(CharNgramLm, OrderHasARange) {
  EXPECT_THROW(asr::CharNgramLm::train({"abc"}, 0), asr::Error);
  EXPECT_THROW(asr::CharNgramLm::train({"abc"}, asr::CharNgramLm::kMaxOrder + 1), asr::Error);
  EXPECT_NO_THROW(asr::CharNgramLm::train({"abc"}, asr::CharNgramLm::kMaxOrder));
}

TEST(LmCorpus, ReadsEveryFormatAndLeavesOutDecodedIds) {
  TempDir dir;
  std::ofstream(dir / "lm.txt") << "LJ1|Raw Text One!|raw text one\nLJ2|Held out|held out\nLJ3|Only raw|\n"
                                   "X1\tTab Separated\nplain line, no id\n\n";
  auto c = asr::read_lm_corpus((dir / "lm.txt").string(), {"LJ2"});
  EXPECT_EQ(c.excluded, 1u);
  EXPECT_EQ(c.sentences, (std::vector<std::string>{"raw text one", "only raw", "tab separated", "plain line no id"}));
  EXPECT_THROW(asr::read_lm_corpus((dir / "none.txt").string(), {}), asr::Error);
}

TEST(LmCorpus, LeavesOutTheDecodedTextUnderAnotherId) {
  TempDir dir;
  std::ofstream(dir / "lm.txt") << "SYN1|Conveying Source.|Conveying Source.\nSYN2|Other text.|Other text.\n"
                                   "SYN9|Conveying source|Conveying source\n";
  // SYN9 is decoded; SYN1 speaks the same sentence and must not train the LM either.
  auto c = asr::read_lm_corpus((dir / "lm.txt").string(), {"SYN9"}, {"Conveying source"});
  EXPECT_EQ(c.excluded, 2u);
  EXPECT_EQ(c.sentences, (std::vector<std::string>{"other text"}));
}

}  // namespace
