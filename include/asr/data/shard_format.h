// Names shared by the shard writer, the reader and docs/data-format.md.
#pragma once
#include <cstdint>
#include <string>

namespace asr::shard {

// Bumped whenever a reader of the previous version would misread the output.
constexpr int kFormatVersion = 1;
constexpr const char* kFormatName = "asr-ljspeech-shards";

// Root attributes.
constexpr const char* kAttrSampleRate = "sample_rate";
constexpr const char* kAttrFormatVersion = "format_version";
constexpr const char* kAttrSplit = "split";

// Datasets (all 1-D).
constexpr const char* kAudio = "audio";                 // int16, every utterance concatenated
constexpr const char* kOffsets = "offsets";             // int64, N+1 sample offsets into audio
constexpr const char* kIds = "ids";                     // UTF-8 strings, N
constexpr const char* kText = "text";                   // UTF-8 strings, N: metadata.csv's normalized column
constexpr const char* kNormalized = "normalized";       // UTF-8 strings, N: normalize_transcript(text)
constexpr const char* kTokens = "tokens";               // int32, concatenated token ids
constexpr const char* kTokenOffsets = "token_offsets";  // int64, N+1 offsets into tokens
constexpr const char* kDurations = "durations";         // float64 seconds, N

// "train-00001-of-00004.h5"
std::string file_name(const std::string& split, size_t index, size_t count);

}  // namespace asr::shard
