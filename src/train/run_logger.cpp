#include "asr/train/run_logger.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "asr/core/error.h"
#include "asr/core/progress.h"
#include "asr/train/evaluator.h"
#include "asr/train/metrics_log.h"
#include "asr/train/tensorboard.h"

namespace asr {
namespace fs = std::filesystem;

struct RunLogger::Impl {
  bool root = false;
  std::unique_ptr<MetricsLog> metrics;  // metrics.jsonl, appended (a resumed run continues the file)
  std::unique_ptr<TensorBoardWriter> tb;
  std::optional<Progress> bar;
  int64_t last_progress_step = 0;

  // Every record carries its wall-clock time (Unix seconds), so a run can be
  // plotted against time as well as steps.
  void write_metrics(nlohmann::json record) {
    if (!record.contains("time"))
      record["time"] = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    metrics->write(record);
  }
};

RunLogger::RunLogger(const std::string& run_dir, bool is_root, bool tensorboard, const std::string& progress_mode,
                     int64_t total_steps, int64_t start_step)
    : impl_(std::make_unique<Impl>()) {
  impl_->root = is_root;
  if (!is_root) return;
  // Records after the step this run starts from are about to be redone, and
  // a torn last line of a crash is unreadable: both go before appending.
  impl_->metrics = std::make_unique<MetricsLog>(fs::path(run_dir) / "metrics.jsonl", start_step);
  if (tensorboard) {
    impl_->tb = std::make_unique<TensorBoardWriter>(fs::path(run_dir));
    impl_->tb->add_session_start(start_step);
  }
  // "plain" forces periodic lines; "live" and "auto" draw a live line on a terminal.
  bool want_bar = progress_mode == "live" || (progress_mode == "auto" && Progress::stderr_is_terminal());
  if (want_bar) {
    impl_->bar.emplace("train", static_cast<uint64_t>(std::max<int64_t>(0, total_steps - start_step)), "steps");
  }
  impl_->last_progress_step = start_step;
}

RunLogger::~RunLogger() = default;

void RunLogger::log_train(const nlohmann::json& record, const std::vector<double>& perplexity) {
  if (!impl_->root) return;
  nlohmann::json r = record;
  if (!perplexity.empty()) r["perplexity"] = perplexity;
  impl_->write_metrics(r);
  const int64_t step = r.at("step").get<int64_t>();
  if (impl_->tb) {
    for (const char* key : {"loss", "ctc_loss", "vq_loss", "lr", "grad_norm", "audio_sec_per_s", "vq_weight"})
      if (r.contains(key)) impl_->tb->add_scalar(std::string("train/") + key, r[key].get<double>(), step);
    for (size_t k = 0; k < perplexity.size(); ++k)
      impl_->tb->add_scalar("rvq/perplexity_" + std::to_string(k), perplexity[k], step);
    impl_->tb->flush();
  }
  if (!impl_->bar) {
    // Without a live line, the log line is the progress report.
    spdlog::info("step {} epoch {}: loss {:.4f} (ctc {:.4f}, vq {:.4f}) lr {:.2e} grad-norm {:.3f} {:.1f} audio-s/s",
                 step, r.value("epoch", 0), r.value("loss", 0.0), r.value("ctc_loss", 0.0), r.value("vq_loss", 0.0),
                 r.value("lr", 0.0), r.value("grad_norm", 0.0), r.value("audio_sec_per_s", 0.0));
  }
}

void RunLogger::log_eval(int64_t step, const std::string& split, const EvalResult& result) {
  if (!impl_->root) return;
  nlohmann::json r = {{"step", step},
                      {"split", split},
                      {"cer", result.cer()},
                      {"wer", result.wer()},
                      {"utterances", result.utterances},
                      {"char_sub", result.chars.sub},
                      {"char_del", result.chars.del},
                      {"char_ins", result.chars.ins},
                      {"char_ref", result.chars.ref_len},
                      {"word_sub", result.words.sub},
                      {"word_del", result.words.del},
                      {"word_ins", result.words.ins},
                      {"word_ref", result.words.ref_len},
                      {"seconds", result.wall_seconds}};
  impl_->write_metrics(r);
  if (impl_->bar) std::fputc('\n', stderr);
  spdlog::info("eval {} at step {}: CER {:.2f}% WER {:.2f}% ({} utterances, {:.1f} s)", split, step,
               100 * result.cer(), 100 * result.wer(), result.utterances, result.wall_seconds);
  std::string samples;
  for (const auto& s : result.samples) {
    spdlog::info("  {} ref: {}", s.id, s.reference);
    spdlog::info("  {} hyp: {}", s.id, s.hypothesis);
    samples += "**" + s.id + "**  \nref: " + s.reference + "  \nhyp: " + s.hypothesis + "\n\n";
  }
  if (impl_->tb) {
    impl_->tb->add_scalar(split + "/cer", result.cer(), step);
    impl_->tb->add_scalar(split + "/wer", result.wer(), step);
    if (!samples.empty()) impl_->tb->add_text(split + "/samples", samples, step);
    impl_->tb->flush();
  }
}

void RunLogger::log_stragglers(const nlohmann::json& record) {
  if (!impl_->root) return;
  impl_->write_metrics(record);
  if (!impl_->tb) return;
  const int64_t step = record.at("step").get<int64_t>();
  for (const char* phase : {"data_wait", "forward", "backward", "allreduce_wait", "optimizer"}) {
    const auto& per_rank = record.at(std::string(phase) + "_ms");
    for (size_t r = 0; r < per_rank.size(); ++r)
      impl_->tb->add_scalar(fmt::format("step_time_ms/{}/rank_{}", phase, r), per_rank[r].get<double>(), step);
  }
  impl_->tb->flush();
}

void RunLogger::progress(int64_t step, const std::string& summary) {
  if (!impl_->root || !impl_->bar) return;
  impl_->bar->advance(static_cast<uint64_t>(step - impl_->last_progress_step), summary);
  impl_->last_progress_step = step;
}

void RunLogger::finish() {
  if (impl_->bar) impl_->bar->finish();
  if (impl_->tb) impl_->tb->flush();
}

}  // namespace asr
