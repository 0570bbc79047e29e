#include "asr/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>

#include "asr/audio/audio_io.h"
#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"
#include "asr/core/file_checks.h"
#include "asr/data/shard_format.h"
#include "asr/text/tokenizer.h"
#include "h5.h"

namespace asr {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

using AudioPtr = std::shared_ptr<const std::vector<int16_t>>;

// The fix for anything wrong with a preprocessed directory.
constexpr const char* kRerun = "; re-run asr_preprocess to rebuild the directory";

struct Shard {
  std::string path;
  h5::Handle file;
  size_t first = 0;  // index of its first utterance in the split
  int64_t audio_length = 0;
  std::vector<int64_t> offsets, token_offsets;
  std::vector<int32_t> tokens;
};

struct CacheEntry {
  bool present = false;
  std::shared_future<AudioPtr> audio;
  uint64_t last_use = 0;
  size_t bytes = 0;
};

void check_offsets(const std::vector<int64_t>& off, size_t n, int64_t total, const std::string& name,
                   const std::string& path) {
  if (off.size() != n + 1) throw DataError(path + ": '" + name + "' has " + std::to_string(off.size()) +
                                       " entries, expected " + std::to_string(n + 1) + " (corrupt shard?)" + kRerun);
  if (off.front() != 0 || off.back() != total)
    throw DataError(path + ": '" + name + "' does not span its data (corrupt shard?)" + kRerun);
  for (size_t i = 1; i < off.size(); ++i)
    if (off[i] < off[i - 1]) throw DataError(path + ": '" + name + "' is not ascending (corrupt shard?)" + kRerun);
}

}  // namespace

struct Dataset::Impl {
  std::string dir, split, tokenizer_path;
  json manifest;
  int sample_rate = 0;
  int vocab_size = 0;  // of the tokenizer file: token ids must be in [1, vocab_size)
  size_t cache_limit = 0;
  std::vector<Shard> shards;
  std::vector<size_t> shard_of;  // utterance -> shard
  std::vector<std::string> ids, text, normalized;

  mutable std::mutex cache_mutex;
  mutable std::vector<CacheEntry> cache;
  mutable size_t cache_bytes = 0;
  mutable uint64_t tick = 0;

  ~Impl() {
    std::lock_guard<std::mutex> lock(h5::global_mutex());
    shards.clear();
  }

  void add_shard(const json& entry, const fs::path& root, const std::string& manifest_path);
  void check_tokens(const Shard& sh, const std::vector<std::string>& shard_ids) const;

  AudioPtr load_shard_audio(size_t s) const {
    const Shard& sh = shards[s];
    auto audio = std::make_shared<std::vector<int16_t>>(static_cast<size_t>(sh.audio_length));
    std::lock_guard<std::mutex> lock(h5::global_mutex());
    h5::read_int16_range(sh.file.get(), shard::kAudio, 0, sh.audio_length, audio->data(), sh.path);
    return audio;
  }

  // The whole-shard audio from the cache, loading it if needed. Only one
  // thread loads a given shard; others wait on the same future.
  AudioPtr shard_audio(size_t s) const {
    std::promise<AudioPtr> promise;
    std::shared_future<AudioPtr> future;
    bool loader = false;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      CacheEntry& e = cache[s];
      if (!e.present) {
        e.present = true;
        e.audio = promise.get_future().share();
        e.bytes = static_cast<size_t>(shards[s].audio_length) * sizeof(int16_t);
        cache_bytes += e.bytes;
        loader = true;
      }
      e.last_use = ++tick;
      future = e.audio;
      if (loader) evict_locked(s);
    }
    if (loader) {
      try {
        promise.set_value(load_shard_audio(s));
      } catch (...) {
        promise.set_exception(std::current_exception());
        std::lock_guard<std::mutex> lock(cache_mutex);
        if (cache[s].present) {
          cache[s].present = false;
          cache_bytes -= cache[s].bytes;
        }
      }
    }
    return future.get();
  }

  // Drops least recently used shards other than `keep` until under the limit.
  // Threads still holding a dropped shard's pointer keep it alive.
  void evict_locked(size_t keep) const {
    while (cache_bytes > cache_limit) {
      size_t victim = cache.size();
      for (size_t i = 0; i < cache.size(); ++i)
        if (i != keep && cache[i].present && (victim == cache.size() || cache[i].last_use < cache[victim].last_use))
          victim = i;
      if (victim == cache.size()) return;
      cache[victim].present = false;
      cache[victim].audio = {};
      cache_bytes -= cache[victim].bytes;
    }
  }

  void read_audio(size_t i, std::vector<float>& out) const {
    const Shard& sh = shards[shard_of[i]];
    size_t local = i - sh.first;
    int64_t begin = sh.offsets[local], count = sh.offsets[local + 1] - begin;
    const size_t shard_bytes = static_cast<size_t>(sh.audio_length) * sizeof(int16_t);
    if (shard_bytes <= cache_limit) {
      AudioPtr audio = shard_audio(shard_of[i]);
      out = from_int16(audio->data() + begin, static_cast<size_t>(count));
      return;
    }
    std::vector<int16_t> pcm(static_cast<size_t>(count));
    {
      std::lock_guard<std::mutex> lock(h5::global_mutex());
      h5::read_int16_range(sh.file.get(), shard::kAudio, begin, count, pcm.data(), sh.path);
    }
    out = from_int16(pcm.data(), pcm.size());
  }
};

