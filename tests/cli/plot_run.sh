#!/usr/bin/env bash
# scripts/plot-run on a metrics.jsonl shaped like a real run's, with a torn
# last line as a run that is still going leaves it: every plot is a PNG, and
# a directory without metrics is a clear error.
set -euo pipefail
src=${ASR_SOURCE_DIR:?}
/usr/bin/python3 -c "import matplotlib" 2>/dev/null || { echo "SKIP: python3-matplotlib not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/run"
python3 - "$work/run/metrics.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    t = 1.8e9
    for step in range(1, 41):
        t += 2.0
        f.write(json.dumps({"step": step, "loss": 5 / step, "ctc_loss": 4 / step, "audio_sec_per_s": 30 + step,
                            "time": t}) + "\n")
        f.write(json.dumps({"kind": "stragglers", "step": step, "slowest": 2, "slower_than_median": 0.3,
                            "data_wait_ms": [1, 1, 1], "forward_ms": [40, 41, 90], "backward_ms": [80, 82, 84],
                            "allreduce_wait_ms": [50, 49, 2], "optimizer_ms": [5, 5, 5], "time": t}) + "\n")
        if step % 10 == 0:
            f.write(json.dumps({"step": step, "split": "val", "cer": 1 / step, "wer": 2 / step, "time": t}) + "\n")
    f.write('{"step": 41, "loss": 0.1')  # torn: the run is still writing
PY
"$src/scripts/plot-run" "$work/run" >"$work/out.txt" 2>"$work/err.txt" || { cat "$work/err.txt"; fail "plot-run failed"; }
for name in loss cer throughput step_time; do
  png=$work/run/plots/$name.png
  grep -qx "$png" "$work/out.txt" || fail "$png not reported"
  [[ $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$png is not a PNG"
  [[ $(stat -c %s "$png") -gt 10000 ]] || fail "$png is suspiciously small"
done
"$src/scripts/plot-run" "$work/run" "$work/elsewhere" >/dev/null 2>&1 || fail "OUT_DIR form failed"
[[ -f $work/elsewhere/loss.png ]] || fail "OUT_DIR not used"
set +e
"$src/scripts/plot-run" "$work/nothing" 2>"$work/err2.txt"
rc=$?
set -e
[[ $rc == 2 ]] || fail "a directory without metrics.jsonl exited $rc, expected 2"
grep -q "metrics.jsonl not found" "$work/err2.txt" || fail "no clear message for a missing metrics.jsonl"
echo "ok: 4 PNGs from a live run's metrics, OUT_DIR honoured, missing metrics named"
