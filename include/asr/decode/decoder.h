// The decoder: a checkpoint, audio in, transcripts out. Inputs are decoded
// in padded batches of similar length, batches spread over worker threads
// (each running the model single-threaded, which uses cores better than one
// multi-threaded forward for models this size). Torch stays behind the
// implementation; callers need only this header.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "asr/decode/prefix_beam_search.h"

namespace asr {

class Tokenizer;
struct ModelConfig;

// Ranges of DecodeOptions (docs/decoding.md, "Option ranges"). The beam cap
// bounds the worst case, a flat posterior (an untrained or very unsure
// model) where every token survives pruning: each frame then extends every
// prefix by up to `beam` tokens, so time grows with the square of the width.
// bench/beam_search_cost.cpp, 256 tokens, one thread: beam 256 runs at RTF
// 0.10 (0.95 with a character LM) in ~25-40 MB; beam 512 at RTF 0.26 (2.3
// with the LM).
inline constexpr int kMaxBeam = 256;
inline constexpr double kMaxPrune = 1000;         // nats; float32 log-probs span ~104, so this is "no pruning"
inline constexpr double kMaxLmWeight = 10;
inline constexpr double kMaxLmBonus = 10;         // per character, either sign
inline constexpr int kMaxThreads = 256;
inline constexpr int kMaxBatch = 1024;
inline constexpr double kMinChunkSeconds = 1;     // a few frames of context at least
inline constexpr double kMaxChunkSeconds = 120;   // attention grows with the square of the length

struct DecodeOptions {
  int beam = 1;                 // 1 = greedy (best path); > 1 = prefix beam search of this width
  int nbest = 1;                // hypotheses kept per input with beam search
  double prune = 10.0;          // beam search: skip tokens this many nats below the frame's best
  LmFusion fusion;              // optional character LM (beam search only)
  int threads = 1;              // worker threads, each with single-threaded torch ops
  int batch = 8;                // inputs per forward pass
  double chunk_seconds = 20.0;  // longer inputs are decoded in overlapping chunks; 0 = never
  double chunk_overlap_seconds = 2.0;
};

struct Hypothesis {
  std::string text;
  double score = 0, acoustic = 0, lm = 0;  // see BeamHypothesis
};

struct Transcript {
  std::string id;
  std::string text;
  double score = 0;               // greedy: sum of the best log-prob per frame; beam: the best's ranking score
  std::vector<Hypothesis> nbest;  // beam search only, best first
  double audio_seconds = 0;
  int chunks = 0;                 // pieces the input was cut into (1 = not chunked)
  std::string error;              // why the input could not be decoded; empty on success

  bool ok() const { return error.empty(); }
};

// One thing to decode. `load` returns mono audio at the decoder's sample
// rate and may throw (asr::Error for a bad file); `seconds` is a length
// estimate used only to batch inputs of similar length together.
struct DecodeInput {
  std::string id;
  double seconds = 0;
  std::function<std::vector<float>()> load;
};

class Decoder {
 public:
  // Throws asr::Error naming the file for any unusable checkpoint. `device`:
  // "cpu", "cuda" or "cuda:N" (batches then run on that GPU, one worker
  // feeding it); a clear asr::Error when the build or the machine has no GPU.
  static Decoder from_checkpoint(const std::string& path, const std::string& device = "cpu");

  Decoder(Decoder&&) noexcept;
  Decoder& operator=(Decoder&&) noexcept;
  ~Decoder();

  int sample_rate() const;
  const Tokenizer& tokenizer() const;
  const ModelConfig& model_config() const;
  int64_t samples_per_frame() const;  // the model's hop: chunks are cut on these boundaries
  std::string device() const;
  int64_t step() const;  // training step of the checkpoint, -1 if unknown
  int64_t num_parameters() const;

  // Decodes every input, in any order across threads; returns transcripts in
  // input order. A failing input (unreadable, empty, not audio) gets
  // Transcript::error and the rest are still decoded. `on_done` (optional)
  // is called once per input as it finishes, never concurrently.
  // Throws asr::Error only for bad options.
  std::vector<Transcript> decode(const std::vector<DecodeInput>& inputs, const DecodeOptions& options,
                                 const std::function<void(const Transcript&)>& on_done = {}) const;

  // One waveform at sample_rate() (errors propagate as exceptions).
  Transcript decode_audio(const std::vector<float>& audio, const DecodeOptions& options,
                          const std::string& id = "audio") const;

  struct Impl;  // opaque

 private:
  explicit Decoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks every option against its range (above); non-finite numbers are
// refused. Throws asr::Error naming the flag, the value and the range.
void validate_decode_options(const DecodeOptions& options);

}  // namespace asr
