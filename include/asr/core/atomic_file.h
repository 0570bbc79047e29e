// Files that appear complete or not at all: written under a temporary name in
// the same directory, fsynced, then renamed over the final name.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace asr {

// The temporary sibling used while `final_path` is being written.
std::filesystem::path temp_path_for(const std::filesystem::path& final_path);

// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync of the
// directory). Throws asr::Error naming the path on any failure, leaving no
// partial file behind.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// fsync of a file or directory by path; throws asr::Error on failure.
void fsync_path(const std::filesystem::path& path);

// Renames `from` to `to` and fsyncs the parent directory.
void rename_durable(const std::filesystem::path& from, const std::filesystem::path& to);

std::string read_file(const std::filesystem::path& path);

}  // namespace asr
