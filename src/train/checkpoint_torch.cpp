#include "asr/train/checkpoint_torch.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <sstream>

#include "asr/core/error.h"

namespace asr {
namespace {

std::string shape_of(const at::Tensor& t) {
  std::ostringstream os;
  os << t.sizes() << " " << t.scalar_type();
  return os.str();
}

void load_into(torch::nn::Module& module, torch::serialize::InputArchive& archive, const std::string& prefix,
               const std::string& source) {
  auto copy_one = [&](const std::string& name, at::Tensor& target, bool is_buffer) {
    if (!target.defined()) return;
    at::Tensor stored;
    if (!archive.try_read(name, stored, is_buffer))
      throw Error("checkpoint " + source + ": the model's " + (is_buffer ? "buffer " : "parameter ") + prefix + name +
                  " is missing (was it saved from a different model config?)");
    if (stored.sizes() != target.sizes() || stored.scalar_type() != target.scalar_type())
      throw Error("checkpoint " + source + ": " + prefix + name + " is " + shape_of(stored) + " but the model has " +
                  shape_of(target) + " (was it saved from a different model config?)");
    torch::NoGradGuard no_grad;
    target.copy_(stored);
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) copy_one(p.key(), p.value(), false);
  for (auto& b : module.named_buffers(/*recurse=*/false)) copy_one(b.key(), b.value(), true);
  for (auto& child : module.named_children()) {
    if (!child.value()->is_serializable()) continue;
    torch::serialize::InputArchive nested;
    if (!archive.try_read(child.key(), nested))
      throw Error("checkpoint " + source + ": the model's submodule " + prefix + child.key() + " is missing");
    load_into(*child.value(), nested, prefix + child.key() + ".", source);
  }
}

torch::serialize::InputArchive open_archive(const std::string& bytes, const std::string& source,
                                            const std::string& what) {
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes);
    archive.load_from(in);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + source + ": cannot read the " + what + " state: " + e.what_without_backtrace());
  }
  return archive;
}

}  // namespace

std::string module_to_bytes(const torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void module_from_bytes(torch::nn::Module& module, const std::string& bytes, const std::string& source) {
  auto archive = open_archive(bytes, source, "model");
  try {
    load_into(module, archive, "", source);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + source + ": cannot load the model state: " + e.what_without_backtrace());
  }
}

std::string optimizer_to_bytes(const torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void optimizer_from_bytes(torch::optim::Optimizer& optimizer, const std::string& bytes, const std::string& source) {
  auto archive = open_archive(bytes, source, "optimizer");
  try {
    optimizer.load(archive);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + source + ": cannot load the optimizer state (a different optimizer or model?): " +
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
    throw Error("checkpoint " + source + ": random generator state has " + std::to_string(bytes.size()) +
                " bytes, expected " + std::to_string(expected.numel() * expected.element_size()));
  at::Tensor state = at::empty_like(expected);
  std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
  try {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + source + ": invalid random generator state: " + e.what_without_backtrace());
  }
}

}  // namespace asr
