#!/usr/bin/env bash
# Weak scaling of asr_ddp on CPU, one core per rank: the same per-rank batch
# on 1 and 2 ranks (so 2 ranks process twice the audio per step). Prints
# audio-s/s per rank, the scaling efficiency (target >= 90%), and the exposed
# all-reduce time (waiting after backward) as a share of step time (target
# <= 10%), from each rank's straggler report in run_dir/logs/rank-N.log.
#
# Usage: bench/weak_scaling.sh [--build DIR] [--config FILE] [--steps N] [--per-rank-seconds S]
# Needs a preprocessed dataset: --data DIR, or one is synthesized (200 clips).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build config=configs/demo.toml steps=40 per_rank=48 data=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --per-rank-seconds) per_rank=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z $data ]]; then
  scripts/make-synthetic-ljspeech --output "$work/corpus" --count 200 --jobs 2 >/dev/null
  "$build/asr_preprocess" --input "$work/corpus" --output "$work/data" --val 10 --test 10 --tokenizer char >/dev/null 2>&1
  data=$work/data
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
run() {  # run NP: prints "audio_sec_per_s ready_ms wait_ms" averaged over ranks and logged windows
  local np=$1 dir=$work/run$1
  mpirun -np "$np" --oversubscribe --bind-to core -x OMP_NUM_THREADS=1 "$build/asr_ddp" --config "$config" \
    --data "$data" --run-dir "$dir" --max-steps "$steps" --set train.batch_seconds=$((per_rank * np)) \
    --set train.log_every=10 --set eval.every=0 --set checkpoint.every=0 --set log.progress=plain \
    --set log.tensorboard=false --set eval.max_utterances=4 --set log.level=info >/dev/null 2>&1
  python3 - "$dir" "$np" <<'PY'
import glob, json, re, sys
d, np = sys.argv[1], int(sys.argv[2])
recs = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"audio_sec_per_s"' in l]
rate = sum(r["audio_sec_per_s"] for r in recs[1:]) / max(1, len(recs) - 1)  # skip the warm-up window
ready, wait = [], []
for f in glob.glob(d + "/logs/rank-*.log"):
    for m in re.finditer(r"grads ready ([0-9.]+) ms/step, all-reduce wait ([0-9.]+) ms/step", open(f).read()):
        ready.append(float(m.group(1))); wait.append(float(m.group(2)))
print(rate, sum(ready) / max(1, len(ready)), sum(wait) / max(1, len(wait)))
PY
}
read r1 ready1 wait1 < <(run 1)
read r2 ready2 wait2 < <(run 2)
python3 - "$r1" "$r2" "$ready2" "$wait2" <<'PY'
import sys
r1, r2, ready2, wait2 = map(float, sys.argv[1:])
print(f"1 rank : {r1:8.1f} audio-s/s")
print(f"2 ranks: {r2:8.1f} audio-s/s total, {r2/2:.1f} per rank")
print(f"weak-scaling efficiency: {100 * r2 / (2 * r1):.1f}% (target >= 90%)")
share = wait2 / (ready2 + wait2) if ready2 + wait2 > 0 else 0
print(f"exposed all-reduce wait on 2 ranks: {wait2:.1f} ms of {ready2 + wait2:.1f} ms (backward + wait) = {100 * share:.1f}% (target <= 10%)")
PY
