// Deterministic train/val/test split and duration-balanced sharding.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace asr {

// The ESPnet LJSpeech recipe's split generalised: of `n` utterances in
// metadata order, the last `test` are test, the `val` before them are val,
// the rest train. Returns the split name for each index. Throws asr::Error
// when val + test leaves no training data.
std::vector<std::string> assign_splits(size_t n, size_t val, size_t test);

// Distributes items over at most `shards` bins so that the bins' total
// durations are as equal as a greedy longest-first fill makes them; each
// bin lists item indices in ascending order. Never returns an empty bin.
std::vector<std::vector<size_t>> balance_shards(const std::vector<double>& durations, size_t shards);

}  // namespace asr
