// Small LJSpeech-1.1 directories built in the test, with tones instead of
// speech so they take milliseconds to make.
#pragma once
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "asr/audio/audio_io.h"
#include "asr/data/preprocess.h"

namespace asr::test {

inline const char* kSentences[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Printing, in the only sense with which we are at present concerned.",
    "In being comparatively modern, the art was soon perfected.",
    "Café owners paid £5 for the naïve façade & the sign.",
    "It's the earliest book printed with movable types.",
    "Forty two line Bible of about fourteen fifty five.",
    "And it is worth mention in passing that, as an example.",
    "The invention of movable metal letters in the middle of the century.",
};

// A tone whose frequency depends on `i`, so utterances differ.
inline std::vector<float> tone(size_t i, int rate, double seconds) {
  std::vector<float> v(static_cast<size_t>(seconds * rate));
  double f = 200.0 + 37.0 * static_cast<double>(i % 23);
  for (size_t k = 0; k < v.size(); ++k) v[k] = 0.3f * static_cast<float>(std::sin(2 * M_PI * f * k / rate));
  return v;
}

// Writes `n` good rows (ids T0000...) with varying rates and lengths; returns
// their ids. Extra metadata lines can be appended by the caller.
inline std::vector<std::string> write_corpus(const std::filesystem::path& dir, size_t n) {
  std::filesystem::create_directories(dir / "wavs");
  std::ofstream meta(dir / "metadata.csv", std::ios::binary);
  std::vector<std::string> ids;
  for (size_t i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "T%04zu", i);
    int rate = (i % 3 == 0) ? 22050 : (i % 3 == 1 ? 44100 : 16000);
    write_wav16((dir / "wavs" / (std::string(id) + ".wav")).string(), tone(i, rate, 0.3 + 0.05 * (i % 7)), rate);
    const char* s = kSentences[i % (sizeof kSentences / sizeof *kSentences)];
    meta << id << "|" << s << "|" << s << "\n";
    ids.push_back(id);
  }
  return ids;
}

// Options for dir/in -> dir/out, small enough for test corpora.
inline PreprocessOptions preprocess_options(const std::filesystem::path& dir, size_t val = 3, size_t test = 3) {
  PreprocessOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "out").string();
  o.val = val;
  o.test = test;
  o.vocab_size = 60;
  o.shards = 3;
  o.threads = 2;
  return o;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace asr::test
