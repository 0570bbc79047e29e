#!/usr/bin/env bash
# What asr_ddp does with a run directory a user got into a bad state:
# a second run while one is going, a dead run's lock, corrupt checkpoints
# under --resume auto, a torn metrics.jsonl, an empty validation split,
# --eval-only with nothing to evaluate, a dataset with another tokenizer.
# One process per run (no mpirun): the run directory logic is rank 0's.
source "$(dirname "$0")/ddp_common.inc"

RUN=(--set checkpoint.keep_last=0)
train() { "$BIN/asr_ddp" "${TINY[@]}" "${RUN[@]}" "$@"; }

# expect STATUS LOG ARGS...: asr_ddp ARGS exits with STATUS.
expect() {
  local want=$1 log=$2
  shift 2
  train "$@" >"$log" 2>&1
  local rc=$?
  [[ $rc == "$want" ]] || { cat "$log"; fail "expected exit status $want, got $rc: asr_ddp $*"; }
}

# train_steps RUN_DIR: the steps of its training records, in file order.
train_steps() { python3 -c '
import json, sys
print(" ".join(str(json.loads(l)["step"]) for l in open(sys.argv[1] + "/metrics.jsonl") if "\"loss\"" in l))' "$1"; }

# replace FILE: garbage under FILE's name, in a new inode (a hard link to the
# old one, e.g. best.ckpt, keeps the good bytes).
replace() { printf 'not a checkpoint' >"$1.new" && mv "$1.new" "$1"; }
step_file() { printf '%s/checkpoints/step-%09d.ckpt' "$1" "$2"; }

# 1. A second run in a directory in use is refused and names the holder;
#    after the holder is killed -9, its lock file is taken over and named.
R=$WORK/locked
"$BIN/asr_ddp" "${TINY[@]}" "${RUN[@]}" --run-dir "$R" --max-steps 100000 --checkpoint-every 2 >"$WORK/holder.log" 2>&1 &
holder=$!
for _ in $(seq 600); do [[ -f $(step_file "$R" 2) ]] && break; sleep 0.1; done
[[ -f $R/asr_ddp.lock ]] || { cat "$WORK/holder.log"; fail "no lock file in the run directory"; }
expect 2 "$WORK/second.log" --run-dir "$R" --max-steps 4
grep -q "run directory $R is in use by pid $holder on host" "$WORK/second.log" ||
  { cat "$WORK/second.log"; fail "the refusal does not name the holder"; }
kill -9 "$holder"
wait "$holder" 2>/dev/null
expect 0 "$WORK/takeover.log" --run-dir "$R" --max-steps 4 --resume auto
grep -q "no longer running (pid $holder on host" "$WORK/takeover.log" ||
  { cat "$WORK/takeover.log"; fail "the stale lock is not reported"; }
[[ ! -e $R/asr_ddp.lock ]] || fail "the lock file outlived its run"

# 2. metrics.jsonl: records after the resumed step and a torn last line go.
M=$WORK/metrics
expect 0 "$WORK/m1.log" --run-dir "$M" --max-steps 8 --checkpoint-every 4
rm "$(step_file "$M" 8)"
printf '{"step": 9, "loss": 1.2' >>"$M/metrics.jsonl"
expect 0 "$WORK/m2.log" --run-dir "$M" --max-steps 8 --resume auto
grep -q "resumed from .*step-000000004.ckpt at step 4" "$WORK/m2.log" || { cat "$WORK/m2.log"; fail "did not resume at 4"; }
steps=$(train_steps "$M")
[[ $steps == "1 2 3 4 5 6 7 8" ]] || fail "metrics.jsonl training steps after resume: '$steps'"

# 3. Every step checkpoint unreadable: best.ckpt, said so; nothing readable:
#    an error listing the files, unless --allow-fresh-start.
replace "$(step_file "$M" 4)"
replace "$(step_file "$M" 8)"
expect 0 "$WORK/best.log" --run-dir "$M" --max-steps 10 --resume auto
grep -q "resuming from best.ckpt" "$WORK/best.log" || { cat "$WORK/best.log"; fail "no fallback to best.ckpt"; }
grep -q "at step 8" "$WORK/best.log" || fail "best.ckpt (step 8) was not the one resumed"
for f in "$M"/checkpoints/*.ckpt; do replace "$f"; done
expect 3 "$WORK/none.log" --run-dir "$M" --max-steps 12 --resume auto
for f in best.ckpt step-000000004.ckpt step-000000010.ckpt; do
  grep -q "$f" "$WORK/none.log" || { cat "$WORK/none.log"; fail "the error does not list $f"; }
done
grep -q -- "--allow-fresh-start" "$WORK/none.log" || fail "the error does not name --allow-fresh-start"
expect 0 "$WORK/fresh.log" --run-dir "$M" --max-steps 2 --resume auto --allow-fresh-start
grep -q "starting from step 0" "$WORK/fresh.log" || { cat "$WORK/fresh.log"; fail "no fresh-start note"; }

# 4. --eval-only with nothing to evaluate.
expect 2 "$WORK/eval.log" --run-dir "$WORK/empty-run" --eval-only
grep -q "no checkpoint to evaluate" "$WORK/eval.log" || { cat "$WORK/eval.log"; fail "--eval-only message"; }

# 5. A dataset without validation utterances and with another tokenizer.
"$BIN/asr_preprocess" --input "$WORK/corpus" --output "$WORK/noval" --val 0 --test 4 --vocab-size 40 --shards 1 \
  >"$WORK/noval.log" 2>&1 || { cat "$WORK/noval.log"; fail "preprocessing without a validation split failed"; }
TINY[3]="$WORK/noval"  # TINY is --config FILE --data DIR ...
expect 0 "$WORK/noeval.log" --run-dir "$WORK/nv" --max-steps 2
grep -q "has no utterances: evaluation is skipped\|no validation split" "$WORK/noeval.log" ||
  { cat "$WORK/noeval.log"; fail "no warning about the empty validation split"; }
grep -q '"cer"' "$WORK/nv/metrics.jsonl" && fail "an empty validation split produced a CER record"
[[ ! -e $WORK/nv/checkpoints/best.ckpt ]] || fail "best.ckpt kept without a validation split"
expect 2 "$WORK/noeval2.log" --run-dir "$WORK/nv" --eval-only
grep -q "no validation split to evaluate" "$WORK/noeval2.log" || { cat "$WORK/noeval2.log"; fail "eval-only message"; }
expect 3 "$WORK/tok.log" --run-dir "$M" --max-steps 4 --resume "$(step_file "$M" 2)"
grep -q "trained with another tokenizer than the dataset's .*noval/tokenizer.model: the checkpoint's has" \
  "$WORK/tok.log" || { cat "$WORK/tok.log"; fail "the tokenizer difference is not named"; }
echo "ok: lock, stale lock, metrics repair, best.ckpt fallback, fresh start, eval-only, empty split, tokenizer"
