// A checkpoint file turned into a ready-to-run model: the architecture from
// the [model] section of its "config" section, the weights from "model",
// the tokenizer from "tokenizer". Everything the decoder needs comes from the
// one file; nothing here knows how it was trained.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "asr/model/asr_model.h"
#include "asr/model/model_config.h"
#include "asr/text/tokenizer.h"

namespace asr {

struct CheckpointModel {
  model::AsrModel model{nullptr};  // in eval mode, on the CPU
  std::unique_ptr<Tokenizer> tokenizer;
  ModelConfig model_config;        // the architecture, vocabulary size included
  int64_t step = -1;               // optimizer steps taken; -1 when the checkpoint does not say
};

// Throws asr::Error naming `path` and the fix for every way the file can be
// unusable: missing, a directory, not a checkpoint, another format version,
// truncated, corrupt, missing sections, or weights that do not fit the
// config. Torch's own exceptions never escape.
CheckpointModel load_checkpoint_model(const std::string& path);

}  // namespace asr
