#!/usr/bin/env bash
# SIGUSR1 (and SIGTERM) on one rank: every rank stops at the same step and
# exits 75 ("preempted, requeue me").
source "$(dirname "$0")/distributed_common.inc"

for sig in USR1 TERM; do
  dir="$WORK/$sig"; mkdir -p "$dir"
  "${MPIRUN[@]}" -np 3 "$TOOL" signal --pid-dir="$dir" > "$dir.log" 2>&1 &
  job=$!
  wait_for_pids 3 "$dir"
  sleep 1
  kill -$sig "$(cat "$dir/pid.1")"
  wait $job; rc=$?
  ((rc == 75)) || { cat "$dir.log"; fail "SIG$sig: mpirun exited $rc, expected 75"; }
  lines=$(grep -c "stopping at step" "$dir.log")
  ((lines == 3)) || { cat "$dir.log"; fail "SIG$sig: $lines of 3 ranks reported the stop"; }
  steps=$(grep -o "stopping at step [0-9]*: SIG$sig on rank 1" "$dir.log" | sort -u | wc -l)
  ((steps == 1)) || { cat "$dir.log"; fail "SIG$sig: ranks disagree on the step or the signal"; }
  grep "stopping at step" "$dir.log" | head -1
done
echo "PASS"
