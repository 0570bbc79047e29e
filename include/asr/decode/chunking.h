// Cutting long inputs into overlapping chunks and stitching the chunks'
// frame posteriors back into one sequence (docs/decoding.md, "Long inputs").
//
// The model has no hard length limit, but attention costs grow with the
// square of the length and a model trained on short utterances degrades on
// much longer ones. So an input longer than `chunk` samples is decoded as
// chunks of `chunk` samples that overlap by `overlap`; of each overlap, the
// first half of the frames comes from the earlier chunk and the second half
// from the later one (the frames furthest from a chunk edge, where the model
// saw the most context). The stitched posteriors are then decoded as one
// utterance, so a word cut by a chunk edge is still decoded once.
#pragma once
#include <cstdint>
#include <vector>

namespace asr {

struct ChunkPlan {
  int64_t begin = 0, end = 0;                 // input samples [begin, end)
  int64_t keep_begin = 0, keep_end = -1;      // this chunk's output frames to keep; -1 = to its end
};

// `samples_per_frame` is the model's hop (chunks start on frame boundaries).
// `chunk` = 0 disables chunking (one plan covering everything). Chunk and
// overlap are rounded down to whole frames. Throws asr::Error when the
// overlap is not below half the chunk.
std::vector<ChunkPlan> plan_chunks(int64_t samples, int64_t chunk, int64_t overlap, int64_t samples_per_frame);

}  // namespace asr
