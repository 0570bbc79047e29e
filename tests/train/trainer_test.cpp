// End-to-end tests of the training engine in one process: a small espeak-ng
// corpus is synthesized and preprocessed once per test binary, then short
// runs of configs/tiny.toml check determinism, exact resume, learning, the
// TensorBoard output and evaluation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <ATen/record_function.h>

#include <atomic>
#include <map>
#include <set>

#include "asr/core/checkpoint_file.h"
#include "asr/distributed/communicator.h"
#include "asr/model/asr_model.h"
#include "asr/model/module_state.h"
#include "asr/train/checkpoint_manager.h"
#include "asr/train/config.h"
#include "asr/train/run_setup.h"
#include "asr/train/tensorboard.h"
#include "asr/train/trainer.h"
#include "test_support.h"

namespace asr {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    corpus_dir_ = new test::TempDir("asr-trainer-corpus");
    std::string out;
    std::string synth = (test::source_dir() / "scripts/make-synthetic-ljspeech").string() + " --output " +
                        (corpus_dir_->path() / "corpus").string() + " --count 48 --jobs 2 --seed 3";
    ASSERT_EQ(test::run_command(synth, &out), 0) << out;
    std::string prep = (test::binary_dir() / "asr_preprocess").string() + " --input " +
                       (corpus_dir_->path() / "corpus").string() + " --output " + data_dir() +
                       " --val 8 --test 4 --vocab-size 48 --shards 2";
    ASSERT_EQ(test::run_command(prep, &out), 0) << out;
  }
  static void TearDownTestSuite() {
    delete corpus_dir_;
    corpus_dir_ = nullptr;
  }
  static std::string data_dir() { return (corpus_dir_->path() / "data").string(); }

  TrainConfig tiny_config(const fs::path& run_dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> o = {"data.dir=\"" + data_dir() + "\"", "run_dir=\"" + run_dir.string() + "\"",
                                  "train.log_every=1", "log.progress=\"plain\"", "eval.every=0",
                                  "checkpoint.every=0", "schedule.total_steps=40"};
    o.insert(o.end(), extra.begin(), extra.end());
    return load_config((test::source_dir() / "configs/tiny.toml").string(), o);
  }

  // Runs a Trainer to completion in this process; returns its exit status.
  int train(const TrainConfig& cfg, const std::string& resume = "") {
    auto comm = distributed::make_local_communicator();
    prepare_run(cfg, *comm);
    Trainer trainer(cfg, *comm);
    if (!resume.empty()) trainer.resume(resume);
    return trainer.train();
  }

  static std::vector<nlohmann::json> records(const fs::path& run_dir, bool eval) {
    std::vector<nlohmann::json> out;
    std::ifstream in(run_dir / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      if (eval ? j.contains("cer") : j.contains("loss")) out.push_back(j);
    }
    return out;
  }

  static std::vector<double> losses(const fs::path& run_dir) {
    std::vector<double> out;
    for (auto& r : records(run_dir, false)) out.push_back(r.at("loss").get<double>());
    return out;
  }

  static test::TempDir* corpus_dir_;
  test::TempDir tmp_{"asr-trainer-run"};
};

test::TempDir* TrainerTest::corpus_dir_ = nullptr;

TEST_F(TrainerTest, SameConfigAndSeedGiveIdenticalLosses) {
  auto a = tmp_ / "a", b = tmp_ / "b";
  ASSERT_EQ(train(tiny_config(a, {"train.max_steps=6"})), kExitOk);
  ASSERT_EQ(train(tiny_config(b, {"train.max_steps=6"})), kExitOk);
  auto la = losses(a), lb = losses(b);
  ASSERT_EQ(la.size(), 6u);
  EXPECT_EQ(la, lb);  // bitwise, not approximately
  // And a different seed really changes the run (the test could not fail otherwise).
  auto c = tmp_ / "c";
  ASSERT_EQ(train(tiny_config(c, {"train.max_steps=6", "train.seed=99"})), kExitOk);
  EXPECT_NE(losses(c), la);
}

TEST_F(TrainerTest, ResumeContinuesBitIdentically) {
  auto full = tmp_ / "full", part = tmp_ / "part";
  ASSERT_EQ(train(tiny_config(full, {"train.max_steps=8"})), kExitOk);
  // Stop at step 4 (a checkpoint), then resume the same run directory to step 8.
  ASSERT_EQ(train(tiny_config(part, {"train.max_steps=4"})), kExitOk);
  ASSERT_TRUE(fs::exists(part / "checkpoints"));
  ASSERT_EQ(train(tiny_config(part, {"train.max_steps=8"}), "auto"), kExitOk);
  auto lf = losses(full), lp = losses(part);
  ASSERT_EQ(lf.size(), 8u);
  ASSERT_EQ(lp.size(), 8u);  // 4 before the stop, 4 after
  EXPECT_EQ(lf, lp);
  auto steps = records(part, false);
  EXPECT_EQ(steps[4].at("step").get<int64_t>(), 5);
}

