// Optimizer and random-generator state to and from checkpoint section bytes
// (model tensors: asr/model/module_state.h).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/optim/optimizer.h>

#include <string>

namespace asr {

std::string optimizer_to_bytes(const torch::optim::Optimizer& optimizer);
void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source);

// A random generator's full state (e.g. at::detail::getDefaultCPUGenerator()).
// Takes the handle by value: generators share state, and locking needs a non-const one.
std::string generator_state_to_bytes(at::Generator generator);
void generator_state_from_bytes(at::Generator& generator, const std::string& bytes, const std::string& source);

}  // namespace asr
