#!/usr/bin/env bash
# Every numeric flag of asr_decode has a range (docs/decoding.md, "Option
# ranges"): a value outside it, a non-number or a non-finite number is a
# usage error (exit 2) naming the flag, at once, never "unexpected failure"
# or a stack trace (run_decode fails on those) and never a run that does not
# end (--beam 100000 used to run for ever). Flags that would be silently
# ignored are errors too. The edges of each range are accepted.
source "$(dirname "$0")/decode_common.inc"
make_checkpoint
base=(--checkpoint "$work/ckpt")
lm=(--beam 4 --lm-text "$work/lm.txt")

# flag|value|extra flags it needs (word-split). Every value of every range
# is checked in tests/decode/decoder_test.cpp (DecodeOptions.*); here each
# flag once or twice through the binary.
bad_values=(
  "--beam|100000|" "--beam|0|" "--beam|1e9|"
  "--nbest|6|--beam 4"
  "--prune|nan|--beam 4" "--prune|0|--beam 4"
  "--lm-order|11|${lm[*]}" "--lm-weight|inf|${lm[*]}" "--lm-bonus|-11|${lm[*]}"
  "--threads|257|" "--batch|0|"
  "--chunk-seconds|1e300|" "--chunk-seconds|nan|" "--chunk-overlap|10|"
  "--device|cuda:abc|" "--format|xml|" "--split|dev|--data $work/data"
)
for entry in "${bad_values[@]}"; do
  IFS='|' read -r flag value extra <<< "$entry"
  # shellcheck disable=SC2086
  run_decode "$work/bad" "${base[@]}" $extra "$flag" "$value" "$work/a.wav"
  [[ $status -eq 2 ]] || { cat "$work/bad.err"; fail "$flag $value exited $status, expected 2"; }
  grep -qF -- "$flag" "$work/bad.err" || { cat "$work/bad.err"; fail "$flag $value: the message does not name $flag"; }
  [[ ! -s $work/bad.out ]] || fail "$flag $value wrote transcripts"
done
grep -qF -- "--beam 100000 is out of range: it must be between 1 and 256" <(
  "$bin/asr_decode" "${base[@]}" --beam 100000 "$work/a.wav" 2>&1 || true) || fail "--beam 100000: no range in the message"

# Flags that mean nothing without another one.
expect_decode 2 "--lm-weight needs an LM" "${base[@]}" --lm-weight 0.5 "$work/a.wav"
expect_decode 2 "--nbest is for beam search" "${base[@]}" --nbest 1 "$work/a.wav"
expect_decode 2 "--chunk-overlap needs chunking" "${base[@]}" --chunk-seconds 0 --chunk-overlap 1 "$work/a.wav"
expect_decode 2 "--split is for --data" "${base[@]}" --split test "$work/a.wav"
expect_decode 2 "--no-verify is for --data" "${base[@]}" --no-verify "$work/a.wav"
expect_decode 2 "--lm-text needs beam search" "${base[@]}" --lm-text "$work/lm.txt" "$work/a.wav"
expect_decode 2 "--output needs a path" "${base[@]}" -o "" "$work/a.wav"
expect_decode 2 "--checkpoint needs a path" --checkpoint "" "$work/a.wav"

# The edges of the ranges decode.
expect_decode 0 "1 files decoded" "${base[@]}" --beam 256 --nbest 257 --prune 1000 --format jsonl "$work/a.wav"
expect_decode 0 "1 files decoded" "${base[@]}" "${lm[@]}" --lm-order 10 --lm-weight 10 --lm-bonus -10 "$work/a.wav"
expect_decode 0 "1 files decoded" "${base[@]}" --threads 256 --batch 1024 --chunk-seconds 1 --chunk-overlap 0.4 \
  "$work/a.wav"
echo "PASS"
