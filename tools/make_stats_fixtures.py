#!/usr/bin/env python3
"""Regenerates tests/fixtures/stats/stats.json, the golden values of tests/unit/test_stats.c.

Run with the system Python (numpy + scipy):  /usr/bin/python3 tools/make_stats_fixtures.py
Deterministic: rerunning it rewrites the same file.

The resampling indices are drawn with a Python port of the C library's counter RNG
(src/core/rng.c: SplitMix64 finaliser over a stream key; rdml_rng_substream,
rdml_rng_below's rejection, rdml_rng_shuffle's Fisher-Yates) and the stream layout of
rdml/stats.h (RDML_STREAM_STATS_BOOT / _PERM / _SUBJ, substream(substream(stream, key), b)).
The first case stores its indices, so the C test checks that this port and
rdml_stats_boot_images / _boot_subjects / _perm_images draw the same numbers; every case's
expected values come from tools/rsa_stats_reference.py (the numpy port of rsatoolbox's
procedures) fed with these indices. Scores are also checked against scipy here (spearmanr,
pearsonr; tau-a by brute force).

Cases: n = 30 images (complete pair lists) or an incomplete pair list, 1-3 subjects, 3
models (one related to the brain, one weakly, one with many ties), brain values with ties;
every method; rsatoolbox and mean pooling; images-only and images x subjects bootstraps;
the three permutation schemes. "wrong" holds the bootstrap scores of a wrong formula (the
self-pairs that repetition creates kept as 0) so the test can show it would notice.
"""
import json
import os
import sys

import numpy as np
import scipy.stats as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rsa_stats_reference as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "stats", "stats.json")

MASK = (1 << 64) - 1
STREAM_BOOT, STREAM_PERM, STREAM_SUBJ = 901, 902, 903


# ---- port of src/core/rng.c ----

def mix64(z):
    z &= MASK
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & MASK
    return z ^ (z >> 31)


def stream_key(seed, stream):
    return mix64(seed ^ mix64((stream + 0x632be59bd9b4e019) & MASK))


def substream(stream, sub):
    return mix64((stream * 0xd1342543de82ef95 + mix64(sub ^ 0x2545f4914f6cdd1d)) & MASK)


class Rng:
    def __init__(self, seed, stream):
        self.key = stream_key(seed, stream)
        self.counter = 0

    def next(self):
        self.counter += 1
        return mix64(self.key + self.counter * 0x9e3779b97f4a7c15)

    def below(self, n):
        if n <= 1:
            return 0
        limit = MASK - MASK % n
        while True:
            x = self.next()
            if x < limit:
                return x % n

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = self.below(i + 1)
            a[i], a[j] = a[j], a[i]
        return a


def rng_of(seed, stream, key, b):
    return Rng(seed, substream(substream(stream, key), b))


def boot_images(seed, key, b, u):
    r = rng_of(seed, STREAM_BOOT, key, b)
    return np.array([r.below(u) for _ in range(u)])


def boot_subjects(seed, key, b, s):
    r = rng_of(seed, STREAM_SUBJ, key, b)
    return np.array([r.below(s) for _ in range(s)])


def perm_items(seed, key, b, n):
    return np.array(Rng.shuffle(rng_of(seed, STREAM_PERM, key, b), list(range(n))))


# ---- data ----

def make_data(rs, n, S, pairs, ties):
    """Brain RDMs of S subjects sharing a latent structure, and 3 models."""
    feat = rs.normal(size=(n, 4))
    d0 = np.sqrt(((feat[:, None] - feat[None]) ** 2).sum(-1))
    brain_full = []
    for _ in range(S):
        b = d0 + rs.normal(scale=0.8, size=(n, n))
        b = (b + b.T) / 2
        np.fill_diagonal(b, 0)
        # ties within and across subjects; else multiples of 2^-12 (exact and short in JSON)
        b = np.round(b * 4) / 4 if ties else np.round(b * 4096) / 4096
        brain_full.append(b.astype(np.float32).astype(float))
    m_good = d0 + rs.normal(scale=0.3, size=(n, n))
    m_weak = d0 + rs.normal(scale=14.0, size=(n, n))  # weak: p-values off the floor
    m_ties = np.round(d0)  # few levels: many ties
    models_full = [np.round((m + m.T) / 2 * 4096) / 4096 for m in (m_good, m_weak, m_ties)]
    pi, pj = pairs
    brain = [b[pi, pj] for b in brain_full]
    models = [m[pi, pj] for m in models_full]
    return brain_full, brain, models_full, models


