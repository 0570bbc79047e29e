// Reads one split of an asr_preprocess output directory (docs/data-format.md).
//
// Threading: get() may be called from many threads at once. libhdf5 allows one
// caller at a time, so shards are read whole, once, into a shared in-memory
// cache (bounded by `cache_bytes`, least recently used shard evicted) and
// get() copies from memory without touching HDF5. A shard larger than the
// whole cache is instead read one utterance at a time under the HDF5 lock.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace asr {

class Dataset {
 public:
  static constexpr size_t kDefaultCacheBytes = size_t{2} << 30;

  // Opens `dir`'s manifest.json and the shards of `split` (train, val, test),
  // and checks the directory against its manifest (docs/data-format.md,
  // "Verification"). Throws asr::DataError naming the file and the fix
  // (re-run asr_preprocess) for: a foreign or other-version manifest; a
  // listed shard or tokenizer that is missing or not a regular file; an
  // *.h5 file the manifest does not list; a corrupt shard; utterance,
  // sample or second counts or a vocabulary size that differ from the
  // manifest's; token ids outside the tokenizer's vocabulary; and, with
  // verify_checksums, a shard of the split or the tokenizer whose CRC-32C
  // differs from the manifest's (the only check that reads whole files).
  // A missing manifest and an unknown split are asr::Error (usage: a wrong
  // path or split name).
  static Dataset open(const std::string& dir, const std::string& split, bool verify_checksums = true,
                      size_t cache_bytes = kDefaultCacheBytes);

  Dataset(Dataset&&) noexcept;
  Dataset& operator=(Dataset&&) noexcept;
  ~Dataset();

  struct Utterance {
    std::string id;
    std::string text;        // metadata.csv's normalized column
    std::string normalized;  // the CTC target text (normalize_transcript)
    std::vector<float> audio;    // mono, [-1, 1), at sample_rate()
    std::vector<int32_t> tokens; // tokenizer ids of `normalized`, never the blank
  };

  size_t size() const;
  int sample_rate() const;
  int64_t num_samples(size_t i) const;
  double duration(size_t i) const;
  const std::string& id(size_t i) const;
  const std::string& normalized(size_t i) const;  // the CTC target text, without reading audio
  size_t num_tokens(size_t i) const;
  // Thread-safe; throws std::out_of_range for i >= size().
  Utterance get(size_t i) const;

  std::string tokenizer_path() const;
  int vocab_size() const;  // the tokenizer's; every token id is in [1, vocab_size())
  const nlohmann::json& manifest() const;
  const std::string& split() const;
  const std::string& dir() const;

  struct Impl;  // opaque

 private:
  explicit Dataset(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace asr
