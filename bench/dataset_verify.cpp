// What verifying a dataset's checksums costs (docs/data-format.md,
// "Verification"): CRC-32C throughput in memory, then Dataset::open with and
// without verification against reading every utterance of the split, with
// the shards in the page cache (warm) and evicted from it (cold).
//
//   build/bench/dataset_verify [--data DIR --split SPLIT] [--utterances N --utterance-seconds S] [--repeats R]
//
// Without --data it preprocesses a corpus of N tone clips of S seconds at
// 16 kHz into a temporary directory first (default 400 x 5 s: ~64 MB of shards).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "asr/audio/audio_io.h"
#include "asr/core/crc32c.h"
#include "asr/data/dataset.h"
#include "asr/data/preprocess.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string data, split = "train";
  int utterances = 400;
  double utterance_seconds = 5;
  int repeats = 3;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data") a.data = value;
    else if (flag == "--split") a.split = value;
    else if (flag == "--utterances") a.utterances = std::stoi(value);
    else if (flag == "--utterance-seconds") a.utterance_seconds = std::stod(value);
    else if (flag == "--repeats") a.repeats = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return a;
}

// An LJSpeech-style directory of tones, preprocessed into `dir`/data.
std::string make_dataset(const Args& a, const fs::path& dir) {
  fs::create_directories(dir / "in" / "wavs");
  std::ofstream meta(dir / "in" / "metadata.csv");
  const int rate = 16000;
  for (int i = 0; i < a.utterances; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "B%05d", i);
    std::vector<float> v(static_cast<size_t>(a.utterance_seconds * rate));
    for (size_t k = 0; k < v.size(); ++k) v[k] = 0.3f * static_cast<float>(std::sin(0.05 * (1 + i % 17) * k));
    asr::write_wav16((dir / "in" / "wavs" / (std::string(id) + ".wav")).string(), v, rate);
    meta << id << "|tone number " << i << " of the benchmark|tone number " << i << " of the benchmark\n";
  }
  meta.close();
  asr::PreprocessOptions o;
  o.input = (dir / "in").string();
  o.output = (dir / "data").string();
  o.val = o.test = 2;
  o.vocab_size = 60;
  o.shards = 4;
  o.threads = 2;
  asr::run_preprocess(o);
  return o.output;
}

double seconds(const std::function<void()>& fn) {
  const auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double best_of(int repeats, const std::function<void()>& before, const std::function<void()>& fn) {
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    before();
    best = std::min(best, seconds(fn));
  }
  return best;
}

// Drops the shards' pages from the page cache (clean pages only: the files
// are not being written), so the next read comes from the disk.
void evict(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void read_all(const std::string& dir, const std::string& split) {
  auto ds = asr::Dataset::open(dir, split, false);
  size_t samples = 0;
  for (size_t i = 0; i < ds.size(); ++i) samples += ds.get(i).audio.size();
  if (samples == 0) std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  const fs::path tmp = fs::temp_directory_path() / ("asr-bench-verify-" + std::to_string(::getpid()));
  if (a.data.empty()) {
    std::fprintf(stderr, "preprocessing %d x %.1f s of tones into %s ...\n", a.utterances, a.utterance_seconds,
                 tmp.c_str());
    a.data = make_dataset(a, tmp);
  }

  // CRC-32C alone, on a buffer in memory.
  std::vector<char> buf(size_t{64} << 20, 'x');
  uint32_t sink = 0;
  const double t_mem = best_of(a.repeats, [] {}, [&] { sink ^= asr::crc32c(buf.data(), buf.size()); });
  std::printf("CRC-32C in memory: %.0f MB/s (checksum %08x)\n", buf.size() / t_mem / 1e6, sink);

  auto probe = asr::Dataset::open(a.data, a.split, false);
  std::vector<std::string> files;
  double bytes = 0, audio_seconds = 0;
  for (const auto& s : probe.manifest()["splits"][a.split]["shards"]) {
    files.push_back((fs::path(a.data) / s["file"].get<std::string>()).string());
    bytes += static_cast<double>(fs::file_size(files.back()));
    audio_seconds += s["seconds"].get<double>();
  }
  std::printf("split %s of %s: %zu shards, %.1f MB, %zu utterances, %.0f s of audio\n\n", a.split.c_str(),
              a.data.c_str(), files.size(), bytes / 1e6, probe.size(), audio_seconds);
  std::printf("| page cache | open, no verify | open, verify | verification | MB/s | open + read every utterance | "
              "verification / (open + read) |\n| --- | --- | --- | --- | --- | --- | --- |\n");
  for (bool cold : {false, true}) {
    auto before = [&] {
      if (cold) evict(files);
    };
    const double t_open = best_of(a.repeats, before, [&] { asr::Dataset::open(a.data, a.split, false); });
    const double t_verify = best_of(a.repeats, before, [&] { asr::Dataset::open(a.data, a.split, true); });
    const double t_read = best_of(a.repeats, before, [&] { read_all(a.data, a.split); });
    const double cost = std::max(t_verify - t_open, 1e-9);
    std::printf("| %s | %.3f s | %.3f s | %.3f s | %.0f | %.3f s | %.2f |\n", cold ? "cold" : "warm", t_open, t_verify,
                cost, bytes / cost / 1e6, t_read, cost / t_read);
  }
  std::error_code ec;
  fs::remove_all(tmp, ec);
  return 0;
}
