#!/usr/bin/env bash
# launch/slurm/sweep.sbatch on a real Slurm: a two-task array trains once per
# line of the sweep file, each task with its own overrides and run directory.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/../slurm/lib.sh"
slurm_up
make_data "$tmp/data" "${ASR_TEST_UTTERANCES:-24}"
steps=${ASR_TEST_STEPS:-6}

cd "$work"
cat >sweep.txt <<'SWEEP'
# learning rates to compare
optim.lr=0.001

optim.lr=0.0005
SWEEP
out=$(sbatch --wait --array=0-1 -N1 -n2 --gpus-per-task=0 -J sweep "$src/launch/slurm/sweep.sbatch" \
  sweep.txt "$config" --data "$tmp/data/prep" --max-steps "$steps" --checkpoint-every 3) ||
  fail "sbatch --wait failed: $out"
array=$(awk '/Submitted batch job/ {print $4}' <<<"$out")
[[ -n "$array" ]] || fail "no job id in: $out"

for task in 0 1; do
  lr=$([[ $task == 0 ]] && echo 0.001 || echo 0.0005)
  state=$(job_field "${array}_$task" JobState)
  [[ "$state" == COMPLETED ]] || fail "array task ${array}_$task ended $state"
  run=$work/runs/sweep-${array}_$task
  [[ "$(last_step "$run")" == "$steps" ]] || fail "task $task stopped at step $(last_step "$run") in $run"
  log=$work/slurm-sweep-${array}_$task.out
  grep -q -- "--set optim.lr=$lr" "$log" || fail "task $task did not run with optim.lr=$lr (see $log)"
done
note "PASS: array $array ran both tasks to step $steps in their own run directories"
