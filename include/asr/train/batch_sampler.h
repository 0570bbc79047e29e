// Deterministic global batches, independent of the world size.
//
// Every rank builds the same list of global batches from (seed, epoch) and the
// utterance lengths, then takes its own share of each. So every rank takes the
// same number of steps per epoch (nobody runs out of data and leaves the others
// waiting in a collective), and N ranks see exactly the utterances one rank
// would see in the same step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace asr {

struct BatchSamplerOptions {
  double batch_seconds = 120.0;    // total audio seconds in a global batch
  int max_batch_utterances = 0;    // 0 = no limit
  int min_batch_utterances = 1;    // batches below this are merged into a neighbour
  int buckets = 8;                 // length buckets: utterances of similar length batch together
  uint64_t seed = 1;
  bool shuffle = true;
};

// Position of the sampler: the checkpoint stores it so resume continues exactly.
struct SamplerPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // index of the next global batch within the epoch
};

class BatchSampler {
 public:
  // `num_samples[i]` is utterance i's length in samples at `sample_rate`.
  BatchSampler(std::vector<int64_t> num_samples, int sample_rate, BatchSamplerOptions options);

  // The global batches of an epoch: lists of utterance indices, each list
  // sorted by decreasing length (little padding once split across ranks).
  std::vector<std::vector<int64_t>> epoch_batches(int64_t epoch) const;

  // This rank's share of a global batch: every world_size-th utterance of the
  // length-sorted list, so shares have similar total length. A rank whose
  // share would be empty gets none; the trainer still takes part in every
  // collective for that step.
  static std::vector<int64_t> shard_for_rank(const std::vector<int64_t>& global_batch, int rank, int world_size);

  size_t num_utterances() const { return num_samples_.size(); }
  const BatchSamplerOptions& options() const { return options_; }

 private:
  std::vector<int64_t> num_samples_;
  int sample_rate_;
  BatchSamplerOptions options_;
};

}  // namespace asr
