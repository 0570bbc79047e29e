// Gloo over TCP: the CPU backend, and the fallback when a rank has no GPU.
// Built when the Gloo headers are there (cmake/AsrDependencies.cmake).
#include "c10d_communicator.h"

#ifdef ASR_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1  // Debian's headers hide the class behind this; the library has it.
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <sstream>

namespace asr::distributed {
namespace {

// Interface name -> its addresses (IPv4 first), from getifaddrs.
std::map<std::string, std::vector<std::string>> interface_addresses() {
  std::map<std::string, std::vector<std::string>> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* a = list; a; a = a->ifa_next) {
    auto& addrs = out[a->ifa_name];
    if (!a->ifa_addr || (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6)) continue;
    char text[INET6_ADDRSTRLEN] = {0};
    const bool v4 = a->ifa_addr->sa_family == AF_INET;
    const void* raw = v4 ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr)
                         : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr);
    if (!inet_ntop(a->ifa_addr->sa_family, raw, text, sizeof(text))) continue;
    addrs.insert(v4 ? addrs.begin() : addrs.end(), text);
  }
  freeifaddrs(list);
  return out;
}

// Gloo's devices, and this rank's address for the other ranks' messages.
// GLOO_SOCKET_IFNAME (a comma-separated list, as PyTorch reads it) names the
// interfaces; one without an address is refused here, naming the ones there
// are, rather than by Gloo's bare "Unable to find address".
std::vector<std::shared_ptr<::gloo::transport::Device>> make_devices(const GroupSpec& spec, std::string& address) {
  const char* env = std::getenv("GLOO_SOCKET_IFNAME");
  if (env && *env) {
    const auto interfaces = interface_addresses();
    std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
    std::stringstream names(env);
    for (std::string name; std::getline(names, name, ',');) {
      if (name.empty()) continue;
      auto it = interfaces.find(name);
      if (it == interfaces.end() || it->second.empty()) {
        std::string usable;
        for (const auto& [other, addrs] : interfaces)
          if (!addrs.empty()) usable += (usable.empty() ? "" : ", ") + other + " (" + addrs.front() + ")";
        throw CollectiveError(fmt::format("rank {}: GLOO_SOCKET_IFNAME names interface '{}', which {} on this host; "
                                          "interfaces with an address here: {}",
                                          spec.rank, name, it == interfaces.end() ? "does not exist" : "has no address",
                                          usable.empty() ? "none" : usable));
      }
      if (address.empty()) address = it->second.front();
      devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
    }
    if (!devices.empty()) return devices;
  }
  // Loopback is always right when every rank shares the host, and avoids
  // guessing an interface in containers whose hostname resolves oddly.
  if (spec.all_on_one_host) {
    address = "127.0.0.1";
    return {c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")};
  }
  char host[256] = {0};
  address = gethostname(host, sizeof(host) - 1) == 0 ? host : "?";
  return {c10d::ProcessGroupGloo::createDefaultDevice()};
}

// Up to this many ranks, a failed collective names every peer's address.
constexpr int kNamedPeers = 8;

// `peers`, when given, receives the other ranks' addresses ("rank 1 at
// 10.0.0.2, ...") in a world of at most kNamedPeers ranks.
c10::intrusive_ptr<c10d::ProcessGroupGloo> connect(const GroupSpec& spec, const std::string& prefix, int threads,
                                                   std::string* peers = nullptr) {
  // The connect timeout covers the full-mesh rendezvous; collectives get
  // their own (shorter) deadline through wait().
  const auto limit = std::max(spec.timeout, spec.connect_timeout);
  auto options = c10d::ProcessGroupGloo::Options::create(limit);
  std::string address;
  options->devices = make_devices(spec, address);
  options->threads = threads;
  WatchdogGuard guard("gloo connect", spec.rank, limit + spec.watchdog_margin);
  try {
    auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, spec.session->store);
    const bool named = peers && spec.world_size <= kNamedPeers;
    if (named) store->set("asr-address/" + std::to_string(spec.rank), std::vector<uint8_t>(address.begin(), address.end()));
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, spec.rank, spec.world_size, options);
    // Every rank set its key before joining the group, so these do not wait.
    for (int r = 0; named && r < spec.world_size; ++r) {
      if (r == spec.rank) continue;
      const auto peer = store->get("asr-address/" + std::to_string(r));
      *peers += fmt::format("{}rank {} at {}", peers->empty() ? "" : ", ", r, std::string(peer.begin(), peer.end()));
    }
    return pg;
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
  GroupSpec named = spec;
  auto pg = connect(spec, name + "/", 2, &named.peers);
  auto comm = std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(
      pg, named, "gloo", c10::Device(c10::kCPU),
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
