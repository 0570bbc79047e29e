// The asr_preprocess pipeline: LJSpeech-1.1 directory -> sharded HDF5 at a
// fixed sample rate, a sentencepiece tokenizer, manifest.json and rejects.tsv.
// docs/data-format.md describes the output.
#pragma once
#include <cstddef>
#include <string>

namespace asr {

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

// Checks options before any work; throws asr::Error naming the bad one.
void validate(const PreprocessOptions& options);

// Runs everything. Throws asr::Error on unusable input or options, on any
// rejection under `strict`, and on I/O failures; in every such case the
// output directory is left as it was (nothing half-written).
PreprocessSummary run_preprocess(const PreprocessOptions& options);

// One line for the end of a run: counts, hours, wall time, x realtime.
std::string describe(const PreprocessSummary& summary);

}  // namespace asr
