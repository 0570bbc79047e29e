#include "asr/train/tensorboard.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "asr/core/atomic_file.h"
#include "asr/core/error.h"
#include "asr/train/metrics_log.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using asr::TbRecord;
using asr::test::TempDir;

fs::path write_sample(const TempDir& dir) {
  asr::TensorBoardWriter writer(dir.path());
  writer.add_scalar("train/loss", 2.5, 10);
  writer.add_scalar("train/lr", 3e-4, 10);
  writer.add_text("eval/sample", "ref: hello world\nhyp: helo world", 20);
  writer.add_scalar("eval/cer", 0.125, 20);
  writer.add_session_start(15);
  writer.flush();
  return writer.path();
}

TEST(TensorBoard, FileNameAndRoundTrip) {
  TempDir dir;
  fs::path path = write_sample(dir);
  EXPECT_EQ(path.parent_path(), dir.path());
  EXPECT_EQ(path.filename().string().rfind("events.out.tfevents.", 0), 0u);

  auto records = asr::read_tensorboard_events(path);
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[0].kind, TbRecord::Kind::kFileVersion);
  EXPECT_EQ(records[0].tag, "brain.Event:2");
  EXPECT_GT(records[0].wall_time, 1.6e9);
  EXPECT_EQ(records[1].kind, TbRecord::Kind::kScalar);
  EXPECT_EQ(records[1].tag, "train/loss");
  EXPECT_EQ(records[1].step, 10);
  EXPECT_DOUBLE_EQ(records[1].scalar, 2.5);
  EXPECT_FLOAT_EQ(static_cast<float>(records[2].scalar), 3e-4f);
  EXPECT_EQ(records[3].kind, TbRecord::Kind::kText);
  EXPECT_EQ(records[3].tag, "eval/sample");
  EXPECT_EQ(records[3].text, "ref: hello world\nhyp: helo world");
  EXPECT_EQ(records[3].step, 20);
  EXPECT_EQ(records[4].tag, "eval/cer");
  EXPECT_EQ(records[5].kind, TbRecord::Kind::kSessionStart);
  EXPECT_EQ(records[5].step, 15);
}

TEST(TensorBoard, FirstRecordHasTheWireLayoutTensorBoardExpects) {
  // Checked against the protobuf wire format by hand, not with our reader:
  // Event{wall_time (field 1, fixed64): 0x09 + 8 bytes, file_version (field 3,
  // bytes): 0x1a, 13, "brain.Event:2"} is 24 bytes.
  TempDir dir;
  const std::string raw = asr::read_file(write_sample(dir));
  ASSERT_GT(raw.size(), 40u);
  EXPECT_EQ(raw.substr(0, 8), std::string("\x18\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(static_cast<unsigned char>(raw[12]), 0x09);
  EXPECT_EQ(raw.substr(21, 15), std::string("\x1a\x0d") + "brain.Event:2");
  double wall = 0;
  std::memcpy(&wall, raw.data() + 13, 8);
  EXPECT_GT(wall, 1.6e9);
}

TEST(TensorBoard, EveryCorruptedByteIsDetected) {
  TempDir dir;
  fs::path path = write_sample(dir);
  const std::string good = asr::read_file(path);
  for (size_t pos = 0; pos < good.size(); ++pos) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x04);
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(bad.data(), static_cast<std::streamsize>(bad.size()));
    try {
      asr::read_tensorboard_events(path);
      ADD_FAILURE() << "corruption at byte " << pos << " not detected";
    } catch (const asr::Error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  // A torn final record (killed mid-write) is reported as truncated.
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(good.data(), static_cast<std::streamsize>(good.size() - 3));
  try {
    asr::read_tensorboard_events(path);
    ADD_FAILURE() << "truncation not detected";
  } catch (const asr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(TensorBoard, ReadableByPythonTensorBoardWhenInstalled) {
  if (asr::test::run_command("/usr/bin/python3 -c 'import tensorboard' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no tensorboard module; the C++ reader above is the check";
  TempDir dir;
  fs::path path = write_sample(dir);
  std::string out;
  std::string cmd =
      "/usr/bin/python3 -c \"import sys\nfrom tensorboard.backend.event_processing import event_file_loader as l\n"
      "n=0\nfor e in l.EventFileLoader(sys.argv[1]).Load():\n  n+=len(e.summary.value)\nprint(n)\" " +
      path.string();
  ASSERT_EQ(asr::test::run_command(cmd, &out), 0) << out;
  EXPECT_NE(out.find("4"), std::string::npos) << out;
}

TEST(MetricsLog, AppendsLinesAndTrimsOnResume) {
  TempDir dir;
  fs::path path = dir / "metrics.jsonl";
  {
    asr::MetricsLog log(path);
    for (int step = 10; step <= 50; step += 10) log.write({{"step", step}, {"loss", 1.0 / step}});
    log.write({{"step", 40}, {"split", "valid"}, {"cer", 0.3}});
  }
  auto all = asr::read_metrics_log(path);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[2]["step"], 30);
  {
    std::ofstream(path, std::ios::app) << "{\"step\": 60, \"lo";  // torn line from a crash
    asr::MetricsLog log(path, 30);
    log.write({{"step", 40}, {"loss", 0.1}});
  }
  all = asr::read_metrics_log(path);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[3]["step"], 40);
  EXPECT_DOUBLE_EQ(all[3]["loss"].get<double>(), 0.1);

  std::ofstream(path, std::ios::app) << "not json\n";
  EXPECT_THROW(asr::read_metrics_log(path), asr::Error);
}

}  // namespace
