#include "asr/train/training_checkpoint.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "asr/core/error.h"
#include "asr/model/module_state.h"
#include "asr/train/optimizer_state.h"

namespace asr {

CheckpointData make_checkpoint(const TrainProgress& progress, const TrainConfig& config,
                               const std::string& tokenizer_bytes, torch::nn::Module& model,
                               torch::optim::Optimizer& optimizer) {
  nlohmann::json state = {
      {"step", progress.step},
      {"epoch", progress.position.epoch},
      {"batch", progress.position.batch},
      {"skipped_steps", progress.skipped_steps},
      {"oom_skipped_steps", progress.oom_skipped_steps},
      {"seed", config.train.seed},
  };
  if (progress.best_cer) state["best_cer"] = *progress.best_cer;
  CheckpointData data;
  data.sections["model"] = module_to_bytes(model);
  data.sections["optimizer"] = optimizer_to_bytes(optimizer);
  data.sections["state"] = state.dump(2);
  data.sections["config"] = config_to_toml(config);
  data.sections["tokenizer"] = tokenizer_bytes;
  // Dropout is reseeded from (seed, step, rank) every step, so this state is
  // not needed for exact resume; it is kept for tools that inspect a run.
  data.sections["rng"] = generator_state_to_bytes(at::detail::getDefaultCPUGenerator());
  return data;
}

TrainProgress restore_checkpoint(const CheckpointData& data, const std::string& source, const TrainConfig& config,
                                 torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  for (const char* name : {"model", "optimizer", "state", "config"})
    if (!data.has(name)) throw DataError(source + ": not a training checkpoint (no '" + std::string(name) + "' section)");
  // The architecture must match; everything else (learning rate, steps...) may change on resume.
  ModelConfig saved = model_config_from_toml(data.at("config"), source + " [config]");
  if (saved.vocab_size == 0) saved.vocab_size = config.model.vocab_size;
  if (model_config_to_toml(saved) != model_config_to_toml(config.model))
    throw Error(source + ": its [model] section differs from the config's; resume with the architecture it was "
                         "trained with (the checkpoint's config is in its 'config' section)");
  module_from_bytes(model, data.at("model"), source);
  optimizer_from_bytes(optimizer, data.at("optimizer"), source);
  TrainProgress p;
  try {
    auto state = nlohmann::json::parse(data.at("state"));
    p.step = state.at("step").get<int64_t>();
    p.position.epoch = state.at("epoch").get<int64_t>();
    p.position.batch = state.at("batch").get<int64_t>();
    p.skipped_steps = state.value("skipped_steps", int64_t{0});
    p.oom_skipped_steps = state.value("oom_skipped_steps", int64_t{0});
    if (state.contains("best_cer")) p.best_cer = state["best_cer"].get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(source + ": its 'state' section is damaged (" + e.what() + ")");
  }
  p.last_eval_step = p.last_checkpoint_step = p.step;
  return p;
}

}  // namespace asr
