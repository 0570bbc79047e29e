#!/usr/bin/env bash
# asr_preprocess with real processes and real signals: SIGINT, SIGTERM and
# SIGHUP mid-run exit 128+N and remove the temporary directory and the lock;
# after kill -9 the next run removes the dead run's temporary directory and
# says so; a second run on an output that a live run holds refuses, naming
# the holder's pid, and the first run's output comes out intact.
set -euo pipefail
set -m  # background jobs get their own process group, so they keep SIGINT
bin="${ASR_BINARY_DIR:?}/asr_preprocess"
src="${ASR_SOURCE_DIR:?}"
command -v espeak-ng >/dev/null || { echo "espeak-ng missing: skipped"; exit 77; }
work=$(mktemp -d /tmp/asr-signals.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$src/scripts/make-synthetic-ljspeech" --output "$work/in" --count 12 --jobs 2 2>/dev/null
# Bigger corpora from the same clips, hard-linked by one perl process (a
# fork per link would take longer than the runs): $2 rows in $1.
grow() {
  perl -e 'my ($src, $dir, $rows) = @ARGV;
    open(my $in, "<", "$src/metadata.csv") or die "$src/metadata.csv: $!";
    my @meta = map { chomp; [split /\|/] } <$in>;
    mkdir $dir; mkdir "$dir/wavs";
    open(my $out, ">", "$dir/metadata.csv") or die "$dir/metadata.csv: $!";
    for my $k (0 .. $rows - 1) {
      my ($id, undef, $norm) = @{$meta[$k % @meta]};
      link("$src/wavs/$id.wav", "$dir/wavs/R$k.wav") or die "link: $!";
      print $out "R$k|$norm|$norm\n";
    }' "$work/in" "$1" "$2"
}
grow "$work/big" 3000   # several seconds: stopped long before it ends
grow "$work/mid" 1000   # a few seconds: outlives the second run, then ends
args=(--val 2 --test 2 --vocab-size 60 --threads 2)

# Waits until the run writing $1 has a shard under way.
wait_for_shard() {
  for _ in $(seq 1 600); do
    compgen -G "$(dirname "$1")/.$(basename "$1").partial-*/train-*.h5" >/dev/null && return 0
    sleep 0.05
  done
  fail "no shard appeared for $1"
}
# No hidden .$1.lock or .$1.partial-* beside output $1.
nothing_left() {
  local left
  left=$(cd "$work" && ls -A | grep -F ".$1." || true)
  [[ -z "$left" ]] || fail "$2: left behind: $left"
}

# 1. Stop signals: 128 + N, nothing left.
for sig in INT TERM HUP; do
  "$bin" --input "$work/big" --output "$work/out" "${args[@]}" > "$work/$sig.log" 2>&1 &
  pid=$!; pids+=("$pid")
  wait_for_shard "$work/out"
  kill -s "$sig" "$pid"
  set +e; wait "$pid"; rc=$?; set -e
  want=$((128 + $(kill -l "$sig")))
  [[ $rc -eq $want ]] || { cat "$work/$sig.log"; fail "SIG$sig: expected exit $want, got $rc"; }
  grep -q "stopped by SIG$sig" "$work/$sig.log" || { cat "$work/$sig.log"; fail "SIG$sig: no 'stopped by' message"; }
  nothing_left out "SIG$sig"
  [[ ! -e "$work/out" ]] || fail "SIG$sig: an output appeared"
done

# 2. kill -9 leaves its temporary directory; the next run proves it dead and removes it.
"$bin" --input "$work/big" --output "$work/out" "${args[@]}" > "$work/kill.log" 2>&1 &
pid=$!; pids+=("$pid")
wait_for_shard "$work/out"
kill -9 "$pid"
{ wait "$pid"; } 2>/dev/null || true
partial="$work/.out.partial-$pid"
[[ -d "$partial" ]] || fail "kill -9 should leave $partial (the test relies on it)"
"$bin" --input "$work/in" --output "$work/out" "${args[@]}" > "$work/after.log" 2>&1 \
  || { cat "$work/after.log"; fail "the run after kill -9 must succeed"; }
grep -q "removed $partial, the temporary directory of an interrupted run (pid $pid on host" "$work/after.log" \
  || { cat "$work/after.log"; fail "the next run must say it removed $partial"; }
[[ ! -e "$partial" ]] || fail "$partial is still there"
[[ -f "$work/out/manifest.json" && ! -e "$work/.out.lock" ]] || fail "the run after kill -9 left no clean output"

# 3. Two runs on one new output: the second refuses, naming the first; the first completes.
"$bin" --input "$work/mid" --output "$work/two" "${args[@]}" > "$work/first.log" 2>&1 &
first=$!; pids+=("$first")
for _ in $(seq 1 200); do [[ -e "$work/.two.lock" ]] && break; sleep 0.05; done
for extra in "" --overwrite; do
  set +e
  # shellcheck disable=SC2086
  "$bin" --input "$work/in" --output "$work/two" "${args[@]}" $extra > "$work/second.log" 2>&1
  rc=$?
  set -e
  [[ $rc -eq 2 ]] || { cat "$work/second.log"; fail "second run ($extra): expected exit 2, got $rc"; }
  grep -q "is in use by pid $first on host" "$work/second.log" \
    || { cat "$work/second.log"; fail "second run ($extra) must name the first's pid $first"; }
done
wait "$first" || { cat "$work/first.log"; fail "the first run must complete"; }
grep -q '"accepted": 1000' "$work/two/manifest.json" || fail "the first run's output is not intact"
nothing_left two "after both runs"
echo "ok"
