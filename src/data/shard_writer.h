// Writes one shard: audio streams to disk in large appends while the small
// per-utterance columns stay in memory until close(). Private to the module.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "h5.h"

namespace asr {

class ShardWriter {
 public:
  // `expected_samples` sizes the HDF5 chunks so small shards stay small.
  ShardWriter(std::string path, int sample_rate, const std::string& split, int64_t expected_samples);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add(const std::string& id, const std::string& text, const std::string& normalized,
           const std::vector<int16_t>& audio, const std::vector<int32_t>& tokens);

  struct Result {
    size_t utterances = 0;
    int64_t samples = 0;
    double seconds = 0;
  };
  // Writes the index datasets and closes the file; throws asr::DataError
  // naming the file and the system's reason when anything fails.
  Result close();

 private:
  void flush_audio();

  std::string path_;
  int sample_rate_;
  h5::Handle file_, audio_;
  std::vector<int16_t> pending_;
  int64_t written_ = 0;
  std::vector<int64_t> offsets_{0}, token_offsets_{0};
  std::vector<int32_t> tokens_;
  std::vector<std::string> ids_, text_, normalized_;
  std::vector<double> durations_;
};

}  // namespace asr
