#include "asr/audio/audio_io.h"

#include <sndfile.h>
#include <soxr.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

// libsndfile quietly shortens a WAV whose data chunk runs past the end of the
// file; its log says "data : <header size> (should be <actual>)". A cut-off
// download must be rejected, not stored as a shorter clip. Streaming writers'
// placeholder sizes (0, 0x7fffffff, 0xffffffff) are not truncation.
void check_not_truncated(SNDFILE* f, const std::string& path) {
  char log[4096] = {0};
  sf_command(f, SFC_GET_LOG_INFO, log, sizeof log - 1);
  const char* p = std::strstr(log, "\ndata : ");
  if (!p) return;
  unsigned long long declared = 0, actual = 0;
  if (std::sscanf(p, "\ndata : %llu (should be %llu)", &declared, &actual) != 2) return;
  if (declared == 0 || declared == 0x7fffffffULL || declared == 0xffffffffULL) return;
  if (actual < declared)
    throw DataError(path + ": truncated file (header promises " + std::to_string(declared) + " data bytes, " +
                std::to_string(actual) + " present)");
}

SndfilePtr open_for_read(const std::string& path, SF_INFO* info) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": file not found");
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not an audio file");
  *info = SF_INFO{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, info);
  if (!f) throw DataError(path + ": not a readable audio file (" + sf_strerror(nullptr) + ")");
  SndfilePtr owned(f);
  if (info->channels <= 0 || info->samplerate <= 0)
    throw DataError(path + ": invalid header (channels " + std::to_string(info->channels) + ", rate " +
                std::to_string(info->samplerate) + ")");
  check_not_truncated(owned.get(), path);
  return owned;
}

}  // namespace

AudioInfo probe_audio(const std::string& path) {
  SF_INFO sfi;
  SndfilePtr f = open_for_read(path, &sfi);
  return AudioInfo{sfi.samplerate, sfi.channels, static_cast<int64_t>(sfi.frames)};
}

std::vector<float> load_audio(const std::string& path, int target_rate, AudioInfo* info_out) {
  SF_INFO sfi;
  SndfilePtr f = open_for_read(path, &sfi);
  AudioInfo info{sfi.samplerate, sfi.channels, static_cast<int64_t>(sfi.frames)};
  if (info.frames <= 0) throw DataError(path + ": contains no audio (0 frames)");

  const int ch = info.channels;
  std::vector<float> mono(static_cast<size_t>(info.frames));
  // Read in blocks so multi-channel files never need a full interleaved copy.
  const sf_count_t block = 65536;
  std::vector<float> buf(static_cast<size_t>(block) * ch);
  sf_count_t done = 0;
  while (done < info.frames) {
    sf_count_t want = std::min<sf_count_t>(block, info.frames - done);
    sf_count_t got = sf_readf_float(f.get(), buf.data(), want);
    if (got <= 0) break;
    if (ch == 1) {
      std::copy(buf.begin(), buf.begin() + got, mono.begin() + done);
    } else {
      const float scale = 1.0f / ch;
      for (sf_count_t i = 0; i < got; ++i) {
        float s = 0;
        for (int c = 0; c < ch; ++c) s += buf[static_cast<size_t>(i * ch + c)];
        mono[static_cast<size_t>(done + i)] = s * scale;
      }
    }
    done += got;
  }
  if (done != info.frames)
    throw DataError(path + ": truncated or corrupt audio data (read " + std::to_string(done) + " of " +
                std::to_string(info.frames) + " frames)");
  for (float& s : mono)
    if (!std::isfinite(s)) throw DataError(path + ": contains NaN or infinite samples");
  if (info_out) *info_out = info;
  if (target_rate <= 0 || target_rate == info.sample_rate) return mono;
  return resample(mono, info.sample_rate, target_rate);
}

std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0)
    throw Error("resample: sample rates must be positive (got " + std::to_string(from_rate) + " -> " +
                std::to_string(to_rate) + ")");
  if (from_rate == to_rate || in.empty()) return in;
  const size_t want = static_cast<size_t>(std::llround(static_cast<double>(in.size()) * to_rate / from_rate));
  std::vector<float> out(want + 64);
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  // One thread per call: callers already run many resamples in parallel.
  soxr_runtime_spec_t rt = soxr_runtime_spec(1);
  size_t odone = 0;
  soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, in.data(), in.size(), nullptr, out.data(), out.size(),
                                  &odone, &io, &q, &rt);
  if (err) throw Error(std::string("libsoxr resampling failed: ") + err);
  // soxr flushes its filter tail, so odone is within a sample or two of the
  // ideal length; pin it to exactly round(n * to / from).
  out.resize(odone);
  out.resize(want, 0.0f);
  return out;
}

std::vector<int16_t> to_int16(const float* samples, size_t n) {
  std::vector<int16_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    float v = std::nearbyint(samples[i] * 32768.0f);
    out[i] = static_cast<int16_t>(std::clamp(v, -32768.0f, 32767.0f));
  }
  return out;
}

std::vector<float> from_int16(const int16_t* samples, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = samples[i] * (1.0f / 32768.0f);
  return out;
}

void write_wav16(const std::string& path, const std::vector<float>& samples, int sample_rate) {
  if (sample_rate <= 0) throw Error("write_wav16: invalid sample rate for " + path);
  std::filesystem::path tmp = temp_path_for(path);
  SF_INFO sfi{};
  sfi.samplerate = sample_rate;
  sfi.channels = 1;
  sfi.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &sfi);
  if (!f) throw DataError("cannot create " + path + ": " + sf_strerror(nullptr));
  std::vector<int16_t> pcm = to_int16(samples.data(), samples.size());
  sf_count_t wrote = sf_write_short(f, pcm.data(), static_cast<sf_count_t>(pcm.size()));
  int rc = sf_close(f);
  if (wrote != static_cast<sf_count_t>(pcm.size()) || rc != 0) {
    ::unlink(tmp.c_str());
    throw DataError("cannot write " + path + " (disk full?)");
  }
  rename_durable(tmp, path);
}

}  // namespace asr
