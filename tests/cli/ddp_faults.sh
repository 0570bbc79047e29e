#!/usr/bin/env bash
# Agreement under faults: a NaN on one rank makes every rank skip that step;
# SIGUSR1 on one rank checkpoints everyone and exits 75, and --resume auto
# completes; kill -9 of a rank ends the whole job within 60 s, and the run
# resumes from its last checkpoint.
source "$(dirname "$0")/ddp_common.inc"

# 1. NaN injected into rank 1's loss at step 3.
ASR_FAULT_NAN=3:1 ddp 2 "$WORK/nan" --max-steps 6 >"$WORK/nan.log" 2>&1 || { cat "$WORK/nan.log"; fail "NaN run failed"; }
grep -q "step 3: non-finite loss or gradient on some rank; every rank skips it" "$WORK/nan.log" ||
  { cat "$WORK/nan.log"; fail "the NaN step was not skipped"; }
[[ $(field "$WORK/nan" skipped_steps) == 1 ]] || fail "skipped_steps is not 1"
[[ $(field "$WORK/nan" step) == 6 ]] || fail "training did not continue after the skipped step"

# 2. SIGUSR1 to rank 1 mid-run: checkpoint, exit 75, then resume to the end.
ddp 2 "$WORK/sig" --max-steps 400 --set checkpoint.every=0 >"$WORK/sig.log" 2>&1 &
job=$!
for _ in $(seq 600); do grep -q '"step":3,' "$WORK/sig/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
rank1=$(pgrep -f "asr_ddp.*$WORK/sig" | sort -n | tail -n 1)
[[ -n $rank1 ]] || fail "could not find a rank to signal"
kill -USR1 "$rank1"
wait $job
rc=$?
[[ $rc == 75 ]] || { cat "$WORK/sig.log"; fail "expected exit status 75 after SIGUSR1, got $rc"; }
grep -q "stop requested (SIGUSR1 on rank" "$WORK/sig.log" || fail "no stop message naming the signal and rank"
stopped=$(field "$WORK/sig" step)
ls "$WORK/sig/checkpoints/"step-*.ckpt >/dev/null 2>&1 || fail "no checkpoint written on SIGUSR1"
ddp 2 "$WORK/sig" --max-steps $((stopped + 3)) --resume auto >"$WORK/sig2.log" 2>&1 || { cat "$WORK/sig2.log"; fail "resume after SIGUSR1 failed"; }
[[ $(field "$WORK/sig" step) == $((stopped + 3)) ]] || fail "resumed run did not reach its last step"

# 3. kill -9 of one rank: mpirun must end in bounded time, non-zero.
ddp 2 "$WORK/kill" --max-steps 400 --checkpoint-every 2 >"$WORK/kill.log" 2>&1 &
job=$!
for _ in $(seq 600); do ls "$WORK/kill/checkpoints/"step-*.ckpt >/dev/null 2>&1 && break; sleep 0.1; done
victim=$(pgrep -f "asr_ddp.*$WORK/kill" | sort -n | tail -n 1)
start=$(date +%s)
kill -9 "$victim"
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
kill -0 $job 2>/dev/null && { kill -9 $job; fail "the job was still running 60 s after kill -9 of a rank"; }
wait $job
rc=$?
elapsed=$(($(date +%s) - start))
[[ $rc != 0 ]] || fail "the job exited 0 after losing a rank"
echo "kill -9 of a rank: job ended with status $rc after ${elapsed} s"
last=$(ls "$WORK/kill/checkpoints/" | grep -o 'step-[0-9]*' | sort | tail -n 1 | grep -o '[0-9]*$')
ddp 2 "$WORK/kill" --max-steps $((10#$last + 2)) --resume auto >"$WORK/kill2.log" 2>&1 || { cat "$WORK/kill2.log"; fail "resume after kill -9 failed"; }
echo "PASS"
