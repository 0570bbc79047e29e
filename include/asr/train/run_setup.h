// The glue between a loaded config and a running rank: the run directory,
// the effective config copy and the per-rank log files.
#pragma once
#include "asr/distributed/communicator.h"
#include "asr/train/config.h"

namespace asr {

// Creates the run directory (rank 0; the others wait), writes the effective
// config as run_dir/config.toml, and sets up logging: rank 0 to the console
// and every rank to run_dir/logs/rank-N.log.
void prepare_run(const TrainConfig& config, distributed::Communicator& comm);

}  // namespace asr
