// Torch state to and from checkpoint section bytes. Kept apart from
// checkpoint.h so code that only moves checkpoint files needs no torch.
#pragma once
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>

namespace asr {

// Every parameter and buffer, nested by submodule (torch's own archive
// format, so torch::load can read it too).
std::string module_to_bytes(const torch::nn::Module& module);
// Copies the stored values into the module's existing tensors. A missing
// tensor or a shape/dtype mismatch is an asr::Error naming `source` and the
// tensor (e.g. a checkpoint from a different model config).
void module_from_bytes(torch::nn::Module& module, const std::string& bytes, const std::string& source);

std::string optimizer_to_bytes(const torch::optim::Optimizer& optimizer);
void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source);

// A random generator's full state (e.g. at::detail::getDefaultCPUGenerator()).
// Takes the handle by value: generators share state, and locking needs a non-const one.
std::string generator_state_to_bytes(at::Generator generator);
void generator_state_from_bytes(at::Generator& generator, const std::string& bytes, const std::string& source);

}  // namespace asr
