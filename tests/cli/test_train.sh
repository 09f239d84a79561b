#!/usr/bin/env bash
# `rdmlearn train` end to end on a synthetic dataset (synth -> rdm -> embed gabor -> train):
#  - the siamese results (3 epochs, dropout on) are bit-identical at 1, 2, 3 and 4 ranks
#    (every dataset and attribute except timings);
#  - folds are image-disjoint; R^2 / MSE / Pearson / Spearman per fold agree with sklearn and
#    scipy computed from the stored predictions and targets, mean/std with numpy;
#  - the siamese test R^2 is well above both chance levels in the same table; the mean
#    predictor gives R^2 ~ 0 and shuffled targets R^2 < 0;
#  - the MLP, the CNN (rank-independent, 2*sigmoid output) and the per-pair mode run; the
#    CNN's holdout with train.shards = 2 on 2 ranks is one data-parallel fit (the same file
#    as on 1 rank, both ranks busy);
#    per-epoch losses are stored; a run where some folds diverge keeps the others; folds that
#    collapse to a constant prediction are flagged (status, fold attributes, log warning, the
#    report) and counted in the mean, and the summary says how many;
#  - bad input (a NaN in the RDM, an embedding width that disagrees with train.input_dim, a
#    diverging run, bad [grid] train_* items, a classification score for a grid) fails with a
#    clear message and leaves the results file untouched.
# (The grid itself: test_train_grid.sh.)
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=200 --set synth.image_size=32 \
  --set synth.lh_vertices=400 --set synth.rh_vertices=400 --set synth.test_images=0 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set run.output="$W/base.h5" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/base.h5" \
  || { echo "embed failed"; exit 1; }
# a small siamese network so that the test stays short; the architecture is the paper's
COMMON=(--set data.rois=V1 --set embed.backend=gabor --set pairs.set=all --set train.tower=64,32
        --set train.head=32 --set train.batch=256 --set train.lr=0.001 --set train.epochs=15 -q)

# rank-count independence on a short run (experiment "det", 3 epochs, dropout on); with
# train.shards = 4 a fold on a group of ranks is one data-parallel fit (nn.h, rdml_fit_opts)
for np in 1 2 3 4; do
  cp "$W/base.h5" "$W/np$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.epochs=3 --set pairs.experiment=det \
    --set train.shards=4 \
    --set run.output="$W/np$np.h5" && ok || bad "train siamese at $np ranks"
done
# the whole files too: 5 folds on 2 ranks put the last on both, on 3 ranks the last two on
# groups of 2 and 1, on 4 ranks the last on all four
for np in 2 3 4; do
  $PY "$RDML_SRC/tools/compare_results.py" "$W/np1.h5" "$W/np$np.h5" --ignore config ranks >"$W/log" 2>&1 && ok \
    || { bad "5 folds: 1 vs $np ranks differ"; cat "$W/log"; }
done
# a stage with fewer tasks than ranks: one holdout fold with a grid runs on a group of all the
# ranks (its inner fits split over the group, the final fit given the group): the results
# files are identical at 1, 2 and 3 ranks (tools/compare_results.py), the log says the fold ran
# on a group and how busy the ranks were, and /sweep stores the per-rank figure
for np in 1 2 3; do
  mkdir -p "$W/ho$np" && cp "$W/base.h5" "$W/ho$np/out.h5"
  (cd "$W/ho$np" && "${MPI[@]}" -n $np "$RDMLEARN" train "$W/ds" --set data.rois=V1 --set embed.backend=gabor \
    --set pairs.set=all --set train.tower=64,32 --set train.head=32 --set train.batch=256 --set train.epochs=2 \
    --set pairs.experiment=ho --set split.scheme=holdout --set grid.train_lr=0.001,0.003 --set grid.inner_folds=2 \
    --set run.output=out.h5 --set run.log_level=info) >"$W/ho$np.log" 2>&1 && ok || { bad "holdout at $np ranks"; tail -5 "$W/ho$np.log"; }
