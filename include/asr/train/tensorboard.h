// TensorBoard event files without TensorFlow: TFRecord framing (length,
// masked CRC-32C of the length, data, masked CRC-32C of the data) around
// hand-encoded tensorflow.Event protobuf messages. Scalars are
// Summary.Value.simple_value; text is a DT_STRING tensor tagged for the
// "text" plugin. A reader, used by tests and tools, checks every CRC.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace asr {

class TensorBoardWriter {
 public:
  // Creates `dir` and events.out.tfevents.<unix time>.<host>.<pid> in it,
  // starting with the file_version event. Throws asr::Error on I/O failure.
  explicit TensorBoardWriter(const std::filesystem::path& dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  void add_scalar(const std::string& tag, double value, int64_t step);
  void add_text(const std::string& tag, const std::string& text, int64_t step);
  // A SessionLog START at `step`: TensorBoard then discards events from the
  // same run with a step >= `step` (written before a crash, redone after resume).
  void add_session_start(int64_t step);
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

struct TbRecord {
  enum class Kind { kFileVersion, kScalar, kText, kSessionStart, kOther };
  Kind kind = Kind::kOther;
  double wall_time = 0;
  int64_t step = 0;
  std::string tag;    // scalar/text tag; the version string for kFileVersion
  double scalar = 0;  // kScalar (stored as float32)
  std::string text;   // kText
};

// One record per summary value (plus file_version and session events).
// Throws asr::Error naming the file and byte offset on a bad length CRC,
// data CRC, truncated record or malformed protobuf.
std::vector<TbRecord> read_tensorboard_events(const std::filesystem::path& path);

}  // namespace asr
