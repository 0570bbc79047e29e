#!/usr/bin/env bash
# The straggler report: 3 ranks, rank 2 made slow on purpose
# (ASR_FAULT_SLOW); rank 0 must name it, and metrics.jsonl must carry every
# rank's step-time breakdown.
source "$(dirname "$0")/ddp_common.inc"

export ASR_FAULT_SLOW=1:2:400
mpirun -np 3 --oversubscribe --bind-to none -x OMP_NUM_THREADS -x ASR_FAULT_SLOW "$BIN/asr_ddp" "${TINY[@]}" \
  --run-dir "$WORK/run" --max-steps 6 >"$WORK/run.log" 2>&1 || { cat "$WORK/run.log"; fail "training failed"; }
grep -q "straggler: rank 2 is [0-9]*% slower than the median of the other ranks for 3 log windows" "$WORK/run.log" ||
  { cat "$WORK/run.log"; fail "rank 0 did not name the straggler"; }
python3 - "$WORK/run/metrics.jsonl" <<'PY' || fail "stragglers records"
import json, sys
recs = [r for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "stragglers"]
assert len(recs) == 6, len(recs)
for r in recs:
    assert r["slowest"] == 2, r
    assert all(len(r[p + "_ms"]) == 3 for p in ("data_wait", "forward", "backward", "allreduce_wait", "optimizer")), r
    assert r["forward_ms"][2] >= 400, r
    assert "time" in r, r
print("ok: rank 2 named; forward ms per rank at the last window:", [round(x) for x in recs[-1]["forward_ms"]])
PY
