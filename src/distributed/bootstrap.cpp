// Launcher detection and the rendezvous. MPI is used for one thing only:
// rank 0 opens the c10d store on a free port and MPI_Bcast tells the others
// where it is; every collective afterwards goes through c10d.
#include "asr/distributed/bootstrap.h"

#ifdef ASR_WITH_MPI
#include <mpi.h>
#endif
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "asr/distributed/device.h"
#include "asr/distributed/world.h"
#include "c10d_communicator.h"

namespace asr::distributed {
namespace {

using std::chrono::milliseconds;

const char* lookup(const EnvLookup& env, const char* name) {
  const char* v = env ? env(name) : std::getenv(name);
  return (v && *v) ? v : nullptr;
}

int env_int(const EnvLookup& env, const char* name, int fallback, bool required = false) {
  const char* v = lookup(env, name);
  if (!v) {
    if (required) throw Error(fmt::format("environment variable {} is required by this launcher but unset", name));
    return fallback;
  }
  char* end = nullptr;
  long value = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || value < 0 || value > (1 << 30))
    throw Error(fmt::format("environment variable {}='{}' is not a non-negative integer", name, v));
  return int(value);
}

// "4(x2),3" -> 4: Slurm's per-node task counts start with this node's count
// in the common homogeneous case, which is all local_world_size is used for.
int leading_int(const char* s, int fallback) {
  if (!s || !std::isdigit(static_cast<unsigned char>(*s))) return fallback;
  return std::atoi(s);
}

void check_ranks(const LaunchInfo& info, const char* rank_var, const char* world_var) {
  if (info.world_size < 1)
    throw Error(fmt::format("{} must be at least 1 (got {})", world_var, info.world_size));
  if (info.rank >= info.world_size)
    throw Error(fmt::format("{}={} is not below {}={}", rank_var, info.rank, world_var, info.world_size));
}

std::string host_name() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

milliseconds to_ms(double seconds) { return milliseconds(int64_t(seconds * 1000.0)); }

milliseconds connect_timeout(const GroupSpec& spec) { return std::max(spec.timeout, spec.connect_timeout); }

std::vector<uint8_t> c10d_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// LibTorch 2.4 on turns TCPStoreOptions::useLibUV on by default, and a
// LibTorch built without libuv (Debian's 2.6) then refuses to open any store.
// The libuv server scales better, so it is kept where it exists; where the
// library says it lacks it, the classic server is used. Older LibTorch has
// no such option (detected from the type, not from a version number).
template <typename Options, typename = void>
struct HasUseLibUV : std::false_type {};
template <typename Options>
struct HasUseLibUV<Options, std::void_t<decltype(std::declval<Options&>().useLibUV)>> : std::true_type {};

// A template so that the branch naming useLibUV is only compiled where it exists.
template <typename Options>
c10::intrusive_ptr<c10d::TCPStore> make_store(const std::string& host, Options opts) {
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, opts);
  } catch (const std::exception& e) {
    if constexpr (HasUseLibUV<Options>::value) {
      if (opts.useLibUV && std::string_view(e.what()).find("libuv") != std::string_view::npos) {
        opts.useLibUV = false;
        return c10::make_intrusive<c10d::TCPStore>(host, opts);
      }
    }
    throw;
  }
}

c10::intrusive_ptr<c10d::TCPStore> open_store(const std::string& host, int port, bool server, int world,
                                               milliseconds timeout, int rank) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = server;
  opts.numWorkers = world;
  // Waiting for workers inside the constructor would deadlock the MPI path
  // (the others learn the port only afterwards); the backend's own
  // rendezvous waits for everyone, with the timeout.
  opts.waitWorkers = false;
  opts.timeout = timeout;
  try {
    return make_store(host, opts);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CollectiveError(fmt::format(
        "rank {}: could not {} the rendezvous store at {}:{} (timeout {:.0f} s): {}. Check MASTER_ADDR/MASTER_PORT "
        "(or dist.master_addr and dist.master_port) and that rank 0 is running.",
        rank, server ? "open" : "reach", host, port, timeout.count() / 1000.0, what));
  }
}

