// The asr_decode binary end to end: inputs, outputs, scoring, failures.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "../data/corpus_fixture.h"
#include "../data/dataset_damage.h"
#include "asr/audio/audio_io.h"
#include "asr/core/atomic_file.h"
#include "asr/data/dataset.h"
#include "asr/data/preprocess.h"
#include "asr/decode/checkpoint_model.h"
#include "asr/distributed/communicator.h"
#include "asr/text/edit_distance.h"
#include "asr/text/normalize.h"
#include "asr/train/evaluator.h"
#include "decode_fixture.h"

namespace {

namespace fs = std::filesystem;
using asr::test::TempDir;

struct Run {
  int status = -1;
  std::string out, err;
};

// Runs asr_decode with `args`, stdout and stderr captured separately.
Run decode(const std::string& args, const TempDir& dir) {
  Run r;
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  // A subshell: run_command adds its own 2>&1, which must not undo ours.
  r.status = asr::test::run_command("(" + (asr::test::binary_dir() / "asr_decode").string() + " " + args + " >" +
                                    out.string() + " 2>" + err.string() + ")");
  r.out = asr::read_file(out);
  r.err = asr::read_file(err);
  return r;
}

std::vector<nlohmann::json> jsonl(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

class DecodeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("asr-decode-cli");
    asr::test::write_test_checkpoint(*dir_ / "tiny.ckpt");
    for (int i = 0; i < 3; ++i)
      asr::write_wav16((*dir_ / ("clip" + std::to_string(i) + ".wav")).string(),
                       asr::test::test_signal(16000, 1.0 + 0.6 * i, i), 16000);
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    if (!fs::exists(asr::test::binary_dir() / "asr_decode")) GTEST_SKIP() << "asr_decode is not built";
  }
  static fs::path ckpt() { return *dir_ / "tiny.ckpt"; }
  static fs::path clip(int i) { return *dir_ / ("clip" + std::to_string(i) + ".wav"); }
  static TempDir* dir_;
};
TempDir* DecodeCli::dir_ = nullptr;

TEST_F(DecodeCli, HelpAndUsageErrors) {
  TempDir t;
  auto help = decode("--help", t);
  EXPECT_EQ(help.status, 0);
  for (const char* flag : {"--checkpoint", "--beam", "--format", "--threads", "--batch", "--list", "--data", "--split", "--refs"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  EXPECT_EQ(decode("--checkpoint " + q(ckpt()), t).status, 2);  // nothing to decode
  EXPECT_EQ(decode("--checkpoint " + q(ckpt()) + " --data x " + q(clip(0)), t).status, 2);
  auto bad = decode("--checkpoint " + q(ckpt()) + " --beam 0 " + q(clip(0)), t);
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("--beam"), std::string::npos) << bad.err;
  EXPECT_EQ(decode("--checkpoint " + q(ckpt()) + " --format xml " + q(clip(0)), t).status, 2);
}

TEST_F(DecodeCli, TextAndJsonlOutputs) {
  TempDir t;
  const std::string files = q(clip(0)) + " " + q(clip(1)) + " " + q(clip(2));
  auto text = decode("--checkpoint " + q(ckpt()) + " " + files, t);
  ASSERT_EQ(text.status, 0) << text.err;
  std::istringstream lines(text.out);
  std::string line;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(std::getline(lines, line));
    EXPECT_EQ(line.substr(0, line.find('\t')), "clip" + std::to_string(i));  // input order, id = file stem
  }
  // The summary line: files, audio seconds, wall time, RTF.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(text.err, m, std::regex(R"((\d+) files decoded, (\d+) failed, ([0-9.]+) s of audio, wall ([0-9.]+) s, RTF ([0-9.]+))")))
      << text.err;
  EXPECT_EQ(m[1], "3");
  EXPECT_EQ(m[2], "0");
  EXPECT_NEAR(std::stod(m[3]), 1.0 + 1.6 + 2.2, 0.01);

  auto js = decode("--checkpoint " + q(ckpt()) + " --format jsonl " + files, t);
  ASSERT_EQ(js.status, 0) << js.err;
  auto objs = jsonl(js.out);
  ASSERT_EQ(objs.size(), 3u);
  std::istringstream again(text.out);
  for (const auto& o : objs) {
    std::getline(again, line);
    EXPECT_EQ(o["id"].get<std::string>() + "\t" + o["text"].get<std::string>(), line);
    EXPECT_TRUE(o["score"].is_number());
    EXPECT_FALSE(o.contains("nbest"));
  }

  // --beam 1 is greedy; a wider beam adds an n-best and never scores lower.
  EXPECT_EQ(decode("--checkpoint " + q(ckpt()) + " --beam 1 " + files, t).out, text.out);
  auto beam = decode("--checkpoint " + q(ckpt()) + " --format jsonl --beam 8 --nbest 3 " + files, t);
  ASSERT_EQ(beam.status, 0) << beam.err;
  auto bobjs = jsonl(beam.out);
  ASSERT_EQ(bobjs.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(bobjs[i].contains("nbest"));
    EXPECT_GE(bobjs[i]["nbest"].size(), 1u);
    EXPECT_LE(bobjs[i]["nbest"].size(), 3u);
    EXPECT_EQ(bobjs[i]["nbest"][0]["text"], bobjs[i]["text"]);
    EXPECT_GE(bobjs[i]["score"].get<double>(), objs[i]["score"].get<double>() - 1e-3);
  }

  // Threads, batches, --list and --output do not change the transcripts.
  std::ofstream(t / "list.txt") << "# clips\n" << clip(0).string() << "\n\n" << clip(1).string() << "\n" << clip(2).string() << "\n";
  auto listed = decode("--checkpoint " + q(ckpt()) + " --threads 2 --batch 2 --list " + q(t / "list.txt") +
                           " -o " + q(t / "out.txt"), t);
  ASSERT_EQ(listed.status, 0) << listed.err;
  EXPECT_EQ(listed.out, "");
  EXPECT_EQ(asr::read_file(t / "out.txt"), text.out);
}

