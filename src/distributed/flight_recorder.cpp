#include "asr/distributed/flight_recorder.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "asr/core/atomic_file.h"

namespace asr::distributed {
namespace {

// Everything below is plain old data with fixed-size text, so that a fatal
// signal handler can render it without allocating or locking.
constexpr size_t kUtterances = 192;

struct Entry {
  FlightState state;
  uint64_t seq;
  char group[24], op[16], dtype[12], note[48];
  int64_t numel, step;
  int32_t micro_batch;
  FlightPhase phase;
  char utterances[kUtterances];
  int64_t start_us, end_us;
};

struct Context {
  int64_t step = 0;
  int32_t micro_batch = -1;
  FlightPhase phase = FlightPhase::startup;
  int64_t phase_since_us = 0;
  char utterances[kUtterances] = "";
};

struct Recorder {
  std::timed_mutex mutex;  // writers; dumps wait for it at most a second
  Entry ring[kFlightRingSize];
  uint64_t issued = 0;  // entries ever issued; the next slot is issued % size
  Context context;
  int rank = -1, world_size = 0;
  char host[64] = "";
  char path[4096] = "", signal_temp[4096] = "";
};

// Leaked: the watchdog and signal handlers may dump during static destruction.
std::atomic<Recorder*> g_recorder{nullptr};

Recorder& recorder() {
  static Recorder* r = [] {
    auto* fresh = new Recorder();
    fresh->context.phase_since_us = 0;
    g_recorder.store(fresh);
    return fresh;
  }();
  return *r;
}

int64_t wall_us() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);  // async-signal-safe
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void copy_text(char* to, size_t size, const char* from) {
  size_t i = 0;
  for (; from && from[i] && i + 1 < size; ++i) to[i] = from[i];
  to[i] = 0;
}

thread_local const char* t_note = nullptr;

const char* state_name(FlightState s) {
  switch (s) {
    case FlightState::issued: return "issued";
    case FlightState::done: return "done";
    case FlightState::timed_out: return "timed_out";
    case FlightState::empty: break;
  }
  return "empty";
}

// JSON rendering into any sink with put(const char*, size_t); only
// async-signal-safe work, so the fatal-signal path can share it.
template <class Sink>
struct Json {
  Sink& out;
  void raw(const char* s) { out.put(s, std::strlen(s)); }
  void number(int64_t v) {
    char digits[24];
    int n = 0;
    const bool negative = v < 0;
    uint64_t u = negative ? uint64_t(0) - uint64_t(v) : uint64_t(v);
    do {
      digits[n++] = char('0' + u % 10);
      u /= 10;
    } while (u > 0);
    if (negative) digits[n++] = '-';
    while (n > 0) out.put(&digits[--n], 1);
  }
  void text(const char* s) {
    raw("\"");
    for (; *s; ++s) {
      const unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        const char esc[2] = {'\\', char(c)};
        out.put(esc, 2);
      } else if (c < 0x20) {
        raw(" ");
      } else {
        out.put(s, 1);
      }
    }
    raw("\"");
  }
  void field(const char* key, int64_t v) { raw(",\""), raw(key), raw("\":"), number(v); }
  void field(const char* key, const char* v) { raw(",\""), raw(key), raw("\":"), text(v); }
};

template <class Sink>
void render_entry(Json<Sink>& j, const Entry& e) {
  j.raw("{\"seq\":");
  j.number(int64_t(e.seq));
  j.field("group", e.group);
  j.field("op", e.op);
  j.field("note", e.note);
  j.field("dtype", e.dtype);
  j.field("numel", e.numel);
  j.field("step", e.step);
  j.field("micro_batch", e.micro_batch);
  j.field("phase", flight_phase_name(e.phase));
  j.field("utterances", e.utterances);
  j.field("start_us", e.start_us);
  j.field("end_us", e.end_us);
  j.field("state", state_name(e.state));
  j.raw("}");
}

