#!/usr/bin/env python3
"""Regenerates tests/fixtures/rsa/rsa.json, the golden values for tests/unit/test_rsa.c.

Run with the system Python (numpy + scipy):  /usr/bin/python3 tools/make_rsa_fixtures.py
Deterministic (fixed seeds): rerunning it rewrites the same file.

References used:
- Pearson: scipy.stats.pearsonr. Spearman: scipy.stats.spearmanr (average ranks for ties).
- Kendall tau-a: brute force over all i < j pairs, sum(sign(da) * sign(db)) / (P(P-1)/2), with
  tied pairs counting as neither. Where neither input has ties, tau-a equals scipy's tau-b and
  the script asserts that.
- Noise ceiling: rsatoolbox is not installed here (PyPI is unreachable), so the reference is
  written in numpy after rsatoolbox's boot_noise_ceiling / Nili et al. 2014 without bootstrap:
  upper = mean_k compare(rdm_k, pool of all RDMs), lower = mean_k compare(rdm_k, pool of the
  others), for two poolings:
  * "mean" (rdmlearn's default, noise_ceiling(); keys noise_ceiling and, per case, "mean"):
    the arithmetic mean of the raw RDMs for every method;
  * "rsatoolbox" (rsatoolbox_noise_ceiling(); keys noise_ceiling_rsatoolbox and, per case,
    "rsatoolbox"): a numpy re-implementation of rsatoolbox's pool_rdm and compare, written
    from reading rsagroup/rsatoolbox src/rsatoolbox/util/pooling.py (pool_rdm; the older copy
    is in src/rsatoolbox/util/inference_util.py), src/rsatoolbox/inference/noise_ceiling.py
    (boot_noise_ceiling) and src/rsatoolbox/rdm/compare.py (compare_correlation,
    compare_spearman, _tau_a). pool_rdm for 'corr' centres each RDM vector, divides it by its
    population std (np.nanstd), averages, then shifts by -min + 0.01; for 'spearman' and
    'tau-a' it averages scipy.stats.rankdata ranks (average ranks for ties). compare 'corr'
    is the cosine of the centred vectors, 'spearman' the same on rankdata ranks, 'tau-a'
    (n_c - n_d) / (P(P-1)/2). No NaN entries here, so rsatoolbox's NaN masking is moot.
  The script asserts that both compare implementations agree with scipy, that rsatoolbox
  pooling actually changes the bounds in the fixture cases (so the test can tell the two
  poolings apart), and that for s = 2 the lower bounds of both poolings coincide (the
  leave-one-out pool is one RDM, and z-scores / ranks keep each correlation).
  noise_ceiling_cases hold inline RDMs: s = 2 subjects, few-level RDMs full of ties (rank
  pooling with ties) and subjects on very different scales.
- Histogram: numpy.histogram on the upper triangle as float64. Median: numpy.median of all
  off-diagonal entries as float64. Extremes: the k smallest / largest upper-triangle pairs
  ordered by (value, i, j) / (-value, i, j).

RDM values are multiples of 1/64 (exact in float32 and short in JSON) so ties are common and
many values sit exactly on histogram bin edges.
"""
import json
import os

import numpy as np
import scipy.stats as st

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "rsa", "rsa.json")


