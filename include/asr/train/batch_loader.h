// Turns lists of utterance indices into padded tensors on background threads,
// a few batches ahead of the training step, so a step never waits for I/O.
#pragma once
#include <c10/core/Event.h>
#include <torch/types.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "asr/train/augment.h"

namespace asr {

class Dataset;
class DeviceFeed;
class ThreadPool;

struct Batch {
  torch::Tensor audio;           // [B, T] float, zero padded (host)
  torch::Tensor device_audio;    // the same on the training device (DeviceFeed)
  std::shared_ptr<c10::Event> copied;  // the device copy's completion (GPU)
  torch::Tensor lengths;         // [B] int64, true lengths in samples
  torch::Tensor targets;         // [sum(target_lengths)] int64, concatenated token ids
  torch::Tensor target_lengths;  // [B] int64
  std::vector<int64_t> indices;  // utterance indices in the split
  std::vector<std::string> ids, texts;  // texts: the normalized CTC target text
  int64_t step = 0;              // global step this batch belongs to (for checks and logs)
  double audio_seconds = 0;      // before padding

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// Loads one batch synchronously (used by evaluation and tests).
Batch load_batch(const Dataset& dataset, const std::vector<int64_t>& indices, const AugmentOptions& augment,
                 uint64_t seed, int64_t epoch, ThreadPool* pool = nullptr);

class BatchLoader {
 public:
  struct Job {
    std::vector<int64_t> indices;
    int64_t epoch = 0;
    int64_t step = 0;
  };

  // Starts loading `jobs` in order, keeping at most `prefetch` batches ready.
  // `feed` (optional, outliving the loader) starts each batch's copy to the
  // training device from the loader thread.
  BatchLoader(const Dataset& dataset, std::vector<Job> jobs, AugmentOptions augment, uint64_t seed, int prefetch,
              int threads, const DeviceFeed* feed = nullptr);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch in job order, or nullopt after the last. Rethrows a loading error.
  std::optional<Batch> next();
  // Seconds the caller spent blocked in next() so far (a step waiting for I/O shows here).
  double wait_seconds() const { return wait_seconds_; }

 private:
  void produce();

  const Dataset& dataset_;
  std::vector<Job> jobs_;
  const DeviceFeed* feed_;
  AugmentOptions augment_;
  uint64_t seed_;
  size_t prefetch_;
  std::unique_ptr<ThreadPool> pool_;
  std::deque<Batch> ready_;
  std::exception_ptr error_;
  size_t produced_ = 0, consumed_ = 0;
  bool stop_ = false;
  double wait_seconds_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread producer_;
};

}  // namespace asr
