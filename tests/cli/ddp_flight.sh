#!/usr/bin/env bash
# The flight recorder and asr_ddp --diagnose with real processes and signals
# (docs/operations.md, "My job hangs"): SIGUSR2 dumps every rank of a live run
# that then finishes; a SIGSTOPped rank among 3 is named by the others' dumps
# with what its last dump shows it doing; a live rank stuck in its forward is
# named with its phase and utterances; a kill -9'ed rank is named as having
# left no dump; SIGSEGV dumps from the signal handler. Ranks are started torchrun-style so each can be signalled.
source "$(dirname "$0")/ddp_common.inc"


# wait_step RUN_DIR STEP: until metrics.jsonl has that step (60 s at most).
wait_step() {
  for _ in $(seq 600); do grep -q "\"step\":$2," "$1/metrics.jsonl" 2>/dev/null && return 0; sleep 0.1; done
  fail "$1 never reached step $2"
}

# wait_dumps RUN_DIR N REASON: until N rank dumps give REASON (30 s at most).
wait_dumps() {
  for _ in $(seq 300); do
    [[ $(grep -l "\"reason\":\"$3" "$1"/flight/rank-*.json 2>/dev/null | wc -l) -ge $2 ]] && return 0
    sleep 0.1
  done
  ls -l "$1/flight" 2>&1
  fail "fewer than $2 dumps with reason '$3' in $1/flight"
}

# 1. SIGUSR2 on a live run: every rank dumps, the run goes on to the end.
# (30 steps: the signal must find the ranks still training, however fast they are.)
launch 2 "$WORK/usr2" --max-steps 30
wait_step "$WORK/usr2" 2
kill -USR2 "${PIDS[@]}"
wait_dumps "$WORK/usr2" 2 SIGUSR2
for r in 0 1; do
  wait "${PIDS[$r]}" || { cat "$WORK/usr2.$r.log"; fail "rank $r did not finish after SIGUSR2"; }
done
wait_step "$WORK/usr2" 30
python3 - "$WORK/usr2/flight/rank-00001.json" <<'PY' || fail "rank 1's SIGUSR2 dump is not as documented"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["rank"] == 1 and d["world_size"] == 2, d
ops = {e["op"].split(" ")[0] for e in d["entries"]}
assert {"all_reduce", "all_gather", "broadcast"} <= ops, ops
assert any(e["note"].startswith("gradient bucket") and e["step"] >= 1 and e["utterances"] for e in d["entries"])
PY

# 2. Rank 1 of 3 stopped: it cannot dump then, so the test takes the dumps
# an operator would take first (SIGUSR2 to every rank), then stops it.
launch 3 "$WORK/stop" --max-steps 400 --set dist.timeout_seconds=3
wait_step "$WORK/stop" 2
kill -USR2 "${PIDS[@]}"
wait_dumps "$WORK/stop" 3 SIGUSR2
kill -STOP "${PIDS[1]}"
expect_ranks_exit 4 "$WORK/stop" "with rank 1 stopped" 0 2
"$BIN/asr_ddp" --diagnose "$WORK/stop" >"$WORK/stop.diag" 2>&1 || { cat "$WORK/stop.diag"; fail "--diagnose failed"; }
cat "$WORK/stop.diag"
phase=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["context"]["phase"])' "$WORK/stop/flight/rank-00001.json")
# It never entered the collective the others gave up in, or its last dump
# shows it already waiting in it: either way rank 1, and its phase.
[[ $phase == data ]] && phase="data loading"
head -n 1 "$WORK/stop.diag" | grep -Eq "^rank 1 (never entered|stopped answering in) .*#[0-9]+.* in $phase for" ||
  fail "the verdict does not name rank 1 and its phase ($phase)"
for r in 0 2; do
  grep -q "^  rank $r .*first pending .* failed after" "$WORK/stop.diag" || fail "rank $r's line has no failed collective"
done
kill -9 "${PIDS[1]}"

# 3. Rank 1 of 2 alive but stuck (a forward that takes 60 s from step 3):
# rank 0 times out and dumps; SIGUSR2 then dumps rank 1 where it is stuck.
export ASR_FAULT_SLOW=3:1:60000
launch 2 "$WORK/slow" --max-steps 400 --set dist.timeout_seconds=3
unset ASR_FAULT_SLOW
wait "${PIDS[0]}"
rc=$?
[[ $rc == 4 ]] || { cat "$WORK/slow.0.log"; fail "rank 0 exited $rc with rank 1 stuck, expected 4"; }
kill -USR2 "${PIDS[1]}"
wait_dumps "$WORK/slow" 1 SIGUSR2
"$BIN/asr_ddp" --diagnose "$WORK/slow" >"$WORK/slow.diag" 2>&1 || { cat "$WORK/slow.diag"; fail "--diagnose failed"; }
kill -9 "${PIDS[1]}"
cat "$WORK/slow.diag"
head -n 1 "$WORK/slow.diag" | grep -Eq "^rank 1 never entered all_reduce #[0-9]+ \(gradient bucket 0, step 3\): it has been in forward for [0-9]+ s \(step 3, micro-batch 0\), on SYN" ||
  fail "the verdict does not say rank 1 is stuck in step 3's forward"

# 4. Rank 2 of 3 killed: no dump, and the others say its connections closed.
launch 3 "$WORK/kill" --max-steps 400 --set dist.timeout_seconds=20
wait_step "$WORK/kill" 2
kill -9 "${PIDS[2]}"
expect_ranks_exit 4 "$WORK/kill" "after rank 2 was killed" 0 1
"$BIN/asr_ddp" --diagnose "$WORK/kill" >"$WORK/kill.diag" 2>&1 || { cat "$WORK/kill.diag"; fail "--diagnose failed"; }
cat "$WORK/kill.diag"
head -n 1 "$WORK/kill.diag" | grep -q "^rank 2 never entered .*left no dump.*died" || fail "the verdict does not call rank 2 dead"
grep -q "^  rank 2: no dump" "$WORK/kill.diag" || fail "rank 2's line does not say it left no dump"
# 5. A fatal signal dumps from its handler, then ends the process as usual.
launch 2 "$WORK/segv" --max-steps 400
wait_step "$WORK/segv" 2
kill -SEGV "${PIDS[1]}"
wait "${PIDS[1]}"
rc=$?
[[ $rc == 139 ]] || { cat "$WORK/segv.1.log"; fail "rank 1 exited $rc after SIGSEGV, expected 139"; }
wait "${PIDS[0]}"
grep -q '"reason":"fatal signal SIGSEGV"' "$WORK/segv/flight/rank-00001.json" || fail "no dump from the SIGSEGV handler"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["entries"]' "$WORK/segv/flight/rank-00001.json" ||
  fail "the SIGSEGV dump is not valid JSON with entries"
echo "PASS"
