#include "shard_writer.h"

#include <algorithm>

#include "asr/core/error.h"
#include "asr/data/shard_format.h"

namespace asr {
namespace {
// 512 KiB chunks: large enough for fast sequential reads, small enough that a
// per-utterance hyperslab read does not pull in much extra.
constexpr hsize_t kChunkSamples = 1 << 18;
constexpr size_t kFlushSamples = 1 << 22;
}  // namespace

ShardWriter::ShardWriter(std::string path, int sample_rate, const std::string& split, int64_t expected_samples)
    : path_(std::move(path)), sample_rate_(sample_rate) {
  std::lock_guard<std::mutex> lock(h5::global_mutex());
  file_ = h5::create_file(path_);
  h5::write_int_attribute(file_.get(), shard::kAttrSampleRate, sample_rate, path_);
  h5::write_int_attribute(file_.get(), shard::kAttrFormatVersion, shard::kFormatVersion, path_);
  h5::write_string_attribute(file_.get(), shard::kAttrSplit, split, path_);
  hsize_t zero = 0, unlimited = H5S_UNLIMITED;
  h5::Handle space(H5Screate_simple(1, &zero, &unlimited), H5Sclose);
  h5::Handle dcpl = h5::deterministic_dcpl();
  hsize_t chunk = std::clamp<hsize_t>(static_cast<hsize_t>(std::max<int64_t>(expected_samples, 0)), 4096, kChunkSamples);
  H5Pset_chunk(dcpl.get(), 1, &chunk);
  audio_ = h5::Handle(h5::check(H5Dcreate2(file_.get(), shard::kAudio, H5T_STD_I16LE, space.get(), H5P_DEFAULT,
                                           dcpl.get(), H5P_DEFAULT),
                                path_, "cannot create the audio dataset"),
                      H5Dclose);
}

ShardWriter::~ShardWriter() {
  // Only reached open after a failure: close under the lock, ignoring errors.
  std::lock_guard<std::mutex> lock(h5::global_mutex());
  audio_.reset();
  file_.reset();
}

void ShardWriter::add(const std::string& id, const std::string& text, const std::string& normalized,
                      const std::vector<int16_t>& audio, const std::vector<int32_t>& tokens) {
  pending_.insert(pending_.end(), audio.begin(), audio.end());
  offsets_.push_back(offsets_.back() + static_cast<int64_t>(audio.size()));
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  token_offsets_.push_back(static_cast<int64_t>(tokens_.size()));
  ids_.push_back(id);
  text_.push_back(text);
  normalized_.push_back(normalized);
  durations_.push_back(static_cast<double>(audio.size()) / sample_rate_);
  if (pending_.size() >= kFlushSamples) flush_audio();
}

void ShardWriter::flush_audio() {
  if (pending_.empty()) return;
  std::lock_guard<std::mutex> lock(h5::global_mutex());
  hsize_t start = static_cast<hsize_t>(written_), count = pending_.size(), total = start + count;
  h5::check(H5Dset_extent(audio_.get(), &total), path_, "cannot extend the audio dataset");
  h5::Handle space(H5Dget_space(audio_.get()), H5Sclose);
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  h5::Handle mem(H5Screate_simple(1, &count, nullptr), H5Sclose);
  h5::check(H5Dwrite(audio_.get(), H5T_NATIVE_INT16, mem.get(), space.get(), H5P_DEFAULT, pending_.data()), path_,
            "cannot write audio");
  written_ += static_cast<int64_t>(count);
  pending_.clear();
}

ShardWriter::Result ShardWriter::close() {
  flush_audio();
  std::lock_guard<std::mutex> lock(h5::global_mutex());
  const hid_t f = file_.get();
  h5::write_int64(f, shard::kOffsets, offsets_, path_);
  h5::write_int64(f, shard::kTokenOffsets, token_offsets_, path_);
  h5::write_int32(f, shard::kTokens, tokens_, path_);
  h5::write_strings(f, shard::kIds, ids_, path_);
  h5::write_strings(f, shard::kText, text_, path_);
  h5::write_strings(f, shard::kNormalized, normalized_, path_);
  h5::write_double(f, shard::kDurations, durations_, path_);
  h5::check(audio_.close(), path_, "cannot close the audio dataset");
  h5::check(H5Fflush(f, H5F_SCOPE_GLOBAL), path_, "cannot flush");
  h5::check(file_.close(), path_, "cannot close");
  Result r;
  r.utterances = ids_.size();
  r.samples = written_;
  r.seconds = static_cast<double>(written_) / sample_rate_;
  return r;
}

}  // namespace asr