Dataset::Dataset(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dataset::Dataset(Dataset&&) noexcept = default;
Dataset& Dataset::operator=(Dataset&&) noexcept = default;
Dataset::~Dataset() = default;

namespace {

json read_manifest(const std::string& dir, const std::string& manifest_path) {
  std::error_code ec;
  if (!fs::exists(manifest_path, ec))
    throw Error(manifest_path + " not found: is " + dir + " an asr_preprocess output directory?");
  require_regular_input(manifest_path, "dataset manifest");  // a FIFO would block the read
  json m;
  try {
    m = json::parse(read_file(manifest_path));
  } catch (const json::exception& e) {
    throw DataError(manifest_path + " is not valid JSON (" + e.what() + ")" + kRerun);
  }
  if (m.value("format", std::string()) != shard::kFormatName)
    throw DataError(manifest_path + " is not an asr_preprocess manifest (format is not '" +
                    std::string(shard::kFormatName) + "')");
  const int version = m.at("format_version").get<int>();
  if (version != shard::kFormatVersion)
    throw DataError(manifest_path + " has format version " + std::to_string(version) + " but this build reads " +
                    std::to_string(shard::kFormatVersion) + "; re-run asr_preprocess");
  return m;
}

// A manifest number that disagrees with the data: a hand edit, a damaged or
// replaced file, or a mix of two runs; either way the directory cannot be trusted.
[[noreturn]] void manifest_disagrees(const std::string& manifest_path, const std::string& field, const std::string& says,
                                     const std::string& actual, const std::string& where) {
  throw DataError(manifest_path + ": " + field + " is " + says + " but " + where + " has " + actual +
                  " (the file or the manifest was changed after preprocessing, or they come from two runs)" + kRerun);
}

// A file the manifest lists: present, a regular file (a FIFO would block),
// and with verify_checksums the CRC-32C the manifest recorded.
void check_listed_file(const std::string& path, const std::string& manifest_path, const json& entry,
                       bool verify_checksums, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw DataError(path + ": " + what + " listed in " + manifest_path + " is missing" + kRerun);
  require_regular_input(path, what);
  if (entry.contains("bytes") && entry.at("bytes").get<uintmax_t>() != fs::file_size(path))
    manifest_disagrees(manifest_path, what + " " + fs::path(path).filename().string() + " bytes", entry.at("bytes").dump(),
                       std::to_string(fs::file_size(path)), path);
  if (!verify_checksums) return;
  const std::string want = entry.at("crc32c").get<std::string>();
  const std::string crc = crc32c_file_hex(path);
  if (crc != want)
    throw DataError(path + ": checksum mismatch (crc32c " + crc + ", " + manifest_path + " says " + want + "); the " +
                    what + " is corrupt or was changed after preprocessing" + kRerun +
                    " (or skip the check: asr_decode --no-verify, asr_ddp --set data.verify_checksums=false)");
}

bool same_seconds(double a, double b) { return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b)); }

// Every *.h5 file in the directory must be one of the manifest's shards: a
// stray one is left over from another run (or copied in) and would be
// silently ignored.
void check_no_stray_shards(const fs::path& root, const json& m, const std::string& manifest_path) {
  std::set<std::string> listed;
  for (const auto& [name, split] : m.at("splits").items())
    for (const json& entry : split.at("shards")) listed.insert(entry.at("file").get<std::string>());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".h5" && !listed.count(name))
      throw DataError(entry.path().string() + " is not listed in " + manifest_path +
                      ": a shard of another preprocessing run? Remove it, or re-run asr_preprocess");
  }
  if (ec) throw DataError("cannot list " + root.string() + ": " + ec.message());
}

