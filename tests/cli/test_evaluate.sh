#!/usr/bin/env bash
# `rdmlearn evaluate` end to end on a small synthetic dataset (synth -> rdm -> embed gabor and
# pixels -> svm as an SVR on all pairs -> a fake /encode group -> evaluate):
#  - the scores equal scipy on the same vectors read back with h5py (the brain RDM, the
#    embedding's model RDM recomputed in numpy, the fold's targets and predictions, the
#    encoding model's predicted RDM), the noise ceiling equals the rdm stage's, q is the
#    Benjamini-Hochberg step-up of p, and the CSV table holds the file's numbers;
#  - the results are identical at 1 and 3 ranks (tools/compare_results.py);
#  - the planted truth shows: in V1 the Gabor embedding beats pixels for every subject, the
#    difference significant after correction (docs/evaluate.md, docs/synth.md);
#  - `run` runs the stage after the model stages and skips it when nothing changed;
#  - bad input (RDM and embedding on different image sets, too few images for the
#    bootstrap, a constant model RDM, an unknown method) fails with a clear message and
#    leaves the results file untouched;
#  - null check: a model unrelated to the data is significant after correction in no more of
#    100 seeded null datasets (small RDMs written with h5py) than a level-0.05 test allows
#    (<= 10: the binomial 99% bound; 6 measured).
set -uo pipefail
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=2 --set synth.images=80 --set synth.image_size=32 \
  --set synth.lh_vertices=400 --set synth.rh_vertices=400 --set synth.test_images=0 || { echo "synth failed"; exit 1; }
