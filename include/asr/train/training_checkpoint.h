// What a checkpoint restores beyond the tensors: the step, the sampler
// position and the counters. And the mapping of a training run's pieces onto
// checkpoint sections (docs/checkpoint-format.md).
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "asr/train/batch_sampler.h"
#include "asr/core/checkpoint_file.h"
#include "asr/train/config.h"

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace asr {

struct TrainProgress {
  int64_t step = 0;               // optimizer steps taken
  SamplerPosition position;       // next global batch
  std::optional<double> best_cer;
  int64_t skipped_steps = 0;      // steps every rank skipped (non-finite values or out of memory)
  int64_t oom_skipped_steps = 0;  // of those, steps some rank ran out of memory in
  int64_t last_eval_step = -1;    // not checkpointed: bookkeeping of this process
  int64_t last_checkpoint_step = -1;
};

// Sections: "model", "optimizer", "state" (JSON), "config" (TOML), "tokenizer", "rng".
CheckpointData make_checkpoint(const TrainProgress& progress, const TrainConfig& config,
                               const std::string& tokenizer_bytes, torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer);

// Loads model and optimizer state from decoded checkpoint bytes; `source`
// names the file in errors. Throws asr::Error when the checkpoint's model
// architecture differs from `config`'s.
TrainProgress restore_checkpoint(const CheckpointData& data, const std::string& source, const TrainConfig& config,
                                 torch::nn::Module& model, torch::optim::Optimizer& optimizer);

}  // namespace asr
