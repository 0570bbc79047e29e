#!/usr/bin/env bash
# The README's main job on an embedded default, from a fresh machine:
# synthesize a ~2,000-clip LJSpeech-format corpus with espeak-ng, preprocess it,
# train configs/demo.toml on 2 CPU ranks, decode held-out audio and print its CER.
#
# Environment: DEMO_DIR (default ./demo-run), DEMO_CLIPS (2000), DEMO_RANKS (2),
# DEMO_CONFIG (configs/demo.toml). Re-running reuses the corpus and dataset and
# resumes training from the newest checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${DEMO_DIR:-$root/demo-run}
clips=${DEMO_CLIPS:-2000}
ranks=${DEMO_RANKS:-2}
config=${DEMO_CONFIG:-configs/demo.toml}

bash scripts/install-deps.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[[ -f build/CMakeCache.txt ]] || cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target asr_preprocess asr_ddp asr_decode
bin=$root/build
mkdir -p "$work"

echo "== 1/4 corpus: $clips clips spoken by espeak-ng -> $work/corpus"
if [[ ! -f $work/corpus/metadata.csv ]]; then
  metadata_args=()
  [[ -f ../shared/ljspeech/metadata.csv ]] && metadata_args=(--metadata ../shared/ljspeech/metadata.csv)
  scripts/make-synthetic-ljspeech --output "$work/corpus" --count "$clips" "${metadata_args[@]}" \
    --voices en-us,en-gb --jobs "$(nproc)"
fi

echo "== 2/4 preprocess -> $work/data"
if [[ ! -f $work/data/manifest.json ]]; then
  "$bin/asr_preprocess" --input "$work/corpus" --output "$work/data" --val 100 --test 100 --tokenizer char
fi

echo "== 3/4 train $config on $ranks ranks -> $work/run"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 \
  "$bin/asr_ddp" --config "$config" --data "$work/data" --run-dir "$work/run" --resume auto

echo "== 4/4 decode the held-out test split with the best checkpoint"
ckpt=$work/run/checkpoints/best.ckpt
[[ -f $ckpt ]] || ckpt=$(ls -1 "$work"/run/checkpoints/step-*.ckpt | tail -n 1)
echo "-- greedy:"
"$bin/asr_decode" --checkpoint "$ckpt" --data "$work/data" --split test --threads "$(nproc)" \
  --format text > "$work/test-decoded.tsv"
# Beam search with a character 6-gram LM from the corpus transcripts
# (asr_decode leaves out the transcripts of the utterances it decodes).
echo "-- beam 8 + character LM:"
"$bin/asr_decode" --checkpoint "$ckpt" --data "$work/data" --split test --threads "$(nproc)" \
  --beam 8 --lm-text "$work/corpus/metadata.csv" --lm-weight 0.5 --lm-bonus 1.0 \
  --format jsonl > "$work/test-decoded-lm.jsonl"
echo "decoded transcripts: $work/test-decoded.tsv (greedy), $work/test-decoded-lm.jsonl (beam + LM)"