D=(--set data.rois=V1,class:Faces --set run.output="$W/base.h5" -q)
"$RDMLEARN" rdm "$W/ds" "${D[@]}" || { echo "rdm failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" "${D[@]}" --set embed.backend=gabor || { echo "embed failed"; exit 1; }
"$RDMLEARN" embed "$W/ds" "${D[@]}" --set embed.backend=pixels || { echo "embed failed"; exit 1; }
"$RDMLEARN" svm "$W/ds" "${D[@]}" --set data.rois=V1 --set embed.name=gabor --set pairs.experiment=svr \
  --set pairs.set=all --set pairs.labels=continuous --set svm.type=epsilon_svr || { echo "svm failed"; exit 1; }
# the encoding model's contract (another stage writes it): a predicted RDM of fold 0's test
# images; here the gabor model RDM of those images plus noise
$PY - "$W/base.h5" <<'PYEOF' || { echo "fake encode failed"; exit 1; }
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r+") as f:
    for s in ("subj01", "subj02"):
        fold = f[f"/experiments/svr/pairs/{s}/V1/fold"][()]
        rows = np.flatnonzero(fold == 0).astype(np.int64)
        X = f[f"/subjects/{s}/embeddings/gabor"][()].astype(np.float64)[rows]
        R = 1 - np.corrcoef(X) + np.random.default_rng(0).normal(0, 0.05, (len(rows), len(rows)))
        R = ((R + R.T) / 2).astype(np.float32)
        np.fill_diagonal(R, 0)
        g = f.create_group(f"/encode/gabor/{s}/V1/fold_0")
        g["pred_rdm"] = R
        g["test_images"] = rows
PYEOF

E=(--set data.rois=V1,class:Faces --set evaluate.bootstrap=100 --set evaluate.permutations=500
   --set evaluate.methods=spearman,pearson,kendall_tau_a --set evaluate.bootstrap_subjects=true -q)
cp "$W/base.h5" "$W/out.h5"
"$RDMLEARN" evaluate "${E[@]}" --set run.output="$W/out.h5" && ok || bad "evaluate at 1 rank"
cp "$W/out.h5" "$W/np1.h5"; cp "$W/out.evaluate.csv" "$W/np1.csv"

# ---- the numbers against scipy on the same vectors
$PY - "$W/np1.h5" "$W/np1.csv" <<'PYEOF' && ok || bad "scores against scipy"
import sys, csv, h5py, numpy as np
from scipy.stats import spearmanr, pearsonr
def tau_a(a, b):
    n = len(a); s = 0
    for i in range(n):
        s += np.sum(np.sign(a[i] - a[i + 1:]) * np.sign(b[i] - b[i + 1:]))
    return s / (n * (n - 1) / 2)
meth = {"spearman": lambda a, b: spearmanr(a, b)[0], "pearson": lambda a, b: pearsonr(a, b)[0], "kendall_tau_a": tau_a}
f = h5py.File(sys.argv[1], "r")
ev = f["/evaluate"]
assert ev.attrs["n_bootstrap"] == 100 and ev.attrs["n_permutations"] == 500 and ev.attrs["correction"] == "bh"
iu = np.triu_indices(80, 1)
for sel in ("V1", "class:Faces"):
    g = ev[f"rdm/{sel}"]
    models = list(g["models"].asstr()[()])
    assert models == ["gabor", "pixels"], models
    for i, s in enumerate(g["subjects"][()]):
        B = f[f"/subjects/subj{s:02d}/rdm/{sel}"][()].astype(np.float64)[iu]
        for e, m in enumerate(models):
            X = f[f"/subjects/subj{s:02d}/embeddings/{m}"][()].astype(np.float64)
            M = (1 - np.corrcoef(X)).astype(np.float32).astype(np.float64)[iu]
            for name, fn in meth.items():
                got = g[f"{name}/score"][i, e]
                assert abs(got - fn(B, M)) < 1e-6, (sel, s, m, name, got, fn(B, M))
                lo, hi = g[f"{name}/ci_low"][i, e], g[f"{name}/ci_high"][i, e]
                assert lo <= got <= hi or abs(got) < 0.05, (lo, got, hi)
    # the noise ceiling: the rdm stage's on the same shared images (both mean pooling)
    for name in meth:
        nc = g[f"{name}/noise_ceiling"][()]
        a = f[f"/rsa/{sel}/{name}"].attrs
        assert np.allclose(nc, [a["noise_ceiling_lower"], a["noise_ceiling_upper"]], atol=1e-12), (nc, dict(a))
# q: the Benjamini-Hochberg step-up over every subject x selection x model, per method
for name in meth:
    p = np.concatenate([ev[f"rdm/{s}/{name}/p"][()].ravel() for s in ("V1", "class:Faces")])
    q = np.concatenate([ev[f"rdm/{s}/{name}/q"][()].ravel() for s in ("V1", "class:Faces")])
    o = np.argsort(p, kind="stable"); n = len(p)
    bh = np.minimum.accumulate((p[o] * n / np.arange(1, n + 1))[::-1])[::-1]
    ref = np.empty(n); ref[o] = np.minimum(bh, 1)
    assert np.allclose(q, ref, rtol=1e-12), (q, ref)
# folds: the SVR's predictions, the embedding's values and the encoding model's predicted RDM
# on the fold's test pairs, scored against the pairs' RDM values
for s in ("subj01", "subj02"):
    g = ev[f"folds/svr/V1/{s}"]
    models = list(g["models"].asstr()[()])
    assert models == ["svm", "embedding:gabor", "embedding:pixels", "encode:gabor"], models
    pg = f[f"/experiments/svr/pairs/{s}/V1"]
    ij, val = pg["ij"][()], pg["value"][()]
    X = f[f"/subjects/{s}/embeddings/gabor"][()].astype(np.float64)
    G = (1 - np.corrcoef(X)).astype(np.float32)
    for fold in g["folds"][()]:
        fg = f[f"/experiments/svr/svm/{s}/V1/fold_{fold}"]
        tp = fg["test_pairs"][()]
        tgt, a, b = val[tp], ij[tp, 0], ij[tp, 1]
        for name, fn in meth.items():
            sc = g[f"{name}/score"][fold]
            assert abs(sc[0] - fn(tgt, fg["prediction"][()])) < 1e-12, (s, fold, name)
            assert abs(sc[1] - fn(tgt, G[a, b].astype(np.float64))) < 1e-6
            if fold == 0:
                e = f[f"/encode/gabor/{s}/V1/fold_0"]
                pos = {r: k for k, r in enumerate(e["test_images"][()])}
                P = e["pred_rdm"][()].astype(np.float64)
                ref = fn(tgt, P[[pos[x] for x in a], [pos[x] for x in b]])
                assert abs(sc[3] - ref) < 1e-12, (sc[3], ref)
            else:
                assert np.isnan(sc[3])
        assert g["spearman/perm_scheme"].asstr()[fold] in ("images", "images_full")
    nc, why = g["spearman/noise_ceiling"][()], g["noise_ceiling_reason"].asstr()[()]
    assert all((np.isfinite(nc[k]).all() and w == "") or (np.isnan(nc[k]).all() and w) for k, w in enumerate(why))
# the CSV holds the file's numbers
rows = list(csv.DictReader(open(sys.argv[2])))
r = [x for x in rows if x["analysis"] == "rdm" and x["subject"] == "2" and x["selection"] == "V1"
     and x["model"] == "pixels" and x["method"] == "pearson"]
assert len(r) == 1 and float(r[0]["score"]) == ev["rdm/V1/pearson/score"][1, 1]
assert float(r[0]["q"]) == ev["rdm/V1/pearson/q"][1, 1]
assert {x["analysis"] for x in rows} == {"rdm", "rdm-group", "folds:svr"}
PYEOF

# ---- 1 and 3 ranks give the same file
cp "$W/base.h5" "$W/out.h5"
"${MPI[@]}" -n 3 "$RDMLEARN" evaluate "${E[@]}" --set run.output="$W/out.h5" && ok || bad "evaluate at 3 ranks"
$PY "$RDML_SRC/tools/compare_results.py" "$W/np1.h5" "$W/out.h5" --ignore ranks >"$W/log" 2>&1 && ok \
  || { bad "1 and 3 ranks differ"; cat "$W/log"; }
cmp -s "$W/np1.csv" "$W/out.evaluate.csv" && ok || bad "CSV differs between 1 and 3 ranks"

# ---- the resamples of an analysis do not depend on the other selections: data.rois in the
# other order gives the same numbers (the q values too: the same p-values are corrected)
cp "$W/base.h5" "$W/rev.h5"
"$RDMLEARN" evaluate "${E[@]}" --set data.rois=class:Faces,V1 --set run.output="$W/rev.h5" && ok || bad "evaluate reversed"
$PY - "$W/np1.h5" "$W/rev.h5" <<'PYEOF' && ok || bad "data.rois order changes the results"
import sys, h5py, numpy as np
a, b = (h5py.File(x, "r")["/evaluate/rdm"] for x in sys.argv[1:])
n = 0
def cmp(name, o):
    global n
    if isinstance(o, h5py.Dataset) and o.dtype.kind == "f":
        assert np.array_equal(o[()], b[name][()], equal_nan=True), name
        n += 1
a.visititems(cmp)
assert n > 50, n
PYEOF

# ---- planted truth: V1 reads oriented energy (docs/synth.md), so gabor beats pixels
$PY - "$W/np1.h5" <<'PYEOF' && ok || bad "planted truth (V1: gabor > pixels)"
import sys, h5py, numpy as np
g = h5py.File(sys.argv[1], "r")["/evaluate/rdm/V1/spearman"]
s, dq = g["score"][()], [h5py.File(sys.argv[1], "r")[f"/evaluate/rdm/V1/subj0{k}/spearman/diff_q"][0, 1] for k in (1, 2)]
print("V1 spearman gabor", s[:, 0].round(3), "pixels", s[:, 1].round(3), "diff q", np.round(dq, 4),
      "noise ceiling", g["noise_ceiling"][()].round(3))
assert (s[:, 0] > s[:, 1] + 0.2).all() and (np.array(dq) < 0.05).all() and (g["q"][:, 0] < 0.05).all()
PYEOF

# ---- run: the stage runs after the model stages and is skipped when nothing changed
cat >"$W/job.ini" <<EOF
[data]
root = $W/ds
rois = V1
[evaluate]
bootstrap = 20
permutations = 50
[run]
stages = rdm, embed, evaluate
output = $W/run.h5
EOF
"$RDMLEARN" run "$W/job.ini" >"$W/run1.log" 2>&1 && grep -q "run: stage evaluate done" "$W/run1.log" && ok \
  || { bad "run with evaluate"; cat "$W/run1.log"; }
"$RDMLEARN" run "$W/job.ini" >"$W/run2.log" 2>&1 && grep -q "stage evaluate is up to date" "$W/run2.log" && ok \
  || { bad "run did not skip evaluate"; cat "$W/run2.log"; }

# ---- bad input: a clear error, the results file untouched
expect_error() {  # FILE PATTERN ARGS...: evaluate fails naming PATTERN, FILE keeps its bytes
  local file=$1 pat=$2; shift 2
  local before; before=$(md5sum <"$file")
  if "$RDMLEARN" evaluate --set run.output="$file" -q "$@" >"$W/err" 2>&1; then
    bad "evaluate $* should fail"; return
  fi
  grep -q -- "$pat" "$W/err" && ok || { bad "message for $*: $(cat "$W/err")"; }
  [ "$(md5sum <"$file")" = "$before" ] && ok || bad "$file changed by a failed evaluate $*"
  ls "$file".tmp-* >/dev/null 2>&1 && bad "temporary file left for $*" || ok
}
# the RDM on 40 images, the embedding on 30: the ids of rows 30-39 are named
cp "$W/base.h5" "$W/bad.h5"
"$RDMLEARN" embed "$W/ds" -q --set run.output="$W/bad.h5" --set embed.backend=gabor --set data.images=30
"$RDMLEARN" rdm "$W/ds" -q --set run.output="$W/bad.h5" --set data.rois=V1 --set data.images=40
ids=$($PY -c "import h5py,sys; print(', '.join(str(x) for x in h5py.File(sys.argv[1])['/subjects/subj01/images/nsd_id'][30:38]))" "$W/bad.h5")
expect_error "$W/bad.h5" "NSD ids $ids, ... (10 in all) have no embedding row" --set data.rois=V1 --set evaluate.embeddings=gabor
"$RDMLEARN" evaluate -q --set run.output="$W/bad.h5" --set data.rois=V1 --set evaluate.embeddings=gabor \
  --set evaluate.image_sets=shared --set evaluate.bootstrap=10 --set evaluate.permutations=10 \
  && $PY -c "import h5py,sys; assert h5py.File(sys.argv[1])['/evaluate/rdm/V1/n_images'][0] == 30" "$W/bad.h5" \
  && ok || bad "image_sets = shared compares on the 30 shared images"
# too few images for the bootstrap
"$RDMLEARN" rdm "$W/ds" -q --set run.output="$W/few.h5" --set data.rois=V1 --set data.images=6
"$RDMLEARN" embed "$W/ds" -q --set run.output="$W/few.h5" --set data.images=6
expect_error "$W/few.h5" "6 images are too few for the bootstrap" --set data.rois=V1
# a constant model RDM: identical embedding rows
cp "$W/base.h5" "$W/const.h5"
$PY -c "import h5py,sys,numpy as np; f=h5py.File(sys.argv[1],'r+'); [f.create_dataset(f'/subjects/{s}/embeddings/flat', data=np.tile(np.arange(5, dtype=np.float32), (80, 1))) for s in ('subj01','subj02')]" "$W/const.h5"
expect_error "$W/const.h5" "the model RDM of embedding flat (correlation distance) is constant" --set data.rois=V1
# an unknown method
expect_error "$W/base.h5" "spearmanr" --set evaluate.methods=spearmanr

# ---- null check: 100 seeded datasets, the models unrelated to the brain RDM
$PY - "$W" "$RDMLEARN" <<'PYEOF' && ok || bad "null check"
import sys, os, subprocess, h5py, numpy as np
from concurrent.futures import ThreadPoolExecutor
W, R = sys.argv[1], sys.argv[2]
def one(seed):
    rng = np.random.default_rng(seed)
    path = f"{W}/null{seed}.h5"
    with h5py.File(path, "w") as f:
        f.create_group("/meta")
        f["/subjects/subj01/images/nsd_id"] = np.arange(24, dtype=np.int64)
        f["/subjects/subj01/rdm/V1"] = (1 - np.corrcoef(rng.normal(size=(24, 30)))).astype(np.float32)
        for m in ("a", "b"):  # two models unrelated to the brain RDM
            f[f"/subjects/subj01/embeddings/{m}"] = rng.normal(size=(24, 10)).astype(np.float32)
    # (not OMPI_MCA_ess_singleton_isolated: two such singletons at once share a job id, and
    # their MPI-IO shared-file-pointer files collide)
    p = subprocess.run([R, "evaluate", "--set", f"run.output={path}", "--set", "data.rois=V1",
                        "--set", "evaluate.bootstrap=0", "--set", "evaluate.permutations=200",
                        "--set", f"run.seed={seed}", "-q"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    with h5py.File(path, "r") as f:
        q = f["/evaluate/rdm/V1/spearman/q"][()]
    os.remove(path)
    assert q.shape == (1, 2) and np.isfinite(q).all(), q
    return [bool(x) for x in q[0] < 0.05]
with ThreadPoolExecutor(2) as pool:
    res = list(pool.map(one, range(100)))
hits = sum(any(r) for r in res)
per_model = [sum(r[k] for r in res) for k in range(2)]
print(f"null check: {hits} of 100 null datasets have a model significant after correction; "
      f"per model {per_model}")
# The issue's criterion, per unrelated model: not significant after correction in >= 95 of the
# 100 datasets (measured: 99 and 95; over seeds 1000-1999 97.4% and 97.1%). BH over the two
# models gives each about half the level; P(Binomial(100, 0.03) >= 8) < 1%, so a bound of 7
# only fails for a broken procedure, not for another draw of the seeds.
assert max(per_model) <= 7, per_model
# A valid level-0.05 procedure makes Binomial(100, <= 0.05) such datasets: 5 on average, more
# than 10 with probability 1.1%. (The issue's "at least 95 of 100" is the nominal level
# itself, which a seeded set of 100 exceeds by chance about half the time; docs/evaluate.md.)
assert hits <= 10, hits
PYEOF

echo "test_evaluate: $passes passed, $fails failed"
[ "$fails" -eq 0 ]