def full_pairs(n, shuffle_rs=None):
    i, j = np.triu_indices(n, 1)
    if shuffle_rs is not None:  # any order and orientation
        o = shuffle_rs.permutation(len(i))
        i, j = i[o], j[o]
        flip = shuffle_rs.random(len(i)) < 0.5
        i, j = np.where(flip, j, i), np.where(flip, i, j)
    return i, j


def extreme_pairs(n, base, k):
    """Per image its k nearest and k farthest partners (ordered, deduplicated as i < j):
    an incomplete list like the paper's."""
    seen = set()
    for i in range(n):
        o = np.argsort(base[i])
        o = o[o != i]
        for j in list(o[:k]) + list(o[-k:]):
            seen.add((min(i, j), max(i, j)))
    pairs = sorted(seen)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def run_case(name, method, pooling, n, S, mps, boot_subj, nboot, nperm, seed, key, pairs_kind,
             with_full, ties, level=0.95, store_indices=False):
    rs = np.random.default_rng(seed + 17 * key)
    if pairs_kind == "full":
        pi, pj = full_pairs(n, rs)
    else:
        base = rs.normal(size=(n, n))
        pi, pj = extreme_pairs(n, (base + base.T) / 2, 3)
    brain_full, brain, models_full, models = make_data(rs, n, S, (pi, pj), ties)
    if mps:  # per-subject models: a subject-specific perturbation
        models = [np.round((m + rs.normal(scale=0.2, size=len(m))) * 4096) / 4096
                  for m in models for _ in range(S)]
    M = 3
    images, la, lb = ref.local_pairs(pi, pj)
    u = len(images)
    complete = ref.is_complete(la, lb, u)
    scheme = "images" if complete else ("images_full" if with_full else "pairs")

    # observed scores: scipy
    def scipy_cmp(a, b):
        if method == "spearman":
            return st.spearmanr(a, b)[0]
        if method == "pearson":
            return st.pearsonr(a, b)[0]
        return ref.compare(a, b, method)
    per = np.array([[scipy_cmp(brain[s], models[k * S + s] if mps else models[k])
                     for s in range(S)] for k in range(M)])
    for k in range(M):
        for s in range(S):
            assert abs(per[k, s] - ref.compare(brain[s], models[k * S + s] if mps else models[k],
                                               method)) < 1e-12
    score = per.mean(axis=1)
    nc = ref.boot_noise_ceiling(brain, np.arange(S), method, pooling) if S >= 2 else (None, None)

    # bootstrap
    bidx = [boot_images(seed, key, b, u) for b in range(nboot)]
    sidx = [boot_subjects(seed, key, b, S) if boot_subj else None for b in range(nboot)]
    rows, ncs, wrong = [], [], []
    for b in range(nboot):
        sc, bnc = ref.evaluate_sample(brain, models, mps, la, lb, u, bidx[b], sidx[b], method,
                                      pooling)
        rows.append(sc)
        ncs.append(bnc if not np.isnan(sc[0]) else (np.nan, np.nan))
        if complete:
            w, _ = ref.evaluate_sample(brain, models, mps, la, lb, u, bidx[b], sidx[b], method,
                                       pooling, expander=ref.expand_selfpairs_kept)
            wrong.append(w)
    rows = np.array(rows)
    ncs = np.array(ncs)
    ok = ~np.isnan(rows[:, 0])
    okn = ok & ~np.isnan(ncs[:, 0])
    B = int(ok.sum())
    ev = rows[ok]
    ci = [ref.percentile_ci(ev[:, k], level) for k in range(M)]
    diff_ci = [[ref.percentile_ci(ev[:, k] - ev[:, l], level) if k != l else (None, None)
                for l in range(M)] for k in range(M)]
    pair_p = ref.bootstrap_pair_tests(ev)
    p_zero = ref.zero_tests(ev)
    p_nc = ref.nc_tests(rows[okn], ncs[okn, 0]) if okn.any() else [None] * M
    nc_ci = ([ref.percentile_ci(ncs[okn, 0], level), ref.percentile_ci(ncs[okn, 1], level)]
             if okn.any() else None)

    # permutations
    perms = [perm_items(seed, key, b, len(pi) if scheme == "pairs" else u) for b in range(nperm)]
    ident = np.arange(len(pi) if scheme == "pairs" else u)
    args = dict(brain_full=[b.ravel() for b in brain_full] if with_full else None, n=n)
    observed = ref.perm_null(brain, models, mps, la, lb, u, images, ident, scheme, method, **args)
    null = np.array([ref.perm_null(brain, models, mps, la, lb, u, images, p, scheme, method,
                                   **args) for p in perms])
    pp = ref.perm_p(null, observed)

    def lst(x):
        return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else float(v)
                for v in np.asarray(x, dtype=object).ravel()]

    case = dict(
        name=name, method=method, pooling=pooling, n=n, S=S, M=M, models_per_subject=int(mps),
        boot_subjects=int(boot_subj), nboot=nboot, nperm=nperm, seed=seed, key=key,
        level=level, scheme=scheme, u=u,
        pi=[int(v) for v in pi], pj=[int(v) for v in pj],
        brain=[lst(b) for b in brain], models=[lst(m) for m in models],
        brain_full=[lst(b.astype(np.float32)) for b in brain_full] if with_full else None,
        score=lst(score), score_subject=lst(per),
        nc=None if S < 2 else [float(nc[0]), float(nc[1])],
        boot_scores=lst(np.where(ok[:, None], rows, np.nan)),
        boot_nc=lst(np.where(ok[:, None], ncs, np.nan)),
        boot_valid=B, nc_valid=int(okn.sum()),
        ci=[list(c) for c in ci],
        diff_ci=[[list(c) for c in r] for r in diff_ci],
        pair_p=lst(pair_p), p_zero=lst(p_zero), p_nc=lst(p_nc),
        nc_ci=nc_ci,
        perm_observed=lst(observed), perm_null=lst(null), perm_p=lst(pp),
        perm_valid=int((~np.isnan(null[:, 0])).sum()),
        wrong_boot_scores=lst(np.array(wrong)) if wrong else None,
    )
    if store_indices:
        case["boot_idx"] = [[int(v) for v in x] for x in bidx]
        case["boot_sidx"] = [[int(v) for v in x] for x in sidx] if boot_subj else None
        case["perm_idx"] = [[int(v) for v in x] for x in perms]
    print(f"{name}: u={u} P={len(pi)} scheme={scheme} B={B}/{nboot} "
          f"score={np.round(score, 3)} p={np.round(pp, 4)}")
    return case


