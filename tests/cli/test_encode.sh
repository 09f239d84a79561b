#!/usr/bin/env bash
# `rdmlearn encode` end to end on a synthetic dataset (synth -> rdm -> embed -> svm -> encode):
#  - science, figures from docs/encode.md: with gabor features the V1 vertices (oriented
#    energy) are predicted well (median r > 0.55) and the colour-tuned hV4 ones much less
#    (median r < 0.35); random features predict nothing (|median r| < 0.1); the generator's
#    own features (synth_truth/subjNN_features.npy) reach a noise-normalised accuracy near
#    100% (median > 75%: the rest is the ridge fit's estimation error on 480 images);
#  - the outer folds' test images are the svm stage's image folds for the same [split];
#  - the chosen alphas are RidgeCV(alpha_per_target=True)'s (but for LOO near-ties < 1e-5);
#  - predictions equal sklearn Ridge(chosen alpha) on the same training rows: r of every
#    vertex and the predicted RDM (correlation, and spearman) recomputed with numpy;
#  - the stored noise ceiling equals the dataset's file, NaN outside the selection;
#  - identical results (tools/compare_results.py) at 1 and 3 ranks, loo and kfold;
#  - the report draws the encoding section (per-ROI table, r by ROI, chosen alphas);
#  - `rdmlearn run` runs encode after embed when run.stages lists it, and skips it after;
#  - SIGTERM to one rank stops every rank with status 10, the results file unchanged;
#  - bad input (a non-positive alpha, a selection with no vertices, NaN embeddings,
#    embeddings of other images than the fMRI rows, an unknown embedding) fails on every
#    rank with a clear message and leaves the results file untouched.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

SYN=(--set synth.subjects=1 --set synth.images=600 --set synth.image_size=32
     --set synth.lh_vertices=250 --set synth.rh_vertices=250 --set synth.test_images=0)
"${MPI[@]}" -n 2 "$RDMLEARN" synth "$W/ds" -q "${SYN[@]}" || { echo "synth failed"; exit 1; }
"$RDMLEARN" synth "$W/other" -q "${SYN[@]}" --set run.seed=9 || { echo "synth failed"; exit 1; }
$PY -c "import numpy as np; np.save('$W/rand.npy', np.random.default_rng(0).standard_normal((600, 64)).astype(np.float32))"
B="$W/base.h5"
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set run.output="$B" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set embed.backend=gabor --set run.output="$B" || { echo "embed failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set embed.backend=file --set embed.file="$W/ds/synth_truth/subj01_features.npy" \
  --set embed.name=truth --set run.output="$B" || { echo "embed truth failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set embed.backend=file --set embed.file="$W/rand.npy" --set embed.name=rand \
  --set run.output="$B" || { echo "embed rand failed"; exit 1; }
"$RDMLEARN" svm "$W/ds" -q --set data.rois=V1 --set embed.name=gabor --set pairs.k=5 --set run.output="$B" \
  || { echo "svm failed"; exit 1; }

# 1 and 3 ranks (the files differ only in the stored run.output and rank count), small blocks so that every rank has several; loo (all embeddings) and kfold
for np in 1 3; do
  mkdir -p "$W/np$np"
  cp "$B" "$W/np$np/r.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" encode "$W/ds" -q --set data.rois=V1,hV4,all --set encode.block=64 \
    --set run.output="$W/np$np/r.h5" && ok || bad "encode at $np ranks"
  cp "$B" "$W/np$np/k.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" encode "$W/ds" -q --set data.rois=V1 --set encode.block=16 \
    --set encode.mode=kfold --set encode.embeddings=gabor --set rdm.metric=spearman \
    --set encode.standardize_features=true --set run.output="$W/np$np/k.h5" \
    && ok || bad "encode kfold/spearman at $np ranks"
done
for f in r k; do
  $PY "$RDML_SRC/tools/compare_results.py" "$W/np1/$f.h5" "$W/np3/$f.h5" --ignore ranks --ignore config >"$W/log" 2>&1 \
    && ok || { bad "1 vs 3 ranks differ ($f)"; head -20 "$W/log"; }
done

$PY - "$W/np1/r.h5" "$W/np1/k.h5" "$W/ds" <<'PYEOF' && ok || bad "encode results"
import sys, glob, h5py, numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Ridge
f, fk, ds = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), sys.argv[3]

