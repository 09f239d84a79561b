#!/usr/bin/env bash
# The committed jobs/paper.ini, run as a user runs it (only the dataset, the embedding
# backend and the sizes of the networks swapped for small ones), on 2 ranks:
#  - all five experiments run; each takes the paper's image count, or all images of a
#    smaller subject (said in the log); the CNN runs on V1 with the V1 RDM its own rdm stage
#    adds, the others on all vertices; the siamese network and the MLP on all pairs;
#  - /meta/done records rdm:all and rdm:V1, and a second run skips every stage;
#  - jobs/paper-mlp-depths.ini adds the MLPs with h = 1, 2, 3 hidden layers to the same file,
#    reusing everything else;
#  - every job file in jobs/, with each of its experiment files, is a valid configuration;
#  - with 130 images the SVMs' pairs come from the first 100 of them when pairs.images = 100
#    (a --config override, as a user shrinks the paper's numbers), the networks from all.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none -n 2)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=130 --set synth.image_size=32 \
  --set synth.lh_vertices=400 --set synth.rh_vertices=400 --set synth.test_images=0 \
  --set synth.color_fraction=0.5 || { echo "synth failed"; exit 1; }
SMALL=(--set data.root="$W/ds" --set embed.backend=gabor --set run.output="$W/out/paper.h5"
       --set train.epochs=2 --set train.tower=32,16 --set train.head=16 --set train.cnn_size=20
       --set train.cnn_channels=4,8)
(cd "$RDML_SRC" && "${MPI[@]}" "$RDMLEARN" run jobs/paper.ini "${SMALL[@]}") >"$W/log1" 2>&1 \
  && ok || { bad "paper job"; tail -30 "$W/log1"; }
for e in svm-extremes svm-colors siamese mlp cnn; do
  grep -q "run: $e: stage .* done in" "$W/log1" && ok || bad "experiment $e did not run"
done
grep -q "pairs.images = 500 but /subjects/subj01/rdm/all has 130 images: using all 130" "$W/log1" \
  && grep -q "pairs.images = 1500 but" "$W/log1" && grep -q "pairs.images = 500 but /subjects/subj01/rdm/V1" "$W/log1" \
  && ok || bad "the image counts are not reported: $(grep pairs.images "$W/log1")"
grep -q "data.images = 2000 but subj01 has 130 images: using all of them" "$W/log1" && ok || bad "data.images cap"

$PY - "$W/out/paper.h5" <<'PYEOF' >"$W/py" 2>&1 && ok || { bad "paper results"; cat "$W/py"; }
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
done = f["/meta/done"].attrs
for k in ("rdm:all", "rdm:V1", "embed:gabor", "svm:extremes", "svm:colors", "train:siamese:siamese",
          "train:mlp:mlp", "train:cnn:cnn", "report"):
    assert k in done, (k, list(done))
assert f["/subjects/subj01/rdm/all"].shape == (130, 130) and f["/subjects/subj01/rdm/V1"].shape == (130, 130)
def pairs(exp, sel):
    return f[f"/experiments/{exp}/pairs/subj01/{sel}"]
for exp, sel, model in (("extremes", "all", "svm"), ("colors", "all", "svm"), ("siamese", "all", "siamese"),
                        ("mlp", "all", "mlp"), ("cnn", "V1", "cnn")):
    g = pairs(exp, sel)
    assert g.attrs["n_images"] == 130, (exp, g.attrs["n_images"])
    assert f"/experiments/{exp}/{model}/subj01/{sel}" in f, (exp, model)
    assert f[f"/experiments/{exp}/pairs"].attrs["models"] == model
for exp in ("siamese", "mlp", "cnn"):   # all pairs i < j
    assert len(pairs(exp, "V1" if exp == "cnn" else "all")["ij"]) == 130 * 129 // 2, exp
assert pairs("extremes", "all")["fold"][()].max() == 0            # one holdout split
assert pairs("cnn", "V1")["fold"][()].max() == 0
assert pairs("siamese", "all")["fold"][()].max() == 4             # 5-fold
assert "/experiments/cnn/pairs/subj01/all" not in f and "/experiments/siamese/pairs/subj01/V1" not in f
PYEOF

