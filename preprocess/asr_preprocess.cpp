// asr_preprocess: an LJSpeech-1.1 directory -> sharded 16 kHz HDF5, a
// sentencepiece tokenizer, manifest.json and rejects.tsv (docs/data-format.md).
// This file is the table of contents; the pipeline is src/data/preprocess.cpp.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/data/preprocess.h"

int main(int argc, char** argv) {
  // 1. Options.
  asr::PreprocessOptions o;
  std::string log_level = "info";
  CLI::App app{"Pack an LJSpeech-1.1 directory into sharded HDF5 with a sentencepiece tokenizer"};
  app.add_option("--input", o.input, "LJSpeech-1.1 directory (metadata.csv + wavs/)")->required();
  app.add_option("--output", o.output, "output directory (must not exist unless --overwrite)")->required();
  app.add_option("--sample-rate", o.sample_rate, "stored sample rate in Hz")->capture_default_str();
  app.add_option("--shards", o.shards, "HDF5 shards per split, balanced by duration")->capture_default_str();
  app.add_option("--vocab-size", o.vocab_size, "tokenizer vocabulary size (upper bound)")->capture_default_str();
  app.add_option("--tokenizer", o.tokenizer, "sentencepiece model type")
      ->check(CLI::IsMember({"bpe", "unigram", "char"}))->capture_default_str();
  app.add_option("--val", o.val, "validation utterances (taken before the test ones, from the end)")
      ->capture_default_str();
  app.add_option("--test", o.test, "test utterances (the last ones)")->capture_default_str();
  app.add_option("--threads", o.threads, "decoding threads (0: all cores)")->capture_default_str();
  app.add_option("--min-duration", o.min_duration, "reject clips shorter than this many seconds")
      ->capture_default_str();
  app.add_option("--max-duration", o.max_duration, "reject clips longer than this many seconds")
      ->capture_default_str();
  app.add_flag("--strict", o.strict, "fail (no output) if any row is rejected");
  app.add_flag("--overwrite", o.overwrite, "replace an existing output directory");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? asr::kExitOk : asr::kExitUsage;
  }

  try {
    asr::setup_logging(log_level);
    // 2. Input and 3. pipeline: read, probe, split, tokenizer, shards, manifest.
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
