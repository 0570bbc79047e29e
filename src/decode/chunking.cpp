#include "asr/decode/chunking.h"

#include <algorithm>
#include <string>

#include "asr/core/error.h"

namespace asr {

std::vector<ChunkPlan> plan_chunks(int64_t samples, int64_t chunk, int64_t overlap, int64_t samples_per_frame) {
  if (samples_per_frame < 1) throw Error("plan_chunks: samples per frame must be positive");
  if (chunk <= 0 || samples <= chunk) return {ChunkPlan{0, samples, 0, -1}};
  chunk = chunk / samples_per_frame * samples_per_frame;
  overlap = std::max<int64_t>(0, overlap) / samples_per_frame * samples_per_frame;
  if (chunk < samples_per_frame || 2 * overlap >= chunk)
    throw Error("chunk overlap (" + std::to_string(overlap) + " samples) must be less than half the chunk length (" +
                std::to_string(chunk) + " samples, at least one frame of " + std::to_string(samples_per_frame) + ")");
  const int64_t step = chunk - overlap;
  const int64_t step_frames = step / samples_per_frame;
  const int64_t half_frames = overlap / samples_per_frame / 2;
  std::vector<ChunkPlan> plans;
  for (int64_t begin = 0;; begin += step) {
    ChunkPlan p;
    p.begin = begin;
    p.end = std::min(begin + chunk, samples);
    p.keep_begin = plans.empty() ? 0 : half_frames;
    const bool last = p.end == samples;
    p.keep_end = last ? -1 : step_frames + half_frames;
    plans.push_back(p);
    if (last) break;
  }
  return plans;
}

}  // namespace asr
