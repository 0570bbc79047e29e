#!/usr/bin/env bash
# A dead or hung rank never hangs the job: kill -9 under mpirun and under a
# torchrun-style launch, SIGSTOP (hung without closing sockets), a collective
# timeout, and a model whose shapes differ across ranks.
source "$(dirname "$0")/distributed_common.inc"

# 1. kill -9 of one of three ranks under mpirun: the job ends non-zero in < 60 s.
mkdir -p "$WORK/k"
start=$(date +%s)
"${MPIRUN[@]}" -np 3 "$TOOL" loop --pid-dir="$WORK/k" --timeout=30 > "$WORK/k.log" 2>&1 &
job=$!
wait_for_pids 3 "$WORK/k"
sleep 1
kill -9 "$(cat "$WORK/k/pid.1")"
wait $job; rc=$?
took=$(($(date +%s) - start))
cat "$WORK/k.log" | grep -v '^\s*$' | tail -5
((rc != 0)) || fail "mpirun exited 0 after a rank was killed"
((took < 60)) || fail "mpirun took $took s to end after kill -9"
grep -Eq "rank [0-9]" "$WORK/k.log" || fail "no message naming a rank"
echo "kill -9 under mpirun: job ended with status $rc after ${took}s"

# 2. The same without mpirun (nothing tears the job down for us): survivors
#    must notice the dead peer themselves.
mkdir -p "$WORK/t"
port=$(free_port)
pids=()
for r in 0 1 2; do
  RANK=$r WORLD_SIZE=3 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$TOOL" loop --pid-dir="$WORK/t" --timeout=30 > "$WORK/t.$r.log" 2>&1 &
  pids+=($!)
done
wait_for_pids 3 "$WORK/t"
sleep 1
start=$(date +%s)
kill -9 "${pids[2]}"
for r in 0 1; do
  wait "${pids[$r]}"; rc=$?
  ((rc != 0)) || fail "torchrun-style rank $r exited 0 after its peer died"
  grep -q "CollectiveError: rank $r: collective 'all_reduce'" "$WORK/t.$r.log" || { cat "$WORK/t.$r.log"; fail "rank $r message"; }
done
wait "${pids[2]}" 2>/dev/null
took=$(($(date +%s) - start))
((took < 60)) || fail "survivors took $took s"
echo "kill -9 without mpirun: survivors exited in ${took}s"

# 3. A rank stopped with SIGSTOP keeps its sockets open: only the timeout
#    (3 s here) can tell, and it must.
mkdir -p "$WORK/s"
port=$(free_port)
pids=()
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$TOOL" loop --pid-dir="$WORK/s" --timeout=3 --margin=3 > "$WORK/s.$r.log" 2>&1 &
  pids+=($!)
done
wait_for_pids 2 "$WORK/s"
sleep 1
start=$(date +%s)
kill -STOP "${pids[1]}"
wait "${pids[0]}"; rc=$?
took=$(($(date +%s) - start))
kill -9 "${pids[1]}"; wait "${pids[1]}" 2>/dev/null
((rc != 0)) || fail "rank 0 exited 0 with a hung peer"
grep -q "rank 0: collective 'all_reduce' (gloo, 2 ranks, timeout 3.0 s)" "$WORK/s.0.log" || { cat "$WORK/s.0.log"; fail "hang message"; }
((took <= 12)) || fail "hung peer detected after $took s (timeout 3 s + margin 3 s)"
echo "SIGSTOP: rank 0 gave up after ${took}s"

# 4. Timeout: only rank 0 enters the collective.
start=$(date +%s)
"${MPIRUN[@]}" -np 2 "$TOOL" timeout --timeout=2 > "$WORK/to.log" 2>&1 && fail "timeout run exited 0"
took=$(($(date +%s) - start))
grep -q "CollectiveError: rank 0: collective 'all_reduce' (gloo, 2 ranks, timeout 2.0 s) failed" "$WORK/to.log" ||
  { cat "$WORK/to.log"; fail "timeout message"; }
((took < 30)) || fail "timeout run took $took s"

# 5. Shapes differ on the last rank: every rank refuses, naming it.
"${MPIRUN[@]}" -np 3 "$TOOL" shapes > "$WORK/sh.log" 2>&1 && fail "shape mismatch accepted"
grep -q "rank 2: tensor 2 is \[33, 8\] Float but rank 0 has \[32, 8\] Float" "$WORK/sh.log" ||
  { cat "$WORK/sh.log"; fail "shape mismatch message"; }
grep -q "unexpectedly" "$WORK/sh.log" && fail "a rank accepted mismatched shapes"
echo "PASS"