def summary(emb, sel):
    g = f[f"/encode/{emb}/subj01/{sel}/roi_summary"]
    rows = [(a.decode(), c.decode()) for a, c in zip(g["roi"][()], g["roi_class"][()])]
    return {k: {n: g[k][()][i] for i, n in enumerate(rows)} for k in ("median_r", "median_noise_normalized")}

s = summary("gabor", "all")
v1, v4 = s["median_r"][("V1v", "Visual")], s["median_r"][("hV4", "Visual")]
print(f"gabor: V1v median r {v1:.3f}, hV4 {v4:.3f}")
assert v1 > 0.55 and v4 < 0.35, (v1, v4)
sr = summary("rand", "all")["median_r"][("all", "selection")]
print(f"random features: median r {sr:.3f}")
assert abs(sr) < 0.1, sr
st = summary("truth", "all")["median_noise_normalized"][("all", "selection")]
print(f"true features: median noise-normalised accuracy {st:.1f}%")
assert 75 < st < 110, st

# the outer folds are the svm stage's image folds
pf = None
def find(name, obj):
    global pf
    if name.startswith("main/pairs/") and name.endswith("/V1/fold"): pf = obj[()]
f["/experiments"].visititems(find)
g = f["/encode/gabor/subj01/V1"]
assert g.attrs["n_folds"] == 5
for k in range(5):
    assert np.array_equal(g[f"fold_{k}/test_images"][()], np.where(pf == k)[0]), k

# noise ceiling: the dataset's file, NaN outside the selection
nc = np.load(f"{ds}/subj01/training_split/training_fmri/lh_noise_ceiling.npy")
m = np.isin(np.load(f"{ds}/subj01/roi_masks/lh.prf-visualrois_challenge_space.npy"), [1, 2])
got = g["noise_ceiling_lh"][()]
assert np.array_equal(np.isnan(got), ~m) and np.allclose(got[m], nc[m]), "noise ceiling"
assert np.array_equal(np.isnan(g["r_lh"][()]), ~m), "r outside the selection"

# sklearn Ridge(chosen alpha) per vertex on the training rows: r and the predicted RDM
def check(grp, emb, metric, std_feat):
    X = f[f"/subjects/subj01/embeddings/{emb}"][()].astype(np.float64)
    cols = {h: np.where(~np.isnan(grp[f"r_{h}"][()]))[0] for h in ("lh", "rh")}
    Y = np.concatenate([np.load(f"{ds}/subj01/training_split/training_fmri/{h}_training_fmri.npy")[:, cols[h]]
                        for h in ("lh", "rh")], axis=1).astype(np.float64)
    for k in (0, 3):
        te = grp[f"fold_{k}/test_images"][()]
        tr = np.setdiff1d(np.arange(len(X)), te)
        alpha = np.concatenate([grp[f"fold_{k}/alpha_{h}"][()][cols[h]] for h in ("lh", "rh")])
        r_got = np.concatenate([grp[f"fold_{k}/r_{h}"][()][cols[h]] for h in ("lh", "rh")])
        Xtr, Xte = X[tr], X[te]
        if std_feat:
            mu, sd = Xtr.mean(0), Xtr.std(0)
            sd[sd == 0] = 1
            Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
        P = np.empty((len(te), Y.shape[1]))
        for a in np.unique(alpha):
            c = alpha == a
            P[:, c] = Ridge(alpha=a).fit(Xtr, Y[tr][:, c]).predict(Xte)
        r = np.array([np.corrcoef(P[:, v], Y[te, v])[0, 1] for v in range(Y.shape[1])])
        assert np.allclose(r, r_got, atol=2e-4), (k, np.abs(r - r_got).max())
        Z = (P - Y[tr].mean(0)) / Y[tr].std(0)        # data.standardize: training statistics
        keep = np.ones(len(te), bool)
        if metric == "spearman":   # float32 predictions may order near-ties (< 1e-5) otherwise
            keep = np.array([np.diff(np.sort(z)).min() > 1e-5 for z in Z])
            Z = np.apply_along_axis(rankdata, 1, Z)
        R = 1 - np.corrcoef(Z)
        np.fill_diagonal(R, 0)
        got = grp[f"fold_{k}/pred_rdm"][()]
        assert got.dtype == np.float32 and got.shape == (len(te), len(te))
        assert keep.sum() > 0.8 * len(te)
        d = np.abs(got - R)[np.ix_(keep, keep)].max()
        assert d < 1e-5, (k, metric, d)
