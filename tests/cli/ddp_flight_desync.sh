#!/usr/bin/env bash
# A rank that skips one collective (ASR_FAULT_SKIP_COLLECTIVE: rank 1 skips
# step 3's decision all-reduce): without dist.check_collectives the ranks fail
# and asr_ddp --diagnose names the sequence number and the operation they
# disagree on; with it, every rank stops with exit 4 before the mismatched
# collective, naming both ranks' fingerprints (docs/operations.md).
source "$(dirname "$0")/ddp_common.inc"


# run2 RUN_DIR [flags...]: 2 ranks torchrun-style, rank 1 skipping; statuses in RCS.
run2() {
  local run=$1 p r
  shift
  p=$(port)
  local pids=()
  for r in 0 1; do
    ASR_FAULT_SKIP_COLLECTIVE=3:1 RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 \
      MASTER_PORT=$p "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$run" --max-steps 8 --set dist.timeout_seconds=5 "$@" \
      >"$run.$r.log" 2>&1 &
    pids+=($!)
  done
  RCS=()
  for r in 0 1; do
    wait "${pids[$r]}"
    RCS+=($?)
  done
}

# Without the check: both ranks time out in mismatched collectives, and the
# diagnosis names the first sequence number whose collective differs.
run2 "$WORK/skip"
for r in 0 1; do
  [[ ${RCS[$r]} == 4 ]] || { cat "$WORK/skip.$r.log"; fail "rank $r exited ${RCS[$r]} after rank 1 skipped a collective, expected 4"; }
done
"$BIN/asr_ddp" --diagnose "$WORK/skip" >"$WORK/skip.diag" 2>&1 || { cat "$WORK/skip.diag"; fail "--diagnose failed"; }
cat "$WORK/skip.diag"
# Rank 1's next collective after the skipped decision is the log record's
# all-gather (train.log_every=1).
head -n 1 "$WORK/skip.diag" |
  grep -Eq "^collective #[0-9]+ differs: rank 1 ran all_gather float64\[[0-9]+\] \(memory and step-time figures, step 3\) while rank 0 ran all_reduce float64\[[0-9]+\] \(step decision, step 3\)" ||
  fail "the verdict does not name the collective rank 1 skipped"

# With the check: exit 4 on both ranks, both fingerprints named.
run2 "$WORK/check" --set dist.check_collectives=true
for r in 0 1; do
  [[ ${RCS[$r]} == 4 ]] || { cat "$WORK/check.$r.log"; fail "rank $r exited ${RCS[$r]} with the check on, expected 4"; }
done
grep -h "out of step" "$WORK"/check.[01].log
grep -Eq "rank 0 is about to run all_reduce #([0-9]+) float64\[[0-9]+\] \(1 dims\) but rank 1 runs all_gather #\1 float64\[[0-9]+\]" \
  "$WORK/check.0.log" || { cat "$WORK/check.0.log"; fail "rank 0's error does not name both fingerprints"; }
grep -q "rank 1 is about to run all_gather #[0-9]* float64\[[0-9]*\] (1 dims) but rank 0 runs all_reduce" "$WORK/check.1.log" ||
  { cat "$WORK/check.1.log"; fail "rank 1's error does not name both fingerprints"; }
# The dumps hold the mismatched collective too, so --diagnose names it.
"$BIN/asr_ddp" --diagnose "$WORK/check" >"$WORK/check.diag" 2>&1 || { cat "$WORK/check.diag"; fail "--diagnose failed"; }
head -n 1 "$WORK/check.diag" | grep -Eq "^collective #[0-9]+ differs: rank 1 ran all_gather" ||
  { cat "$WORK/check.diag"; fail "--diagnose does not name the mismatch the check stopped at"; }
echo "PASS"
