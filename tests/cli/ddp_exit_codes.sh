#!/usr/bin/env bash
# asr_ddp's exit statuses tell an operator what happened (docs/operations.md):
# 2 usage or config, 3 unusable data, 4 distributed failure, 5 replicas
# diverged, 75 preempted (tests/cli/ddp_faults.sh). Ranks are started
# torchrun-style (RANK/WORLD_SIZE/MASTER_*) so each one's own status is seen.
source "$(dirname "$0")/ddp_common.inc"


# expect STATUS LOG COMMAND...: runs COMMAND, checks its exit status.
expect() {
  local want=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1
  local rc=$?
  [[ $rc == "$want" ]] || { cat "$log"; fail "expected exit status $want, got $rc: $*"; }
}

# 2: a misspelled key, and a missing config file.
expect 2 "$WORK/usage.log" "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/u" --set optim.lrr=1
grep -q "did you mean optim.lr" "$WORK/usage.log" || fail "no suggestion for the misspelled key"
expect 2 "$WORK/usage2.log" "$BIN/asr_ddp" --config "$WORK/none.toml"
# Bad flag values: exit 2, the flag named as typed, never "unexpected failure".
for flag in "--max-steps -1" "--seed -1" "--checkpoint-every -3" "--max-steps abc" "--set train.batch_seconds=inf" \
  "--set optm.lr=1"; do
  # shellcheck disable=SC2086  # the flag and its value are two words
  expect 2 "$WORK/flag.log" "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/u" $flag
  grep -q -- "${flag%% *}" "$WORK/flag.log" || { cat "$WORK/flag.log"; fail "'$flag' is not named in its error"; }
  grep -q "unexpected failure" "$WORK/flag.log" && fail "'$flag' gave an unexpected failure"
done

# 3: a dataset whose shard is gone.
cp -r "$DATA" "$WORK/broken"
rm "$(ls "$WORK"/broken/train-*.h5 | head -n 1)"
BROKEN=("${TINY[@]}")
BROKEN[3]="$WORK/broken"  # TINY is --config FILE --data DIR ...
expect 3 "$WORK/data.log" "$BIN/asr_ddp" "${BROKEN[@]}" --run-dir "$WORK/d"
grep -q "is missing" "$WORK/data.log" || { cat "$WORK/data.log"; fail "the missing shard is not named"; }

# 4: rank 1 is killed; rank 0 notices within the collective timeout.
launch 2 "$WORK/kill" --max-steps 400 --set dist.timeout_seconds=10
for _ in $(seq 600); do grep -q '"step":2,' "$WORK/kill/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -9 "${PIDS[1]}"
wait "${PIDS[0]}"
rc=$?
[[ $rc == 4 ]] || { cat "$WORK/kill.0.log"; fail "the surviving rank exited $rc, expected 4"; }
grep -q "distributed failure" "$WORK/kill.0.log" || fail "no 'distributed failure' message"

# 5: rank 1's parameters drift after step 2; the checkpoint at step 2 finds it.
export ASR_FAULT_DIVERGE=2:1
launch 2 "$WORK/div" --max-steps 6 --checkpoint-every 2
unset ASR_FAULT_DIVERGE
for r in 0 1; do
  wait "${PIDS[$r]}"
  rc=$?
  [[ $rc == 5 ]] || { cat "$WORK/div.$r.log"; fail "rank $r exited $rc after the replicas diverged, expected 5"; }
done
grep -q "parameters have diverged across ranks: rank 1" "$WORK/div.0.log" || { cat "$WORK/div.0.log"; fail "no message naming rank 1"; }
echo "PASS"