template <class Sink>
void render(Sink& sink, const Recorder& r, const char* reason) {
  Json<Sink> j{sink};
  j.raw("{\"format\":\"asr-flight-1\",\"rank\":");
  j.number(r.rank);
  j.field("world_size", r.world_size);
  j.field("pid", getpid());
  j.field("host", r.host);
  j.field("reason", reason);
  j.field("written_us", wall_us());
  j.field("ring_size", int64_t(kFlightRingSize));
  j.field("issued", int64_t(r.issued));
  j.raw(",\"context\":{\"step\":");
  j.number(r.context.step);
  j.field("micro_batch", r.context.micro_batch);
  j.field("phase", flight_phase_name(r.context.phase));
  j.field("phase_since_us", r.context.phase_since_us);
  j.field("utterances", r.context.utterances);
  j.raw("},\n\"entries\":[");
  const uint64_t first = r.issued > kFlightRingSize ? r.issued - kFlightRingSize : 0;
  for (uint64_t i = first; i < r.issued; ++i) {
    j.raw(i == first ? "\n" : ",\n");
    render_entry(j, r.ring[i % kFlightRingSize]);
  }
  j.raw("\n]}\n");
}

struct StringSink {
  std::string bytes;
  void put(const char* s, size_t n) { bytes.append(s, n); }
};

// Buffered write(2): the fatal-signal path.
struct FdSink {
  int fd;
  char buffer[4096];
  size_t size = 0;
  bool ok = true;
  void put(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      if (size == sizeof(buffer)) flush();
      buffer[size++] = s[i];
    }
  }
  void flush() {
    size_t done = 0;
    while (done < size) {
      const ssize_t w = ::write(fd, buffer + done, size - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok = false;
        break;
      }
      done += size_t(w);
    }
    size = 0;
  }
};

void dump_from_signal(const char* reason) {
  Recorder* r = g_recorder.load();
  if (!r || !r->path[0]) return;
  const int saved_errno = errno;
  const int fd = ::open(r->signal_temp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    static FdSink sink{-1, {}, 0, true};  // static: the alternate signal stack is small
    sink.fd = fd;
    sink.size = 0;
    render(sink, *r, reason);
    sink.flush();
    ::fsync(fd);
    ::close(fd);
    if (sink.ok) ::rename(r->signal_temp, r->path);
  }
  errno = saved_errno;
}

struct sigaction g_previous[NSIG];

const char* fatal_reason(int sig) {
  switch (sig) {
    case SIGSEGV: return "fatal signal SIGSEGV";
    case SIGBUS: return "fatal signal SIGBUS";
    case SIGABRT: return "fatal signal SIGABRT";
  }
  return "fatal signal";
}

// Dumps, then hands the signal to whatever handled it before (the crash
// logger, then the default action: the usual status and core dump).
extern "C" void on_fatal_signal(int sig) {
  dump_from_signal(fatal_reason(sig));
  sigaction(sig, &g_previous[sig], nullptr);
  raise(sig);  // delivered when this handler returns
}

// SIGUSR2 only wakes the dump thread: rendering allocates, a handler must not.
int g_wake_pipe[2] = {-1, -1};

extern "C" void on_dump_request(int) {
  const int saved_errno = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_wake_pipe[1], &byte, 1);
  errno = saved_errno;
}

void dump_thread() {
  for (;;) {
    char byte;
    const ssize_t n = ::read(g_wake_pipe[0], &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    if (flight_dump("SIGUSR2 (on demand)")) spdlog::info("flight recorder: SIGUSR2: dump written to {}", flight_dump_path());
  }
}

void install_signal_handlers() {
  if (::pipe(g_wake_pipe) == 0) {
    fcntl(g_wake_pipe[1], F_SETFL, O_NONBLOCK);  // a flood of SIGUSR2 never blocks the handler
    fcntl(g_wake_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(g_wake_pipe[1], F_SETFD, FD_CLOEXEC);
    std::thread(dump_thread).detach();
    struct sigaction usr2;
    std::memset(&usr2, 0, sizeof(usr2));
    usr2.sa_handler = on_dump_request;
    sigemptyset(&usr2.sa_mask);
    usr2.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &usr2, nullptr);
  }
  struct sigaction fatal;
  std::memset(&fatal, 0, sizeof(fatal));
  fatal.sa_handler = on_fatal_signal;
  sigemptyset(&fatal.sa_mask);
  fatal.sa_flags = SA_RESETHAND | SA_ONSTACK;
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT}) sigaction(sig, &fatal, &g_previous[sig]);
}

}  // namespace

const char* flight_phase_name(FlightPhase phase) {
  switch (phase) {
    case FlightPhase::startup: return "startup";
    case FlightPhase::data: return "data";
    case FlightPhase::forward: return "forward";
    case FlightPhase::backward: return "backward";
    case FlightPhase::optimizer: return "optimizer";
    case FlightPhase::logging: return "logging";
    case FlightPhase::evaluation: return "evaluation";
    case FlightPhase::checkpoint: return "checkpoint";
  }
  return "unknown";
}

