// Where a run reports: metrics.jsonl and TensorBoard (rank 0 only), the
// console progress line (rank 0), and every rank's own log file.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asr {

struct EvalResult;

class RunLogger {
 public:
  // `run_dir` exists; `total_steps` sizes the progress bar / ETA.
  RunLogger(const std::string& run_dir, bool is_root, bool tensorboard, const std::string& progress_mode,
            int64_t total_steps, int64_t start_step);
  ~RunLogger();

  // A training record: must hold "step"; other fields as in docs/config.md.
  void log_train(const nlohmann::json& record, const std::vector<double>& perplexity);
  void log_eval(int64_t step, const std::string& split, const EvalResult& result);
  // A StragglerReport::record: metrics.jsonl, and per-rank TensorBoard scalars.
  void log_stragglers(const nlohmann::json& record);
  // Advances the live progress line (every step, rank 0).
  void progress(int64_t step, const std::string& summary);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace asr
