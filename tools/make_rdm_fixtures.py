#!/usr/bin/python3
"""Write the golden RDM fixtures of tests/mpi/test_rdm.c and tests/unit/test_rdm_rank.c.

Regenerate with:  /usr/bin/python3 tools/make_rdm_fixtures.py   (numpy 1.24, scipy 1.10, Debian 12)
Output: tests/fixtures/rdm/  (deterministic: numpy's default_rng with fixed seeds).

Reference: scipy.spatial.distance.pdist + squareform, in float64, on the float32 inputs the
C code sees. Per-vertex standardisation is sklearn's StandardScaler (population std, a
zero-variance vertex becomes 0) computed in float64 and stored as float32, as rdmlearn does.
spearman = pdist(scipy.stats.rankdata(rows, axis=1), 'correlation') (average ranks for ties).

Files (all .npy, expected RDMs float32 n x n):
  x.npy            40 x 300 input: low-rank signal + noise, per-row offsets and scales; rows
                   0..7 rounded to steps of 0.5 so they contain ties (spearman averaging)
  <metric>_raw.npy, <metric>_std.npy   the 5 metrics without / with standardisation
  odd_x.npy        37 x 7 input; odd_<metric>.npy (raw)
  tiny_x.npy       3 x 5 input (fewer images than 4 ranks); tiny_<metric>.npy (raw)
  zv_x.npy         12 x 50 input whose row 5 is all zeros; zv_<metric>.npy for correlation,
                   cosine and spearman under the distance-1 policy (row/column 5 = 1, diag 0)
  mini_V1_std_<metric>.npy   tests/fixtures/algonauts_mini subj01, selection V1 (V1v + V1d,
                   lh then rh), all 12 images, standardised, for correlation and euclidean
  rank_in.npy / rank_out.npy   vectors with ties, -0.0 / +0.0 and wide ranges, and
                   scipy.stats.rankdata of each row
"""
import os

import numpy as np
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "rdm")
MINI = os.path.join(HERE, "..", "tests", "fixtures", "algonauts_mini", "subj01")
METRICS = ["correlation", "euclidean", "cosine", "sqeuclidean", "spearman"]


def standardize(x):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=0)
    sd = np.sqrt(((x64 - mean) ** 2).mean(axis=0))
    inv = np.where((sd > 1e-12 * np.abs(mean)) & (sd > 0), 1.0 / np.where(sd > 0, sd, 1), 0.0)
    return ((x64 - mean) * inv).astype(np.float32)


def rdm(x, metric):
    x64 = x.astype(np.float64)
    if metric == "spearman":
        return squareform(pdist(rankdata(x64, axis=1), "correlation"))
    return squareform(pdist(x64, metric))


def save(name, a):
    np.save(os.path.join(OUT, name), a)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20230311)
    n, v, k = 40, 300, 5
    f = rng.standard_normal((n, k))
    w = rng.standard_normal((k, v))
    x = f @ w + 0.8 * rng.standard_normal((n, v))
    x = x * rng.uniform(0.5, 3.0, (n, 1)) + rng.uniform(-4, 4, (n, 1))
    x[:8] = np.round(x[:8] * 2) / 2
    x = x.astype(np.float32)
    save("x.npy", x)
    xs = standardize(x)
    for m in METRICS:
        save(f"{m}_raw.npy", rdm(x, m).astype(np.float32))
        save(f"{m}_std.npy", rdm(xs, m).astype(np.float32))

    odd = (rng.standard_normal((37, 7)) * 2 + 1).astype(np.float32)
    save("odd_x.npy", odd)
    for m in METRICS:
        save(f"odd_{m}.npy", rdm(odd, m).astype(np.float32))

    tiny = rng.standard_normal((3, 5)).astype(np.float32)
    save("tiny_x.npy", tiny)
    for m in METRICS:
        save(f"tiny_{m}.npy", rdm(tiny, m).astype(np.float32))

    zv = rng.standard_normal((12, 50)).astype(np.float32)
    zv[5] = 0.0
    save("zv_x.npy", zv)
    for m in ["correlation", "cosine", "spearman"]:
        with np.errstate(invalid="ignore", divide="ignore"):
            d = rdm(zv, m)
        d[5, :] = 1.0
        d[:, 5] = 1.0
        np.fill_diagonal(d, 0.0)
        assert np.isfinite(d).all()
        save(f"zv_{m}.npy", d.astype(np.float32))

    # algonauts_mini subj01, selection V1 = V1v + V1d (prf-visualrois codes named so)
    mapping = np.load(os.path.join(MINI, "roi_masks", "mapping_prf-visualrois.npy"),
                      allow_pickle=True).item()
    codes = [c for c, name in mapping.items() if name in ("V1v", "V1d")]
    blocks = []
    for hemi in ("lh", "rh"):
        mask = np.load(os.path.join(MINI, "roi_masks", f"{hemi}.prf-visualrois_challenge_space.npy"))
        fmri = np.load(os.path.join(MINI, "training_split", "training_fmri",
                                    f"{hemi}_training_fmri.npy")).astype(np.float32)
        blocks.append(fmri[:, np.isin(mask, codes)])
    sel = standardize(np.concatenate(blocks, axis=1))
    for m in ["correlation", "euclidean"]:
        save(f"mini_V1_std_{m}.npy", rdm(sel, m).astype(np.float32))

    rk = np.zeros((4, 64), dtype=np.float32)
    rk[0] = rng.standard_normal(64)
    rk[1] = np.round(rng.standard_normal(64) * 2)             # many ties
    rk[2] = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0, 3e38, -3e38, 1e-40], dtype=np.float32), 64)
    rk[3] = 7.0                                                 # all tied
    save("rank_in.npy", rk)
    save("rank_out.npy", rankdata(rk.astype(np.float64), axis=1).astype(np.float32))


if __name__ == "__main__":
    main()
