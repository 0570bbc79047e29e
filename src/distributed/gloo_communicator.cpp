// Gloo over TCP: the CPU backend, and the fallback when a rank has no GPU.
// Built when the Gloo headers are there (cmake/AsrDependencies.cmake).
#include "c10d_communicator.h"

#ifdef ASR_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's headers hide the class behind this; the library has it.
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <algorithm>
#include <cstdlib>

namespace asr::distributed {
namespace {

std::shared_ptr<::gloo::transport::Device> make_device(const GroupSpec& spec) {
  // Loopback is always right when every rank shares the host, and avoids
  // guessing an interface in containers whose hostname resolves oddly.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (spec.all_on_one_host) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

c10::intrusive_ptr<c10d::ProcessGroupGloo> connect(const GroupSpec& spec, const std::string& prefix,
                                                   int threads) {
  // The connect timeout covers the full-mesh rendezvous; collectives get
  // their own (shorter) deadline through wait().
  const auto limit = std::max(spec.timeout, spec.connect_timeout);
  auto options = c10d::ProcessGroupGloo::Options::create(limit);
  options->devices.push_back(make_device(spec));
  options->threads = threads;
  WatchdogGuard guard("gloo connect", spec.rank, limit + spec.watchdog_margin);
  try {
    auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, spec.session->store);
    return c10::make_intrusive<c10d::ProcessGroupGloo>(store, spec.rank, spec.world_size, options);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CollectiveError(fmt::format("rank {}: could not connect the Gloo process group of {} ranks within {:.0f} s: "
                                      "{}",
                                      spec.rank, spec.world_size, limit.count() / 1000.0, what));
  }
}

// Debian's Gloo (LibTorch 1.13) cannot sum bfloat16; newer ones can. The
// failure surfaces asynchronously and poisons later barriers of the group it
// ran on, so the question is asked on a throwaway group.
bool gloo_sums_bfloat16(const GroupSpec& spec, const std::string& name) {
  auto probe_pg = connect(spec, name + "/bf16-probe/", 1);
  std::vector<at::Tensor> probe{at::zeros({1}, at::kBFloat16)};
  try {
    return probe_pg->allreduce(probe)->wait(spec.timeout);
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::unique_ptr<Communicator> make_gloo_communicator(const GroupSpec& spec, const std::string& name) {
  install_collective_terminate_handler(spec.rank);
  const bool bf16 = gloo_sums_bfloat16(spec, name);
  // Two threads let one bucket's reduction run while the next is queued.
  auto pg = connect(spec, name + "/", 2);
  auto comm = std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(
      pg, spec, "gloo", c10::Device(c10::kCPU),
      [spec](const std::string& group) { return make_gloo_communicator(spec, group); });
  comm->set_supports_bfloat16(bf16);
  return comm;
}

}  // namespace asr::distributed

#else

namespace asr::distributed {

std::unique_ptr<Communicator> make_gloo_communicator(const GroupSpec& spec, const std::string&) {
  throw CollectiveError(fmt::format("rank {}: this build has no Gloo backend (its LibTorch came without Gloo headers; "
                                    "configure with ASR_GLOO_INCLUDE_DIR, docs/building.md); use NCCL",
                                    spec.rank));
}

}  // namespace asr::distributed

#endif
