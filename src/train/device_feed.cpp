#include "asr/train/device_feed.h"

#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include "asr/train/batch_loader.h"

namespace asr {

struct DeviceFeed::Streams {
  explicit Streams(const c10::Device& device)
      : impl(device.type()), copy(impl.getStreamFromGlobalPool(device, /*isHighPriority=*/false)) {}
  c10::impl::VirtualGuardImpl impl;
  c10::Stream copy;
};

DeviceFeed::DeviceFeed(c10::Device device) : device_(device) {
  if (!device_.is_cpu()) streams_ = std::make_unique<Streams>(device_);
}

DeviceFeed::~DeviceFeed() = default;

void DeviceFeed::start(Batch& batch) const {
  if (!streams_) {
    batch.device_audio = batch.audio;
    return;
  }
  // Pinned memory: the copy is a DMA the host does not wait for.
  auto pinned = batch.audio.pin_memory();
  c10::StreamGuard on_copy_stream(streams_->copy);
  batch.device_audio = pinned.to(device_, /*non_blocking=*/true);
  batch.copied = std::make_shared<c10::Event>(device_.type());
  batch.copied->record(streams_->copy);
}

void DeviceFeed::ready(Batch& batch) const {
  if (!batch.device_audio.defined()) start(batch);  // not started by a loader thread
  if (!streams_ || !batch.copied) return;
  const c10::Stream compute = streams_->impl.getStream(device_);
  batch.copied->block(compute);
  // The memory was allocated on the copy stream; tell the caching allocator
  // it is in use on the compute stream too, so it is not reused too early.
  streams_->impl.recordDataPtrOnStream(batch.device_audio.storage().data_ptr(), compute);
  batch.copied.reset();
}

}  // namespace asr
