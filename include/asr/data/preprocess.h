// The asr_preprocess pipeline: LJSpeech-1.1 directory -> sharded HDF5 at a
// fixed sample rate, a sentencepiece tokenizer, manifest.json and rejects.tsv.
// docs/data-format.md describes the output.
#pragma once
#include <atomic>
#include <cstddef>
#include <string>

#include "asr/core/error.h"

namespace asr {

// The allowed values of one numeric option, shared by asr_preprocess's flag
// checks and validate(), so both say the same thing.
struct OptionRange {
  const char* flag;  // "--val"
  double lo, hi;     // inclusive
  bool integer;
  const char* what;  // "validation utterances", for messages
};

namespace preprocess_ranges {
inline constexpr OptionRange kSampleRate{"--sample-rate", 1000, 192000, true, "the stored sample rate in Hz"};
inline constexpr OptionRange kShards{"--shards", 1, 10000, true, "shards per split"};
// At least one character, the word boundary, <blank> and <unk>; the real
// lower bound depends on the text (train_tokenizer checks it).
inline constexpr OptionRange kVocabSize{"--vocab-size", 4, 1000000, true, "tokenizer pieces"};
inline constexpr OptionRange kVal{"--val", 0, 1e8, true, "validation utterances"};
inline constexpr OptionRange kTest{"--test", 0, 1e8, true, "test utterances"};
inline constexpr OptionRange kThreads{"--threads", 0, 1024, true, "decoding threads, 0 for all cores"};
inline constexpr OptionRange kMinDuration{"--min-duration", 0, 3600, false, "seconds"};
inline constexpr OptionRange kMaxDuration{"--max-duration", 0.01, 3600, false, "seconds"};
}  // namespace preprocess_ranges

// Why `text` is not an allowed value of `range` ("" when it is): not a
// number, not an integer, not finite, or outside [lo, hi]. The message does
// not name the flag (CLI11 puts it in front).
std::string option_value_problem(const OptionRange& range, const std::string& text);

struct PreprocessOptions {
  std::string input;
  std::string output;
  int sample_rate = 16000;
  size_t shards = 4;  // per split, fewer when a split has fewer utterances
  int vocab_size = 256;
  std::string tokenizer = "bpe";  // bpe, unigram, char
  size_t val = 250;
  size_t test = 250;
  size_t threads = 0;          // 0: all cores
  double max_duration = 30.0;  // seconds; longer clips are rejected
  double min_duration = 0.1;   // seconds; shorter clips give no model frame and are rejected
  bool strict = false;         // any rejection fails the run, no output
  bool overwrite = false;      // replace an existing output directory
  // Raised (to the signal's number) by asr_preprocess's SIGINT/SIGTERM/SIGHUP
  // handlers; the pipeline checks it between utterances and stages.
  const std::atomic<int>* stop_signal = nullptr;
};

// Thrown when stop_signal was raised: the run stops at its next check, its
// temporary directory is removed, and the exit status is 128 + the signal
// (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as for a process the signal killed.
class PreprocessInterrupted : public Error {
 public:
  PreprocessInterrupted(int signal, const std::string& output);
  ExitCode exit_code() const override { return static_cast<ExitCode>(128 + signal_); }

 private:
  int signal_;
};

struct PreprocessSummary {
  size_t metadata_rows = 0;  // rows seen (accepted + rejected)
  size_t accepted = 0;
  size_t rejected = 0;
  size_t train = 0, val = 0, test = 0;
  double audio_seconds = 0;  // of accepted audio, at the source
  double wall_seconds = 0;
  int vocab_size = 0;
  double realtime_factor() const { return wall_seconds > 0 ? audio_seconds / wall_seconds : 0; }
};

// Checks options before any work; throws asr::Error naming the bad one and
// its allowed range.
void validate(const PreprocessOptions& options);

// Runs everything. Throws asr::Error on unusable input or options, on any
// rejection under `strict`, when another run holds the output, on I/O
// failures (DataError) and PreprocessInterrupted on a stop signal; in every
// such case the output directory is left as it was (nothing half-written) and
// the temporary directory is removed.
PreprocessSummary run_preprocess(const PreprocessOptions& options);

// One line for the end of a run: counts, hours, wall time, x realtime.
std::string describe(const PreprocessSummary& summary);

}  // namespace asr
