#include "asr/train/run_setup.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/distributed/communicator.h"

namespace asr {
namespace fs = std::filesystem;

void prepare_run(const TrainConfig& config, distributed::Communicator& comm) {
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
  if (comm.is_root())
    spdlog::info("run directory {}: {} rank(s), backend {}", run_dir.string(), comm.world_size(), comm.backend_name());
}

}  // namespace asr
