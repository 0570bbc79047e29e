#!/usr/bin/env bash
# asr_preprocess on inputs users get wrong, as a user runs it: FIFOs where
# files are read (refused by type, never a hang: each run is under `timeout`),
# FLAC and OGG audio under their own extensions, a corpus with nothing usable
# (the reasons counted), and bad values of every flag (exit 2 naming the flag,
# never "unexpected failure").
set -euo pipefail
bin="${ASR_BINARY_DIR:?}/asr_preprocess"
src="${ASR_SOURCE_DIR:?}"
command -v espeak-ng >/dev/null || { echo "espeak-ng missing: skipped"; exit 77; }
command -v sox >/dev/null || { echo "sox missing: skipped"; exit 77; }
work=$(mktemp -d /tmp/asr-inputs.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
args=(--val 1 --test 1 --vocab-size 60 --threads 2)
# Runs asr_preprocess under a time limit; sets rc and out (its output).
run() {
  set +e
  out=$(timeout 60 "$bin" "$@" 2>&1)
  rc=$?
  set -e
  [[ $rc -ne 124 ]] || fail "asr_preprocess $* hung (killed after 60 s)"
}

"$src/scripts/make-synthetic-ljspeech" --output "$work/in" --count 8 --jobs 2 2>/dev/null
ids=($(cut -d'|' -f1 "$work/in/metadata.csv"))

# 1. FIFOs. As metadata.csv: refused (exit 3) naming it. As a clip: that row is rejected.
cp -r "$work/in" "$work/fifo"
rm "$work/fifo/metadata.csv" && mkfifo "$work/fifo/metadata.csv"
run --input "$work/fifo" --output "$work/o1" "${args[@]}"
[[ $rc -eq 3 ]] || { echo "$out"; fail "metadata.csv as a FIFO: expected exit 3, got $rc"; }
grep -q "metadata.csv is a FIFO" <<< "$out" || { echo "$out"; fail "the FIFO must be named"; }
cp "$work/in/metadata.csv" "$work/fifo/metadata.csv.real" && rm "$work/fifo/metadata.csv"
mv "$work/fifo/metadata.csv.real" "$work/fifo/metadata.csv"
rm "$work/fifo/wavs/${ids[2]}.wav" && mkfifo "$work/fifo/wavs/${ids[2]}.wav"
run --input "$work/fifo" --output "$work/o2" "${args[@]}"
[[ $rc -eq 0 ]] || { echo "$out"; fail "a FIFO clip must only cost its row (exit $rc)"; }
grep -q "${ids[2]}.*is a FIFO" "$work/o2/rejects.tsv" || fail "rejects.tsv must give the FIFO as the reason"
run --input "$work/fifo/metadata.csv" --output "$work/o3" "${args[@]}"
[[ $rc -eq 2 ]] && grep -q "is a regular file, not a directory" <<< "$out" || { echo "$out"; fail "--input a file"; }
run --input "$work/fifo/wavs/${ids[2]}.wav" --output "$work/o3" "${args[@]}"
[[ $rc -eq 2 ]] && grep -q "is a FIFO (named pipe), not a directory" <<< "$out" || { echo "$out"; fail "--input a FIFO"; }

# 2. FLAC (lossless: the very same shards as from the WAVs) and OGG, with no .wav beside them.
run --input "$work/in" --output "$work/wav" "${args[@]}" --strict
[[ $rc -eq 0 ]] || { echo "$out"; fail "the WAV corpus must preprocess"; }
cp -r "$work/in" "$work/flac"
for id in "${ids[@]:0:5}"; do sox "$work/in/wavs/$id.wav" "$work/flac/wavs/$id.flac" && rm "$work/flac/wavs/$id.wav"; done
run --input "$work/flac" --output "$work/flac-out" "${args[@]}" --strict
[[ $rc -eq 0 ]] || { echo "$out"; fail "FLAC clips must be found and read"; }
shards() { grep -o '"crc32c": "[0-9a-f]*"' "$1/manifest.json"; }
[[ "$(shards "$work/wav")" == "$(shards "$work/flac-out")" ]] || fail "FLAC must give the same shards as WAV"
cp -r "$work/in" "$work/ogg"
sox "$work/in/wavs/${ids[0]}.wav" "$work/ogg/wavs/${ids[0]}.ogg" && rm "$work/ogg/wavs/${ids[0]}.wav"
run --input "$work/ogg" --output "$work/ogg-out" "${args[@]}" --strict
[[ $rc -eq 0 ]] || { echo "$out"; fail "an OGG clip must be found and read"; }

# 3. Nothing usable: the reasons, counted, and the first rows.
cp -r "$work/in" "$work/none" && rm "$work/none/wavs/"*
run --input "$work/none" --output "$work/o4" "${args[@]}"
[[ $rc -eq 3 ]] || { echo "$out"; fail "no usable utterances: expected exit 3, got $rc"; }
grep -q "all 8 rows were rejected (missing audio 8); first line 1 (${ids[0]}): audio not found" <<< "$out" \
  || { echo "$out"; fail "the message must count the reasons and show the first rows"; }

# 4. Bad values of every flag: exit 2, the flag named, nothing unexpected, nothing written.
bad=(
  "--val -1" "--val abc" "--val 1e3" "--test -5" "--test 99999999999999999999" "--shards 0" "--shards -3"
  "--vocab-size 3" "--vocab-size 1e9" "--sample-rate 0" "--sample-rate 1e12" "--sample-rate 44.1k"
  "--threads -1" "--threads 100000000" "--min-duration nan" "--min-duration -0.5" "--max-duration inf"
  "--max-duration 0" "--max-duration 1e400" "--tokenizer wordpiece" "--log-level loud" "--vocab-size"
)
for flags in "${bad[@]}"; do
  # shellcheck disable=SC2086
  run --input "$work/in" --output "$work/bad" "${args[@]}" $flags
  flag=${flags%% *}
  [[ $rc -eq 2 ]] || { echo "$out"; fail "$flags: expected exit 2, got $rc"; }
  grep -q -- "$flag" <<< "$out" || { echo "$out"; fail "$flags: the message must name $flag"; }
  grep -qi "unexpected\|terminate\|what()" <<< "$out" && { echo "$out"; fail "$flags: unexpected failure"; }
  [[ ! -e "$work/bad" ]] || fail "$flags: an output was written"
done
run --input "$work/in" --output "$work/bad" "${args[@]}" --min-duration 5 --max-duration 2
[[ $rc -eq 2 ]] && grep -q -- "--min-duration 5 must be below --max-duration 2" <<< "$out" \
  || { echo "$out"; fail "--min-duration above --max-duration"; }
run --input "$work/in" --output "$work/in/metadata.csv/out" "${args[@]}"
[[ $rc -eq 2 ]] && grep -q "cannot create" <<< "$out" || { echo "$out"; fail "--output under a file"; }
echo "ok"
