#!/usr/bin/env bash
# asr_ddp --plan --world-size N: the steps per epoch it predicts are the
# steps a real run of one epoch takes on N ranks, and the problems it finds
# (more ranks than utterances, empty per-rank batches, clips over the
# per-rank budget) are an error listing all of them, before any rank starts.
source "$(dirname "$0")/ddp_common.inc"

PLAN_SET=(--set train.batch_seconds=30 --set train.max_epochs=1)
"$BIN/asr_ddp" "${TINY[@]}" "${PLAN_SET[@]}" --plan --world-size 2 >"$WORK/plan.txt" 2>&1 ||
  { cat "$WORK/plan.txt"; fail "--plan on 2 ranks failed"; }
cat "$WORK/plan.txt"
planned=$(sed -n 's/^  steps per epoch: \([0-9]*\) .*/\1/p' "$WORK/plan.txt")
[[ -n $planned && $planned -gt 0 ]] || fail "no steps per epoch in the plan"
for what in "per rank per step: audio" "padding:" "per-rank budget 15.0 s" "encoder frames per second" \
  "memory per rank (estimate" "problems: none"; do
  grep -qF "$what" "$WORK/plan.txt" || fail "the plan does not show '$what'"
done

ddp 2 "$WORK/epoch" "${PLAN_SET[@]}" --max-steps 1000 >"$WORK/epoch.log" 2>&1 || { cat "$WORK/epoch.log"; fail "run"; }
trained=$(python3 -c '
import json, sys
print(max(r["step"] for r in map(json.loads, open(sys.argv[1])) if "loss" in r))' "$WORK/epoch/metrics.jsonl")
[[ $trained == "$planned" ]] || fail "the plan said $planned steps per epoch, one epoch on 2 ranks took $trained"

set +e
"$BIN/asr_ddp" "${TINY[@]}" --plan --world-size 64 >"$WORK/big.txt" 2>"$WORK/big.err"
rc=$?
"$BIN/asr_ddp" "${TINY[@]}" --plan >/dev/null 2>"$WORK/noworld.err"
rc2=$?
set -e
[[ $rc == 2 ]] || { cat "$WORK/big.txt" "$WORK/big.err"; fail "--plan with problems exited $rc, expected 2"; }
for what in "problem(s) found by --plan" "64 ranks but only" \
  "longer than the per-rank budget"; do
  grep -qF "$what" "$WORK/big.err" || { cat "$WORK/big.err"; fail "the problems do not include '$what'"; }
done
[[ $rc2 == 2 ]] && grep -q -- "--plan needs --world-size" "$WORK/noworld.err" || fail "--plan without --world-size"

# data.tokenizer: a recipe made for character targets refuses this BPE dataset
# (before any rank starts, in --plan and in training alike), naming the fix.
"$BIN/asr_ddp" "${TINY[@]}" "${PLAN_SET[@]}" --set data.tokenizer=bpe --plan --world-size 2 >/dev/null 2>"$WORK/tok-ok.err" ||
  { cat "$WORK/tok-ok.err"; fail "data.tokenizer=bpe refused a bpe dataset"; }
for mode in plan train; do
  args=(--plan --world-size 2)
  [[ $mode == train ]] && args=(--run-dir "$WORK/tok-run" --max-steps 1)
  set +e
  "$BIN/asr_ddp" "${TINY[@]}" "${PLAN_SET[@]}" --set data.tokenizer=char "${args[@]}" >"$WORK/tok.out" 2>"$WORK/tok.err"
  rc=$?
  set -e
  [[ $rc != 0 ]] || fail "$mode: a char recipe trained on a bpe dataset"
  grep -qF 'made for a "char" tokenizer' "$WORK/tok.err" && grep -qF 'preprocessed with "bpe"' "$WORK/tok.err" &&
    grep -qF "asr_preprocess --tokenizer char" "$WORK/tok.err" ||
    { cat "$WORK/tok.out" "$WORK/tok.err"; fail "$mode: the tokenizer mismatch is not named with its fix"; }
done
[[ ! -e $WORK/tok-run/checkpoints ]] || fail "the refused run wrote checkpoints"
echo "ok: planned $planned steps per epoch on 2 ranks, trained $trained; the problems named at 64 ranks"
