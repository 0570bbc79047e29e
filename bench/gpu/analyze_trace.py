#!/usr/bin/env python3
"""Where the GPU time of a few traced training steps went (ASR_TRACE writes the
Chrome trace): kernel time by kind, and the share of convolutions and matmuls
in the wall time of the traced steps (the target is at least 40%).

  python3 bench/gpu/analyze_trace.py TRACE.json --steps 5 [--verdict]
"""
import argparse
import json
import re

KINDS = [
    ("matmul", re.compile(r"gemm|cutlass|xmma|sm\d+_|matmul|cublas", re.I)),
    ("convolution", re.compile(r"conv|implicit|wgrad|dgrad|cudnn", re.I)),
    ("attention", re.compile(r"flash|fmha|attention|efficient", re.I)),
    ("nccl", re.compile(r"nccl", re.I)),
    ("reduction/norm", re.compile(r"reduce|norm|softmax", re.I)),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("trace")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--verdict", action="store_true", help="print only ok / BELOW 40%%")
    a = p.parse_args()
    events = json.load(open(a.trace))["traceEvents"]
    kernels = [e for e in events if e.get("cat") in ("kernel", "Kernel") and "dur" in e]
    timed = [e for e in events if "ts" in e and "dur" in e]
    wall = max(e["ts"] + e["dur"] for e in timed) - min(e["ts"] for e in timed)
    by_kind = {}
    for e in kernels:
        kind = next((k for k, rx in KINDS if rx.search(e["name"])), "other")
        by_kind[kind] = by_kind.get(kind, 0.0) + e["dur"]
    compute = by_kind.get("matmul", 0.0) + by_kind.get("convolution", 0.0) + by_kind.get("attention", 0.0)
    share = compute / wall if wall else 0.0
    if a.verdict:
        print("ok" if share >= 0.4 else "BELOW 40%")
        return
    busy = sum(by_kind.values())
    print(f"{share:.0%} of {wall / 1000 / a.steps:.1f} ms/step in convolutions, matmuls and attention; "
          f"GPU busy {busy / wall:.0%}; " + ", ".join(f"{k} {v / 1000 / a.steps:.1f} ms" for k, v in
                                                     sorted(by_kind.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
