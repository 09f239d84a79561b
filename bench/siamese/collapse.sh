#!/usr/bin/env bash
# How often does a siamese fit collapse to a constant prediction? Over N synthetic subjects
# (rdmlearn synth with run.seed = 1..N: 300 images, V1, gabor embeddings), train every
# configuration given on the command line (5 folds, pairs.set = all and extremes, training
# run.seed = the synth seed) and count the collapsed folds: status "collapsed..." (builds
# that flag it), or, for any build, test predictions whose std is below 1% of the targets'.
# Also prints the mean test R^2 over all folds and over the folds that did not collapse, and
# the mean fraction of dead (never active) hidden ReLU units where the build records it.
#
#   bench/siamese/collapse.sh [-n N] [-w WORKDIR] [-b RDMLEARN] [-o FOLDS.txt] 'label|--set k=v ...' ...
#   bench/siamese/collapse.sh -n 20 'old|--set train.lr=0.002 --set train.warmup=0' 'new|'
#
# Output of the command in docs/nn.md ("Collapsed folds"): a table per configuration with
# the folds, the collapsed ones (by the spread test / by status), the subjects hit, folds with
# spread < 0.1, the mean test R^2 with and without the collapsed folds, the dead-unit fraction.
#
# Words NAME=VALUE in a configuration are set in the environment of its runs.
# Serial, one rank; about 5 s per configuration, subject and pair set on one core.
set -uo pipefail
N=10 W=/tmp/rdml-collapse OUT= RDMLEARN=${RDMLEARN:-$(dirname "$0")/../../build/rdmlearn}
while getopts n:w:b:o: o; do
  case $o in n) N=$OPTARG ;; w) W=$OPTARG ;; b) RDMLEARN=$OPTARG ;; o) OUT=$OPTARG ;; *) exit 2 ;; esac
done
OUT=${OUT:-$W/folds.txt}  # one line per fold: config seed set fold status spread r2 dead
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "give at least one 'label|--set ...' configuration" >&2; exit 2; }
PY=/usr/bin/python3
mkdir -p "$W"
for s in $(seq 1 "$N"); do
  [ -f "$W/base$s.h5" ] && continue
  rm -rf "$W/ds$s"
  "$RDMLEARN" synth "$W/ds$s" -q --set run.seed="$s" --set synth.subjects=1 --set synth.images=300 \
    --set synth.test_images=0 &&
  "$RDMLEARN" rdm "$W/ds$s" -q --set data.rois=V1 --set run.output="$W/tmp$s.h5" &&
  "$RDMLEARN" embed "$W/ds$s" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/tmp$s.h5" &&
  mv "$W/tmp$s.h5" "$W/base$s.h5" || { echo "preparing subject $s failed" >&2; exit 1; }
done
for cfg in "$@"; do
  label=${cfg%%|*} args=() envs=()
  for a in ${cfg#*|}; do  # NAME=VALUE words go to the environment, the rest to rdmlearn
    if [[ $a =~ ^[A-Z_][A-Z0-9_]*= ]]; then envs+=("$a"); else args+=("$a"); fi
  done
  for s in $(seq 1 "$N"); do
    cp "$W/base$s.h5" "$W/run$$.h5"
    for set in all extremes; do
      env "${envs[@]}" "$RDMLEARN" train "$W/ds$s" -q --set data.rois=V1 --set embed.backend=gabor --set run.seed="$s" \
        --set pairs.set=$set --set pairs.experiment=$set --set run.output="$W/run$$.h5" "${args[@]}" \
        || echo "train failed: $label seed $s $set" >&2
    done
    $PY - "$W/run$$.h5" "$label" "$s" <<'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
for set in ("all", "extremes"):
    g = f[f"/experiments/{set}/siamese/subj01/V1"]
    for k in range(int(g.attrs["n_folds"])):
        fo = g[f"fold_{k}"]
        st = fo.attrs["status"]
        st = st.decode() if isinstance(st, bytes) else str(st)
        p, t = fo["pred"][()], fo["target"][()]
        spread = p.std() / t.std() if np.all(np.isfinite(p)) else float("nan")
        dead = fo.attrs.get("dead_unit_fraction", float("nan"))
        print(sys.argv[2], sys.argv[3], set, k, st.split(":")[0].split(" ")[0], f"{spread:.4g}",
              f"{fo.attrs['r2']:.4f}", f"{float(dead):.4f}")
PYEOF
  done
done >"$OUT"
rm -rf "$W/run$$".*
$PY - "$OUT" "$N" <<'PYEOF'
import sys, collections
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = collections.OrderedDict()
for r in rows: by.setdefault(r[0], []).append(r)
print(f"{sys.argv[2]} synthetic subjects (300 images, V1, gabor) x pairs.set all/extremes x 5 folds")
print(f"{'config':<14}{'folds':>6}{'collapsed':>10}{'flagged':>8}{'subjects hit':>13}{'spread<0.1':>11}"
      f"{'mean R2':>9}{'R2 w/o coll.':>13}{'dead units':>11}")
for lab, rs in by.items():
    import math
    spread = [float(r[5]) for r in rs]
    col = [r for r in rs if not (float(r[5]) > 0.01)]
    flagged = sum(r[4] == "collapsed" for r in rs)
    hit = len({r[1] for r in col})
    r2 = [float(r[6]) for r in rs]
    r2ok = [float(r[6]) for r in rs if float(r[5]) > 0.01]
    dead = [float(r[7]) for r in rs if not math.isnan(float(r[7]))]
    print(f"{lab:<14}{len(rs):>6}{len(col):>10}{flagged:>8}{hit:>13}{sum(s < 0.1 for s in spread):>11}"
          f"{sum(r2)/len(r2):>9.3f}{(sum(r2ok)/len(r2ok) if r2ok else float('nan')):>13.3f}"
          f"{(sum(dead)/len(dead) if dead else float('nan')):>11.3f}")
PYEOF
