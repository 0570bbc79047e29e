// Audio files in and out. Loading accepts anything libsndfile reads (WAV,
// FLAC, OGG, any rate, PCM or float, any channel count), downmixes to mono and
// resamples with libsoxr's high-quality filter. Every failure a user's file
// can cause throws asr::Error naming the file and the reason.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asr {

struct AudioInfo {
  int sample_rate = 0;
  int channels = 0;
  int64_t frames = 0;
  double duration() const { return sample_rate > 0 ? static_cast<double>(frames) / sample_rate : 0.0; }
};

// Reads only the header. Throws asr::Error for missing, unreadable or
// non-audio files.
AudioInfo probe_audio(const std::string& path);

// Mono float samples in [-1, 1] at `target_rate` (0 keeps the file's rate).
// The result has round(frames * target_rate / file_rate) samples. Throws
// asr::Error on unreadable, truncated or empty (zero-frame) files.
std::vector<float> load_audio(const std::string& path, int target_rate, AudioInfo* info = nullptr);

// Resamples mono audio with libsoxr (HQ). Output length is exactly
// round(in.size() * to_rate / from_rate).
std::vector<float> resample(const std::vector<float>& in, int from_rate, int to_rate);

// Float [-1, 1] to int16 with rounding and clipping, and back.
std::vector<int16_t> to_int16(const float* samples, size_t n);
std::vector<float> from_int16(const int16_t* samples, size_t n);

// Writes a mono 16-bit PCM WAV atomically (temp name + rename).
void write_wav16(const std::string& path, const std::vector<float>& samples, int sample_rate);

}  // namespace asr