# loo: every chosen alpha is RidgeCV(alpha_per_target=True)'s, up to near-ties of the LOO
# error below float32 precision (gabor features are tiny and rank-deficient: flat curves)
from sklearn.linear_model import RidgeCV
g = f["/encode/truth/subj01/V1"]
X = f["/subjects/subj01/embeddings/truth"][()].astype(np.float64)
cols = {h: np.where(~np.isnan(g[f"r_{h}"][()]))[0] for h in ("lh", "rh")}
Y = np.concatenate([np.load(f"{ds}/subj01/training_split/training_fmri/{h}_training_fmri.npy")[:, cols[h]]
                    for h in ("lh", "rh")], axis=1).astype(np.float64)
te = g["fold_1/test_images"][()]
tr = np.setdiff1d(np.arange(len(X)), te)
grid = g["alphas"][()]
got = np.concatenate([g[f"fold_1/alpha_{h}"][()][cols[h]] for h in ("lh", "rh")])
try:
    m = RidgeCV(alphas=grid, alpha_per_target=True, store_cv_results=True).fit(X[tr], Y[tr]); cv = m.cv_results_
except TypeError:
    m = RidgeCV(alphas=grid, alpha_per_target=True, store_cv_values=True).fit(X[tr], Y[tr]); cv = m.cv_values_
mse = cv.mean(0)
ours = np.array([np.argmin(np.abs(np.log(grid / a))) for a in got])
excess = mse[np.arange(len(ours)), ours] / mse.min(1) - 1
same = np.isclose(m.alpha_, got)
print(f"chosen alphas equal RidgeCV's for {same.mean():.0%} of {len(same)} V1 vertices (true features), "
      f"largest LOO excess of the others {excess.max():.1e}")
assert same.mean() > 0.9 and excess.max() < 1e-5, (same.mean(), excess.max())
check(f["/encode/gabor/subj01/V1"], "gabor", "correlation", False)
check(fk["/encode/gabor/subj01/V1"], "gabor", "spearman", True)
assert fk["/encode/gabor/subj01/V1/fold_0/pred_rdm"].attrs["metric"] == "spearman"
assert fk["/encode/gabor/subj01/V1"].attrs["mode"] == "kfold"
PYEOF

# the report: the encoding section with its table and figures per model
"$RDMLEARN" report "$W/np1/r.h5" -o "$W/rep" -q && ok || bad "report"
grep -q 'id="encode"' "$W/rep/report.html" && grep -q 'href="#encode"' "$W/rep/report.html" \
  && grep -q 'Encoding model accuracy per ROI, subj01, selection V1, embedding gabor' "$W/rep/report.html" \
  && [[ -s "$W/rep/encode_r_gabor_subj01_all.png" && -s "$W/rep/encode_alpha_truth_subj01_hV4.svg" ]] \
  && ok || bad "report lacks the encoding section"

# `rdmlearn run` with encode in run.stages: runs after embed, then is skipped when up to date
mkdir -p "$W/job"
printf '[data]\nroot = %s\nrois = V1\n[run]\nstages = rdm, embed, encode\noutput = %s\n' \
  "$W/ds" "$W/job/r.h5" >"$W/job/job.ini"
"$RDMLEARN" run "$W/job/job.ini" >"$W/job/log1" 2>&1 && grep -q 'run: stage encode done' "$W/job/log1" \
  && $PY -c "import h5py; assert 'gabor' in h5py.File('$W/job/r.h5', 'r')['/encode']" && ok \
  || { bad "run with encode"; tail -5 "$W/job/log1"; }
"$RDMLEARN" run "$W/job/job.ini" >"$W/job/log2" 2>&1 && grep -q 'stage encode is up to date' "$W/job/log2" \
  && ok || { bad "encode not skipped when up to date"; tail -5 "$W/job/log2"; }

# SIGTERM to one rank in the middle of the stage (1000 alphas make it last seconds): every
# rank stops at the next round of vertex blocks with status 10, the file is as it was
cp "$B" "$W/term.h5"
before=$(md5sum <"$W/term.h5")
"${MPI[@]}" -n 2 "$RDMLEARN" encode "$W/ds" --set data.rois=all --set encode.block=16 \
  --set encode.n_alphas=1000 --set encode.embeddings=truth --set run.output="$W/term.h5" >"$W/logterm" 2>&1 &