sum1=$(md5sum <"$W/out/paper.h5")
(cd "$RDML_SRC" && "${MPI[@]}" "$RDMLEARN" run jobs/paper.ini "${SMALL[@]}") >"$W/log2" 2>&1 || bad "second run"
n=$(grep -c "is up to date in" "$W/log2")
[ "$n" -eq 8 ] && grep -q "the report is up to date" "$W/log2" && [ "$(md5sum <"$W/out/paper.h5")" = "$sum1" ] \
  && ok || { bad "second run recomputed ($n stages skipped)"; grep '^run:' "$W/log2"; }

# the paper's MLP depths h = 0..3 in the same file: only h = 1, 2, 3 run
(cd "$RDML_SRC" && "${MPI[@]}" "$RDMLEARN" run jobs/paper-mlp-depths.ini "${SMALL[@]}") >"$W/log4" 2>&1 \
  || { bad "paper-mlp-depths"; tail "$W/log4"; }
n=$(grep -c "run: mlp-h[123]: stage train done" "$W/log4")
[ "$n" -eq 3 ] && grep -q "run: mlp: stage train is up to date" "$W/log4" && grep -q "run: stage embed is up to date" "$W/log4" \
  && ok || { bad "paper-mlp-depths ran $n deeper MLPs"; grep '^run:' "$W/log4"; }
$PY - "$W/out/paper.h5" <<'PYEOF' >"$W/py" 2>&1 && ok || { bad "MLP depths"; cat "$W/py"; }
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
for exp, w in (("mlp", [512]), ("mlp-h1", [512, 256]), ("mlp-h2", [512, 256, 128]), ("mlp-h3", [512, 256, 128, 64])):
    g = f[f"/experiments/{exp}/mlp/subj01/all"]
    got = [int(x) for x in np.atleast_1d(g.attrs["mlp_widths"])]
    assert got == w and g.attrs["n_folds_finished"] == 5, (exp, got)
PYEOF

# a --config override shrinks the SVMs' image counts: their pairs come from the first 100 images
printf '[pairs]\nimages = 100\n' >"$W/small.ini"
(cd "$RDML_SRC" && "${MPI[@]}" "$RDMLEARN" run jobs/paper.ini "${SMALL[@]}" --config "$W/small.ini" \
   --set run.stages=svm,report) >"$W/log3" 2>&1 || { bad "--config pairs.images"; tail "$W/log3"; }
$PY - "$W/out/paper.h5" <<'PYEOF' >"$W/py" 2>&1 && ok || { bad "pairs.images = 100"; cat "$W/py"; }
import sys, h5py
f = h5py.File(sys.argv[1], "r")
for exp in ("extremes", "colors"):
    g = f[f"/experiments/{exp}/pairs/subj01/all"]
    assert g.attrs["n_images"] == 100 and g["ij"][()].max() < 100 and g["fold"].shape == (100,), exp
assert f["/experiments/siamese/pairs/subj01/all"].attrs["n_images"] == 130
PYEOF

# every committed job file, and each job with each of its experiment files, is a valid configuration
for j in "$RDML_SRC"/jobs/*.ini; do
  (cd "$RDML_SRC" && "$RDMLEARN" config --config "$j" >/dev/null 2>"$W/cfgerr") && ok || { bad "$j: $(cat "$W/cfgerr")"; continue; }
  exps=$(cd "$RDML_SRC" && "$RDMLEARN" config --config "$j" 2>/dev/null | sed -n 's/^experiments *= *//p' | tr -d '"' | tr ',' ' ')
  for e in $exps; do
    (cd "$RDML_SRC" && "$RDMLEARN" config --config "$j" --config "$(dirname "$j")/$e" >/dev/null 2>"$W/cfgerr") \
      && ok || bad "$j + $e: $(cat "$W/cfgerr")"
  done
done

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
