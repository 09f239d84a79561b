#!/usr/bin/env python3
"""A numpy port of rsatoolbox's model-evaluation statistics, the reference of rdml/stats.h.

rsatoolbox is not installed here (PyPI is unreachable), so this is written from reading its
public source (rsagroup/rsatoolbox):
  - src/rsatoolbox/inference/bootstrap.py   bootstrap_sample_pattern, bootstrap_sample_rdm,
                                            bootstrap_sample (images, subjects, both)
  - src/rsatoolbox/rdm/rdms.py              RDMs.subsample_pattern (self-pairs become NaN)
  - src/rsatoolbox/inference/evaluate.py    eval_bootstrap_pattern / eval_bootstrap (the
                                            score of a sample, the >= 3 distinct patterns
                                            rule, the per-sample noise ceiling)
  - src/rsatoolbox/inference/noise_ceiling.py boot_noise_ceiling
  - src/rsatoolbox/util/inference_util.py   pool_rdm, sets_leave_one_out_rdm (via
                                            crossvalsets), bootstrap_pair_tests, zero_tests,
                                            nc_tests
  - src/rsatoolbox/rdm/compare.py           compare_correlation, compare_spearman, tau-a
It is a port, not a copy: each function says which rsatoolbox function it follows. The
resampling indices are inputs (the caller draws them with the same counter RNG as the C
library, see make_stats_fixtures.py), so C and numpy see the same samples.

Differences from rsatoolbox, all documented in include/rdml/stats.h:
  - data may be a pair list (pairs (i, j) over u images) instead of a full RDM; a bootstrap
    sample then holds pair p c_i c_j times (for a complete list this is exactly the
    subsample_pattern expansion, which this port uses for complete lists);
  - a sample is dropped when ANY model's score or a subject's vector is undefined (rsatoolbox
    looks at the first model only), and the noise ceiling of a sample with one distinct
    subject is NaN while its model scores are kept;
  - bootstrap_pair_tests: when every sample ties, p = 1 (rsatoolbox divides 0 by 0);
  - the permutation test (not in rsatoolbox's bootstrap code) permutes the brain RDM's image
    labels; p = (1 + #{null >= observed}) / (1 + valid permutations).
"""
import numpy as np
from scipy.stats import rankdata

METHODS = ("spearman", "pearson", "kendall_tau_a")


# ---- rsatoolbox rdm/compare.py ----

def _corr(a, b):
    """compare_correlation: cosine of the centred vectors (= Pearson)."""
    a = a - a.mean()
    b = b - b.mean()
    na, nb = np.sqrt(np.sum(a * a)), np.sqrt(np.sum(b * b))
    if na == 0 or nb == 0 or np.all(a == a[0]) or np.all(b == b[0]):
        return np.nan
    return float(np.clip(np.sum(a * b) / (na * nb), -1, 1))


def _tau_a(a, b):
    """tau-a: (n_c - n_d) / (N(N-1)/2), ties count as neither (brute force)."""
    n = len(a)
    if n < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return np.nan
    sa = np.sign(a[:, None] - a[None, :])
    sb = np.sign(b[:, None] - b[None, :])
    s = np.sum(np.triu(sa * sb, 1))
    return float(s / (n * (n - 1) / 2))


