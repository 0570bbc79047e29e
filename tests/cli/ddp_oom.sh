#!/usr/bin/env bash
# Out of memory on one rank, in forward or in backward (ASR_FAULT_OOM throws
# the error a CUDA allocation failure throws): that rank drops the step but
# still takes part in the step's collectives with zeros, every rank skips the
# step together, the log names the utterances, metrics.jsonl counts it in
# oom_skipped, and the run ends at its planned step. Also with synchronized
# batch norm, whose statistics are collectives inside forward and backward.
source "$(dirname "$0")/ddp_common.inc"

check_run() {  # check_run NAME EXPECTED_SKIPS
  local run=$WORK/$1
  [[ $(field "$run" step) == 8 ]] || { cat "$run.log"; fail "$1: the run did not reach step 8"; }
  [[ $(field "$run" oom_skipped) == "$2" ]] || { cat "$run.log"; fail "$1: oom_skipped is not $2"; }
  [[ $(field "$run" skipped_steps) == "$2" ]] || fail "$1: skipped_steps is not $2"
  grep -q "out of memory on 1 rank(s) (their logs name the utterances); every rank skips it" "$run.log" ||
    { cat "$run.log"; fail "$1: no skip message on rank 0"; }
  grep -hq "out of memory at step 3 .*the utterances: SYN" "$run"/logs/rank-*.log ||
    { cat "$run"/logs/rank-*.log; fail "$1: the failing rank did not name its utterances"; }
}

# Forward at step 3 on rank 1, backward at step 5 on rank 0 (the backward
# fault strikes with the encoder's gradient buckets already launched).
ASR_FAULT_OOM=3:1:forward ddp 2 "$WORK/fwd" --max-steps 8 --set checkpoint.every=0 >"$WORK/fwd.log" 2>&1 ||
  { cat "$WORK/fwd.log"; fail "forward OOM run failed"; }
check_run fwd 1
ASR_FAULT_OOM=3:0:backward ddp 2 "$WORK/bwd" --max-steps 8 --set checkpoint.every=0 >"$WORK/bwd.log" 2>&1 ||
  { cat "$WORK/bwd.log"; fail "backward OOM run failed"; }
check_run bwd 1
grep -q "(micro-batch 1 of 1)" "$WORK/bwd/logs/rank-0.log" || fail "rank 0's log does not show the backward fault"

# Batch norm synchronized over the ranks: the failing rank joins the
# statistics sums it missed in forward and backward.
ASR_FAULT_OOM=3:1:backward ddp 2 "$WORK/bn" --max-steps 8 --set checkpoint.every=4 --set model.frontend.norm=batch \
  >"$WORK/bn.log" 2>&1 || { cat "$WORK/bn.log"; fail "batch-norm OOM run failed"; }
check_run bn 1
# The checkpoints of that run passed the replicas' agreement check.
ls "$WORK/bn/checkpoints/"step-000000004.ckpt >/dev/null || fail "no checkpoint at step 4"
echo "PASS"
