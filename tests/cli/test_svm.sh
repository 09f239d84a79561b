#!/usr/bin/env bash
# `rdmlearn svm` end to end on a synthetic dataset (synth -> rdm -> embed gabor -> svm):
#  - results under /experiments/<name> are bit-identical at 1, 2, 3 and 4 ranks (every
#    dataset and attribute except the fit time), for kfold/extremes and holdout/colors;
#  - one holdout fit of more than 4096 pairs runs on a group of all the ranks (its SMO split,
#    rdml_svm_fit_comm): identical results files at 1, 2 and 3 ranks (tools/compare_results.py);
#  - the stored folds are image-disjoint, the metrics agree with sklearn.metrics computed
#    from the stored labels and decision values, and one fold's SVM agrees with
#    sklearn.svm.SVC retrained on the same concatenated pairs (>= 99.5% predictions);
#  - pairs.images = 60 builds the pairs among the first 60 images from the RDM's leading block;
#  - colours at pairs.color_fraction = 0.4: the stored classes and shares equal the paper's
#    classify_images_rgb (tools/paper_colors.py) and the pairs its list, colour-a images first;
#  - bad input (one class only, fewer images than folds, a colour with no images, the
#    pair-level split without its flag, missing embeddings) fails with the numbers and
#    leaves the results file untouched.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=90 --set synth.image_size=24 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 \
  --set synth.color_fraction=0.5 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set run.output="$W/base.h5" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/base.h5" \
  || { echo "embed failed"; exit 1; }
COMMON=(--set data.rois=V1 --set embed.backend=gabor -q)

for np in 1 2 3 4; do
  cp "$W/base.h5" "$W/np$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.k=8 --set run.output="$W/np$np.h5" \
    && ok || bad "svm kfold at $np ranks"
  "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.set=colors --set split.scheme=holdout \
    --set pairs.experiment=colors --set svm.kernel=rbf --set run.output="$W/np$np.h5" \
    && ok || bad "svm colors holdout at $np ranks"
done

# one holdout C-SVC fit of more than 4096 training pairs (all pairs of 160 images) on a group
# of all the ranks (rdml_svm_fit_comm: its SMO iterations split): identical results files at
# 1, 2 and 3 ranks, and the log says the fold ran on a group
"$RDMLEARN" synth "$W/big" -q --set synth.subjects=1 --set synth.images=160 --set synth.image_size=24 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "$W/big" -q --set data.rois=V1 --set run.output="$W/bigbase.h5" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/big" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/bigbase.h5" \
  || { echo "embed failed"; exit 1; }
for np in 1 2 3; do
  mkdir -p "$W/big$np" && cp "$W/bigbase.h5" "$W/big$np/out.h5"
  (cd "$W/big$np" && "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/big" --set data.rois=V1 --set embed.backend=gabor \
    --set pairs.set=all --set split.scheme=holdout --set run.output=out.h5 --set run.log_level=info) \
    >"$W/big$np.log" 2>&1 && ok || { bad "svm holdout (split fit) at $np ranks"; tail -5 "$W/big$np.log"; }
done
grep -Eq "fold 0 of 1: ([5-9][0-9]{3}|[0-9]{5,}) train" "$W/big1.log" && ok || { bad "the split fit has too few pairs"; grep "fold 0" "$W/big1.log"; }
for np in 2 3; do
  grep -q "1 computed, 1 of them on groups of ranks" "$W/big$np.log" && ok || bad "svm holdout at $np ranks: not on a group"
  $PY "$RDML_SRC/tools/compare_results.py" "$W/big1/out.h5" "$W/big$np/out.h5" --ignore ranks >"$W/log" 2>&1 && ok \
    || { bad "svm holdout (split fit): 1 vs $np ranks differ"; cat "$W/log"; }
done

cat >"$W/same.py" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
n = 0
def cmp(name, obj):
    global n
    o = b[obj.name]
    for k, v in obj.attrs.items():
        if k == "fit_seconds": continue
        w = o.attrs[k]
        assert np.array_equal(np.asarray(v), np.asarray(w), equal_nan=isinstance(v, float)), (obj.name, k, v, w)
    if isinstance(obj, h5py.Dataset):
        assert obj.shape == o.shape and np.array_equal(obj[()], o[()]), obj.name
        n += 1
a["/experiments"].visititems(cmp)
assert n > 20, n
PYEOF
for np in 2 3 4; do
  $PY "$W/same.py" "$W/np1.h5" "$W/np$np.h5" >"$W/log" 2>&1 && ok || { bad "np1 vs np$np differ"; cat "$W/log"; }
done