done
for np in 2 3; do
  $PY "$RDML_SRC/tools/compare_results.py" "$W/ho1/out.h5" "$W/ho$np/out.h5" --ignore ranks >"$W/log" 2>&1 && ok \
    || { bad "holdout: 1 vs $np ranks differ"; cat "$W/log"; }
  grep -q "1 computed, 1 of them on groups of ranks" "$W/ho$np.log" && ok || { bad "holdout at $np ranks: not on a group"; cat "$W/ho$np.log"; }
  grep -qE "train: ranks busy [0-9]+% of the stage time \(rank 0: [0-9]+%, rank 1: [0-9]+%" "$W/ho$np.log" && ok \
    || bad "holdout at $np ranks: no busy figure in the log"
done
$PY - "$W/ho1/out.h5" "$W/ho3/out.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "busy figure not stored"; cat "$W/log"; }
import sys, h5py, numpy as np
for path, nr in zip(sys.argv[1:], (1, 3)):
    g = h5py.File(path, "r")["/sweep/ho/siamese"]
    b = np.atleast_1d(g.attrs["ranks_busy"])
    assert b.shape == (nr,) and np.all((b >= 0) & (b <= 1)), b
    assert abs(g.attrs["ranks_busy_mean"] - b.mean()) < 1e-12 and g.attrs["stage_seconds"] > 0
    if nr == 1:
        assert b[0] > 0.8, b  # one rank never waits for a task (the farm's own steps aside)
PYEOF
# journal and resume with tasks on groups of ranks (`run`, 5 folds): an array share computes
# folds 0 and 3, the 2-rank merge computes 1 and 2 on the farm and 4 on both ranks; a run
# killed (kill -9) once 4 folds are journaled resumes with the last fold on both ranks; both
# files equal a plain 1-rank run
cat >"$W/arr.ini" <<EOF
[data]
root = $W/ds
rois = V1
[embed]
backend = gabor
[pairs]
set = all
experiment = arr
[train]
tower = 64, 32
head = 32
batch = 256
epochs = 4
[run]
stages = train
output = out.h5
log_level = info
EOF
for d in ref arr kill; do mkdir -p "$W/$d" && cp "$W/base.h5" "$W/$d/out.h5"; done
(cd "$W/ref" && "${MPI[@]}" -n 1 "$RDMLEARN" run "$W/arr.ini") >"$W/arr_ref.log" 2>&1 && ok || { bad "run ref"; tail -5 "$W/arr_ref.log"; }
(cd "$W/arr" && "${MPI[@]}" -n 1 "$RDMLEARN" run "$W/arr.ini" --array 0/3 && "${MPI[@]}" -n 2 "$RDMLEARN" run "$W/arr.ini") \
  >"$W/arr.log" 2>&1 && ok || { bad "array share + merge"; tail -5 "$W/arr.log"; }
grep -q "5 tasks: 2 from the journal, 3 computed, 1 of them on groups of ranks" "$W/arr.log" && ok \
  || { bad "merge: the last fold not on a group"; grep "tasks" "$W/arr.log"; }
(cd "$W/kill" && exec "${MPI[@]}" -n 2 "$RDMLEARN" run "$W/arr.ini") >"$W/kill1.log" 2>&1 &
kpid=$!
for _ in $(seq 1 600); do
  [[ $(ls "$W/kill/out.h5.journal" 2>/dev/null | grep -c '\.rec$') -ge 4 ]] && break
  sleep 0.05
done
kill -9 $kpid 2>/dev/null; pkill -9 -f "^$RDMLEARN run $W/arr.ini"; wait $kpid 2>/dev/null
(cd "$W/kill" && "${MPI[@]}" -n 2 "$RDMLEARN" run "$W/arr.ini") >"$W/kill2.log" 2>&1 && ok || { bad "resume after kill"; tail -5 "$W/kill2.log"; }
grep -E "train: 5 tasks" "$W/kill2.log"
for d in arr kill; do
  $PY "$RDML_SRC/tools/compare_results.py" "$W/ref/out.h5" "$W/$d/out.h5" --ignore ranks >"$W/log" 2>&1 && ok \
    || { bad "$d: results differ from a plain 1-rank run"; cat "$W/log"; }
