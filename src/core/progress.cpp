#include "asr/core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace asr {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds != seconds) return "?";
  long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total, std::string unit, std::chrono::seconds plain_interval)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()), last_print_(start_), interval_(plain_interval) {}

Progress::~Progress() {
  if (!finished_) finish();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(uint64_t n, const std::string& extra) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  auto since = now - last_print_;
  bool due = tty_ ? since >= std::chrono::milliseconds(200) : since >= interval_;
  if (due) {
    last_print_ = now;
    render(false, extra);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  render(true, extra);
}

void Progress::render(bool final, const std::string& extra) {
  double elapsed = elapsed_seconds();
  double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  std::string eta = (total_ > 0 && rate > 0 && done_ < total_) ? format_duration((total_ - done_) / rate) : "0s";
  char line[512];
  if (total_ > 0) {
    double frac = static_cast<double>(done_) / static_cast<double>(total_);
    if (tty_) {
      const int width = 24;
      int filled = static_cast<int>(frac * width);
      std::string bar(filled, '#');
      bar.resize(width, '.');
      std::snprintf(line, sizeof line, "%s [%s] %llu/%llu %s %.1f %s/s ETA %s %s", label_.c_str(), bar.c_str(),
                    (unsigned long long)done_, (unsigned long long)total_, unit_.c_str(), rate, unit_.c_str(),
                    eta.c_str(), extra.c_str());
    } else {
      std::snprintf(line, sizeof line, "%s: %llu/%llu %s (%.0f%%), %.1f %s/s, ETA %s %s", label_.c_str(),
                    (unsigned long long)done_, (unsigned long long)total_, unit_.c_str(), 100.0 * frac, rate,
                    unit_.c_str(), eta.c_str(), extra.c_str());
    }
  } else {
    std::snprintf(line, sizeof line, "%s: %llu %s, %.1f %s/s %s", label_.c_str(), (unsigned long long)done_,
                  unit_.c_str(), rate, unit_.c_str(), extra.c_str());
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line);
  }
  std::fflush(stderr);
}

}  // namespace asr
