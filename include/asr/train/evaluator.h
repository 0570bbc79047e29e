// Distributed evaluation: greedy CTC decoding of a split, CER and WER.
//
// The split is cut into batches exactly as one process would cut it, and
// whole batches are dealt to ranks round-robin; the edit-distance counts are
// all-reduced. Each utterance is therefore decoded in the same padded batch
// whatever the world size, and CER/WER are identical for 1, 2 or 3 ranks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "asr/text/edit_distance.h"

namespace asr {

class Dataset;
class Tokenizer;
namespace distributed {
class Communicator;
}
namespace model {
class AsrModelImpl;
}

struct EvalSample {
  std::string id, reference, hypothesis;
};

struct EvalResult {
  ErrorCounts chars, words;
  int64_t utterances = 0;
  double audio_seconds = 0;
  double wall_seconds = 0;
  std::vector<EvalSample> samples;  // the first few utterances of the split (from rank 0)

  double cer() const { return chars.rate(); }
  double wer() const { return words.rate(); }
};

// The [eval] section of the config.
struct EvalConfig {
  int64_t every = 1000;        // steps between evaluations (and one at the end); 0 = only at the end
  int64_t max_utterances = 0;  // 0 = the whole split
  int samples = 4;             // sample predictions written to the log and TensorBoard
};

// `batch_seconds`: padded audio seconds per batch (the training batch size).
EvalResult evaluate_split(model::AsrModelImpl& model, const Dataset& dataset, const Tokenizer& tokenizer,
                          distributed::Communicator& comm, const EvalConfig& options, double batch_seconds);

}  // namespace asr
