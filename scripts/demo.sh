#!/usr/bin/env bash
# The README's main job on an embedded default, from a fresh machine:
# synthesize a ~2,000-clip LJSpeech-format corpus with espeak-ng, preprocess it,
# train configs/demo.toml on 2 CPU ranks, decode held-out audio and print its CER.
#
# Environment: DEMO_DIR (default ./demo-run), DEMO_CLIPS (2000), DEMO_RANKS (2),
# DEMO_CONFIG (configs/demo.toml). Re-running reuses the corpus and dataset and
# resumes training from the newest checkpoint. The dataset is preprocessed
# with the tokenizer the config names (data.tokenizer) into DEMO_DIR/data-<tokenizer>,
# and each config trains in its own DEMO_DIR/run-<config name>.
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

# The tokenizer the config is made for (data.tokenizer): one dataset per
# tokenizer in $work, all from the same corpus.
tokenizer=$(sed -n 's/^tokenizer *= *"\([a-z]*\)".*/\1/p' "$config" | head -n 1)
case ${tokenizer:-char} in
  # LM fusion settings: the best of a small grid on the validation split.
  char | any) tokenizer=char; preprocess_args=(--tokenizer char); lm_args=(--lm-weight 0.7 --lm-bonus 2.0) ;;
  bpe | unigram) preprocess_args=(--tokenizer "$tokenizer" --vocab-size 256); lm_args=(--lm-weight 0.3 --lm-bonus 0.5) ;;
  *) echo "demo.sh: $config: data.tokenizer \"$tokenizer\" is not char, bpe or unigram" >&2; exit 2 ;;
esac
data=$work/data-$tokenizer
# Demo directories from before data.tokenizer kept the character dataset in data/.
[[ $tokenizer == char && ! -e $data && -f $work/data/manifest.json ]] && data=$work/data
echo "== 2/4 preprocess ($tokenizer tokenizer) -> $data"
if [[ ! -f $data/manifest.json ]]; then
  "$bin/asr_preprocess" --input "$work/corpus" --output "$data" --val 100 --test 100 "${preprocess_args[@]}"
fi

run=$work/run-$(basename "$config" .toml)
echo "== 3/4 train $config on $ranks ranks -> $run"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 \
  "$bin/asr_ddp" --config "$config" --data "$data" --run-dir "$run" --resume auto

echo "== 4/4 decode the held-out test split with the best checkpoint"
ckpt=$run/checkpoints/best.ckpt
[[ -f $ckpt ]] || ckpt=$(ls -1 "$run"/checkpoints/step-*.ckpt | tail -n 1)
echo "-- greedy:"
"$bin/asr_decode" --checkpoint "$ckpt" --data "$data" --split test --threads "$(nproc)" \
  --format jsonl > "$work/test-decoded.jsonl" 2> "$work/test-greedy.txt"
cat "$work/test-greedy.txt"
# Beam search (32) with a character 6-gram LM from the corpus transcripts
# (asr_decode leaves out the transcripts of the utterances it decodes).
echo "-- beam 32 + character LM:"
"$bin/asr_decode" --checkpoint "$ckpt" --data "$data" --split test --threads "$(nproc)" \
  --beam 32 --lm-text "$work/corpus/metadata.csv" "${lm_args[@]}" \
  --format jsonl > "$work/test-decoded-lm.jsonl" 2> "$work/test-lm.txt"
cat "$work/test-lm.txt"

echo "== held-out test split, $config: a few references and what the model heard (beam + LM)"
python3 - "$work/test-decoded-lm.jsonl" <<'PY'
import json, sys
for line in list(open(sys.argv[1]))[:4]:
    u = json.loads(line)
    print(f"  {u['id']}  CER {100 * u['cer']:.1f}%\n    REF: {u['ref']}\n    HYP: {u['text']}")
PY
echo "greedy:     $(grep -E '^(CER|WER) ' "$work/test-greedy.txt" | tr '\n' ' ')"
echo "beam + LM:  $(grep -E '^(CER|WER) ' "$work/test-lm.txt" | tr '\n' ' ')"
echo "decoded transcripts: $work/test-decoded.jsonl (greedy), $work/test-decoded-lm.jsonl (beam + LM)"
