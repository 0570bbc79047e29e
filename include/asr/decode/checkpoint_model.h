// A checkpoint file turned into a ready-to-run model: the architecture from
// its "config" section, the weights from "model", the tokenizer from
// "tokenizer". Everything the decoder needs comes from the one file.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "asr/model/asr_model.h"
#include "asr/text/tokenizer.h"
#include "asr/train/config.h"

namespace asr {

struct CheckpointModel {
  model::AsrModel model{nullptr};     // in eval mode
  std::unique_ptr<Tokenizer> tokenizer;
  TrainConfig config;                 // the training run's effective config
  int64_t step = -1;                  // optimizer steps taken; -1 when the checkpoint does not say
};

// Throws asr::Error naming `path` and the fix for every way the file can be
// unusable: missing, a directory, not a checkpoint, another format version,
// truncated, corrupt, missing sections, or weights that do not fit the
// config. Torch's own exceptions never escape.
CheckpointModel load_checkpoint_model(const std::string& path);

// Input samples per output frame (the frontend's total downsampling).
int64_t samples_per_frame(const ModelConfig& config);

}  // namespace asr
