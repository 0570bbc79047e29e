// Start-of-training broadcast with a shape check, and the checkpoint-time
// checksum that catches replicas which drifted apart.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cstring>
#include <sstream>

#include "asr/core/crc32c.h"
#include "asr/distributed/grad_sync.h"

namespace asr::distributed {
namespace {

std::string describe(const at::Tensor& t) {
  return fmt::format("[{}] {}", fmt::join(t.sizes(), ", "), c10::toString(t.scalar_type()));
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Every rank's text, so every rank can build the same error message.
std::vector<std::string> gather_strings(Communicator& comm, const std::string& mine) {
  const auto longest = int64_t(comm.all_reduce_max(double(mine.size())));
  auto bytes = at::zeros({longest + 1}, at::kByte);
  std::memcpy(bytes.data_ptr<uint8_t>(), mine.data(), mine.size());
  std::vector<std::string> all;
  for (const auto& t : comm.all_gather(bytes)) {
    auto cpu = t.to(at::kCPU).contiguous();
    all.emplace_back(reinterpret_cast<const char*>(cpu.data_ptr<uint8_t>()));
  }
  return all;
}

}  // namespace

void broadcast_parameters_and_buffers(Communicator& comm, const std::vector<at::Tensor>& tensors) {
  if (comm.world_size() == 1) return;
  std::string mine;
  for (const auto& t : tensors) mine += describe(t) + "\n";
  const auto all = gather_strings(comm, mine);
  const auto reference = split_lines(all[0]);
  std::vector<std::string> problems;
  for (int r = 1; r < comm.world_size(); ++r) {
    const auto theirs = split_lines(all[size_t(r)]);
    if (theirs.size() != reference.size()) {
      problems.push_back(fmt::format("rank {} has {} parameters and buffers, rank 0 has {}", r, theirs.size(),
                                     reference.size()));
      continue;
    }
    for (size_t i = 0; i < theirs.size(); ++i)
      if (theirs[i] != reference[i]) {
        problems.push_back(
            fmt::format("rank {}: tensor {} is {} but rank 0 has {}", r, i, theirs[i], reference[i]));
        break;
      }
  }
  if (!problems.empty())
    throw Error(fmt::format("rank {}: the model differs across ranks ({}); every rank must build the model from the "
                            "same config",
                            comm.rank(), fmt::join(problems, "; ")));

  // Chunks bound the temporary flat buffer a backend may pack into.
  constexpr int64_t kChunkBytes = 64 << 20;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> chunk;
  int64_t bytes = 0;
  for (size_t i = 0; i <= tensors.size(); ++i) {
    if (i == tensors.size() || (bytes > 0 && bytes + int64_t(tensors[i].nbytes()) > kChunkBytes)) {
      if (!chunk.empty()) comm.broadcast(chunk, 0);
      chunk.clear();
      bytes = 0;
      if (i == tensors.size()) break;
    }
    chunk.push_back(tensors[i].detach());
    bytes += int64_t(tensors[i].nbytes());
  }
}

double parameter_checksum(const std::vector<at::Tensor>& tensors) {
  uint32_t crc = 0;
  for (const auto& t : tensors) {
    auto cpu = t.detach().to(at::kCPU).contiguous();
    crc = crc32c_extend(crc, cpu.data_ptr(), cpu.nbytes());
  }
  return double(crc);
}

void check_parameters_agree(Communicator& comm, const std::vector<at::Tensor>& tensors) {
  const double mine = parameter_checksum(tensors);
  if (comm.world_size() == 1) return;
  const auto all = comm.all_gather(at::full({1}, mine, at::TensorOptions().dtype(at::kDouble)));
  const double reference = all[0].item<double>();
  std::vector<std::string> differing;
  for (size_t r = 1; r < all.size(); ++r) {
    const double theirs = all[r].item<double>();
    if (theirs != reference) differing.push_back(fmt::format("rank {} ({:08x})", r, uint32_t(theirs)));
  }
  if (!differing.empty())
    throw DivergenceError(fmt::format("rank {}: parameters have diverged across ranks: {} differ from rank 0 ({:08x}). The "
                            "replicas desynchronised (nondeterministic op, or a rank skipped a step alone).",
                            comm.rank(), fmt::join(differing, ", "), uint32_t(reference)));
}

}  // namespace asr::distributed
