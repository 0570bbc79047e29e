#!/usr/bin/env bash
# Data-parallel training with bare Open MPI across the hosts of a hostfile,
# for machines without Slurm.
#
#   launch/mpirun.sh HOSTFILE CONFIG [asr_ddp flags...]
#
# HOSTFILE is Open MPI's: one "host slots=N" line per machine, N = ranks
# there (one per GPU). Every host needs the same paths (binaries, config,
# data, run directory on a shared file system) and passwordless ssh.
#
# Environment:
#   ASR_BIN_DIR      directory holding asr_ddp (else from PATH)
#   ASR_NP           total ranks (default: the sum of the slots)
#   ASR_BIND         --bind-to target: core (default), socket, numa or none
#   ASR_MPIRUN_ARGS  extra mpirun options, word-split (e.g. --oversubscribe)
#   OMP_NUM_THREADS  threads per rank (default 1)
# Passed to every rank: OMP_NUM_THREADS, MASTER_ADDR/MASTER_PORT when set,
# and every NCCL_*, ASR_*, CUDA_VISIBLE_DEVICES, GLOO_* variable set here.
#
# Exit status is the trainer's (docs/operations.md): 0 done, 75 stopped on a
# signal with a checkpoint (run again with --resume auto), 2 bad usage, 3 bad
# data, 4 a rank died or hung, 5 replicas diverged, 1 anything else.
# SIGUSR1, SIGTERM and SIGINT (^C) given to this script reach every rank as
# USR1. Use this script rather than a bare mpirun, which turns TERM and ^C
# into a kill of the ranks after one second and exit status 1.
set -uo pipefail

die() { echo "mpirun.sh: error: $*" >&2; exit 2; }

[[ $# -ge 2 ]] || die "usage: mpirun.sh HOSTFILE CONFIG [asr_ddp flags...]"
hostfile=$1
config=$2
shift 2
[[ -f "$hostfile" ]] || die "hostfile $hostfile not found"
[[ -f "$config" ]] || die "config $config not found"
command -v mpirun >/dev/null || die "mpirun not found (Debian: apt-get install openmpi-bin)"

if [[ -n "${ASR_BIN_DIR:-}" ]]; then
  trainer="$ASR_BIN_DIR/asr_ddp"
  [[ -x "$trainer" ]] || die "ASR_BIN_DIR=$ASR_BIN_DIR holds no executable asr_ddp"
else
  trainer=$(command -v asr_ddp) || die "asr_ddp is not on PATH; set ASR_BIN_DIR to the build directory"
fi
# Remote hosts resolve paths themselves: hand them absolute ones.
trainer=$(cd "$(dirname "$trainer")" && pwd)/$(basename "$trainer")
config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")

slots=$(awk '!/^[[:space:]]*(#|$)/ {
  n = 1
  for (i = 2; i <= NF; i++) if ($i ~ /^(slots|max_slots)=/) { split($i, kv, "="); n = kv[2]; break }
  total += n
} END { print total + 0 }' "$hostfile")
np=${ASR_NP:-$slots}
((np >= 1)) || die "hostfile $hostfile lists no hosts"

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
cmd=(mpirun --hostfile "$hostfile" -np "$np" --map-by slot --bind-to "${ASR_BIND:-core}"
     --report-bindings -x OMP_NUM_THREADS)
for v in $(compgen -e | grep -E '^(NCCL_|GLOO_|ASR_|MASTER_ADDR$|MASTER_PORT$|CUDA_VISIBLE_DEVICES$)'); do
  cmd+=(-x "$v")
done
[[ $(id -u) -ne 0 ]] || cmd+=(--allow-run-as-root)
# shellcheck disable=SC2206  # a list of options
cmd+=(${ASR_MPIRUN_ARGS:-})
cmd+=("$trainer" --config "$config" "$@")
echo "mpirun.sh: ${cmd[*]}" >&2

# In the background so the traps run while the ranks do (see train.sbatch),
# and in a process group of its own (set -m), so that ^C in a terminal, which
# signals the whole foreground group, reaches this script only. Open MPI
# answers SIGINT or SIGTERM by sending the ranks SIGTERM, then SIGKILL one
# second later (odls_base_sigkill_timeout), and exits 1 whatever they did;
# SIGUSR1 it forwards as is, so the ranks checkpoint and exit 75.
set -m
"${cmd[@]}" &
pid=$!
set +m
trap 'kill -USR1 "$pid" 2>/dev/null' USR1 TERM INT
status=0
while :; do
  wait "$pid"
  status=$?
  kill -0 "$pid" 2>/dev/null || break
done
exit "$status"