void flight_set_phase(FlightPhase phase) {
  auto& r = recorder();
  std::lock_guard<std::timed_mutex> lock(r.mutex);
  if (r.context.phase == phase && r.context.phase_since_us) return;
  r.context.phase = phase;
  r.context.phase_since_us = wall_us();
}

void flight_set_step(int64_t step, int micro_batch) {
  auto& r = recorder();
  std::lock_guard<std::timed_mutex> lock(r.mutex);
  r.context.step = step;
  r.context.micro_batch = micro_batch;
}

void flight_set_utterances(const std::vector<std::string>& ids) {
  // "LJ001-0001 LJ001-0002 ... (+N more)" within the fixed field.
  std::string text;
  size_t shown = 0;
  for (; shown < ids.size(); ++shown) {
    if (text.size() + ids[shown].size() + 1 > kUtterances - 16) break;
    text += (shown ? " " : "") + ids[shown];
  }
  if (shown < ids.size()) text += " (+" + std::to_string(ids.size() - shown) + " more)";
  auto& r = recorder();
  std::lock_guard<std::timed_mutex> lock(r.mutex);
  copy_text(r.context.utterances, kUtterances, text.c_str());
}

FlightNote::FlightNote(const char* note) : previous_(t_note) { t_note = note; }
FlightNote::~FlightNote() { t_note = previous_; }

uint32_t flight_issue(const FlightCollective& c) {
  auto& r = recorder();
  std::lock_guard<std::timed_mutex> lock(r.mutex);
  const auto slot = uint32_t(r.issued % kFlightRingSize);
  Entry& e = r.ring[slot];
  e.state = FlightState::issued;
  e.seq = c.seq;
  copy_text(e.group, sizeof(e.group), c.group);
  copy_text(e.op, sizeof(e.op), c.op);
  copy_text(e.dtype, sizeof(e.dtype), c.dtype);
  copy_text(e.note, sizeof(e.note), t_note ? t_note : "");
  e.numel = c.numel;
  e.step = r.context.step;
  e.micro_batch = r.context.micro_batch;
  e.phase = r.context.phase;
  std::memcpy(e.utterances, r.context.utterances, kUtterances);
  e.start_us = wall_us();
  e.end_us = 0;
  r.issued += 1;
  return slot;
}

void flight_complete(uint32_t slot, FlightState state) {
  auto& r = recorder();
  std::lock_guard<std::timed_mutex> lock(r.mutex);
  Entry& e = r.ring[slot % kFlightRingSize];
  if (e.state != FlightState::issued) return;  // overwritten by 2048 newer ones meanwhile
  e.end_us = wall_us();
  e.state = state;
}

std::string flight_dump_json(const std::string& reason) {
  auto& r = recorder();
  // A dump must not wait on a thread stuck while holding the lock (it never
  // blocks under it, but a dump is what explains the unexpected).
  std::unique_lock<std::timed_mutex> lock(r.mutex, std::chrono::seconds(1));
  StringSink sink;
  render(sink, r, reason.c_str());
  return std::move(sink.bytes);
}

void enable_flight_dumps(const std::string& dir, int rank, int world_size) {
  auto& r = recorder();
  std::filesystem::create_directories(dir);
  char name[32];
  std::snprintf(name, sizeof(name), "/rank-%05d.json", rank);
  {
    std::lock_guard<std::timed_mutex> lock(r.mutex);
    r.rank = rank;
    r.world_size = world_size;
    if (gethostname(r.host, sizeof(r.host) - 1) != 0) copy_text(r.host, sizeof(r.host), "?");
    copy_text(r.path, sizeof(r.path), (dir + name).c_str());
    copy_text(r.signal_temp, sizeof(r.signal_temp), (dir + name + ".signal-tmp").c_str());
  }
  static std::once_flag once;
  std::call_once(once, install_signal_handlers);
}

std::string flight_dump_path() { return recorder().path; }

bool flight_dump(const std::string& reason) {
  const std::string path = flight_dump_path();
  if (path.empty()) return false;
  try {
    write_file_atomic(path, flight_dump_json(reason));
    return true;
  } catch (const std::exception& e) {
    spdlog::warn("flight recorder: could not write {}: {}", path, e.what());
    return false;
  }
}

}  // namespace asr::distributed
