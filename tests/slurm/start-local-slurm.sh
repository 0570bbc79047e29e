#!/usr/bin/env bash
# Starts a private single-node Slurm cluster on this host, for tests.
#
# Usage: start-local-slurm.sh STATE_DIR
#   Installs slurmctld, slurmd, slurm-client and munge when missing (Debian),
#   writes STATE_DIR/slurm.conf, starts munged (shared, as the munge user) and
#   this cluster's slurmctld and slurmd (as root), waits until the node is
#   idle and prints the environment to use it on stdout:
#       eval "$(tests/slurm/start-local-slurm.sh "$dir")"
#   Stop it with tests/slurm/stop-local-slurm.sh STATE_DIR.
#
# Exit status: 0 running; 77 Slurm cannot run here (not root, packages not
# installable, daemons refuse to start), with the reason on stderr. Setting
# ASR_REQUIRE_SLURM=1 turns 77 into 1 so CI cannot silently skip.
#
# Every cluster gets its own ports, state and spool directories, so several
# may run side by side (ctest -j). No systemd and no cgroups are assumed:
# processes are tracked through /proc and daemons are started directly.
set -euo pipefail

say() { echo "start-local-slurm: $*" >&2; }
cannot_run() {
  say "Slurm cannot run here: $*"
  if [[ "${ASR_REQUIRE_SLURM:-0}" == 1 ]]; then exit 1; fi
  exit 77
}

[[ $# -eq 1 ]] || { say "usage: $0 STATE_DIR"; exit 2; }
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

[[ $(id -u) -eq 0 ]] || cannot_run "the daemons must be started as root (run the tests as root)"

# --- packages ---------------------------------------------------------------
packages=(slurmctld slurmd slurm-client munge)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  command -v apt-get >/dev/null || cannot_run "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d keeps the packages' init scripts from starting system daemons.
  if ! { apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$dir/apt.log" 2>&1 ||
         { apt-get update -qq >>"$dir/apt.log" 2>&1 &&
           apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$dir/apt.log" 2>&1; }; }; then
    tail -n 5 "$dir/apt.log" >&2 || true
    cannot_run "could not install ${missing[*]} (see $dir/apt.log)"
  fi
fi
for tool in slurmctld slurmd sinfo sbatch scontrol munged munge unmunge; do
  command -v "$tool" >/dev/null || cannot_run "$tool is not on PATH after installing ${packages[*]}"
done

# --- munge ------------------------------------------------------------------
# One munged per host serves every cluster; it holds no per-cluster state, so
# it is left running for the next test (stop-local-slurm.sh does not stop it).
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then
      mungekey --create --keyfile=/etc/munge/munge.key >&2
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged >"$dir/munged.out" 2>&1 ||
    cannot_run "munged did not start: $(tail -n 3 "$dir/munged.out" /var/log/munge/munged.log 2>/dev/null | tr '\n' ' ')"
  for _ in $(seq 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
    sleep 0.1
  done
  munge -n | unmunge >/dev/null 2>&1 || cannot_run "munged is running but credentials do not round-trip"
fi

# --- configuration ----------------------------------------------------------
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 30000))
    if port_is_free "$p" && port_is_free "$((p + 1))"; then echo "$p"; return; fi
  done
  cannot_run "no free TCP port pair found"
}
# A port found free can be taken before slurmctld binds it (another test
# cluster, a trainer's rendezvous): then the controller dies at once, and the
# start is retried on other ports.
for attempt in 1 2 3; do
ctld_port=$(pick_port)
slurmd_port=$((ctld_port + 1))

node_line=$(slurmd -C 2>/dev/null | head -n 1)
[[ "$node_line" == NodeName=* ]] || cannot_run "slurmd -C printed no node line ($node_line)"
node_name=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
# Tests run two 2-rank jobs side by side; with no CPU binding, declaring more
# CPUs than the host has only oversubscribes it (config_overrides allows it).
cpus=$(sed -E 's/.* CPUs=([0-9]+).*/\1/' <<<"$node_line")
want_cpus=${ASR_SLURM_CPUS:-$((cpus < 4 ? 4 : cpus))}
if [[ "$want_cpus" != "$cpus" ]]; then
  mem=$(sed -E 's/.* RealMemory=([0-9]+).*/\1/' <<<"$node_line")
  node_line="NodeName=$node_name CPUs=$want_cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$want_cpus ThreadsPerCore=1 RealMemory=$mem"
fi
host=$(hostname -s)
# The controller must be reachable under the name it thinks it has.
ctld_addr=127.0.0.1

mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/pmix"
mpi_default=none
[[ -e /usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so || -n "$(ls /usr/lib/*/slurm*/mpi_pmix.so 2>/dev/null)" ]] &&
  mpi_default=pmix
cluster="asrtest$ctld_port"

# pmix keeps per-step directories named by job id under /tmp by default; test
# clusters all count job ids alike, so each gets its own base directory and
# its own job id range (train.sbatch also derives MASTER_PORT from the id).
cat >"$dir/mpi.conf" <<EOF
PMIxCliTmpDirBase=$dir/pmix
EOF
first_job_id=$(((ctld_port - 20000) * 100 + 1000))

cat >"$dir/slurm.conf" <<EOF
# Written by tests/slurm/start-local-slurm.sh for a throwaway test cluster.
ClusterName=$cluster
SlurmctldHost=$host($ctld_addr)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Containers have no usable cgroups: track job processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=$mpi_default
ReturnToService=2
JobRequeue=1
# Keep finished jobs visible to scontrol long enough for tests to inspect them.
MinJobAge=600
FirstJobId=$first_job_id
KillWait=30
InactiveLimit=0
SlurmdParameters=config_overrides
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
EOF

export SLURM_CONF="$dir/slurm.conf"

# --- daemons ----------------------------------------------------------------
slurmctld -c >"$dir/log/slurmctld.out" 2>&1 ||
  cannot_run "slurmctld did not start: $(tail -n 5 "$dir/log/slurmctld.out" "$dir/log/slurmctld.log" 2>/dev/null | tr '\n' ' ')"
slurmd -N "$node_name" >"$dir/log/slurmd.out" 2>&1 ||
  cannot_run "slurmd did not start: $(tail -n 5 "$dir/log/slurmd.out" "$dir/log/slurmd.log" 2>/dev/null | tr '\n' ' ')"

state=""
for _ in $(seq 120); do
  # A dead controller makes every sinfo wait out its timeout: notice it first.
  if [[ -f "$dir/slurmctld.pid" ]] && ! kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    state="slurmctld exited"
    break
  fi
  state=$(sinfo -h -n "$node_name" -o '%t' 2>/dev/null | head -n 1 || true)
  [[ "$state" == idle ]] && break
  sleep 0.5
done
[[ "$state" == idle ]] && break
tail -n 5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 2>/dev/null || true
"$(dirname "$0")/stop-local-slurm.sh" "$dir" >&2 || true
rm -f "$dir/slurmctld.pid" "$dir/slurmd.pid"
say "attempt $attempt: cluster on port $ctld_port did not come up (${state:-no node state}); trying other ports"
done
[[ "$state" == idle ]] || cannot_run "node $node_name did not become idle after 3 attempts (state '${state:-none}')"
say "cluster $cluster up: node $node_name idle, MpiDefault=$mpi_default, conf $SLURM_CONF"
echo "export SLURM_CONF='$SLURM_CONF'"
