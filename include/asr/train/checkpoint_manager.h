// The checkpoints of a run directory: periodic files with retention, the
// best one by a metric, and the newest one that still verifies (for resume).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asr/core/checkpoint_file.h"

namespace asr {

// Checkpoints of a run: <run_dir>/checkpoints/step-000001000.ckpt, the last
// `keep_last` of them (0 = all), plus the best by a metric where lower is
// better (validation CER), hard-linked as checkpoints/best.ckpt and recorded
// in checkpoints/best.json so it survives restarts.
class CheckpointManager {
 public:
  CheckpointManager(std::filesystem::path run_dir, int keep_last, bool keep_best);

  // Writes the step's checkpoint; when `metric` is given and beats the best so
  // far, it becomes best.ckpt. Then removes checkpoints beyond retention.
  std::filesystem::path save(int64_t step, const CheckpointData& data, std::optional<double> metric = std::nullopt);

  std::filesystem::path dir() const { return dir_; }
  std::optional<double> best_metric() const { return best_metric_; }
  std::optional<int64_t> best_step() const { return best_step_; }

  static std::filesystem::path path_for(const std::filesystem::path& run_dir, int64_t step);

 private:
  void prune();

  std::filesystem::path dir_;
  int keep_last_;
  bool keep_best_;
  std::optional<double> best_metric_;
  std::optional<int64_t> best_step_;
};

// step-*.ckpt files of a run, oldest first, as (step, path).
std::vector<std::pair<int64_t, std::filesystem::path>> list_checkpoints(const std::filesystem::path& run_dir);

// The newest checkpoint of the run that loads and verifies, skipping (with a
// spdlog warning naming the file and the problem) any corrupt newer ones.
std::optional<std::filesystem::path> find_latest_valid(const std::filesystem::path& run_dir);

// What `--resume auto` continues from.
struct ResumeChoice {
  std::optional<std::filesystem::path> path;  // none: a fresh run
  std::string note;                           // why, for the log
};

// The newest step checkpoint that verifies; when every step checkpoint is
// unreadable, best.ckpt if it verifies (the note says so). When the run has
// checkpoints but none is usable, an asr::DataError lists each file and its
// problem, unless `allow_fresh_start`, which starts from step 0 (the note
// says what was ignored). No checkpoints at all: a fresh run.
ResumeChoice choose_resume_checkpoint(const std::filesystem::path& run_dir, bool allow_fresh_start);

}  // namespace asr
