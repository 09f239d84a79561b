"""The encoding-model accessors (Results.encodings, encoding, encoding_map, encoding_rois,
encoding_rdm) on a copy of the session's results file with `rdmlearn encode` run on it."""
import shutil
import subprocess

import numpy as np
import pytest

import rdmlearn


@pytest.fixture(scope="session")
def enc(results_path, workdir, binary):
    out = workdir / "encode.h5"
    shutil.copy(results_path, out)
    job = results_path.parent / "job.ini"
    p = subprocess.run([binary, "encode", "--config", str(job), "--set", "run.experiments=",
                        "--set", f"run.output={out}", "--set", "encode.block=50", "-q"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return rdmlearn.Results(out, tables="pandas")


def test_encodings_table(enc):
    t = enc.encodings()
    assert set(t["selection"]) == {"V1", "class:Faces"} and set(t["subject"]) == {1, 2}
    assert set(t["embedding"]) == {"gabor"} and (t["n_folds"] == 5).all()
    assert (t["mode"] == "loo").all() and (t["n_images"] == 80).all()
    v1 = t[(t["selection"] == "V1") & (t["subject"] == 1)].iloc[0]
    assert v1["median_r"] > 0.2 and 0 <= v1["share_positive"] <= 1


def test_encoding_vertices_and_maps(enc):
    t = enc.encoding("gabor", 1, "V1")
    lh, rh = enc.encoding_map("gabor", 1, "V1", "r")
    assert len(lh) == len(rh) == 200          # every vertex of the hemisphere (conftest's sizes)
    assert len(t) == np.sum(~np.isnan(lh)) + np.sum(~np.isnan(rh))
    assert list(t.columns[:5]) == ["hemi", "vertex", "r", "r2", "alpha"]
    assert {"noise_ceiling", "noise_normalized"} <= set(t.columns)
    sub = t[t["hemi"] == "lh"]
    assert np.allclose(sub["r"].to_numpy(), lh[sub["vertex"].to_numpy()])
    f2 = enc.encoding("gabor", 1, "V1", fold=2)
    lh2, _ = enc.encoding_map("gabor", 1, "V1", "r", fold=2)
    assert np.allclose(f2[f2["hemi"] == "lh"]["r"].to_numpy(), lh2[~np.isnan(lh2)])
    folds = np.stack([enc.encoding_map("gabor", 1, "V1", "r", fold=k)[0] for k in range(5)])
    assert np.allclose(np.nanmean(folds, axis=0)[~np.isnan(lh)], lh[~np.isnan(lh)])
    with pytest.raises(rdmlearn.NotFound, match="embedding/subject/selection: gabor/"):
        enc.encoding("clip", 1, "V1")


def test_encoding_rois_and_rdm(enc):
    rois = enc.encoding_rois("gabor", 2, "V1")
    assert list(rois["roi"])[-1] == "V1" and list(rois["roi_class"])[-1] == "selection"
    assert {"V1v", "V1d"} <= set(rois["roi"])
    assert rois["n_vertices"].iloc[-1] == rois[rois["roi"].isin(["V1v", "V1d"])]["n_vertices"].sum()
    rdm = enc.encoding_rdm("gabor", 2, "V1", 0)
    rows = rdm.attrs["test_images"]
    ims = enc.images(2)
    assert np.array_equal(rdm.nsd_ids, ims["nsd_id"].to_numpy()[rows])
    m = np.asarray(rdm)
    assert m.shape == (len(rows), len(rows)) and np.allclose(m, m.T) and np.all(np.diag(m) == 0)
    assert rdm.metric == "correlation"
