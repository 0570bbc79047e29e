#include "asr/data/split.h"

#include <algorithm>
#include <numeric>

#include "asr/core/error.h"

namespace asr {

std::vector<std::string> assign_splits(size_t n, size_t val, size_t test) {
  if (val >= n || test >= n - val)  // val + test >= n, without overflow
    throw Error("--val " + std::to_string(val) + " plus --test " + std::to_string(test) + " leaves no training data (" +
                std::to_string(n) + " usable utterances); lower them");
  std::vector<std::string> out(n, "train");
  for (size_t i = n - test - val; i < n - test; ++i) out[i] = "val";
  for (size_t i = n - test; i < n; ++i) out[i] = "test";
  return out;
}

std::vector<std::vector<size_t>> balance_shards(const std::vector<double>& durations, size_t shards) {
  const size_t n = durations.size();
  size_t bins = std::min(std::max<size_t>(shards, 1), n);
  std::vector<std::vector<size_t>> out(bins);
  if (n == 0) return out;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Longest first, ties by index, so the result does not depend on sort stability.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return durations[a] != durations[b] ? durations[a] > durations[b] : a < b;
  });
  std::vector<double> load(bins, 0.0);
  for (size_t idx : order) {
    size_t best = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    out[best].push_back(idx);
    load[best] += durations[idx];
  }
  for (auto& bin : out) std::sort(bin.begin(), bin.end());
  return out;
}

}  // namespace asr
