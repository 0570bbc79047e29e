#include "asr/train/batch_loader.h"

#include <chrono>

#include "asr/core/thread_pool.h"
#include "asr/data/dataset.h"
#include "asr/train/device_feed.h"

namespace asr {

Batch load_batch(const Dataset& dataset, const std::vector<int64_t>& indices, const AugmentOptions& augment,
                 uint64_t seed, int64_t epoch, ThreadPool* pool) {
  const size_t n = indices.size();
  std::vector<std::vector<float>> audio(n);
  std::vector<std::vector<int32_t>> tokens(n);
  Batch batch;
  batch.indices = indices;
  batch.ids.resize(n);
  batch.texts.resize(n);
  auto load_one = [&](size_t k) {
    auto utt = dataset.get(static_cast<size_t>(indices[k]));
    audio[k] = augment_waveform(utt.audio, dataset.sample_rate(), augment, seed, epoch, indices[k]);
    tokens[k] = std::move(utt.tokens);
    batch.ids[k] = std::move(utt.id);
    batch.texts[k] = std::move(utt.normalized);  // the CTC target text: what CER is measured on
  };
  if (pool && n > 1)
    pool->parallel_for(0, n, load_one);
  else
    for (size_t k = 0; k < n; ++k) load_one(k);

  int64_t longest = 0, total_tokens = 0;
  for (size_t k = 0; k < n; ++k) {
    longest = std::max<int64_t>(longest, static_cast<int64_t>(audio[k].size()));
    total_tokens += static_cast<int64_t>(tokens[k].size());
  }
  batch.audio = torch::zeros({static_cast<int64_t>(n), longest}, torch::kFloat);
  batch.lengths = torch::empty({static_cast<int64_t>(n)}, torch::kLong);
  batch.targets = torch::empty({total_tokens}, torch::kLong);
  batch.target_lengths = torch::empty({static_cast<int64_t>(n)}, torch::kLong);
  float* a = batch.audio.data_ptr<float>();
  int64_t* len = batch.lengths.data_ptr<int64_t>();
  int64_t* tgt = batch.targets.data_ptr<int64_t>();
  int64_t* tlen = batch.target_lengths.data_ptr<int64_t>();
  for (size_t k = 0; k < n; ++k) {
    std::copy(audio[k].begin(), audio[k].end(), a + k * longest);
    len[k] = static_cast<int64_t>(audio[k].size());
    tlen[k] = static_cast<int64_t>(tokens[k].size());
    for (int32_t t : tokens[k]) *tgt++ = t;
    batch.audio_seconds += static_cast<double>(audio[k].size()) / dataset.sample_rate();
  }
  return batch;
}

BatchLoader::BatchLoader(const Dataset& dataset, std::vector<Job> jobs, AugmentOptions augment, uint64_t seed,
                         int prefetch, int threads, const DeviceFeed* feed)
    : dataset_(dataset), jobs_(std::move(jobs)), feed_(feed), augment_(augment), seed_(seed),
      prefetch_(static_cast<size_t>(std::max(1, prefetch))),
      pool_(threads > 1 ? std::make_unique<ThreadPool>(threads) : nullptr) {
  producer_ = std::thread([this] { produce(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  producer_.join();
}

void BatchLoader::produce() {
  for (size_t j = 0; j < jobs_.size(); ++j) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || ready_.size() < prefetch_; });
      if (stop_) return;
    }
    try {
      Batch b = load_batch(dataset_, jobs_[j].indices, augment_, seed_, jobs_[j].epoch, pool_.get());
      b.step = jobs_[j].step;
      if (feed_) feed_->start(b);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(b));
      ++produced_;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    cv_.notify_all();
  }
}

std::optional<Batch> BatchLoader::next() {
  auto start = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mutex_);
  if (consumed_ == jobs_.size()) return std::nullopt;
  cv_.wait(lock, [&] { return !ready_.empty() || error_; });
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (ready_.empty() && error_) std::rethrow_exception(error_);
  Batch b = std::move(ready_.front());
  ready_.pop_front();
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace asr
