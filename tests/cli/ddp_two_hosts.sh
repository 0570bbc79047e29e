#!/usr/bin/env bash
# Two "hosts" on one machine: each rank in a network namespace of its own,
# the two joined by a veth pair and nothing else (no traffic leaves the
# machine). The ranks meet at MASTER_ADDR over that link, Gloo talks over the
# interface GLOO_SOCKET_IFNAME names, and the losses equal a local 2-rank
# run's. Then the link is cut mid-run: both ranks exit 4 within the
# collective timeout plus a margin, naming themselves, the operation and the
# peer, both write flight dumps, and with the link back --resume auto
# finishes the run from its last checkpoint.
source "$(dirname "$0")/ddp_common.inc"

command -v ip >/dev/null || { echo "SKIP: iproute2 (ip) not installed"; exit 77; }
NS=(asr2h$$a asr2h$$b)
VETH=(a2h$$a a2h$$b)
NET=10.231.$(($$ % 250)).
ADDR=("${NET}1" "${NET}2")
cleanup() {
  for ns in "${NS[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 143" TERM INT
ip netns add "${NS[0]}" 2>"$WORK/netns.err" || { echo "SKIP: cannot make network namespaces: $(cat "$WORK/netns.err")"; exit 77; }
ip netns add "${NS[1]}" || fail "cannot make the second namespace"
ip -n "${NS[0]}" link add "${VETH[0]}" type veth peer name "${VETH[1]}" netns "${NS[1]}" || fail "cannot make the veth pair"
for i in 0 1; do
  ip -n "${NS[$i]}" link set lo up &&
    ip -n "${NS[$i]}" addr add "${ADDR[$i]}/24" dev "${VETH[$i]}" &&
    ip -n "${NS[$i]}" link set "${VETH[$i]}" up || fail "cannot set up ${VETH[$i]} in ${NS[$i]}"
done


# hosts RUN_DIR [flags...]: rank r in namespace r, in the background; pids in PIDS.
hosts() {
  local run=$1 r
  shift
  PIDS=()
  for r in 0 1; do
    ip netns exec "${NS[$r]}" env RANK=$r WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR="${ADDR[0]}" \
      MASTER_PORT=29500 GLOO_SOCKET_IFNAME="${VETH[$r]}" "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$run" "$@" \
      >"$run.$r.log" 2>&1 &
    PIDS+=($!)
  done
}

# expect_exit STATUS RUN_DIR: both ranks of the last hosts() exit with STATUS.
expect_exit() {
  local r rc
  for r in 0 1; do
    wait "${PIDS[$r]}"
    rc=$?
    [[ $rc == "$1" ]] || { cat "$2.0.log" "$2.1.log"; fail "rank $r exited $rc, expected $1 ($2)"; }
  done
}

# 1. Six steps across the link equal six steps of 2 ranks on 127.0.0.1.
hosts "$WORK/two" --max-steps 6
expect_exit 0 "$WORK/two"
p=$(port)
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$p \
    "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/local" --max-steps 6 >"$WORK/local.$r.log" 2>&1 &
  PIDS[$r]=$!
done
expect_exit 0 "$WORK/local"
same_losses "$WORK/two" "$WORK/local" 6 1e-6 "two hosts vs one host" || fail "the 2-host losses differ from the local run's"

# 2. A wrong GLOO_SOCKET_IFNAME is refused, naming it and the interfaces there are.
ip netns exec "${NS[0]}" env RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR="${ADDR[0]}" \
  MASTER_PORT=29501 GLOO_SOCKET_IFNAME=nosuch0 "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/badif" --max-steps 2 \
  --set dist.connect_timeout_seconds=20 >"$WORK/badif.0.log" 2>&1 &
bad0=$!
ip netns exec "${NS[1]}" env RANK=1 WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_WORLD_SIZE=1 MASTER_ADDR="${ADDR[0]}" \
  MASTER_PORT=29501 GLOO_SOCKET_IFNAME="${VETH[1]}" "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/badif" --max-steps 2 \
  --set dist.connect_timeout_seconds=20 >"$WORK/badif.1.log" 2>&1 &
bad1=$!
wait $bad0
rc=$?
kill $bad1 2>/dev/null
wait $bad1
[[ $rc == 4 ]] || { cat "$WORK/badif.0.log"; fail "an unknown GLOO_SOCKET_IFNAME gave exit $rc, expected 4"; }
grep -q "GLOO_SOCKET_IFNAME.*nosuch0.*${VETH[0]}" "$WORK/badif.0.log" ||
  { cat "$WORK/badif.0.log"; fail "the unknown interface and the available ones are not named"; }
grep -h "GLOO_SOCKET_IFNAME" "$WORK/badif.0.log"

# 3. The link goes down after a few steps: both ranks give up within the timeout.
TIMEOUT=10
hosts "$WORK/cut" --max-steps 400 --checkpoint-every 2 --set dist.timeout_seconds=$TIMEOUT
for _ in $(seq 1200); do grep -q '"step":5,' "$WORK/cut/metrics.jsonl" 2>/dev/null && break; sleep 0.1; done
grep -q '"step":5,' "$WORK/cut/metrics.jsonl" || { cat "$WORK/cut.0.log"; fail "the run never reached step 5"; }
ip -n "${NS[1]}" link set "${VETH[1]}" down
start=$(date +%s.%N)
expect_exit 4 "$WORK/cut"
elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.1f}')" "$(date +%s.%N)" "$start")
echo "link cut: both ranks exited 4 after ${elapsed} s (dist.timeout_seconds=$TIMEOUT)"
python3 -c "import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]) + 30)" "$elapsed" "$TIMEOUT" &&
  fail "the ranks took ${elapsed} s to give up, over timeout + 30 s"
for r in 0 1; do
  grep -q "rank $r: collective '.*' (gloo, 2 ranks, timeout $TIMEOUT.0 s) failed" "$WORK/cut.$r.log" ||
    { cat "$WORK/cut.$r.log"; fail "rank $r does not name itself and the operation"; }
  other=$((1 - r))
  grep -q "rank $other at ${ADDR[$other]}" "$WORK/cut.$r.log" ||
    { cat "$WORK/cut.$r.log"; fail "rank $r does not name its peer, rank $other at ${ADDR[$other]}"; }
  [[ -s $WORK/cut/flight/rank-0000$r.json ]] || fail "rank $r wrote no flight dump"
done
grep -h "distributed failure" "$WORK/cut.0.log" "$WORK/cut.1.log"

# 4. Link up again: --resume auto continues from the last checkpoint to the end.
ip -n "${NS[1]}" link set "${VETH[1]}" up
last=$(ls "$WORK/cut/checkpoints/" | grep -o 'step-[0-9]*' | sort | tail -n 1 | grep -o '[0-9]*$')
[[ -n $last ]] || fail "no checkpoint before the cut"
hosts "$WORK/cut" --max-steps $((10#$last + 3)) --checkpoint-every 2 --set dist.timeout_seconds=$TIMEOUT --resume auto
expect_exit 0 "$WORK/cut"
[[ $(field "$WORK/cut" step) == $((10#$last + 3)) ]] || fail "the resumed run did not reach step $((10#$last + 3))"
echo "resumed from step $((10#$last)) to $((10#$last + 3))"
echo "PASS"
