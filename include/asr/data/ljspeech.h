// Reading an LJSpeech-1.1 directory's metadata.csv: `ID|raw|normalized`,
// UTF-8, pipe-delimited, no quoting, audio in wavs/ID.wav (or ID.flac, ID.ogg
// when there is no ID.wav). Rows that cannot be
// used are returned as rejects with a reason; nothing is dropped silently
// (only blank lines, which are not rows, are passed over).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace asr {

struct CorpusRow {
  size_t line = 0;         // 1-based line in metadata.csv
  std::string id;
  std::string text;        // the normalized column, as written
  std::string normalized;  // normalize_transcript(text), the CTC target text
  std::string audio_path;  // wavs/ID.wav until locate_audio() found the real file
};

struct Reject {
  size_t line = 0;
  std::string id;  // empty when the line has no usable id
  std::string reason;
  std::string kind;  // a short category for counts ("missing audio", "too short"); reason when empty
};

struct CorpusListing {
  std::vector<CorpusRow> rows;
  std::vector<Reject> rejects;
};

// Throws asr::Error when `dir` is not a directory, asr::DataError when its
// metadata.csv is missing, unreadable or not a regular file (a FIFO would
// block the read) or it has no wavs/ directory. Checks each line's shape,
// UTF-8, id, transcript and duplicate ids (the first occurrence wins); does
// not touch the audio files.
CorpusListing read_ljspeech_metadata(const std::string& dir);

// The audio extensions looked for under wavs/, in order: the first that
// exists is used (libsndfile reads them all).
inline constexpr const char* kAudioExtensions[] = {".wav", ".flac", ".ogg"};

// Where row `id`'s audio is, or why it cannot be used.
struct AudioLookup {
  std::string path;     // the file found; empty when there is none
  std::string kind;     // "missing audio" or "not a regular file" when unusable
  std::string problem;  // a message naming the path(s); empty when usable
};

// Looks for wavs_dir/ID.wav, .flac, .ogg; refuses what is there by its type
// (a FIFO, device or socket could block or never end) without opening it.
AudioLookup locate_audio(const std::string& wavs_dir, const std::string& id);

}  // namespace asr
