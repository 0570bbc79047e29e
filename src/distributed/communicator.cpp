// Conveniences shared by every backend, and the world-size-1 communicator.
#include "asr/distributed/communicator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstring>

namespace asr::distributed {
namespace {

class DonePending : public PendingReduce {
 public:
  void wait() override {}
};

// Doubles travel as float64 tensors on the communicator's device, so the
// conveniences work the same on Gloo (CPU) and NCCL (GPU).
at::Tensor doubles_tensor(const std::vector<double>& values, c10::Device device) {
  auto cpu = at::empty({int64_t(values.size())}, at::kDouble);
  if (!values.empty()) std::memcpy(cpu.data_ptr<double>(), values.data(), values.size() * sizeof(double));
  return cpu.to(device);
}

std::vector<double> to_doubles(const at::Tensor& t) {
  auto cpu = t.to(at::kCPU).to(at::kDouble).contiguous();
  return std::vector<double>(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
}

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string backend_name() const override { return "local"; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  void broadcast(std::vector<at::Tensor>&, int root) override {
    if (root != 0) throw CollectiveError("broadcast: root " + std::to_string(root) + " does not exist in a world of 1");
  }
  std::vector<at::Tensor> all_gather(const at::Tensor& tensor) override { return {tensor.clone()}; }
  void barrier() override {}
  std::unique_ptr<Communicator> new_group(const std::string&) override { return make_local_communicator(); }
};

}  // namespace

std::unique_ptr<PendingReduce> Communicator::all_reduce_sum_async(std::vector<at::Tensor>& tensors) {
  all_reduce_sum(tensors);
  return std::make_unique<DonePending>();
}

at::Tensor Communicator::read_to_host(const at::Tensor& tensor, const std::string& what) {
  ++host_reads_;
  return tensor.to(at::kCPU);
}

std::vector<double> Communicator::all_reduce_sum(const std::vector<double>& values) {
  std::vector<at::Tensor> t{doubles_tensor(values, device())};
  all_reduce_sum(t);
  return to_doubles(read_to_host(t[0], "all_reduce (values)"));
}

double Communicator::all_reduce_sum(double value) {
  return all_reduce_sum(std::vector<double>{value})[0];
}

double Communicator::all_reduce_max(double value) {
  auto gathered = all_gather(doubles_tensor({value}, device()));
  double best = value;
  for (const auto& t : gathered) best = std::max(best, to_doubles(read_to_host(t, "all_gather (max)"))[0]);
  return best;
}

bool Communicator::any_rank(bool flag) { return all_reduce_sum(flag ? 1.0 : 0.0) > 0.5; }

void Communicator::broadcast_bytes(std::string& bytes, int root) {
  // Size first, so receivers can allocate; then the payload as uint8.
  std::vector<at::Tensor> size{doubles_tensor({double(bytes.size())}, device())};
  broadcast(size, root);
  const auto n = int64_t(to_doubles(read_to_host(size[0], "broadcast (size)"))[0]);
  auto cpu = at::empty({n}, at::kByte);
  if (rank() == root && n > 0) std::memcpy(cpu.data_ptr<uint8_t>(), bytes.data(), size_t(n));
  std::vector<at::Tensor> payload{cpu.to(device())};
  if (n > 0) broadcast(payload, root);
  auto back = read_to_host(payload[0], "broadcast (bytes)").contiguous();
  bytes.assign(reinterpret_cast<const char*>(back.data_ptr<uint8_t>()), size_t(n));
}

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace asr::distributed
