// Who am I and how do I reach the others: rank, world size and local rank
// from mpirun, srun or torchrun-style variables, then one Communicator over
// Gloo or NCCL. One binary runs under all three launchers, and as a single
// process when none of them is present.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "asr/distributed/communicator.h"
#include "asr/distributed/options.h"

namespace asr::distributed {

enum class Launcher { single, mpi, slurm, torchrun };
const char* launcher_name(Launcher launcher);

struct LaunchInfo {
  Launcher launcher = Launcher::single;
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr;  // empty under MPI: rank 0 picks and broadcasts it
  int master_port = 0;
  // torchrun's static rendezvous (TORCHELASTIC_USE_AGENT_STORE=True): its
  // agent already serves the store at MASTER_ADDR:MASTER_PORT, so every rank,
  // rank 0 included, is a client, and keys live under store_prefix
  // ("/worker/attempt_N", N = TORCHELASTIC_RESTART_COUNT), as torch's own
  // workers do.
  bool agent_store = false;
  std::string store_prefix;
};

// Reads a variable; nullptr when unset. Tests pass a map instead of getenv.
using EnvLookup = std::function<const char*(const char*)>;

// Decides the launcher from the environment without starting MPI. Precedence:
// torchrun (RANK and WORLD_SIZE, plus TORCHELASTIC_* under the real torchrun), MPI (OMPI_COMM_WORLD_SIZE, PMI_SIZE), Slurm
// (SLURM_PROCID under srun), else a single process. Throws asr::Error naming
// the variable when values are missing or inconsistent.
LaunchInfo detect_launch(const EnvLookup& env = nullptr);

// "gpu[03-05,9],cpu1" -> "gpu03": where rank 0 of a Slurm step runs.
std::string first_host_of_nodelist(const std::string& nodelist);

// A rank's place in the job: its communicator and the device it computes on.
struct World {
  std::unique_ptr<Communicator> comm;
  c10::Device device{c10::kCPU};
};

// Detects the launcher (calling MPI_Init under mpirun), chooses this rank's
// device from `device_policy` (train.device: auto, cpu, cuda; see device.h),
// agrees with every other rank on devices and backend through the
// rendezvous store (world.h), makes the device current and joins the group.
// Every rank fails with the same message, naming the ranks, when they cannot
// agree; a single process with dist.backend = "auto" gets the local communicator.
World join_world(const DistOptions& options, const std::string& device_policy);
World join_world(const DistOptions& options, const std::string& device_policy, const LaunchInfo& launch);

// join_world on the CPU: for tools and tests.
std::unique_ptr<Communicator> make_communicator(const DistOptions& options);
// Joins the group described by `launch` through a TCPStore hosted by rank 0
// at master_addr:master_port. For launchers detect_launch does not know, and
// for tests that run ranks as threads of one process.
std::unique_ptr<Communicator> make_communicator(const DistOptions& options, const LaunchInfo& launch);

}  // namespace asr::distributed
