#include "asr/train/run_setup.h"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/distributed/communicator.h"
#include "asr/distributed/device.h"
#include "asr/model/precision.h"

namespace asr {
namespace fs = std::filesystem;

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

void prepare_run(const TrainConfig& config, distributed::Communicator& comm, c10::Device device) {
  const fs::path run_dir(config.run_dir);
  if (comm.is_root()) {
    std::error_code ec;
    fs::create_directories(run_dir / "logs", ec);
    if (ec) throw Error("cannot create the run directory " + run_dir.string() + ": " + ec.message());
    write_file_atomic(run_dir / "config.toml", config_to_toml(config));
  }
  comm.barrier();
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
}

}  // namespace asr
