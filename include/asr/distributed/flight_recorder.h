// The flight recorder: the last kFlightRingSize collectives of this process,
// with what the rank was doing when it issued each (step, micro-batch, phase,
// utterances), so that a hang can be explained after the fact from the ranks'
// dumps (asr_ddp --diagnose, docs/operations.md "My job hangs").
//
// Recording is always on and costs a mutex and a few fixed-size copies per
// collective (bench/flight_recorder_cost.cpp). The communicator records every
// collective it runs (callers never do); the trainer only sets the context.
// Dumps go to DIR/rank-NNNNN.json, written atomically, once a directory is
// set with enable_flight_dumps(): on a collective failure, a watchdog expiry,
// a fatal signal (SIGSEGV, SIGBUS, SIGABRT: written without allocating, from
// the handler) and on demand with SIGUSR2 (a thread writes it; the run goes on).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace asr::distributed {

// Entries kept per process; older ones are overwritten.
constexpr size_t kFlightRingSize = 2048;

enum class FlightPhase : uint8_t { startup, data, forward, backward, optimizer, logging, evaluation, checkpoint };
enum class FlightState : uint8_t { empty, issued, done, timed_out };

const char* flight_phase_name(FlightPhase phase);

// What this rank is doing; copied into every collective it issues.
void flight_set_phase(FlightPhase phase);
// step as logged (from 1); micro_batch from 0, -1 when none.
void flight_set_step(int64_t step, int micro_batch);
void flight_set_utterances(const std::vector<std::string>& ids);

// A note attached to collectives issued by this thread while it lives, e.g.
// "gradient bucket 3", "step decision". Nests: the innermost wins.
class FlightNote {
 public:
  explicit FlightNote(const char* note);
  ~FlightNote();
  FlightNote(const FlightNote&) = delete;
  FlightNote& operator=(const FlightNote&) = delete;

 private:
  const char* previous_;
};

// Recording (the communicator's side). Returns the entry's slot.
struct FlightCollective {
  const char* group;  // "main", or the name given to Communicator::new_group
  uint64_t seq;       // per group, from 1
  const char* op;     // "all_reduce", "broadcast", "all_gather", "barrier"
  const char* dtype;  // "float32", ... or "-"
  int64_t numel;
};
uint32_t flight_issue(const FlightCollective& c);
void flight_complete(uint32_t slot, FlightState state);

// Dumps are written under `dir` (created) as rank-NNNNN.json; installs the
// SIGUSR2 and fatal-signal handlers and the thread that writes on-demand dumps.
void enable_flight_dumps(const std::string& dir, int rank, int world_size);
// Writes this rank's dump now (normal context); `reason` says why. Returns
// false (after a warning) when no directory is set or the write failed.
bool flight_dump(const std::string& reason);
// The dump's path, or "" before enable_flight_dumps.
std::string flight_dump_path();

// The dump's text (JSON, one entry a line), without writing it: tests, benchmarks.
std::string flight_dump_json(const std::string& reason);

}  // namespace asr::distributed
