#!/usr/bin/env bash
# Prepares what bench/gpu/check.sh needs on a GPU machine that has PyTorch,
# CUDA, cmake and ninja but no package registry: the project's other build
# and run-time dependencies as unpacked Debian 12 packages, and a small
# preprocessed corpus, in .gpu-deps/ (git-ignored; the device tool carries it).
# Run it here, once:   bash bench/gpu/prepare.sh
# then on the device:  run(command="bash bench/gpu/check.sh", carry=[".gpu-deps"])
# Debian 12's libraries run on the newer glibc of the GPU image. No MPI: the
# check launches ranks with torchrun-style variables, and the build without
# MPI says so if mpirun is used.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.gpu-deps
mkdir -p "$out/debs" "$out/root"

# Headers (-dev) and the shared libraries they link, without anything the
# GPU image has (libc, libstdc++, zlib, libgomp, libcurl's own dependencies).
packages=(
  libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libsz2 libaec0 libcurl4 libnghttp2-14 librtmp1 libssh2-1 libpsl5
  libsndfile1-dev libsndfile1 libflac12 libogg0 libvorbis0a libvorbisenc2 libopus0 libmpg123-0 libmp3lame0
  libflac-dev libogg-dev libvorbis-dev libopus-dev libmpg123-dev
  libsoxr-dev libsoxr0
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
  libgloo-dev
)
(cd "$out/debs" && apt-get download "${packages[@]}" >/dev/null)
for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$out/root"; done
rm -rf "$out/root/usr/share/doc" "$out/root/usr/share/man" "$out/root/usr/share/lintian" "$out/root/usr/src"
# Static and Fortran HDF5 libraries: the build links the shared C library only.
rm -f "$out"/root/usr/lib/x86_64-linux-gnu/libhdf5_serial*.a "$out"/root/usr/lib/x86_64-linux-gnu/*fortran*

# A corpus: espeak-ng speaks LJSpeech transcripts (or license texts), then
# asr_preprocess packs it; built here because the GPU image has no espeak-ng.
bin=${ASR_BINARY_DIR:-build}
if [[ ! -f "$out/data/manifest.json" ]]; then
  scripts/make-synthetic-ljspeech --output "$out/corpus" --count "${GPU_CORPUS_CLIPS:-120}" --jobs "$(nproc)" --seed 7
  "$bin/asr_preprocess" --input "$out/corpus" --output "$out/data" --val 12 --test 12 --vocab-size 128 --shards 2
  rm -rf "$out/corpus"
fi
rm -rf "$out/debs"
size=$(du -sm "$out" | cut -f1)
echo "prepare: $out holds ${size} MiB (limit 60): $(du -sm "$out/root" | cut -f1) MiB of packages, $(du -sm "$out/data" | cut -f1) MiB of data"
((size <= 60)) || { echo "prepare: too large for the device tool's carry"; exit 1; }
