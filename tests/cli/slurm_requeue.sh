#!/usr/bin/env bash
# Preemption on a real Slurm: a job sent USR1 mid-run (scancel --batch) has its
# ranks checkpoint and exit 75, requeues itself, resumes from the checkpoint
# and ends at the same final step as an unsignalled job (Restarts=1).
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/../slurm/lib.sh"
slurm_up
make_data "$tmp/data" "${ASR_TEST_UTTERANCES:-24}"
steps=${ASR_TEST_STEPS:-30}
every=${ASR_TEST_CHECKPOINT_EVERY:-10}

cd "$work"
submit() {
  sbatch --parsable -N1 -n2 --gpus-per-task=0 -J "$1" "$src/launch/slurm/train.sbatch" "$config" \
    --data "$tmp/data/prep" --max-steps "$steps" --checkpoint-every "$every" --set train.log_every=1
}
ref=$(submit reference) || fail "submitting the reference job failed"
job=$(submit preempted) || fail "submitting the preempted job failed"
run=$work/runs/preempted-$job

# Signal once training is under way but well before its end.
seen=0
for _ in $(seq 1200); do
  seen=$(last_step "$run")
  ((seen >= 1)) && break
  [[ "$(job_field "$job" JobState)" == RUNNING || "$(job_field "$job" JobState)" == PENDING ]] ||
    fail "job $job ended ($(job_field "$job" JobState)) before its first step"
  sleep 0.2
done
((seen >= 1)) || fail "job $job logged no step within 240 s"
((seen < steps)) || fail "job $job reached step $seen of $steps before it could be signalled: raise ASR_TEST_STEPS"
scancel --batch --signal=USR1 "$job" || fail "scancel --batch --signal=USR1 $job failed"
note "signalled job $job at step $seen"

# Slurm holds a requeued job ~2 minutes (BeginTime); once the old instance is
# gone from the node, let it start now to keep the test short.
for _ in $(seq 240); do
  [[ "$(job_field "$job" Restarts)" == 1 && "$(job_field "$job" JobState)" == PENDING ]] && break
  sleep 0.5
done
[[ "$(job_field "$job" Restarts)" == 1 ]] ||
  fail "job $job was not requeued (state $(job_field "$job" JobState), Restarts=$(job_field "$job" Restarts))"
for _ in $(seq 120); do
  ps -eo args | grep -qF "slurmstepd: [$job." || break
  sleep 0.5
done
sleep 1
scontrol update JobId="$job" StartTime=now || true

state=$(wait_done "$job" 600)
[[ "$state" == COMPLETED ]] || fail "requeued job $job ended $state"
ref_state=$(wait_done "$ref" 600)
[[ "$ref_state" == COMPLETED ]] || fail "reference job $ref ended $ref_state"

restarts=$(job_field "$job" Restarts)
[[ "$restarts" == 1 ]] || fail "scontrol shows Restarts=$restarts for job $job, expected 1"
log=$work/slurm-preempted-$job.out
grep -q "exited 75" "$log" || fail "the job log shows no exit 75 from the ranks"
resumed_at=$(sed -n 's/.*restart 1:.*newest checkpoint step \([0-9]*\),.*/\1/p' "$log" | head -n 1)
[[ -n "$resumed_at" ]] || fail "the restarted job found no checkpoint in $run"
resumed_at=$((10#$resumed_at))  # the step comes zero-padded from the file name
((resumed_at >= 1 && resumed_at < steps)) || fail "resumed from step $resumed_at, not mid-run"

final=$(last_step "$run")
ref_final=$(last_step "$work/runs/reference-$ref")
[[ "$final" == "$ref_final" && "$final" == "$steps" ]] ||
  fail "preempted job ended at step $final, unsignalled job at $ref_final, expected $steps"
# metrics.jsonl is appended across restarts: a job that started over would log step 1 twice.
[[ "$(count_step "$run" 1)" == 1 ]] || fail "step 1 was trained $(count_step "$run" 1) times: the job did not resume"
# Resume is exact: every step after the checkpoint has the unsignalled job's loss, bit for bit.
python3 - "$run/metrics.jsonl" "$work/runs/reference-$ref/metrics.jsonl" "$resumed_at" <<'PY' || fail "losses after the resume differ from the unsignalled job's"
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path)) if "loss" in r}
a, b, start = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
after = [s for s in b if s > start]
assert after and all(a.get(s) == b[s] for s in after), [(s, a.get(s), b[s]) for s in after if a.get(s) != b[s]][:3]
PY
note "PASS: job $job checkpointed at step $resumed_at, requeued (Restarts=1), resumed and ended at step $final like job $ref"