TEST_F(TrainerTest, LossFallsAndTensorBoardRecordsIt) {
  auto run = tmp_ / "learn";
  ASSERT_EQ(train(tiny_config(run, {"train.max_steps=40"})), kExitOk);
  auto l = losses(run);
  ASSERT_EQ(l.size(), 40u);
  double first = (l[0] + l[1] + l[2]) / 3, last = (l[37] + l[38] + l[39]) / 3;
  EXPECT_LT(last, 0.8 * first) << "loss did not fall: " << first << " -> " << last;

  // Every training record carries the documented fields.
  for (auto& r : records(run, false))
    for (const char* key : {"step", "epoch", "loss", "ctc_loss", "vq_loss", "lr", "grad_norm", "audio_sec_per_s"})
      EXPECT_TRUE(r.contains(key)) << key;
  auto evals = records(run, true);
  ASSERT_FALSE(evals.empty());  // the end of every run evaluates
  for (const char* key : {"step", "split", "cer", "wer"}) EXPECT_TRUE(evals.back().contains(key)) << key;

  fs::path events;
  for (auto& e : fs::directory_iterator(run))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) events = e.path();
  ASSERT_FALSE(events.empty());
  int loss_scalars = 0, texts = 0;
  for (auto& rec : read_tensorboard_events(events)) {
    if (rec.kind == TbRecord::Kind::kScalar && rec.tag == "train/loss") ++loss_scalars;
    if (rec.kind == TbRecord::Kind::kText) ++texts;
  }
  EXPECT_EQ(loss_scalars, 40);
  EXPECT_GE(texts, 1);
}

TEST_F(TrainerTest, EvaluationOfACheckpointIsReproducible) {
  auto run = tmp_ / "eval";
  ASSERT_EQ(train(tiny_config(run, {"train.max_steps=5"})), kExitOk);
  auto evals = records(run, true);
  ASSERT_FALSE(evals.empty());
  auto comm = distributed::make_local_communicator();
  auto cfg = tiny_config(run, {"train.max_steps=5"});
  Trainer trainer(cfg, *comm);
  trainer.resume("auto");
  EXPECT_EQ(trainer.step(), 5);
  auto r = trainer.evaluate();
  EXPECT_EQ(r.cer(), evals.back().at("cer").get<double>());
  EXPECT_EQ(r.utterances, 8);
}

// The seed's own sanity check: a model that cannot memorize ten utterances
// cannot learn. Log-mel frontend and characters make it fast enough for CI.
TEST_F(TrainerTest, OverfitsTenUtterancesToNearZeroCer) {
  std::string out;
  auto corpus = tmp_ / "ten", data = tmp_ / "ten-data";
  ASSERT_EQ(test::run_command((test::source_dir() / "scripts/make-synthetic-ljspeech").string() + " --output " +
                                  corpus.string() + " --count 10 --seed 11 --voices en-us",
                              &out),
            0)
      << out;
  ASSERT_EQ(test::run_command((test::binary_dir() / "asr_preprocess").string() + " --input " + corpus.string() +
                                  " --output " + data.string() + " --val 0 --test 0 --tokenizer char --shards 1",
                              &out),
            0)
      << out;
  auto run = tmp_ / "overfit";
  auto cfg = tiny_config(run, {"data.dir=\"" + data.string() + "\"", "data.valid_split=\"train\"",
                               "model.frontend.kind=\"logmel\"", "model.frontend.subsample_strides=[2, 2]",
                               "model.encoder.d_model=96", "optim.lr=3e-3", "schedule.warmup_steps=30",
                               "schedule.total_steps=0", "train.max_steps=350", "train.batch_seconds=60",
                               "train.log_every=50", "model.rvq.codes=32"});
  ASSERT_EQ(train(cfg), kExitOk);
  auto evals = records(run, true);
  ASSERT_FALSE(evals.empty());
  EXPECT_LT(evals.back().at("cer").get<double>(), 0.05) << "could not memorize 10 utterances";
}

