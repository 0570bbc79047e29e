#include "asr/data/preprocess.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

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
#include "output_dir.h"
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

std::string describe_reject(const Reject& r) {
  std::string where = "line " + std::to_string(r.line);
  if (!r.id.empty()) where += " (" + r.id + ")";
  return where + ": " + r.reason;
}

// "missing audio 3, too short 2": rejections per kind, the most common first.
std::string count_by_kind(const std::vector<Reject>& rejects) {
  std::map<std::string, size_t> counts;
  for (const Reject& r : rejects) ++counts[r.kind.empty() ? r.reason : r.kind];
  std::vector<std::pair<std::string, size_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [kind, n] : sorted) out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(n);
  return out;
}

// The first `n` rejections in metadata order, for messages.
std::string first_rejects(std::vector<Reject> rejects, size_t n) {
  std::stable_sort(rejects.begin(), rejects.end(), [](const Reject& a, const Reject& b) { return a.line < b.line; });
  std::string out;
  for (size_t i = 0; i < rejects.size() && i < n; ++i) out += (i ? "; " : "") + describe_reject(rejects[i]);
  return out;
}

void fail_if_strict(const PreprocessOptions& o, const std::vector<Reject>& rejects) {
  if (!o.strict || rejects.empty()) return;
  throw DataError("--strict: " + std::to_string(rejects.size()) + " row(s) rejected, first " +
              describe_reject(rejects.front()) + "; fix the input or drop --strict (no output was written)");
}

// Why nothing is left to train on: the reasons counted, and the first rows.
[[noreturn]] void fail_no_usable(const PreprocessOptions& o, const std::vector<Reject>& rejects, size_t rows) {
  if (rows == 0)
    throw DataError("no usable utterances in " + o.input + ": metadata.csv has no rows (it is empty or blank)");
  throw DataError("no usable utterances in " + o.input + ": all " + std::to_string(rows) + " rows were rejected (" +
                  count_by_kind(rejects) + "); first " + first_rejects(rejects, 3));
}

const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

bool stop_requested(const PreprocessOptions& o) { return o.stop_signal && o.stop_signal->load() != 0; }

void stop_if_requested(const PreprocessOptions& o) {
  if (stop_requested(o)) throw PreprocessInterrupted(o.stop_signal->load(), o.output);
}

// Finds the row's audio (by type, without opening anything that is not a
// regular file) and checks its header; a Reject with an empty reason when usable.
Reject probe_row(CorpusRow& row, const std::string& wavs, const PreprocessOptions& o, AudioInfo& info) {
  auto reject = [&](const std::string& kind, const std::string& reason) { return Reject{row.line, row.id, reason, kind}; };
  const AudioLookup found = locate_audio(wavs, row.id);
  if (found.path.empty()) return reject(found.kind, found.problem);
  row.audio_path = found.path;
  try {
    info = probe_audio(row.audio_path);
  } catch (const Error& e) {
    return reject("unusable audio", std::string("unusable audio: ") + e.what());
  }
  if (info.frames <= 0) return reject("zero-length audio", "zero-length audio in " + row.audio_path);
  if (info.duration() < o.min_duration)
    return reject("too short", "clip is " + std::to_string(info.duration()) + " s, shorter than --min-duration " +
                                   std::to_string(o.min_duration) + " s (too short for one model frame)");
  if (info.duration() > o.max_duration)
    return reject("too long", "clip is " + std::to_string(info.duration()) + " s, longer than --max-duration " +
                                  std::to_string(o.max_duration) + " s");
  return Reject{};
}

// Header-only checks of every accepted row's audio, in parallel.
std::vector<Candidate> probe_rows(std::vector<CorpusRow> rows, const PreprocessOptions& o, ThreadPool& pool,
                                  std::vector<Reject>& rejects) {
  std::vector<AudioInfo> infos(rows.size());
  std::vector<Reject> problems(rows.size());  // reason empty: usable
  const std::string wavs = (fs::path(o.input) / "wavs").string();
  pool.parallel_for(0, rows.size(), [&](size_t i) {
    if (stop_requested(o)) return;
    problems[i] = probe_row(rows[i], wavs, o, infos[i]);
  });
  stop_if_requested(o);
  std::vector<Candidate> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!problems[i].reason.empty())
      rejects.push_back(std::move(problems[i]));
    else
      out.push_back(Candidate{std::move(rows[i]), infos[i], ""});
  }
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

namespace {

std::string format_bound(const OptionRange& r, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, r.integer ? "%.0f" : "%g", v);
  return buf;
}

// Why `value` is outside `r` ("" when it is inside), without naming the flag.
std::string range_problem(const OptionRange& r, double value, const std::string& shown) {
  if (std::isfinite(value) && value >= r.lo && value <= r.hi) return "";
  if (std::isnan(value)) return shown + " is not a number (" + r.what + ")";
  return shown + " is out of range: use " + (r.integer ? "an integer" : "a number") + " from " +
         format_bound(r, r.lo) + " to " + format_bound(r, r.hi) + " (" + r.what + ")";
}