TEST_F(DecodeCli, BadInputsAreNamedAndTheRestDecoded) {
  TempDir t;
  std::ofstream(t / "empty.wav").close();
  std::ofstream(t / "notes.wav") << "these are notes, not audio\n";
  ASSERT_EQ(asr::test::run_command("sox -n -r 16000 -c 1 " + q(t / "silent0.wav") + " trim 0 0"), 0);
  const std::string args = "--checkpoint " + q(ckpt()) + " " + q(clip(0)) + " " + q(t / "missing.wav") + " " +
                           q(t / "empty.wav") + " " + q(t / "notes.wav") + " " + q(t / "silent0.wav") + " " + q(clip(1));
  auto r = decode(args, t);
  EXPECT_EQ(r.status, 3) << r.err;  // data error: some inputs were unusable
  for (const char* bad : {"missing", "empty", "notes", "silent0"}) {
    EXPECT_NE(r.err.find(std::string("cannot decode '") + bad + "'"), std::string::npos) << bad << "\n" << r.err;
    EXPECT_EQ(r.out.find(std::string(bad) + "\t"), std::string::npos);
  }
  EXPECT_NE(r.out.find("clip0\t"), std::string::npos);
  EXPECT_NE(r.out.find("clip1\t"), std::string::npos);
  EXPECT_NE(r.err.find("2 files decoded, 4 failed"), std::string::npos) << r.err;
  // JSONL keeps one object per input, the failures with their reason.
  auto js = jsonl(decode("--format jsonl " + args, t).out);
  ASSERT_EQ(js.size(), 6u);
  EXPECT_TRUE(js[1].contains("error"));
  EXPECT_FALSE(js[1].contains("text"));
}

