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
namespace dist {
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

struct EvalOptions {
  double batch_seconds = 120.0;   // padded audio seconds per batch
  int64_t max_utterances = 0;     // 0 = all
  int samples = 4;
};

EvalResult evaluate_split(model::AsrModelImpl& model, const Dataset& dataset, const Tokenizer& tokenizer,
                          dist::Communicator& comm, const EvalOptions& options);

}  // namespace asr
