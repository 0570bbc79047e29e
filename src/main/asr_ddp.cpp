// asr_ddp: data-parallel training of the CTC recognizer.
// Phases: options -> config -> world -> run directory and logging -> trainer
// (data, model, optimizer) -> resume -> train or evaluate. The logic lives in
// src/train and src/distributed; this file only orders it and maps failures
// to exit statuses (docs/operations.md lists them).
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>

#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/distributed/bootstrap.h"
#include "asr/distributed/flight_recorder.h"
#include "asr/train/cli_options.h"
#include "asr/train/config.h"
#include "asr/train/flight_diagnosis.h"
#include "asr/train/run_plan.h"
#include "asr/train/run_setup.h"
#include "asr/train/startup_agreement.h"
#include "asr/train/trainer.h"

namespace {

int evaluate_only(asr::Trainer& trainer, const asr::distributed::Communicator& comm) {
  auto result = trainer.evaluate();
  if (result.utterances == 0)
    throw asr::Error("--eval-only: there is no validation split to evaluate on (missing or empty: see the warning "
                     "above); set data.valid_split to a split of the dataset that has utterances");
  if (comm.is_root())
    std::printf("step %lld: CER %.4f WER %.4f over %lld utterances\n", static_cast<long long>(trainer.step()),
                result.cer(), result.wer(), static_cast<long long>(result.utterances));
  return asr::kExitOk;
}

// Every rank's log file ends with how the process ended, so that the rank
// logs alone tell an operator what happened (docs/operations.md).
int log_exit(int code) {
  const char* meaning = code == asr::kExitOk ? "finished" : code == asr::kExitPreempted ? "stopped after a checkpoint" : "";
  asr::log_to_file(code == asr::kExitOk ? "info" : "warning", fmt::format("asr_ddp exits with status {} ({})", code, meaning));
  return code;
}

// The rank as the launcher tells it, for failures before the world formed.
int launch_rank() {
  try {
    return asr::distributed::detect_launch().rank;
  } catch (const std::exception&) {
    return -1;
  }
}

// A failure goes to stderr and into the rank's log file: the open one, or,
// before logging is set up (rendezvous, start-up agreement), the rank's log
// of an earlier attempt in RUN_DIR/logs, when that directory exists.
int report_failure(const std::exception& e, int rank, const std::string& run_dir) {
  const int code = asr::exit_code_for(e);
  const char* kind = code == asr::kExitDistributed ? "distributed failure: "
                     : code == asr::kExitFailure   ? "unexpected failure: "
                                                   : "";
  const std::string who = rank >= 0 ? "rank " + std::to_string(rank) + ": " : "";
  const std::string line = who + kind + e.what();
  std::fprintf(stderr, "asr_ddp: %s\n", line.c_str());
  const std::string logged = fmt::format("{} (exit status {})", line, code);
  if (asr::log_file_open()) {
    asr::log_to_file("error", logged);
  } else if (const int r = rank >= 0 ? rank : launch_rank(); r >= 0 && !run_dir.empty()) {
    asr::append_log_line(run_dir + "/logs/rank-" + std::to_string(r) + ".log", "error", logged);
  }
  return code;
}

// --plan: the report on stdout; any problem makes it an error (exit 2) that
// lists them all, before a single rank has started.
int print_plan(const asr::RunPlan& plan) {
  std::fputs(plan.report.c_str(), stdout);
  if (plan.problems.empty()) {
    std::puts("  problems: none");
    return asr::kExitOk;
  }
  std::string all;
  for (const auto& p : plan.problems) all += "\n  - " + p;
  throw asr::Error(std::to_string(plan.problems.size()) + " problem(s) found by --plan:" + all);
}

}  // namespace

int main(int argc, char** argv) {
  asr::install_crash_handlers();  // before MPI_Init, which keeps handlers it finds
  int rank = -1;
  std::string run_dir;
  try {
    // 1. Options: flags become config overrides, checked like the file.
    auto cli = asr::parse_train_cli(argc, argv);
    if (!cli) return asr::kExitOk;
    if (cli->diagnose_run_dir) {
      std::fputs(asr::diagnose_flight(*cli->diagnose_run_dir).text().c_str(), stdout);
      return asr::kExitOk;
    }
    if (cli->config_reference) {
      std::fputs(asr::config_reference_markdown().c_str(), stdout);
      return asr::kExitOk;
    }
    // 2. Config; determinism before any process group exists (NCCL reads it then).
    asr::TrainConfig config = asr::load_config(cli->config_path, cli->as_overrides(), cli->override_origins());
    asr::configure_determinism(config);
    if (cli->plan_world_size) return print_plan(asr::plan_run(config, *cli->plan_world_size));
    run_dir = config.run_dir;

    // 3. World: rank, world size, this rank's device, and the process group
    //    (NCCL on GPUs, Gloo on CPUs) all ranks agreed on.
    auto world = asr::distributed::join_world(config.dist, config.train.device);
    auto& comm = world.comm;
    rank = comm->rank();
    asr::check_startup_agreement(config, *comm);  // same config, dataset and build on every rank

    // 4. Logging and the run directory: console on rank 0, a file per rank.
    asr::prepare_run(config, *comm, world.device);
    // Flight recorder dumps into RUN_DIR/flight (asr_ddp --diagnose reads them).
    asr::distributed::enable_flight_dumps(config.run_dir + "/flight", rank, comm->world_size());
    comm->check_collectives(config.dist.check_collectives);

    // 5. Data, model, optimizer; 6. resume; 7. train or evaluate.
    asr::Trainer trainer(config, *comm, world.device);
    const bool resumed = cli->resume && trainer.resume(*cli->resume, cli->allow_fresh_start);
    if (cli->eval_only && !resumed)
      throw asr::Error("--eval-only: no checkpoint to evaluate in " + config.run_dir +
                       "/checkpoints; pass --resume PATH to a .ckpt file or the --run-dir of a trained run");
    return log_exit(cli->eval_only ? evaluate_only(trainer, *comm) : trainer.train());
  } catch (const std::exception& e) {
    return report_failure(e, rank, run_dir);
  }
}
