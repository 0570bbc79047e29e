#include "asr/train/batch_sampler.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "asr/core/error.h"

namespace asr {
namespace {

// Our own Fisher-Yates over mt19937_64 (std::shuffle's algorithm is
// unspecified) keeps batches identical across standard libraries.
template <class Vec>
void deterministic_shuffle(Vec& v, std::mt19937_64& rng, size_t begin = 0, size_t end = SIZE_MAX) {
  end = std::min(end, v.size());
  for (size_t i = end - begin; i > 1; --i) std::swap(v[begin + i - 1], v[begin + rng() % i]);
}

}  // namespace

BatchSampler::BatchSampler(std::vector<int64_t> num_samples, int sample_rate, BatchSamplerOptions options)
    : num_samples_(std::move(num_samples)), sample_rate_(sample_rate), options_(options) {
  if (num_samples_.empty()) throw Error("the training split has no utterances: nothing to sample batches from");
  if (options_.batch_seconds <= 0) throw Error("train.batch_seconds must be positive");
  if (options_.buckets < 1) options_.buckets = 1;
  if (static_cast<int64_t>(num_samples_.size()) < options_.min_batch_utterances)
    throw Error("the training split has " + std::to_string(num_samples_.size()) +
                " utterances, fewer than the " + std::to_string(options_.min_batch_utterances) +
                " every batch needs (one per rank): use fewer ranks or more data");
  if (options_.max_batch_utterances > 0 && options_.max_batch_utterances < options_.min_batch_utterances)
    throw Error("train.max_batch_utterances (" + std::to_string(options_.max_batch_utterances) +
                ") is below the number of ranks (" + std::to_string(options_.min_batch_utterances) +
                "): every rank needs at least one utterance per batch");
}

std::vector<std::vector<int64_t>> BatchSampler::epoch_batches(int64_t epoch) const {
  std::mt19937_64 rng(options_.seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(epoch) + 1);
  auto by_length = [&](int64_t a, int64_t b) { return num_samples_[a] < num_samples_[b]; };

  std::vector<int64_t> order(num_samples_.size());
  std::iota(order.begin(), order.end(), 0);
  if (options_.shuffle) deterministic_shuffle(order, rng);
  // Sort by length, cut into buckets and shuffle within each bucket, then
  // re-sort: batches hold utterances of similar length, differently every epoch.
  std::stable_sort(order.begin(), order.end(), by_length);
  size_t per_bucket = (order.size() + options_.buckets - 1) / options_.buckets;
  if (options_.shuffle) {
    for (size_t start = 0; start < order.size(); start += per_bucket) {
      size_t end = std::min(order.size(), start + per_bucket);
      deterministic_shuffle(order, rng, start, end);
      std::stable_sort(order.begin() + start, order.begin() + end, by_length);
    }
  }

  // Cost of a padded batch = count x longest: what memory and time scale with.
  const double budget = options_.batch_seconds * sample_rate_;
  std::vector<std::vector<int64_t>> batches;
  std::vector<int64_t> current;
  int64_t longest = 0;
  for (int64_t idx : order) {
    int64_t n = num_samples_[idx];
    int64_t new_longest = std::max(longest, n);
    // A batch closes on its budget only once it has min_batch_utterances:
    // every rank must get at least one utterance of every global batch.
    bool over_budget = static_cast<int>(current.size()) >= options_.min_batch_utterances &&
                       double(new_longest) * double(current.size() + 1) > budget;
    bool over_count = options_.max_batch_utterances > 0 &&
                      static_cast<int>(current.size()) >= options_.max_batch_utterances;
    if (over_budget || over_count) {
      batches.push_back(std::move(current));
      current.clear();
      new_longest = n;
    }
    current.push_back(idx);
    longest = new_longest;
  }
  if (!current.empty()) batches.push_back(std::move(current));

  // A batch that is too small (the tail of the order) joins its neighbour.
  while (batches.size() > 1 && static_cast<int>(batches.back().size()) < options_.min_batch_utterances) {
    auto tail = std::move(batches.back());
    batches.pop_back();
    batches.back().insert(batches.back().end(), tail.begin(), tail.end());
  }
  for (auto& b : batches)
    std::sort(b.begin(), b.end(), [&](int64_t x, int64_t y) {
      return num_samples_[x] != num_samples_[y] ? num_samples_[x] > num_samples_[y] : x < y;
    });
  if (options_.shuffle) deterministic_shuffle(batches, rng);
  return batches;
}

std::vector<int64_t> BatchSampler::shard_for_rank(const std::vector<int64_t>& global_batch, int rank,
                                                  int world_size) {
  std::vector<int64_t> mine;
  for (size_t i = static_cast<size_t>(rank); i < global_batch.size(); i += static_cast<size_t>(world_size))
    mine.push_back(global_batch[i]);
  return mine;
}

}  // namespace asr
