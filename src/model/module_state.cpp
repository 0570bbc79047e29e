#include "asr/model/module_state.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

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
      throw DataError("checkpoint " + source + ": the model's " + (is_buffer ? "buffer " : "parameter ") + prefix + name +
                  " is missing (was it saved from a different model config?)");
    if (stored.sizes() != target.sizes() || stored.scalar_type() != target.scalar_type())
      throw DataError("checkpoint " + source + ": " + prefix + name + " is " + shape_of(stored) + " but the model has " +
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
      throw DataError("checkpoint " + source + ": the model's submodule " + prefix + child.key() + " is missing");
    load_into(*child.value(), nested, prefix + child.key() + ".", source);
  }
}

}  // namespace

torch::serialize::InputArchive open_state_archive(const std::string& bytes, const std::string& source,
                                                  const std::string& what) {
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes);
    // Through the CPU whatever device wrote it: a GPU checkpoint must load on
    // a host without one, and every rank copies into its own device after.
    archive.load_from(in, c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + source + ": cannot read the " + what + " state: " + e.what_without_backtrace());
  }
  return archive;
}

std::string archive_to_bytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

std::string module_to_bytes(const torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  return archive_to_bytes(archive);
}

void module_from_bytes(torch::nn::Module& module, const std::string& bytes, const std::string& source) {
  auto archive = open_state_archive(bytes, source, "model");
  try {
    load_into(module, archive, "", source);
  } catch (const c10::Error& e) {
    throw DataError("checkpoint " + source + ": cannot load the model state: " + e.what_without_backtrace());
  }
}

}  // namespace asr
