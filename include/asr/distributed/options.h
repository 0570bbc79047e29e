// The [dist] section of the config: how ranks find each other, how long a
// collective may take, and how gradients travel. Plain structs without
// torch, so the config can hold them directly.
#pragma once
#include <string>

namespace asr::distributed {

// Gradient buckets (GradientSynchronizer).
struct GradSyncOptions {
  double bucket_mb = 25.0;
  double first_bucket_mb = 1.0;
  bool bf16_compress = false;  // all-reduce float gradients as bfloat16 (half the bytes, ~3 digits)
  bool overlap = true;         // false: everything is reduced in finish_step (a baseline for benchmarks)
};

struct DistOptions {
  std::string backend = "auto";          // auto | gloo | nccl; auto = NCCL when every rank has a GPU
  double timeout_seconds = 300;          // every collective
  double connect_timeout_seconds = 300;  // the rendezvous: ranks may start minutes apart on a cluster
  double watchdog_margin_seconds = 30;   // a guarded call stuck past timeout + margin ends the process
  std::string master_addr;               // overrides MASTER_ADDR and the derived address
  int master_port = 0;                   // overrides MASTER_PORT; 0 = from the environment or a free port
  bool check_collectives = false;        // ranks compare each collective's fingerprint first (a debug aid)
  GradSyncOptions grad;
};

}  // namespace asr::distributed
