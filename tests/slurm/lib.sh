# shellcheck shell=bash
# Shared by tests/cli/slurm_*.sh: a private Slurm cluster per test, the real
# binaries, a small preprocessed corpus and polling helpers.
# Source it; it sets: src, bin_dir, tmp, work, config; and exports
# SLURM_CONF and ASR_BIN_DIR (sbatch passes the environment to the jobs).
#
# Binaries come from ASR_TEST_BIN_DIR, else ASR_BINARY_DIR (set by ctest),
# else build/. ASR_KEEP_TEST_DIR=1 keeps the temp dir for inspection.
set -euo pipefail

src=${ASR_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
bin_dir=${ASR_TEST_BIN_DIR:-${ASR_BINARY_DIR:-$src/build}}
config=${ASR_TEST_CONFIG:-$src/configs/tiny.toml}
test_name=$(basename "$0" .sh)

note() { echo "$test_name: $*" >&2; }
fail() {
  note "FAIL: $*"
  dump_logs
  exit 1
}

for b in asr_ddp asr_preprocess asr_decode; do
  [[ -x "$bin_dir/$b" ]] || { note "FAIL: $bin_dir/$b missing: build the project first"; exit 1; }
done
[[ -f "$config" ]] || { note "FAIL: config $config missing"; exit 1; }
export ASR_BIN_DIR=$bin_dir
# A corpus of a few dozen utterances needs small held-out splits.
prep_args=${ASR_TEST_PREPROCESS_ARGS:---val 4 --test 4}
# Two ranks on two shared cores: one thread each keeps them from thrashing.
export OMP_NUM_THREADS=1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asr-$test_name.XXXXXX")
chmod 755 "$tmp"
work=$tmp/work
mkdir -p "$work"

cleanup() {
  local rc=$?
  bash "$src/tests/slurm/stop-local-slurm.sh" "$tmp/slurm" >/dev/null 2>&1 || true
  if [[ "${ASR_KEEP_TEST_DIR:-0}" == 1 || $rc -ne 0 && $rc -ne 77 ]]; then
    note "kept $tmp"
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

dump_logs() {
  local f
  for f in "$work"/*.out "$work"/logs/*.out; do
    [[ -f "$f" ]] || continue
    echo "----- $f" >&2
    tail -n 40 "$f" >&2
  done
  for f in "$tmp"/slurm/log/slurmctld.log "$tmp"/slurm/log/slurmd.log; do
    [[ -f "$f" ]] || continue
    echo "----- $f (errors)" >&2
    grep -iE 'error|fatal' "$f" | tail -n 15 >&2 || true
  done
}

slurm_up() {
  local env rc=0
  env=$(bash "$src/tests/slurm/start-local-slurm.sh" "$tmp/slurm") || rc=$?
  if [[ $rc -eq 77 ]]; then
    note "SKIP: a local Slurm cluster cannot be started here (reason above)"
    exit 77
  fi
  [[ $rc -eq 0 ]] || fail "start-local-slurm.sh exited $rc"
  eval "$env"
}

# make_corpus DIR COUNT: synthetic LJSpeech-style corpus in DIR/raw.
make_corpus() {
  local dir=$1 count=$2
  mkdir -p "$dir"
  "${ASR_TEST_MAKE_CORPUS:-$src/scripts/make-synthetic-ljspeech}" --output "$dir/raw" --count "$count" >"$dir.make.log" 2>&1 ||
    { cat "$dir.make.log" >&2; fail "make-synthetic-ljspeech failed"; }
}

# make_data DIR COUNT: make_corpus, then preprocessed into DIR/prep.
make_data() {
  local dir=$1 count=$2
  make_corpus "$dir" "$count"
  # shellcheck disable=SC2086
  "$bin_dir/asr_preprocess" --input "$dir/raw" --output "$dir/prep" $prep_args >"$dir.prep.log" 2>&1 ||
    { cat "$dir.prep.log" >&2; fail "asr_preprocess failed"; }
}

# job_field JOB FIELD: one field of `scontrol show job`, e.g. JobState, Restarts.
job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# wait_done JOB TIMEOUT_S: waits for a final state and prints it.
wait_done() {
  local job=$1 limit=$2 state="" t=0
  while ((t < limit * 2)); do
    state=$(job_field "$job" JobState)
    case $state in
      COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE)
        echo "$state"
        return 0
        ;;
    esac
    sleep 0.5
    t=$((t + 1))
  done
  echo "TIMEDOUT($state)"
}

# last_step RUN_DIR: the largest "step" among the records of metrics.jsonl (0 if none).
last_step() {
  local f=$1/metrics.jsonl
  [[ -f "$f" ]] || { echo 0; return; }
  /usr/bin/python3 - "$f" <<'EOF'
import json, sys
best = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    try:
        rec = json.loads(line)
    except ValueError:
        continue  # a line being written right now
    if isinstance(rec, dict) and isinstance(rec.get("step"), int):
        best = max(best, rec["step"])
print(best)
EOF
}

# count_step RUN_DIR N: how many training records carry step N.
count_step() {
  /usr/bin/python3 - "$1/metrics.jsonl" "$2" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if isinstance(rec, dict) and "loss" in rec and rec.get("step") == int(sys.argv[2]):
        n += 1
print(n)
EOF
}