// The tokenizer's real vocabulary size, which token ids are checked against.
int tokenizer_vocab(const std::string& path, const json& tok, const std::string& manifest_path) {
  int vocab = 0;
  try {
    vocab = Tokenizer::from_file(path).vocab_size();
  } catch (const Error& e) {
    throw DataError(std::string(e.what()) + kRerun);
  }
  const int says = tok.at("vocab_size").get<int>();
  if (says != vocab)
    manifest_disagrees(manifest_path, "tokenizer.vocab_size", std::to_string(says), std::to_string(vocab) + " pieces",
                       path);
  return vocab;
}

}  // namespace

// Token ids are model outputs: one outside [1, vocab) would index past the
// CTC head (0 is the blank, which is never a target).
void Dataset::Impl::check_tokens(const Shard& sh, const std::vector<std::string>& shard_ids) const {
  for (size_t k = 0; k + 1 < sh.token_offsets.size(); ++k)
    for (int64_t t = sh.token_offsets[k]; t < sh.token_offsets[k + 1]; ++t) {
      const int32_t id = sh.tokens[static_cast<size_t>(t)];
      if (id >= 1 && id < vocab_size) continue;
      throw DataError(sh.path + ": utterance " + shard_ids[k] + " has token id " + std::to_string(id) +
                      ", outside the vocabulary of " + tokenizer_path + " (ids 1-" + std::to_string(vocab_size - 1) +
                      "; 0 is the CTC blank): the shard and the tokenizer come from different runs or the shard "
                      "is corrupt" + kRerun);
    }
}

// Opens one shard listed in the manifest, checks it against the manifest and
// appends its utterances' index entries. Caller holds the HDF5 lock and has
// checked the file (check_listed_file).
void Dataset::Impl::add_shard(const json& entry, const fs::path& root, const std::string& manifest_path) {
  Shard sh;
  sh.path = (root / entry.at("file").get<std::string>()).string();
  sh.file = h5::open_file(sh.path);
  hid_t f = sh.file.get();
  if (h5::read_int_attribute(f, shard::kAttrFormatVersion, sh.path) != shard::kFormatVersion)
    throw DataError(sh.path + ": shard format version differs from the manifest's" + kRerun);
  if (h5::read_int_attribute(f, shard::kAttrSampleRate, sh.path) != sample_rate)
    throw DataError(sh.path + ": sample rate differs from the manifest's" + kRerun);
  auto shard_ids = h5::read_strings(f, shard::kIds, sh.path);
  auto shard_text = h5::read_strings(f, shard::kText, sh.path);
  auto shard_norm = h5::read_strings(f, shard::kNormalized, sh.path);
  sh.offsets = h5::read_int64(f, shard::kOffsets, sh.path);
  sh.token_offsets = h5::read_int64(f, shard::kTokenOffsets, sh.path);
  sh.tokens = h5::read_int32(f, shard::kTokens, sh.path);
  sh.audio_length = h5::dataset_length(f, shard::kAudio, sh.path);
  const size_t n = shard_ids.size();
  if (shard_text.size() != n || shard_norm.size() != n)
    throw DataError(sh.path + ": its ids, text and normalized datasets differ in length (corrupt shard?)" + kRerun);
  check_offsets(sh.offsets, n, sh.audio_length, shard::kOffsets, sh.path);
  check_offsets(sh.token_offsets, n, static_cast<int64_t>(sh.tokens.size()), shard::kTokenOffsets, sh.path);
  check_tokens(sh, shard_ids);
  const std::string file = "shard " + entry.at("file").get<std::string>();
  if (entry.at("utterances").get<size_t>() != n)
    manifest_disagrees(manifest_path, file + " utterances", entry.at("utterances").dump(), std::to_string(n), sh.path);
  if (entry.at("samples").get<int64_t>() != sh.audio_length)
    manifest_disagrees(manifest_path, file + " samples", entry.at("samples").dump(), std::to_string(sh.audio_length),
                       sh.path);
  const double seconds = static_cast<double>(sh.audio_length) / sample_rate;
  if (!same_seconds(entry.at("seconds").get<double>(), seconds))
    manifest_disagrees(manifest_path, file + " seconds", entry.at("seconds").dump(), std::to_string(seconds), sh.path);
  sh.first = ids.size();
  for (size_t k = 0; k < n; ++k) {
    shard_of.push_back(shards.size());
    ids.push_back(std::move(shard_ids[k]));
    text.push_back(std::move(shard_text[k]));
    normalized.push_back(std::move(shard_norm[k]));
  }
  shards.push_back(std::move(sh));
}

