#include "asr/train/flight_diagnosis.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;
namespace {

struct Collective {
  uint64_t seq = 0;
  std::string op, note, dtype, phase, utterances, state;
  int64_t numel = 0, step = 0, micro_batch = -1, start_us = 0, end_us = 0;
};

struct Dump {
  int rank = -1, world_size = 0;
  std::string reason, host, phase, utterances;
  int64_t pid = 0, written_us = 0, step = 0, micro_batch = -1, phase_since_us = 0;
  std::vector<Collective> main;  // the main group's entries, in issue order
};

Collective read_collective(const nlohmann::json& e) {
  Collective c;
  c.seq = e.at("seq").get<uint64_t>();
  for (auto [key, to] : {std::pair{"op", &c.op}, {"note", &c.note}, {"dtype", &c.dtype}, {"phase", &c.phase},
                         {"utterances", &c.utterances}, {"state", &c.state}})
    *to = e.at(key).get<std::string>();
  for (auto [key, to] : {std::pair{"numel", &c.numel}, {"step", &c.step}, {"micro_batch", &c.micro_batch},
                         {"start_us", &c.start_us}, {"end_us", &c.end_us}})
    *to = e.at(key).get<int64_t>();
  return c;
}

Dump read_dump(const fs::path& path) {
  const auto j = nlohmann::json::parse(read_file(path));
  Dump d;
  d.rank = j.at("rank").get<int>();
  d.world_size = j.at("world_size").get<int>();
  d.reason = j.at("reason").get<std::string>();
  d.host = j.at("host").get<std::string>();
  d.pid = j.at("pid").get<int64_t>();
  d.written_us = j.at("written_us").get<int64_t>();
  const auto& c = j.at("context");
  d.step = c.at("step").get<int64_t>();
  d.micro_batch = c.at("micro_batch").get<int64_t>();
  d.phase = c.at("phase").get<std::string>();
  d.phase_since_us = c.at("phase_since_us").get<int64_t>();
  d.utterances = c.at("utterances").get<std::string>();
  for (const auto& e : j.at("entries"))
    if (e.at("group").get<std::string>() == "main") d.main.push_back(read_collective(e));
  return d;
}

// The dumps by rank; unreadable ones are reported, not fatal.
std::map<int, Dump> read_dumps(const fs::path& dir, std::vector<std::string>& problems) {
  std::map<int, Dump> dumps;
  if (!fs::is_directory(dir)) return dumps;
  static const std::regex name(R"(rank-\d+\.json)");
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!std::regex_match(entry.path().filename().string(), name)) continue;
    try {
      Dump d = read_dump(entry.path());
      dumps[d.rank] = std::move(d);
    } catch (const std::exception& e) {
      problems.push_back(fmt::format("{}: unreadable ({})", entry.path().string(), e.what()));
    }
  }
  return dumps;
}

const Collective* last_done(const Dump& d) {
  for (auto it = d.main.rbegin(); it != d.main.rend(); ++it)
    if (it->state == "done") return &*it;
  return nullptr;
}

const Collective* first_pending(const Dump& d) {
  for (const auto& c : d.main)
    if (c.state != "done") return &c;
  return nullptr;
}

uint64_t highest_seq(const Dump& d) { return d.main.empty() ? 0 : d.main.back().seq; }

// "all_reduce #18 (gradient bucket 3, step 9120)"
std::string name(const Collective& c) {
  const std::string op = c.op.substr(0, c.op.find(' '));
  return fmt::format("{} #{} ({}{}step {})", op, c.seq, c.note, c.note.empty() ? "" : ", ", c.step);
}

std::string what_it_does(const Dump& d, int64_t at_us) {
  std::string out = fmt::format("in {} for {:.0f} s (step {}", d.phase == "data" ? "data loading" : d.phase,
                                double(at_us - d.phase_since_us) / 1e6, d.step);
  if (d.micro_batch >= 0) out += fmt::format(", micro-batch {}", d.micro_batch);
  out += ")";
  if (!d.utterances.empty()) out += (d.phase == "data" ? ", after " : ", on ") + d.utterances;
  return out;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ", ") + std::to_string(r);
  return (ranks.size() == 1 ? "rank " : "ranks ") + out;
}

