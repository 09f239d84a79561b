#!/usr/bin/env bash
# Bad input end to end, at 1, 2, 3 and 4 ranks: every case must stop EVERY rank within
# seconds (no hang), with the same non-zero exit status, and a message naming the file,
# key or value; and must leave no partial output behind. No case may print HDF5's error stacks
# (HDF5-DIAG) or MPI-IO's read errors, and the cases run against an existing results file leave
# it byte for byte as it was (names, INI lines and values are checked before any stage runs).
# Uses the numpy-written fixture dataset tests/fixtures/algonauts_mini (copied, then broken).
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_FIXTURES:?}"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fails=0 passes=0
PY=/usr/bin/python3

fresh() { rm -rf "$W/ds"; cp -r "$RDML_FIXTURES/algonauts_mini" "$W/ds"; }

# expect NP CODE SUBSTRING -- rdmlearn args...
expect() {
  local np=$1 code=$2 sub=$3; shift 4
  rm -rf "$W/st"; mkdir -p "$W/st"
  local out rc
  out=$(RDML_STATUS_DIR="$W/st" timeout 60 "$MPIEXEC" --oversubscribe --allow-run-as-root \
        --bind-to none -n "$np" "$RDMLEARN" "$@" 2>&1)
  rc=$?
  local ok=1
  if [[ $rc -eq 124 ]]; then echo "HANG (timeout): np=$np rdmlearn $*"; ok=0; fi
  if [[ $rc -eq 0 ]]; then echo "expected failure, got success: np=$np rdmlearn $*"; ok=0; fi
  if ! grep -qF -- "$sub" <<<"$out"; then
    echo "message lacks \"$sub\": np=$np rdmlearn $*"; ok=0
  fi
  # HDF5's error stacks and MPI-IO's read errors are noise: the message is ours
  if grep -qE 'HDF5-DIAG|mca_fbtl|H5[A-Z][a-z_]*\.c line' <<<"$out"; then
    echo "HDF5/MPI-IO noise in the output: np=$np rdmlearn $*"; ok=0
  fi
  # a results file written before is left as it was
  if [[ -n "${RES_SUM:-}" && "$(md5sum < "$W/res.h5" 2>/dev/null)" != "$RES_SUM" ]]; then
    echo "the existing results file changed: np=$np rdmlearn $*"; ok=0
  fi
  local n sf; n=$(ls "$W/st" | wc -l)
  if [[ $n -ne $np ]]; then echo "only $n of $np ranks finished: rdmlearn $*"; ok=0; fi
  for sf in "$W"/st/*.status; do
    [[ -e "$sf" ]] || continue
    if [[ "$(cut -d" " -f1 "$sf")" != "$code" ]]; then
      echo "$(basename "$sf") exited $(cat "$sf"), expected $code: np=$np rdmlearn $*"; ok=0
    fi
  done
  if [[ $ok -eq 1 ]]; then passes=$((passes+1)); else fails=$((fails+1)); echo "$out" | head -5; fi
}

for np in 1 2 3 4; do
  fresh
  # configuration errors (exit 4)
  expect $np 4 'data.images' -- check "$W/ds" --set data.images=abc
  expect $np 4 '12x' -- check "$W/ds" --set data.images=12x
  expect $np 4 '1e999' -- check "$W/ds" --set synth.noise=1e999
  printf '[data]\nsubjcts = 1\n' > "$W/bad.ini"
  expect $np 4 'did you mean "subjects"' -- check "$W/ds" --config "$W/bad.ini"
  printf '[dta]\nroot = x\n' > "$W/bad2.ini"
  expect $np 4 'bad2.ini' -- check "$W/ds" --config "$W/bad2.ini"
  expect $np 5 'nope.ini' -- check "$W/ds" --config "$W/nope.ini"
  # usage errors (exit 3)
  expect $np 3 'did you mean "check"' -- chekc "$W/ds"
  # data errors (exit 7): missing subject lists the available ones; unknown ROI lists valid ones
  expect $np 7 'available: 1, 3' -- check "$W/ds" --set data.subjects=9
  expect $np 7 'V1v' -- check "$W/ds" --set data.rois=V9
  expect $np 5 'no_such_root' -- check "$W/no_such_root"
  # format errors (exit 6): truncated .npy, corrupt magic, pickle with a foreign opcode,
  # corrupt PNG in the LAST rank's share of images
  f=$W/ds/subj01/training_split/training_fmri/lh_training_fmri.npy
  truncate -s -7 "$f"
  expect $np 6 'lh_training_fmri.npy' -- check "$W/ds"
  fresh
  printf 'XXXXXX' | dd of="$f" bs=1 count=6 conv=notrunc status=none
  expect $np 6 'lh_training_fmri.npy' -- check "$W/ds"
  fresh
  m=$W/ds/subj01/roi_masks/mapping_floc-faces.npy
  $PY - "$m" <<'PYEOF'
import sys, numpy as np, pickle, os
# a pickle that would call os.system if executed: the reader must refuse it, not run it
class Evil:
    def __reduce__(self): return (os.system, ("echo pwned > /tmp/rdml_pwned",))
with open(sys.argv[1], "wb") as f:
    np.lib.format.write_array_header_1_0(f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
    pickle.dump(Evil(), f, protocol=3)
PYEOF
  rm -f /tmp/rdml_pwned
  expect $np 6 'mapping_floc-faces.npy' -- check "$W/ds"
  if [[ -e /tmp/rdml_pwned ]]; then echo "pickle was executed!"; fails=$((fails+1)); fi
  fresh
  last=$(ls "$W/ds/subj01/training_split/training_images/" | sort | tail -1)
  printf 'this is not a png' > "$W/ds/subj01/training_split/training_images/$last"
  expect $np 6 "$last" -- check "$W/ds" --set data.subjects=1
  # synth with a bad value leaves nothing behind
  expect $np 4 'synth.images' -- synth "$W/out$np" --set synth.images=-5
  if [[ -e "$W/out$np" ]]; then echo "synth left $W/out$np behind"; fails=$((fails+1)); fi
done

# ---- messages instead of library noise, checks before any work, an existing results file
# untouched (checked by expect for every case below)
fresh
E=(--set data.root="$W/ds" --set data.subjects=1 --set data.rois=V1)
"$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 1 "$RDMLEARN" embed "${E[@]}" \
  --set run.output="$W/res.h5" -q > "$W/res.log" 2>&1 || { echo "embed for res.h5 failed"; cat "$W/res.log"; fails=$((fails+1)); }
RES_SUM=$(md5sum < "$W/res.h5")
printf '[run]\nstages = rdm,embed,svm\n' > "$W/job.ini"
mkdir -p "$W/resdir"
for np in 1 2; do
  # a wrong embed.dataset: our message listing what the file holds, no HDF5-DIAG stack
  expect $np 7 "has no dataset /nope (its datasets: /subjects/subj01/embeddings/gabor (12 x 512)" -- \
    embed "${E[@]}" --set embed.backend=file --set embed.file="$W/res.h5" --set embed.dataset=/nope \
    --set embed.name=imported --set run.output="$W/res.h5"
  # run.output naming a folder: an I/O error naming it, no MPI-IO read errors
  expect $np 5 "$W/resdir is a folder, not a results file (hint: set run.output to a file path" -- \
    rdm "${E[@]}" --set run.output="$W/resdir"
  expect $np 5 "is a folder, not a results file" -- run "$W/job.ini" "${E[@]}" --set run.output="$W/resdir"
done
expect 2 4 '--set run.output=: empty: the results file needs a path' -- embed "${E[@]}" --set run.output=
expect 2 4 'out of range for [data] images: 12345678901234567890 is too large (allowed: >= 0' -- \
  check "${E[@]}" --set data.images=12345678901234567890
# names of HDF5 groups are checked before any stage runs (rdm would rewrite res.h5 first)
for name in . .. a/b; do
  expect 2 4 "--set pairs.experiment=$name" -- run "$W/job.ini" "${E[@]}" --set run.output="$W/res.h5" \
    --set pairs.experiment="$name"
done
expect 2 4 '"." cannot name an HDF5 group' -- run "$W/job.ini" "${E[@]}" --set run.output="$W/res.h5" --set embed.name=.
# INI lines iniparser would get wrong: errors naming the file and line
printf '[run]\nstages = rdm,embed,svm\n[data]\nimages = 5 \\\nstandardize = false\n' > "$W/cont.ini"
expect 2 4 "$W/cont.ini:4: line 4 ends in '\\'" -- run "$W/cont.ini" "${E[@]}" --set run.output="$W/res.h5"
printf '[run]\nstages = rdm\n[data]\nroot = "%s\n' "$W/ds" > "$W/quote.ini"
expect 2 4 "$W/quote.ini:4: [data] root: the value opens a quote (\") that is not closed" -- \
  run "$W/quote.ini" --set run.output="$W/res.h5"
printf '[run]\nstages = rdm\noutput = %s\\\n' "$W/res.h5" > "$W/last.ini"
expect 2 4 "$W/last.ini:3: the last line ends in '\\'" -- run "$W/last.ini" "${E[@]}"
# common spellings get hints of their own
expect 2 4 'correlation is 1 - Pearson r: write correlation' -- check "${E[@]}" --set rdm.metric=pearson
expect 2 4 'subj01 is subject 1 (write 1)' -- check "$W/ds" --set data.subjects=subj01
RES_SUM=

# a key without effect for the chosen backend: one warning, naming the key and why
fresh
out=$("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2 "$RDMLEARN" check "${E[@]}" \
      --set embed.layer=3 2>&1)
if [[ $? -eq 0 && $(grep -c 'warning: \[embed\] layer is set but has no effect with embed.backend = gabor (it applies only with embed.backend = clip-vit' <<<"$out") -eq 1 ]]; then
  passes=$((passes+1)); else echo "embed.layer with gabor: expected one warning"; echo "$out" | head -5; fails=$((fails+1)); fi
# images of different sizes: every stage resizes each image, so check accepts them as run does
fresh
first=$(ls "$W/ds/subj01/training_split/training_images/" | sort | head -1)
$PY -c "from PIL import Image; import sys; im = Image.open(sys.argv[1]); im.resize((im.width + 7, im.height + 3)).save(sys.argv[1])" \
  "$W/ds/subj01/training_split/training_images/$first"
out=$("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2 "$RDMLEARN" check "${E[@]}" 2>&1)
if [[ $? -eq 0 ]] && grep -q 'sizes from .* px, each resized by the stages' <<<"$out" &&
   "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2 "$RDMLEARN" embed "${E[@]}" \
     --set embed.backend=pixels --set embed.size=8 --set run.output="$W/mixed.h5" -q > "$W/mixed.log" 2>&1; then
  passes=$((passes+1)); else echo "mixed image sizes: check and embed must both accept them"; echo "$out" | tail -3; cat "$W/mixed.log"; fails=$((fails+1)); fi

# the unbroken fixture passes at every rank count
for np in 1 2 3 4; do
  fresh
  if timeout 60 "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n $np \
     "$RDMLEARN" check "$W/ds" >"$W/ok.log" 2>&1; then passes=$((passes+1))
  else echo "check of a good dataset failed at np=$np"; cat "$W/ok.log"; fails=$((fails+1)); fi
done

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
