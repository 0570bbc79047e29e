#!/usr/bin/env bash
# An independent reader: h5py opens every shard, checks the documented layout
# (docs/data-format.md) and compares the stored audio with sox's own
# resampling of each source file (> 30 dB SNR). Runs on a synthetic corpus,
# and on ../shared/ljspeech-real32 when present.
set -euo pipefail
bin="${ASR_BINARY_DIR:?}/asr_preprocess"
src="${ASR_SOURCE_DIR:?}"
py=/usr/bin/python3
$py -c "import h5py, numpy" 2>/dev/null || { echo "python3-h5py missing: skipped"; exit 77; }
command -v sox >/dev/null && command -v espeak-ng >/dev/null || { echo "sox/espeak-ng missing: skipped"; exit 77; }
work=$(mktemp -d /tmp/asr-h5py.XXXXXX)
trap 'rm -rf "$work"' EXIT

check() {  # check CORPUS OUT
  $py - "$1" "$2" <<'PY'
import json, os, subprocess, sys, zlib
import h5py, numpy as np
corpus, out = sys.argv[1], sys.argv[2]
m = json.load(open(os.path.join(out, "manifest.json")))
assert m["format_version"] == 1 and m["tokenizer"]["blank_id"] == 0
rows = {}
for line in open(os.path.join(corpus, "metadata.csv"), encoding="utf-8"):
    f = line.rstrip("\n").split("|")
    rows[f[0]] = f[2]
seen, worst = set(), 1e9
for split, info in m["splits"].items():
    for sh in info["shards"]:
        with h5py.File(os.path.join(out, sh["file"]), "r") as h:
            sr = int(h.attrs["sample_rate"])
            assert sr == m["sample_rate"]
            n = len(h["ids"])
            assert n == sh["utterances"]
            audio, off = h["audio"][:], h["offsets"][:]
            assert audio.dtype == np.int16 and off.dtype == np.int64 and len(off) == n + 1
            assert off[0] == 0 and off[-1] == len(audio) and np.all(np.diff(off) > 0)
            tok, toff = h["tokens"][:], h["token_offsets"][:]
            assert tok.dtype == np.int32 and len(toff) == n + 1 and toff[-1] == len(tok) and tok.min() > 0
            ids, text = h["ids"].asstr()[:], h["text"].asstr()[:]
            for i in range(n):
                uid = ids[i]
                assert uid not in seen, uid
                seen.add(uid)
                assert text[i] == rows[uid], uid
                ref = subprocess.run(["sox", os.path.join(corpus, "wavs", uid + ".wav"), "-t", "raw", "-e", "signed",
                                      "-b", "16", "-r", str(sr), "-"], capture_output=True, check=True).stdout
                ref = np.frombuffer(ref, dtype=np.int16).astype(np.float64)
                got = audio[off[i]:off[i + 1]].astype(np.float64)
                k = min(len(ref), len(got))
                assert abs(len(ref) - len(got)) <= 1, (uid, len(ref), len(got))
                snr = 10 * np.log10(np.sum(ref[:k] ** 2) / max(np.sum((ref[:k] - got[:k]) ** 2), 1e-9))
                worst = min(worst, snr)
assert seen == set(rows), sorted(set(rows) - seen)[:5]
assert worst > 30, f"stored audio differs from sox resampling: {worst:.1f} dB"
print(f"{out}: {len(seen)} utterances read by h5py, worst SNR vs sox {worst:.1f} dB")
PY
}

"$src/scripts/make-synthetic-ljspeech" --output "$work/syn" --count 24 --voices en-us,en-gb --jobs 2 2>/dev/null
"$bin" --input "$work/syn" --output "$work/syn-out" --val 3 --test 3 --vocab-size 60 --strict --log-level warn
check "$work/syn" "$work/syn-out"

real="${ASR_SHARED_DIR:-}/ljspeech-real32"
if [[ -f "$real/metadata.csv" ]]; then
  "$bin" --input "$real" --output "$work/real-out" --val 4 --test 4 --vocab-size 100 --strict --log-level warn
  check "$real" "$work/real-out"
else
  echo "../shared/ljspeech-real32 absent: real clips not checked"
fi
