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

// An optimizer's state key for a parameter. LibTorch 1.13 keys the state by
// the printed TensorImpl address, 2.x by the address itself.
template <class States>
auto state_key(const States&, const at::Tensor& p) {
  using Key = typename States::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << static_cast<const void*>(p.unsafeGetTensorImpl());
    return key.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

torch::serialize::InputArchive sub_archive(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::serialize::InputArchive sub;
  archive.read(key, sub);
  return sub;
}

int64_t read_count(torch::serialize::InputArchive& archive, const std::string& key) {
  at::Tensor t;
  archive.read(key, t);
  return t.item<int64_t>();
}

// One parameter group of LibTorch's optimizer archive ("1.5.0" layout, the
// same in 1.13 and 2.x): its options, and each parameter's state found
// through the key the writer used for it.
void restore_group(torch::optim::OptimizerParamGroup& group, torch::serialize::InputArchive& saved,
                   torch::serialize::InputArchive& states, torch::optim::Optimizer& optimizer, size_t index) {
  const auto n = static_cast<size_t>(read_count(saved, "params/size"));
  if (n != group.params().size())
    throw DataError("parameter group " + std::to_string(index) + " has " + std::to_string(n) +
                    " parameters in the checkpoint, " + std::to_string(group.params().size()) + " in this model");
  auto options_archive = sub_archive(saved, "options");
  auto options = std::make_unique<torch::optim::AdamWOptions>(0.0);
  options->serialize(options_archive);
  group.set_options(std::move(options));
  for (size_t j = 0; j < n; ++j) {
    c10::IValue key;
    saved.read("params/" + std::to_string(j), key);
    torch::serialize::InputArchive state_archive;
    if (!states.try_read(key.toStringRef(), state_archive)) continue;  // never stepped
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->serialize(state_archive);
    const auto& p = group.params()[j];
    if (state->exp_avg().defined() && state->exp_avg().sizes() != p.sizes())
      throw DataError("parameter " + std::to_string(j) + " of group " + std::to_string(index) + " has shape " +
                      c10::str(p.sizes()) + " but its saved optimizer state " + c10::str(state->exp_avg().sizes()));
    // Moments live on their parameter's device: checkpoints load through the
    // CPU, so a GPU checkpoint resumes on a CPU and the other way round.
    const auto dev = p.device();
    if (state->exp_avg().defined()) state->exp_avg(state->exp_avg().to(dev));
    if (state->exp_avg_sq().defined()) state->exp_avg_sq(state->exp_avg_sq().to(dev));
    if (state->max_exp_avg_sq().defined()) state->max_exp_avg_sq(state->max_exp_avg_sq().to(dev));
    auto& all = optimizer.state();
    all[state_key(all, p)] = std::move(state);
  }
}

// AdamW's state read from LibTorch's own archive, matched to the parameters
// by position. LibTorch's AdamW::load cannot be used across versions: 1.13
// writes its keys as hexadecimal addresses, which 2.x parses with stoull into
// one key for every parameter (all of them then share one state).
void restore_adamw(torch::optim::Optimizer& optimizer, torch::serialize::InputArchive& archive) {
  c10::IValue version;
  archive.read("pytorch_version", version);
  if (!version.isString() || version.toStringRef() != "1.5.0")
    throw DataError("unknown optimizer archive layout (pytorch_version " + version.tagKind() + ")");
  auto states = sub_archive(archive, "state");
  auto groups = sub_archive(archive, "param_groups");
  const auto n = static_cast<size_t>(read_count(groups, "param_groups/size"));
  if (n != optimizer.param_groups().size())
    throw DataError(std::to_string(n) + " parameter groups in the checkpoint, " +
                    std::to_string(optimizer.param_groups().size()) + " in this optimizer");
  optimizer.state().clear();
  for (size_t i = 0; i < n; ++i) {
    auto saved = sub_archive(groups, "param_groups/" + std::to_string(i));
    restore_group(optimizer.param_groups()[i], saved, states, optimizer, i);
  }
}

}  // namespace

void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source) {
  auto archive = open_state_archive(bytes, source, "optimizer");
  try {
    restore_adamw(optimizer, archive);
  } catch (const DataError& e) {
    throw DataError("checkpoint " + source + ": cannot load the optimizer state (a different optimizer or model?): " +
                    e.what());
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