template <class T>
void require_in_range(const OptionRange& r, T value) {
  if (std::string p = range_problem(r, static_cast<double>(value), std::to_string(value)); !p.empty())
    throw Error(std::string(r.flag) + " " + p);
}

}  // namespace

std::string option_value_problem(const OptionRange& r, const std::string& text) {
  const char* end = text.data() + text.size();
  double value = 0;
  if (r.integer) {
    long long n = 0;
    auto [ptr, ec] = std::from_chars(text.data(), end, n);
    if (ec == std::errc::result_out_of_range) return range_problem(r, HUGE_VAL, text);
    if (ec != std::errc() || ptr != end || text.empty()) return "'" + text + "' is not an integer (" + r.what + ")";
    value = static_cast<double>(n);
  } else {
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec == std::errc::result_out_of_range) return range_problem(r, HUGE_VAL, text);
    if (ec != std::errc() || ptr != end || text.empty()) return "'" + text + "' is not a number (" + r.what + ")";
  }
  return range_problem(r, value, text);
}

void validate(const PreprocessOptions& o) {
  namespace range = preprocess_ranges;
  if (o.input.empty()) throw Error("--input is required (an LJSpeech-1.1 directory)");
  if (o.output.empty()) throw Error("--output is required");
  require_in_range(range::kSampleRate, o.sample_rate);
  require_in_range(range::kShards, o.shards);
  require_in_range(range::kVocabSize, o.vocab_size);
  require_in_range(range::kVal, o.val);
  require_in_range(range::kTest, o.test);
  require_in_range(range::kThreads, o.threads);
  require_in_range(range::kMinDuration, o.min_duration);
  require_in_range(range::kMaxDuration, o.max_duration);
  if (o.tokenizer != "bpe" && o.tokenizer != "unigram" && o.tokenizer != "char")
    throw Error("--tokenizer must be bpe, unigram or char (got '" + o.tokenizer + "')");
  if (o.min_duration >= o.max_duration)
    throw Error(fmt::format("--min-duration {} must be below --max-duration {}", o.min_duration, o.max_duration));
  if (fs::absolute(o.input).lexically_normal() == fs::absolute(o.output).lexically_normal())
    throw Error("--output must differ from --input");
}

PreprocessInterrupted::PreprocessInterrupted(int signal, const std::string& output)
    : Error(std::string("stopped by ") + signal_name(signal) + " before the output was complete: " + output +
            " was left as it was and the temporary directory is removed; run again to preprocess"),
      signal_(signal) {}

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
  stop_if_requested(o);
  c.cands = probe_rows(std::move(listing.rows), o, pool, c.rejects);
  fail_if_strict(o, c.rejects);
  if (c.cands.empty()) fail_no_usable(o, c.rejects, c.total_rows);
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
  Tokenizer tokenizer = train_tokenizer(train_text, {o.tokenizer, o.vocab_size, "--vocab-size"});
  stop_if_requested(o);
  return tokenizer;
}

// Held-out text can hold characters the training text never has; the
// tokenizer (and so the model) can only spell them <unk>. Not an error: the
// rows are fine, but the held-out error rate counts them, so say how many.
void warn_about_unknown_tokens(const Corpus& c, const Tokenizer& tokenizer) {
  std::set<char> train_chars;
  for (const Candidate& cand : c.cands)
    if (cand.split == "train") train_chars.insert(cand.row.normalized.begin(), cand.row.normalized.end());
  for (const char* split : {"val", "test"}) {
    size_t tokens = 0, unknown = 0;
    std::set<char> missing;
    for (const Candidate& cand : c.cands) {
      if (cand.split != split) continue;
      const std::vector<int> ids = tokenizer.encode(cand.row.normalized);
      tokens += ids.size();
      unknown += static_cast<size_t>(std::count(ids.begin(), ids.end(), tokenizer.unk_id()));
      for (char ch : cand.row.normalized)
        if (!train_chars.count(ch)) missing.insert(ch);
    }
    if (unknown == 0) continue;
    spdlog::warn("{}: {} of {} tokens ({:.2f}%) are <unk>: the characters [{}] never occur in the training text",
                 split, unknown, tokens, 100.0 * unknown / tokens, std::string(missing.begin(), missing.end()));
  }
}

