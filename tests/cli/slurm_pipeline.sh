#!/usr/bin/env bash
# launch/slurm/pipeline.sh on a real Slurm: preprocessing, training and
# decoding run as three jobs in that order and leave the decoded JSONL.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/../slurm/lib.sh"
slurm_up
make_corpus "$tmp/corpus" "${ASR_TEST_UTTERANCES:-24}"
steps=${ASR_TEST_STEPS:-8}

cd "$work"
ids=$(ASR_PREPROCESS_ARGS="$prep_args" ASR_TRAIN_SBATCH="-N1 -n2 --gpus-per-task=0" ASR_PREPROCESS_SBATCH="-N1 -n1" ASR_DECODE_SBATCH="-N1 -n1" \
  "$src/launch/slurm/pipeline.sh" "$tmp/corpus/raw" "$work/pipe" "$config" \
  --max-steps "$steps" --checkpoint-every 4) || fail "pipeline.sh failed: $ids"
preprocess="" train="" decode=""
eval "$(grep -E '^(preprocess|train|decode)=[0-9]+$' <<<"$ids")"
[[ -n "$preprocess" && -n "$train" && -n "$decode" ]] || fail "pipeline.sh printed no job ids: $ids"

state=$(wait_done "$decode" 600)
[[ "$state" != TIMEDOUT* ]] || fail "the decoding job did not finish within 600 s ($state)"
for j in "$preprocess" "$train" "$decode"; do
  s=$(job_field "$j" JobState)
  [[ "$s" == COMPLETED ]] || fail "job $j ($(job_field "$j" JobName)) ended $s"
done
# Times are ISO 8601, so string order is time order.
[[ ! "$(job_field "$train" StartTime)" < "$(job_field "$preprocess" EndTime)" ]] ||
  fail "training started before preprocessing ended"
[[ ! "$(job_field "$decode" StartTime)" < "$(job_field "$train" EndTime)" ]] ||
  fail "decoding started before training ended"
[[ "$(last_step "$work/pipe/run")" == "$steps" ]] || fail "training stopped at step $(last_step "$work/pipe/run")"

jsonl=$work/pipe/decoded/test.jsonl
[[ -s "$jsonl" ]] || fail "$jsonl is missing or empty"
/usr/bin/python3 - "$jsonl" <<'PY' || fail "$jsonl is not one JSON object per line"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines
for l in lines:
    assert isinstance(json.loads(l), dict)
print(f"{len(lines)} decoded utterances")
PY
note "PASS: jobs $preprocess -> $train -> $decode completed in order; $(wc -l <"$jsonl") lines in $jsonl"
