// asr_ddp: data-parallel training of the CTC recognizer.
// Phases: options -> world -> config -> logging -> trainer (data, model,
// optimizer) -> resume -> train or evaluate. The logic lives in src/train and
// src/dist; this file only orders it and maps failures to exit statuses.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>

#include "asr/core/error.h"
#include "asr/dist/bootstrap.h"
#include "asr/train/cli_options.h"
#include "asr/train/config.h"
#include "asr/train/run_setup.h"
#include "asr/train/trainer.h"

int main(int argc, char** argv) {
  int rank = -1;
  try {
    // 1. Options: flags become config overrides, checked like the file.
    auto cli = asr::parse_train_cli(argc, argv);
    if (!cli) return asr::kExitOk;
    asr::TrainConfig config = asr::load_config(cli->config_path, cli->as_overrides());

    // 2. World: rank, world size and the process group (Gloo or NCCL).
    auto comm = asr::dist::make_communicator(asr::dist_options_from(config));
    rank = comm->rank();

    // 3. Logging and the run directory: console on rank 0, a file per rank.
    asr::prepare_run(config, *comm);

    // 4. Data, model, optimizer; 5. resume; 6. train or evaluate.
    asr::Trainer trainer(config, *comm);
    if (cli->resume) trainer.resume(*cli->resume);
    if (cli->eval_only) {
      auto result = trainer.evaluate();
      if (comm->is_root()) std::printf("step %lld: CER %.4f WER %.4f over %lld utterances\n",
                                       (long long)trainer.step(), result.cer(), result.wer(),
                                       (long long)result.utterances);
      return asr::kExitOk;
    }
    return trainer.train();
  } catch (const asr::dist::CollectiveError& e) {
    std::fprintf(stderr, "asr_ddp: rank %d: distributed failure: %s\n", rank, e.what());
    return asr::kExitFailure;
  } catch (const asr::Error& e) {
    std::fprintf(stderr, "asr_ddp: %s%s\n", rank >= 0 ? ("rank " + std::to_string(rank) + ": ").c_str() : "",
                 e.what());
    return asr::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asr_ddp: rank %d: unexpected failure: %s\n", rank, e.what());
    return asr::kExitFailure;
  }
}
