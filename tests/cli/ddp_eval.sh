#!/usr/bin/env bash
# Distributed evaluation: the same checkpoint gives exactly the same CER and
# WER on 1, 2 and 3 ranks.
source "$(dirname "$0")/ddp_common.inc"

ddp 1 "$WORK/run" --max-steps 8 >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; fail "training failed"; }
results=()
for np in 1 2 3; do
  out=$(ddp $np "$WORK/run" --eval-only 2>&1) || { echo "$out"; fail "--eval-only on $np ranks failed"; }
  line=$(grep -o 'CER [0-9.]* WER [0-9.]* over [0-9]* utterances' <<<"$out")
  [[ -n $line ]] || { echo "$out"; fail "no result line on $np ranks"; }
  echo "$np rank(s): $line"
  results+=("$line")
done
[[ ${results[0]} == "${results[1]}" && ${results[0]} == "${results[2]}" ]] || fail "evaluation differs across world sizes"
echo "PASS"
