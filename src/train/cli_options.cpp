#include "asr/train/cli_options.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "asr/core/config_schema.h"
#include "asr/core/error.h"

namespace asr {

std::vector<std::string> TrainCliOptions::as_overrides() const {
  std::vector<std::string> out = overrides;
  using config::toml_quote;
  if (data_dir) out.push_back("data.dir=" + toml_quote(*data_dir));
  if (run_dir) out.push_back("run_dir=" + toml_quote(*run_dir));
  if (max_steps) out.push_back("train.max_steps=" + std::to_string(*max_steps));
  if (checkpoint_every) out.push_back("checkpoint.every=" + std::to_string(*checkpoint_every));
  if (seed) out.push_back("train.seed=" + std::to_string(*seed));
  return out;
}

std::vector<std::string> TrainCliOptions::override_origins() const {
  std::vector<std::string> out;
  for (const auto& spec : overrides) out.push_back("--set " + spec);
  if (data_dir) out.push_back("--data " + *data_dir);
  if (run_dir) out.push_back("--run-dir " + *run_dir);
  if (max_steps) out.push_back("--max-steps " + std::to_string(*max_steps));
  if (checkpoint_every) out.push_back("--checkpoint-every " + std::to_string(*checkpoint_every));
  if (seed) out.push_back("--seed " + std::to_string(*seed));
  return out;
}

namespace {

// The flags that stop before any training: --plan --world-size N, --diagnose RUN_DIR.
struct ToolFlags {
  bool plan = false;
  int world = 0;
  std::string diagnose;
  CLI::Option* world_opt = nullptr;
  CLI::Option* diagnose_opt = nullptr;

  void add_to(CLI::App& app) {
    app.add_flag("--plan", plan,
                 "print what the run would do on --world-size ranks (steps, per-rank batches, padding, CTC "
                 "feasibility, memory estimate) and every problem found, then exit; one process, no training");
    world_opt = app.add_option("--world-size", world, "ranks to plan for (with --plan)")->check(CLI::Range(1, 1 << 20));
    diagnose_opt = app.add_option("--diagnose", diagnose,
                                  "read RUN_DIR/flight/rank-*.json (the flight recorder's dumps) and print which rank "
                                  "the others waited for and what it was doing, then exit; no config needed");
  }

  void apply_to(TrainCliOptions& o) const {
    if (plan && !*world_opt) throw Error("--plan needs --world-size N, the number of ranks to plan for");
    if (!plan && *world_opt) throw Error("--world-size is only for --plan (a launched run takes it from its launcher)");
    if (plan) o.plan_world_size = world;
  }
};

}  // namespace

std::optional<TrainCliOptions> parse_train_cli(int argc, char** argv) {
  TrainCliOptions o;
  CLI::App app{
      "asr_ddp: data-parallel CTC speech recognizer training.\n"
      "Launch one process per rank with mpirun, srun or torchrun-style RANK/WORLD_SIZE variables;\n"
      "a plain invocation trains in one process. Exit status: 0 done, 1 unexpected failure, 2 bad\n"
      "usage or config, 3 unusable data, 4 distributed failure (a rank died or hung), 5 replicas\n"
      "diverged, 75 preempted (checkpointed after SIGUSR1/SIGTERM/SIGINT; requeue and --resume auto).",
      "asr_ddp"};
  auto* config_opt = app.add_option("--config", o.config_path, "TOML config file (see configs/ and docs/config.md)");
  std::string data, run, resume;
  int64_t max_steps = 0, ckpt_every = 0;
  int64_t seed = 0;
  auto* data_opt = app.add_option("--data", data, "preprocessed dataset directory (overrides data.dir)");
  auto* run_opt = app.add_option("--run-dir", run, "run directory for logs, metrics and checkpoints");
  auto* steps_opt = app.add_option("--max-steps", max_steps, "stop after this many optimizer steps");
  auto* every_opt = app.add_option("--checkpoint-every", ckpt_every, "checkpoint every N steps");
  auto* resume_opt = app.add_option("--resume", resume, "'auto' (newest valid checkpoint in the run dir) or a path");
  auto* seed_opt = app.add_option("--seed", seed, "random seed (overrides train.seed)");
  app.add_flag("--allow-fresh-start", o.allow_fresh_start,
               "with --resume auto: train from step 0 when the run has checkpoints but none is readable "
               "(otherwise that is an error listing them)");
  app.add_flag("--eval-only", o.eval_only, "evaluate the resumed checkpoint on the validation split and exit");
  app.add_option("--set", o.overrides, "override a config key: section.key=value (TOML value), repeatable");
  app.add_flag("--config-reference", o.config_reference,
               "print every config key with its type, default and meaning (docs/config.md) and exit");
  ToolFlags tools;
  tools.add_to(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    throw Error(std::string(e.what()) + " (run asr_ddp --help for usage)");
  }
  if (*tools.diagnose_opt) {
    o.diagnose_run_dir = tools.diagnose;
    return o;
  }
  if (!*config_opt && !o.config_reference) throw Error("--config is required (run asr_ddp --help for usage)");
  if (*data_opt) o.data_dir = data;
  if (*run_opt) o.run_dir = run;
  if (*steps_opt) o.max_steps = max_steps;
  if (*every_opt) o.checkpoint_every = ckpt_every;
  if (*resume_opt) o.resume = resume;
  if (*seed_opt) o.seed = seed;
  tools.apply_to(o);
  if (o.eval_only && !o.resume) o.resume = "auto";
  return o;
}

}  // namespace asr
