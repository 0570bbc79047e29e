#!/usr/bin/env bash
# launch/mpirun.sh turns an operator's stop into a checkpoint and exit 75:
# 1. SIGTERM to the script;
# 2. SIGINT to the script's whole process group, as ^C in a terminal sends it
#    (mpirun itself must not get it: Open MPI answers SIGINT/SIGTERM by
#    killing the ranks a second later and exiting 1, docs/operations.md).
# Both runs must leave a checkpoint of the step they stopped at.
source "$(dirname "$0")/ddp_common.inc"

echo "localhost slots=2" >"$WORK/hosts"
export ASR_BIN_DIR=$BIN ASR_BIND=none ASR_MPIRUN_ARGS="--oversubscribe"
ARGS=("${TINY[@]:2}")  # TINY without its leading --config FILE: mpirun.sh takes the config as an argument

# Job control: each background job gets a process group of its own and keeps
# SIGINT (without it a background job ignores SIGINT, and so would the script).
set -m

# stop NAME SIGNAL TARGET: start mpirun.sh as a process-group leader, send
# SIGNAL to TARGET ("script" or "group") once training runs, expect 75.
stop() {
  local name=$1 sig=$2 target=$3
  bash "$SRC/launch/mpirun.sh" "$WORK/hosts" "$SRC/configs/tiny.toml" "${ARGS[@]}" \
    --run-dir "$WORK/$name" --max-steps 400 --set checkpoint.every=0 >"$WORK/$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do grep -q '"step":2,' "$WORK/$name/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
  if [[ $target == group ]]; then kill -"$sig" -- -"$pid"; else kill -"$sig" "$pid"; fi
  wait "$pid"
  local rc=$?
  [[ $rc == 75 ]] || { cat "$WORK/$name.log"; fail "$name: SIG$sig to the $target: mpirun.sh exited $rc, expected 75"; }
  local step
  step=$(field "$WORK/$name" step)
  [[ -f $WORK/$name/checkpoints/step-$(printf '%09d' "$step").ckpt ]] ||
    { ls "$WORK/$name/checkpoints"; fail "$name: no checkpoint of step $step"; }
  grep -q "stop requested (SIGUSR1 on rank" "$WORK/$name.log" || { cat "$WORK/$name.log"; fail "$name: no stop message"; }
  echo "SIG$sig to the $target: exit 75, checkpoint of step $step"
}

stop term TERM script
stop int INT group
echo "PASS"
