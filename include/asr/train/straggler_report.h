// Which rank holds the others back. Every log window each rank measures where
// its steps went (host clock); one all-gather brings the figures to rank 0,
// which writes them to metrics.jsonl and names a rank that stays slow.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace asr {

// One rank's mean seconds per step over a log window.
struct RankTimes {
  double data_wait = 0;       // waiting for the next batch
  double forward = 0;
  double backward = 0;        // until the last gradient is ready
  double allreduce_wait = 0;  // waiting for the gradient all-reduce: time spent on the others
  double optimizer = 0;       // step decision, clipping, update

  // Time of its own: what makes the others wait when it is larger than theirs.
  double busy() const { return data_wait + forward + backward + optimizer; }
};

class StragglerReport {
 public:
  // A rank is reported when its busy time exceeds the median of the other
  // ranks' by more than `threshold` (0.15 = 15%) in `windows` log windows
  // in a row.
  explicit StragglerReport(double threshold = 0.15, int windows = 3) : threshold_(threshold), windows_(windows) {}

  // Feeds one window (ranks[r] = rank r). Returns the warning to log, or ""
  // (repeated every 10 windows while the same rank stays slow).
  std::string observe(int64_t step, const std::vector<RankTimes>& ranks);

  // {"kind": "stragglers", "step", "slowest", "slower_than_median", and one
  // array per phase in milliseconds, indexed by rank}.
  static nlohmann::json record(int64_t step, const std::vector<RankTimes>& ranks);

 private:
  double threshold_;
  int windows_;
  int streak_rank_ = -1;
  int streak_ = 0;
};

// The slowest rank by busy time and how much slower it is than the median of
// the others (0.2 = 20% slower); {-1, 0} for fewer than two ranks.
std::pair<int, double> slowest_rank(const std::vector<RankTimes>& ranks);

}  // namespace asr