def tau_a_brute(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    p = len(a)
    sa = np.sign(a[:, None] - a[None, :])
    sb = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(p, 1)
    s = int(np.sum((sa * sb)[iu]))
    return s / (p * (p - 1) / 2)


def corr_all(a, b):
    return {
        "pearson": float(st.pearsonr(a, b)[0]),
        "spearman": float(st.spearmanr(a, b).correlation),
        "kendall_tau_a": float(tau_a_brute(a, b)),
    }


def vector_cases(rng):
    cases = []

    def add(name, a, b, no_ties=False):
        a = [float(x) for x in a]
        b = [float(x) for x in b]
        c = {"name": name, "a": a, "b": b}
        c.update(corr_all(a, b))
        if no_ties:
            assert len(set(a)) == len(a) and len(set(b)) == len(b)
            tb = float(st.kendalltau(a, b).correlation)
            assert abs(tb - c["kendall_tau_a"]) < 1e-12, (name, tb, c["kendall_tau_a"])
            c["scipy_kendall_tau_b"] = tb
        cases.append(c)

    a = rng.integers(0, 5, 60)
    add("integer_ties", a, a + rng.integers(-2, 3, 60))
    add("random_normal", rng.normal(size=300), rng.normal(size=300) * 0.5 + np.linspace(0, 1, 300))
    x = rng.normal(size=100)
    add("no_ties", x, x + rng.normal(size=100), no_ties=True)
    add("joint_ties", rng.integers(0, 3, 50), rng.integers(0, 3, 50))
    a = rng.integers(0, 6, 40)
    add("reversed_with_ties", a, -2.0 * a + 7)
    add("two_values", [1.0, 2.0], [3.0, 1.0])
    add("three_values_tie", [1.0, 1.0, 2.0], [0.5, 0.25, 0.25])
    a = rng.integers(0, 10, 2000)
    add("many_ties_2000", a, (a + rng.integers(0, 7, 2000)) % 13)
    return cases


def quantize(d):
    return (np.round(d * 64.0) / 64.0).astype(np.float32)


def make_subjects(rng):
    # NSD ids: 18 shared by all three, some shared by two, some unique; each list shuffled
    pool = rng.choice(np.arange(100, 73000), size=60, replace=False)
    all3 = list(pool[:18])
    s01, s02, s12 = list(pool[18:24]), list(pool[24:28]), list(pool[28:31])
    uniq = [list(pool[31:37]), list(pool[37:45]), list(pool[45:52])]
    lists = [all3 + s01 + s02 + uniq[0], all3 + s01 + s12 + uniq[1], all3 + s02 + s12 + uniq[2]]
    feat = {int(i): rng.normal(size=12) for i in pool}
    subjects = []
    for s, ids in enumerate(lists):
        ids = [int(i) for i in rng.permutation(ids)]
        x = np.array([feat[i] + 0.8 * rng.normal(size=12) for i in ids])
        d = 1.0 - np.corrcoef(x)
        d = quantize((d + d.T) / 2)
        np.fill_diagonal(d, 0)
        subjects.append((ids, d))
    return subjects


def upper(d):
    return d[np.triu_indices(d.shape[0], 1)]


def match(lists):
    common = sorted(set.intersection(*[set(l) for l in lists]))
    pos = [{v: i for i, v in enumerate(l)} for l in lists]
    return [[pos[k][v] for v in common] for k in range(len(lists))]


def extremes(d, k, high):
    iu, ju = np.triu_indices(d.shape[0], 1)
    v = d[iu, ju].astype(np.float64)
    order = np.lexsort((ju, iu, -v if high else v))[:k]
    return [[int(iu[t]), int(ju[t]), float(v[t])] for t in order]


def summary(d, nbins, k, subject):
    """Summary of RDM d; subject indexes "subjects" for its values, or -1: values inline."""
    u = upper(d).astype(np.float64)
    off = d[~np.eye(d.shape[0], dtype=bool)].astype(np.float64)
    hist, edges = np.histogram(u, bins=nbins)
    return {
        "n": int(d.shape[0]), "subject": subject, "nbins": nbins, "k": k,
        "rdm": [float(x) for x in d.ravel()] if subject < 0 else [],
        "min": float(u.min()), "max": float(u.max()), "mean": float(u.mean()),
        "std": float(u.std()), "median": float(np.median(off)),
        "edges": [float(e) for e in edges], "hist": [int(h) for h in hist],
        "low": extremes(d, k, False), "high": extremes(d, k, True),
    }


def edge_rdms(rng, want=4, n=12):
    """RDMs whose values sit on, just above and just below float32-rounded histogram edges,
    kept only when numpy's one-ulp index corrections (decrement / increment) actually fire."""
    out, dec_tot, inc_tot = [], 0, 0
    while len(out) < want or dec_tot == 0 or inc_tot == 0:
        nb = int(rng.integers(3, 40))
        lo = np.float32(rng.normal())
        hi = np.float32(lo + abs(rng.normal()) * 3)
        f = np.linspace(float(lo), float(hi), nb + 1).astype(np.float32)
        v = np.concatenate([[lo, hi], f, np.nextafter(f, np.float32(np.inf)),
                            np.nextafter(f, np.float32(-np.inf))]).astype(np.float32)
        v = v[(v >= lo) & (v <= hi)]
        p = n * (n - 1) // 2
        if len(v) > p:
            continue
        v = np.concatenate([v, rng.uniform(lo, hi, p - len(v)).astype(np.float32)])
        u = v.astype(np.float64)
        first, last = u.min(), u.max()
        e = np.linspace(first, last, nb + 1)
        raw = ((u - first) * (nb / (last - first))).astype(np.int64)
        raw[raw == nb] -= 1
        dec = int((u < e[raw]).sum())
        inc = int(((u >= e[raw + 1]) & (raw != nb - 1)).sum())
        if dec + inc == 0 or (len(out) >= want and dec == 0):
            continue
        dec_tot += dec
        inc_tot += inc
        d = np.zeros((n, n), dtype=np.float32)
        iu = np.triu_indices(n, 1)
        d[iu] = rng.permutation(v)
        d = d + d.T
        out.append((d, nb))
    assert dec_tot > 0 and inc_tot > 0, (dec_tot, inc_tot)
    return out


def noise_ceiling(rdms, method):
    ups = [upper(r).astype(np.float64) for r in rdms]
    stack = np.stack(ups)
    mean_all = np.mean(stack, axis=0)
    lo, up = [], []
    for k in range(len(ups)):
        others = np.mean(np.stack([ups[j] for j in range(len(ups)) if j != k]), axis=0)
        lo.append(corr_all(ups[k], others)[method])
        up.append(corr_all(ups[k], mean_all)[method])
    return {"lower": float(np.mean(lo)), "upper": float(np.mean(up)),
            "per_lower": lo, "per_upper": up}


RSATOOLBOX_NAME = {"pearson": "corr", "spearman": "spearman", "kendall_tau_a": "tau-a"}


def rsatoolbox_pool(vecs, method):
    """pool_rdm(rdms, method) of rsatoolbox for the three methods used here (no NaNs)."""
    v = np.asarray(vecs, dtype=np.float64)
    name = RSATOOLBOX_NAME[method]
    if name == "corr":
        v = v - np.mean(v, axis=1, keepdims=True)
        v = v / np.std(v, axis=1, keepdims=True)
        pooled = np.mean(v, axis=0)
        return pooled - np.min(pooled) + 0.01   # rsatoolbox's shift; no effect on a correlation
    # 'spearman' / 'rho-a' / 'tau-a' / 'kendall': average the rank-transformed vectors
    return np.mean(np.array([st.rankdata(x) for x in v]), axis=0)


def rsatoolbox_compare(a, b, method):
    """rsatoolbox.rdm.compare for one pair of vectors: 'corr' is the cosine of the centred
    vectors, 'spearman' the same on rankdata ranks, 'tau-a' Kendall's tau-a."""
    name = RSATOOLBOX_NAME[method]
    if name == "tau-a":
        return tau_a_brute(a, b)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if name == "spearman":
        a, b = st.rankdata(a), st.rankdata(b)
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / (np.sqrt(a @ a) * np.sqrt(b @ b)))


