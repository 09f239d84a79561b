#!/usr/bin/env bash
# `rdmlearn train` with a [grid] (nested cross-validation) on a small synthetic dataset:
#  - the grid results (inner scores, chosen settings, fold results) are bit-identical at 1, 2,
#    3 and 4 ranks;
#  - settings are listed in ParameterGrid order; every outer fold's inner folds use only its
#    training images; the chosen setting is the first with the best mean inner score, the fold
#    attributes name it, the mean and std are those of the stored inner scores;
#  - a setting whose inner fits diverge (Adam with lr 1e6) scores NaN or worse and is never
#    chosen; block batching and pair batching both run;
#  - an inner fold with one test pair is refused before training, the file unchanged;
#  - jobs/siamese-grid.ini is a valid job.
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}" "${RDML_SRC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=1 --set synth.images=120 --set synth.image_size=32 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "$W/ds" -q --set data.rois=V1 --set run.output="$W/base.h5" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" -q --set data.rois=V1 --set embed.backend=gabor --set run.output="$W/base.h5" \
  || { echo "embed failed"; exit 1; }
COMMON=(--set data.rois=V1 --set embed.backend=gabor --set pairs.set=all --set train.tower=32,16
        --set train.head=16 --set train.batch=256 --set train.epochs=2 --set grid.inner_folds=2
        --set grid.train_lr=1e6,0.003 --set grid.train_tower=16:8,32:16 --set grid.train_epochs=2,3 -q)

for np in 1 2 3 4; do
  cp "$W/base.h5" "$W/np$np.h5"
  "${MPI[@]}" -n $np "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set run.output="$W/np$np.h5" \
    && ok || bad "grid at $np ranks"
done
"$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set train.batching=pairs --set pairs.experiment=pb \
  --set run.output="$W/np1.h5" && ok || bad "grid with pair batching"

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
        assert obj.shape == o.shape, obj.name
        x, y = obj[()], o[()]
        assert (np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else np.array_equal(x, y)), obj.name
        n += 1
a["/experiments/main/siamese"].visititems(cmp)
assert n >= 50, n
PYEOF
for np in 2 3 4; do
  $PY "$W/same.py" "$W/np1.h5" "$W/np$np.h5" >"$W/log" 2>&1 && ok || { bad "grid np1 vs np$np differ"; cat "$W/log"; }
done

$PY - "$W/np1.h5" <<'PYEOF' >"$W/log" 2>&1 && ok || { bad "grid contents"; cat "$W/log"; }
import sys, h5py, numpy as np, itertools
f = h5py.File(sys.argv[1], "r")
pg = f["/experiments/main/pairs/subj01/V1"]
ij, fold = pg["ij"][()], pg["fold"][()]
for exp in ("main", "pb"):
    g = f[f"/experiments/{exp}/siamese/subj01/V1"]
    gr = g["grid"]
    assert gr.attrs["n_settings"] == 8 and gr.attrs["inner_folds"] == 2 and g.attrs["grid_settings"] == 8
    assert gr.attrs["scoring"] == "r2" and gr.attrs["axes"] == "epochs,lr,tower", gr.attrs["axes"]
    # ParameterGrid order: epochs slowest, then lr, tower fastest
    want = list(itertools.product([2, 3], [1e6, 0.003], ["16:8", "32:16"]))
    got = list(zip(gr["epochs"][()], gr["lr"][()], [t.decode() if isinstance(t, bytes) else t for t in gr["tower"][()]]))
    assert [(int(e), float(l), t) for e, l, t in got] == want, got
    chosen = gr["chosen"][()]
    assert len(chosen) == 5
    for k in range(5):
        fg = gr[f"fold_{k}"]
        sc = fg["inner_scores"][()]
        assert sc.shape == (8, 2)
        m = fg["mean"][()]
        assert np.allclose(m, sc.sum(1) / 2, equal_nan=True) and np.allclose(fg["std"][()], sc.std(1), equal_nan=True)
        mm = np.where(np.isnan(m), -np.inf, m)
        assert chosen[k] == int(np.argmax(mm)) == fg.attrs["chosen"], (k, chosen[k], m)
        assert np.allclose(gr["mean_inner_score"][k], m, equal_nan=True)
        # the diverging lr never wins: NaN or far below the others
        for s in range(8):
            if want[s][1] == 1e6:
                assert np.isnan(m[s]) or m[s] < np.nanmax(m) - 0.5, (k, s, m)
        inner = fg["inner_fold"][()]
        assert np.all(inner[fold == k] == -1) and np.all(inner[fold != k] >= 0)
        assert set(inner[fold != k]) == {0, 1}
        fk = g[f"fold_{k}"]
        assert fk.attrs["chosen"] == chosen[k] and fk.attrs["status"] == "ok"
        e, l, t = want[chosen[k]]
        assert fk.attrs["lr"] == l and fk.attrs["epochs_setting"] == e and fk.attrs["tower"] == t
        tl = fk["train_loss"][()]
        assert len(tl) == 3 and np.all(np.isfinite(tl[:e])) and np.all(np.isnan(tl[e:]))
    t = g["table"][()]
    print(exp, "chosen", list(chosen), "test R2 %.3f +- %.3f, mean predictor %.3f, shuffled %.3f" % (t[0, 0], t[0, 1], t[1, 0], t[2, 0]))
    assert g.attrs["n_folds_finished"] == 5
    assert t[0, 0] > t[1, 0] and t[0, 0] > t[2, 0]
PYEOF
cat "$W/log"

# an inner fold of two images holds one test pair: R^2 is undefined, said before any training
cp "$W/base.h5" "$W/inner.h5"; sum0=$(md5sum <"$W/inner.h5")
if "$RDMLEARN" train "$W/ds" "${COMMON[@]}" --set grid.inner_folds=48 --set run.output="$W/inner.h5" >"$W/out" 2>&1; then
  bad "48 inner folds accepted"
elif grep -q "outer fold 0, inner fold 0 of 48 has 1 test pairs; R^2 needs at least 2" "$W/out" \
     && [ "$(md5sum <"$W/inner.h5")" = "$sum0" ]; then ok
else bad "inner fold message: $(cat "$W/out")"; fi

# the committed grid job is a valid configuration
(cd "$RDML_SRC" && "$RDMLEARN" config --config jobs/siamese-grid.ini >"$W/cfg" 2>&1) && grep -q "train_lr" "$W/cfg" \
  && ok || { bad "jobs/siamese-grid.ini"; cat "$W/cfg"; }

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