// The waiting ranks' own account of why they gave up: a closed connection
// means the peer's process is gone; a timeout, that it stopped answering.
std::string how_they_gave_up(const std::map<int, Dump>& dumps) {
  for (const auto& [r, d] : dumps)
    if (d.reason.find("Connection closed") != std::string::npos || d.reason.find("Connection reset") != std::string::npos)
      return "its connections closed: the process died (killed, out of memory, crashed)";
  for (const auto& [r, d] : dumps)
    if (d.reason.find("imed out") != std::string::npos || d.reason.find("watchdog") != std::string::npos)
      return "it stopped answering without closing its connections: stopped (SIGSTOP), hung where it cannot dump, "
             "or its host is gone";
  return "dead or stopped";
}

// Two ranks that ran different collectives under one sequence number.
std::optional<std::string> find_desync(const std::map<int, Dump>& dumps) {
  std::map<uint64_t, std::map<std::string, std::vector<int>>> by_seq;  // seq -> fingerprint -> ranks
  std::map<std::pair<int, uint64_t>, const Collective*> entry;
  for (const auto& [r, d] : dumps)
    for (const auto& c : d.main) {
      const std::string fp = fmt::format("{} {}[{}]", c.op.substr(0, c.op.find(' ')), c.dtype, c.numel);
      by_seq[c.seq][fp].push_back(r);
      entry[{r, c.seq}] = &c;
    }
  for (const auto& [seq, prints] : by_seq) {
    if (prints.size() < 2) continue;
    // The larger side is taken as right, the smaller as the odd one out; in
    // a tie, the side of the lowest rank is taken as right.
    const auto usual = std::max_element(prints.begin(), prints.end(), [](const auto& a, const auto& b) {
      return a.second.size() != b.second.size() ? a.second.size() < b.second.size()
                                                 : a.second.front() > b.second.front();
    });
    auto odd = prints.end();
    for (auto it = prints.begin(); it != prints.end(); ++it)
      if (it != usual && (odd == prints.end() || it->second.size() < odd->second.size())) odd = it;
    const Collective& a = *entry.at({odd->second.front(), seq});
    const Collective& b = *entry.at({usual->second.front(), seq});
    return fmt::format("collective #{} differs: {} ran {} ({}, {}) while {} ran {} ({}, {}): the ranks are out of "
                       "step from #{} on -- one side skipped or added a collective just before",
                       seq, rank_list(odd->second), odd->first, a.note.empty() ? "-" : a.note,
                       "step " + std::to_string(a.step), rank_list(usual->second), usual->first,
                       b.note.empty() ? "-" : b.note, "step " + std::to_string(b.step), seq);
  }
  return std::nullopt;
}

// A failure's message without the rank (the line names it) and the advice.
std::string short_reason(const Dump& d) {
  std::string reason = d.reason;
  if (const std::string who = fmt::format("rank {}: ", d.rank); reason.rfind(who, 0) == 0) reason.erase(0, who.size());
  return reason.substr(0, reason.find(" -- "));
}

std::string rank_line(int rank, const std::map<int, Dump>& dumps) {
  auto it = dumps.find(rank);
  if (it == dumps.end()) return fmt::format("rank {}: no dump (dead, or stopped where it could not write one)", rank);
  const Dump& d = it->second;
  std::string line = fmt::format("rank {} ({} pid {}): dump '{}'", rank, d.host, d.pid, short_reason(d));
  const auto* done = last_done(d);
  const auto* pending = first_pending(d);
  line += done ? "; last completed " + name(*done) : "; nothing completed";
  if (pending)
    line += fmt::format("; first pending {} {} {:.1f} s", name(*pending),
                        pending->state == "timed_out" ? "failed after" : "waiting for",
                        double((pending->end_us ? pending->end_us : d.written_us) - pending->start_us) / 1e6);
  else
    line += "; nothing pending";
  return line + "; now " + what_it_does(d, d.written_us);
}