$PY - "$W/np1.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "fold checks against sklearn"; cat "$W/log"; }
import sys, h5py, numpy as np
from sklearn import metrics as M
from sklearn.svm import SVC
f = h5py.File(sys.argv[1], "r")
for exp, nf in (("main", 5), ("colors", 1)):
    pg = f[f"/experiments/{exp}/pairs/subj01/V1"]; sg = f[f"/experiments/{exp}/svm/subj01/V1"]
    ij, lab, fold = pg["ij"][()], pg["label"][()], pg["fold"][()]
    assert pg.attrs["n_folds"] == nf
    assert ("color" in pg) == (exp == "colors") and ("color_share" in pg) == (exp == "colors")
    accs = []
    for k in range(nf):
        g = sg[f"fold_{k}"]
        te = g["test_pairs"][()]
        assert np.all(fold[ij[te, 0]] == k) and np.all(fold[ij[te, 1]] == k)
        y, d, p = g["label"][()], g["decision"][()], g["pred"][()]
        assert np.array_equal(y, lab[te].astype(int)) and np.array_equal(p, (d > 0).astype(int))
        assert abs(g.attrs["accuracy"] - M.accuracy_score(y, p)) < 1e-12
        assert abs(g.attrs["f1"] - M.f1_score(y, p)) < 1e-12
        assert abs(g.attrs["roc_auc"] - M.roc_auc_score(y, d)) < 1e-12
        assert np.array_equal(g["confusion"][()], M.confusion_matrix(y, p))
        accs.append(g.attrs["accuracy"])
    assert abs(sg.attrs["mean_accuracy"] - np.mean(accs)) < 1e-12 and abs(sg.attrs["std_accuracy"] - np.std(accs)) < 1e-12
# one fold against sklearn SVC on the concatenated pairs
E = f["/subjects/subj01/embeddings/gabor"][()].astype(np.float64)
pg = f["/experiments/main/pairs/subj01/V1"]; ij, lab, fold = pg["ij"][()], pg["label"][()], pg["fold"][()]
tr = np.where((fold[ij[:, 0]] != 0) & (fold[ij[:, 1]] != 0))[0]
g = f["/experiments/main/svm/subj01/V1/fold_0"]; te = g["test_pairs"][()]
X = lambda s: np.hstack([E[ij[s, 0]], E[ij[s, 1]]])
m = SVC(kernel="poly", degree=2, C=1.0).fit(X(tr), lab[tr].astype(int))
agree = np.mean(m.predict(X(te)) == g["pred"][()])
c = m.dual_coef_[0]; gam = 1 / (X(tr).shape[1] * X(tr).var())
obj = 0.5 * c @ ((gam * X(tr)[m.support_] @ X(tr)[m.support_].T) ** 2) @ c - np.abs(c).sum()
print("agree", agree, "obj", g.attrs["dual_objective"], obj)
assert agree >= 0.995 and abs(g.attrs["dual_objective"] - obj) <= 1e-3 * abs(obj)
assert g.attrs["n_train"] == len(tr)
PYEOF

# colour classes and pairs as the paper's classify_images_rgb and pair list (tools/paper_colors.py)
# at pairs.color_fraction = 0.4, where an image can have two colours above the fraction: the
# stored classes and shares (read back with h5py) equal the port's on the PNGs read by Pillow,
# the pairs equal its list in order (colour-a images first), at 2 ranks
cp "$W/base.h5" "$W/col.h5"
"${MPI[@]}" -n 2 "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.set=colors --set split.scheme=holdout \
  --set pairs.experiment=c04 --set pairs.color_fraction=0.4 --set pairs.colors=blue,red \
  --set run.output="$W/col.h5" && ok || bad "svm colors at color_fraction 0.4"
$PY - "$W/col.h5" "$W/ds" "$RDML_SRC/tools" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "colour classes and pairs vs the paper's port"; cat "$W/log"; }
import sys, os, h5py, numpy as np
sys.path.insert(0, sys.argv[3])
from paper_colors import classify_images_rgb, color_pairs, load_rgb
f = h5py.File(sys.argv[1], "r")
names = [x.decode() for x in f["/subjects/subj01/images/names"][()]]
d = os.path.join(sys.argv[2], "subj01", "training_split", "training_images")
cls, share = classify_images_rgb([load_rgb(os.path.join(d, n)) for n in names], 0.4)
pg = f["/experiments/c04/pairs/subj01/V1"]
c = pg["color"]
assert c.dtype == np.int64 and c.shape == (90,), (c.dtype, c.shape)
assert c.attrs["names"] == "red,green,blue" and c.attrs["colors"] == "blue,red", dict(c.attrs)
assert c.attrs["color_fraction"] == 0.4
# images whose last colour reaching 0.4 is not the largest (the rule of the old code)
last = np.array([max([k for k in range(3) if s[k] >= 0.4], default=-1) for s in share])
print("classes", np.bincount(cls + 1, minlength=4), "differ from the last-colour rule:", (last != cls).sum())
assert (last != cls).sum() > 0
assert np.array_equal(c[()], cls), np.where(c[()] != cls)
assert np.array_equal(pg["color_share"][()], share)
P = color_pairs(cls, 2, 0)
ij = pg["ij"][()]
print("pairs", len(ij), "paper", len(P), "blue-first a-b pairs", np.sum((cls[ij[:, 0]] == 2) & (cls[ij[:, 1]] == 0)))
assert np.array_equal(ij, P)
assert pg.attrs["n_color_images"] == min(np.sum(cls == 0), np.sum(cls == 2))
PYEOF

