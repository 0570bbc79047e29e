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
  throw Error("--strict: " + std::to_string(rejects.size()) + " row(s) rejected, first " +
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

PreprocessSummary run_preprocess(const PreprocessOptions& o) {
  validate(o);
  const auto start = std::chrono::steady_clock::now();
  const fs::path out_dir = prepare_output(o);
  ThreadPool pool(o.threads);

  // 1. Rows and their audio headers.
  CorpusListing listing = read_ljspeech_metadata(o.input);
  std::vector<Reject> rejects = std::move(listing.rejects);
  const size_t total_rows = listing.rows.size() + rejects.size();
  std::vector<Candidate> cands = probe_rows(std::move(listing.rows), o, pool, rejects);
  fail_if_strict(o, rejects);
  if (cands.empty()) throw Error("no usable utterances in " + o.input + " (" + std::to_string(rejects.size()) + " rejected)");

  // 2. Split, tokenizer (train text only), shard plan.
  auto splits = assign_splits(cands.size(), o.val, o.test);
  std::vector<std::string> train_text;
  for (size_t i = 0; i < cands.size(); ++i) {
    cands[i].split = splits[i];
    if (splits[i] == "train") train_text.push_back(cands[i].row.normalized);
  }
  Tokenizer tokenizer = train_tokenizer(train_text, {o.tokenizer, o.vocab_size});
  std::vector<ShardPlan> plan = plan_shards(cands, o.shards);

  // 3. Everything goes into a hidden sibling first; renamed only when complete.
  TempDirGuard tmp(out_dir.parent_path() / ("." + out_dir.filename().string() + ".partial-" + std::to_string(getpid())));
  fs::remove_all(tmp.path());
  fs::create_directories(tmp.path());
  write_file_atomic(tmp.path() / "tokenizer.model", tokenizer.model_bytes());

  // 4. Decode + resample + tokenize on the pool; this thread is the only writer.
  double total_seconds = 0;
  for (const auto& c : cands) total_seconds += c.info.duration();
  Progress progress("preprocess", cands.size(), "utts");
  const size_t window = pool.size() * 16;
  double done_seconds = 0;
  std::map<std::string, json> split_json;
  size_t split_count[3] = {0, 0, 0};
  for (const ShardPlan& shard_plan : plan) {
    int64_t expected = 0;
    for (size_t i : shard_plan.items)
      expected += std::llround(static_cast<double>(cands[i].info.frames) * o.sample_rate / cands[i].info.sample_rate);
    ShardWriter writer((tmp.path() / shard_plan.file).string(), o.sample_rate, shard_plan.split, expected);
    std::deque<std::future<Decoded>> inflight;
    size_t next = 0;
    auto submit_more = [&] {
      while (next < shard_plan.items.size() && inflight.size() < window) {
        const Candidate* c = &cands[shard_plan.items[next++]];
        inflight.push_back(pool.submit([c, &tokenizer, &o] {
          Decoded d;
          try {
            std::vector<float> audio = load_audio(c->row.wav_path, o.sample_rate);
            d.audio = to_int16(audio.data(), audio.size());
            std::vector<int> ids = tokenizer.encode(c->row.normalized);
            d.tokens.assign(ids.begin(), ids.end());
          } catch (const Error& e) {
            d.error = std::string("unusable audio: ") + e.what();
          }
          return d;
        }));
      }
    };
    submit_more();
    for (size_t k = 0; k < shard_plan.items.size(); ++k) {
      Decoded d = inflight.front().get();
      inflight.pop_front();
      submit_more();
      const Candidate& c = cands[shard_plan.items[k]];
      done_seconds += c.info.duration();
      if (!d.error.empty()) {
        rejects.push_back(Reject{c.row.line, c.row.id, d.error});
        fail_if_strict(o, rejects);
      } else {
        writer.add(c.row.id, c.row.text, c.row.normalized, d.audio, d.tokens);
      }
      double elapsed = progress.elapsed_seconds();
      char extra[64];
      std::snprintf(extra, sizeof extra, "%.0fx realtime", elapsed > 0 ? done_seconds / elapsed : 0.0);
      progress.advance(1, extra);
    }
    ShardWriter::Result r = writer.close();
    const fs::path shard_path = tmp.path() / shard_plan.file;
    fsync_path(shard_path);
    json& sj = split_json[shard_plan.split];
    sj["shards"].push_back(json{{"file", shard_plan.file},
                                {"utterances", r.utterances},
                                {"samples", r.samples},
                                {"seconds", r.seconds},
                                {"bytes", fs::file_size(shard_path)},
                                {"crc32c", crc32c_file_hex(shard_path.string())}});
    sj["utterances"] = sj.value("utterances", size_t{0}) + r.utterances;
    sj["seconds"] = sj.value("seconds", 0.0) + r.seconds;
    for (int s = 0; s < 3; ++s)
      if (shard_plan.split == kSplits[s]) split_count[s] += r.utterances;
  }
  progress.finish();

  // 5. Side files, then the manifest last: its presence marks a complete output.
  write_rejects(tmp.path() / "rejects.tsv", rejects);
  for (const char* split : kSplits)
    if (!split_json.count(split)) split_json[split] = json{{"utterances", 0}, {"seconds", 0.0}, {"shards", json::array()}};
  size_t accepted = split_count[0] + split_count[1] + split_count[2];
  json manifest{
      {"format", shard::kFormatName},
      {"format_version", shard::kFormatVersion},
      {"tool", "asr_preprocess"},
      {"tool_version", kToolVersion},
      {"sample_rate", o.sample_rate},
      {"options", options_json(o)},
      {"source", {{"input", fs::absolute(o.input).lexically_normal().string()},
                  {"metadata_rows", total_rows},
                  {"accepted", accepted},
                  {"rejected", rejects.size()}}},
      {"normalization", "asr-v1: lower-case a-z, digits, inner apostrophes; see docs/data-format.md"},
      {"tokenizer", {{"file", "tokenizer.model"},
                     {"type", o.tokenizer},
                     {"vocab_size", tokenizer.vocab_size()},
                     {"blank_id", tokenizer.blank_id()},
                     {"unk_id", 1},
                     {"crc32c", crc32c_file_hex((tmp.path() / "tokenizer.model").string())}}},
      {"splits", split_json},
  };
  write_file_atomic(tmp.path() / "manifest.json", manifest.dump(2) + "\n");
  fsync_path(tmp.path());

  // 6. Swap into place; an old output is moved aside first and removed after.
  fs::path old = out_dir.parent_path() / ("." + out_dir.filename().string() + ".old-" + std::to_string(getpid()));
  std::error_code ec;
  bool had_old = fs::exists(out_dir, ec);
  if (had_old) rename_durable(out_dir, old);
  rename_durable(tmp.path(), out_dir);
  tmp.commit();
  if (had_old) fs::remove_all(old, ec);

  if (!rejects.empty()) {
    spdlog::warn("{} row(s) rejected, listed in {}", rejects.size(), (out_dir / "rejects.tsv").string());
    size_t shown = 0;
    for (const auto& r : rejects) {
      if (++shown > 10) break;
      spdlog::warn("  {}", describe_reject(r));
    }
  }

  PreprocessSummary s;
  s.metadata_rows = total_rows;
  s.accepted = accepted;
  s.rejected = rejects.size();
  s.train = split_count[0];
  s.val = split_count[1];
  s.test = split_count[2];
  s.audio_seconds = total_seconds;
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
