#!/usr/bin/env bash
# Ranks that all-reduce different sizes (what ranks running different
# configs would do without the start-up agreement): Gloo's transport thread
# finds a message larger than the receiving buffer and throws where nobody
# can catch it. The rank must end with the distributed status 4 and a line
# naming itself and the collective, not std::terminate's SIGABRT; its peer
# then fails its collective (status 3 from the tool's CollectiveError).
source "$(dirname "$0")/distributed_common.inc"

port=$(free_port)
pids=()
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$TOOL" sizes --timeout=10 >"$WORK/sizes.$r.log" 2>&1 &
  pids+=($!)
done
wait "${pids[1]}"; rc1=$?
wait "${pids[0]}"; rc0=$?
[[ $rc1 == 4 ]] || { cat "$WORK/sizes.1.log"; fail "rank 1 exited $rc1, expected 4 (134 = SIGABRT)"; }
grep -q "rank 1: distributed failure: collective 'all_reduce' failed inside Gloo: .*ranks ran different collectives" \
  "$WORK/sizes.1.log" || { cat "$WORK/sizes.1.log"; fail "rank 1's message does not name the rank and the collective"; }
[[ $rc0 == 3 ]] || { cat "$WORK/sizes.0.log"; fail "rank 0 exited $rc0, expected 3 (CollectiveError)"; }
grep -q "unexpectedly succeeded" "$WORK/sizes."*.log && fail "a mismatched all_reduce succeeded"
echo "size mismatch: rank 1 exited 4 naming its collective, rank 0 exited $rc0"
echo "PASS"
