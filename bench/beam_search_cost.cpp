// Time and peak memory of CTC prefix beam search against the beam width, to
// justify asr_decode's cap on --beam (docs/decoding.md, "Search").
//
//   build/bench/beam_search_cost [--seconds S] [--vocab V] [--beams 8,64,256,...] [--limit-s L] [--lm 0|1]
//
// The posteriors are the worst case for the search: nearly flat (an untrained
// or very unsure model), so every token is within the pruning threshold and
// each frame extends every prefix by `beam` tokens. Each width runs in a
// child process, so its peak resident memory is the child's own (less the
// posteriors, measured by a child that only builds them). A width that takes
// longer than --limit-s is killed and reported as such. --lm 1 adds shallow
// fusion with a character 6-gram (every new prefix is scored by the LM).
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "asr/decode/char_lm.h"
#include "asr/decode/prefix_beam_search.h"

namespace {

constexpr double kFramesPerSecond = 16000.0 / 768.0;  // the waveform frontend's hop at 16 kHz

struct Args {
  double seconds = 20;
  int vocab = 256;
  std::vector<int> beams = {8, 32, 64, 128, 256, 512, 1024};
  int limit_s = 120;
  bool lm = false;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") a.seconds = std::stod(value);
    else if (flag == "--vocab") a.vocab = std::stoi(value);
    else if (flag == "--limit-s") a.limit_s = std::stoi(value);
    else if (flag == "--lm") a.lm = value == "1";
    else if (flag == "--beams") {
      a.beams.clear();
      std::istringstream in(value);
      for (std::string b; std::getline(in, b, ',');) a.beams.push_back(std::stoi(b));
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      std::exit(2);
    }
  }
  return a;
}

// Log-softmax of logits drawn within +-1 of each other: no token is ever
// pruned at the default threshold of 10 nats.
std::vector<float> flat_posteriors(int64_t frames, int vocab) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> logit(-1.0f, 1.0f);
  std::vector<float> lp(static_cast<size_t>(frames * vocab));
  for (int64_t t = 0; t < frames; ++t) {
    float* row = lp.data() + t * vocab;
    double sum = 0;
    for (int v = 0; v < vocab; ++v) sum += std::exp(row[v] = logit(rng));
    const float log_sum = static_cast<float>(std::log(sum));
    for (int v = 0; v < vocab; ++v) row[v] -= log_sum;
  }
  return lp;
}

// Token texts of one to three letters (token 0, the blank, has none) and an
// LM trained on random words made of them.
asr::LmFusion synthetic_fusion(int vocab, std::unique_ptr<asr::CharNgramLm>& lm) {
  std::mt19937 rng(2);
  asr::LmFusion f;
  f.token_text.resize(static_cast<size_t>(vocab));
  for (int v = 1; v < vocab; ++v)
    for (int k = 0; k <= v % 3; ++k) f.token_text[static_cast<size_t>(v)] += static_cast<char>('a' + rng() % 26);
  std::vector<std::string> sentences(2000);
  for (auto& s : sentences)
    for (int w = 0; w < 12; ++w) s += f.token_text[1 + rng() % (vocab - 1)] + (w % 3 == 2 ? " " : "");
  lm = std::make_unique<asr::CharNgramLm>(asr::CharNgramLm::train(sentences, 6));
  f.lm = lm.get();
  return f;
}

// Child: builds the posteriors, searches with `beam` (0 = only build them),
// writes the search's wall seconds to `fd`.
[[noreturn]] void child(const Args& a, int beam, int fd) {
  const int64_t frames = std::llround(a.seconds * kFramesPerSecond);
  auto lp = flat_posteriors(frames, a.vocab);
  std::unique_ptr<asr::CharNgramLm> lm;
  asr::BeamSearchOptions o;
  if (a.lm) o.fusion = synthetic_fusion(a.vocab, lm);
  double wall = 0;
  if (beam > 0) {
    o.beam = beam;
    const auto t0 = std::chrono::steady_clock::now();
    auto hyps = asr::ctc_prefix_beam_search(lp.data(), frames, a.vocab, o);
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (hyps.empty()) std::_Exit(1);
  }
  if (::write(fd, &wall, sizeof wall) != sizeof wall) std::_Exit(1);
  std::_Exit(0);
}

struct Result {
  bool done = false;
  double wall = 0;
  long max_rss_kb = 0;
};

Result run_child(const Args& a, int beam) {
  int pipe_fd[2];
  if (::pipe(pipe_fd) != 0) std::exit(1);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fd[0]);
    ::alarm(static_cast<unsigned>(a.limit_s));
    child(a, beam, pipe_fd[1]);
  }
  ::close(pipe_fd[1]);
  Result r;
  r.done = ::read(pipe_fd[0], &r.wall, sizeof r.wall) == sizeof r.wall;
  ::close(pipe_fd[0]);
  int status = 0;
  struct rusage usage {};
  ::wait4(pid, &status, 0, &usage);
  r.done = r.done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  r.max_rss_kb = usage.ru_maxrss;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const int64_t frames = std::llround(a.seconds * kFramesPerSecond);
  std::printf("CTC prefix beam search on flat posteriors: %.1f s of audio = %lld frames, vocab %d, %s\n", a.seconds,
              static_cast<long long>(frames), a.vocab, a.lm ? "character 6-gram LM" : "no LM");
  const Result base = run_child(a, 0);
  std::printf("| beam | wall s | RTF (1 thread) | peak memory above the posteriors |\n| --- | --- | --- | --- |\n");
  for (int beam : a.beams) {
    const Result r = run_child(a, beam);
    if (!r.done) {
      std::printf("| %d | > %d (killed) | > %.2f | |\n", beam, a.limit_s, a.limit_s / a.seconds);
      std::fflush(stdout);
      continue;
    }
    std::printf("| %d | %.3f | %.4f | %.1f MB |\n", beam, r.wall, r.wall / a.seconds,
                static_cast<double>(r.max_rss_kb - base.max_rss_kb) / 1024.0);
    std::fflush(stdout);
  }
  return 0;
}