done

# the full run for the metric checks, on 2 ranks
"${MPI[@]}" -n 2 "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set run.output="$W/np1.h5" && ok || bad "train siamese"
"${MPI[@]}" -n 2 "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.model=mlp --set train.mlp_widths=64,32 \
  --set train.dropout=0 --set train.output=sigmoid2 --set run.output="$W/np1.h5" && ok || bad "train mlp"
# the siamese CNN on the grayscale images (tiny): at 1 and 3 ranks, identical
for np in 1 3; do
  cp "$W/base.h5" "$W/cnn$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.model=cnn --set train.cnn_size=16 \
    --set train.cnn_channels=3,4 --set train.epochs=1 --set train.output=sigmoid2 --set train.pearson_mix=0.5 \
    --set run.output="$W/cnn$np.h5" && ok || bad "train cnn at $np ranks"
done
$PY - "$W/cnn1.h5" "$W/cnn3.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "cnn results"; cat "$W/log"; }
import sys, h5py, numpy as np
a, b = (h5py.File(x, "r")["/experiments/main/cnn/subj01/V1"] for x in sys.argv[1:])
assert a.attrs["n_folds_finished"] == 5 and a.attrs["embedding"] == "grayscale images"
assert a.attrs["cnn_size"] == 16 and list(a.attrs["cnn_channels"]) == [3, 4] and a.attrs["output"] == "sigmoid2"
assert np.array_equal(a["fold_metrics"][()], b["fold_metrics"][()])
for k in range(5):
    assert np.array_equal(a[f"fold_{k}/pred"][()], b[f"fold_{k}/pred"][()])
    assert np.all((a[f"fold_{k}/pred"][()] > 0) & (a[f"fold_{k}/pred"][()] < 2))  # 2 * sigmoid
PYEOF
# the CNN's holdout (one task) on 2 ranks with train.shards = 2: one data-parallel fit shared by
# both ranks (rdml_cnn_step_sharded), the file equal to the 1-rank run with 2 shards, and
# neither rank counts the fit as waiting; with shards = 1 the second rank waits for the fit
for run in "1 2" "2 2" "2 1"; do
  set -- $run
  mkdir -p "$W/ch$1$2" && cp "$W/base.h5" "$W/ch$1$2/out.h5"
  (cd "$W/ch$1$2" && "${MPI[@]}" -n $1 "$RDMLEARN" train "$W/ds" --set data.rois=V1 --set pairs.set=all \
    --set train.model=cnn --set train.cnn_size=32 --set train.cnn_channels=4,8 --set train.epochs=3 \
    --set train.batch=256 --set split.scheme=holdout --set pairs.experiment=cnnho --set train.shards=$2 \
    --set run.output=out.h5 -q) && ok || bad "cnn holdout at $1 ranks, $2 shards"
done
$PY "$RDML_SRC/tools/compare_results.py" "$W/ch12/out.h5" "$W/ch22/out.h5" --ignore ranks >"$W/log" 2>&1 && ok \
  || { bad "cnn holdout with 2 shards: 1 vs 2 ranks differ"; cat "$W/log"; }
$PY - "$W/ch22/out.h5" "$W/ch21/out.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "cnn holdout: busy figures"; cat "$W/log"; }
import sys, h5py, numpy as np
b2, b1 = (np.atleast_1d(h5py.File(x, "r")["/sweep/cnnho/cnn"].attrs["ranks_busy"]) for x in sys.argv[1:])
assert b2.shape == (2,) and b2.min() > 0.8, b2          # both ranks share the fit
assert b1[1] < b1[0] - 0.1, b1                            # one pass: rank 1 waits
PYEOF
"$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.mode=perpair --set train.epochs=2 \
  --set pairs.experiment=perpair --set run.output="$W/np1.h5" && ok || bad "train per pair"

