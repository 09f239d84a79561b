#!/usr/bin/env bash
# `rdmlearn svm` with a [grid] (nested cross-validation) and with epsilon-SVR, end to end on a
# synthetic dataset (synth -> rdm -> embed gabor -> svm):
#  - C-SVC grid (svm_c x svm_kernel, 5 outer x 3 inner folds) and SVR grid (svm_c x
#    svm_epsilon, continuous labels): everything under /experiments is bit-identical at 1, 2,
#    3 and 4 ranks (except fit_seconds);
#  - the inner folds are image-disjoint KFold splits of exactly the outer training images;
#    for one outer fold, sklearn's GridSearchCV with the explicit cv list given by the stored
#    inner folds reproduces every inner score and mean (1e-6) and the chosen setting; the outer
#    model refit with the chosen setting agrees with sklearn SVC / SVR on the test pairs; the
#    stored metrics equal sklearn / scipy on the stored predictions;
#  - SVR without a grid runs and its fold predictions match sklearn.svm.SVR;
#  - bad grid and type combinations fail with a message naming the keys and leave the
#    results file untouched.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=80 --set synth.image_size=24 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set run.output="$W/base.h5" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/base.h5" \
  || { echo "embed failed"; exit 1; }
COMMON=(--set data.rois=V1 --set embed.backend=gabor --set pairs.k=8 --set svm.tol=1e-6 -q)
GRID=(--set grid.svm_c=0.1,1,10 --set grid.svm_kernel=poly,rbf --set grid.inner_folds=3)
SVR=(--set pairs.experiment=svr --set pairs.labels=continuous --set svm.type=epsilon_svr
     --set svm.kernel=rbf --set grid.svm_c=0.3,3 --set grid.svm_epsilon=0.02,0.1)

for np in 1 2 3 4; do
  cp "$W/base.h5" "$W/np$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" "${GRID[@]}" --set run.output="$W/np$np.h5" \
    && ok || bad "svm grid at $np ranks"
  "${MPI[@]}" -n $np "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" "${SVR[@]}" --set run.output="$W/np$np.h5" \
    && ok || bad "svr grid at $np ranks"
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
assert n > 60, n
PYEOF
for np in 2 3 4; do
  $PY "$W/same.py" "$W/np1.h5" "$W/np$np.h5" >"$W/log" 2>&1 && ok || { bad "np1 vs np$np differ"; cat "$W/log"; }
done

