#include "asr/data/preprocess.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "asr/audio/audio_io.h"
#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"
#include "asr/core/progress.h"
#include "asr/core/thread_pool.h"
#include "asr/data/ljspeech.h"
#include "asr/data/shard_format.h"
#include "asr/data/split.h"
#include "asr/text/tokenizer.h"
#include "shard_writer.h"

namespace asr {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kToolVersion = "0.1.0";
const char* const kSplits[] = {"train", "val", "test"};

struct Candidate {
  CorpusRow row;
  AudioInfo info;
  std::string split;
};

struct Decoded {
  std::string error;
  std::vector<int16_t> audio;
  std::vector<int32_t> tokens;
};

// Removes the partial output directory unless the run got to the rename.
class TempDirGuard {
 public:
  explicit TempDirGuard(fs::path p) : path_(std::move(p)) {}
  ~TempDirGuard() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  void commit() { committed_ = true; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool committed_ = false;
};

std::string describe_reject(const Reject& r) {
  std::string where = "line " + std::to_string(r.line);
  if (!r.id.empty()) where += " (" + r.id + ")";
  return where + ": " + r.reason;
}

void fail_if_strict(const PreprocessOptions& o, const std::vector<Reject>& rejects) {
  if (!o.strict || rejects.empty()) return;
  throw DataError("--strict: " + std::to_string(rejects.size()) + " row(s) rejected, first " +
              describe_reject(rejects.front()) + "; fix the input or drop --strict (no output was written)");
}

// Header-only checks of every accepted row's audio, in parallel.
std::vector<Candidate> probe_rows(std::vector<CorpusRow> rows, const PreprocessOptions& o, ThreadPool& pool,
                                  std::vector<Reject>& rejects) {
  std::vector<AudioInfo> infos(rows.size());
  std::vector<std::string> errors(rows.size());
  pool.parallel_for(0, rows.size(), [&](size_t i) {
    try {
      infos[i] = probe_audio(rows[i].wav_path);
      if (infos[i].frames <= 0)
        errors[i] = "zero-length audio in " + rows[i].wav_path;
      else if (infos[i].duration() < o.min_duration)
        errors[i] = "clip is " + std::to_string(infos[i].duration()) + " s, shorter than --min-duration " +
                    std::to_string(o.min_duration) + " s (too short for one model frame)";
      else if (infos[i].duration() > o.max_duration)
        errors[i] = "clip is " + std::to_string(infos[i].duration()) + " s, longer than --max-duration " +
                    std::to_string(o.max_duration) + " s";
    } catch (const Error& e) {
      errors[i] = std::string("unusable audio: ") + e.what();
    }
  });
  std::vector<Candidate> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!errors[i].empty())
      rejects.push_back(Reject{rows[i].line, rows[i].id, errors[i]});
    else
      out.push_back(Candidate{std::move(rows[i]), infos[i], ""});
  }
  return out;
}

fs::path prepare_output(const PreprocessOptions& o) {
  fs::path out = fs::absolute(o.output).lexically_normal();
  if (out.filename().empty()) out = out.parent_path();
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!o.overwrite) throw Error("output " + out.string() + " already exists; pass --overwrite to replace it");
    if (!fs::is_directory(out)) throw Error("output " + out.string() + " exists and is not a directory");
    if (!fs::is_empty(out) && !fs::exists(out / "manifest.json"))
      throw Error("output " + out.string() + " is not empty and holds no manifest.json; refusing to replace "
                  "a directory asr_preprocess did not write");
  }
  fs::create_directories(out.parent_path(), ec);
  if (ec) throw Error("cannot create " + out.parent_path().string() + ": " + ec.message());
  return out;
}