cat >"$W/same.py" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
n = 0
def cmp(name, obj):
    global n
    o = b[obj.name]
    for k, v in obj.attrs.items():
        if k in ("fit_seconds", "pairs_per_second"): continue
        w = o.attrs[k]
        assert np.array_equal(np.asarray(v), np.asarray(w), equal_nan=isinstance(v, float)), (obj.name, k, v, w)
    if isinstance(obj, h5py.Dataset):
        assert obj.shape == o.shape and np.array_equal(obj[()], o[()], equal_nan=True), obj.name
        n += 1
a["/experiments/det/siamese"].visititems(cmp)
a["/experiments/det/pairs"].visititems(cmp)
assert n >= 30, n
PYEOF
for np in 2 3 4; do
  $PY "$W/same.py" "$W/np1.h5" "$W/np$np.h5" >"$W/log" 2>&1 && ok || { bad "np1 vs np$np differ"; cat "$W/log"; }
done

$PY - "$W/np1.h5" "$(dirname "$0")/../../tools" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "fold checks against sklearn/scipy"; cat "$W/log"; }
import sys, h5py, numpy as np
from sklearn import metrics as M
from scipy import stats
sys.path.insert(0, sys.argv[2])
import make_stats_fixtures as R   # the port of the counter RNG
NSHUF, SEED, STREAM_NULL = 1000, 42, 11   # train.null_shuffles, run.seed, RDML_STREAM_NULL
f = h5py.File(sys.argv[1], "r")
pg = f["/experiments/main/pairs/subj01/V1"]
ij, val, fold = pg["ij"][()], pg["value"][()], pg["fold"][()]
for model in ("siamese", "mlp"):
    g = f[f"/experiments/main/{model}/subj01/V1"]
    assert g.attrs["n_folds"] == 5 and g.attrs["n_folds_finished"] == 5, model
    if model == "siamese":   # the architecture is recorded
        assert list(g.attrs["tower"]) == [64, 32] and list(np.atleast_1d(g.attrs["head"])) == [32] and g.attrs["output"] == "linear"
    else:
        assert list(g.attrs["mlp_widths"]) == [64, 32] and "tower" not in g.attrs and g.attrs["output"] == "sigmoid2"
    r2s = []
    for k in range(5):
        fg = g[f"fold_{k}"]
        te, p, y = fg["test_pairs"][()], fg["pred"][()], fg["target"][()]
        assert np.all(fold[ij[te, 0]] == k) and np.all(fold[ij[te, 1]] == k)
        assert np.array_equal(y, val[te])
        assert fg.attrs["status"] == "ok"
        assert abs(fg.attrs["r2"] - M.r2_score(y, p)) < 1e-10
        assert abs(fg.attrs["mse"] - M.mean_squared_error(y, p)) < 1e-12
        assert abs(fg.attrs["pearson"] - stats.pearsonr(y, p)[0]) < 1e-10
        assert abs(fg.attrs["spearman"] - stats.spearmanr(y, p)[0]) < 1e-10
        # mean predictor: the mean of the fold's training targets
        trn = (fold[ij[:, 0]] != k) & (fold[ij[:, 1]] != k)
        assert fg.attrs["n_train"] == trn.sum()
        assert abs(fg.attrs["mean_predictor_r2"] - M.r2_score(y, np.full_like(y, val[trn].mean()))) < 1e-10
        tl, vl = fg["train_loss"][()], fg["test_loss"][()]
        assert len(tl) == 15 and np.all(np.isfinite(tl)) and np.all(np.isfinite(vl))
        assert abs(vl[-1] - M.mean_squared_error(y, p)) < 1e-5 * vl[-1]
        # the R^2 null (train.null_shuffles target shuffles): the first shuffles are exactly the
        # R^2 of p against y permuted by the counter RNG (ported in tools/make_stats_fixtures.py)
        null = fg["null_r2"][()]
        assert null.shape == (NSHUF,) and np.all(np.isfinite(null)), null.shape
        for b in range(3):
            perm = np.array(R.Rng.shuffle(R.Rng(SEED, R.substream(R.substream(STREAM_NULL, k), b)), list(range(len(y)))))
            assert abs(null[b] - M.r2_score(y[perm], p)) < 1e-12, (b, null[b], M.r2_score(y[perm], p))
        assert fg.attrs["p_r2"] == (1 + np.sum(null >= fg.attrs["r2"])) / (1 + NSHUF)
        assert abs(fg.attrs["null_r2_q975"] - np.percentile(null, 97.5)) < 1e-12
        # E[null] = -(sum (p - mean p)^2 + n (mean y - mean p)^2) / sum (y - mean y)^2 exactly
        ss = np.sum((y - y.mean()) ** 2)
        e = -(np.sum((p - p.mean()) ** 2) + len(y) * (y.mean() - p.mean()) ** 2) / ss
        assert abs(null.mean() - e) < 6 * null.std() / np.sqrt(NSHUF) + 1e-12, (null.mean(), e)
        r2s.append(fg.attrs["r2"])
    if model == "siamese":   # learns: far outside the null in every fold
        assert all(g[f"fold_{k}"].attrs["p_r2"] == 1 / (1 + NSHUF) for k in range(5))
        assert g.attrs["p_r2"] == 1 / (1 + NSHUF) and g.attrs["null_shuffles"] == NSHUF
    t = g["table"][()]
    assert t.shape == (3, 8)
    assert abs(t[0, 0] - np.mean(r2s)) < 1e-12 and abs(t[0, 1] - np.std(r2s)) < 1e-12
    assert abs(g.attrs["mean_r2"] - t[0, 0]) < 1e-15
    print(model, "test R2 %.3f +- %.3f, mean predictor %.3f, shuffled %.3f" % (t[0, 0], t[0, 1], t[1, 0], t[2, 0]))
    if model == "siamese":
        assert t[0, 0] > 0.05, t[0, 0]              # learns something on held-out images
        assert t[0, 0] - t[0, 1] > t[1, 0] + 0.03, t  # well above the mean predictor
        assert t[0, 0] > t[2, 0] + 0.1, t           # and above shuffled targets
    assert abs(t[1, 0]) < 0.02, t[1, 0]             # mean predictor ~ 0
    assert t[2, 0] < 0, t[2, 0]                     # shuffled targets < 0
