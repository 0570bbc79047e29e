#include "asr/core/suggest.h"

#include <algorithm>

namespace asr {

int64_t levenshtein(std::string_view a, std::string_view b) {
  // Two rows of the dynamic-programming table are enough for the distance.
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1), prev[j] + 1, cur[j - 1] + 1});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(std::string_view name, const std::vector<std::string>& candidates, int64_t max_distance) {
  std::string best;
  int64_t best_distance = max_distance + 1;
  for (const auto& c : candidates) {
    const int64_t d = levenshtein(name, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  return best;
}

}  // namespace asr
