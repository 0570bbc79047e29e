#include "asr/core/log.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <vector>

#include "asr/core/error.h"

namespace asr {
namespace {

const char* const kPattern = "%Y-%m-%d %H:%M:%S.%e %^%l%$ ";

// The log file as seen by the signal-safe writer: a descriptor of its own
// (O_APPEND, so its lines and spdlog's never overwrite each other), the
// line prefix and the local time zone's offset, fixed when logging is set up.
std::atomic<int> g_log_fd{-1};
char g_tag[64] = "";
long g_utc_offset_s = 0;
std::shared_ptr<spdlog::logger> g_file_logger;  // file sink only

long local_utc_offset() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  return local.tm_gmtoff;
}

// A fixed-size line built without allocation (signal handlers).
struct LineBuffer {
  char data[1024];
  size_t size = 0;
  void add(const char* s) {
    while (*s && size < sizeof(data) - 1) data[size++] = *s++;
  }
  void add_number(long value, int width) {
    char digits[24];
    int n = 0;
    do {
      digits[n++] = char('0' + value % 10);
      value /= 10;
    } while (value > 0 && n < 20);
    while (n < width) digits[n++] = '0';
    while (n > 0 && size < sizeof(data) - 1) data[size++] = digits[--n];
  }
};

// "YYYY-MM-DD HH:MM:SS.mmm" in local time, as spdlog writes it; days to a
// civil date by Howard Hinnant's algorithm (no localtime: not signal-safe).
void add_timestamp(LineBuffer& line) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const long long t = static_cast<long long>(ts.tv_sec) + g_utc_offset_s;
  const long long days = t / 86400, secs = t % 86400;
  const long long z = days + 719468, era = z / 146097, doe = z - era * 146097;
  const long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  const long long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  const long long year = yoe + era * 400 + (month <= 2);
  line.add_number(long(year), 4), line.add("-"), line.add_number(long(month), 2), line.add("-");
  line.add_number(long(day), 2), line.add(" "), line.add_number(long(secs / 3600), 2), line.add(":");
  line.add_number(long(secs / 60 % 60), 2), line.add(":"), line.add_number(long(secs % 60), 2), line.add(".");
  line.add_number(long(ts.tv_nsec / 1000000), 3);
}

void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n, size -= size_t(n);
  }
}

void open_signal_safe_file(const std::string& file, const std::string& tag) {
  g_utc_offset_s = local_utc_offset();
  std::string prefix = tag.empty() ? "" : "[" + tag + "] ";
  std::strncpy(g_tag, prefix.c_str(), sizeof(g_tag) - 1);
  const int fd = file.empty() ? -1 : ::open(file.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  const int old = g_log_fd.exchange(fd);
  if (old >= 0) ::close(old);
}

const char* fatal_signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "fatal signal SIGSEGV (invalid memory access): the process ends here";
    case SIGBUS: return "fatal signal SIGBUS (bad memory access, e.g. a truncated memory-mapped file): the process ends here";
    case SIGFPE: return "fatal signal SIGFPE (arithmetic error): the process ends here";
    case SIGILL: return "fatal signal SIGILL (illegal instruction: a binary built for another CPU?): the process ends here";
    case SIGABRT: return "fatal signal SIGABRT (abort): the process ends here";
  }
  return "fatal signal: the process ends here";
}

extern "C" void asr_log_on_fatal_signal(int sig) {
  log_line_signal_safe("critical", fatal_signal_name(sig), true);
  // SA_RESETHAND restored the default action: re-raising gives the usual
  // exit status (128 + sig) and core dump.
  raise(sig);
}

// The exception that reached std::terminate, as text.
std::string terminating_exception() {
  const auto current = std::current_exception();
  if (!current) return "std::terminate called without an exception";
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    return std::string("uncaught exception: ") + e.what();
  } catch (...) {
    return "uncaught exception of an unknown type";
  }
}

[[noreturn]] void on_terminate() {
  std::string what = terminating_exception();
  if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
  log_line_signal_safe("critical", ("fatal: " + what).c_str(), true);
  std::abort();
}

}  // namespace

void setup_logging(const std::string& console_level, const std::string& file, const std::string& tag,
                   bool console) {
  std::vector<spdlog::sink_ptr> sinks;
  if (console) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto level = spdlog::level::from_str(console_level);
    if (level == spdlog::level::off && console_level != "off")
      throw Error("unknown log level '" + console_level + "' (use trace, debug, info, warn, error or off)");
    sink->set_level(level);
    sinks.push_back(sink);
  }
  std::string prefix = tag.empty() ? "" : "[" + tag + "] ";
  g_file_logger.reset();
  if (!file.empty()) {
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, false);
      sink->set_level(spdlog::level::debug);
      sinks.push_back(sink);
      g_file_logger = std::make_shared<spdlog::logger>("asr-file", sink);
      g_file_logger->set_pattern(kPattern + prefix + "%v");
      g_file_logger->flush_on(spdlog::level::trace);
    } catch (const spdlog::spdlog_ex& e) {
      throw Error("cannot open log file " + file + ": " + e.what());
    }
  }
  open_signal_safe_file(file, tag);
  auto logger = std::make_shared<spdlog::logger>("asr", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::debug);
  logger->set_pattern(kPattern + prefix + "%v");
  // Every line reaches the file at once: the signal-safe lines bypass
  // spdlog, and must not land ahead of lines still sitting in its buffer.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

bool log_file_open() { return g_file_logger != nullptr; }

void log_to_file(const std::string& level, const std::string& text) {
  if (!g_file_logger) return;
  spdlog::default_logger()->flush();  // earlier lines first
  g_file_logger->log(spdlog::level::from_str(level), text);
}

bool append_log_line(const std::string& path, const std::string& level, const std::string& text) {
  std::error_code ec;
  if (!std::filesystem::is_directory(std::filesystem::path(path).parent_path(), ec)) return false;
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  g_utc_offset_s = local_utc_offset();
  LineBuffer line;
  add_timestamp(line);
  line.add(" "), line.add(level.c_str()), line.add(" ");
  std::string body = text;
  if (body.size() > sizeof(line.data) - line.size - 2) body.resize(sizeof(line.data) - line.size - 2);
  line.add(body.c_str()), line.add("\n");
  write_all(fd, line.data, line.size);
  ::close(fd);
  return true;
}

void log_line_signal_safe(const char* level, const char* text, bool also_stderr) {
  LineBuffer line;
  add_timestamp(line);
  line.add(" "), line.add(level), line.add(" "), line.add(g_tag), line.add(text), line.add("\n");
  const int fd = g_log_fd.load();
  if (fd >= 0) write_all(fd, line.data, line.size);
  if (also_stderr) write_all(STDERR_FILENO, line.data, line.size);
}

void install_crash_handlers() {
  g_utc_offset_s = local_utc_offset();
  // An alternate stack, so that a stack overflow can still be reported.
  static std::vector<char> alternate(1 << 16);
  stack_t stack{};
  stack.ss_sp = alternate.data();
  stack.ss_size = alternate.size();
  sigaltstack(&stack, nullptr);
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = asr_log_on_fatal_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND | SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &action, nullptr);
  std::set_terminate(on_terminate);
}

}  // namespace asr
