#!/usr/bin/env bash
# Stops the cluster that start-local-slurm.sh started in STATE_DIR: cancels
# its jobs, then ends its slurmd and slurmctld by the pids they recorded.
# The shared munged is left running. Safe to call twice.
# Usage: stop-local-slurm.sh STATE_DIR
set -uo pipefail
dir=${1:?usage: stop-local-slurm.sh STATE_DIR}
[[ -f "$dir/slurm.conf" ]] || exit 0
export SLURM_CONF="$dir/slurm.conf"

if [[ -f "$dir/slurmctld.pid" ]] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
  scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi

stop_pid_file() {
  local f=$1 pid
  [[ -f "$f" ]] || return 0
  pid=$(cat "$f")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null
}
stop_pid_file "$dir/slurmd.pid"
stop_pid_file "$dir/slurmctld.pid"
exit 0
