// Checks on the paths a user hands us, made before anything is opened, so a
// FIFO never blocks a read, a device never receives an output, and an output
// never overwrites one of the inputs it is made from.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace asr {

// "a directory", "a FIFO", "a character device", "a socket", ... for messages;
// "missing" when nothing is there.
std::string describe_file_type(const std::filesystem::path& path);

// An input that must be a readable regular file (symlinks followed). Throws
// asr::DataError naming `what`, the path and what is there instead.
void require_regular_input(const std::filesystem::path& path, std::string_view what);

// An output file about to be (over)written: it must be absent or a regular
// file, and must not be the same file as any of `inputs` (hard links and
// symlinks included). Throws asr::Error naming `what` and the path.
void require_writable_output(const std::filesystem::path& path, std::string_view what,
                             const std::vector<std::filesystem::path>& inputs = {});

}  // namespace asr
