#include "asr/train/optimizer_state.h"

#include <torch/optim/adamw.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <type_traits>
#include <sstream>

#include "asr/core/error.h"
#include "asr/model/module_state.h"

namespace asr {

std::string optimizer_to_bytes(const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  return archive_to_bytes(archive);
}

namespace {

// An optimizer's state entry for a parameter. LibTorch 1.13 keys the state by
// the printed TensorImpl address, 2.x by the address itself.
template <class States>
auto find_state(States& states, const at::Tensor& p) {
  using Key = typename States::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << static_cast<const void*>(p.unsafeGetTensorImpl());
    return states.find(key.str());
  } else {
    return states.find(p.unsafeGetTensorImpl());
  }
}

// Checkpoints load through the CPU; AdamW's moments move to their
// parameter's device (a GPU checkpoint resumes on a CPU and the other way round).
void move_state_to_parameters(torch::optim::Optimizer& optimizer) {
  auto& states = optimizer.state();
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) {
      auto it = find_state(states, p);
      if (it == states.end()) continue;
      auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get());
      if (!adamw) continue;
      const auto dev = p.device();
      if (adamw->exp_avg().defined()) adamw->exp_avg(adamw->exp_avg().to(dev));
      if (adamw->exp_avg_sq().defined()) adamw->exp_avg_sq(adamw->exp_avg_sq().to(dev));
      if (adamw->max_exp_avg_sq().defined()) adamw->max_exp_avg_sq(adamw->max_exp_avg_sq().to(dev));
    }
}

}  // namespace

void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source) {
  auto archive = open_state_archive(bytes, source, "optimizer");
  try {
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + source + ": cannot load the optimizer state (a different optimizer or model?): " +
                e.what_without_backtrace());
  }
  move_state_to_parameters(optimizer);
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
