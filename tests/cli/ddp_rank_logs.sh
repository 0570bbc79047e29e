#!/usr/bin/env bash
# Each rank's log file (RUN_DIR/logs/rank-N.log) records what ended that
# rank, not only its stderr (docs/operations.md sends operators to the logs):
# 1. SIGSEGV in rank 1: its log names the signal; rank 0's log has the
#    failed collective and exit status 4;
# 2. rank 1 hung (SIGSTOP): rank 0's log has the collective timeout;
# 3. SIGTERM to rank 1: its log says so, and both logs end with status 75;
# 4. a fault hook (ASR_FAULT_DIVERGE): both logs have the divergence error
#    and exit status 5.
# Ranks are started torchrun-style, so each one's own exit status is seen.
source "$(dirname "$0")/ddp_common.inc"

# launch NAME [asr_ddp flags...]: 2 ranks in the background (pids P0, P1),
# returning once both are training.
launch() {
  local name=$1
  shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  for r in 0 1; do
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/$name" --max-steps 400 "$@" >"$WORK/$name.$r.out" 2>&1 &
    eval "P$r=$!"
  done
  for _ in $(seq 600); do grep -q '"step":2,' "$WORK/$name/metrics.jsonl" 2>/dev/null && return 0; sleep 0.1; done
  cat "$WORK/$name.0.out"; fail "$name: training did not start"
}

# expect_exit PID STATUS WHAT
expect_exit() {
  wait "$1"; local rc=$?
  [[ $rc == "$2" ]] || fail "$3 exited $rc, expected $2"
}

# in_log NAME RANK PATTERN: the rank's log file has a line matching PATTERN.
in_log() {
  grep -Eq "$3" "$WORK/$1/logs/rank-$2.log" || { cat "$WORK/$1/logs/rank-$2.log"; fail "$1: rank $2's log lacks /$3/"; }
}

# 1. A crash.
launch segv
kill -SEGV "$P1"
expect_exit "$P1" 139 "segv: rank 1"
expect_exit "$P0" 4 "segv: rank 0"
in_log segv 1 "critical \[rank 1\] fatal signal SIGSEGV"
in_log segv 0 "error \[rank 0\] rank 0: distributed failure: .*collective .* \(exit status 4\)"
echo "SIGSEGV: rank 1's log names the signal, rank 0's the failed collective"

# 2. A hung peer: rank 0 times out (3 s).
launch hang --set dist.timeout_seconds=3 --set dist.watchdog_margin_seconds=5
kill -STOP "$P1"
expect_exit "$P0" 4 "hang: rank 0"
kill -9 "$P1"; wait "$P1" 2>/dev/null
in_log hang 0 "rank 0: distributed failure: rank 0: collective '.*' \(gloo, 2 ranks, timeout 3.0 s\) failed.*\(exit status 4\)"
echo "hung peer: rank 0's log has the collective timeout"

# 3. Preemption.
launch term --set checkpoint.every=0
kill -TERM "$P1"
expect_exit "$P0" 75 "term: rank 0"
expect_exit "$P1" 75 "term: rank 1"
in_log term 1 "warning \[rank 1\] received SIGTERM: every rank checkpoints"
for r in 0 1; do in_log term $r "asr_ddp exits with status 75 \(stopped after a checkpoint\)"; done
echo "SIGTERM: rank 1's log has the signal, both logs the exit status 75"

# 4. A fault hook: rank 1's parameters drift after step 2; the checkpoint's
#    agreement check stops every rank.
ASR_FAULT_DIVERGE=2:1 launch diverge --set checkpoint.every=3
expect_exit "$P0" 5 "diverge: rank 0"
expect_exit "$P1" 5 "diverge: rank 1"
for r in 0 1; do in_log diverge $r "error \[rank $r\] rank $r: .*\(exit status 5\)"; done
echo "divergence: both logs have the error and exit status 5"
echo "PASS"
