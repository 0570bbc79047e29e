// Batches reach the GPU while the previous step computes. The loader's
// threads put each batch's audio in pinned host memory and start its copy on
// a side stream (start(), in the loader thread); the training step makes the
// compute stream wait for that copy only when it uses the batch (ready()).
// The host never waits. On the CPU both are no-ops. Written against c10's
// device-generic streams and events, so it builds without CUDA headers.
#pragma once
#include <c10/core/Device.h>

#include <memory>

namespace asr {

struct Batch;

class DeviceFeed {
 public:
  explicit DeviceFeed(c10::Device device);
  ~DeviceFeed();
  DeviceFeed(const DeviceFeed&) = delete;
  DeviceFeed& operator=(const DeviceFeed&) = delete;

  const c10::Device& device() const { return device_; }
  // Loader thread: pins batch.audio and starts batch.device_audio's copy.
  void start(Batch& batch) const;
  // Training thread: batch.device_audio is usable on the current stream after this.
  void ready(Batch& batch) const;

 private:
  c10::Device device_;
  struct Streams;
  std::unique_ptr<Streams> streams_;
};

}  // namespace asr
