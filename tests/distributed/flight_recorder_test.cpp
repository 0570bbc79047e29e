// The flight recorder's ring and dump format, in one process (the dumps of
// real ranks are tested by tests/cli/ddp_flight.sh).
#include "asr/distributed/flight_recorder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace asr::distributed {
namespace {

TEST(FlightRecorder, RingKeepsTheNewestEntriesInIssueOrder) {
  flight_set_step(7, 1);
  flight_set_phase(FlightPhase::backward);
  flight_set_utterances({"LJ001-0001", "LJ001-0002"});
  const uint64_t total = kFlightRingSize + 52;
  for (uint64_t seq = 1; seq <= total; ++seq) {
    FlightNote note("ring test");
    const uint32_t slot = flight_issue({"ring", seq, "all_reduce", "float32", int64_t(seq)});
    // The newest stays issued: what a collective in flight looks like.
    if (seq < total) flight_complete(slot, seq == total - 1 ? FlightState::timed_out : FlightState::done);
  }
  const auto dump = nlohmann::json::parse(flight_dump_json("test \"reason\""));
  EXPECT_EQ(dump.at("reason"), "test \"reason\"");
  EXPECT_EQ(dump.at("ring_size"), kFlightRingSize);
  EXPECT_EQ(dump.at("context").at("phase"), "backward");
  EXPECT_EQ(dump.at("context").at("step"), 7);
  const auto& entries = dump.at("entries");
  ASSERT_EQ(entries.size(), kFlightRingSize);
  EXPECT_EQ(entries.front().at("seq"), 53);
  EXPECT_EQ(entries.back().at("seq"), total);
  EXPECT_EQ(entries.back().at("state"), "issued");
  EXPECT_EQ(entries[kFlightRingSize - 2].at("state"), "timed_out");
  EXPECT_EQ(entries.front().at("state"), "done");
  const auto& e = entries.front();
  EXPECT_EQ(e.at("note"), "ring test");
  EXPECT_EQ(e.at("micro_batch"), 1);
  EXPECT_EQ(e.at("phase"), "backward");
  EXPECT_EQ(e.at("utterances"), "LJ001-0001 LJ001-0002");
  EXPECT_GT(e.at("end_us").get<int64_t>(), 0);
  EXPECT_LE(e.at("start_us").get<int64_t>(), e.at("end_us").get<int64_t>());
}

TEST(FlightRecorder, LongUtteranceListsAreCutWithACount) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("LJ050-" + std::to_string(1000 + i));
  flight_set_utterances(ids);
  const auto dump = nlohmann::json::parse(flight_dump_json("test"));
  const std::string shown = dump.at("context").at("utterances");
  EXPECT_EQ(shown.rfind("LJ050-1000 LJ050-1001", 0), 0u) << shown;
  EXPECT_NE(shown.find(" more)"), std::string::npos) << shown;
  EXPECT_LT(shown.size(), 192u);
}

}  // namespace
}  // namespace asr::distributed
