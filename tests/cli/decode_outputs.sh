#!/usr/bin/env bash
# Output that cannot be written is an error, never exit 0 with the results
# lost: a full standard output, -o and --report on a full filesystem (a
# 16 KiB tmpfs this test mounts, so it needs root), an output path that is a
# device, a FIFO or a directory, and an output path that is one of the
# inputs (which must come out unchanged).
source "$(dirname "$0")/decode_common.inc"
make_checkpoint
args=(--checkpoint "$work/ckpt" --refs "$work/refs.tsv" --format jsonl)

# 1. Standard output that takes nothing: /dev/full (ENOSPC on every write).
stdout=/dev/full run_decode "$work/full" "${args[@]}" "$work/a.wav"
[[ $status -eq 3 ]] || { cat "$work/full.err"; fail "stdout to /dev/full exited $status, expected 3"; }
grep -q "cannot write the transcripts to standard output: No space left on device" "$work/full.err" ||
  { cat "$work/full.err"; fail "no message about standard output"; }
# Even --help checks its output.
status=0
"$bin/asr_decode" --help > /dev/full 2> "$work/help.err" || status=$?
[[ $status -ne 0 ]] || fail "--help > /dev/full exited 0"
grep -q "cannot write to standard output" "$work/help.err" || { cat "$work/help.err"; fail "--help: no message"; }

# 2. -o and --report on a full filesystem: exit 3, the file named, no file
# or temporary left behind.
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: mounting a tmpfs needs root (the full-filesystem cases)"
  exit 77
fi
mkdir -p "$work/tiny"
if ! mount -t tmpfs -o size=16k tmpfs "$work/tiny" 2> "$work/mount.err"; then
  cat "$work/mount.err"
  echo "SKIP: mount -t tmpfs is not allowed here (the full-filesystem cases)"
  exit 77
fi
cleanup_hooks+=("umount '$work/tiny'")
cat /dev/zero > "$work/tiny/filler" 2>/dev/null || true  # fills every block
[[ $(stat -c %s "$work/tiny/filler") -gt 0 ]] || fail "could not fill the tmpfs"
for flag in -o --report; do
  run_decode "$work/tmpfs" "${args[@]}" "$flag" "$work/tiny/out.txt" "$work/a.wav"
  [[ $status -eq 3 ]] || { cat "$work/tmpfs.err"; fail "$flag on a full tmpfs exited $status, expected 3"; }
  grep -q "$work/tiny/out.txt.*No space left on device" "$work/tmpfs.err" ||
    { cat "$work/tmpfs.err"; fail "$flag on a full tmpfs: no message naming the file"; }
  [[ -z $(ls -A "$work/tiny" | grep -v '^filler$') ]] || { ls -la "$work/tiny"; fail "$flag left a file on the full tmpfs"; }
done

# 3. Outputs that are not regular files: refused before decoding, with a
# hint to redirect standard output instead. A character device of our own
# (the null device's numbers), so a regression cannot replace /dev/null.
mknod "$work/nulldev" c 1 3
mkfifo "$work/out.fifo"
for target in "$work/nulldev" "$work/out.fifo" "$work"; do
  expect_decode 2 "redirect standard output" "${args[@]}" -o "$target" "$work/a.wav"
  expect_decode 2 "--report $target is" "${args[@]}" --report "$target" "$work/a.wav"
done
[[ -c $work/nulldev && -p $work/out.fifo ]] || fail "an output that is not a regular file was replaced"
expect_decode 2 "does not exist; create it first" "${args[@]}" -o "$work/no/such/dir/out.txt" "$work/a.wav"
expect_decode 2 "-o and --report both name" "${args[@]}" -o "$work/same.txt" --report "$work/same.txt" "$work/a.wav"

# 4. An output that is one of the inputs: refused, the input unchanged
# (also through a hard link and a symbolic link).
ln "$work/refs.tsv" "$work/refs-hardlink.tsv"
ln -s "$work/lm.txt" "$work/lm-symlink.txt"
sums=$(cd "$work" && md5sum a.wav ckpt list.txt refs.tsv lm.txt)
flag=-o
for target in "$work/a.wav" "$work/ckpt" "$work/list.txt" "$work/refs.tsv" "$work/refs-hardlink.tsv" "$work/lm.txt" \
              "$work/lm-symlink.txt"; do
  expect_decode 2 "is the same file as the input" --checkpoint "$work/ckpt" --refs "$work/refs.tsv" --beam 4 \
    --lm-text "$work/lm.txt" --list "$work/list.txt" "$flag" "$target" "$work/a.wav"
  [[ $flag == -o ]] && flag=--report || flag=-o  # both flags, alternately
done
expect_decode 2 "is the same file as the input" --checkpoint "$work/ckpt" --data "$work/data" --split val \
  -o "$work/data/manifest.json"
[[ $sums == "$(cd "$work" && md5sum a.wav ckpt list.txt refs.tsv lm.txt)" ]] || fail "an input was changed"

# 5. And a good run writes both files and exits 0.
expect_decode 0 "1 files decoded" "${args[@]}" -o "$work/out.jsonl" --report "$work/report.txt" "$work/a.wav"
grep -q '"id":"a"' "$work/out.jsonl" || fail "no transcript in -o"
grep -q "id: (a)" "$work/report.txt" || fail "no report"
echo "PASS"
