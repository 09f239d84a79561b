#!/usr/bin/env bash
# Bad input end to end, at 1, 2, 3 and 4 ranks: every case must stop EVERY rank within
# seconds (no hang), with the same non-zero exit status, and a message naming the file,
# key or value; and must leave no partial output behind.
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

# the unbroken fixture passes at every rank count
for np in 1 2 3 4; do
  fresh
  if timeout 60 "$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n $np \
     "$RDMLEARN" check "$W/ds" >"$W/ok.log" 2>&1; then passes=$((passes+1))
  else echo "check of a good dataset failed at np=$np"; cat "$W/ok.log"; fails=$((fails+1)); fi
done

echo "$passes passed, $fails failed"
[[ $fails -eq 0 ]]
