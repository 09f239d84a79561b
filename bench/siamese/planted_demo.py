"""A stand-in for bench/common/planted.py with a LEARNABLE problem: the demo's synthetic
dataset (tools/demo.sh) instead of random embeddings. make(n, d) returns the first n images'
gabor embeddings of subject 1, z-scored per column over those images, and subject 1's V1 RDM
(correlation distance), both from the results file named by RDML_BENCH_H5. bench_data.py uses
it when RDML_BENCH_H5 is set, for both rdmlearn and the PyTorch anchor."""
import os
import h5py
import numpy as np


def make(n=600, d=512, **_):
    path = os.environ["RDML_BENCH_H5"]
    with h5py.File(path, "r") as f:
        s = f["/subjects/subj01"]
        E = s["embeddings/gabor"][:n].astype(np.float64)
        R = s["rdm/V1"][:n, :n].astype(np.float64)
    if E.shape[1] != d:
        raise SystemExit(f"planted_demo: embeddings are {E.shape[1]} wide, the anchor wants {d}")
    sd = E.std(0)
    E = (E - E.mean(0)) / np.where(sd > 0, sd, 1)
    return E.astype(np.float32), R
