#!/usr/bin/env bash
# Exposed all-reduce time with and without overlapping buckets with backward
# (GradientSynchronizer), on 2 CPU ranks with Gloo. Prints per-run totals of
# "ready" (begin_step -> all gradients ready) and "wait" (blocked in finish_step).
# Usage: bench/allreduce_overlap.sh [build-dir] [hidden] [steps]
set -euo pipefail
build=${1:-build}
hidden=${2:-50000}
steps=${3:-20}
tool="$build/tests/asr_distributed_tool"
run=(mpirun --allow-run-as-root --oversubscribe -x OMP_NUM_THREADS=1 -np 2 "$tool" train
     --steps="$steps" --global-batch=64 --hidden="$hidden" --bucket-mb=0.5 --first-bucket-mb=0.1)
for mode in overlap no-overlap; do
  extra=()
  [[ $mode == no-overlap ]] && extra=(--no-overlap)
  start=$(date +%s.%N)
  line=$("${run[@]}" "${extra[@]}" 2>/dev/null | grep '^rank 0')
  end=$(date +%s.%N)
  echo "$mode: $(echo "$end - $start" | bc) s wall; $line"
done