# pairs.images: the experiment's pairs come from the first 60 images, with the RDM's leading block;
# identical at 1 and 3 ranks; more than the subject has means all of them (said in the log)
for np in 1 3; do
  cp "$W/base.h5" "$W/sub$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.k=8 --set pairs.images=60 \
    --set pairs.experiment=sub --set run.output="$W/sub$np.h5" && ok || bad "pairs.images at $np ranks"
done
$PY "$W/same.py" "$W/sub1.h5" "$W/sub3.h5" >"$W/log" 2>&1 && ok || { bad "pairs.images np1 vs np3"; cat "$W/log"; }
$PY - "$W/sub1.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "pairs.images block"; cat "$W/log"; }
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
R = f["/subjects/subj01/rdm/V1"][()]
assert R.shape == (90, 90)
pg = f["/experiments/sub/pairs/subj01/V1"]
ij, v, fold = pg["ij"][()], pg["value"][()], pg["fold"][()]
assert pg.attrs["n_images"] == 60 and fold.shape == (60,) and ij.max() < 60
assert len(ij) == 60 * 16, len(ij)
assert np.array_equal(v, R[ij[:, 0], ij[:, 1]].astype(np.float64))
# the extremes are taken among the first 60 images only: image 0's 8 nearest partners
row = R[0, :60].astype(np.float64).copy(); row[0] = np.inf
assert set(ij[:8, 1]) == set(np.argsort(row, kind="stable")[:8]), (ij[:8], np.argsort(row)[:8])
PYEOF
cp "$W/base.h5" "$W/all.h5"
out=$("$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.k=8 --set pairs.images=500 --set run.output="$W/all.h5" -v 2>&1) \
  && grep -qF "pairs.images = 500 but" <<<"$out" && grep -qF "using all 90" <<<"$out" && ok || bad "pairs.images above the count: $out"

# ---- bad input ----
expect_fail() { # NP SUBSTRING args...
  local np=$1 sub=$2; shift 2
  local before; before=$(md5sum <"$W/np1.h5")
  out=$(timeout 120 "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set run.output="$W/np1.h5" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then bad "expected failure: $*"; return; fi
  if ! grep -qF -- "$sub" <<<"$out"; then bad "message for $* lacks '$sub': $out"; return; fi
  [ "$(md5sum <"$W/np1.h5")" = "$before" ] || { bad "results changed after failure: $*"; return; }
  ok
}
# the label threshold is the RDM's attribute: an RDM computed with threshold 100 has one class
cp "$W/base.h5" "$W/one.h5"
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set rdm.threshold=100 --set run.output="$W/one.h5"
"$RDMLEARN" embed "$W/ds" -q --set embed.backend=gabor --set run.output="$W/one.h5"
out=$("${MPI[@]}" -n 3 "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set run.output="$W/one.h5" 2>&1) \
  && bad "one class accepted" || { grep -qF "a classifier needs both classes" <<<"$out" && grep -qF " 0 dissimilar" <<<"$out" && ok || bad "one-class message: $out"; }
expect_fail 3 "100-fold split over 90 images" --set split.folds=100
expect_fail 2 "are red and 0 are green" --set pairs.set=colors --set pairs.colors=red,green --set pairs.color_fraction=1
expect_fail 1 "allow_pair_leakage" --set split.scheme=pairs
expect_fail 2 "has no embeddings" --set embed.name=nosuch
expect_fail 1 "labels = continuous" --set pairs.labels=continuous
# the leaky split runs when flagged
cp "$W/base.h5" "$W/leak.h5"
"${MPI[@]}" -n 2 "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set split.scheme=pairs --set split.allow_pair_leakage=true \
  --set pairs.k=8 --set run.output="$W/leak.h5" && ok || bad "pair-level split with the flag"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