def rsatoolbox_noise_ceiling(rdms, method):
    """boot_noise_ceiling without the bootstrap: every subject left out once."""
    ups = [upper(r).astype(np.float64) for r in rdms]
    pool_all = rsatoolbox_pool(ups, method)
    lo, up = [], []
    for k in range(len(ups)):
        pool_oth = rsatoolbox_pool([ups[j] for j in range(len(ups)) if j != k], method)
        lo.append(rsatoolbox_compare(ups[k], pool_oth, method))
        up.append(rsatoolbox_compare(ups[k], pool_all, method))
        # rsatoolbox's compare equals scipy's correlations
        for x, y in ((pool_oth, lo[-1]), (pool_all, up[-1])):
            assert abs(corr_all(ups[k], x)[method] - y) < 1e-12, (method, k)
    return {"lower": float(np.mean(lo)), "upper": float(np.mean(up)),
            "per_lower": lo, "per_upper": up}


METHODS = ("pearson", "spearman", "kendall_tau_a")


def nc_case(name, rdms):
    """Both poolings for all three methods on inline RDMs (upper triangles stored)."""
    m = rdms[0].shape[0]
    c = {"name": name, "m": m, "s": len(rdms),
         "upper": [[float(x) for x in upper(r)] for r in rdms],
         "mean": {t: noise_ceiling(rdms, t) for t in METHODS},
         "rsatoolbox": {t: rsatoolbox_noise_ceiling(rdms, t) for t in METHODS}}
    for t in METHODS:
        a, b = c["mean"][t], c["rsatoolbox"][t]
        if len(rdms) == 2:   # one RDM left in the pool: same lower bound either way
            assert abs(a["lower"] - b["lower"]) < 1e-12, (name, t)
    return c


