// Launcher detection and the rendezvous. MPI is used for one thing only:
// rank 0 opens the c10d store on a free port and MPI_Bcast tells the others
// where it is; every collective afterwards goes through c10d.
#include "asr/distributed/bootstrap.h"

#ifdef ASR_WITH_MPI
#include <mpi.h>
#endif
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "asr/distributed/device.h"
#include "asr/distributed/world.h"
#include "c10d_communicator.h"
#include "rendezvous.h"

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

// Each store request may take this long (Gloo's own rendezvous goes through it).
milliseconds connect_timeout(const GroupSpec& spec) { return std::max(spec.timeout, spec.connect_timeout); }

std::vector<uint8_t> c10d_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Under mpirun: ranks from MPI itself, the store address from rank 0.
void mpi_rendezvous(const DistOptions& options, LaunchInfo& info, GroupSpec& spec,
                    RendezvousClock::time_point deadline) {
#ifndef ASR_WITH_MPI
  (void)options, (void)info, (void)spec, (void)deadline;
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
  // then tells everyone its host name and the port it got, or -1 when it
  // could not (the others must not wait in MPI_Bcast for a rank that is gone).
  char host[256] = {0};
  int port = -1;
  c10::intrusive_ptr<c10d::TCPStore> store;
  std::exception_ptr failure;
  if (info.rank == 0) {
    std::string addr = options.master_addr.empty() ? host_name() : options.master_addr;
    try {
      store = host_store(addr, options.master_port, info.world_size, connect_timeout(spec));
      port = store->getPort();
    } catch (const std::exception&) {
      failure = std::current_exception();
    }
    std::strncpy(host, addr.c_str(), sizeof(host) - 1);
  }
  MPI_Bcast(host, sizeof(host), MPI_CHAR, 0, MPI_COMM_WORLD);
  MPI_Bcast(&port, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (failure) std::rethrow_exception(failure);
  if (port < 0)
    throw CollectiveError(fmt::format("rank {}: rank 0 could not host the rendezvous store on {} (its error says why)",
                                      info.rank, host));
  info.master_addr = host;
  info.master_port = port;
  if (info.rank != 0) {
    const bool same_host = info.local_world_size == info.world_size || host_name() == info.master_addr;
    store = reach_store(same_host ? "127.0.0.1" : info.master_addr, port, info.rank, info.world_size, deadline,
                        connect_timeout(spec), "rank 0");
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
    const char* agent = lookup(env, "TORCHELASTIC_USE_AGENT_STORE");
    if (agent && std::string_view(agent) == "True") {
      info.agent_store = true;
      info.store_prefix = fmt::format("/worker/attempt_{}", env_int(env, "TORCHELASTIC_RESTART_COUNT", 0));
    }
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

// The store of a TCP launcher (torchrun-style, srun): rank 0 hosts it, or
// torchrun's agent does (its static rendezvous), and the others are clients.
c10::intrusive_ptr<c10d::Store> tcp_rendezvous(const DistOptions& options, LaunchInfo& info, const GroupSpec& spec,
                                               RendezvousClock::time_point deadline) {
  info.master_addr = options.master_addr.empty() ? info.master_addr : options.master_addr;
  info.master_port = options.master_port > 0 ? options.master_port : info.master_port;
  c10::intrusive_ptr<c10d::Store> store;
  if (info.rank == 0 && !info.agent_store)
    store = host_store(info.master_addr, info.master_port, info.world_size, connect_timeout(spec));
  else
    store = reach_store(info.master_addr, info.master_port, info.rank, info.world_size, deadline,
                        connect_timeout(spec), info.agent_store ? "torchrun's agent" : "rank 0");
  if (!info.store_prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(info.store_prefix, store);
  return store;
}

// Every rank marks itself in the store and waits for all the others, with
// progress lines naming the missing ones, until the connect deadline.
void join_ranks(c10d::Store& store, const GroupSpec& spec, RendezvousClock::time_point start,
                RendezvousClock::time_point deadline, const std::string& where) {
  WatchdogGuard guard("rendezvous", spec.rank, spec.connect_timeout + spec.watchdog_margin);
  try {
    mark_rank(store, "asr/joined/", spec.rank);
    wait_for_ranks(store, "asr/joined/", spec.rank, spec.world_size, start, deadline, "join the rendezvous", where);
  } catch (const CollectiveError&) {
    throw;
  } catch (const std::exception& e) {
    throw CollectiveError(fmt::format("rank {}: the rendezvous store {} failed while the ranks joined: {} (is rank 0, "
                                      "or the launcher that hosts it, still running?)",
                                      spec.rank, where, first_line(e.what())));
  }
}

// Opens the rendezvous store (MPI, TCP, or in-process for one rank with an
// explicit backend) and waits until every rank is there. False: one process
// with "auto", no group needed.
bool open_rendezvous(const DistOptions& options, LaunchInfo& info, GroupSpec& spec) {
  const auto start = RendezvousClock::now();
  const auto deadline = start + spec.connect_timeout;  // dist.connect_timeout_seconds bounds the whole rendezvous
  if (info.launcher == Launcher::mpi) {
    mpi_rendezvous(options, info, spec, deadline);
  } else if (info.world_size == 1 && options.backend == "auto") {
    return false;
  } else if (info.world_size == 1) {
    spec.session->store = c10::make_intrusive<c10d::HashStore>();
  } else {
    spec.session->store = tcp_rendezvous(options, info, spec, deadline);
  }
  if (info.world_size == 1 && options.backend == "auto") return false;  // MPI with one rank
  spec.rank = info.rank;
  spec.world_size = info.world_size;
  spec.local_rank = info.local_rank;
  spec.all_on_one_host = info.local_world_size >= info.world_size;
  spec.session->rank = info.rank;
  spec.where = info.master_addr.empty() ? "in this process" : fmt::format("at {}:{}", info.master_addr, info.master_port);
  join_ranks(*spec.session->store, spec, start, deadline, spec.where);
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

// Every rank's report, through the store, within the connect timeout. Rank 0
// hosts the store, so it waits until every rank has read the reports before
// going on: a refusal must reach every rank, not a closed connection.
std::vector<DeviceReport> exchange_reports(c10d::Store& store, const GroupSpec& spec, const DeviceReport& mine) {
  WatchdogGuard guard("device agreement", spec.rank, 2 * spec.connect_timeout + spec.watchdog_margin);
  std::vector<DeviceReport> all;
  try {
    store.set("asr/device-report/" + std::to_string(spec.rank), c10d_bytes(encode_report(mine)));
    mark_rank(store, "asr/device/", spec.rank);
    auto start = RendezvousClock::now();
    wait_for_ranks(store, "asr/device/", spec.rank, spec.world_size, start, start + spec.connect_timeout,
                   "report their device", spec.where);
    for (int r = 0; r < spec.world_size; ++r) {
      const auto bytes = store.get("asr/device-report/" + std::to_string(r));
      all.push_back(decode_report(r, std::string(bytes.begin(), bytes.end())));
    }
    mark_rank(store, "asr/device-read/", spec.rank);
    start = RendezvousClock::now();
    if (spec.rank == 0)
      wait_for_ranks(store, "asr/device-read/", spec.rank, spec.world_size, start, start + spec.connect_timeout,
                     "read the device reports", spec.where);
  } catch (const CollectiveError&) {
    throw;
  } catch (const std::exception& e) {
    throw CollectiveError(fmt::format("rank {}: the rendezvous store failed during the device agreement: {}",
                                      spec.rank, first_line(e.what())));
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
    spdlog::info("dist: {} ranks via {}, backend {}, collective timeout {:.0f} s, rendezvous {}{}",
                 world.comm->world_size(), launcher_name(info.launcher), world.comm->backend_name(),
                 options.timeout_seconds, spec.where, info.agent_store ? " (the store of torchrun's agent)" : "");
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
