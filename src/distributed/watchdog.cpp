#include "watchdog.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "asr/core/error.h"
#include "asr/core/log.h"
#include "asr/distributed/flight_recorder.h"

namespace asr::distributed {
namespace {

using Clock = std::chrono::steady_clock;

struct Entry {
  std::string op;
  int rank;
  std::chrono::milliseconds limit;
  Clock::time_point deadline;
};

// Leaked on purpose: it must outlive every static destructor, since a hang
// during exit is exactly one of the cases it exists for.
class Watchdog {
 public:
  static Watchdog& instance() {
    static Watchdog* dog = new Watchdog();
    return *dog;
  }

  uint64_t add(Entry entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    uint64_t id = next_id_++;
    entries_.emplace(id, std::move(entry));
    cv_.notify_one();
    return id;
  }

  void remove(uint64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.erase(id);
  }

  std::string in_flight() {
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    std::string out;
    if (!lock.owns_lock()) return out;
    for (const auto& [id, e] : entries_)
      if (e.op.rfind("exit after ", 0) != 0) out += (out.empty() ? "'" : ", '") + e.op + "'";
    return out;
  }

 private:
  Watchdog() { std::thread([this] { run(); }).detach(); }

  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      const auto now = Clock::now();
      for (const auto& [id, e] : entries_) {
        if (now < e.deadline) continue;
        // fprintf before spdlog: the console must get the line even if a
        // logger lock is held by the stuck thread.
        std::fprintf(stderr,
                     "[asr watchdog] rank %d: '%s' still not finished after %.1f s; "
                     "a peer rank is dead or hung. Exiting with status %d so the launcher "
                     "ends the job.\n",
                     e.rank, e.op.c_str(), e.limit.count() / 1000.0, int(kExitDistributed));
        std::fflush(stderr);
        if (auto logger = spdlog::default_logger_raw()) {
          logger->error("watchdog: rank {}: '{}' stuck for {:.1f} s; exiting", e.rank, e.op,
                        e.limit.count() / 1000.0);
          logger->flush();
        }
        flight_dump(fmt::format("watchdog: rank {}: '{}' still not finished after {:.1f} s", e.rank, e.op,
                                e.limit.count() / 1000.0));
        _exit(kExitDistributed);
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
};

}  // namespace

WatchdogGuard::WatchdogGuard(std::string op, int rank, std::chrono::milliseconds limit)
    : id_(Watchdog::instance().add(Entry{std::move(op), rank, limit, Clock::now() + limit})) {}

WatchdogGuard::~WatchdogGuard() { Watchdog::instance().remove(id_); }

void watchdog_arm_exit_deadline(const std::string& reason, int rank, std::chrono::milliseconds limit) {
  Watchdog::instance().add(Entry{"exit after " + reason, rank, limit, Clock::now() + limit});
}

std::string watchdog_operations_in_flight() { return Watchdog::instance().in_flight(); }

namespace {

std::atomic<int> g_terminate_rank{-1};
std::terminate_handler g_previous_terminate = nullptr;

std::string current_exception_text() {
  try {
    if (auto e = std::current_exception()) std::rethrow_exception(e);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

[[noreturn]] void on_terminate() {
  std::string what = current_exception_text();
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  if (what.find("gloo/") == std::string::npos) {
    if (g_previous_terminate) g_previous_terminate();
    std::abort();
  }
  std::string ops = watchdog_operations_in_flight();
  const std::string line = fmt::format(
      "rank {}: distributed failure: {} failed inside Gloo: {} -- a peer sent a message of another size than this rank "
      "expected, so the ranks ran different collectives (different configs or builds?). Exiting with status {}.",
      g_terminate_rank.load(), ops.empty() ? "a collective" : "collective " + ops, what, int(kExitDistributed));
  log_line_signal_safe("error", line.c_str(), /*also_stderr=*/true);
  flight_dump(line);
  _exit(kExitDistributed);
}

}  // namespace

void install_collective_terminate_handler(int rank) {
  static std::once_flag once;
  g_terminate_rank = rank;
  std::call_once(once, [] { g_previous_terminate = std::set_terminate(on_terminate); });
}

}  // namespace asr::distributed