def compare(a, b, method):
    """rsatoolbox compare() on two vectors without NaN: 'corr', 'spearman', 'tau-a'."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    if method == "pearson":
        return _corr(a, b)
    if method == "spearman":
        if np.all(a == a[0]) or np.all(b == b[0]):
            return np.nan
        return _corr(rankdata(a), rankdata(b))
    if method == "kendall_tau_a":
        return _tau_a(a, b)
    raise ValueError(method)


def compare_nan(a, b, method):
    """compare() of vectors with NaN entries: rsatoolbox's _parse_input_rdms drops the
    entries that are NaN in the first vector (both carry the same NaN pattern here)."""
    keep = ~np.isnan(a)
    return compare(a[keep], b[keep], method)


# ---- rsatoolbox util/inference_util.py pool_rdm (and util/pooling.py) ----

def pool_rdm(vecs, method, pooling):
    """Pooled RDM of the rows of vecs (NaN entries ignored), rsatoolbox's pool_rdm for the
    method ('corr': z-score with nanmean / nanstd, average, minus the minimum; 'spearman',
    'tau-a': average _nan_rank_data ranks). pooling 'mean': the plain mean (rdmlearn's
    RDML_RSA_POOL_MEAN, not an rsatoolbox option)."""
    vecs = np.array(vecs, float)
    keep = ~np.isnan(vecs[0])
    if pooling == "mean":
        out = np.full(vecs.shape[1], np.nan)
        out[keep] = np.mean(vecs[:, keep], axis=0)
        return out
    if method == "pearson":
        v = vecs - np.nanmean(vecs, axis=1, keepdims=True)
        v = v / np.nanstd(v, axis=1, keepdims=True)
        out = np.full(vecs.shape[1], np.nan)
        out[keep] = np.mean(v[:, keep], axis=0)
        return out - np.nanmin(out)
    ranks = np.full(vecs.shape, np.nan)
    for r in range(vecs.shape[0]):  # _nan_rank_data
        ranks[r, keep] = rankdata(vecs[r, keep])
    out = np.full(vecs.shape[1], np.nan)
    out[keep] = np.mean(ranks[:, keep], axis=0)
    return out


def boot_noise_ceiling(vecs, subject_ids, method, pooling):
    """rsatoolbox inference/noise_ceiling.py boot_noise_ceiling with sets_leave_one_out_rdm:
    leave out every copy of one subject (grouped by the 'index' descriptor, which resampled
    copies share); lower = mean over distinct subjects of compare(pool of the others, the
    subject's RDMs), upper = the same with the pool of all. NaN with one distinct subject."""
    vecs = np.asarray(vecs, float)
    subject_ids = np.asarray(subject_ids)
    uniq = np.unique(subject_ids)
    if len(uniq) < 2:
        return np.nan, np.nan
    pred_all = pool_rdm(vecs, method, pooling)
    lo, up = [], []
    for s in uniq:
        test = vecs[subject_ids == s]
        train = vecs[subject_ids != s]
        pred_train = pool_rdm(train, method, pooling)
        lo.append(np.mean([compare_nan(t, pred_train, method) for t in test]))
        up.append(np.mean([compare_nan(t, pred_all, method) for t in test]))
    return float(np.mean(lo)), float(np.mean(up))


# ---- pair lists and rsatoolbox's RDMs.subsample_pattern ----

def local_pairs(pi, pj):
    """The u distinct images the pairs touch (ascending) and each pair's positions in it."""
    images = np.unique(np.concatenate([pi, pj]))
    pos = {int(v): k for k, v in enumerate(images)}
    return images, np.array([pos[int(v)] for v in pi]), np.array([pos[int(v)] for v in pj])


def is_complete(la, lb, u):
    key = np.minimum(la, lb) * u + np.maximum(la, lb)
    return len(la) == u * (u - 1) // 2 and len(np.unique(key)) == len(la)


def expand(vec, la, lb, u, idx):
    """The resampled vector of bootstrap positions idx (into the u images).

    Complete list: rsatoolbox's subsample_pattern: the u x u matrix re-indexed by idx on
    both axes, the upper triangle over sampled positions k < l, entries whose two positions
    are the same image set to NaN (and dropped by compare). Incomplete list: each pair
    repeated c_i c_j times (the same multiset)."""
    vec = np.asarray(vec, float)
    if is_complete(la, lb, u):
        mat = np.full((u, u), np.nan)
        mat[la, lb] = vec
        mat[lb, la] = vec
        sub = mat[np.ix_(idx, idx)]
        same = idx[:, None] == idx[None, :]
        sub[same] = np.nan
        k, l = np.triu_indices(len(idx), 1)
        return sub[k, l]
    c = np.bincount(idx, minlength=u)
    w = c[la] * c[lb]
    return np.repeat(vec, w)


def expand_selfpairs_kept(vec, la, lb, u, idx):
    """A WRONG variant for the tests' discrimination check: the self-pairs that repetition
    creates kept as dissimilarity 0 instead of being dropped."""
    vec = np.asarray(vec, float)
    mat = np.zeros((u, u))
    mat[la, lb] = vec
    mat[lb, la] = vec
    sub = mat[np.ix_(idx, idx)]
    k, l = np.triu_indices(len(idx), 1)
    return sub[k, l]


# ---- rsatoolbox inference/evaluate.py eval_bootstrap_pattern / eval_bootstrap ----

def evaluate_sample(brain, models, mps, la, lb, u, idx, sidx, method, pooling,
                    expander=expand):
    """Scores (M) and noise ceiling (lower, upper) of one bootstrap sample: images idx
    (positions into the u images) and subjects sidx (None: every subject once). Follows
    eval_bootstrap_pattern / eval_bootstrap: evaluations[i, j] = mean over the sample's RDMs of
    compare(model RDM subsampled like the data, data RDM); a sample with fewer than 3 distinct
    patterns is NaN; the noise ceiling is boot_noise_ceiling of the sample."""
    S = len(brain)
    M = len(models) // S if mps else len(models)
    nanrow = np.full(M, np.nan), (np.nan, np.nan)
    if len(np.unique(idx)) < 3:
        return nanrow
    subj = np.arange(S) if sidx is None else np.asarray(sidx)
    bx = [expander(brain[s], la, lb, u, idx) for s in range(S)]
    scores = np.zeros(M)
    for k in range(M):
        vals = []
        for s in subj:
            m = models[k * S + s] if mps else models[k]
            r = compare_nan(bx[s], expander(m, la, lb, u, idx), method)
            if np.isnan(r):
                return nanrow
            vals.append(r)
        scores[k] = np.mean(vals)
    nc = (np.nan, np.nan)
    if S >= 2:
        # every subject vector must be defined (rdmlearn drops the sample otherwise)
        for s in np.unique(subj):
            x = bx[s][~np.isnan(bx[s])]
            if np.all(x == x[0]):
                return nanrow
        nc = boot_noise_ceiling([bx[s] for s in subj], subj, method, pooling)
    return scores, nc


# ---- permutation test (rdmlearn's; rsatoolbox has none for fixed models) ----

def permuted_brain(brain_s, la, lb, u, images, perm, scheme, brain_full=None, n=None):
    """The brain vector under permutation perm: scheme 'images' (complete list: value of
    (perm[a], perm[b]) from the u x u matrix), 'images_full' (from the full n x n RDM), or
    'pairs' (perm permutes the P pair values)."""
    if scheme == "pairs":
        return np.asarray(brain_s, float)[perm]
    if scheme == "images":
        mat = np.zeros((u, u))
        mat[la, lb] = brain_s
        mat[lb, la] = brain_s
        return mat[perm[la], perm[lb]]
    full = np.asarray(brain_full, float).reshape(n, n)
    return full[images[perm[la]], images[perm[lb]]]


def perm_null(brain, models, mps, la, lb, u, images, perm, scheme, method, brain_full=None,
              n=None):
    S = len(brain)
    M = len(models) // S if mps else len(models)
    out = np.zeros(M)
    for s in range(S):
        g = permuted_brain(brain[s], la, lb, u, images, perm, scheme,
                           None if brain_full is None else brain_full[s], n)
        for k in range(M):
            m = models[k * S + s] if mps else models[k]
            r = compare(g, m, method)
            if np.isnan(r):
                return np.full(M, np.nan)
            out[k] += r
    return out / S


def perm_p(null, observed):
    """p = (1 + #{null >= observed}) / (1 + valid permutations), per model."""
    null = np.asarray(null, float)
    ok = ~np.isnan(null[:, 0])
    return (1 + np.sum(null[ok] >= observed[None, :], axis=0)) / (1 + ok.sum())


# ---- rsatoolbox util/inference_util.py ----

def bootstrap_pair_tests(evaluations):
    """bootstrap_pair_tests: proportion = #{e_i < e_j} / (B - #{e_i == e_j}), two-sided
    p = 2 min(prop, 1 - prop), then (B - 1) / B * p + 1 / B; diagonal 1. Rows are the valid
    samples. (All-tied pairs: prop 0.5 where rsatoolbox divides 0 by 0.)"""
    ev = np.asarray(evaluations, float)
    B, M = ev.shape
    prop = np.zeros((M, M))
    for i in range(M - 1):
        for j in range(i + 1, M):
            den = B - np.sum(ev[:, i] == ev[:, j])
            prop[i, j] = np.sum(ev[:, i] < ev[:, j]) / den if den > 0 else 0.5
            prop[j, i] = prop[i, j]
    p = np.minimum(prop, 1 - prop) * 2
    p = (B - 1) / B * p + 1 / B
    np.fill_diagonal(p, 1)
    return p


def zero_tests(evaluations):
    """zero_tests (bootstrap): (#{e <= 0} + 1) / B."""
    ev = np.asarray(evaluations, float)
    return ((ev <= 0).sum(axis=0) + 1) / ev.shape[0]


def nc_tests(evaluations, nc_lower):
    """nc_tests (bootstrap): (#{nc_lower - e <= 0} + 1) / B, per sample's lower bound."""
    ev = np.asarray(evaluations, float)
    diffs = np.asarray(nc_lower, float)[:, None] - ev
    return ((diffs <= 0).sum(axis=0) + 1) / ev.shape[0]


def percentile_ci(x, level):
    """Percentile interval (numpy's default linear quantile), as rsatoolbox's plots use."""
    x = np.asarray(x, float)
    x = x[~np.isnan(x)]
    return (float(np.quantile(x, (1 - level) / 2)), float(np.quantile(x, (1 + level) / 2)))


# ---- multiple comparisons ----

def bh_stepup(p):
    """Benjamini-Hochberg q-values by the step-up rule, written directly: q_i is the smallest
    level alpha at which the step-up procedure (reject the k smallest, k = max{j : p_(j) <=
    j alpha / m}) rejects hypothesis i: min over ranks j >= rank(i) of m p_(j) / j, capped
    at 1. NaN entries are left out (not counted in m) and stay NaN."""
    p = np.asarray(p, float)
    q = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    for r, i in enumerate(order):
        best = 1.0
        for j in range(r, m):
            best = min(best, p[order[j]] * m / (j + 1))
        q[i] = best
    return q


def bonferroni(p):
    p = np.asarray(p, float)
    m = np.sum(~np.isnan(p))
    return np.where(np.isnan(p), np.nan, np.minimum(1.0, p * m))
