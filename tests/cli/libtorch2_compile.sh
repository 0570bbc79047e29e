#!/usr/bin/env bash
# The project must keep compiling against Debian trixie's LibTorch 2.6: every
# translation unit that includes LibTorch, with this build's flags, is
# type-checked against the 2.6 CPU headers and the 2.6 CUDA headers (the
# CUDA pass covers the NCCL communicator, with the CUDA toolkit's
# cuda_runtime.h and nccl.h). The packages are fetched once into a cache
# outside the tree; see scripts/check-libtorch2.sh. Skipped (77) only when
# the Debian mirror is unreachable and nothing is cached yet.
src=${ASR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
exec bash "$src/scripts/check-libtorch2.sh" --compile --build-dir "${ASR_BINARY_DIR:-$src/build}"
