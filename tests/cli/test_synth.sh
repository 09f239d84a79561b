#!/usr/bin/env bash
# `rdmlearn synth` end to end: the same dataset, byte for byte, from 1, 2, 3 and 4 ranks; the
# result loads and passes tools/check_synth.py (numpy/Pillow as in the Algonauts tutorial);
# fsaverage masks when asked; an existing dataset is never overwritten; a bad value is a
# readable error and leaves nothing behind.
# Environment (set by CTest): RDMLEARN, MPIEXEC, RDML_SRC.
set -u
: "${RDMLEARN:?set RDMLEARN to the rdmlearn binary}"
: "${MPIEXEC:=mpiexec}"
: "${RDML_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
PY=/usr/bin/python3
T=$(mktemp -d /tmp/rdml_cli_synth.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
run() { "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n "$1" "${@:2}"; }

SET=(--set synth.images=60 --set synth.image_size=32 --set synth.subjects=3
     --set synth.lh_vertices=400 --set synth.rh_vertices=450 --set synth.test_images=5
     --set run.seed=7 -q)

for k in 1 2 3 4; do
    run "$k" "$RDMLEARN" synth "$T/np$k" "${SET[@]}" > "$T/np$k.log" 2>&1 \
        || { fail "synth on $k ranks exited $?"; cat "$T/np$k.log" >&2; }
done
for k in 2 3 4; do
    if diff -r "$T/np1" "$T/np$k" > "$T/diff$k.txt"; then
        echo "ok: $k ranks give the same bytes as 1 rank"
    else
        fail "$k ranks differ from 1 rank:"; head -5 "$T/diff$k.txt" >&2
    fi
done
# the resolved configuration is stored with the dataset
grep -qE '^images *= *60' "$T/np1/synth_truth/config.ini" && grep -qE '^seed *= *7' "$T/np1/synth_truth/config.ini" \
    && echo "ok: resolved config stored" || fail "synth_truth/config.ini lacks the resolved config"
ls -a "$T" | grep -q 'tmp-' && fail "a temporary folder was left behind: $(ls -a "$T")"

"$PY" "$RDML_SRC/tools/check_synth.py" "$T/np2" || fail "check_synth.py rejected the dataset"

# A different seed gives a different dataset.
run 1 "$RDMLEARN" synth "$T/seed8" "${SET[@]}" --set run.seed=8 > /dev/null 2>&1 \
    || fail "synth with seed 8 failed"
cmp -s "$T/np1/subj01/training_split/training_fmri/lh_training_fmri.npy" \
       "$T/seed8/subj01/training_split/training_fmri/lh_training_fmri.npy" \
    && fail "seeds 7 and 8 wrote the same fMRI"

# fsaverage-space masks, checked against the challenge-space ones.
run 2 "$RDMLEARN" synth "$T/fs" --set synth.subjects=1 --set synth.images=40 \
    --set synth.image_size=24 --set synth.fsaverage=true -q > "$T/fs.log" 2>&1 \
    || { fail "synth with fsaverage=true failed"; cat "$T/fs.log" >&2; }
[ -f "$T/fs/subj01/roi_masks/rh.all-vertices_fsaverage_space.npy" ] \
    || fail "fsaverage masks missing"
"$PY" "$RDML_SRC/tools/check_synth.py" "$T/fs" --min-rho 0 > /dev/null \
    || fail "check_synth.py rejected the fsaverage dataset"

# Refusal to overwrite: non-zero exit, a message naming the folder, nothing changed.
before=$(cd "$T/np1" && find . -type f -exec md5sum {} + | sort | md5sum)
if run 2 "$RDMLEARN" synth "$T/np1" "${SET[@]}" > "$T/over.log" 2>&1; then
    fail "synth into an existing dataset succeeded"
fi
grep -q "subj01 already exists" "$T/over.log" || { fail "no 'already exists' message:"; cat "$T/over.log" >&2; }
after=$(cd "$T/np1" && find . -type f -exec md5sum {} + | sort | md5sum)
[ "$before" = "$after" ] || fail "the existing dataset changed"
ls -a "$T/np1" | grep -q 'synth-tmp' && fail "a temporary folder was left in $T/np1"

# A bad value: readable error, nothing created.
if run 1 "$RDMLEARN" synth "$T/bad" --set synth.images=5 -q > "$T/bad.log" 2>&1; then
    fail "synth.images=5 was accepted"
fi
grep -q "synth.images" "$T/bad.log" || { fail "no message naming synth.images:"; cat "$T/bad.log" >&2; }
[ -e "$T/bad" ] && fail "$T/bad was created despite the error"

if [ "$fails" -ne 0 ]; then
    echo "test_synth.sh: $fails failure(s)" >&2
    exit 1
fi
echo "test_synth.sh: all checks passed"
