#include "asr/train/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "asr/core/error.h"
#include "test_support.h"

namespace {

using asr::test::TempDir;

std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

// The message of the asr::Error thrown by `fn`, or a failure when none is.
template <class F>
std::string error_of(F fn) {
  try {
    fn();
  } catch (const asr::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an asr::Error";
  return "";
}

TEST(Config, ReadsValuesAndKeepsDefaults) {
  TempDir dir;
  auto path = write(dir, "c.toml",
                    "run_dir = \"runs/x\"\n[optim]\nlr = 3e-4\naccumulate = 2\n"
                    "[model.encoder]\nd_model = 96\nheads = 4\n[model.frontend]\nstrides = [5, 4]\n");
  asr::TrainConfig c = asr::load_config(path);
  EXPECT_EQ(c.run_dir, "runs/x");
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-4);
  EXPECT_EQ(c.optim.accumulate, 2);
  EXPECT_EQ(c.model.encoder.d_model, 96);
  EXPECT_EQ(c.model.frontend.strides, (std::vector<int>{5, 4}));
  asr::TrainConfig defaults;
  EXPECT_EQ(c.model.encoder.layers, defaults.model.encoder.layers);
  EXPECT_EQ(c.schedule.kind, defaults.schedule.kind);
}

TEST(Config, IntegerAcceptedForFloatKey) {
  TempDir dir;
  auto c = asr::load_config(write(dir, "c.toml", "[optim]\nlr = 1\n"));
  EXPECT_DOUBLE_EQ(c.optim.lr, 1.0);
}

TEST(Config, UnknownKeyNamesKeyFileLineAndSuggestion) {
  TempDir dir;
  auto path = write(dir, "bad.toml", "[optim]\nlr = 1e-3\n\nlrr = 2\n");
  std::string msg = error_of([&] { asr::load_config(path); });
  EXPECT_NE(msg.find("optim.lrr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.toml:4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean optim.lr"), std::string::npos) << msg;
}

TEST(Config, UnknownSectionAndMisplacedKey) {
  TempDir dir;
  std::string msg = error_of([&] { asr::load_config(write(dir, "a.toml", "[optimizer]\nlr = 1\n")); });
  EXPECT_NE(msg.find("optimizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a.toml:1"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(write(dir, "b.toml", "[train]\nlr = 1\n")); });
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean optim.lr"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(write(dir, "c.toml", "model = 3\n")); });
  EXPECT_NE(msg.find("model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("section"), std::string::npos) << msg;
}

TEST(Config, WrongTypeNamesKeyAndLine) {
  TempDir dir;
  auto path = write(dir, "t.toml", "[train]\nseed = 1\nmax_steps = \"many\"\n");
  std::string msg = error_of([&] { asr::load_config(path); });
  EXPECT_NE(msg.find("train.max_steps"), std::string::npos) << msg;
  EXPECT_NE(msg.find("t.toml:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected an integer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;

  msg = error_of([&] { asr::load_config(write(dir, "u.toml", "[log]\ntensorboard = 1\n")); });
  EXPECT_NE(msg.find("log.tensorboard"), std::string::npos) << msg;
  EXPECT_NE(msg.find("boolean"), std::string::npos) << msg;

  msg = error_of([&] { asr::load_config(write(dir, "v.toml", "[model.frontend]\nstrides = [4, 4.5]\n")); });
  EXPECT_NE(msg.find("model.frontend.strides"), std::string::npos) << msg;
  EXPECT_NE(msg.find("array of integers"), std::string::npos) << msg;

  msg = error_of([&] { asr::load_config(write(dir, "w.toml", "[optim]\nlr = \"fast\"\n")); });
  EXPECT_NE(msg.find("optim.lr"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a number"), std::string::npos) << msg;
}

TEST(Config, OutOfRangeNamesKeyLineAndBound) {
  TempDir dir;
  struct Case {
    std::string text, key, line;
  } cases[] = {
      {"[optim]\nlr = -1.0\n", "optim.lr", ":2"},
      {"[model.encoder]\ndropout = 1.0\n", "model.encoder.dropout", ":2"},
      {"\n\n[model.encoder]\nlayers = 0\n", "model.encoder.layers", ":4"},
      {"[schedule]\nkind = \"linear\"\n", "schedule.kind", ":2"},
      {"[model.frontend]\nstrides = [4, 0]\n", "model.frontend.strides", ":2"},
      {"[model.frontend]\nstrides = []\n", "model.frontend.strides", ":2"},
      {"[train]\nbatch_seconds = 0\n", "train.batch_seconds", ":2"},
      {"[model.encoder]\nheads = 5000000000\n", "model.encoder.heads", ":2"},
      {"[train]\nseed = -3\n", "train.seed", ":2"},
  };
  for (const auto& c : cases) {
    std::string msg = error_of([&] { asr::load_config(write(dir, "r.toml", c.text)); });
    EXPECT_NE(msg.find(c.key), std::string::npos) << msg;
    EXPECT_NE(msg.find("r.toml" + c.line), std::string::npos) << msg;
    EXPECT_NE(msg.find("must"), std::string::npos) << msg;
  }
}

TEST(Config, CrossKeyRules) {
  TempDir dir;
  std::string msg =
      error_of([&] { asr::load_config(write(dir, "h.toml", "[model.encoder]\nd_model = 100\nheads = 3\n")); });
  EXPECT_NE(msg.find("model.encoder.heads"), std::string::npos) << msg;
  EXPECT_NE(msg.find("h.toml:3"), std::string::npos) << msg;
  msg = error_of(
      [&] { asr::load_config(write(dir, "s.toml", "[augment]\nspeed_min = 1.2\nspeed_max = 1.1\n")); });
  EXPECT_NE(msg.find("augment.speed_min"), std::string::npos) << msg;
}

TEST(Config, SyntaxErrorAndMissingFile) {
  TempDir dir;
  std::string msg = error_of([&] { asr::load_config(write(dir, "syn.toml", "[optim]\nlr = = 3\n")); });
  EXPECT_NE(msg.find("syn.toml:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("TOML syntax error"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config((dir / "nope.toml").string()); });
  EXPECT_NE(msg.find("nope.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
}

TEST(Config, OverridesApplyAndAreChecked) {
  TempDir dir;
  auto path = write(dir, "o.toml", "[optim]\nlr = 1e-3\n");
  auto c = asr::load_config(path, {"optim.lr=5e-4", "schedule.kind=noam", "model.frontend.strides=[2,2]",
                                   "train.max_steps = 7", "log.tensorboard=false", "run_dir=\"r d\""});
  EXPECT_DOUBLE_EQ(c.optim.lr, 5e-4);
  EXPECT_EQ(c.schedule.kind, "noam");  // bare word taken as a string
  EXPECT_EQ(c.model.frontend.strides, (std::vector<int>{2, 2}));
  EXPECT_EQ(c.train.max_steps, 7);
  EXPECT_FALSE(c.log.tensorboard);
  EXPECT_EQ(c.run_dir, "r d");

  std::string msg = error_of([&] { asr::load_config(path, {"optim.lr=-2"}); });
  EXPECT_NE(msg.find("--set optim.lr=-2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("must be > 0"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(path, {"optim.lrate=1"}); });
  EXPECT_NE(msg.find("--set optim.lrate=1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(path, {"train.max_steps=lots"}); });
  EXPECT_NE(msg.find("--set train.max_steps=lots"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(path, {"no_equals_sign"}); });
  EXPECT_NE(msg.find("section.key=value"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(path, {"optim.lr.x=1"}); });
  EXPECT_NE(msg.find("optim.lr"), std::string::npos) << msg;
}

TEST(Config, UnknownSectionsGetASuggestionAndOverridesAreBlamed) {
  TempDir dir;
  auto path = write(dir, "o.toml", "[optim]\nlr = 1e-3\n");
  std::string msg = error_of([&] { asr::load_config(path, {"optm.lr=1"}); });
  EXPECT_NE(msg.find("--set optm.lr=1"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("o.toml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown section; did you mean [optim]?"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(write(dir, "s.toml", "[trian]\nseed = 1\n")); });
  EXPECT_NE(msg.find("s.toml:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean [train]?"), std::string::npos) << msg;
  msg = error_of([&] { asr::load_config(write(dir, "z.toml", "[zzzzzzzz]\nx = 1\n")); });
  EXPECT_NE(msg.find("the sections are"), std::string::npos) << msg;
  EXPECT_NE(msg.find("optim"), std::string::npos) << msg;
}

TEST(Config, AnOverrideFromAFlagBlamesTheFlag) {
  TempDir dir;
  auto path = write(dir, "o.toml", "");
  std::string msg = error_of([&] { asr::load_config(path, {"train.max_steps=-1"}, {"--max-steps -1"}); });
  EXPECT_EQ(msg.rfind("--max-steps -1: train.max_steps: must be >= 1", 0), 0u) << msg;
  msg = error_of([&] { asr::load_config(path, {"optim.lr=0", "train.seed=-1"}, {"--set optim.lr=0", "--seed -1"}); });
  EXPECT_EQ(msg.rfind("--set optim.lr=0: optim.lr", 0), 0u) << msg;
}

TEST(Config, NonFiniteAndNegativeValuesAreRefusedEverywhere) {
  TempDir dir;
  auto path = write(dir, "o.toml", "");
  for (const std::string spec : {"optim.lr=inf", "train.batch_seconds=inf", "optim.lr=nan", "optim.grad_clip=inf",
                                 "augment.gain_db=-inf", "train.max_steps=-1", "eval.every=-5",
                                 "checkpoint.keep_last=-1"}) {
    std::string msg = error_of([&] { asr::load_config(path, {spec}); });
    EXPECT_NE(msg.find("--set " + spec), std::string::npos) << msg;
    EXPECT_NE(msg.find("must"), std::string::npos) << msg;
  }
  std::string msg = error_of([&] { asr::load_config(write(dir, "f.toml", "[optim]\nlr = inf\n")); });
  EXPECT_NE(msg.find("f.toml:2: optim.lr: must be a finite number"), std::string::npos) << msg;
}

TEST(Config, RoundTripOfNonDefaultConfig) {
  TempDir dir;
  auto path = write(dir, "rt.toml", "run_dir = \"runs/q\\\"uote\"\n");
  auto c = asr::load_config(
      path, {"optim.lr=0.1", "optim.eps=1e-9", "optim.beta2=0.999", "model.encoder.dropout=0.3",
             "model.frontend.kind=logmel", "model.frontend.subsample_strides=[3,2]", "model.rvq.ema=true",
             "train.seed=12345678901", "augment.enabled=true", "dist.bf16_allreduce=true", "data.dir=/tmp/d",
             "model.vocab_size=77", "eval.samples=9", "checkpoint.keep_last=0", "log.progress=plain"});
  std::string text = asr::config_to_toml(c);
  asr::TrainConfig back = asr::config_from_toml_string(text, "round trip");
  EXPECT_EQ(asr::config_to_toml(back), text);
  EXPECT_EQ(back.run_dir, "runs/q\"uote");
  EXPECT_EQ(back.optim.lr, 0.1);  // bit-exact, not approximately
  EXPECT_EQ(back.optim.eps, 1e-9);
  EXPECT_EQ(back.optim.beta2, 0.999);
  EXPECT_EQ(back.model.frontend.kind, "logmel");
  EXPECT_EQ(back.model.frontend.subsample_strides, (std::vector<int>{3, 2}));
  EXPECT_TRUE(back.model.rvq.ema);
  EXPECT_EQ(back.train.seed, 12345678901ull);
  EXPECT_EQ(back.model.vocab_size, 77);
  EXPECT_EQ(back.checkpoint.keep_last, 0);
  // Every key is written.
  for (const auto& key : asr::config_keys()) {
    std::string leaf = key.substr(key.rfind('.') + 1);
    EXPECT_NE(text.find("\n" + leaf + " = "), std::string::npos) << key;
  }
}

TEST(Config, ValidateConfigCatchesCodeEdits) {
  asr::TrainConfig c;
  EXPECT_NO_THROW(asr::validate_config(c));
  c.train.batch_seconds = -1;
  std::string msg = error_of([&] { asr::validate_config(c); });
  EXPECT_NE(msg.find("train.batch_seconds"), std::string::npos) << msg;
}

TEST(Config, ShippedConfigsLoadAndEveryKeyIsDocumented) {
  auto configs = asr::test::source_dir() / "configs";
  for (const char* name : {"tiny.toml", "base.toml", "seed-parity.toml", "demo.toml", "waveform-demo.toml"}) {
    SCOPED_TRACE(name);
    EXPECT_NO_THROW(asr::load_config((configs / name).string()));
  }
  auto seed = asr::load_config((configs / "seed-parity.toml").string());
  EXPECT_EQ(seed.model.encoder.d_model, 128);
  EXPECT_EQ(seed.model.encoder.layers, 6);
  EXPECT_EQ(seed.model.encoder.heads, 4);
  EXPECT_EQ(seed.model.encoder.ff_mult, 4);
  EXPECT_EQ(seed.model.rvq.codebooks, 4);
  EXPECT_EQ(seed.model.rvq.codes, 1024);
  EXPECT_EQ(seed.model.rvq.commitment, 0.25);
  EXPECT_EQ(seed.model.frontend.pool, 3);
  EXPECT_EQ(seed.model.frontend.strides, (std::vector<int>{4, 4, 4, 4}));
  EXPECT_EQ(seed.model.frontend.kernel, 8);
  EXPECT_EQ(seed.model.frontend.hidden, 64);
  EXPECT_EQ(seed.train.max_batch_utterances, 8);
  // The waveform recipes keep the seed's frontend (768x) and the RVQ in the path.
  for (const char* name : {"base.toml", "waveform-demo.toml"}) {
    SCOPED_TRACE(name);
    auto c = asr::load_config((configs / name).string());
    EXPECT_EQ(c.model.frontend.kind, "waveform");
    EXPECT_EQ(c.model.frontend.pool, 3);
    EXPECT_EQ(c.model.frontend.strides, (std::vector<int>{4, 4, 4, 4}));
    EXPECT_TRUE(c.model.rvq.enabled);
    EXPECT_EQ(c.data.tokenizer, "bpe");
    EXPECT_GT(c.vq_warmup.bypass_steps, 0);
  }

  std::ifstream in(asr::test::source_dir() / "docs" / "config.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(doc.empty());
  for (const auto& key : asr::config_keys()) EXPECT_NE(doc.find("`" + key + "`"), std::string::npos) << key;
}

}  // namespace
