#include "asr/train/straggler_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace asr {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string breakdown(const RankTimes& t) {
  return fmt::format("data wait {:.0f} ms, forward {:.0f} ms, backward {:.0f} ms, optimizer {:.0f} ms",
                     1e3 * t.data_wait, 1e3 * t.forward, 1e3 * t.backward, 1e3 * t.optimizer);
}

}  // namespace

std::pair<int, double> slowest_rank(const std::vector<RankTimes>& ranks) {
  if (ranks.size() < 2) return {-1, 0.0};
  int slowest = 0;
  for (size_t r = 1; r < ranks.size(); ++r)
    if (ranks[r].busy() > ranks[slowest].busy()) slowest = static_cast<int>(r);
  // The median of the OTHER ranks: with two ranks, the median of both would
  // hide half of the difference.
  std::vector<double> others;
  for (size_t r = 0; r < ranks.size(); ++r)
    if (static_cast<int>(r) != slowest) others.push_back(ranks[r].busy());
  const double typical = median(others);
  return {slowest, typical > 0 ? ranks[slowest].busy() / typical - 1.0 : 0.0};
}

std::string StragglerReport::observe(int64_t step, const std::vector<RankTimes>& ranks) {
  const auto [slowest, excess] = slowest_rank(ranks);
  if (slowest < 0 || excess <= threshold_) {
    streak_rank_ = -1, streak_ = 0;
    return "";
  }
  streak_ = slowest == streak_rank_ ? streak_ + 1 : 1;
  streak_rank_ = slowest;
  if (streak_ < windows_ || (streak_ - windows_) % 10 != 0) return "";
  const RankTimes& t = ranks[static_cast<size_t>(slowest)];
  return fmt::format(
      "straggler: rank {} is {:.0f}% slower than the median of the other ranks for {} log windows (step {}): "
      "{:.0f} ms of its own per step ({}); the others wait for it in the gradient all-reduce",
      slowest, 100 * excess, streak_, step, 1e3 * t.busy(), breakdown(t));
}

nlohmann::json StragglerReport::record(int64_t step, const std::vector<RankTimes>& ranks) {
  nlohmann::json rec = {{"kind", "stragglers"}, {"step", step}};
  const auto [slowest, excess] = slowest_rank(ranks);
  rec["slowest"] = slowest;
  rec["slower_than_median"] = excess;
  auto column = [&](const char* name, double RankTimes::*field) {
    std::vector<double> ms;
    for (const auto& t : ranks) ms.push_back(1e3 * (t.*field));
    rec[std::string(name) + "_ms"] = ms;
  };
  column("data_wait", &RankTimes::data_wait);
  column("forward", &RankTimes::forward);
  column("backward", &RankTimes::backward);
  column("allreduce_wait", &RankTimes::allreduce_wait);
  column("optimizer", &RankTimes::optimizer);
  return rec;
}

}  // namespace asr
