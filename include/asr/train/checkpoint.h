// Single-file checkpoints: named byte sections behind a magic, a format
// version and a CRC-32C over everything (format in docs/checkpoint-format.md).
// The container knows nothing about the trainer; by convention the sections
// are "model", "optimizer", "state" (JSON), "config" (TOML), "tokenizer"
// (sentencepiece model bytes) and "rng.*". Torch (de)serialization helpers
// live in checkpoint_torch.h.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace asr {

constexpr uint32_t kCheckpointFormatVersion = 1;

struct CheckpointData {
  std::map<std::string, std::string> sections;

  bool has(const std::string& name) const { return sections.count(name) != 0; }
  // The section's bytes; throws asr::Error naming the section when absent.
  const std::string& at(const std::string& name) const;
};

std::string encode_checkpoint(const CheckpointData& data);
// Throws asr::Error naming `source` and what is wrong (not a checkpoint,
// other format version, truncated, corrupt).
CheckpointData decode_checkpoint(const std::string& bytes, const std::string& source);

// Atomic: the file at `path` is the old one or the new one, never partial.
void save_checkpoint(const std::filesystem::path& path, const CheckpointData& data);
CheckpointData load_checkpoint(const std::filesystem::path& path);

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

}  // namespace asr
