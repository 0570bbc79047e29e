// asr_ddp's command line. Flags override the config file; --set overrides any key.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace asr {

struct TrainCliOptions {
  std::string config_path;
  std::optional<std::string> data_dir;
  std::optional<std::string> run_dir;
  std::optional<int64_t> max_steps;
  std::optional<int64_t> checkpoint_every;
  std::optional<std::string> resume;  // "auto" or a checkpoint path
  std::optional<int64_t> seed;  // signed, so that -1 is reported as -1
  bool eval_only = false;
  bool allow_fresh_start = false;  // --resume auto may start from step 0 when every checkpoint is unreadable
  bool config_reference = false;
  std::optional<int> plan_world_size;  // --plan --world-size N: print the run's plan and exit  // print the key reference of docs/config.md and exit
  std::vector<std::string> overrides;  // section.key=value, applied in order
  std::optional<std::string> diagnose_run_dir;  // --diagnose RUN_DIR: explain a hang from the flight dumps and exit

  // The flags as --set style overrides, after the user's own --set list, so
  // that all of them go through the config's validation with the same errors.
  std::vector<std::string> as_overrides() const;
  // What the user typed for each of as_overrides(), for errors: "--set SPEC"
  // or the flag ("--max-steps -1").
  std::vector<std::string> override_origins() const;
};

// Parses argv. Returns nullopt after printing --help; throws asr::Error on bad usage.
std::optional<TrainCliOptions> parse_train_cli(int argc, char** argv);

}  // namespace asr
