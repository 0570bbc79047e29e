#include "asr/train/optimizer_state.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <sstream>

#include "asr/core/error.h"
#include "asr/model/module_state.h"

namespace asr {

std::string optimizer_to_bytes(const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  return archive_to_bytes(archive);
}

void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source) {
  auto archive = open_state_archive(bytes, source, "optimizer");
  try {
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + source + ": cannot load the optimizer state (a different optimizer or model?): " +
                e.what_without_backtrace());
  }
}

std::string generator_state_to_bytes(at::Generator generator) {
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state = generator.get_state();
  }
  state = state.contiguous();
  return std::string(static_cast<const char*>(state.data_ptr()), state.numel() * state.element_size());
}

void generator_state_from_bytes(at::Generator& generator, const std::string& bytes, const std::string& source) {
  at::Tensor expected;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    expected = generator.get_state();
  }
  if (static_cast<size_t>(expected.numel() * expected.element_size()) != bytes.size())
    throw DataError("checkpoint " + source + ": random generator state has " + std::to_string(bytes.size()) +
                " bytes, expected " + std::to_string(expected.numel() * expected.element_size()));
  at::Tensor state = at::empty_like(expected);
  std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
  try {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + source + ": invalid random generator state: " + e.what_without_backtrace());
  }
}

}  // namespace asr
