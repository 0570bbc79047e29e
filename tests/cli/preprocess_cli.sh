#!/usr/bin/env bash
# asr_preprocess as a user runs it: --help, exit statuses, rejects.tsv and
# the final summary for bad input, --strict, --overwrite.
set -euo pipefail
bin="${ASR_BINARY_DIR:?}/asr_preprocess"
src="${ASR_SOURCE_DIR:?}"
command -v espeak-ng >/dev/null || { echo "espeak-ng missing: skipped"; exit 77; }
work=$(mktemp -d /tmp/asr-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$bin" --help | grep -q -- "--vocab-size" || fail "--help does not list the options"
set +e; "$bin" --input "$work/nope" >/dev/null 2>&1; rc=$?; set -e
[[ $rc -eq 2 ]] || fail "missing --output should exit 2, got $rc"

"$src/scripts/make-synthetic-ljspeech" --output "$work/in" --count 16 --voices en-us,en-gb --jobs 2 2>/dev/null
# Damage the corpus in every way the issue lists.
cp "$work/in/metadata.csv" "$work/good.csv"
printf 'not audio' > "$work/in/wavs/BADWAV.wav"
: > "$work/in/wavs/ZERO.wav"
{
  echo "GONE|missing audio|missing audio"
  echo "BADWAV|not audio|not audio"
  echo "ZERO|zero bytes|zero bytes"
  echo "SYN001-0002|duplicate|duplicate"
  echo "NOTEXT|raw|"
  echo "malformed line without pipes"
  printf 'LATIN1|caf\xe9|caf\xe9\n'
} >> "$work/in/metadata.csv"

set +e
"$bin" --input "$work/in" --output "$work/strict" --val 2 --test 2 --vocab-size 40 --strict > "$work/strict.log" 2>&1
rc=$?
set -e
[[ $rc -ne 0 ]] || fail "--strict with bad rows must fail"
[[ ! -e "$work/strict" ]] || fail "--strict failure left an output directory"
ls -a "$work" | grep -q partial && fail "a partial directory was left behind"

"$bin" --input "$work/in" --output "$work/out" --val 2 --test 2 --vocab-size 40 > "$work/run.log" 2>&1 \
  || { cat "$work/run.log"; fail "a run with bad rows must still succeed"; }
tail -1 "$work/run.log" | grep -q "x realtime" || fail "the final line must report throughput"
grep -q "16 utterances" "$work/run.log" || { cat "$work/run.log"; fail "all 16 good rows must be kept"; }
for what in GONE BADWAV ZERO SYN001-0002 NOTEXT "malformed line" "invalid UTF-8"; do
  grep -q -- "$what" "$work/out/rejects.tsv" || { cat "$work/out/rejects.tsv"; fail "rejects.tsv lacks $what"; }
done
[[ $(($(wc -l < "$work/out/rejects.tsv") - 1)) -eq 7 ]] || fail "expected 7 rejects"

set +e; "$bin" --input "$work/in" --output "$work/out" --val 2 --test 2 >/dev/null 2>&1; rc=$?; set -e
[[ $rc -eq 2 ]] || fail "an existing output must be refused without --overwrite (exit $rc)"
cp "$work/good.csv" "$work/in/metadata.csv"
"$bin" --input "$work/in" --output "$work/out" --val 2 --test 2 --vocab-size 40 --overwrite --strict >/dev/null 2>&1 \
  || fail "--overwrite --strict on the clean corpus must succeed"
[[ $(wc -l < "$work/out/rejects.tsv") -eq 1 ]] || fail "rejects.tsv should hold only its header now"
echo "ok"
