// Progress reporting for long loops: a live bar with rate and ETA when stderr
// is a terminal, plain periodic log lines otherwise (CI logs, Slurm output).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace asr {

class Progress {
 public:
  // `total` units of work (0 if unknown); `unit` names them ("files", "steps").
  Progress(std::string label, uint64_t total, std::string unit,
           std::chrono::seconds plain_interval = std::chrono::seconds(10));
  ~Progress();

  // Adds `n` done units; `extra` is appended to the line (e.g. "loss 2.31").
  void advance(uint64_t n = 1, const std::string& extra = "");
  // Prints the final line once (also called by the destructor).
  void finish(const std::string& extra = "");

  double elapsed_seconds() const;
  static bool stderr_is_terminal();

 private:
  void render(bool final, const std::string& extra);

  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::chrono::seconds interval_;
};

std::string format_duration(double seconds);

}  // namespace asr