$PY - "$W/np1.h5" <<'PYEOF' >"$W/log" 2>&1 && { ok; cat "$W/log"; } || { bad "grid checks against sklearn"; cat "$W/log"; }
import sys, h5py, numpy as np
from sklearn import metrics as M
from sklearn.svm import SVC, SVR
from sklearn.model_selection import GridSearchCV
from scipy import stats
f = h5py.File(sys.argv[1], "r")
E = f["/subjects/subj01/embeddings/gabor"][()].astype(np.float64)
X = lambda ij: np.hstack([E[ij[:, 0]], E[ij[:, 1]]])
for exp, est, grid, scoring in (
        ("main", SVC(tol=1e-6, degree=2), {"C": [0.1, 1.0, 10.0], "kernel": ["poly", "rbf"]}, "accuracy"),
        ("svr", SVR(tol=1e-6, kernel="rbf"), {"C": [0.3, 3.0], "epsilon": [0.02, 0.1]}, "r2")):
    pg = f[f"/experiments/{exp}/pairs/subj01/V1"]; sg = f[f"/experiments/{exp}/svm/subj01/V1"]
    ij, lab, fold = pg["ij"][()], pg["label"][()], pg["fold"][()]
    g = sg["grid"]
    assert g.attrs["scoring"] == scoring and g.attrs["inner_folds"] == 3
    ns = g.attrs["n_settings"]; assert ns == (6 if exp == "main" else 4)
    chosen = g["chosen"][()]
    y = lab.astype(int) if exp == "main" else lab
    for k in range(5):
        inner = g[f"fold_{k}/inner_fold"][()]
        assert np.array_equal(inner < 0, fold == k)              # exactly the outer training images
        sizes = np.bincount(inner[inner >= 0]); m = (inner >= 0).sum()
        assert sorted(sizes.tolist(), reverse=True) == sizes.tolist() and sizes.sum() == m and sizes.max() - sizes.min() <= 1
        assert g[f"fold_{k}"].attrs["chosen"] == chosen[k] == sg[f"fold_{k}"].attrs["setting"]
    # outer fold 0 against GridSearchCV with the stored inner folds
    inner = g["fold_0/inner_fold"][()]
    fa, fb = inner[ij[:, 0]], inner[ij[:, 1]]
    used = (fa >= 0) & (fb >= 0)
    cv = [(np.where(used & (fa != q) & (fb != q))[0], np.where(used & (fa == q) & (fb == q))[0]) for q in range(3)]
    gs = GridSearchCV(est, grid, cv=cv, scoring=scoring, refit=False).fit(X(ij), y)
    r = gs.cv_results_
    sc = g["fold_0/inner_scores"][()]
    ref = np.array([[r[f"split{q}_test_score"][s] for q in range(3)] for s in range(ns)])
    d1 = np.abs(sc - ref).max(); d2 = np.abs(g["fold_0/mean"][()] - r["mean_test_score"]).max()
    best = int(np.argmin(r["rank_test_score"]))
    print(exp, "params", r["params"], "\nmean", r["mean_test_score"], "chosen", chosen, "sklearn best", best, "diffs", d1, d2)
    assert d1 <= 1e-6 and d2 <= 1e-6 and best == chosen[0]
    assert np.array_equal(g["mean_inner_score"][0], g["fold_0/mean"][()])
    # the outer refit with the chosen setting
    prm = r["params"][best]
    assert g["C"][best] == prm["C"] and sg["fold_0"].attrs["setting_C"] == prm["C"]
    tr = np.where((fold[ij[:, 0]] != 0) & (fold[ij[:, 1]] != 0))[0]
    fg = sg["fold_0"]; te = fg["test_pairs"][()]
    m = type(est)(**{**est.get_params(), **prm}).fit(X(ij[tr]), y[tr])
    if exp == "main":
        agree = np.mean(m.predict(X(ij[te])) == fg["pred"][()])
        print("outer agree", agree); assert agree >= 0.995
        assert abs(fg.attrs["accuracy"] - M.accuracy_score(fg["label"][()], fg["pred"][()])) < 1e-12
    else:
        p, t = fg["prediction"][()], fg["target"][()]
        dp = np.abs(m.predict(X(ij[te])) - p).max()
        print("outer max|pred diff|", dp); assert dp <= 1e-3 * np.abs(t).max()
        assert np.array_equal(t, lab[te])
        assert abs(fg.attrs["r2"] - M.r2_score(t, p)) < 1e-12 and abs(fg.attrs["mse"] - M.mean_squared_error(t, p)) < 1e-12
        assert abs(fg.attrs["pearson"] - stats.pearsonr(t, p)[0]) < 1e-12 and abs(fg.attrs["spearman"] - stats.spearmanr(t, p)[0]) < 1e-12
        r2s = [sg[f"fold_{k}"].attrs["r2"] for k in range(5)]
        assert abs(sg.attrs["mean_r2"] - np.mean(r2s)) < 1e-12 and np.allclose(sg["fold_metrics"][:, 0], r2s, rtol=0, atol=0)
PYEOF

# SVR without a grid, 2 ranks: fold predictions match sklearn SVR
cp "$W/base.h5" "$W/plain.h5"
"${MPI[@]}" -n 2 "$RDMLEARN" svm "$W/ds" --set data.rois=V1 --set embed.backend=gabor --set pairs.k=8 -q \
  --set pairs.labels=continuous --set svm.type=epsilon_svr --set svm.epsilon=0.05 --set run.output="$W/plain.h5" \
  && ok || bad "svr without grid"
