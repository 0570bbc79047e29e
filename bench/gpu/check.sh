#!/usr/bin/env bash
# The GPU check: one command, on a lent machine with one GPU (PyTorch wheel
# with CUDA, cmake, ninja; no package registry). Prepare once here with
# bench/gpu/prepare.sh, then through the device tool:
#   run(command="bash bench/gpu/check.sh", carry=[".gpu-deps"], timeout_s=540)
# It builds against the wheel's LibTorch, runs the CUDA unit tests, trains
# configs/base.toml on the GPU with NCCL, checks 2 ranks sharing the GPU
# over Gloo against 1 rank, SIGUSR1 -> 75 -> resume (on the GPU, then on the
# CPU), an out-of-memory step skipped, the PyTorch eager reference on the
# same batches, and asr_decode --device cuda; then prints one table
# (docs/training.md keeps the last one). Each row is measured, or says why not.
# Outputs land in $OUT (the device tool brings them back).
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
OUT=${OUT:-/tmp/asr-gpu-check}
mkdir -p "$OUT"
TABLE=$OUT/table.md
DEPS=$SRC/.gpu-deps/root
DATA=$SRC/.gpu-deps/data
BUILD=${ASR_GPU_BUILD:-/tmp/asr-build-gpu}
STEPS=${GPU_CHECK_STEPS:-200}
T0=$(date +%s)

printf '| check | result | details |\n| --- | --- | --- |\n' >"$TABLE"
row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3" | tee -a "$TABLE"; }
elapsed() { echo "$(($(date +%s) - T0)) s"; }
field() {  # field RUN KEY [last|first|median]: a metrics.jsonl value
  python3 - "$1" "$2" "${3:-last}" <<'PY'
import json, statistics, sys
vals = [json.loads(l)[sys.argv[2]] for l in open(sys.argv[1] + "/metrics.jsonl") if f'"{sys.argv[2]}"' in l]
how = sys.argv[3]
print("" if not vals else vals[-1] if how == "last" else vals[0] if how == "first" else statistics.median(vals[1:] or vals))
PY
}

