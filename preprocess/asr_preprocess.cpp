// asr_preprocess: an LJSpeech-1.1 directory -> sharded 16 kHz HDF5, a
// sentencepiece tokenizer, manifest.json and rejects.tsv (docs/data-format.md).
// This file is the table of contents; the pipeline is src/data/preprocess.cpp.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/data/preprocess.h"

namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

// SIGINT, SIGTERM and SIGHUP ask the pipeline to stop at its next check, so
// the temporary directory is removed on the way out. A second one kills at
// once (SA_RESETHAND); the next run then removes what that one left. Signals
// the caller ignores (nohup, background jobs) stay ignored.
void install_stop_handlers() {
  static_assert(std::atomic<int>::is_always_lock_free, "the handler must be async-signal-safe");
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction current {};
    if (sigaction(signal, nullptr, &current) != 0 || current.sa_handler == SIG_IGN) continue;
    struct sigaction stop {};
    stop.sa_handler = on_stop_signal;
    sigemptyset(&stop.sa_mask);
    stop.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(signal, &stop, nullptr);
  }
}

// A flag value outside its range is a parse error naming the flag, the value
// and the range, before anything runs.
CLI::Validator in_range(const asr::OptionRange& range) {
  auto bound = [&](double v) { return range.integer ? std::to_string(static_cast<long long>(v)) : fmt::format("{}", v); };
  return CLI::Validator([range](std::string& text) { return asr::option_value_problem(range, text); },
                        "in [" + bound(range.lo) + ", " + bound(range.hi) + "]");
}

}  // namespace

int main(int argc, char** argv) {
  namespace range = asr::preprocess_ranges;
  // 1. Options.
  asr::PreprocessOptions o;
  std::string log_level = "info";
  CLI::App app{"Pack an LJSpeech-1.1 directory into sharded HDF5 with a sentencepiece tokenizer"};
  app.add_option("--input", o.input, "LJSpeech-1.1 directory (metadata.csv + wavs/)")->required();
  app.add_option("--output", o.output, "output directory (must not exist unless --overwrite)")->required();
  app.add_option("--sample-rate", o.sample_rate, "stored sample rate in Hz")
      ->check(in_range(range::kSampleRate))->capture_default_str();
  app.add_option("--shards", o.shards, "HDF5 shards per split, balanced by duration")
      ->check(in_range(range::kShards))->capture_default_str();
  app.add_option("--vocab-size", o.vocab_size, "tokenizer vocabulary size (upper bound)")
      ->check(in_range(range::kVocabSize))->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "sentencepiece model type")
      ->check(CLI::IsMember({"bpe", "unigram", "char"}))->capture_default_str();
  app.add_option("--val", o.val, "validation utterances (taken before the test ones, from the end)")
      ->check(in_range(range::kVal))->capture_default_str();
  app.add_option("--test", o.test, "test utterances (the last ones)")
      ->check(in_range(range::kTest))->capture_default_str();
  app.add_option("--threads", o.threads, "decoding threads (0: all cores)")
      ->check(in_range(range::kThreads))->capture_default_str();
  app.add_option("--min-duration", o.min_duration, "reject clips shorter than this many seconds")
      ->check(in_range(range::kMinDuration))->capture_default_str();
  app.add_option("--max-duration", o.max_duration, "reject clips longer than this many seconds")
      ->check(in_range(range::kMaxDuration))->capture_default_str();
  app.add_flag("--strict", o.strict, "fail (no output) if any row is rejected");
  app.add_flag("--overwrite", o.overwrite, "replace an existing output directory");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? asr::kExitOk : asr::kExitUsage;
  }

  try {
    asr::setup_logging(log_level);
    install_stop_handlers();
    o.stop_signal = &g_stop_signal;
    // 2. Input and 3. pipeline: lock, read, probe, split, tokenizer, shards, manifest, swap into place.
    spdlog::info("preprocessing {} -> {}", o.input, o.output);
    asr::PreprocessSummary summary = asr::run_preprocess(o);
    // 4. Summary: the last line carries the throughput.
    spdlog::info("wrote {}", o.output);
    spdlog::info("{}", asr::describe(summary));
    return asr::kExitOk;
  } catch (const std::exception& e) {
    const int code = asr::exit_code_for(e);
    spdlog::error("{}{}", code == asr::kExitFailure ? "unexpected failure: " : "", e.what());
    return code;
  }
}