// Under mpirun: ranks from MPI itself, the store address from rank 0.
void mpi_rendezvous(const DistOptions& options, LaunchInfo& info, GroupSpec& spec) {
#ifndef ASR_WITH_MPI
  (void)options, (void)info, (void)spec;
  throw Error("launched under mpirun, but this build has no MPI (ASR_WITH_MPI=OFF): launch the ranks with "
              "torchrun-style RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT variables or with srun");
#else
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    if (MPI_Init(nullptr, nullptr) != MPI_SUCCESS) throw Error("MPI_Init failed; is this run under mpirun?");
    spec.session->mpi_initialized = true;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &info.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &info.world_size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &info.local_rank);
  MPI_Comm_size(node, &info.local_world_size);
  MPI_Comm_free(&node);
  spec.rank = info.rank;
  spec.session->rank = info.rank;

  // Rank 0 binds first (port 0 = any free port unless one was configured),
  // then tells everyone its host name and the port it got.
  char host[256] = {0};
  int port = 0;
  c10::intrusive_ptr<c10d::TCPStore> store;
  if (info.rank == 0) {
    std::string addr = options.master_addr.empty() ? host_name() : options.master_addr;
    store = open_store(addr, options.master_port, true, info.world_size, connect_timeout(spec), 0);
    port = store->getPort();
    std::strncpy(host, addr.c_str(), sizeof(host) - 1);
  }
  MPI_Bcast(host, sizeof(host), MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(&port, 1, MPI_INT, 0, MPI_COMM_WORLD);
  info.master_addr = host;
  info.master_port = port;
  if (info.rank != 0) {
    const bool same_host = info.local_world_size == info.world_size || host_name() == info.master_addr;
    store = open_store(same_host ? "127.0.0.1" : info.master_addr, port, false, info.world_size,
                       connect_timeout(spec), info.rank);
  }
  spec.session->store = store;
#endif
}

}  // namespace

Session::~Session() {
  store.reset();
#ifdef ASR_WITH_MPI
  if (mpi_initialized && !broken.load()) {
    WatchdogGuard guard("MPI_Finalize", rank, exit_limit);
    MPI_Finalize();
  }
#endif
}

const char* launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::mpi: return "mpi";
    case Launcher::slurm: return "slurm";
    case Launcher::torchrun: return "torchrun";
    case Launcher::single: break;
  }
  return "single";
}

std::string first_host_of_nodelist(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets.
  std::string first;
  int depth = 0;
  for (char c : nodelist) {
    if (c == '[') ++depth;
    if (c == ']') --depth;
    if (c == ',' && depth == 0) break;
    first += c;
  }
  const auto open = first.find('[');
  const auto close = first.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return first;
  // Inside the brackets the first number is taken, keeping its zero padding
  // ("n[007-010]" -> "n007").
  const std::string inner = first.substr(open + 1, close - open - 1);
  return first.substr(0, open) + inner.substr(0, inner.find_first_of(",-")) + first.substr(close + 1);
}

