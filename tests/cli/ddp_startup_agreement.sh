#!/usr/bin/env bash
# Ranks that do not run the same job are refused at start-up, on every rank,
# within seconds, with exit status 2, instead of aborting inside Gloo (SIGABRT,
# "EnforceNotMet") at the first collective whose size differs:
# 1. rank 1 started with another eval.every (mpirun MPMD): the message names
#    the key, both values and both ranks;
# 2. rank 1 started from a different asr_ddp build (a copy with one byte
#    appended): the message names the executable.
source "$(dirname "$0")/ddp_common.inc"

# mpmd NAME ARGS0 -- ARGS1: rank 0 and rank 1 with their own extra arguments.
mpmd() {
  local name=$1 exe1=$2
  shift 2
  local a0=() a1=()
  while [[ $1 != -- ]]; do a0+=("$1"); shift; done
  shift
  a1=("$@")
  local common=(--oversubscribe --bind-to none -x OMP_NUM_THREADS)
  mpirun "${common[@]}" -np 1 "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/$name" --max-steps 4 "${a0[@]}" : \
    "${common[@]}" -np 1 "$exe1" "${TINY[@]}" --run-dir "$WORK/$name" --max-steps 4 "${a1[@]}" >"$WORK/$name.log" 2>&1
}

# refused NAME MESSAGE: the run exited 2, both ranks printed MESSAGE, nothing aborted.
refused() {
  local name=$1 message=$2 rc=$3 took=$4
  [[ $rc == 2 ]] || { cat "$WORK/$name.log"; fail "$name: mpirun exited $rc, expected 2 (usage)"; }
  for r in 0 1; do
    grep -qF "asr_ddp: rank $r: the ranks do not run the same job: $message" "$WORK/$name.log" ||
      { cat "$WORK/$name.log"; fail "$name: rank $r did not name the difference"; }
  done
  grep -Eq "EnforceNotMet|signal 6|SIGABRT" "$WORK/$name.log" && { cat "$WORK/$name.log"; fail "$name: a rank aborted"; }
  ((took < 30)) || fail "$name: the refusal took $took s"
}

start=$(date +%s)
mpmd eval "$BIN/asr_ddp" --set eval.every=2 -- --set eval.every=3 --set log.level=debug
rc=$?
refused eval "rank 1 has eval.every = 3, rank 0 has 2. Start every rank with the same config file and --set flags" \
  $rc $(($(date +%s) - start))
echo "different eval.every refused on both ranks in $(($(date +%s) - start)) s (log.level may differ)"

cp "$BIN/asr_ddp" "$WORK/asr_ddp.other" && printf 'x' >>"$WORK/asr_ddp.other"
start=$(date +%s)
mpmd build "$WORK/asr_ddp.other" --
rc=$?
refused build "the asr_ddp executable differs from rank 0's" $rc $(($(date +%s) - start))
echo "a different build refused on both ranks in $(($(date +%s) - start)) s"
echo "PASS"