std::string tsv_field(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

void write_rejects(const fs::path& path, std::vector<Reject> rejects) {
  std::stable_sort(rejects.begin(), rejects.end(), [](const Reject& a, const Reject& b) { return a.line < b.line; });
  std::string tsv = "line\tid\treason\n";
  for (const auto& r : rejects) tsv += std::to_string(r.line) + "\t" + tsv_field(r.id) + "\t" + tsv_field(r.reason) + "\n";
  write_file_atomic(path, tsv);
}

struct ShardPlan {
  std::string split, file;
  std::vector<size_t> items;  // indices into candidates
};

std::vector<ShardPlan> plan_shards(const std::vector<Candidate>& cands, size_t shards) {
  std::vector<ShardPlan> plan;
  for (const char* split : kSplits) {
    std::vector<size_t> members;
    std::vector<double> durations;
    for (size_t i = 0; i < cands.size(); ++i)
      if (cands[i].split == split) {
        members.push_back(i);
        durations.push_back(cands[i].info.duration());
      }
    auto bins = balance_shards(durations, shards);
    for (size_t b = 0; b < bins.size(); ++b) {
      ShardPlan p{split, shard::file_name(split, b, bins.size()), {}};
      for (size_t k : bins[b]) p.items.push_back(members[k]);
      plan.push_back(std::move(p));
    }
  }
  return plan;
}

json options_json(const PreprocessOptions& o) {
  return json{{"sample_rate", o.sample_rate}, {"shards", o.shards},   {"vocab_size", o.vocab_size},
              {"tokenizer", o.tokenizer},     {"val", o.val},         {"test", o.test},
              {"max_duration", o.max_duration}, {"min_duration", o.min_duration}, {"strict", o.strict}};
}

}  // namespace

void validate(const PreprocessOptions& o) {
  if (o.input.empty()) throw Error("--input is required (an LJSpeech-1.1 directory)");
  if (o.output.empty()) throw Error("--output is required");
  if (o.sample_rate < 1000 || o.sample_rate > 192000)
    throw Error("--sample-rate " + std::to_string(o.sample_rate) + " is out of range (1000..192000)");
  if (o.shards < 1) throw Error("--shards must be at least 1");
  if (o.vocab_size < 3) throw Error("--vocab-size must be at least 3");
  if (o.tokenizer != "bpe" && o.tokenizer != "unigram" && o.tokenizer != "char")
    throw Error("--tokenizer must be bpe, unigram or char (got '" + o.tokenizer + "')");
  if (!(o.max_duration > 0)) throw Error("--max-duration must be positive");
  if (!(o.min_duration >= 0) || o.min_duration >= o.max_duration)
    throw Error("--min-duration must be at least 0 and below --max-duration");
  if (fs::absolute(o.input).lexically_normal() == fs::absolute(o.output).lexically_normal())
    throw Error("--output must differ from --input");
}

