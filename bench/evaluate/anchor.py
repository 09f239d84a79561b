#!/usr/bin/python3
"""The numpy anchor of bench/evaluate/run.sh: the same statistics procedure as
rdml_stats_evaluate, written the way a numpy user following rsatoolbox would, on the same data
(DIR/brain.npy, DIR/models.npy from data.py) and the same resampling indices (DIR/boot_idx.npy,
DIR/perm_idx.npy, written by stats_bench from rdml_stats_boot_images / _perm_images).

Timed procedure (Spearman, one subject, all n(n-1)/2 pairs):
  - observed scores: scipy.stats.rankdata of the upper triangles, then the correlation;
  - bootstrap (rsatoolbox eval_bootstrap_pattern + RDMs.subsample_pattern): for sample b, the
    RDMs re-indexed by idx on both axes, upper triangle over sampled positions, the entries
    whose two positions are the same image dropped (rsatoolbox sets them to NaN), then
    rankdata and the correlation for every model;
  - permutations: ranks z-scored once (the permuted vector's ranks are the permuted ranks);
    per permutation the brain's rank matrix re-indexed by perm on both axes, its upper
    triangle, and one matrix-vector product with the models' z-scored ranks;
  - percentile intervals, p = (1 + #{null >= observed}) / (1 + nperm), rsatoolbox's
    bootstrap_pair_tests.
The first NB bootstrap samples and NP permutations are timed (defaults: all), and the time is
scaled to the full counts when fewer are run (printed as such). The per-sample values are
compared with rdmlearn's (DIR/rdml_boot.npy, DIR/rdml_null.npy) when present.
usage: anchor.py DIR [NB NP]
"""
import os
import sys
import time

import numpy as np
from scipy.stats import rankdata

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from blas_probe import describe  # noqa: E402


def corr(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def zranks(v):
    r = rankdata(v)
    r -= r.mean()
    return r / np.linalg.norm(r)


def main():
    d = sys.argv[1]
    brain = np.load(os.path.join(d, "brain.npy"))
    models = np.load(os.path.join(d, "models.npy"))
    n = brain.shape[0]
    models = models.reshape(len(models), n, n)
    boot_idx = np.load(os.path.join(d, "boot_idx.npy"))
    perm_idx = np.load(os.path.join(d, "perm_idx.npy"))
    nboot, nperm = len(boot_idx), len(perm_idx)
    nb = int(sys.argv[2]) if len(sys.argv) > 2 else nboot
    npm = int(sys.argv[3]) if len(sys.argv) > 3 else nperm
    nb, npm = min(nb, nboot), min(npm, nperm)
    i = describe()
    print(f"numpy {np.__version__} BLAS: kernel {i['kernel']}, threads {i['threads']} ({i['config']})",
          flush=True)
    M = len(models)
    iu, ju = np.triu_indices(n, 1)

    t0 = time.perf_counter()
    bvec = brain[iu, ju]
    mvec = models[:, iu, ju]
    observed = np.array([corr(rankdata(bvec), rankdata(m)) for m in mvec])
    t_obs = time.perf_counter() - t0

    # bootstrap over images (rsatoolbox bootstrap_sample_pattern + subsample_pattern)
    t0 = time.perf_counter()
    boot = np.full((nb, M), np.nan)
    for b in range(nb):
        idx = boot_idx[b]
        if len(np.unique(idx)) < 3:
            continue
        keep = idx[iu] != idx[ju]  # self-pairs of repeated images: NaN in rsatoolbox, dropped
        ri, rj = idx[iu][keep], idx[ju][keep]
        rb = rankdata(brain[ri, rj])
        boot[b] = [corr(rb, rankdata(models[k][ri, rj])) for k in range(M)]
    t_boot = time.perf_counter() - t0

    # permutations: ranks once, then a permuted gather and a matrix-vector product each
    t0 = time.perf_counter()
    zb = np.zeros((n, n))
    zb[iu, ju] = zranks(bvec)
    zb += zb.T
    zm = np.stack([zranks(m) for m in mvec])
    null = np.empty((npm, M))
    for b in range(npm):
        p = perm_idx[b]
        null[b] = zm @ zb[p[iu], p[ju]]
    t_perm = time.perf_counter() - t0

    obs_kernel = zm @ zb[iu, ju]  # the observed value through the same kernel
    pvals = (1 + (null >= obs_kernel[None, :]).sum(0)) / (1 + npm)
    ok = ~np.isnan(boot[:, 0])
    ev = boot[ok]
    ci = np.quantile(ev, [0.025, 0.975], axis=0)
    B = len(ev)
    pair = np.ones((M, M))
    for a in range(M):
        for c in range(a + 1, M):
            den = B - np.sum(ev[:, a] == ev[:, c])
            prop = np.sum(ev[:, a] < ev[:, c]) / den if den else 0.5
            pair[a, c] = pair[c, a] = (B - 1) / B * 2 * min(prop, 1 - prop) + 1 / B
    total = t_obs + t_boot * nboot / nb + t_perm * nperm / npm
    scaled = "" if (nb == nboot and npm == nperm) else \
        f" (scaled from {nb} samples and {npm} permutations)"
    print(f"numpy observed {t_obs:.3f} s, bootstrap {nb} samples {t_boot:.3f} s, "
          f"permutations {npm}: {t_perm:.3f} s")
    print(f"numpy stats n={n} boot={nboot} perm={nperm}: {total:.3f} s{scaled}", flush=True)
    print("numpy scores", np.round(observed, 6), "perm p", pvals, "ci", np.round(ci, 4).tolist(),
          "pair p", [pair[a, c] for a in range(M) for c in range(a + 1, M)])
    rb_path, rn_path = os.path.join(d, "rdml_boot.npy"), os.path.join(d, "rdml_null.npy")
    if os.path.exists(rb_path) and os.path.exists(rn_path):
        rboot = np.load(rb_path)[:nb]
        rnull = np.load(rn_path)[:npm]
        same_nan = np.array_equal(np.isnan(rboot), np.isnan(boot))
        db = np.nanmax(np.abs(rboot - boot)) if ok.any() else 0.0
        dn = np.max(np.abs(rnull - null))
        print(f"max |rdmlearn - numpy|: bootstrap scores {db:.2e} (same dropped samples: "
              f"{same_nan}), null scores {dn:.2e}")


if __name__ == "__main__":
    main()
