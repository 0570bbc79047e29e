#!/usr/bin/env bash
# launch/slurm/train.sbatch on a real single-node Slurm: two CPU ranks train
# configs/tiny.toml to the requested last step and the job completes.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/../slurm/lib.sh"
slurm_up
make_data "$tmp/data" "${ASR_TEST_UTTERANCES:-24}"
steps=${ASR_TEST_STEPS:-12}

cd "$work"
out=$(sbatch --wait -N1 -n2 --gpus-per-task=0 -J train "$src/launch/slurm/train.sbatch" "$config" \
  --data "$tmp/data/prep" --max-steps "$steps" --checkpoint-every 4) || fail "sbatch --wait failed: $out"
job=$(awk '/Submitted batch job/ {print $4}' <<<"$out")
[[ -n "$job" ]] || fail "no job id in: $out"

state=$(job_field "$job" JobState)
[[ "$state" == COMPLETED ]] || fail "job $job ended $state"
[[ "$(job_field "$job" NumTasks)" == 2 ]] || fail "job $job ran $(job_field "$job" NumTasks) tasks, not 2"
run=$work/runs/train-$job
[[ -d "$run" ]] || fail "default run directory $run (from job name and id) was not created"
last=$(last_step "$run")
[[ "$last" == "$steps" ]] || fail "metrics.jsonl ends at step $last, expected $steps"
ls "$run"/checkpoints/step-*.ckpt >/dev/null 2>&1 || fail "no checkpoint in $run/checkpoints"
grep -q "2 ranks" "$work/slurm-train-$job.out" || fail "the job log does not report 2 ranks"
note "PASS: job $job trained 2 ranks to step $last"
