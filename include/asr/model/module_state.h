// A module's parameters and buffers to and from bytes (torch's own archive
// format, nested by submodule, so torch::load can read it too). The trainer
// stores these bytes in a checkpoint's "model" section, the decoder reads
// them back.
#pragma once
#include <torch/nn/module.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>

namespace asr {

std::string module_to_bytes(const torch::nn::Module& module);

// Copies the stored values into the module's existing tensors, whatever
// device they are on (a checkpoint written on a GPU loads on a CPU and the
// other way round). A missing tensor or a shape/dtype mismatch is an
// asr::Error naming `source` and the tensor (e.g. a checkpoint from a
// different model config).
void module_from_bytes(torch::nn::Module& module, const std::string& bytes, const std::string& source);

// An archive's bytes (what torch::save writes).
std::string archive_to_bytes(torch::serialize::OutputArchive& archive);

// Opens archive bytes, mapping torch's failure to an asr::Error naming
// `source` and `what` ("model", "optimizer").
torch::serialize::InputArchive open_state_archive(const std::string& bytes, const std::string& source,
                                                  const std::string& what);

}  // namespace asr