g = f["/experiments/perpair/siamese/subj01/V1"]
assert g.attrs["n_folds_finished"] == 5 and len(g["fold_0/train_loss"][()]) == 2
PYEOF
cat "$W/log"

# a run where some folds diverge, by construction (not by where a chaotic trajectory crosses a
# threshold on one CPU): one pair's target is made 1e25, between an image of test fold 0 and
# one of test fold 1. That pair trains in folds 2-4 only (in folds 0 and 1 it crosses the
# split and is dropped), so exactly folds 2-4 diverge at their first batch holding it, folds
# 0 and 1 train as usual, and the command succeeds with the diverged folds marked.
cp "$W/np1.h5" "$W/div.h5"
$PY - "$W/div.h5" <<'PYEOF' >"$W/log" 2>&1 || { bad "diverging run: set-up"; cat "$W/log"; }
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    fold = f["/experiments/main/pairs/subj01/V1/fold"][()]   # test fold of each image
    a, b = np.flatnonzero(fold == 0)[0], np.flatnonzero(fold == 1)[0]
    d = f["/subjects/subj01/rdm/V1"]; r = d[()]; r[a, b] = r[b, a] = 1e25; d[...] = r
PYEOF
"$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set pairs.experiment=div --set train.epochs=3 \
  --set run.output="$W/div.h5" -v >"$W/out" 2>&1 && ok || { bad "partly diverging run failed"; cat "$W/out"; }
# ... and the log numbers folds as the file does (from 0: "fold 2 of 5" is fold_2)
$PY - "$W/div.h5" "$W/out" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "partly diverging run: folds"; cat "$W/log"; }
import re, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
g = f["/experiments/div/siamese/subj01/V1"]
# the div experiment's folds are the main experiment's (same pair settings and seed)
assert np.array_equal(f["/experiments/div/pairs/subj01/V1/fold"][()], f["/experiments/main/pairs/subj01/V1/fold"][()])
st = [g[f"fold_{k}"].attrs["status"] for k in range(5)]
assert st[:2] == ["ok", "ok"] and g.attrs["n_folds_finished"] == 2, st
assert all(s.startswith("diverged in epoch 1") and "lower train.lr" in s for s in st[2:]), st
for k in range(5):
    tl = g[f"fold_{k}/train_loss"][()]
    assert np.all(np.isfinite(tl)) == (st[k] == "ok"), (k, tl)