pid=$!
for _ in $(seq 1 600); do ls "$W"/term.h5.tmp-* >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1
t0=$(date +%s%N)
kill -TERM "$(pgrep -f "^$RDMLEARN encode $W/ds" | head -1)"
wait $pid; st=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "encode: exit status $st ${ms} ms after SIGTERM"
[[ $st == 10 ]] && grep -q "stopped by SIGTERM .*stage encode did not finish" "$W/logterm" && ok \
  || { bad "SIGTERM during encode: status $st"; tail -3 "$W/logterm"; }
[[ "$(md5sum <"$W/term.h5")" == "$before" ]] && ! ls "$W"/term.h5.tmp* >/dev/null 2>&1 && ok \
  || bad "SIGTERM changed the results file or left a temporary file"

# ---- bad input: every rank stops with the message, the results file is untouched ----
expect_fail() { # NP SUBSTRING args...
  local np=$1 sub=$2; shift 2
  local before; before=$(md5sum "$W/np1/r.h5")
  out=$(timeout 120 "${MPI[@]}" -n $np "$RDMLEARN" encode "$@" --set run.output="$W/np1/r.h5" 2>&1); rc=$?
  local good=1
  [[ $rc -ne 0 && $rc -ne 124 ]] || { echo "rc=$rc"; good=0; }
  grep -qF -- "$sub" <<<"$out" || { echo "message lacks \"$sub\""; good=0; }
  [[ "$(md5sum "$W/np1/r.h5")" == "$before" ]] || { echo "results file changed"; good=0; }
  ls "$W"/np1/r.h5.tmp* >/dev/null 2>&1 && { echo "temporary file left"; good=0; }
  if [[ $good -eq 1 ]]; then ok; else bad "expect_fail $sub"; echo "$out" | head -5; fi
}
cp -r "$W/ds" "$W/empty"   # FFA-1 emptied in both hemispheres
$PY - "$W/empty/subj01/roi_masks" <<'PYEOF'
import sys, numpy as np
d = sys.argv[1]
code = {v: k for k, v in np.load(f"{d}/mapping_floc-faces.npy", allow_pickle=True).item().items()}["FFA-1"]
for h in ("lh", "rh"):
    m = np.load(f"{d}/{h}.floc-faces_challenge_space.npy"); m[m == code] = 0
    np.save(f"{d}/{h}.floc-faces_challenge_space.npy", m)
PYEOF
cp "$W/np1/r.h5" "$W/nan.h5"
$PY -c "
import h5py, numpy as np
with h5py.File('$W/nan.h5', 'r+') as f: d = f['/subjects/subj01/embeddings/rand']; x = d[()]; x[7, 3] = np.nan; d[...] = x"
expect_fail 3 'item 2 -1 is not positive' "$W/ds" --set encode.alphas=0.1,-1,10
expect_fail 1 'alpha_min = 0, alpha_max = 1e+06: need 0 < alpha_min' "$W/ds" --set encode.alpha_min=0
for np in 1 3; do
  expect_fail $np 'has no vertices in subj01' "$W/empty" --set data.rois=FFA-1
  expect_fail $np 'other images than the fMRI rows' "$W/other" --set data.rois=V1
done
expect_fail 3 'no embedding clip' "$W/ds" --set data.rois=V1 --set encode.embeddings=gabor,clip
# NaN features: the file with them is the one given; it must stay as it was
before=$(md5sum "$W/nan.h5")
out=$("${MPI[@]}" -n 3 "$RDMLEARN" encode "$W/ds" --set data.rois=V1 --set encode.embeddings=rand \
      --set run.output="$W/nan.h5" 2>&1) && bad "NaN embeddings accepted"
grep -qF 'row 7 (image 7, NSD id' <<<"$out" && grep -qF 'column 3 is NaN' <<<"$out" && ok \
  || { bad "NaN embeddings message"; echo "$out" | head -3; }
[[ "$(md5sum "$W/nan.h5")" == "$before" ]] && ok || bad "NaN: results file changed"

echo "test_encode.sh: $passes passed, $fails failed"
[[ $fails -eq 0 ]]
