"""rdmlearn.Results against direct h5py reads of the same file (and the CSV tables)."""
import csv
import math
import os
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import squareform

import rdmlearn

MODELS = [("svm", "svm"), ("svm-grid", "svm"), ("svr", "svr"), ("regression", "siamese"), ("regression", "mlp"),
          ("div", "siamese")]


def same(a, b):
    """Equal arrays, NaN equal to NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f" and b.dtype.kind == "f")


def groups_of(h5, experiment, model):
    """(subject number, selection, h5py group) of every result group of a model."""
    g = h5[f"/experiments/{experiment}/{'svm' if model == 'svr' else model}"]
    return [(int(s[4:]), sel, g[s][sel]) for s in g for sel in g[s]]


def fold_groups(g):
    return sorted((k for k in g if k.startswith("fold_") and k[5:].isdigit()), key=lambda k: int(k[5:]))


def test_listing(res, h5):
    assert res.subjects == [1, 2] == sorted(int(s[4:]) for s in h5["/subjects"])
    assert set(res.selections) == {"V1", "class:Faces"} == set(h5["/subjects/subj01/rdm"])
    assert res.experiments == list(h5["/experiments"])
    assert set(res.experiments) == {"svm", "svm-grid", "svr", "regression", "div"}
    assert sorted(res.models("regression")) == ["mlp", "siamese"]
    assert res.models("svm") == ["svm"] and res.models("svm-grid") == ["svm"]
    assert res.models("svr") == ["svr"]  # stored under .../svm, named as in the sweep
    assert list(h5["/sweep/svr"]) == ["svr"]
    assert res.models() == {e: res.models(e) for e in res.experiments}
    assert res.embeddings() == ["gabor"] == list(h5["/subjects/subj02/embeddings"])
    assert res.embeddings(2) == ["gabor"]
    assert set(res.stages) == set(h5["/meta/stages"]) == {"rdm", "embed", "svm", "train"}
    assert res.version == h5["/meta"].attrs["rdmlearn_version"]


@pytest.mark.parametrize("subject", [1, "subj02"])
def test_rdm(res, h5, subject):
    s = "subj01" if subject == 1 else "subj02"
    for sel in ("V1", "class:Faces"):
        r = res.rdm(subject, sel)
        ds = h5[f"/subjects/{s}/rdm/{sel}"]
        assert r.matrix.dtype == np.float32 and r.matrix.shape == ds.shape == (80, 80)
        assert np.array_equal(r.matrix, ds[()])
        assert np.array_equal(np.asarray(r), ds[()])
        assert np.array_equal(r.nsd_ids, h5[f"/subjects/{s}/images/nsd_id"][()])
        assert list(r.image_names) == list(h5[f"/subjects/{s}/images/names"].asstr()[()])
        # the file names carry the NSD id: the ids are really each row's image
        assert all(f"nsd-{i:05d}" in n for i, n in zip(r.nsd_ids, r.image_names))
        assert r.metric == ds.attrs["metric"] == "correlation"
        assert r.attrs["n_vertices"] == ds.attrs["n_vertices"]
        assert r.subject == int(s[4:]) and r.selection == sel
        assert np.array_equal(r.vector(), squareform(ds[()].astype(np.float64), checks=False).astype(np.float32))
        fr = r.to_frame()
        assert list(fr.index) == list(r.nsd_ids) and fr.loc[r.nsd_ids[3], r.nsd_ids[5]] == ds[3, 5]
    assert "80 x 80" in repr(res.rdm(subject, "V1"))


def test_embeddings_and_images(res, h5):
    for subject in (1, 2):
        s = f"subj{subject:02d}"
        e = res.embeddings(subject, "gabor")
        ds = h5[f"/subjects/{s}/embeddings/gabor"]
        assert e.values.shape == ds.shape and np.array_equal(e.values, ds[()])
        assert np.array_equal(e.nsd_ids, h5[f"/subjects/{s}/images/nsd_id"][()])
        assert e.attrs["backend"] == ds.attrs["backend"] and e.attrs["dims"] == ds.shape[1]
        im = res.images(subject)
        assert list(im["row"]) == list(range(80))
        assert np.array_equal(im["nsd_id"].to_numpy(), h5[f"/subjects/{s}/images/nsd_id"][()])
        assert list(im["name"]) == list(h5[f"/subjects/{s}/images/names"].asstr()[()])
    # the subjects see different images: the ids are per subject
    assert not np.array_equal(res.rdm(1, "V1").nsd_ids, res.rdm(2, "V1").nsd_ids)


def test_pairs(res, h5):
    for experiment, model in MODELS:
        for subject, sel, g in groups_of(h5, experiment, model):
            pg = h5[g.attrs["pairs"]]
            p = res.pairs(experiment, subject, sel)
            ij = pg["ij"][()]
            ids = h5[f"/subjects/subj{subject:02d}/images/nsd_id"][()]
            assert len(p) == ij.shape[0] == pg.attrs["n_pairs"]
            assert np.array_equal(p["pair"], np.arange(len(p)))
            assert np.array_equal(p["image_a"], ij[:, 0]) and np.array_equal(p["image_b"], ij[:, 1])
            assert np.array_equal(p["nsd_id_a"], ids[ij[:, 0]]) and np.array_equal(p["nsd_id_b"], ids[ij[:, 1]])
            assert np.array_equal(p["value"], pg["value"][()])
            assert ("label" in p) == ("label" in pg)
            if "label" in pg:
                assert np.array_equal(p["label"], pg["label"][()])
            # test_fold is derived from the images' folds: it must name exactly the pairs that
            # each fold of the model tested
            for fn in fold_groups(g):
                f = int(fn[5:])
                assert sorted(np.flatnonzero(p["test_fold"].to_numpy() == f)) == sorted(g[fn]["test_pairs"][()])


def test_folds(res, h5):
    for experiment, model in MODELS:
        t = res.folds(experiment, model)
        groups = groups_of(h5, experiment, model)
        rows = [(s, sel, g, fn) for s, sel, g in groups for fn in fold_groups(g)]
        assert len(t) == len(rows) == sum(len(fold_groups(g)) for *_, g in groups)
        assert len(rows) == (1 if experiment == "svm-grid" else 5) * len(groups)  # holdout: one fold
        classifier = experiment in ("svm", "svm-grid")
        metrics = ["accuracy", "precision", "recall", "f1", "roc_auc"] if classifier else ["r2", "mse", "pearson", "spearman"]
        cols = list(t.columns)
        assert cols[:6 + len(metrics)] == ["experiment", "model", "subject", "selection", "fold", "status"] + metrics
        network = model in ("siamese", "mlp")
        for m in metrics:  # chance levels: only the networks store them
            assert (f"mean_predictor_{m}" in cols) == network and (f"shuffled_{m}" in cols) == network
        if network:  # right after the metrics: model, mean predictor, shuffled targets
            k = 6 + len(metrics)
            assert cols[k:k + 2 * len(metrics)] == [f"mean_predictor_{m}" for m in metrics] + [f"shuffled_{m}" for m in metrics]
        assert set(t["model"]) == {model} and set(t["experiment"]) == {experiment}
        for i, (s, sel, g, fn) in enumerate(rows):
            row = t.iloc[i]
            a = g[fn].attrs
            assert (row["subject"], row["selection"], row["fold"]) == (s, sel, int(fn[5:]))
            fm = g["fold_metrics"][()][int(fn[5:])]
            for k, m in enumerate(metrics):
                assert row[m] == a[m] == fm[k] or (math.isnan(row[m]) and math.isnan(a[m]))
            for k in a:  # every attribute of the fold is a column, with its value
                v = a[k]
                if isinstance(v, (float, np.floating)) and math.isnan(v):
                    assert math.isnan(row[k]), k
                elif not isinstance(v, np.ndarray):
                    assert row[k] == v, (k, row[k], v)
            if network:
                assert row["status"] == a["status"]
                assert (row["status"] == "ok") == np.isfinite(row["r2"]) == (experiment != "div" or row["fold"] < 2)
            else:
                assert row["status"] == ("ok" if a["converged"] else "not converged")
        # the same numbers as the sweep table of the file
        tasks = h5[f"/sweep/{experiment}/{model}/tasks"]
        tcols = tasks["metrics"].attrs["columns"].split(",")
        M = tasks["metrics"][()]
        key = {(s, sel, f): i for i, (s, sel, f) in enumerate(zip(tasks["subject"][()], tasks["selection"].asstr()[()], tasks["fold"][()]))}
        for _, row in t.iterrows():
            i = key[(row["subject"], row["selection"], row["fold"])]
            for c, m in enumerate(tcols):
                assert same(M[i, c], row[m])
    grid = res.folds("svm-grid", "svm")
    assert {"setting", "setting_C", "setting_kernel"} <= set(grid.columns)
    assert "setting" not in res.folds("svm", "svm").columns
    assert {"chosen", "lr"} <= set(res.folds("regression", "mlp").columns)
    # the diverged folds: why they stopped, NaN metrics, the chance levels NaN too
    div = res.folds("div", "siamese")
    assert list(div["status"][:2]) == ["ok", "ok"]
    assert all(st.startswith("diverged in epoch 1") and "lower train.lr" in st for st in div["status"][2:])
    assert div["r2"][2:].isna().all() and div["mean_predictor_r2"][2:].isna().all() and div["r2"][:2].notna().all()


def test_predictions(res, h5):
    for experiment, model in MODELS:
        for subject, sel, g in groups_of(h5, experiment, model):
            pg = h5[g.attrs["pairs"]]
            ij, ids = pg["ij"][()], h5[f"/subjects/subj{subject:02d}/images/nsd_id"][()]
            p = res.predictions(experiment, model, subject, sel)
            folds = fold_groups(g)
            assert len(p) == sum(g[fn]["test_pairs"].shape[0] for fn in folds)
            for fn in folds:
                f = int(fn[5:])
                q = res.predictions(experiment, model, f"subj{subject:02d}", sel, fold=f)
                fg = g[fn]
                te = fg["test_pairs"][()]
                assert set(q["fold"]) == {f} and np.array_equal(q["pair"], te)
                assert np.array_equal(q["image_a"], ij[te, 0]) and np.array_equal(q["nsd_id_b"], ids[ij[te, 1]])
                assert np.array_equal(q["value"], pg["value"][()][te])
                if "decision" in fg:
                    assert np.array_equal(q["target"], fg["label"][()])
                    assert np.array_equal(q["prediction"], fg["pred"][()])
                    assert np.array_equal(q["decision"], fg["decision"][()])
                    assert np.array_equal(q["prediction"], (fg["decision"][()] > 0).astype(int))
                else:
                    assert "decision" not in q
                    assert np.array_equal(q["target"], fg["target"][()])
                    pred = fg["prediction"] if "prediction" in fg else fg["pred"]
                    assert same(q["prediction"], pred[()])
                    assert np.allclose(q["target"], q["value"])  # regression targets: the RDM values
                assert p[p["fold"] == f].reset_index(drop=True).equals(q)
    with pytest.raises(rdmlearn.NotFound, match="folds: 0, 1, 2, 3, 4"):
        res.predictions("svm", "svm", 1, "V1", fold=7)


def test_grid(res, h5):
    for experiment, model in (("svm-grid", "svm"), ("regression", "mlp")):
        g = h5[f"/experiments/{experiment}/{model}/subj01/V1/grid"]
        t = res.grid(experiment, model, 1, "V1")
        nf, ns = g["mean_inner_score"].shape
        assert len(t) == nf * ns
        assert np.array_equal(t["mean_inner_score"].to_numpy().reshape(nf, ns), g["mean_inner_score"][()])
        chosen = t[t["chosen"]]
        assert list(chosen["fold"]) == list(range(nf)) and list(chosen["setting"]) == list(g["chosen"][()])
        for fo in range(nf):
            assert np.array_equal(t[t["fold"] == fo]["std_inner_score"].to_numpy(), g[f"fold_{fo}/std"][()])
        param = "kernel" if model == "svm" else "lr"
        vals = g[param].asstr()[()] if g[param].dtype.kind == "O" else g[param][()]
        assert list(t[t["fold"] == 0][param]) == list(vals)
    # the folds table names the chosen setting too
    folds = res.folds("svm-grid", "svm")
    assert list(folds["setting"]) == list(h5["/experiments/svm-grid/svm/subj01/V1/grid/chosen"][()])
    with pytest.raises(rdmlearn.NotFound, match="without a grid"):
        res.grid("svm", "svm", 1, "V1")


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_sweep_and_summary(res, h5, results_path):
    stem = str(results_path)[:-3]
    t = res.sweep()
    assert list(t.columns) == ["experiment", "model", "subject", "selection", "fold", "metric", "value",
                               "embedding", "architecture", "layer", "depth", "relative_depth"]
    # one embedding per model here (pairs.embeddings empty): its name, no layer
    for r in t.itertuples():
        want = "" if r.model == "cnn" else h5[f"/experiments/{r.experiment}/{'svm' if r.model == 'svr' else r.model}/subj{r.subject:02d}/{r.selection}"].attrs["embedding"]
        assert r.embedding == want and r.layer == "" and math.isnan(r.depth), r
    ours = sorted((r.experiment, r.model, r.subject, r.selection, r.fold, r.metric, r.value) for r in t.itertuples())
    theirs = sorted((r["experiment"], r["model"], int(r["subject"]), r["selection"], int(r["fold"]), r["metric"],
                     float(r["value"])) for r in read_csv(stem + ".sweep.csv"))
    assert len(ours) == len(theirs) > 100
    for a, b in zip(ours, theirs):
        assert a[:6] == b[:6] and same(a[6], b[6])
    assert sum(math.isnan(v) for v in t["value"]) == 3 * 6  # div: 3 stopped folds x 6 metrics
    w = res.sweep(wide=True)
    assert len(w) == sum(h5[f"/sweep/{e}/{m}/tasks/fold"].shape[0] for e in h5["/sweep"] for m in h5[f"/sweep/{e}"])
    svm = w[w["experiment"] == "svm"]
    assert np.array_equal(svm[["accuracy", "precision", "recall", "f1", "roc_auc"]].to_numpy(), h5["/sweep/svm/svm/tasks/metrics"][()])
    assert svm["r2"].isna().all()
    s = res.summary()
    for r in s.itertuples():  # what the means are over: the finished folds
        if r.model in ("siamese", "mlp"):
            g = h5[f"/experiments/{r.experiment}/{r.model}/subj{r.subject:02d}/{r.selection}"]
            assert r.folds_finished == g.attrs["n_folds_finished"]
        else:
            assert r.folds_finished == (1 if r.experiment == "svm-grid" else 5)
    assert set(s[s.experiment == "div"].folds_finished) == {2}
    ours = sorted((r.experiment, r.model, r.subject, r.selection, r.metric, r.mean, r.std) for r in s.itertuples())
    theirs = sorted((r["experiment"], r["model"], int(r["subject"]), r["selection"], r["metric"], float(r["mean"]),
                     float(r["std"])) for r in read_csv(stem + ".summary.csv"))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a[:5] == b[:5] and np.allclose(a[5:], b[5:], equal_nan=True, rtol=1e-15)


def test_config(res, h5, dataset):
    for stage in ("rdm", "embed", "svm", "train"):
        text = h5[f"/meta/stages/{stage}"].attrs["config"]
        assert res.config(stage, raw=True) == text
        cfg = res.config(stage)
        # every "key = value" line of the stored text, section by section
        section, n = None, 0
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line[1:-1]
                assert section in cfg
            elif "=" in line and not line.startswith(";"):
                k, v = (x.strip() for x in line.split("=", 1))
                assert cfg[section][k] == (v[1:-1] if v == '""' else v), (section, k)
                n += 1
        assert n == sum(len(v) for v in cfg.values()) > 50
        assert cfg["data"]["root"] == str(dataset)
    assert res.config("svm")["svm"]["type"] == "epsilon_svr"  # the stage's last experiment
    assert res.config("embed")["embed"]["name"] == ""
    with pytest.raises(rdmlearn.NotFound, match="stages: "):
        res.config("report")


def test_noise_ceilings(res, h5):
    t = res.noise_ceilings()
    assert len(t) == 2 * 3
    for r in t.itertuples():
        a = h5[f"/rsa/{r.selection}/{r.method}"].attrs
        assert (r.lower, r.upper, r.pool) == (a["noise_ceiling_lower"], a["noise_ceiling_upper"], a["noise_ceiling_pool"])
        assert r.n_subjects == 2 and r.n_shared_images == h5[f"/rsa/{r.selection}"].attrs["n_shared_images"]


def test_table_formats(results_path, res, monkeypatch):
    """numpy structured arrays and lists of dicts hold exactly what the DataFrames hold."""
    rn = rdmlearn.Results(results_path, tables="numpy")
    rr = rdmlearn.Results(results_path, tables="records")
    calls = [("folds", ("regression", "siamese")), ("folds", ("svm-grid", "svm")), ("pairs", ("svm", 2, "V1")),
             ("predictions", ("svm", "svm", 1, "class:Faces")), ("sweep", ()), ("summary", ()),
             ("images", (1,)), ("grid", ("regression", "mlp", 1, "V1")), ("noise_ceilings", ())]
    for name, args in calls:
        df = getattr(res, name)(*args)
        arr = getattr(rn, name)(*args)
        rec = getattr(rr, name)(*args)
        assert isinstance(df, pd.DataFrame) and isinstance(arr, np.ndarray) and isinstance(rec, list)
        assert list(arr.dtype.names) == list(df.columns) == list(rec[0])
        assert len(arr) == len(df) == len(rec)
        for c in df.columns:
            a, d = arr[c], df[c].to_numpy()
            if a.dtype.kind == "f":
                assert np.array_equal(a, d.astype(float), equal_nan=True), (name, c)
            else:
                assert list(a) == list(d), (name, c)
            assert [r[c] for r in rec] == list(a) or a.dtype.kind == "f", (name, c)
    # without pandas, tables=None falls back to numpy
    monkeypatch.setitem(sys.modules, "pandas", None)
    auto = rdmlearn.Results(results_path)
    t = auto.folds("svm", "svm")
    assert isinstance(t, np.ndarray) and t.dtype.names[:6] == ("experiment", "model", "subject", "selection", "fold", "status")
    assert t["accuracy"].dtype == np.float64 and t["subject"].dtype == np.int64
    with pytest.raises(ImportError):
        rdmlearn.Results(results_path, tables="pandas")


def test_errors_and_repr(res, results_path, tmp_path):
    with pytest.raises(rdmlearn.NotFound, match=r"no subject 3 \(subjects: 1, 2\)"):
        res.rdm(3, "V1")
    with pytest.raises(rdmlearn.NotFound, match="selections: "):
        res.rdm(1, "V2")
    with pytest.raises(rdmlearn.NotFound, match="experiments: div, regression, svm, svm-grid, svr"):
        res.folds("nope", "svm")
    with pytest.raises(rdmlearn.NotFound, match="models: mlp, siamese"):
        res.folds("regression", "cnn")
    with pytest.raises(KeyError):  # NotFound is a KeyError
        res.embeddings(1, "clip-vit")
    with pytest.raises(ValueError, match="subject"):
        res.rdm("left", "V1")
    with pytest.raises(FileNotFoundError, match="no such results file"):
        rdmlearn.Results(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not an rdmlearn results file"):
        rdmlearn.Results(tmp_path / "other.h5")
    with pytest.raises(ValueError, match="tables="):
        rdmlearn.Results(results_path, tables="excel")
    # "svm" names an SVR's results too (its group), "svr" is its sweep name
    assert res.folds("svr", "svm").equals(res.folds("svr", "svr"))
    text = repr(res)
    for part in ("subjects    1, 2 (80, 80 images)", "selections  ", "V1", "class:Faces", "gabor (512 dims)",
                 "regression: mlp (1 subj x 1 sel x 5 folds, grid", "siamese (2 subj x 2 sel x 5 folds",
                 "svm-grid: svm (1 subj x 1 sel x 1 fold, grid", "svr: svr (1 subj x 2 sel x 5 folds",
                 "div: siamese (1 subj x 1 sel x 5 folds, 3 stopped", "stages      "):
        assert part in text, (part, text)


def test_example_script(results_path):
    """python/examples/explore_results.py runs on a results file (its last cell, which runs
    rdmlearn, stays off)."""
    import os
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(here), RDMLEARN_EXAMPLE_RUN="0")
    p = subprocess.run([sys.executable, os.path.join(here, "..", "examples", "explore_results.py"), str(results_path)],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert "== svm / svm: 20 folds, metric accuracy" in p.stdout and "== grid of svm-grid/svm" in p.stdout


def test_evaluation(results_path, binary, tmp_path):
    """Results.evaluation() against the /evaluate datasets and <stem>.evaluate.csv."""
    import shutil
    import subprocess
    path = tmp_path / "ev.h5"
    shutil.copy(results_path, path)
    with pytest.raises(rdmlearn.NotFound, match="rdmlearn evaluate"):
        rdmlearn.Results(path).evaluation()
    p = subprocess.run([binary, "evaluate", "--set", f"run.output={path}", "--set", "evaluate.bootstrap=50",
                        "--set", "evaluate.permutations=100", "--set", "evaluate.methods=spearman,pearson",
                        "--set", "data.rois=V1,class:Faces", "-q"], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    r = rdmlearn.Results(path, tables="pandas")
    t = r.evaluation()
    assert list(t.columns) == ["analysis", "subject", "selection", "model", "method", "score", "ci_low", "ci_high",
                               "p", "q", "noise_ceiling_lower", "noise_ceiling_upper"]
    rows = read_csv(str(path)[:-3] + ".evaluate.csv")
    assert len(rows) == len(t) > 20
    for a, b in zip(t.itertuples(index=False), rows):
        assert (a.analysis, a.subject, a.selection, a.model, a.method) == \
            (b["analysis"], int(b["subject"]), b["selection"], b["model"], b["method"])
        for k in ("score", "ci_low", "ci_high", "p", "q", "noise_ceiling_lower", "noise_ceiling_upper"):
            assert same(getattr(a, k), float(b[k])), (a, k)
    with h5py.File(path, "r") as f:
        g = f["/evaluate/rdm/V1"]
        sub = t[(t.analysis == "rdm") & (t.selection == "V1") & (t.method == "spearman")]
        assert same(sub.score.to_numpy(), g["spearman/score"][()].reshape(-1))
        assert same(sub.q.to_numpy(), g["spearman/q"][()].reshape(-1))
        assert set(t[t.analysis == "rdm"].model) == set(f["/subjects/subj01/embeddings"])
        # every experiment's folds, each model beside the embedding's values on the same pairs
        assert {a for a in t.analysis if a.startswith("folds:")} == {f"folds:{e}" for e in f["/experiments"]}
        folds = r.evaluation(per_fold=True)
        g = f["/evaluate/folds/svr/V1/subj01"]
        s = folds[(folds.experiment == "svr") & (folds.subject == 1) & (folds.selection == "V1") &
                  (folds.method == "pearson") & (folds.model == "svm")]
        assert same(s.score.to_numpy(), g["pearson/score"][()][:, 0]) and len(s) == 5
        assert set(folds.model) >= {"svm", "siamese", "mlp", "embedding:gabor"}


def test_copy_with_side_files(dataset, binary, tmp_path):
    """A results file whose RDMs live in side files (RDML_H5_SPLIT_BYTES=0): a plain copy of
    the file alone to another folder cannot read them; Results.copy brings the side folder,
    or makes one self-contained file; the values are the same."""
    import shutil
    import subprocess
    (tmp_path / "a").mkdir()
    path = tmp_path / "a" / "r.h5"
    env = dict(os.environ, RDML_H5_SPLIT_BYTES="0")
    p = subprocess.run([binary, "rdm", str(dataset), "--set", f"run.output={path}", "--set", "data.rois=V1", "-q"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    r = rdmlearn.Results(path)
    assert r.side_folder and os.listdir(r.side_folder)
    with h5py.File(path, "r") as f:
        assert isinstance(f["/subjects/subj01"].get("rdm", getlink=True), h5py.HardLink)
        assert isinstance(f["/subjects/subj01/rdm"].get("V1", getlink=True), h5py.ExternalLink)
    want = np.asarray(r.rdm(1, "V1"))
    (tmp_path / "b").mkdir()
    shutil.copy(path, tmp_path / "b" / "plain.h5")
    with h5py.File(tmp_path / "b" / "plain.h5", "r") as f, pytest.raises(KeyError):
        f["/subjects/subj01/rdm/V1"][()]
    c = r.copy(tmp_path / "b")
    assert np.array_equal(np.asarray(c.rdm(1, "V1")), want)
    one = r.copy(tmp_path / "one.h5", single_file=True)
    assert one.side_folder is None
    with h5py.File(one.path, "r") as f:
        assert isinstance(f["/subjects/subj01/rdm"].get("V1", getlink=True), h5py.HardLink)
    assert np.array_equal(np.asarray(one.rdm(1, "V1")), want)
    with pytest.raises(FileExistsError):
        r.copy(tmp_path / "b" / "again.h5")