log = open(sys.argv[2]).read()
stopped = {int(k) for k in re.findall(r"siamese fold (\d+) of 5 stopped", log)}
fine = {int(k) for k in re.findall(r"siamese fold (\d+) of 5: \d+ train", log)}
assert stopped == {k for k in range(5) if st[k] != "ok"}, (stopped, st)
assert fine == {k for k in range(5) if st[k] == "ok"}, (fine, st)
for k in stopped:  # the log's reason is the file's status of the same fold
    assert st[k][:40] in log, (k, st[k])
PYEOF

# a run where some folds collapse to a constant prediction (Adam at lr 0.02 without warm-up
# kills every ReLU unit of a layer; found by trying, deterministic): the run succeeds, those
# folds are flagged in their status, the log and the report, and they count in the mean
cp "$W/base.h5" "$W/col.h5"
"$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.lr=0.02 --set train.warmup=0 --set train.epochs=3 \
  --set run.output="$W/col.h5" -v >"$W/out" 2>&1 && ok || { bad "collapsing run failed"; cat "$W/out"; }
"$RDMLEARN" report "$W/col.h5" -o "$W/colrep" -q >"$W/log" 2>&1 && ok || { bad "report of the collapsed run"; cat "$W/log"; }
$PY - "$W/col.h5" "$W/out" "$W/colrep/report.html" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "collapsed folds"; cat "$W/log"; }
import sys, re, h5py, numpy as np
g = h5py.File(sys.argv[1], "r")["/experiments/main/siamese/subj01/V1"]
log, html = open(sys.argv[2]).read(), open(sys.argv[3]).read()
col, r2 = [], []
for k in range(5):
    fg = g[f"fold_{k}"]
    st, p, y = fg.attrs["status"], fg["pred"][()], fg["target"][()]
    spread = p.std() / y.std()
    assert abs(fg.attrs["prediction_spread_test"] - spread) < 1e-6, (k, spread)
    assert fg.attrs["collapsed"] == (spread <= 0.01), (k, spread, st)   # std <= 1% of the targets'
    if fg.attrs["collapsed"]:
        assert st.startswith("collapsed: constant prediction") and "never active" in st and "hint: lower train.lr" in st, st
        assert fg.attrs["prediction_spread_train"] <= 0.01 and fg.attrs["dead_unit_fraction"] > 0.3, dict(fg.attrs)
        assert re.search(rf"warning: subj01 V1 siamese fold {k + 1}/5 \(test R2 .*collapsed: constant prediction", log), k
        assert st in html, k                                            # the report's fold table
        col.append(k)
    else:
        assert st == "ok" and fg.attrs["prediction_spread_train"] > 0.01, (k, st)
    r2.append(fg.attrs["r2"])
n = len(col)
assert 1 <= n <= 4, col                                                 # a mix: some collapse
assert g.attrs["n_folds_collapsed"] == n and g.attrs["n_folds_finished"] == 5
assert abs(g.attrs["mean_r2"] - np.mean(r2)) < 1e-12                    # counted in the mean
assert abs(g.attrs["mean_r2_not_collapsed"] - np.mean([r2[k] for k in range(5) if k not in col])) < 1e-12
assert f"5/5 folds ({n} collapsed to a constant prediction, counted in the mean; without: test R2" in log, log
assert f"Warning:</strong> {n} of the 5 folds collapsed to a constant prediction" in html
assert re.search(r"debug: fit 0 epoch 0: dead units per layer 0/64 \d+/32 \d+/32", log), log  # -v shows the units
PYEOF

