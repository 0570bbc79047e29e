#!/usr/bin/env bash
# The NCCL code cannot run here, but it must compile: type-check it against
# the CUDA toolkit's headers (skipped, 77, only when those are absent).
exec bash "${ASR_SOURCE_DIR:-$(dirname "$0")/../..}/scripts/check-nccl-syntax.sh" "${ASR_BINARY_DIR:-build}"
