#!/usr/bin/env bash
# Submits the whole pipeline as three chained Slurm jobs:
#   preprocess (CPU job) -> train (launch/slurm/train.sbatch) -> decode the test split
# each starting only when the previous one succeeded (--dependency=afterok).
#
#   launch/slurm/pipeline.sh LJSPEECH_DIR WORK_DIR CONFIG [asr_ddp flags...]
#
# Leaves under WORK_DIR: data/ (preprocessed corpus), run/ (run directory),
# decoded/test.jsonl (one JSON object per utterance) and logs/. Prints the job
# ids as shell assignments (preprocess=ID, train=ID, decode=ID) and returns at
# once; follow with `squeue -j ID` or the logs.
#
# Extra sbatch options per stage, word-split (e.g. partitions, GPUs):
#   ASR_PREPROCESS_SBATCH  default: -N1 -n1 -c2
#   ASR_TRAIN_SBATCH       default: none (train.sbatch's own #SBATCH defaults)
#   ASR_DECODE_SBATCH      default: -N1 -n1 -c2
# On a CPU-only cluster: ASR_TRAIN_SBATCH="-N1 -n2 --gpus-per-task=0".
# ASR_PREPROCESS_ARGS: extra asr_preprocess flags, word-split (e.g. --val 100 --test 100).
# Binaries: ASR_BIN_DIR, else from PATH (resolved now, at submission).
set -euo pipefail

die() { echo "pipeline.sh: error: $*" >&2; exit 2; }

[[ $# -ge 3 ]] || die "usage: pipeline.sh LJSPEECH_DIR WORK_DIR CONFIG [asr_ddp flags...]"
corpus=$1 work=$2 config=$3
shift 3
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node"
[[ -d "$corpus" ]] || die "LJSpeech directory $corpus not found"
[[ -f "$config" ]] || die "config $config not found"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
abs() { (cd "$(dirname "$1")" && echo "$(pwd)/$(basename "$1")"); }
mkdir -p "$work/logs" "$work/decoded"
work=$(abs "$work")
corpus=$(abs "$corpus")
config=$(abs "$config")

find_tool() {
  if [[ -n "${ASR_BIN_DIR:-}" ]]; then
    [[ -x "$ASR_BIN_DIR/$1" ]] || die "ASR_BIN_DIR=$ASR_BIN_DIR holds no executable $1"
    echo "$ASR_BIN_DIR/$1"
  else
    command -v "$1" || die "$1 is not on PATH; set ASR_BIN_DIR to the build directory"
  fi
}
preprocess=$(find_tool asr_preprocess)
decode=$(find_tool asr_decode)
ASR_BIN_DIR=$(dirname "$(find_tool asr_ddp)")
export ASR_BIN_DIR

# shellcheck disable=SC2206  # the stage options are lists of words
prep_opts=(${ASR_PREPROCESS_SBATCH:--N1 -n1 -c2})
# shellcheck disable=SC2206
train_opts=(${ASR_TRAIN_SBATCH:-})
# shellcheck disable=SC2206
decode_opts=(${ASR_DECODE_SBATCH:--N1 -n1 -c2})

# shellcheck disable=SC2206
prep_args=(${ASR_PREPROCESS_ARGS:-})

q() { printf '%q ' "$@"; }
q1() { printf '%q' "$1"; }

prep_id=$(sbatch --parsable --job-name=asr-preprocess --output="$work/logs/preprocess-%j.out" \
  "${prep_opts[@]}" \
  --wrap="$(q "$preprocess" --input "$corpus" --output "$work/data" "${prep_args[@]}")") ||
  die "submitting the preprocessing job failed"

train_id=$(sbatch --parsable --job-name=asr-train --output="$work/logs/train-%j.out" \
  --dependency="afterok:$prep_id" --kill-on-invalid-dep=yes "${train_opts[@]}" \
  "$here/train.sbatch" "$config" --data "$work/data" --run-dir "$work/run" "$@") ||
  { scancel "$prep_id"; die "submitting the training job failed"; }

# The newest checkpoint is only known once training has ended. The JSONL is
# written beside its final name and renamed, so a failed decode leaves none.
decode_script=$(cat <<EOF
#!/bin/bash
set -euo pipefail
ckpt=\$(ls $(q1 "$work/run/checkpoints") | sed -n 's/^step-\([0-9]*\)\.ckpt\$/\1/p' | sort -n | tail -n 1)
[[ -n "\$ckpt" ]] || { echo "no checkpoint in $(q1 "$work/run/checkpoints")" >&2; exit 2; }
echo "decoding with checkpoint step-\$ckpt.ckpt" >&2
$(q1 "$decode") --checkpoint $(q1 "$work/run/checkpoints")/step-\$ckpt.ckpt --data $(q1 "$work/data") \\
  --split test --format jsonl > $(q1 "$work/decoded/test.jsonl.partial")
mv $(q1 "$work/decoded/test.jsonl.partial") $(q1 "$work/decoded/test.jsonl")
EOF
)
decode_id=$(sbatch --parsable --job-name=asr-decode --output="$work/logs/decode-%j.out" \
  --dependency="afterok:$train_id" --kill-on-invalid-dep=yes "${decode_opts[@]}" \
  <<<"$decode_script") ||
  { scancel "$prep_id" "$train_id"; die "submitting the decoding job failed"; }

echo "preprocess=${prep_id%%;*}"
echo "train=${train_id%%;*}"
echo "decode=${decode_id%%;*}"
