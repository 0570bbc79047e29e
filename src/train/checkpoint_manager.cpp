#include "asr/train/checkpoint_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& run_dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  fs::path dir = run_dir / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  static const std::regex pattern("step-([0-9]+)\\.ckpt");
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, pattern))
      out.emplace_back(std::stoll(m[1].str()), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<fs::path> find_latest_valid(const fs::path& run_dir) {
  auto all = list_checkpoints(run_dir);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    try {
      load_checkpoint(it->second);
      return it->second;
    } catch (const Error& e) {
      spdlog::warn("skipping checkpoint: {}", e.what());
    }
  }
  return std::nullopt;
}

namespace {

// "" when `path` loads and verifies, else the problem.
std::string checkpoint_problem(const fs::path& path) {
  try {
    load_checkpoint(path);
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace

ResumeChoice choose_resume_checkpoint(const fs::path& run_dir, bool allow_fresh_start) {
  auto all = list_checkpoints(run_dir);
  const fs::path best = run_dir / "checkpoints" / "best.ckpt";
  std::error_code ec;
  if (fs::exists(best, ec)) all.insert(all.begin(), {-1, best});  // tried last
  if (all.empty()) return {std::nullopt, "no checkpoint in " + (run_dir / "checkpoints").string() + ": a fresh run"};
  std::string problems;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string problem = checkpoint_problem(it->second);
    if (problem.empty()) {
      if (problems.empty()) return {it->second, "newest valid checkpoint"};
      return {it->second, "every newer checkpoint is unreadable, so resuming from " + it->second.filename().string() +
                              ":" + problems};
    }
    problems += "\n  " + problem;
  }
  if (allow_fresh_start)
    return {std::nullopt, "--allow-fresh-start: starting from step 0 although the run has checkpoints, none usable:" +
                              problems};
  throw DataError("--resume auto: no usable checkpoint in " + (run_dir / "checkpoints").string() +
                  ", although the run has some:" + problems +
                  "\nResume from a good copy with --resume PATH, or pass --allow-fresh-start to train from step 0 "
                  "(later checkpoints of the new run will replace these files)");
}

CheckpointManager::CheckpointManager(fs::path run_dir, int keep_last, bool keep_best)
    : dir_(run_dir / "checkpoints"), keep_last_(keep_last), keep_best_(keep_best) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error("cannot create checkpoint directory " + dir_.string() + ": " + ec.message());
  // Temporary files of an interrupted save are never valid; clear them.
  for (const auto& entry : fs::directory_iterator(dir_)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 1 && name[0] == '.' && name.find(".tmp.") != std::string::npos) fs::remove(entry.path(), ec);
  }
  fs::path best_json = dir_ / "best.json";
  if (keep_best_ && fs::exists(best_json, ec)) {
    try {
      auto j = nlohmann::json::parse(read_file(best_json));
      best_metric_ = j.at("metric").get<double>();
      best_step_ = j.at("step").get<int64_t>();
    } catch (const std::exception& e) {
      spdlog::warn("ignoring unreadable {}: {}", best_json.string(), e.what());
    }
  }
}

fs::path CheckpointManager::path_for(const fs::path& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step-%09lld.ckpt", static_cast<long long>(step));
  return run_dir / "checkpoints" / name;
}

fs::path CheckpointManager::save(int64_t step, const CheckpointData& data, std::optional<double> metric) {
  fs::path path = dir_ / path_for("", step).filename();
  save_checkpoint(path, data);
  if (keep_best_ && metric && (!best_metric_ || *metric < *best_metric_)) {
    // A hard link costs no space while the step file exists and keeps the
    // best alive after retention deletes it; copy where links are refused.
    fs::path best = dir_ / "best.ckpt", tmp = temp_path_for(best);
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_hard_link(path, tmp, ec);
    if (ec) {
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing);
      fsync_path(tmp);
    }
    rename_durable(tmp, best);
    best_metric_ = *metric;
    best_step_ = step;
    nlohmann::json j = {{"step", step}, {"metric", *metric}, {"file", path.filename().string()}};
    write_file_atomic(dir_ / "best.json", j.dump() + "\n");
  }
  prune();
  return path;
}

void CheckpointManager::prune() {
  if (keep_last_ <= 0) return;
  auto all = list_checkpoints(dir_.parent_path());
  if (all.size() <= static_cast<size_t>(keep_last_)) return;
  for (size_t i = 0; i + keep_last_ < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i].second, ec);
    if (ec) spdlog::warn("cannot remove old checkpoint {}: {}", all[i].second.string(), ec.message());
  }
}

}  // namespace asr
