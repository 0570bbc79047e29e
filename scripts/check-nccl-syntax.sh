#!/usr/bin/env bash
# Type-checks the NCCL translation unit on a machine without a GPU:
# -fsyntax-only against the installed LibTorch headers and the CUDA toolkit's
# headers, with ASR_WITH_CUDA defined as a CUDA build of LibTorch would.
# Debian's LibTorch lacks the generated c10/cuda/impl/cuda_cmake_macros.h;
# a one-line stand-in goes into a scratch include folder in the build dir.
# Usage: scripts/check-nccl-syntax.sh [build-dir]   (exit 77: no CUDA headers)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-${ASR_BINARY_DIR:-$root/build}}
cxx=${CXX:-c++}

cuda_inc=""
for dir in ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include /usr/local/cuda-*/include /usr/include; do
  if [[ -f "$dir/cuda_runtime.h" ]]; then cuda_inc=$dir; break; fi
done
if [[ -z "$cuda_inc" ]]; then
  echo "SKIP: no CUDA toolkit headers (cuda_runtime.h) found; set CUDA_HOME"
  exit 77
fi
nccl_inc=""
for dir in ${NCCL_HOME:+$NCCL_HOME/include} "$cuda_inc" /usr/include /usr/local/include; do
  if [[ -f "$dir/nccl.h" ]]; then nccl_inc=$dir; break; fi
done
if [[ -z "$nccl_inc" ]]; then
  echo "SKIP: nccl.h not found next to the CUDA headers; set NCCL_HOME"
  exit 77
fi

torch_inc=${TORCH_INCLUDE:-/usr/include}
if [[ ! -f "$torch_inc/torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp" ]]; then
  echo "FAIL: LibTorch headers not found under $torch_inc (set TORCH_INCLUDE)"
  exit 1
fi

stub="$build/nccl-syntax/include"
mkdir -p "$stub/c10/cuda/impl"
if [[ ! -f "$torch_inc/c10/cuda/impl/cuda_cmake_macros.h" ]]; then
  echo '#define C10_CUDA_BUILD_SHARED_LIBS' > "$stub/c10/cuda/impl/cuda_cmake_macros.h"
fi

# /usr/include must not be repeated as -isystem: it breaks libstdc++'s #include_next.
sys_dirs=()
for dir in "$torch_inc" "$torch_inc/torch/csrc/api/include" "$cuda_inc" "$nccl_inc"; do
  [[ "$dir" == /usr/include ]] || sys_dirs+=(-isystem "$dir")
done

echo "checking src/dist/nccl_communicator.cpp against $torch_inc, CUDA $cuda_inc, NCCL $nccl_inc"
"$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -D_GLIBCXX_USE_CXX11_ABI=1 \
  -DASR_WITH_CUDA=1 -DUSE_C10D_NCCL=1 \
  -I"$root/include" -I"$root/src/dist" -I"$stub" \
  "${sys_dirs[@]}" \
  "$root/src/dist/nccl_communicator.cpp"
echo "OK: the NCCL communicator type-checks"