# ---- bad input: each fails with a message and leaves the file as it was ----
cp "$W/base.h5" "$W/bad.h5"
sum0=$(md5sum <"$W/bad.h5")
expect_fail() { # what, pattern, args...
  local what=$1 pat=$2; shift 2
  if "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set run.output="$W/bad.h5" "$@" >"$W/out" 2>&1; then
    bad "$what: succeeded"
  elif ! grep -q -- "$pat" "$W/out"; then
    bad "$what: message lacks '$pat'"; cat "$W/out"
  elif [ "$(md5sum <"$W/bad.h5")" != "$sum0" ]; then
    bad "$what: results file changed"
  else ok; fi
}
expect_fail "embedding width" "train.input_dim = 100" --set train.input_dim=100
expect_fail "diverging run" "diverged" --set train.lr=1e30 --set train.epochs=3
expect_fail "zero tower width" "train.tower" --set train.tower=0
expect_fail "a CNN batch above the memory limit" "train.max_memory_gb allows 0.01 GB per rank (hint: lower train.block_images" \
  --set train.model=cnn --set train.max_memory_gb=0.01 --set train.batch=4096
expect_fail "three CNN channels" "cnn_channels has 3 values" --set train.model=cnn --set train.cnn_channels=2,3,4
expect_fail "bad grid widths" 'train_tower item "64:x"' --set grid.train_tower=32:16,64:x
expect_fail "grid dropout for the cnn" "train.model = cnn has no dropout" --set train.model=cnn --set grid.train_dropout=0,0.5
expect_fail "classification score for a grid" "classification score" --set grid.train_lr=0.001,0.01 --set grid.scoring=accuracy
# the SVM's pairs and folds in experiment "shared": a network in the same experiment would
# replace them, so it is refused with a hint; under its own experiment name it runs
"$RDMLEARN" svm "$W/ds" "${COMMON[@]}" --set pairs.set=extremes --set pairs.k=5 --set pairs.experiment=shared \
  --set run.output="$W/bad.h5" >"$W/out" 2>&1 || { bad "svm for the shared experiment"; cat "$W/out"; }
sum0=$(md5sum <"$W/bad.h5")
expect_fail "a network in the SVM's experiment" "holds the pairs and folds of its svm results" \
  --set pairs.experiment=shared --set train.epochs=1
grep -qF "pairs.experiment = shared-siamese" "$W/out" && ok || bad "owner hint: $(cat "$W/out")"
"$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set pairs.experiment=shared-siamese --set train.epochs=1 \
  --set run.output="$W/bad.h5" >"$W/out" 2>&1 && ok || { bad "own experiment after the refusal"; cat "$W/out"; }
sum0=$(md5sum <"$W/bad.h5")
# another network on other pairs in that experiment would orphan the siamese results
expect_fail "other pairs under the siamese results" "holds the pairs and folds of its siamese results" \
  --set pairs.experiment=shared-siamese --set train.model=mlp --set pairs.set=extremes --set pairs.k=5
$PY - "$W/bad.h5" <<'PYEOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    d = f["/subjects/subj01/rdm/V1"]; r = d[()]; r[3, 7] = r[7, 3] = np.nan; d[...] = r
PYEOF
sum0=$(md5sum <"$W/bad.h5")
expect_fail "NaN in the RDM" "7" 

# SIGTERM to one rank of a standalone `rdmlearn train` (not `run`): the stage stops at its next
# task with exit status 10 on every rank, and the results file is as it was
cp "$W/base.h5" "$W/term.h5"
sum0=$(md5sum <"$W/term.h5")
"${MPI[@]}" -n 2 "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.epochs=40 --set split.folds=10 \
  --set pairs.experiment=term --set run.output="$W/term.h5" >"$W/logterm" 2>&1 &
pid=$!
for _ in $(seq 1 300); do ls "$W"/term.h5.journal/* >/dev/null 2>&1 && break; sleep 0.1; done
kill -TERM "$(pgrep -f "^$RDMLEARN train $W/ds" | head -1)" 2>/dev/null
wait $pid; st=$?
[[ $st == 10 ]] && grep -q "stopped by a signal after" "$W/logterm" && [[ "$(md5sum <"$W/term.h5")" == "$sum0" ]] \
  && ok || { bad "SIGTERM during train: exit status $st"; tail -3 "$W/logterm"; }

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