namespace {

// The rows that survived reading and probing, with their split, and the rest.
struct Corpus {
  std::vector<Candidate> cands;
  std::vector<Reject> rejects;
  size_t total_rows = 0;
};

// 1. Rows and their audio headers.
Corpus read_corpus(const PreprocessOptions& o, ThreadPool& pool) {
  CorpusListing listing = read_ljspeech_metadata(o.input);
  Corpus c;
  c.rejects = std::move(listing.rejects);
  c.total_rows = listing.rows.size() + c.rejects.size();
  c.cands = probe_rows(std::move(listing.rows), o, pool, c.rejects);
  fail_if_strict(o, c.rejects);
  if (c.cands.empty())
    throw DataError("no usable utterances in " + o.input + " (" + std::to_string(c.rejects.size()) + " rejected)");
  return c;
}

// 2. Splits, then the tokenizer from the training text only.
Tokenizer assign_splits_and_train_tokenizer(Corpus& c, const PreprocessOptions& o) {
  auto splits = assign_splits(c.cands.size(), o.val, o.test);
  std::vector<std::string> train_text;
  for (size_t i = 0; i < c.cands.size(); ++i) {
    c.cands[i].split = splits[i];
    if (splits[i] == "train") train_text.push_back(c.cands[i].row.normalized);
  }
  return train_tokenizer(train_text, {o.tokenizer, o.vocab_size});
}

Decoded decode_one(const Candidate& c, const Tokenizer& tokenizer, int sample_rate) {
  Decoded d;
  try {
    std::vector<float> audio = load_audio(c.row.wav_path, sample_rate);
    d.audio = to_int16(audio.data(), audio.size());
    std::vector<int> ids = tokenizer.encode(c.row.normalized);
    d.tokens.assign(ids.begin(), ids.end());
  } catch (const Error& e) {
    d.error = std::string("unusable audio: ") + e.what();
  }
  return d;
}

// What the shards hold, for the manifest and the summary.
struct ShardsWritten {
  std::map<std::string, json> splits;  // per split: utterances, seconds, shards[]
  size_t count[3] = {0, 0, 0};         // utterances per split, in kSplits order
};

// One shard: its utterances decoded on the pool, at most `window` ahead of
// this thread, which is the only writer (HDF5 is single-threaded).
void write_shard(const ShardPlan& shard, Corpus& c, const Tokenizer& tokenizer, const PreprocessOptions& o,
                 ThreadPool& pool, const fs::path& dir, Progress& progress, double& done_seconds, ShardsWritten& out) {
  int64_t expected = 0;
  for (size_t i : shard.items)
    expected += std::llround(static_cast<double>(c.cands[i].info.frames) * o.sample_rate / c.cands[i].info.sample_rate);
  ShardWriter writer((dir / shard.file).string(), o.sample_rate, shard.split, expected);
  const size_t window = pool.size() * 16;
  std::deque<std::future<Decoded>> inflight;
  size_t next = 0;
  auto submit_more = [&] {
    for (; next < shard.items.size() && inflight.size() < window; ++next) {
      const Candidate* cand = &c.cands[shard.items[next]];
      inflight.push_back(pool.submit([cand, &tokenizer, &o] { return decode_one(*cand, tokenizer, o.sample_rate); }));
    }
  };
  submit_more();
  for (size_t k = 0; k < shard.items.size(); ++k) {
    Decoded d = inflight.front().get();
    inflight.pop_front();
    submit_more();
    const Candidate& cand = c.cands[shard.items[k]];
    done_seconds += cand.info.duration();
    if (!d.error.empty()) {
      c.rejects.push_back(Reject{cand.row.line, cand.row.id, d.error});
      fail_if_strict(o, c.rejects);
    } else {
      writer.add(cand.row.id, cand.row.text, cand.row.normalized, d.audio, d.tokens);
    }
    const double elapsed = progress.elapsed_seconds();
    char extra[64];
    std::snprintf(extra, sizeof extra, "%.0fx realtime", elapsed > 0 ? done_seconds / elapsed : 0.0);
    progress.advance(1, extra);
  }
  const ShardWriter::Result r = writer.close();
  const fs::path path = dir / shard.file;
  fsync_path(path);
  json& sj = out.splits[shard.split];
  sj["shards"].push_back(json{{"file", shard.file},
                              {"utterances", r.utterances},
                              {"samples", r.samples},
                              {"seconds", r.seconds},
                              {"bytes", fs::file_size(path)},
                              {"crc32c", crc32c_file_hex(path.string())}});
  sj["utterances"] = sj.value("utterances", size_t{0}) + r.utterances;
  sj["seconds"] = sj.value("seconds", 0.0) + r.seconds;
  for (int s = 0; s < 3; ++s)
    if (shard.split == kSplits[s]) out.count[s] += r.utterances;
}

// 4. Every shard of the plan.
ShardsWritten write_shards(const std::vector<ShardPlan>& plan, Corpus& c, const Tokenizer& tokenizer,
                           const PreprocessOptions& o, ThreadPool& pool, const fs::path& dir) {
  ShardsWritten out;
  Progress progress("preprocess", c.cands.size(), "utts");
  double done_seconds = 0;
  for (const ShardPlan& shard : plan) write_shard(shard, c, tokenizer, o, pool, dir, progress, done_seconds, out);
  progress.finish();
  for (const char* split : kSplits)
    if (!out.splits.count(split)) out.splits[split] = json{{"utterances", 0}, {"seconds", 0.0}, {"shards", json::array()}};
  return out;
}

// 5. The manifest, written last: its presence marks a complete output.
void write_manifest(const fs::path& dir, const PreprocessOptions& o, const Corpus& c, const Tokenizer& tokenizer,
                    const ShardsWritten& shards) {
  const size_t accepted = shards.count[0] + shards.count[1] + shards.count[2];
  json manifest{
      {"format", shard::kFormatName},
      {"format_version", shard::kFormatVersion},
      {"tool", "asr_preprocess"},
      {"tool_version", kToolVersion},
      {"sample_rate", o.sample_rate},
      {"options", options_json(o)},
      {"source", {{"input", fs::absolute(o.input).lexically_normal().string()},
                  {"metadata_rows", c.total_rows},
                  {"accepted", accepted},
                  {"rejected", c.rejects.size()}}},
      {"normalization", "asr-v1: lower-case a-z, digits, inner apostrophes; see docs/data-format.md"},
      {"tokenizer", {{"file", "tokenizer.model"},
                     {"type", o.tokenizer},
                     {"vocab_size", tokenizer.vocab_size()},
                     {"blank_id", tokenizer.blank_id()},
                     {"unk_id", 1},
                     {"crc32c", crc32c_file_hex((dir / "tokenizer.model").string())}}},
      {"splits", shards.splits},
  };
  write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");
  fsync_path(dir);
}

// 6. Swap into place; an old output is moved aside first and removed after.
void install_output(TempDirGuard& tmp, const fs::path& out_dir) {
  const fs::path old = out_dir.parent_path() / ("." + out_dir.filename().string() + ".old-" + std::to_string(getpid()));
  std::error_code ec;
  const bool had_old = fs::exists(out_dir, ec);
  if (had_old) rename_durable(out_dir, old);
  rename_durable(tmp.path(), out_dir);
  tmp.commit();
  if (had_old) fs::remove_all(old, ec);
}

void warn_about_rejects(const std::vector<Reject>& rejects, const fs::path& out_dir) {
  if (rejects.empty()) return;
  spdlog::warn("{} row(s) rejected, listed in {}", rejects.size(), (out_dir / "rejects.tsv").string());
  for (size_t i = 0; i < rejects.size() && i < 10; ++i) spdlog::warn("  {}", describe_reject(rejects[i]));
}

}  // namespace

