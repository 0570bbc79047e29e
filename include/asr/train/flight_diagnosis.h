// asr_ddp --diagnose RUN_DIR: reads every rank's flight recorder dump
// (RUN_DIR/flight/rank-NNNNN.json, asr/distributed/flight_recorder.h) and
// says which rank the others were waiting for and what it was doing, or
// which collective the ranks disagreed on. No config, no process group.
#pragma once
#include <string>
#include <vector>

namespace asr {

struct FlightDiagnosis {
  std::string verdict;             // one line, printed first
  std::vector<std::string> ranks;  // one line per rank of the world, dumps or not
  std::string text() const;        // verdict, then the rank lines
};

// Throws asr::Error naming the directory when it holds no readable dump.
FlightDiagnosis diagnose_flight(const std::string& run_dir);

}  // namespace asr
