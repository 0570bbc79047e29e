#!/usr/bin/env bash
# The rendezvous never waits in silence or forever:
# 1. torchrun-style launch of 3 ranks where rank 2 never starts: ranks 0 and 1
#    log which rank is missing while they wait, and both exit 4 naming it once
#    dist.connect_timeout_seconds (20 s here) has passed;
# 2. MASTER_PORT held by another program: rank 0 says at once that the port is
#    in use and to choose another MASTER_PORT; rank 1, whose connection the
#    other program accepts but never answers, says the same within seconds.
# Nothing here reads data: the ranks fail before they would.
set -uo pipefail
SRC=${ASR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${ASR_BINARY_DIR:-$SRC/build}
[[ -x $BIN/asr_ddp ]] || { echo "SKIP: $BIN/asr_ddp not built"; exit 77; }
WORK=$(mktemp -d)
listener=""
trap '[[ -n $listener ]] && kill "$listener" 2>/dev/null; rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mkdir -p "$WORK/data"
export OMP_NUM_THREADS=1
ARGS=(--config "$SRC/configs/tiny.toml" --data "$WORK/data" --set log.progress=plain --set dist.connect_timeout_seconds=20)

# rank R WORLD PORT: one torchrun-style rank in the background, output in $WORK/<case>.R.log.
rank() {
  local r=$1 world=$2 port=$3 name=$4
  RANK=$r WORLD_SIZE=$world LOCAL_RANK=$r LOCAL_WORLD_SIZE=$world MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$BIN/asr_ddp" "${ARGS[@]}" --run-dir "$WORK/$name-run" >"$WORK/$name.$r.log" 2>&1 &
}

# 1. Rank 2 of 3 never starts.
port=$(free_port)
start=$(date +%s)
rank 0 3 "$port" missing; p0=$!
rank 1 3 "$port" missing; p1=$!
for r in 0 1; do
  pid=$p0; ((r == 1)) && pid=$p1
  wait "$pid"; rc=$?
  log=$WORK/missing.$r.log
  [[ $rc == 4 ]] || { cat "$log"; fail "missing rank: rank $r exited $rc, expected 4 (distributed failure)"; }
  grep -q "rank $r: rank(s) 2 did not join the rendezvous at 127.0.0.1:$port within 20 s" "$log" ||
    { cat "$log"; fail "missing rank: rank $r's error does not name rank 2"; }
done
took=$(($(date +%s) - start))
grep -q "rank 0: waiting for rank(s) 2 to join the rendezvous" "$WORK/missing.0.log" ||
  { cat "$WORK/missing.0.log"; fail "missing rank: rank 0 waited without saying for whom"; }
grep -q "rank 1: waiting for" "$WORK/missing.1.log" || { cat "$WORK/missing.1.log"; fail "rank 1 waited in silence"; }
((took >= 19 && took <= 40)) || fail "missing rank: ended after $took s (connect timeout 20 s)"
echo "missing rank: both ranks named rank 2 and exited 4 after ${took} s"

# 2. Another program holds MASTER_PORT: it accepts connections and never answers.
port=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16); print("ready", flush=True)
held = []
while True: held.append(s.accept()[0])' "$port" >"$WORK/listener.log" 2>&1 &
listener=$!
for _ in $(seq 50); do grep -q ready "$WORK/listener.log" && break; sleep 0.1; done
start=$(date +%s)
rank 0 2 "$port" held; p0=$!
rank 1 2 "$port" held; p1=$!
wait "$p0"; rc=$?
took0=$(($(date +%s) - start))
[[ $rc == 4 ]] || { cat "$WORK/held.0.log"; fail "held port: rank 0 exited $rc, expected 4"; }
grep -q "cannot host the rendezvous store on 127.0.0.1:$port: port $port is in use by another process. Choose another MASTER_PORT" \
  "$WORK/held.0.log" || { cat "$WORK/held.0.log"; fail "held port: rank 0's message"; }
wait "$p1"; rc=$?
took1=$(($(date +%s) - start))
[[ $rc == 4 ]] || { cat "$WORK/held.1.log"; fail "held port: rank 1 exited $rc, expected 4"; }
grep -q "rank 1: something listens at 127.0.0.1:$port but does not answer as a rendezvous store.*Choose another MASTER_PORT" \
  "$WORK/held.1.log" || { cat "$WORK/held.1.log"; fail "held port: rank 1's message"; }
((took0 <= 8 && took1 <= 20)) || fail "held port: rank 0 took $took0 s, rank 1 $took1 s"
echo "held port: rank 0 refused after ${took0} s, rank 1 after ${took1} s, both naming 127.0.0.1:$port"
echo "PASS"
