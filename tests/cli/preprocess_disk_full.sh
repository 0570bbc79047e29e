#!/usr/bin/env bash
# asr_preprocess on filesystems too small for its output: tmpfs mounts sized
# so the run fails at each stage (the locks, tokenizer.model, an HDF5 shard,
# rejects.tsv or manifest.json). Every one must end with exit 3 (a file that
# cannot be written), never a signal (libhdf5's exit-time cleanup crashed
# after a failed close: exit 139), name the file and the system's reason, and
# leave no output, temporary directory or lock behind.
set -euo pipefail
bin="${ASR_BINARY_DIR:?}/asr_preprocess"
src="${ASR_SOURCE_DIR:?}"
command -v espeak-ng >/dev/null || { echo "espeak-ng missing: skipped"; exit 77; }
work=$(mktemp -d /tmp/asr-diskfull.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mount -t tmpfs -o size=64m tmpfs "$mnt" 2>/dev/null \
  || { echo "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): skipped"; exit 77; }

"$src/scripts/make-synthetic-ljspeech" --output "$work/in" --count 12 --jobs 2 2>/dev/null
run() { "$bin" --input "$work/in" --output "$mnt/out" --val 2 --test 2 --vocab-size 60 --threads 2 "$@"; }

# What a complete output occupies on tmpfs (whole pages), from a run with room.
run > "$work/ok.log" 2>&1 || { cat "$work/ok.log"; fail "the run with room must succeed"; }
need_kb=$(du -sk "$mnt/out" | cut -f1)
umount "$mnt"

stages=""
for size_kb in 4 8 64 $((need_kb / 2)) $((need_kb - 4)) "$need_kb"; do
  mount -t tmpfs -o "size=${size_kb}k" tmpfs "$mnt"
  set +e
  timeout 120 "$bin" --input "$work/in" --output "$mnt/out" --val 2 --test 2 --vocab-size 60 --threads 2 \
    > "$work/run.log" 2>&1
  rc=$?
  set -e
  log=$(cat "$work/run.log")
  [[ $rc -lt 128 ]] || { echo "$log"; fail "${size_kb}k: ended by a signal (exit $rc)"; }
  [[ $rc -eq 3 ]] || { echo "$log"; fail "${size_kb}k: expected exit 3 (cannot write), got $rc"; }
  grep -q "No space left on device" <<< "$log" || { echo "$log"; fail "${size_kb}k: no 'No space left on device'"; }
  grep -q "error $mnt/\|error cannot write $mnt/\|error cannot write the lock file $mnt/" <<< "$log" \
    || { echo "$log"; fail "${size_kb}k: the error must name the file under $mnt"; }
  grep -q "unexpected failure" <<< "$log" && fail "${size_kb}k: reported as an unexpected failure"
  left=$(ls -A "$mnt")
  [[ -z "$left" ]] || fail "${size_kb}k: left behind in $mnt: $left"
  stages+="$(grep -o 'lock file\|tokenizer.model\|[a-z]*-[0-9]*-of-[0-9]*.h5\|rejects.tsv\|manifest.json' <<< "$log" | head -1) "
  umount "$mnt"
done
echo "failed at: $stages"
# The sizes must reach every stage, or the test no longer covers them.
for stage in "lock file\|tokenizer.model" "\.h5" "rejects.tsv\|manifest.json"; do
  grep -q "$stage" <<< "$stages" || fail "no size made the run fail at $stage (stages: $stages)"
done
echo "ok"