namespace {

// The split's totals against the shards just read.
void check_split_totals(const json& split_entry, const std::string& split, size_t utterances, double seconds,
                        const std::string& manifest_path) {
  const std::string field = "splits." + split;
  if (split_entry.at("utterances").get<size_t>() != utterances)
    manifest_disagrees(manifest_path, field + ".utterances", split_entry.at("utterances").dump(),
                       std::to_string(utterances), "the split's shards together");
  if (!same_seconds(split_entry.at("seconds").get<double>(), seconds))
    manifest_disagrees(manifest_path, field + ".seconds", split_entry.at("seconds").dump(), std::to_string(seconds),
                       "the split's shards together");
}

}  // namespace

Dataset Dataset::open(const std::string& dir, const std::string& split, bool verify_checksums, size_t cache_bytes) {
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->split = split;
  impl->cache_limit = cache_bytes;
  const fs::path root(dir);
  const std::string manifest_path = (root / "manifest.json").string();
  try {
    impl->manifest = read_manifest(dir, manifest_path);
    const json& m = impl->manifest;
    impl->sample_rate = m.at("sample_rate").get<int>();
    if (impl->sample_rate <= 0)
      throw DataError(manifest_path + ": sample_rate " + std::to_string(impl->sample_rate) + " is not positive" + kRerun);
    const json& tok = m.at("tokenizer");
    impl->tokenizer_path = (root / tok.at("file").get<std::string>()).string();
    if (!m.at("splits").contains(split))
      throw Error(manifest_path + " has no split '" + split + "' (expected train, val or test)");  // a wrong name: usage
    check_no_stray_shards(root, m, manifest_path);
    check_listed_file(impl->tokenizer_path, manifest_path, tok, verify_checksums, "tokenizer");
    impl->vocab_size = tokenizer_vocab(impl->tokenizer_path, tok, manifest_path);
    const json& split_entry = m.at("splits").at(split);
    // Checksums first, outside the HDF5 lock: they read whole files.
    for (const json& entry : split_entry.at("shards"))
      check_listed_file((root / entry.at("file").get<std::string>()).string(), manifest_path, entry, verify_checksums,
                        "shard");
    std::lock_guard<std::mutex> lock(h5::global_mutex());
    for (const json& entry : split_entry.at("shards")) impl->add_shard(entry, root, manifest_path);
    int64_t samples = 0;
    for (const Shard& sh : impl->shards) samples += sh.audio_length;
    check_split_totals(split_entry, split, impl->ids.size(), static_cast<double>(samples) / impl->sample_rate,
                       manifest_path);
  } catch (const json::exception& e) {
    throw DataError(manifest_path + " is missing a field or has a wrong type (" + e.what() + ")" + kRerun);
  }
  impl->cache.resize(impl->shards.size());
  return Dataset(std::move(impl));
}

size_t Dataset::size() const { return impl_->ids.size(); }
int Dataset::sample_rate() const { return impl_->sample_rate; }

int64_t Dataset::num_samples(size_t i) const {
  const Shard& sh = impl_->shards[impl_->shard_of.at(i)];
  size_t local = i - sh.first;
  return sh.offsets[local + 1] - sh.offsets[local];
}

double Dataset::duration(size_t i) const { return static_cast<double>(num_samples(i)) / impl_->sample_rate; }
const std::string& Dataset::id(size_t i) const { return impl_->ids.at(i); }
const std::string& Dataset::normalized(size_t i) const { return impl_->normalized.at(i); }

size_t Dataset::num_tokens(size_t i) const {
  const Shard& sh = impl_->shards[impl_->shard_of.at(i)];
  size_t local = i - sh.first;
  return static_cast<size_t>(sh.token_offsets[local + 1] - sh.token_offsets[local]);
}

Dataset::Utterance Dataset::get(size_t i) const {
  if (i >= size()) throw std::out_of_range("Dataset::get: index " + std::to_string(i) + " >= size " + std::to_string(size()));
  Utterance u;
  u.id = impl_->ids[i];
  u.text = impl_->text[i];
  u.normalized = impl_->normalized[i];
  const Shard& sh = impl_->shards[impl_->shard_of[i]];
  size_t local = i - sh.first;
  u.tokens.assign(sh.tokens.begin() + sh.token_offsets[local], sh.tokens.begin() + sh.token_offsets[local + 1]);
  impl_->read_audio(i, u.audio);
  return u;
}

std::string Dataset::tokenizer_path() const { return impl_->tokenizer_path; }
const nlohmann::json& Dataset::manifest() const { return impl_->manifest; }
const std::string& Dataset::split() const { return impl_->split; }
const std::string& Dataset::dir() const { return impl_->dir; }
int Dataset::vocab_size() const { return impl_->vocab_size; }

}  // namespace asr
