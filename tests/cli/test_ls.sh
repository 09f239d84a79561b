#!/usr/bin/env bash
# `rdmlearn ls RESULTS.h5 [--json]` on a small results file built by the stages (synth -> rdm
# -> embed -> encode -> svm [+ grid, + SVR] -> train -> evaluate):
#  - it runs without mpirun; --json is valid JSON whose values equal h5py reads of the same
#    file (subjects, images, RDM sizes / vertices / metric / threshold, RSA noise ceilings,
#    embeddings, every model result's headline mean and std and folds, grid choices, stages
#    with their config hashes in pipeline order, /meta/done, version, every encoding model's
#    sizes and selection statistics, every /evaluate score of the model RDMs (per subject and
#    group, with interval, p, q, noise ceiling) and of the folds);
#  - the text form holds the same numbers in aligned columns;
#  - on 2 ranks only rank 0 prints (the same bytes as on one rank);
#  - the file's bytes are unchanged (md5sum);
#  - folds the file marks as diverged / not converged are counted;
#  - a file with the RDM stage only and an empty HDF5 file list what is absent;
#  - a missing path (exit 5), a non-HDF5 and a truncated file (exit 6): clear errors with a
#    hint, printed once on 2 ranks.
# Every numeric dataset goes to the side file (RDML_H5_SPLIT_BYTES=0, docs/results.md), so ls
# reads datasets and their attributes through external links, and the copies made with cp in
# the same folder share side files that no command may delete.
set -uo pipefail
export RDML_H5_SPLIT_BYTES=0
: "${RDMLEARN:?}" "${MPIEXEC:?}"
PY=/usr/bin/python3
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
MPI=("$MPIEXEC" --oversubscribe --allow-run-as-root --bind-to none)
fails=0 passes=0
ok() { passes=$((passes+1)); }
bad() { echo "FAIL: $*"; fails=$((fails+1)); }

D=(--set data.root="$W/ds" -q)
"$RDMLEARN" synth "$W/ds" -q --set synth.subjects=2 --set synth.images=60 --set synth.image_size=24 \
  --set synth.lh_vertices=300 --set synth.rh_vertices=300 --set synth.test_images=0 \
  || { echo "synth failed"; exit 1; }