TEST_F(TrainerTest, ResumeFromAMissingPathIsAClearError) {
  auto comm = distributed::make_local_communicator();
  auto cfg = tiny_config(tmp_ / "x");
  Trainer trainer(cfg, *comm);
  try {
    trainer.resume((tmp_ / "nope.ckpt").string());
    FAIL() << "expected asr::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.ckpt"), std::string::npos) << e.what();
  }
}

// A step every rank skips leaves the model exactly as it was: parameters,
// optimizer, RVQ codebooks and usage, batch-norm running statistics.
TEST_F(TrainerTest, SkippedStepChangesNoStatistic) {
  auto run = tmp_ / "nan-skip";
  auto cfg = tiny_config(run, {"train.max_steps=4", "checkpoint.every=1", "checkpoint.keep_last=0",
                               "model.frontend.norm=\"batch\"", "model.rvq.ema=true"});
  setenv("ASR_FAULT_NAN", "3:0", 1);
  const int status = train(cfg);
  unsetenv("ASR_FAULT_NAN");
  ASSERT_EQ(status, kExitOk);
  auto tensors = [&](int64_t step) {
    auto data = load_checkpoint(CheckpointManager::path_for(run, step));
    auto saved = config_from_toml_string(data.at("config"));
    model::AsrModel m(saved.model);
    module_from_bytes(*m, data.at("model"), "test");
    std::map<std::string, at::Tensor> all;
    for (const auto& p : m->named_parameters()) all[p.key()] = p.value();
    for (const auto& b : m->named_buffers()) all[b.key()] = b.value();
    return all;
  };
  const auto before = tensors(2), skipped = tensors(3), after = tensors(4);
  int statistics = 0, changed = 0;
  for (const auto& [name, t] : before) {
    EXPECT_TRUE(torch::equal(t, skipped.at(name))) << name << " changed in the skipped step";
    changed += torch::equal(t, after.at(name)) ? 0 : 1;
    statistics += name.find("running_") != std::string::npos || name.find("rvq.") != std::string::npos;
  }
  EXPECT_GE(statistics, 6) << "batch-norm and RVQ statistics are part of the comparison";
  EXPECT_GT(changed, statistics / 2) << "the next step did change them (so the comparison can fail)";
  auto last = records(run, false).back();
  EXPECT_EQ(last.at("skipped_steps").get<int64_t>(), 1);
}

namespace {

// Counts, in this thread, the ops that make a GPU wait for its queue before
// the host can go on (reading a value, or data-dependent output sizes).
struct SyncingOps {
  static std::atomic<int64_t>& count() {
    static std::atomic<int64_t> n{0};
    return n;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    static const std::set<std::string> syncing = {"aten::_local_scalar_dense", "aten::nonzero",
                                                  "aten::masked_select",       "aten::bincount",
                                                  "aten::_unique2",            "aten::unique_consecutive",
                                                  "aten::is_nonzero",          "aten::equal"};
    if (syncing.count(fn.name())) ++count();
    return nullptr;
  }
  SyncingOps() : handle(at::addThreadLocalCallback(at::RecordFunctionCallback(&on_start))) { count() = 0; }
  ~SyncingOps() { at::removeCallback(handle); }
  at::CallbackHandle handle;
};

}  // namespace

// The device-generic step (what a GPU runs) waits for the device at most
// twice per optimizer step: reads through Communicator::read_to_host, and
// ops that force a synchronization, counted on the CPU.
TEST_F(TrainerTest, GenericStepStaysWithinItsHostSyncBudget) {
  auto syncs = [&](int64_t steps) {
    auto cfg = tiny_config(tmp_ / ("syncs-" + std::to_string(steps)),
                           {"train.max_steps=" + std::to_string(steps), "train.kernels=\"generic\"",
                            "train.log_every=1000", "model.rvq.dead_code_window=1000"});
    auto comm = distributed::make_local_communicator();
    prepare_run(cfg, *comm);
    Trainer trainer(cfg, *comm);
    SyncingOps ops;
    const int64_t reads = comm->host_reads();
    EXPECT_EQ(trainer.train(), kExitOk);
    return comm->host_reads() - reads + SyncingOps::count().load();
  };
  // The difference of two runs is the steps' own cost (both runs share the
  // start-up, the final evaluation, log record and checkpoint).
  const int64_t short_run = syncs(3), long_run = syncs(9);
  const double per_step = double(long_run - short_run) / 6.0;
  RecordProperty("host_syncs_per_step", std::to_string(per_step));
  EXPECT_LE(per_step, 2.0) << short_run << " in 3 steps, " << long_run << " in 9";
  EXPECT_GE(per_step, 1.0) << "the decision read must be counted (the test could not fail otherwise)";
}

}  // namespace
}  // namespace asr