TEST_F(DecodeCli, BrokenCheckpointsExitCleanly) {
  TempDir t;
  const std::string good = asr::read_file(ckpt());
  std::ofstream(t / "trunc.ckpt", std::ios::binary) << good.substr(0, good.size() - 1000);
  std::string flipped = good;
  flipped[good.size() / 3] ^= 1;
  std::ofstream(t / "corrupt.ckpt", std::ios::binary) << flipped;
  std::string version = good;
  version[8] = 2;
  std::ofstream(t / "v2.ckpt", std::ios::binary) << version;
  std::ofstream(t / "model.ckpt") << "not a checkpoint";
  auto garbage = asr::test::make_test_checkpoint();
  garbage.sections["model"] = std::string(4096, '\x7f');
  asr::save_checkpoint(t / "garbage.ckpt", garbage);
  for (const char* name : {"trunc.ckpt", "corrupt.ckpt", "v2.ckpt", "model.ckpt", "garbage.ckpt", "absent.ckpt"}) {
    auto r = decode("--checkpoint " + q(t / name) + " " + q(clip(0)), t);
    // A path that does not exist is a usage error (2), a file that cannot be
    // used a data error (3); 128+ would be a signal (abort, segfault).
    EXPECT_EQ(r.status, std::string(name) == "absent.ckpt" ? 2 : 3) << name << ": " << r.err;
    EXPECT_NE(r.err.find((t / name).string()), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("asr_decode: error:"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(DecodeCli, StereoAt44kDecodesLikeTheMono16kOriginal) {
  TempDir t;
  const fs::path stereo = t / "stereo44.wav";
  ASSERT_EQ(asr::test::run_command("sox " + q(clip(2)) + " -r 44100 -c 2 -b 16 " + q(stereo)), 0);
  auto info = asr::probe_audio(stereo.string());
  ASSERT_EQ(info.sample_rate, 44100);
  ASSERT_EQ(info.channels, 2);
  auto a = jsonl(decode("--format jsonl --checkpoint " + q(ckpt()) + " " + q(clip(2)), t).out);
  auto b = decode("--format jsonl --checkpoint " + q(ckpt()) + " " + q(stereo), t);
  ASSERT_EQ(b.status, 0) << b.err;
  auto bj = jsonl(b.out);
  ASSERT_EQ(bj.size(), 1u);
  EXPECT_EQ(bj[0]["id"], "stereo44");
  EXPECT_NEAR(bj[0]["seconds"].get<double>(), a[0]["seconds"].get<double>(), 1e-3);
  // Downmixed and resampled back to 16 kHz, the model sees nearly the same signal.
  EXPECT_NEAR(bj[0]["score"].get<double>(), a[0]["score"].get<double>(), 0.02 * std::abs(a[0]["score"].get<double>()));
}

TEST_F(DecodeCli, RefsScoringAndReport) {
  TempDir t;
  auto base = jsonl(decode("--format jsonl --checkpoint " + q(ckpt()) + " " + q(clip(0)) + " " + q(clip(1)), t).out);
  std::ofstream(t / "refs.tsv") << "clip0\tThe Quick brown fox.\nclip1\t" << base[1]["text"].get<std::string>() << "\n";
  auto r = decode("--format jsonl --checkpoint " + q(ckpt()) + " --refs " + q(t / "refs.tsv") + " --report " +
                      q(t / "report.txt") + " " + q(clip(0)) + " " + q(clip(1)),
                  t);
  ASSERT_EQ(r.status, 0) << r.err;
  auto js = jsonl(r.out);
  // Hypotheses are scored normalized, as references are (an untrained
  // model's "⁇" for <unk> is no character).
  const std::string hyp0 = asr::normalize_transcript(base[0]["text"].get<std::string>());
  const std::string hyp1 = asr::normalize_transcript(base[1]["text"].get<std::string>());
  auto direct = asr::char_errors("the quick brown fox", hyp0);
  EXPECT_EQ(js[0]["char_errors"]["ref"], direct.ref_len);
  EXPECT_EQ(js[0]["char_errors"]["sub"], direct.sub);
  EXPECT_EQ(js[1]["cer"], 0.0) << base[1]["text"];  // its reference is its own transcript
  auto total = direct;
  total += asr::char_errors(hyp1, hyp1);
  char expect[128];
  std::snprintf(expect, sizeof expect, "CER %.2f%% (S %lld D %lld I %lld / %lld chars)", 100 * total.rate(),
                (long long)total.sub, (long long)total.del, (long long)total.ins, (long long)total.ref_len);
  EXPECT_NE(r.err.find(expect), std::string::npos) << expect << "\n" << r.err;
  std::string report = asr::read_file(t / "report.txt");
  EXPECT_NE(report.find("id: (clip0)"), std::string::npos);
  EXPECT_NE(report.find("REF:"), std::string::npos);
  EXPECT_NE(report.find("Scores: (#C #S #D #I)"), std::string::npos);
}

// DIR/data: 24 tone clips preprocessed (val 6, test 2, two shards per
// split); DIR/data.ckpt: an untrained checkpoint with that data's tokenizer.
void make_data_and_checkpoint(const TempDir& t) {
  asr::test::write_corpus(t / "in", 24);
  asr::PreprocessOptions po;
  po.input = (t / "in").string();
  po.output = (t / "data").string();
  po.val = 6;
  po.test = 2;
  po.vocab_size = 50;
  po.shards = 2;
  po.threads = 1;
  asr::run_preprocess(po);
  asr::test::write_test_checkpoint(t / "data.ckpt", 3, "configs/tiny.toml", asr::read_file(t / "data" / "tokenizer.model"));
}

// --data --split: the same CER as the trainer's evaluation of the same
// checkpoint, and the same as summing the per-utterance counts it prints.
TEST_F(DecodeCli, DataSplitScoringMatchesTrainingEvaluation) {
  TempDir t;
  make_data_and_checkpoint(t);
  auto val = asr::Dataset::open((t / "data").string(), "val");

  auto r = decode("--format jsonl --checkpoint " + q(t / "data.ckpt") + " --data " + q(t / "data") + " --split val", t);
  ASSERT_EQ(r.status, 0) << r.err;
  auto js = jsonl(r.out);
  ASSERT_EQ(js.size(), val.size());
  asr::ErrorCounts summed;
  for (size_t i = 0; i < js.size(); ++i) {
    EXPECT_EQ(js[i]["id"], val.id(i));
    EXPECT_EQ(js[i]["ref"], val.get(i).normalized);
    auto c = asr::char_errors(val.get(i).normalized, js[i]["text"].get<std::string>());
    EXPECT_EQ(js[i]["char_errors"]["sub"], c.sub);
    summed += c;
  }

  auto m = asr::load_checkpoint_model((t / "data.ckpt").string());
  auto comm = asr::distributed::make_local_communicator();
  auto eval = asr::evaluate_split(*m.model, val, *m.tokenizer, *comm, asr::EvalConfig{}, /*batch_seconds=*/2.0);
  EXPECT_EQ(eval.chars.sub, summed.sub);
  EXPECT_EQ(eval.chars.del, summed.del);
  EXPECT_EQ(eval.chars.ins, summed.ins);
  EXPECT_EQ(eval.chars.ref_len, summed.ref_len);
  char expect[128];
  std::snprintf(expect, sizeof expect, "CER %.2f%% (S %lld D %lld I %lld / %lld chars)", 100 * eval.cer(),
                (long long)eval.chars.sub, (long long)eval.chars.del, (long long)eval.chars.ins,
                (long long)eval.chars.ref_len);
  EXPECT_NE(r.err.find(expect), std::string::npos) << expect << "\n" << r.err;
}

// A damaged dataset stops asr_decode --data (and asr_ddp) with exit status 3
// and a message naming the file and the fix, before anything is decoded.
TEST_F(DecodeCli, DamagedDatasetsAreDataErrors) {
  TempDir t;
  make_data_and_checkpoint(t);
  const std::string val = "val-00000-of-00002.h5";
  struct Damage {
    std::string name, needle;
    std::function<void(const fs::path&)> apply;
  };
  const std::vector<Damage> damages = {
      {"flipped byte", "checksum mismatch",
       [&](const fs::path& d) { asr::test::flip_byte(d / val, asr::test::audio_byte_offset(d / val) + 7); }},
      {"deleted shard", "missing", [&](const fs::path& d) { fs::remove(d / val); }},
      {"stray shard", "not listed", [&](const fs::path& d) { fs::copy_file(d / val, d / "val-00002-of-00003.h5"); }},
      {"edited count", "utterances",
       [&](const fs::path& d) { asr::test::edit_manifest(d, [](auto& m) { m["splits"]["val"]["utterances"] = 5; }); }},
      {"out-of-vocabulary id", "token id 999",
       [&](const fs::path& d) {
         asr::test::write_token(d / val, 0, 999);
         asr::test::refresh_checksum(d, val);
       }},
  };
  const std::string decode_args = "--checkpoint " + q(t / "data.ckpt") + " --split val --data ";
  for (const auto& damage : damages) {
    const fs::path d = t / ("d-" + std::to_string(&damage - damages.data()));
    fs::copy(t / "data", d, fs::copy_options::recursive);
    damage.apply(d);
    auto r = decode(decode_args + q(d), t);
    EXPECT_EQ(r.status, 3) << damage.name << ": " << r.err;
    for (const std::string& needle : {damage.needle, std::string("asr_preprocess"), d.string()})
      EXPECT_NE(r.err.find(needle), std::string::npos) << damage.name << ": no '" << needle << "' in " << r.err;
    EXPECT_EQ(r.out, "") << damage.name;
  }
  // A flipped audio byte is only visible to the checksum: --no-verify decodes.
  const fs::path flipped = t / "d-0";
  EXPECT_EQ(decode(decode_args + q(flipped) + " --no-verify", t).status, 0);
  EXPECT_EQ(decode(decode_args + q(t / "data"), t).status, 0);
  EXPECT_EQ(decode("--checkpoint " + q(ckpt()) + " --no-verify " + q(clip(0)), t).status, 2) << "--no-verify without --data";

  // asr_ddp opens the same way: exit 3 naming the shard, unless the checksum is skipped.
  const fs::path ddp = asr::test::binary_dir() / "asr_ddp";
  if (!fs::exists(ddp)) GTEST_SKIP() << "asr_ddp is not built";
  const std::string train = "(" + ddp.string() + " --config " + q(asr::test::source_dir() / "configs/tiny.toml") +
                            " --max-steps 1 --set eval.every=0 --set log.tensorboard=false --set log.level=warn --data " +
                            q(flipped) + " --run-dir ";
  std::string log = (t / "ddp.log").string();
  EXPECT_EQ(asr::test::run_command(train + q(t / "run1") + " >" + q(log) + " 2>&1)"), 3) << asr::read_file(log);
  EXPECT_NE(asr::read_file(log).find((flipped / val).string()), std::string::npos) << asr::read_file(log);
  EXPECT_EQ(asr::test::run_command(train + q(t / "run2") + " --set data.verify_checksums=false >" + q(log) + " 2>&1)"), 0)
      << asr::read_file(log);
}

}  // namespace