[[ -d $DEPS && -f $DATA/manifest.json ]] || { echo "no .gpu-deps: run bench/gpu/prepare.sh here and carry .gpu-deps"; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

# --- build against the wheel's LibTorch ---------------------------------------
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export PKG_CONFIG_PATH=$DEPS/usr/lib/x86_64-linux-gnu/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEPS
export LD_LIBRARY_PATH=$DEPS/usr/lib/x86_64-linux-gnu:$DEPS/usr/lib/x86_64-linux-gnu/hdf5/serial:${LD_LIBRARY_PATH:-}
gloo=()
python3 -c 'import torch, os, sys; sys.exit(0 if os.path.exists(os.path.join(torch.utils.cmake_prefix_path, "../../include/gloo/algorithm.h")) else 1)' ||
  gloo=(-DASR_GLOO_INCLUDE_DIR="$DEPS/usr/include")
start=$(date +%s)
if cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DASR_WITH_MPI=OFF \
     -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$DEPS/usr" -DASR_HDF5_ROOT="$DEPS/usr" "${gloo[@]}" >"$OUT/configure.log" 2>&1 &&
   ninja -C "$BUILD" asr_ddp asr_decode asr_preprocess test_model test_distributed test_core >"$OUT/build.log" 2>&1; then
  row "build (wheel LibTorch, CUDA)" "ok" "$(grep -o 'LibTorch [0-9.]*: C++[0-9]*' "$OUT/configure.log" | head -1), $(($(date +%s) - start)) s, $(grep -c 'warning:' "$OUT/build.log") warnings"
else
  row "build (wheel LibTorch, CUDA)" "FAILED" "see configure.log / build.log"
  tail -30 "$OUT/configure.log" "$OUT/build.log"
  cat "$TABLE"
  exit 1
fi
BIN=$BUILD

# --- unit tests with CUDA ------------------------------------------------------
for t in test_core test_model test_distributed; do
  "$BIN/tests/$t" --gtest_brief=1 >"$OUT/$t.log" 2>&1
  row "unit tests: $t" "$( [[ $? == 0 ]] && echo ok || echo FAILED)" "$(grep -E '^\[  (PASSED|FAILED)' "$OUT/$t.log" | tr '\n' ' ')"
done
cuda_line=$(grep -A3 'Cuda.MatchesTheCpuInFloat32AndBf16' "$OUT/test_model.log" | grep -Eo 'OK|FAILED|SKIPPED' | head -1)
row "CUDA vs CPU forward/backward" "${cuda_line:-not run}" "fp32 (TF32 off) <= 1e-4, bf16 autocast <= 1e-2 (tests/model/kernel_paths_test.cpp)"

# --- base.toml on one GPU with NCCL ------------------------------------------
BASE=(--config "$SRC/configs/base.toml" --data "$DATA" --set dist.backend=nccl --set eval.every=0
      --set checkpoint.every=0 --set train.log_every=20 --set log.progress=plain --set augment.enabled=false
      --set schedule.warmup_steps=50 --set model.encoder.conv_kernel=0 --set vq_warmup.bypass_steps=0)
# (reference.py has neither the convolution module nor the RVQ bypass: same work as it)
nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 500 >"$OUT/util.txt" 2>/dev/null &
smi=$!
ASR_DUMP_BATCHES="$OUT/batches.txt" timeout 300 "$BIN/asr_ddp" "${BASE[@]}" --run-dir "$OUT/base" --max-steps "$STEPS" \
  >"$OUT/base.log" 2>&1
rc=$?
kill $smi 2>/dev/null
util=$(python3 -c "import statistics as s; v=[float(x) for x in open('$OUT/util.txt') if x.strip()]; print(f'{s.median(v):.0f}% median, {max(v):.0f}% max' if v else 'n/a')")
if [[ $rc == 0 ]]; then
  row "base.toml, $STEPS steps, bf16, NCCL" "ok" "loss $(field "$OUT/base" loss first) -> $(field "$OUT/base" loss last); $(field "$OUT/base" audio_sec_per_s median) audio-s/s (median record); peak $(python3 -c "print(round($(field "$OUT/base" peak_allocated_bytes last | tr -d '[]')/2**30, 1))") GiB allocated, $(python3 -c "print(round($(field "$OUT/base" peak_reserved_bytes last | tr -d '[]')/2**30, 1))") GiB reserved; GPU utilization $util"
else
  row "base.toml, $STEPS steps, bf16, NCCL" "FAILED (exit $rc)" "$(tail -2 "$OUT/base.log" | tr '\n' ' ')"
fi
ours=$(field "$OUT/base" audio_sec_per_s median)

# Where a step's time goes: phases (the device synchronized at each
# boundary), and a kernel trace for the share of convolutions and matmuls.
ASR_TRACE="$OUT/trace.json:21:5" timeout 120 "$BIN/asr_ddp" "${BASE[@]}" --run-dir "$OUT/profile" --max-steps 30 \
  --set train.profile=true --set train.log_every=30 >"$OUT/profile.log" 2>&1
row "step time split (profile run)" "$( [[ $? == 0 ]] && echo ok || echo FAILED)" "$(python3 -c "
import json
r=[json.loads(l) for l in open('$OUT/profile/metrics.jsonl') if 'time_per_step' in l][-1]['time_per_step']
print(', '.join(f'{k} {1000*v:.1f} ms' for k,v in r.items()))" 2>/dev/null)"
row "convolution + matmul share of the step" "$(python3 "$SRC/bench/gpu/analyze_trace.py" "$OUT/trace.json" --steps 5 --verdict 2>/dev/null || echo n/a)" "$(python3 "$SRC/bench/gpu/analyze_trace.py" "$OUT/trace.json" --steps 5 2>/dev/null | tr '\n' ' ')"

# --- the PyTorch eager reference on the same batches ------------------------------
if timeout 240 python3 "$SRC/bench/gpu/reference.py" --data "$DATA" --batches "$OUT/batches.txt" --steps 100 \
     >"$OUT/reference.log" 2>&1; then
  ref=$(grep -o 'reference: [0-9.]*' "$OUT/reference.log" | grep -o '[0-9.]*$')
  ratio=$(python3 -c "print(f'{$ours/$ref:.2f}')" 2>/dev/null)
  row "speed vs PyTorch eager (bf16, same batches)" "$(python3 -c "print('ok' if $ratio >= 1.3 else 'BELOW 1.3x')" 2>/dev/null)" "asr_ddp $ours vs reference $ref audio-s/s: ${ratio}x (target 1.3x)"
else
  row "speed vs PyTorch eager" "FAILED" "$(tail -2 "$OUT/reference.log" | tr '\n' ' ')"
fi

# --- 2 ranks sharing the GPU (Gloo) follow 1 rank ------------------------------------
TINY=(--config "$SRC/configs/tiny.toml" --data "$DATA" --set train.device=cuda --set train.precision=fp32
      --set train.tf32=false --set model.rvq.kmeans_init=false --set model.rvq.dead_code_threshold=0
      --set train.log_every=1 --set eval.every=0 --set log.progress=plain --set schedule.total_steps=40)
"$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/one" --max-steps 10 >"$OUT/one.log" 2>&1
port=$((20000 + RANDOM % 20000))
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/two" --max-steps 10 >"$OUT/two.$r.log" 2>&1 &
done
wait
res=$(python3 - "$OUT" <<'PY' 2>&1
import json, sys
d = sys.argv[1]
l = lambda r: [json.loads(x)["loss"] for x in open(f"{d}/{r}/metrics.jsonl") if '"loss"' in x]
a, b = l("one"), l("two")
w = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and len(a) == len(b) else float("inf")
print(("ok" if w < 1e-4 else "FAILED") + f" worst relative loss difference {w:.1e} over {len(a)} steps (fp32)")
PY
)
row "2 ranks on one GPU (Gloo) vs 1 rank" "${res%% *}" "${res#* }; $(grep -o 'share a GPU[^;]*' "$OUT/two.0.log" | head -1)"

# --- SIGUSR1 -> 75 -> resume on the GPU, then on the CPU ----------------------------------
"$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/sig" --max-steps 2000 --set checkpoint.every=0 >"$OUT/sig.log" 2>&1 &
job=$!
for _ in $(seq 300); do grep -q '"step":5,' "$OUT/sig/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
kill -USR1 $job
wait $job
rc=$?
stopped=$(field "$OUT/sig" step)
"$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/sig" --max-steps $((stopped + 3)) --resume auto >"$OUT/sig2.log" 2>&1
rc2=$?
"$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/sig" --max-steps $((stopped + 5)) --resume auto --set train.device=cpu \
  >"$OUT/sig3.log" 2>&1
rc3=$?
row "SIGUSR1 -> 75 -> resume" "$( [[ $rc == 75 && $rc2 == 0 && $rc3 == 0 ]] && echo ok || echo FAILED)" "exit $rc at step $stopped; resumed on the GPU (exit $rc2) to step $((stopped + 3)), then on the CPU (exit $rc3) to $(field "$OUT/sig" step)"

# --- an out-of-memory step skipped ---------------------------------------------------
ASR_FAULT_OOM=4:0:backward "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$OUT/oom" --max-steps 8 >"$OUT/oom.log" 2>&1
rc=$?
row "out of memory in backward (injected)" "$( [[ $rc == 0 && $(field "$OUT/oom" oom_skipped) == 1 && $(field "$OUT/oom" step) == 8 ]] && echo ok || echo FAILED)" "exit $rc, oom_skipped $(field "$OUT/oom" oom_skipped), reached step $(field "$OUT/oom" step)"

# --- asr_decode on the GPU ---------------------------------------------------------
"$BIN/asr_decode" --checkpoint "$OUT/base/checkpoints/best.ckpt" --device cuda --data "$DATA" --split test --batch 32 \
  >"$OUT/decode.txt" 2>"$OUT/decode.log"
row "asr_decode --device cuda" "$( [[ $? == 0 ]] && echo ok || echo FAILED)" "$(grep -o 'RTF [0-9.]*' "$OUT/decode.log" | head -1) ($(grep -o '[0-9.]* s of audio' "$OUT/decode.log" | head -1), greedy, batch 32)"

row "total" "" "$(elapsed)"
echo
cat "$TABLE"
