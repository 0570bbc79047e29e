#!/usr/bin/env bash
# Benchmark: the whole asr_preprocess pipeline against a shell loop of
# `sox in.wav -r 16000 out.wav` over the same files (the issue's baseline, one
# core). Prints both rates in x realtime and their ratio; the target is >= 2x.
#
#   bench/preprocess_vs_sox.sh [--corpus DIR | --count N] [--threads T] [--build BUILD_DIR]
#
# Without --corpus it synthesizes N (default 2000) utterances of LJSpeech text
# with scripts/make-synthetic-ljspeech (../shared/ljspeech/metadata.csv when
# present). Not a ctest: timings depend on the machine and its load.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
corpus="" count=2000 threads=$(nproc) build="$here/build"
while [[ $# -gt 0 ]]; do
  case $1 in
    --corpus) corpus=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
tool="$build/asr_preprocess"
[[ -x $tool ]] || { echo "build asr_preprocess first (looked for $tool)" >&2; exit 2; }
command -v sox >/dev/null || { echo "sox is not installed" >&2; exit 2; }
work=$(mktemp -d /tmp/asr-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [[ -z $corpus ]]; then
  corpus="$work/corpus"
  meta=()
  [[ -f "$here/../shared/ljspeech/metadata.csv" ]] && meta=(--metadata "$here/../shared/ljspeech/metadata.csv")
  "$here/scripts/make-synthetic-ljspeech" --output "$corpus" --count "$count" --voices en-us,en-gb \
    "${meta[@]}" --jobs "$(nproc)" 2>/dev/null
fi
seconds=$(soxi -DT "$corpus"/wavs/*.wav)
files=$(ls "$corpus"/wavs/*.wav | wc -l)
echo "corpus: $corpus ($files files, $(printf '%.0f' "$seconds") s of audio)"

# Warm the page cache so neither side pays for the first read.
cat "$corpus"/wavs/*.wav >/dev/null

mkdir -p "$work/sox"
t0=$(date +%s.%N)
for f in "$corpus"/wavs/*.wav; do sox -V1 "$f" -r 16000 "$work/sox/$(basename "$f")"; done
t1=$(date +%s.%N)
sox_wall=$(echo "$t1 - $t0" | bc -l)

t0=$(date +%s.%N)
"$tool" --input "$corpus" --output "$work/out" --threads "$threads" --log-level warn
t1=$(date +%s.%N)
asr_wall=$(echo "$t1 - $t0" | bc -l)

sox_rt=$(echo "$seconds / $sox_wall" | bc -l)
asr_rt=$(echo "$seconds / $asr_wall" | bc -l)
printf 'sox loop (1 core):            %7.2f s  %6.0fx realtime\n' "$sox_wall" "$sox_rt"
printf 'asr_preprocess (%s threads):   %7.2f s  %6.0fx realtime\n' "$threads" "$asr_wall" "$asr_rt"
printf 'ratio: %.2fx (target >= 2)\n' "$(echo "$asr_rt / $sox_rt" | bc -l)"
