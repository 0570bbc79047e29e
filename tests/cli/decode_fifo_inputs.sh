#!/usr/bin/env bash
# asr_decode refuses every input path that is not a regular file (a FIFO,
# a device, a directory) by its type, before opening it: reading a FIFO
# blocks until a writer comes, a device may never end. Each case runs under
# a timeout, so a regression fails here instead of hanging.
source "$(dirname "$0")/decode_common.inc"
make_checkpoint
mkfifo "$work/fifo.wav" "$work/fifo.txt"

# Audio: a per-input failure (exit 3, named), the other input still decoded.
expect_decode 3 "audio input $work/fifo.wav is a FIFO" --checkpoint "$work/ckpt" "$work/a.wav" "$work/fifo.wav"
grep -q "^T0001	\|^a	" "$work/last.out" || fail "the regular input was not decoded next to the FIFO"
expect_decode 3 "is a character device" --checkpoint "$work/ckpt" /dev/zero
expect_decode 3 "is a directory" --checkpoint "$work/ckpt" "$work"

# Files named by flags: refused before the checkpoint is even loaded.
expect_decode 3 "checkpoint $work/fifo.txt is a FIFO" --checkpoint "$work/fifo.txt" "$work/a.wav"
expect_decode 3 "checkpoint /dev/zero is a character device" --checkpoint /dev/zero "$work/a.wav"
expect_decode 3 "--list $work/fifo.txt is a FIFO" --checkpoint "$work/ckpt" --list "$work/fifo.txt"
expect_decode 3 "--lm-text $work/fifo.txt is a FIFO" --checkpoint "$work/ckpt" --beam 4 --lm-text "$work/fifo.txt" "$work/a.wav"
expect_decode 3 "--refs $work/fifo.txt is a FIFO" --checkpoint "$work/ckpt" --refs "$work/fifo.txt" "$work/a.wav"
expect_decode 3 "--lm-text /dev/zero is a character device" --checkpoint "$work/ckpt" --beam 4 --lm-text /dev/zero "$work/a.wav"
# A path in --list is an audio input like any other.
printf '%s\n%s\n' "$work/fifo.wav" "$work/b.wav" > "$work/fifo-list.txt"
expect_decode 3 "audio input $work/fifo.wav is a FIFO" --checkpoint "$work/ckpt" --list "$work/fifo-list.txt"

# --data: the manifest, the tokenizer and a shard, each replaced by a FIFO.
for name in manifest.json tokenizer.model "$(cd "$work/data" && ls val-*.h5 | head -n 1)"; do
  rm -rf "$work/d"
  cp -r "$work/data" "$work/d"
  rm "$work/d/$name"
  mkfifo "$work/d/$name"
  expect_decode 3 "$work/d/$name is a FIFO" --checkpoint "$work/ckpt" --data "$work/d" --split val
  expect_decode 3 "$work/d/$name is a FIFO" --checkpoint "$work/ckpt" --data "$work/d" --split val --no-verify
done

# Missing files named by flags are usage errors (2) that name the path.
expect_decode 2 "--lm-text $work/none.txt: no such file" --checkpoint "$work/ckpt" --beam 4 --lm-text "$work/none.txt" "$work/a.wav"
expect_decode 2 "--refs $work/none.txt: no such file" --checkpoint "$work/ckpt" --refs "$work/none.txt" "$work/a.wav"
echo "PASS"
