// Private HDF5 helpers for the data module: RAII handles, one process-wide
// lock, and typed read/write of whole 1-D datasets. Not a public header, so
// hdf5.h never leaks into users of asr/data.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace asr::h5 {

// Every HDF5 call in this module runs under this lock. Debian's libhdf5 is
// built thread-safe with one global lock anyway; holding ours as well makes
// correctness independent of how the library was built.
std::mutex& global_mutex();

// Starts the library the way this module needs it, before any other HDF5
// call: automatic error-stack printing off (errors become asr::Error carrying
// error_detail()), and no exit-time H5close. libhdf5 1.10 leaves a file whose
// H5Fclose failed (disk full while flushing) half destroyed, and its exit-time
// cleanup then dereferences it: SIGSEGV after the error was already reported.
// Every handle of this module is closed by RAII before exit, so the exit-time
// pass has nothing left to do on any path.
void init_library();

// The most specific message on this thread's HDF5 error stack: the system's
// reason ("No space left on device") when a file driver call failed, else the
// innermost description; "" when the stack is empty. Read it right after the
// failing call, before any other HDF5 call clears the stack.
std::string error_detail();

class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      closer_ = o.closer_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  // Closes now and returns the closer's status: a writer must check it, since
  // closing a file flushes it and can fail (disk full).
  herr_t close() {
    const herr_t status = id_ >= 0 && closer_ ? closer_(id_) : 0;
    id_ = -1;
    return status;
  }
  // Closes, ignoring failure: for error paths, where an error is already on its way.
  void reset() { close(); }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Checks an id or status and throws asr::DataError("<file>: <what>: <error_detail()>")
// when negative.
hid_t check(hid_t id, const std::string& file, const std::string& what);

Handle create_file(const std::string& path);
Handle open_file(const std::string& path);

// Length of a 1-D dataset; throws naming file and dataset when it is missing
// or not 1-D.
int64_t dataset_length(hid_t file, const std::string& name, const std::string& path);

std::vector<int64_t> read_int64(hid_t file, const std::string& name, const std::string& path);
std::vector<int32_t> read_int32(hid_t file, const std::string& name, const std::string& path);
std::vector<double> read_double(hid_t file, const std::string& name, const std::string& path);
std::vector<std::string> read_strings(hid_t file, const std::string& name, const std::string& path);
// Reads [begin, begin + count) of an int16 dataset into out.
void read_int16_range(hid_t file, const std::string& name, int64_t begin, int64_t count, int16_t* out,
                      const std::string& path);
int64_t read_int_attribute(hid_t file, const std::string& name, const std::string& path);

void write_int64(hid_t file, const std::string& name, const std::vector<int64_t>& v, const std::string& path);
void write_int32(hid_t file, const std::string& name, const std::vector<int32_t>& v, const std::string& path);
void write_double(hid_t file, const std::string& name, const std::vector<double>& v, const std::string& path);
void write_strings(hid_t file, const std::string& name, const std::vector<std::string>& v,
                   const std::string& path);
void write_int_attribute(hid_t file, const std::string& name, int64_t value, const std::string& path);
void write_string_attribute(hid_t file, const std::string& name, const std::string& value,
                            const std::string& path);

// Dataset creation properties that keep files byte-identical across runs
// (no modification times in object headers).
Handle deterministic_dcpl();

}  // namespace asr::h5
