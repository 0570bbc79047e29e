#include "asr/train/tensorboard.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "asr/core/atomic_file.h"
#include "asr/core/crc32c.h"
#include "asr/core/error.h"

namespace asr {
namespace fs = std::filesystem;

namespace {

// --- protobuf wire format, only what tensorflow.Event needs ---------------

enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, Wire wire) { put_varint(out, (field << 3) | wire); }
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLen);
  put_varint(out, bytes.size());
  out += bytes;
}
template <class T>
void put_fixed(std::string& out, uint32_t field, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  put_key(out, field, sizeof(T) == 8 ? kFixed64 : kFixed32);
  unsigned char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));  // protobuf fixed fields are little-endian, as is this host
  out.append(reinterpret_cast<const char*>(raw), sizeof(T));
}

std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_fixed(e, 1, wall_time);
  if (step != 0) {  // proto3 leaves default values out
    put_key(e, 2, kVarint);
    put_varint(e, static_cast<uint64_t>(step));
  }
  return e;
}

double now_seconds() {
  using namespace std::chrono;
  return duration_cast<duration<double>>(system_clock::now().time_since_epoch()).count();
}

void put_u32le(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// --- reading ---------------------------------------------------------------

struct Field {
  uint32_t number = 0;
  Wire wire = kVarint;
  uint64_t varint = 0;
  std::string bytes;  // kLen payload, or the raw 4/8 bytes of fixed fields
};

class ProtoReader {
 public:
  ProtoReader(const std::string& data, const std::string& where) : data_(data), where_(where) {}
  bool done() const { return pos_ >= data_.size(); }

  Field next() {
    uint64_t key = varint();
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire = static_cast<Wire>(key & 7);
    switch (f.wire) {
      case kVarint: f.varint = varint(); break;
      case kFixed64: f.bytes = take(8); break;
      case kFixed32: f.bytes = take(4); break;
      case kLen: f.bytes = take(varint()); break;
      default: fail("unsupported wire type " + std::to_string(f.wire));
    }
    return f;
  }

 private:
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) fail("truncated varint");
      unsigned char b = static_cast<unsigned char>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("overlong varint");
  }
  std::string take(uint64_t n) {
    if (n > data_.size() - pos_) fail("field overruns its message");
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  [[noreturn]] void fail(const std::string& what) { throw Error(where_ + ": malformed event protobuf: " + what); }

  const std::string& data_;
  std::string where_;
  size_t pos_ = 0;
};

template <class T>
T fixed_value(const Field& f) {
  T v{};
  if (f.bytes.size() == sizeof(T)) std::memcpy(&v, f.bytes.data(), sizeof(T));
  return v;
}

void decode_value(const std::string& bytes, const std::string& where, TbRecord base, std::vector<TbRecord>& out) {
  ProtoReader r(bytes, where);
  TbRecord rec = base;
  bool has_simple = false, is_text = false;
  std::string tensor_string;
  while (!r.done()) {
    Field f = r.next();
    if (f.number == 1 && f.wire == kLen) {
      rec.tag = f.bytes;
    } else if (f.number == 2 && f.wire == kFixed32) {
      rec.scalar = fixed_value<float>(f);
      has_simple = true;
    } else if (f.number == 9 && f.wire == kLen) {  // SummaryMetadata.plugin_data.plugin_name
      ProtoReader meta(f.bytes, where);
      while (!meta.done()) {
        Field m = meta.next();
        if (m.number != 1 || m.wire != kLen) continue;
        ProtoReader plugin(m.bytes, where);
        while (!plugin.done()) {
          Field p = plugin.next();
          if (p.number == 1 && p.wire == kLen && p.bytes == "text") is_text = true;
        }
      }
    } else if (f.number == 8 && f.wire == kLen) {  // TensorProto.string_val
      ProtoReader tensor(f.bytes, where);
      while (!tensor.done()) {
        Field t = tensor.next();
        if (t.number == 8 && t.wire == kLen) tensor_string = t.bytes;
      }
    }
  }
  if (has_simple) {
    rec.kind = TbRecord::Kind::kScalar;
  } else if (is_text) {
    rec.kind = TbRecord::Kind::kText;
    rec.text = tensor_string;
  }
  out.push_back(rec);
}