Decoded decode_one(const Candidate& c, const Tokenizer& tokenizer, int sample_rate) {
  Decoded d;
  try {
    std::vector<float> audio = load_audio(c.row.audio_path, sample_rate);
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

// Decodes running on the pool read the corpus and the tokenizer: every one
// must finish before an error or a stop unwinds past their owners.
struct InflightDecodes {
  std::deque<std::future<Decoded>> queue;
  ~InflightDecodes() {
    for (auto& f : queue)
      if (f.valid()) f.wait();
  }
};

int64_t expected_samples(const ShardPlan& shard, const Corpus& c, int sample_rate) {
  int64_t expected = 0;
  for (size_t i : shard.items)
    expected += std::llround(static_cast<double>(c.cands[i].info.frames) * sample_rate / c.cands[i].info.sample_rate);
  return expected;
}

json shard_record(const ShardPlan& shard, const ShardWriter::Result& r, const fs::path& path) {
  std::error_code ec;
  const uintmax_t bytes = fs::file_size(path, ec);
  if (ec) throw DataError("cannot read the size of " + path.string() + ": " + ec.message());
  return json{{"file", shard.file}, {"utterances", r.utterances}, {"samples", r.samples},
              {"seconds", r.seconds}, {"bytes", bytes},           {"crc32c", crc32c_file_hex(path.string())}};
}

// One shard: its utterances decoded on the pool, at most `window` ahead of
// this thread, which is the only writer (HDF5 is single-threaded).
void write_shard(const ShardPlan& shard, Corpus& c, const Tokenizer& tokenizer, const PreprocessOptions& o,
                 ThreadPool& pool, const fs::path& dir, Progress& progress, double& done_seconds, ShardsWritten& out) {
  const fs::path path = dir / shard.file;
  ShardWriter writer(path.string(), o.sample_rate, shard.split, expected_samples(shard, c, o.sample_rate));
  const size_t window = pool.size() * 16;
  InflightDecodes inflight;
  size_t next = 0;
  auto submit_more = [&] {
    for (; next < shard.items.size() && inflight.queue.size() < window; ++next) {
      const Candidate* cand = &c.cands[shard.items[next]];
      inflight.queue.push_back(
          pool.submit([cand, &tokenizer, &o] { return decode_one(*cand, tokenizer, o.sample_rate); }));
    }
  };
  submit_more();
  for (size_t k = 0; k < shard.items.size(); ++k) {
    stop_if_requested(o);
    Decoded d = inflight.queue.front().get();
    inflight.queue.pop_front();
    submit_more();
    const Candidate& cand = c.cands[shard.items[k]];
    done_seconds += cand.info.duration();
    if (!d.error.empty()) {
      c.rejects.push_back(Reject{cand.row.line, cand.row.id, d.error, "unusable audio"});
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
  fsync_path(path);
  json& sj = out.splits[shard.split];
  sj["shards"].push_back(shard_record(shard, r, path));
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
                     {"unk_id", tokenizer.unk_id()},
                     {"crc32c", crc32c_file_hex((dir / "tokenizer.model").string())}}},
      {"splits", shards.splits},
  };
  write_file_atomic(dir / "manifest.json", manifest.dump(2) + "\n");
  fsync_path(dir);
}

void warn_about_rejects(std::vector<Reject> rejects, const fs::path& out_dir) {
  if (rejects.empty()) return;
  spdlog::warn("{} row(s) rejected ({}), listed in {}", rejects.size(), count_by_kind(rejects),
               (out_dir / "rejects.tsv").string());
  std::stable_sort(rejects.begin(), rejects.end(), [](const Reject& a, const Reject& b) { return a.line < b.line; });
  for (size_t i = 0; i < rejects.size() && i < 10; ++i) spdlog::warn("  {}", describe_reject(rejects[i]));
}

PreprocessSummary summarize(const Corpus& corpus, const ShardsWritten& shards, const Tokenizer& tokenizer,
                            std::chrono::steady_clock::time_point start) {
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

}  // namespace

PreprocessSummary run_preprocess(const PreprocessOptions& o) {
  validate(o);
  const auto start = std::chrono::steady_clock::now();
  OutputDirectory out(o.output, o.overwrite);  // locked, stale temporary directories gone, ours made
  ThreadPool pool(o.threads);
  Corpus corpus = read_corpus(o, pool);
  Tokenizer tokenizer = assign_splits_and_train_tokenizer(corpus, o);
  warn_about_unknown_tokens(corpus, tokenizer);

  // 3. Everything goes into the temporary directory; swapped into place only when complete.
  const fs::path& tmp = out.temp_path();
  write_file_atomic(tmp / "tokenizer.model", tokenizer.model_bytes());
  const ShardsWritten shards = write_shards(plan_shards(corpus.cands, o.shards), corpus, tokenizer, o, pool, tmp);
  if (shards.count[0] == 0)
    throw DataError("no training utterances left: every row of the train split was rejected while decoding (" +
                    count_by_kind(corpus.rejects) + "); first " + first_rejects(corpus.rejects, 3));
  write_rejects(tmp / "rejects.tsv", corpus.rejects);
  write_manifest(tmp, o, corpus, tokenizer, shards);
  stop_if_requested(o);
  out.install();
  warn_about_rejects(corpus.rejects, out.final_path());
  return summarize(corpus, shards, tokenizer, start);
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