$PY - "$W/plain.h5" "$(dirname "$0")/../../tools" <<'PYEOF' >"$W/log" 2>&1 && { ok; cat "$W/log"; } || { bad "plain svr against sklearn"; cat "$W/log"; }
import sys, h5py, numpy as np
from sklearn.svm import SVR
from sklearn.metrics import r2_score
sys.path.insert(0, sys.argv[2])
import make_stats_fixtures as R   # the port of the counter RNG
f = h5py.File(sys.argv[1], "r")
E = f["/subjects/subj01/embeddings/gabor"][()].astype(np.float64)
X = lambda ij: np.hstack([E[ij[:, 0]], E[ij[:, 1]]])
pg = f["/experiments/main/pairs/subj01/V1"]; sg = f["/experiments/main/svm/subj01/V1"]
ij, lab, fold = pg["ij"][()], pg["label"][()], pg["fold"][()]
assert "grid" not in sg and sg.attrs["type"] == "epsilon_svr" and sg.attrs["grid_settings"] == 0
for k in (0, 3):
    tr = np.where((fold[ij[:, 0]] != k) & (fold[ij[:, 1]] != k))[0]
    fg = sg[f"fold_{k}"]
    m = SVR(kernel="poly", degree=2, epsilon=0.05).fit(X(ij[tr]), lab[tr])
    c = m.dual_coef_[0]; gam = 1 / (X(ij[tr]).shape[1] * X(ij[tr]).var())
    Xs = X(ij[tr])[m.support_]
    obj = 0.5 * c @ ((gam * Xs @ Xs.T) ** 2) @ c + 0.05 * np.abs(c).sum() - lab[tr][m.support_] @ c
    dp = np.abs(m.predict(X(ij[fg["test_pairs"][()]])) - fg["prediction"][()]).max()
    print(k, "obj", fg.attrs["dual_objective"], obj, "max|pred diff|", dp)
    assert abs(fg.attrs["dual_objective"] - obj) <= 1e-3 * abs(obj) and dp <= 1e-3
    # the R^2 null (svm.null_shuffles = 1000): shuffle b of fold k permutes the test targets
    # with the stream (run.seed 42, RDML_STREAM_NULL = 11, k, b), as for the networks
    y, p, null = fg["target"][()], fg["prediction"][()], fg["null_r2"][()]
    assert null.shape == (1000,) and np.isfinite(null).all()
    for b in range(2):
        perm = np.array(R.Rng.shuffle(R.Rng(42, R.substream(R.substream(11, k), b)), list(range(len(y)))))
        assert abs(null[b] - r2_score(y[perm], p)) < 1e-12, (k, b)
    assert fg.attrs["p_r2"] == (1 + np.sum(null >= fg.attrs["r2"])) / 1001
nm = np.mean([sg[f"fold_{k}/null_r2"][()] for k in range(sg.attrs["n_folds"] if "n_folds" in sg.attrs else 5)], axis=0)
assert np.allclose(sg["null_mean_r2"][()], nm, rtol=0, atol=1e-12) and sg.attrs["null_shuffles"] == 1000
assert sg.attrs["p_r2"] == (1 + np.sum(nm >= sg.attrs["mean_r2"])) / 1001
PYEOF

# ---- bad input ----
expect_fail() { # SUBSTRING args...
  local sub=$1; shift
  local before; before=$(md5sum <"$W/np1.h5")
  out=$(timeout 120 "${MPI[@]}" -n 2 "$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set run.output="$W/np1.h5" "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then bad "expected failure: $*"; return; fi
  if ! grep -qF -- "$sub" <<<"$out"; then bad "message for $* lacks '$sub': $out"; return; fi
  [ "$(md5sum <"$W/np1.h5")" = "$before" ] || { bad "results changed after failure: $*"; return; }
  ok
}
expect_fail "scoring = r2 does not fit svm.type = c_svc" "${GRID[@]}" --set grid.scoring=r2
expect_fail "inner 70-fold split of outer fold 0: its training side has 64 units" "${GRID[@]}" --set grid.inner_folds=70
expect_fail "subj01 V1: outer fold 0: inner fold 0 has 766 training and 0 test pairs" "${GRID[@]}" --set grid.inner_folds=40
expect_fail "svm_epsilon is set but svm.type = c_svc" --set grid.svm_epsilon=0.1,0.2
expect_fail "off turns the list off and must stand alone" --set grid.svm_c=off,1
expect_fail "expected off or positive numbers" --set grid.svm_c=1,-3
expect_fail "svm.type = epsilon_svr with [pairs] labels = binary" --set svm.type=epsilon_svr
expect_fail "labels = continuous with svm.type = c_svc" --set pairs.labels=continuous

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
