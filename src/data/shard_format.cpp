#include "asr/data/shard_format.h"

#include <cstdio>

namespace asr::shard {

std::string file_name(const std::string& split, size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.h5", index, count);
  return split + buf;
}

}  // namespace asr::shard
