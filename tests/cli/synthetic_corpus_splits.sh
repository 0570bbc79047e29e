#!/usr/bin/env bash
# make-synthetic-ljspeech from the Debian license texts: asked for more clips
# than there are distinct sentences, it speaks some twice, and those must come
# first, so that the val and test splits asr_preprocess takes from the end of
# metadata.csv never share a transcript with training.
set -euo pipefail
src="${ASR_SOURCE_DIR:?}"
[[ -d /usr/share/common-licenses ]] || { echo "/usr/share/common-licenses missing: skipped"; exit 77; }
python3 - "$src/scripts/make-synthetic-ljspeech" <<'PY'
import importlib.machinery, importlib.util, re, sys
loader = importlib.machinery.SourceFileLoader("mksyn", sys.argv[1])
spec = importlib.util.spec_from_loader("mksyn", loader)
mksyn = importlib.util.module_from_spec(spec)
loader.exec_module(mksyn)

def norm(t):
    return " ".join(re.sub(r"[^a-z']", " ", t.lower()).split())

distinct = len(mksyn.license_sentences())
assert distinct > 300, f"only {distinct} license sentences"
# Fewer clips than sentences: every transcript distinct.
rows = mksyn.rows_from_licenses(distinct - 10, 0)
assert len({norm(r[2]) for r in rows}) == len(rows), "repeats although there are enough sentences"
# 150 repeats: the last distinct - 150 rows are spoken once and only there.
count = distinct + 150
rows = mksyn.rows_from_licenses(count, 0)
texts = [norm(r[2]) for r in rows]
assert len(rows) == count and len({r[0] for r in rows}) == count, "ids not unique"
held_out = distinct - 150
train = set(texts[: count - held_out])
leaked = [t for t in texts[count - held_out:] if t in train]
assert not leaked, f"{len(leaked)} held-out transcripts also in the first rows, e.g. {leaked[0]!r}"
assert len(set(texts[count - held_out:])) == held_out, "the last rows repeat among themselves"
print(f"ok: {distinct} distinct sentences, {count} clips, the last {held_out} never repeated")
PY