LaunchInfo detect_launch(const EnvLookup& env) {
  LaunchInfo info;
  if (lookup(env, "RANK") && lookup(env, "WORLD_SIZE")) {
    info.launcher = Launcher::torchrun;
    info.rank = env_int(env, "RANK", 0);
    info.world_size = env_int(env, "WORLD_SIZE", 1);
    info.local_rank = env_int(env, "LOCAL_RANK", info.rank);
    info.local_world_size = env_int(env, "LOCAL_WORLD_SIZE", info.world_size);
    const char* addr = lookup(env, "MASTER_ADDR");
    if (!addr && info.world_size > 1 && info.local_world_size != info.world_size)
      throw Error("MASTER_ADDR is unset but the ranks span several hosts; set it to rank 0's host");
    info.master_addr = addr ? addr : "127.0.0.1";
    info.master_port = env_int(env, "MASTER_PORT", 29500);
    check_ranks(info, "RANK", "WORLD_SIZE");
  } else if (lookup(env, "OMPI_COMM_WORLD_SIZE") || lookup(env, "PMI_SIZE")) {
    info.launcher = Launcher::mpi;
    const bool ompi = lookup(env, "OMPI_COMM_WORLD_SIZE") != nullptr;
    info.rank = env_int(env, ompi ? "OMPI_COMM_WORLD_RANK" : "PMI_RANK", 0);
    info.world_size = env_int(env, ompi ? "OMPI_COMM_WORLD_SIZE" : "PMI_SIZE", 1);
    info.local_rank = env_int(env, ompi ? "OMPI_COMM_WORLD_LOCAL_RANK" : "MPI_LOCALRANKID", 0);
    info.local_world_size = env_int(env, ompi ? "OMPI_COMM_WORLD_LOCAL_SIZE" : "MPI_LOCALNRANKS", info.world_size);
  } else if (lookup(env, "SLURM_PROCID") && (lookup(env, "SLURM_STEP_NUM_TASKS") || lookup(env, "SLURM_NTASKS"))) {
    // Under srun the step's task count is what matters; SLURM_NTASKS is the
    // allocation's and is also set in the batch script itself.
    info.launcher = Launcher::slurm;
    const char* world_var = lookup(env, "SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS";
    info.rank = env_int(env, "SLURM_PROCID", 0);
    info.world_size = env_int(env, world_var, 1);
    info.local_rank = env_int(env, "SLURM_LOCALID", 0);
    const int nodes = env_int(env, "SLURM_STEP_NUM_NODES", env_int(env, "SLURM_NNODES", 1));
    info.local_world_size =
        nodes <= 1 ? info.world_size
                   : leading_int(lookup(env, "SLURM_STEP_TASKS_PER_NODE") ? lookup(env, "SLURM_STEP_TASKS_PER_NODE")
                                                                           : lookup(env, "SLURM_TASKS_PER_NODE"),
                                 1);
    if (const char* addr = lookup(env, "MASTER_ADDR")) {
      info.master_addr = addr;
    } else {
      const char* list = lookup(env, "SLURM_STEP_NODELIST");
      if (!list) list = lookup(env, "SLURM_JOB_NODELIST");
      if (!list) list = lookup(env, "SLURM_NODELIST");
      if (!list && info.world_size > 1)
        throw Error("under srun without MASTER_ADDR, SLURM_STEP_NODELIST or SLURM_JOB_NODELIST is needed");
      info.master_addr = nodes <= 1 ? "127.0.0.1" : first_host_of_nodelist(list ? list : "");
    }
    // The same port for every task of a step, different across jobs and steps.
    const int job = env_int(env, "SLURM_JOB_ID", env_int(env, "SLURM_JOBID", 0));
    const int step = env_int(env, "SLURM_STEP_ID", env_int(env, "SLURM_STEPID", 0));
    info.master_port = env_int(env, "MASTER_PORT", 20000 + int((int64_t(job) * 7 + step) % 30000));
    check_ranks(info, "SLURM_PROCID", world_var);
  }
  return info;
}

namespace {

GroupSpec group_spec(const DistOptions& options) {
  if (!(options.timeout_seconds > 0))
    throw Error(fmt::format("dist.timeout_seconds must be positive (got {})", options.timeout_seconds));
  if (options.watchdog_margin_seconds < 0)
    throw Error(fmt::format("dist.watchdog_margin_seconds must not be negative (got {})", options.watchdog_margin_seconds));
  if (!(options.connect_timeout_seconds > 0))
    throw Error(fmt::format("dist.connect_timeout_seconds must be positive (got {})", options.connect_timeout_seconds));
  const std::string& backend = options.backend;
  if (backend != "auto" && backend != "gloo" && backend != "nccl")
    throw Error(fmt::format("dist.backend '{}' is unknown; use auto, gloo or nccl", backend));
  GroupSpec spec;
  spec.timeout = to_ms(options.timeout_seconds);
  spec.connect_timeout = to_ms(options.connect_timeout_seconds);
  spec.watchdog_margin = to_ms(options.watchdog_margin_seconds);
  spec.session = std::make_shared<Session>();
  spec.session->exit_limit = spec.timeout + spec.watchdog_margin;
  return spec;
}

// Opens the rendezvous store (MPI, TCP, or in-process for one rank with an
// explicit backend). False: one process with "auto", no group needed.
bool open_rendezvous(const DistOptions& options, LaunchInfo& info, GroupSpec& spec) {
  if (info.launcher == Launcher::mpi) {
    mpi_rendezvous(options, info, spec);
  } else if (info.world_size == 1 && options.backend == "auto") {
    return false;
  } else if (info.world_size == 1) {
    spec.session->store = c10::make_intrusive<c10d::HashStore>();
  } else {
    info.master_addr = options.master_addr.empty() ? info.master_addr : options.master_addr;
    info.master_port = options.master_port > 0 ? options.master_port : info.master_port;
    spec.session->store = open_store(info.master_addr, info.master_port, info.rank == 0, info.world_size,
                                     connect_timeout(spec), info.rank);
  }
  if (info.world_size == 1 && options.backend == "auto") return false;  // MPI with one rank
  spec.rank = info.rank;
  spec.world_size = info.world_size;
  spec.local_rank = info.local_rank;
  spec.all_on_one_host = info.local_world_size >= info.world_size;
  spec.session->rank = info.rank;
  return true;
}

DeviceReport report_for(const DeviceChoice& choice, int rank, const std::string& backend) {
  DeviceReport r;
  r.rank = rank;
  r.backend = backend;
  r.problem = choice.problem;
  r.kind = choice.device.is_cuda() ? "cuda" : "cpu";
  r.identity = host_name() + "/" + describe_device(choice.device).identity;
  return r;
}

// Waits for `keys`; on a timeout, names the ranks whose key is missing.
void wait_for_ranks(c10d::Store& store, const GroupSpec& spec, const std::vector<std::string>& keys,
                    const char* what) {
  try {
    store.wait(keys, connect_timeout(spec));
  } catch (const std::exception&) {
    std::vector<int> missing;
    for (int r = 0; r < spec.world_size; ++r)
      if (!store.check({keys[static_cast<size_t>(r)]})) missing.push_back(r);
    throw CollectiveError(fmt::format("rank {}: rank(s) {} did not {} within {:.0f} s; are they running?", spec.rank,
                                      describe_ranks(missing), what, connect_timeout(spec).count() / 1000.0));
  }
}

// Every rank's report, through the store, within the connect timeout. Rank 0
// hosts the store, so it waits until every rank has read the reports before
// going on: a refusal must reach every rank, not a closed connection.
std::vector<DeviceReport> exchange_reports(c10d::Store& store, const GroupSpec& spec, const DeviceReport& mine) {
  auto keys_of = [&](const std::string& prefix) {
    std::vector<std::string> keys;
    for (int r = 0; r < spec.world_size; ++r) keys.push_back(prefix + std::to_string(r));
    return keys;
  };
  const auto reports = keys_of("asr/device/"), reads = keys_of("asr/device-read/");
  WatchdogGuard guard("device agreement", spec.rank, 2 * connect_timeout(spec) + spec.watchdog_margin);
  std::vector<DeviceReport> all;
  try {
    store.set(reports[static_cast<size_t>(spec.rank)], c10d_bytes(encode_report(mine)));
    wait_for_ranks(store, spec, reports, "report their device");
    for (int r = 0; r < spec.world_size; ++r) {
      const auto bytes = store.get(reports[static_cast<size_t>(r)]);
      all.push_back(decode_report(r, std::string(bytes.begin(), bytes.end())));
    }
    store.set(reads[static_cast<size_t>(spec.rank)], c10d_bytes("1"));
    if (spec.rank == 0) wait_for_ranks(store, spec, reads, "read the device reports");
  } catch (const CollectiveError&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    throw CollectiveError(fmt::format("rank {}: the rendezvous store failed during the device agreement: {}",
                                      spec.rank, what));
  }
  return all;
}

std::unique_ptr<Communicator> build_group(const std::string& backend, const GroupSpec& spec, c10::Device device) {
  if (backend == "nccl") {
#ifdef ASR_WITH_CUDA
    return make_nccl_communicator(spec, device);
#else
    throw Error("dist.backend = \"nccl\" but this build's LibTorch has no CUDA; use \"gloo\" or \"auto\"");
#endif
  }
  return make_gloo_communicator(spec);
}

}  // namespace

World join_world(const DistOptions& options, const std::string& device_policy) {
  return join_world(options, device_policy, detect_launch());
}

World join_world(const DistOptions& options, const std::string& device_policy, const LaunchInfo& launch) {
  GroupSpec spec = group_spec(options);
  LaunchInfo info = launch;
  const DeviceChoice choice = choose_device(device_policy, info.local_rank);
  World world;
  world.device = choice.device;
  if (!open_rendezvous(options, info, spec)) {
    if (!choice.problem.empty()) throw Error(choice.problem);
    world.comm = make_local_communicator();
    return world;
  }
  // Before any process group: the device every rank will use, agreed by all.
  const auto reports = exchange_reports(*spec.session->store, spec, report_for(choice, info.rank, options.backend));
  const WorldDecision decision = decide_world(reports);
  set_current_device(world.device);
  world.comm = build_group(decision.backend, spec, world.device);
  if (world.comm->rank() == 0) {
    if (!decision.warning.empty()) spdlog::warn("dist: {}", decision.warning);
    spdlog::info("dist: {} ranks via {}, backend {}, collective timeout {:.0f} s, rank 0 at {}:{}",
                 world.comm->world_size(), launcher_name(info.launcher), world.comm->backend_name(),
                 options.timeout_seconds, info.master_addr.empty() ? "(local)" : info.master_addr, info.master_port);
  }
  return world;
}

std::unique_ptr<Communicator> make_communicator(const DistOptions& options) {
  return join_world(options, "cpu").comm;
}

std::unique_ptr<Communicator> make_communicator(const DistOptions& options, const LaunchInfo& launch) {
  return join_world(options, "cpu", launch).comm;
}

}  // namespace asr::distributed
