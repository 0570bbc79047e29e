#include "asr/decode/checkpoint_model.h"

#include <c10/util/Exception.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "asr/core/checkpoint_file.h"
#include "asr/core/error.h"
#include "asr/core/file_checks.h"
#include "asr/model/module_state.h"

namespace asr {
namespace {

namespace fs = std::filesystem;

const std::string& section(const CheckpointData& data, const std::string& name, const std::string& path) {
  if (!data.has(name))
    throw DataError("checkpoint " + path + " has no '" + name +
                "' section, so it cannot be decoded on its own (use a checkpoint written by asr_ddp)");
  return data.at(name);
}

CheckpointModel build(const CheckpointData& data, const std::string& path) {
  CheckpointModel out;
  out.model_config = model_config_from_toml(section(data, "config", path), path + " [config section]");
  out.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_bytes(section(data, "tokenizer", path)));
  ModelConfig& mc = out.model_config;
  if (mc.vocab_size != 0 && mc.vocab_size != out.tokenizer->vocab_size())
    throw DataError("checkpoint " + path + ": the model has " + std::to_string(mc.vocab_size) +
                " outputs but the stored tokenizer has " + std::to_string(out.tokenizer->vocab_size()) +
                " pieces (the file mixes two runs)");
  mc.vocab_size = out.tokenizer->vocab_size();
  out.model = model::AsrModel(mc);
  module_from_bytes(*out.model, section(data, "model", path), path);
  out.model->eval();
  if (data.has("state")) {
    auto state = nlohmann::json::parse(data.at("state"), nullptr, /*allow_exceptions=*/false);
    if (state.is_object() && state.contains("step") && state["step"].is_number_integer())
      out.step = state["step"].get<int64_t>();
  }
  return out;
}

}  // namespace

CheckpointModel load_checkpoint_model(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("checkpoint " + path + ": no such file");
  if (fs::is_directory(path, ec))
    throw Error("checkpoint " + path + " is a directory; give a .ckpt file (e.g. RUN_DIR/checkpoints/best.ckpt)");
  require_regular_input(path, "checkpoint");  // a FIFO or device would block or never end
  CheckpointData data = load_checkpoint(path);  // magic, version, size and CRC checks
  try {
    return build(data, path);
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + path + ": cannot rebuild the model: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw DataError("checkpoint " + path + ": cannot rebuild the model: " + e.what());
  }
}

}  // namespace asr
