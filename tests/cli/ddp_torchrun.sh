#!/usr/bin/env bash
# The real torchrun (Debian's python3-torch) starts asr_ddp on 2 ranks:
# 1. static rendezvous (--master_addr/--master_port): torchrun's agent already
#    serves the store on MASTER_PORT and tells the workers so
#    (TORCHELASTIC_USE_AGENT_STORE=True); rank 0 must join it as a client;
# 2. --standalone: the agent picks a free MASTER_PORT and rank 0 hosts the store.
# Skipped (77) where python3-torch is not installed.
source "$(dirname "$0")/ddp_common.inc"

PY=/usr/bin/python3  # Debian's interpreter, which sees python3-torch
"$PY" -c 'import torch.distributed.run' 2>/dev/null ||
  { echo "SKIP: python3-torch not installed (apt-get install python3-torch)"; exit 77; }

# Debian 12's torch 1.13 under Python 3.11: Std.from_str returns None for
# every --redirects/--tee value ("in" on an IntFlag changed), so torchrun dies
# in to_map before starting a worker (fixed in PyTorch 2.0). This runs
# torchrun's own main with that one function corrected.
cat >"$WORK/torchrun.py" <<'PY'
import re, sys
from torch.distributed.elastic.multiprocessing import api
def from_str(vm):
    if re.match(api._VALUE_REGEX, vm):
        return api.Std(int(vm))
    return {int(i): api.Std(int(v)) for i, v in (item.split(":") for item in vm.split(","))}
api.Std.from_str = staticmethod(from_str)
from torch.distributed.run import main
sys.argv[0] = "torchrun"
main()
PY

# torchrun_ddp NAME [torchrun options...]: 2 ranks, one training step, must exit 0.
torchrun_ddp() {
  local name=$1
  shift
  timeout 180 "$PY" "$WORK/torchrun.py" --nproc_per_node 2 --no_python "$@" \
    "$BIN/asr_ddp" "${TINY[@]}" --run-dir "$WORK/$name" --max-steps 1 --set eval.max_utterances=2 \
    --set dist.connect_timeout_seconds=30 >"$WORK/$name.log" 2>&1
  local rc=$?
  [[ $rc == 0 ]] || { tail -40 "$WORK/$name.log"; fail "torchrun $name exited $rc"; }
  for r in 0 1; do
    grep -q "exits with status 0" "$WORK/$name/logs/rank-$r.log" || { cat "$WORK/$name/logs/rank-$r.log"; fail "$name: rank $r did not finish"; }
  done
  [[ $(field "$WORK/$name" step) == 1 ]] || fail "$name: no training step recorded"
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
torchrun_ddp static --nnodes 1 --master_addr 127.0.0.1 --master_port "$port"
grep -q "rendezvous at 127.0.0.1:$port (the store of torchrun's agent)" "$WORK/static.log" ||
  { tail -40 "$WORK/static.log"; fail "static: the ranks did not use the agent's store"; }
echo "torchrun --master_port: 2 ranks trained through the agent's store"

torchrun_ddp standalone --standalone
grep -q "rendezvous at .*:[0-9]*$" "$WORK/standalone.log" || { tail -40 "$WORK/standalone.log"; fail "standalone: no rendezvous line"; }
echo "torchrun --standalone: 2 ranks trained, rank 0 hosting the store"
echo "PASS"
