// Single-file checkpoints: named byte sections behind a magic, a format
// version and a CRC-32C over everything (format in docs/checkpoint-format.md).
// The container knows nothing about models or training; by convention the
// sections are "model", "optimizer", "state" (JSON), "config" (TOML),
// "tokenizer" (sentencepiece model bytes) and "rng". It sits in core so that
// the trainer writes and the decoder reads checkpoints without either
// depending on the other. Tensors become bytes in asr/model/module_state.h.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace asr {

constexpr uint32_t kCheckpointFormatVersion = 1;

struct CheckpointData {
  std::map<std::string, std::string> sections;

  bool has(const std::string& name) const { return sections.count(name) != 0; }
  // The section's bytes; throws asr::Error naming the section when absent.
  const std::string& at(const std::string& name) const;
};

std::string encode_checkpoint(const CheckpointData& data);
// Throws asr::Error naming `source` and what is wrong (not a checkpoint,
// other format version, truncated, corrupt).
CheckpointData decode_checkpoint(const std::string& bytes, const std::string& source);

// Atomic: the file at `path` is the old one or the new one, never partial.
void save_checkpoint(const std::filesystem::path& path, const CheckpointData& data);
CheckpointData load_checkpoint(const std::filesystem::path& path);

}  // namespace asr
