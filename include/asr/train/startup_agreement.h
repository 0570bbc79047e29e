// Before anything else crosses ranks, every rank checks that it runs the
// same job as rank 0: the same effective configuration, the same dataset
// manifest and the same asr_ddp build. Ranks that differ would run different
// sequences of collectives and fail deep inside the backend (a Gloo message
// of an unexpected size aborts the process), or, worse, train on different
// data without anyone noticing.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace asr {

struct TrainConfig;
namespace distributed {
class Communicator;
}

// Collective, on every rank right after the world is formed: one all-gather
// of three checksums (CRC-32C of the config's canonical text, of
// DATA/manifest.json, of the running executable); only when they differ,
// the config texts needed to name the keys. Throws asr::Error (exit status
// 2) on every rank, naming the differing keys and ranks ("rank 1 has
// eval.every = 5, rank 0 has 10"), the manifest or the build. Keys that
// cannot change what crosses ranks (log.level, log.progress) may differ.
// No-op on one rank.
void check_startup_agreement(const TrainConfig& config, distributed::Communicator& comm);

// The config as compared: "section.key" -> its TOML value, from
// config_to_toml's text, without the keys that may differ per rank.
std::map<std::string, std::string> comparable_config(const std::string& toml_text);

// "rank 1 has eval.every = 5, rank 0 has 10" for each key that differs
// (at most `limit`, then "and N more keys").
std::string describe_config_difference(int rank, const std::map<std::string, std::string>& mine,
                                       const std::map<std::string, std::string>& rank0, size_t limit = 6);

}  // namespace asr
