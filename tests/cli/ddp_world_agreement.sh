#!/usr/bin/env bash
# Ranks agree on device and backend before any process group exists: a world
# whose ranks are configured differently (here rank 1 asks for NCCL on a
# CPU-only machine) is refused on every rank within seconds, naming the rank,
# instead of hanging until a timeout. Also: train.device = "cuda" without a
# GPU, and asr_decode --device cuda, are clear usage errors.
source "$(dirname "$0")/ddp_common.inc"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start=$(date +%s)
pids=()
for r in 0 1; do
  backend=gloo
  ((r == 1)) && backend=nccl
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/mixed" --set dist.backend=$backend \
    --set dist.timeout_seconds=120 --set dist.connect_timeout_seconds=120 >"$WORK/mixed.$r.log" 2>&1 &
  pids+=($!)
done
for r in 0 1; do
  wait "${pids[$r]}"
  rc=$?
  [[ $rc == 2 ]] || { cat "$WORK/mixed.$r.log"; fail "rank $r exited $rc, expected 2 (configuration)"; }
  grep -q 'different dist.backend settings: rank(s) 0 "gloo", rank(s) 1 "nccl"' "$WORK/mixed.$r.log" ||
    { cat "$WORK/mixed.$r.log"; fail "rank $r's message does not name the ranks"; }
done
took=$(($(date +%s) - start))
((took < 30)) || fail "the refusal took $took s (the collective timeout is 120 s)"
echo "mixed world refused on both ranks in ${took} s"

if [[ $("$BIN/asr_ddp" --help) && ! -e /dev/nvidia0 ]]; then
  "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/cuda" --set train.device=cuda >"$WORK/cuda.log" 2>&1
  rc=$?
  [[ $rc == 2 ]] || { cat "$WORK/cuda.log"; fail "train.device=cuda without a GPU exited $rc, expected 2"; }
  grep -q 'train.device = "cuda" but' "$WORK/cuda.log" || { cat "$WORK/cuda.log"; fail "no clear message"; }
  ddp 1 "$WORK/ck" --max-steps 2 >/dev/null 2>&1 || fail "could not train a checkpoint"
  "$BIN/asr_decode" --checkpoint "$WORK/ck/checkpoints/best.ckpt" --device cuda "$WORK/corpus/wavs/"*0001.wav \
    >"$WORK/dec.log" 2>&1
  rc=$?
  [[ $rc == 2 ]] || { cat "$WORK/dec.log"; fail "asr_decode --device cuda without a GPU exited $rc, expected 2"; }
  grep -Eq -- "--device cuda: (no GPU|this build)" "$WORK/dec.log" || { cat "$WORK/dec.log"; fail "no clear message"; }
fi
echo "PASS"
