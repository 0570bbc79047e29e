// The output directory of one asr_preprocess run, from lock to swap into
// place. Private to the data module; docs/data-format.md ("Output directory")
// describes the behaviour for users.
//
//   <parent>/.<name>.lock           held (flock) for the whole run: one run per output
//   <parent>/.<name>.partial-<pid>  where the run builds; holds its own .lock
//   <parent>/<name>                 appears complete or not at all
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "asr/core/exclusive_lock.h"

namespace asr {

class OutputDirectory {
 public:
  // Locks the output (throws asr::Error naming the live holder's pid and
  // host), refuses an existing output unless `overwrite` (and then anything
  // but an empty directory or one with a manifest.json), removes temporary
  // directories of runs that are provably dead, and creates this run's.
  OutputDirectory(const std::string& output, bool overwrite);

  OutputDirectory(const OutputDirectory&) = delete;
  OutputDirectory& operator=(const OutputDirectory&) = delete;
  // Removes the temporary directory unless install() completed; unlocks.
  ~OutputDirectory();

  const std::filesystem::path& final_path() const { return final_; }
  // Where every output file is written until install().
  const std::filesystem::path& temp_path() const { return temp_; }

  // Swaps the temporary directory into place atomically (renameat2
  // RENAME_EXCHANGE, or two renames where the filesystem lacks it) and
  // removes the output it replaced.
  void install();

 private:
  std::filesystem::path final_, temp_;
  ExclusiveLock output_lock_;
  std::optional<ExclusiveLock> temp_lock_;
  bool installed_ = false;
};

}  // namespace asr