PreprocessSummary run_preprocess(const PreprocessOptions& o) {
  validate(o);
  const auto start = std::chrono::steady_clock::now();
  const fs::path out_dir = prepare_output(o);
  ThreadPool pool(o.threads);
  Corpus corpus = read_corpus(o, pool);
  Tokenizer tokenizer = assign_splits_and_train_tokenizer(corpus, o);
  const std::vector<ShardPlan> plan = plan_shards(corpus.cands, o.shards);

  // 3. Everything goes into a hidden sibling first; renamed only when complete.
  TempDirGuard tmp(out_dir.parent_path() / ("." + out_dir.filename().string() + ".partial-" + std::to_string(getpid())));
  fs::remove_all(tmp.path());
  fs::create_directories(tmp.path());
  write_file_atomic(tmp.path() / "tokenizer.model", tokenizer.model_bytes());
  const ShardsWritten shards = write_shards(plan, corpus, tokenizer, o, pool, tmp.path());
  write_rejects(tmp.path() / "rejects.tsv", corpus.rejects);
  write_manifest(tmp.path(), o, corpus, tokenizer, shards);
  install_output(tmp, out_dir);
  warn_about_rejects(corpus.rejects, out_dir);

  PreprocessSummary s;
  s.metadata_rows = corpus.total_rows;
  s.train = shards.count[0];
  s.val = shards.count[1];
  s.test = shards.count[2];
  s.accepted = s.train + s.val + s.test;
  s.rejected = corpus.rejects.size();
  for (const auto& c : corpus.cands) s.audio_seconds += c.info.duration();
  s.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  s.vocab_size = tokenizer.vocab_size();
  return s;
}

std::string describe(const PreprocessSummary& s) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%zu utterances (train %zu, val %zu, test %zu), %zu rejected of %zu rows; %.2f h of audio in "
                "%.1f s: %.0fx realtime; vocabulary %d",
                s.accepted, s.train, s.val, s.test, s.rejected, s.metadata_rows, s.audio_seconds / 3600.0,
                s.wall_seconds, s.realtime_factor(), s.vocab_size);
  return buf;
}

}  // namespace asr
