#include "asr/train/run_setup.h"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/exclusive_lock.h"
#include "asr/core/log.h"
#include "asr/data/dataset.h"
#include "asr/distributed/communicator.h"
#include "asr/distributed/device.h"
#include "asr/distributed/root_decision.h"
#include "asr/model/precision.h"

namespace asr {
namespace fs = std::filesystem;

void check_dataset_matches_config(const TrainConfig& config, const Dataset& data) {
  const std::string& wanted = config.data.tokenizer;
  if (wanted == "any") return;
  const auto& options = data.manifest().value("options", nlohmann::json::object());
  const std::string have = options.value("tokenizer", std::string("unknown"));
  if (have == wanted) return;
  throw Error(fmt::format("data.tokenizer: this config is made for a \"{}\" tokenizer but {} was preprocessed with "
                          "\"{}\"; preprocess the corpus again with asr_preprocess --tokenizer {} (into another "
                          "directory), or set data.tokenizer = \"any\" to train on it anyway",
                          wanted, data.dir(), have, wanted));
}

void configure_determinism(const TrainConfig& config) {
  if (!config.train.deterministic) return;
  // cuBLAS picks reduction orders by workspace; a fixed configuration makes
  // its matmuls repeatable (read when cuBLAS starts, so set it first).
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
}

void apply_numerics(const TrainConfig& config, c10::Device device) {
  configure_determinism(config);
  if (device.is_cuda()) model::set_tf32(config.train.tf32);
}

namespace {

// Held by rank 0 until the process ends: a second asr_ddp in the same run
// directory would interleave checkpoints and metrics with this one's.
std::optional<ExclusiveLock> run_directory_lock;

// Returns the holder of a lock file left by a process that died, or "".
// A process that runs again in the directory it holds (tests train twice in
// one process) keeps its lock; moving to another directory releases it.
std::string lock_run_directory(const fs::path& run_dir) {
  const fs::path lock_file = run_dir / "asr_ddp.lock";
  if (run_directory_lock && run_directory_lock->path() == lock_file) return "";
  run_directory_lock.reset();
  std::string stale;
  run_directory_lock.emplace(
      ExclusiveLock::acquire(lock_file, "run directory " + run_dir.string(), &stale));
  return stale;
}

}  // namespace

void prepare_run(const TrainConfig& config, distributed::Communicator& comm, c10::Device device) {
  const fs::path run_dir(config.run_dir);
  std::string stale_lock;
  distributed::run_on_root_and_share_errors(comm, [&] {
    std::error_code ec;
    fs::create_directories(run_dir / "logs", ec);
    if (ec) throw Error("cannot create the run directory " + run_dir.string() + ": " + ec.message());
    stale_lock = lock_run_directory(run_dir);
    write_file_atomic(run_dir / "config.toml", config_to_toml(config));
  });
  std::string tag = comm.world_size() > 1 ? "rank " + std::to_string(comm.rank()) : "";
  setup_logging(config.log.level, (run_dir / "logs" / ("rank-" + std::to_string(comm.rank()) + ".log")).string(), tag,
                /*console=*/comm.is_root());
  const auto info = distributed::describe_device(device);
  const std::string where =
      device.is_cuda() ? fmt::format("{} {} ({:.1f} GiB), {}", device.str(), info.name,
                                     double(info.memory_bytes) / (1 << 30), info.versions)
                       : "CPU";
  // Every rank's own device into its own log; rank 0's on the console.
  spdlog::info("rank {} computes on {}", comm.rank(), where);
  if (comm.is_root())
    spdlog::info("run directory {}: {} rank(s), backend {}", run_dir.string(), comm.world_size(), comm.backend_name());
  if (!stale_lock.empty())
    spdlog::warn("run directory {}: took over the lock file of a run that is no longer running ({})",
                 run_dir.string(), stale_lock);
}

}  // namespace asr