void decode_event(const std::string& bytes, const std::string& where, std::vector<TbRecord>& out) {
  ProtoReader r(bytes, where);
  TbRecord base;
  std::vector<std::string> summaries, session_logs;
  std::string version;
  bool has_version = false;
  while (!r.done()) {
    Field f = r.next();
    if (f.number == 1 && f.wire == kFixed64) base.wall_time = fixed_value<double>(f);
    else if (f.number == 2 && f.wire == kVarint) base.step = static_cast<int64_t>(f.varint);
    else if (f.number == 3 && f.wire == kLen) version = f.bytes, has_version = true;
    else if (f.number == 5 && f.wire == kLen) summaries.push_back(f.bytes);
    else if (f.number == 6 && f.wire == kLen) session_logs.push_back(f.bytes);
  }
  if (has_version) {
    TbRecord rec = base;
    rec.kind = TbRecord::Kind::kFileVersion;
    rec.tag = version;
    out.push_back(rec);
  }
  for (const auto& s : session_logs) {
    ProtoReader log(s, where);
    TbRecord rec = base;
    while (!log.done()) {
      Field f = log.next();
      if (f.number == 1 && f.wire == kVarint && f.varint == 1) rec.kind = TbRecord::Kind::kSessionStart;
    }
    out.push_back(rec);
  }
  for (const auto& s : summaries) {
    ProtoReader summary(s, where);
    while (!summary.done()) {
      Field f = summary.next();
      if (f.number == 1 && f.wire == kLen) decode_value(f.bytes, where, base, out);
    }
  }
}

uint32_t get_u32le(const std::string& s, size_t pos) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  return v;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create TensorBoard directory " + dir.string() + ": " + ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  const double now = now_seconds();
  path_ = dir / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host + "." +
                 std::to_string(getpid()));
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw Error("cannot create TensorBoard event file " + path_.string() + ": " + std::strerror(errno));
  std::string e = event_header(now, 0);
  put_bytes(e, 3, "brain.Event:2");
  write_event(e);
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write_event(const std::string& event) {
  std::string record;
  record.reserve(event.size() + 16);
  for (int i = 0; i < 8; ++i) record.push_back(static_cast<char>((static_cast<uint64_t>(event.size()) >> (8 * i)) & 0xff));
  put_u32le(record, crc32c_mask(crc32c(record.data(), 8)));
  record += event;
  put_u32le(record, crc32c_mask(crc32c(event.data(), event.size())));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size())
    throw Error("cannot write TensorBoard event file " + path_.string() + ": " + std::strerror(errno));
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  put_bytes(v, 1, tag);
  put_fixed(v, 2, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event_header(now_seconds(), step);
  put_bytes(e, 5, summary);
  write_event(e);
}

void TensorBoardWriter::add_text(const std::string& tag, const std::string& text, int64_t step) {
  std::string plugin;
  put_bytes(plugin, 1, "text");
  std::string metadata;
  put_bytes(metadata, 1, plugin);
  std::string tensor;
  put_key(tensor, 1, kVarint);
  put_varint(tensor, 7);        // DT_STRING
  put_bytes(tensor, 2, "");     // scalar shape: no dims
  put_bytes(tensor, 8, text);
  std::string v;
  put_bytes(v, 1, tag);
  put_bytes(v, 8, tensor);
  put_bytes(v, 9, metadata);
  std::string summary;
  put_bytes(summary, 1, v);
  std::string e = event_header(now_seconds(), step);
  put_bytes(e, 5, summary);
  write_event(e);
}

void TensorBoardWriter::add_session_start(int64_t step) {
  std::string log;
  put_key(log, 1, kVarint);
  put_varint(log, 1);  // SessionLog.START
  std::string e = event_header(now_seconds(), step);
  put_bytes(e, 6, log);
  write_event(e);
}

void TensorBoardWriter::flush() {
  if (std::fflush(file_) != 0)
    throw Error("cannot flush TensorBoard event file " + path_.string() + ": " + std::strerror(errno));
}

std::vector<TbRecord> read_tensorboard_events(const fs::path& path) {
  const std::string data = read_file(path);
  const std::string name = path.string();
  std::vector<TbRecord> out;
  size_t pos = 0;
  while (pos < data.size()) {
    const std::string at = name + " at byte " + std::to_string(pos);
    if (data.size() - pos < 12) throw Error(at + ": truncated record header");
    uint64_t len = 0;
    for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(static_cast<unsigned char>(data[pos + i])) << (8 * i);
    if (get_u32le(data, pos + 8) != crc32c_mask(crc32c(data.data() + pos, 8)))
      throw Error(at + ": record length CRC mismatch (corrupt file)");
    if (data.size() - pos - 12 < len || data.size() - pos - 12 - len < 4)
      throw Error(at + ": truncated record (" + std::to_string(len) + " data bytes announced)");
    std::string event = data.substr(pos + 12, len);
    if (get_u32le(data, pos + 12 + len) != crc32c_mask(crc32c(event.data(), event.size())))
      throw Error(at + ": record data CRC mismatch (corrupt file)");
    decode_event(event, at, out);
    pos += 12 + len + 4;
  }
  return out;
}

}  // namespace asr