// The first rank that never entered `stuck` (or left no dump), said with
// what its own dump shows it doing.
std::optional<std::string> rank_behind(const std::map<int, Dump>& dumps, int world_size, const Collective& stuck,
                                       const std::vector<int>& waiting, int64_t gave_up_us) {
  for (int r = 0; r < world_size; ++r) {
    auto it = dumps.find(r);
    if (it == dumps.end())
      return fmt::format("rank {} never entered {} that {} waited in: it left no dump; {}", r, name(stuck),
                         rank_list(waiting), how_they_gave_up(dumps));
    const Dump& d = it->second;
    if (highest_seq(d) >= stuck.seq) continue;
    if (d.written_us + 1000000 < gave_up_us)
      return fmt::format("rank {} never entered {}: it has not dumped since '{}' {:.0f} s before {} gave up, which "
                         "shows it {}; {}",
                         r, name(stuck), short_reason(d), double(gave_up_us - d.written_us) / 1e6,
                         rank_list(waiting), what_it_does(d, d.written_us), how_they_gave_up(dumps));
    return fmt::format("rank {} never entered {}: it has been {}", r, name(stuck), what_it_does(d, d.written_us));
  }
  return std::nullopt;
}

// The collective the waiting ranks are stuck in, and the rank they wait for.
std::string stuck_verdict(const std::map<int, Dump>& dumps, int world_size) {
  const Collective* stuck = nullptr;
  std::vector<int> waiting;
  int64_t gave_up_us = 0;
  for (const auto& [r, d] : dumps)
    if (const auto* p = first_pending(d)) {
      if (!stuck || p->seq > stuck->seq) stuck = p, waiting.clear();
      if (p->seq == stuck->seq) waiting.push_back(r), gave_up_us = std::max(gave_up_us, d.written_us);
    }
  if (!stuck) return "no rank was waiting in a collective when it dumped (on-demand dumps of a healthy run?)";
  if (auto behind = rank_behind(dumps, world_size, *stuck, waiting, gave_up_us)) return *behind;
  // Every rank entered it; one whose last dump is older than the others'
  // failures (an earlier SIGUSR2) stopped answering inside it.
  for (const auto& [r, d] : dumps)
    if (d.written_us + 1000000 < gave_up_us)
      return fmt::format("rank {} stopped answering in {}: its last dump ('{}', {:.0f} s before {} gave up) shows it "
                         "already waiting in it, {}; {}",
                         r, name(*stuck), short_reason(d), double(gave_up_us - d.written_us) / 1e6,
                         rank_list(waiting), what_it_does(d, d.written_us), how_they_gave_up(dumps));
  return fmt::format("{} waited in {}; every rank reached it (a slow collective, or one rank's network)",
                     rank_list(waiting), name(*stuck));
}

}  // namespace

std::string FlightDiagnosis::text() const {
  std::string out = verdict + "\n";
  for (const auto& line : ranks) out += "  " + line + "\n";
  return out;
}

FlightDiagnosis diagnose_flight(const std::string& run_dir) {
  const fs::path dir = fs::path(run_dir) / "flight";
  std::vector<std::string> problems;
  const auto dumps = read_dumps(dir, problems);
  if (dumps.empty())
    throw Error(fmt::format("--diagnose: no flight recorder dump in {}{}: ranks write rank-NNNNN.json there when a "
                            "collective fails or times out, on a crash, or on SIGUSR2 (kill -USR2 each asr_ddp process "
                            "of a running job)",
                            dir.string(), problems.empty() ? "" : " (" + problems.front() + ")"));
  int world = 0;
  for (const auto& [r, d] : dumps) world = std::max({world, d.world_size, r + 1});
  FlightDiagnosis diagnosis;
  const auto desync = find_desync(dumps);
  diagnosis.verdict = desync ? *desync : stuck_verdict(dumps, world);
  for (int r = 0; r < world; ++r) diagnosis.ranks.push_back(rank_line(r, dumps));
  for (const auto& p : problems) diagnosis.ranks.push_back(p);
  return diagnosis;
}

}  // namespace asr