def main():
    cases = [
        run_case("full_spearman", "spearman", "rsatoolbox", 30, 3, False, False, 200, 1000,
                 11, 1, "full", False, True, store_indices=True),
        run_case("full_pearson", "pearson", "rsatoolbox", 30, 3, False, False, 200, 500, 12, 2,
                 "full", False, False),
        run_case("full_kendall", "kendall_tau_a", "rsatoolbox", 30, 3, False, False, 100, 200,
                 13, 3, "full", False, True),
        run_case("subjects_spearman_mps", "spearman", "rsatoolbox", 30, 3, True, True, 200,
                 300, 14, 4, "full", False, True, level=0.9),
        run_case("one_subject_pearson", "pearson", "rsatoolbox", 30, 1, False, False, 200, 500,
                 15, 5, "full", False, False),
        run_case("extremes_full_spearman", "spearman", "rsatoolbox", 30, 2, False, False, 150,
                 300, 16, 6, "extremes", True, True),
        run_case("extremes_pairs_pearson", "pearson", "mean", 30, 2, False, False, 150, 300,
                 17, 7, "extremes", False, False),
        run_case("subjects_kendall_mean", "kendall_tau_a", "mean", 12, 3, False, True, 100,
                 100, 18, 8, "full", False, True),
        run_case("small_pearson_subjects", "pearson", "rsatoolbox", 5, 2, False, True, 200, 100,
                 19, 9, "full", False, False),
    ]
    # BH / Bonferroni on p-values with ties, NaN and values above 1 after scaling
    rs = np.random.default_rng(5)
    p = np.concatenate([rs.uniform(0, 0.05, 8), rs.uniform(0, 1, 20), [0.01, 0.01, 0.5, 1.0]])
    p[[3, 17]] = np.nan
    rs.shuffle(p)
    bh = dict(p=[None if np.isnan(v) else float(v) for v in p],
              q_bh=[None if np.isnan(v) else float(v) for v in ref.bh_stepup(p)],
              q_bonferroni=[None if np.isnan(v) else float(v) for v in ref.bonferroni(p)])
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(dict(cases=cases, bh=bh), f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