"$RDMLEARN" rdm "${D[@]}" --set data.rois=V1,hV4 --set run.output="$W/only_rdm.h5" || { echo "rdm failed"; exit 1; }
cp "$W/only_rdm.h5" "$W/r.h5"
E=("${D[@]}" --set embed.backend=gabor --set run.output="$W/r.h5")
"$RDMLEARN" embed "${E[@]}" --set data.rois=V1 || { echo "embed failed"; exit 1; }
"$RDMLEARN" encode "${E[@]}" --set data.rois=V1 --set encode.mode=kfold || { echo "encode failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.rois=V1,hV4 --set pairs.k=8 || { echo "svm failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.subjects=1 --set data.rois=V1 --set pairs.k=8 --set pairs.experiment=grid \
  --set grid.svm_c=0.1,1 --set grid.inner_folds=2 || { echo "svm grid failed"; exit 1; }
"$RDMLEARN" svm "${E[@]}" --set data.subjects=1 --set data.rois=V1 --set pairs.k=8 --set pairs.experiment=svr \
  --set pairs.labels=continuous --set svm.type=epsilon_svr || { echo "svm svr failed"; exit 1; }
"$RDMLEARN" train "${E[@]}" --set data.rois=V1 --set pairs.experiment=net --set pairs.set=all \
  --set train.tower=16,8 --set train.head=8 --set train.epochs=2 || { echo "train failed"; exit 1; }
"$RDMLEARN" evaluate "${E[@]}" --set data.rois=V1,hV4 --set evaluate.methods=spearman,pearson \
  --set evaluate.bootstrap=50 --set evaluate.permutations=100 --set evaluate.fold_experiments=main \
  || { echo "evaluate failed"; exit 1; }

sum0=$(md5sum <"$W/r.h5")
# serial, no mpirun
"$RDMLEARN" ls "$W/r.h5" >"$W/ls.txt" 2>"$W/err" && ok || { bad "ls"; cat "$W/err"; }
"$RDMLEARN" ls "$W/r.h5" --json >"$W/ls.json" 2>"$W/err" && ok || { bad "ls --json"; cat "$W/err"; }
[ ! -s "$W/err" ] && ok || { bad "ls --json wrote to stderr"; cat "$W/err"; }
# 2 ranks: rank 0 alone prints, the same bytes
"${MPI[@]}" -n 2 "$RDMLEARN" ls "$W/r.h5" --json >"$W/ls2.json" 2>"$W/err" && ok || { bad "ls on 2 ranks"; cat "$W/err"; }
cmp -s "$W/ls.json" "$W/ls2.json" && ok || { bad "2 ranks printed something else"; diff "$W/ls.json" "$W/ls2.json" | head; }
"${MPI[@]}" -n 2 "$RDMLEARN" ls "$W/r.h5" >"$W/ls2.txt" 2>&1 && cmp -s "$W/ls.txt" "$W/ls2.txt" && ok \
  || { bad "text on 2 ranks differs"; diff "$W/ls.txt" "$W/ls2.txt" | head; }
[ "$(md5sum <"$W/r.h5")" == "$sum0" ] && ok || bad "ls changed the results file"
"$RDMLEARN" ls --help | grep -q -- "--json" && ok || bad "ls --help"

cat >"$W/check.py" <<'PYEOF'
import sys, json, math, re, h5py, numpy as np
doc = json.load(open(sys.argv[1]))
text = open(sys.argv[2], encoding="utf-8").read()
f = h5py.File(sys.argv[3], "r")
def s(v): return v.decode() if isinstance(v, bytes) else str(v)
def same(a, b):
    if b is None or (isinstance(b, float) and math.isnan(b)): return a is None
    return a is not None and abs(a - float(b)) <= 1e-12 * max(1.0, abs(float(b)))
assert doc["file"] == sys.argv[3]
assert doc["rdmlearn_version"] == s(f["/meta"].attrs["rdmlearn_version"])
# provenance
st = {x["stage"]: x for x in doc["stages"]}
assert sorted(st) == sorted(f["/meta/stages"].keys()), (sorted(st), list(f["/meta/stages"]))
assert [x["stage"] for x in doc["stages"]] == ["rdm", "embed", "encode", "svm", "train", "evaluate"]
for k, g in f["/meta/stages"].items():
    assert st[k]["config_hash"] == s(g.attrs["config_hash"]) and st[k]["ranks"] == int(g.attrs["ranks"])
    assert st[k]["started"] == s(g.attrs["started"])
    assert st[k]["config_hash"] in text
assert doc["done"] == {k: s(v) for k, v in f["/meta/done"].attrs.items()}, doc["done"]
# subjects and RDMs
subs = {x["name"]: x for x in doc["subjects"]}
assert sorted(subs) == sorted(f["/subjects"].keys()) == ["subj01", "subj02"]
for name, x in subs.items():
    g = f["/subjects"][name]
    assert x["subject"] == int(name[4:]) and x["n_images"] == len(g["images/nsd_id"])
    rd = {r["selection"]: r for r in x["rdms"]}
    assert sorted(rd) == sorted(g["rdm"].keys()) == ["V1", "hV4"]
    for sel, r in rd.items():
        d = g["rdm"][sel]
        assert r["n_images"] == d.shape[0] == d.shape[1]
        assert r["n_vertices"] == int(d.attrs["n_vertices"]) and r["metric"] == s(d.attrs["metric"])
        assert same(r["threshold"], d.attrs["threshold"]) and same(r["dissimilar_fraction"], d.attrs["dissimilar_fraction"])
        # text: one aligned row naming the selection, its size and vertices
        assert re.search(rf"\b{sel}\s+{d.shape[0]} x {d.shape[0]}\s+{int(d.attrs['n_vertices'])}\s+{s(d.attrs['metric'])}\b", text), sel
# RSA
rsa = {x["selection"]: x for x in doc["rsa"]}
assert sorted(rsa) == sorted(f["/rsa"].keys())
for sel, x in rsa.items():
    g = f["/rsa"][sel]
    assert x["subjects"] == list(g["subjects"][()]) and x["n_shared_images"] == int(g.attrs["n_shared_images"])
    for m in x["methods"]:
        a = g[m["method"]].attrs
        assert same(m["noise_ceiling_lower"], a["noise_ceiling_lower"]) and same(m["noise_ceiling_upper"], a["noise_ceiling_upper"])
# embeddings
assert [e["name"] for e in doc["embeddings"]] == ["gabor"]
e = doc["embeddings"][0]
d = f["/subjects/subj01/embeddings/gabor"]
assert e["backend"] == s(d.attrs["backend"]) and e["dims"] == d.shape[1]
assert [(x["subject"], x["n_images"]) for x in e["subjects"]] == \
    [(int(n[4:]), f[f"/subjects/{n}/embeddings/gabor"].shape[0]) for n in ("subj01", "subj02")]
# experiments: every result group of the file, with its headline metric
seen = set()
for ex in doc["experiments"]:
    assert ex["pairs"]["pairs_hash"] == s(f[f"/experiments/{ex['name']}/pairs"].attrs["pairs_hash"])
    for m in ex["models"]:
        for r in m["results"]:
            path = f"/experiments/{ex['name']}/{m['model']}/subj{r['subject']:02d}/{r['selection']}"
            g = f[path]; seen.add(path)
            metric = "accuracy" if s(g.attrs.get("type", "")) == "c_svc" else "r2"
            assert r["metric"] == metric, (path, r["metric"])
            assert same(r["mean"], g.attrs["mean_" + metric]) and same(r["std"], g.attrs["std_" + metric]), path
            nf = len([k for k in g if re.fullmatch(r"fold_\d+", k)])
            assert r["folds"]["total"] == nf
            fin = int(g.attrs["n_folds_finished"]) if "n_folds_finished" in g.attrs else nf
            assert r["folds"]["finished"] == fin, (path, r["folds"])
            assert r["n_pairs"] == int(f[s(g.attrs["pairs"])].attrs["n_pairs"])
            row = f"{g.attrs['mean_' + metric]:.3f} ± {g.attrs['std_' + metric]:.3f}"
            assert row in text, (path, row)
want = set()
f["/experiments"].visititems(lambda n, o: want.add("/experiments/" + n) if isinstance(o, h5py.Group)
                             and ("mean_accuracy" in o.attrs or "mean_r2" in o.attrs) else None)
assert seen == want, (seen ^ want)
assert {(x["name"], tuple(mm["model"] for mm in x["models"])) for x in doc["experiments"]} == \
    {("main", ("svm",)), ("grid", ("svm",)), ("svr", ("svm",)), ("net", ("siamese",))}
metrics = {(x["name"], r["type"], r["metric"]) for x in doc["experiments"] for m in x["models"] for r in m["results"]}
assert metrics == {("main", "c_svc", "accuracy"), ("grid", "c_svc", "accuracy"), ("svr", "epsilon_svr", "r2"),
                   ("net", "siamese", "r2")}, metrics
# grid searches
assert len(doc["grids"]) == 1
gr = doc["grids"][0]; g = f["/experiments/grid/svm/subj01/V1/grid"]
assert gr["chosen"] == list(g["chosen"][()]) and gr["n_settings"] == int(g.attrs["n_settings"])
assert gr["axes"] == s(g.attrs["axes"]) and gr["inner_folds"] == int(g.attrs["inner_folds"])
# sweeps
assert {(x["experiment"], x["model"], x["tasks"]) for x in doc["sweeps"]} == \
    {(e, m, len(f[f"/sweep/{e}/{m}/tasks/fold"])) for e in f["/sweep"] for m in f[f"/sweep/{e}"]}
# encoding models: every /encode group, its sizes and the selection's row of roi_summary
enc_seen = set()
for x in doc["encode"]:
    path = f"/encode/{x['embedding']}/subj{x['subject']:02d}/{x['selection']}"
    g = f[path]; enc_seen.add(path); rs = g["roi_summary"]
    assert s(rs["roi_class"][-1]) == "selection"
    for k in ("n_images", "n_features", "n_vertices", "n_folds"): assert x[k] == int(g.attrs[k]), (path, k)
    for k in ("median_r", "mean_r", "share_positive", "median_r2", "median_noise_normalized"):
        assert same(x[k], rs[k][-1]), (path, k, x[k], rs[k][-1])
    assert re.search(rf"{x['embedding']}\s+subj{x['subject']:02d}\s+{x['selection']}\s+{x['n_images']}\s+"
                     rf"{x['n_features']}\s+{x['n_vertices']}\s+{x['n_folds']}\s+{rs['median_r'][-1]:.3f}\s", text), path
assert enc_seen == {f"/encode/gabor/{n}/V1" for n in ("subj01", "subj02")}, enc_seen
# model comparison: every subject x model score of /evaluate/rdm, the group's, the folds' means
ev = f["/evaluate"]; e = doc["evaluate"]
assert e["methods"] == s(ev.attrs["methods"]) and e["n_bootstrap"] == int(ev.attrs["n_bootstrap"])
rows = {(x["selection"], x["method"], x["subject"], x["model"]): x for x in e["rdm"]}
ev_want = set()
for sel in ev["rdm"]:
    g = ev["rdm"][sel]; models = [s(m) for m in g["models"][()]]
    for meth in ("spearman", "pearson"):
        mg = g[meth]; nc = mg["noise_ceiling"][()]
        for si, subj in enumerate(list(g["subjects"][()]) + [0]):
            src = mg["group"] if subj == 0 else None
            for mi, m in enumerate(models):
                x = rows[(sel, meth, int(subj), m)]; ev_want.add((sel, meth, int(subj), m))
                for k in ("score", "ci_low", "ci_high", "p", "q"):
                    v = src[k][mi] if subj == 0 else mg[k][si, mi]
                    assert same(x[k], v), (sel, meth, subj, m, k, x[k], v)
                assert same(x["noise_ceiling_lower"], nc[0]) and same(x["noise_ceiling_upper"], nc[1])
                assert f"{x['score']: .3f}  [{x['ci_low']:.3f}, {x['ci_high']:.3f}]" in text, (sel, meth, subj, m)
assert set(rows) == ev_want and len(ev_want) == 2 * 2 * 3, sorted(ev_want)
fo = {(x["experiment"], x["selection"], x["subject"], x["method"], x["model"]): x for x in e["folds"]}
n = 0
for sel in ev["folds/main"]:
    for subj in ev[f"folds/main/{sel}"]:
        g = ev[f"folds/main/{sel}/{subj}"]
        for meth in ("spearman", "pearson"):
            for mi, m in enumerate(s(v) for v in g["models"][()]):
                x = fo[("main", sel, int(subj[4:]), meth, m)]; n += 1
                assert same(x["mean"], g[meth]["mean"][mi]) and same(x["std"], g[meth]["std"][mi])
                assert x["folds"] == len(g["folds"]) and x["folds_scored"] == int(np.isfinite(g[meth]["score"][:, mi]).sum())
                assert re.search(rf"\b{sel}\s+{subj}\s+{meth}\s+{m}\s+{x['mean']: .3f} ± {x['std']:.3f}\s+"
                                 rf"{x['folds_scored']}/{x['folds']}\n", text), (sel, subj, meth, m)
assert n == len(fo) > 0, (n, len(fo))
# the text tables are aligned: in each table every row starts its columns where the header does
lines = text.split("\n")
for i, l in enumerate(lines):
    if l.startswith("  experiment  model    subject"):
        col = l.index("mean ± std"); j = i + 1
        while j < len(lines) and lines[j].startswith("  "):
            assert re.match(r"[ -]\d\.\d{3} ± \d\.\d{3}|n/a", lines[j][col:]), lines[j]; j += 1
        assert j - i - 1 == len(want), (j - i - 1, len(want))
        break
else:
    raise AssertionError("no experiments table:\n" + text)
print("ok")
PYEOF
$PY "$W/check.py" "$W/ls.json" "$W/ls.txt" "$W/r.h5" >"$W/log" 2>&1 && ok || { bad "JSON vs h5py"; cat "$W/log"; cat "$W/ls.txt"; }

# folds the file marks: two network folds diverged, one SVM fold not converged
cp "$W/r.h5" "$W/div.h5"
$PY - "$W/div.h5" <<'PYEOF' || bad "set-up of the diverged file"
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    g = f["/experiments/net/siamese/subj01/V1"]
    for k in (3, 4): g[f"fold_{k}"].attrs["status"] = "diverged in epoch 1: the training loss became inf at step 3"
    g.attrs["n_folds_finished"] = 3
    f["/experiments/main/svm/subj02/hV4/fold_1"].attrs["converged"] = 0
PYEOF
"$RDMLEARN" ls "$W/div.h5" --json >"$W/div.json" && "$RDMLEARN" ls "$W/div.h5" >"$W/div.txt" && ok || bad "ls of the diverged file"
$PY - "$W/div.json" <<'PYEOF' && ok || bad "diverged folds in JSON"
import sys, json
doc = json.load(open(sys.argv[1]))
res = {(e["name"], m["model"], r["subject"], r["selection"]): r for e in doc["experiments"] for m in e["models"] for r in m["results"]}
assert res[("net", "siamese", 1, "V1")]["folds"] == {"total": 5, "finished": 3, "diverged": 2, "collapsed": 0, "stopped_other": 0}
assert res[("main", "svm", 2, "hV4")]["folds"] == {"total": 5, "finished": 5, "not_converged": 1}
assert res[("main", "svm", 1, "hV4")]["folds"]["not_converged"] == 0
PYEOF
grep -q "3/5 (2 diverged)" "$W/div.txt" && grep -q "5/5 (1 not converged)" "$W/div.txt" && ok \
  || { bad "diverged folds in the text"; cat "$W/div.txt"; }

# a file with the RDM stage only; an empty HDF5 file
"$RDMLEARN" ls "$W/only_rdm.h5" >"$W/o.txt" 2>&1 && grep -q "none (rdmlearn embed writes them)" "$W/o.txt" \
  && grep -q "none (rdmlearn svm and rdmlearn train write them)" "$W/o.txt" && grep -q "subj02" "$W/o.txt" \
  && grep -q "none (rdmlearn encode writes them)" "$W/o.txt" && grep -q "none (rdmlearn evaluate writes it)" "$W/o.txt" && ok \
  || { bad "RDM-only file"; cat "$W/o.txt"; }
$PY -c "import h5py, sys; h5py.File(sys.argv[1], 'w').close()" "$W/empty.h5"
"$RDMLEARN" ls "$W/empty.h5" --json >"$W/e.json" 2>&1 && $PY -c "
import json, sys; d = json.load(open(sys.argv[1]))
assert d['subjects'] == [] and d['experiments'] == [] and d['stages'] == [] and d['rdmlearn_version'] is None, d
assert d['encode'] == [] and d['evaluate'] is None, d" "$W/e.json" \
  && ok || { bad "empty HDF5 file"; cat "$W/e.json"; }

# bad input: exit status (docs: 5 = I/O, 6 = format) and a message naming the file with a hint
expect_fail() { # NAME STATUS NEEDLE FILE [ranks]
  local name=$1 want=$2 needle=$3 file=$4 np=${5:-1}
  if [ "$np" -gt 1 ]; then "${MPI[@]}" -n "$np" "$RDMLEARN" ls "$file" >"$W/out" 2>"$W/errout"
  else "$RDMLEARN" ls "$file" >"$W/out" 2>"$W/errout"; fi
  local rc=$?
  [ $rc -eq "$want" ] && grep -qF -- "$needle" "$W/errout" && grep -q "hint" "$W/errout" \
    && [ "$(grep -c 'error:' "$W/errout")" -eq 1 ] && [ ! -s "$W/out" ] && ok \
    || { bad "$name: exit $rc (want $want)"; cat "$W/errout"; }
}
echo "not hdf5" >"$W/text.h5"
head -c 4000 "$W/r.h5" >"$W/trunc.h5"
expect_fail "missing file" 5 "$W/nope.h5: cannot open results file: No such file" "$W/nope.h5"
expect_fail "non-HDF5 file" 6 "$W/text.h5: not a readable HDF5 file" "$W/text.h5"
expect_fail "truncated file" 6 "$W/trunc.h5: " "$W/trunc.h5"
expect_fail "missing file on 2 ranks" 5 "$W/nope.h5: cannot open results file" "$W/nope.h5" 2
expect_fail "truncated file on 2 ranks" 6 "$W/trunc.h5: " "$W/trunc.h5" 2

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
