// The glue between a loaded config and a running rank: the run directory,
// the effective config copy and the per-rank log files.
#pragma once
#include <c10/core/Device.h>

#include "asr/distributed/communicator.h"
#include "asr/train/config.h"

namespace asr {

class Dataset;

// Refuses a dataset the config is not made for (data.tokenizer), naming
// both tokenizers and the asr_preprocess flag that fixes it.
void check_dataset_matches_config(const TrainConfig& config, const Dataset& data);

// Creates the run directory (rank 0; the others wait), writes the effective
// config as run_dir/config.toml, and sets up logging: rank 0 to the console
// and every rank to run_dir/logs/rank-N.log. The first lines say what the
// rank computes on (GPU name, memory, CUDA, cuDNN and NCCL versions).
void prepare_run(const TrainConfig& config, distributed::Communicator& comm,
                 c10::Device device = c10::Device(c10::kCPU));

// Deterministic kernels (and cuBLAS's workspace setting they need) as the
// config asks: before the process group is built, since NCCL reads them then.
void configure_determinism(const TrainConfig& config);
// That, and TF32 on a GPU.
void apply_numerics(const TrainConfig& config, c10::Device device);

}  // namespace asr