def sym_from_upper(u, m):
    d = np.zeros((m, m), dtype=np.float32)
    d[np.triu_indices(m, 1)] = u
    return d + d.T


def ceiling_cases(rng, subs):
    cases = [nc_case("two_subjects", subs[:2])]
    # few levels: integers 0..4 from a shared structure plus noise, so many ties in every RDM
    # and in the averaged ranks
    m = 9
    base = rng.normal(size=rdml_ntri(m))
    few = []
    for _ in range(4):
        u = np.clip(np.round(base + 0.9 * rng.normal(size=base.size) + 2), 0, 4)
        few.append(sym_from_upper(u.astype(np.float32), m))
    cases.append(nc_case("four_subjects_few_levels", few))
    cases.append(nc_case("two_subjects_few_levels", few[:2]))
    # scales: the same structure on very different scales and offsets (z-score pooling and
    # rank pooling weigh the subjects equally, the raw mean does not)
    m = 10
    base = rng.normal(size=rdml_ntri(m))
    sc = []
    for scale, off in ((1.0, 1.0), (8.0, 3.0), (0.25, 0.5)):
        u = quantize(off + scale * (base + 0.7 * rng.normal(size=base.size)) / 4)
        sc.append(sym_from_upper(u, m))
    cases.append(nc_case("three_subjects_scales", sc))
    # the test must tell the poolings apart: some upper bound differs in every method
    for t in METHODS:
        diff = max(abs(c["mean"][t]["upper"] - c["rsatoolbox"][t]["upper"]) for c in cases)
        assert diff > 1e-4, (t, diff)
    return cases


def rdml_ntri(m):
    return m * (m - 1) // 2


def main():
    rng = np.random.default_rng(20230503)
    out = {"generator": "tools/make_rsa_fixtures.py", "vectors": vector_cases(rng)}
    subjects = make_subjects(rng)
    out["subjects"] = [{"ids": ids, "n": len(ids), "upper": [float(x) for x in upper(d)]}
                       for ids, d in subjects]
    ids = [s[0] for s in subjects]
    out["match"] = {
        "01": match([ids[0], ids[1]]), "02": match([ids[0], ids[2]]),
        "12": match([ids[1], ids[2]]), "all": match(ids),
    }
    ia, ib = out["match"]["01"]
    a = upper(subjects[0][1][np.ix_(ia, ia)]).astype(np.float64)
    b = upper(subjects[1][1][np.ix_(ib, ib)]).astype(np.float64)
    out["compare_01"] = corr_all(a, b)
    idx = out["match"]["all"]
    subs = [subjects[k][1][np.ix_(idx[k], idx[k])] for k in range(3)]
    out["noise_ceiling"] = {m: noise_ceiling(subs, m) for m in METHODS}
    out["noise_ceiling_rsatoolbox"] = {m: rsatoolbox_noise_ceiling(subs, m) for m in METHODS}
    # own generator, so the summaries below keep drawing what they drew before
    out["noise_ceiling_cases"] = ceiling_cases(np.random.default_rng(20261127), subs)
    # summaries: subject 0 with 9 bins (width 11/64: every edge is a possible data value),
    # subject 1, a constant RDM (numpy's [v - 0.5, v + 0.5] range), and RDMs whose values sit
    # at histogram edges where numpy corrects its computed bin index
    const = np.full((4, 4), 0.5, dtype=np.float32)
    np.fill_diagonal(const, 0)
    d0 = subjects[0][1]
    assert (d0.max() - d0[np.triu_indices(d0.shape[0], 1)].min()) * 64 % 9 == 0
    out["summaries"] = [summary(d0, 9, 5, 0), summary(subjects[1][1], 7, 6, 1),
                        summary(const, 4, 10, -1)]
    out["summaries"] += [summary(d, nb, 3, -1) for d, nb in edge_rdms(rng)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
