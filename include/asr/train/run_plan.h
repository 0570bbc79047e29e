// What a run will do at a given world size, worked out in one process before
// any rank starts (asr_ddp --plan --world-size N): steps, per-rank batches,
// padding, CTC feasibility, a memory estimate, and every problem that would
// otherwise surface on hundreds of GPUs.
#pragma once
#include <string>
#include <vector>

#include "asr/train/batch_sampler.h"
#include "asr/train/config.h"

namespace asr {

struct RunPlan {
  std::string report;                 // the lines printed by --plan
  std::vector<std::string> problems;  // each a sentence naming the fix; empty when the run can start
};

// Reads the config's training split (no audio) and plans epoch 0.
RunPlan plan_run(const TrainConfig& config, int world_size);

// The sampler settings the trainer uses for `world_size` ranks: every rank
// needs an utterance of every global batch, so at least world_size of them.
BatchSamplerOptions batch_sampler_options(const TrainConfig& config, int world_size);

}  // namespace asr
