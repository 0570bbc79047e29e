#!/usr/bin/env bash
# norm = "batch" (the seed's) across ranks: batch statistics are synchronized
# over the global batch in forward and backward, so 2 ranks follow the
# 1-rank trajectory (to float rounding) and the replicas never diverge (the
# checkpoints' agreement check would stop the run, exit 5).
source "$(dirname "$0")/ddp_common.inc"

BN=(--set model.frontend.norm=batch --set model.rvq.kmeans_init=false --set model.rvq.dead_code_threshold=0)
ddp 1 "$WORK/one" --max-steps 10 "${BN[@]}" >"$WORK/one.log" 2>&1 || { cat "$WORK/one.log"; fail "1-rank run failed"; }
ddp 2 "$WORK/two" --max-steps 10 --checkpoint-every 5 "${BN[@]}" >"$WORK/two.log" 2>&1 ||
  { cat "$WORK/two.log"; fail "2-rank run failed (diverged replicas exit 5)"; }
grep -q "batch norm synchronized over all ranks" "$WORK/two.log" || fail "batch norm was not synchronized"
same_losses "$WORK/one" "$WORK/two" 10 1e-5 "synchronized batch norm, 1 vs 2 ranks" ||
  fail "2 ranks with batch norm diverged from 1 rank"
echo "PASS"
