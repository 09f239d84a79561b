#!/usr/bin/python3
"""Regenerates tests/fixtures/svm/ (used by tests/unit/test_svm.c, test_svm_svr.c,
test_svm_grid.c, test_pairs.c, test_metrics.c).

usage: /usr/bin/python3 tools/make_svm_fixtures.py [OUTDIR]

Deterministic (numpy default_rng(7)). References:
  - SVM: sklearn.svm.SVC on the concatenated pair features [e_a ; e_b] (float64), one case per
    kernel/parameter set; the order-symmetric pair kernel through SVC(kernel='precomputed').
    Per case: dec_<case>.npy (decision_function on every ordered pair a != b), meta_<case>.npy
    [dual objective, rho = -intercept_, gamma, n_SV], sv_<case>.npy (support_) and
    coef_<case>.npy (dual_coef_). The dual objective is 1/2 c'K c - sum|c| with c = dual_coef_.
  - pairs: extremes (numpy stable argsort, as the paper's code), percentile bands (np.percentile).
  - metrics: sklearn.metrics (accuracy, precision, recall, f1, confusion, roc_auc, r2, mse),
    scipy.stats (pearsonr, spearmanr).
  - epsilon-SVR: sklearn.svm.SVR on the same training pairs with the RDM value as target:
    svrdec_<case>.npy (predict on the first 500 test pairs), svrmeta_<case>.npy [dual objective
    1/2 c'Kc + eps sum|c| - y'c, rho, gamma, n_SV].
  - grid search: sklearn.model_selection.GridSearchCV(refit=False) with an explicit cv list
    built by rdmlearn's image-disjoint rule from a fixed inner fold of each image
    (grid_image_fold.npy, -1 = outside the outer training set): mean inner scores per setting
    and scorer (grid_mean.npy, settings x scorers, ParameterGrid order), per-split scores
    (grid_split.npy, (scorers x settings) x folds) and the chosen setting per scorer
    (grid_best.npy); the same for SVR (gridsvr_*.npy). tol = 1e-6 so that every inner
    prediction is far from the solver tolerance (the script asserts the margins).
The SVR and grid parts draw from their own generator (default_rng(11)), so the earlier
fixtures do not change.
"""
import os, sys
import numpy as np
from sklearn.svm import SVC, SVR
from sklearn.model_selection import GridSearchCV
from sklearn import metrics as skm
from scipy import stats

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "svm")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
save = lambda name, a: np.save(os.path.join(out, name + ".npy"), a)

# ---- images, RDM, pairs ----
n, d, k = 40, 8, 8
E = rng.standard_normal((n, d)).astype(np.float32)
E[:, :3] += 0.5  # a non-zero mean so gamma='scale' differs from 'auto'
A = rng.standard_normal((n, n))
R = (1 + 0.15 * (A + A.T) / np.sqrt(2)).astype(np.float32)
np.fill_diagonal(R, 0)
# labels follow the embeddings a little so the SVM has something to learn
sim = (E @ E.T) / d
R = np.where(np.eye(n, dtype=bool), 0, R - 0.6 * sim).astype(np.float32)
save("emb", E)
save("rdm", R)

def extremes(R, k):
    pairs = []
    for i in range(len(R)):
        row = R[i].astype(np.float64).copy(); row[i] = np.nan
        order = np.argsort(np.where(np.isnan(row), np.inf, row), kind="stable")
        pairs += [(i, j) for j in order[:k]]
        order = np.argsort(np.where(np.isnan(row), -np.inf, row), kind="stable")[::-1]
        pairs += [(i, j) for j in order[:k]]
    return np.array(pairs, dtype=np.int64)

P = extremes(R, k)
save("extremes_k8", P)
tri = R[np.triu_indices(n, 1)].astype(np.float64)
lo, hi = np.percentile(tri, 10), np.percentile(tri, 85)
iu = np.triu_indices(n, 1)
mask = (tri <= lo) | (tri >= hi)
save("percentile_10_85", np.stack([iu[0][mask], iu[1][mask]], 1).astype(np.int64))

y = (R[P[:, 0], P[:, 1]] > 1).astype(np.int64)
perm = rng.permutation(len(P))
tr = np.sort(perm[: int(0.7 * len(P))])
train_ij, train_y = P[tr], y[tr]
test_ij = np.array([(a, b) for a in range(n) for b in range(n) if a != b], dtype=np.int64)
save("train_ij", train_ij)
save("train_y", train_y)
save("test_ij", test_ij)

X = lambda ij: np.hstack([E[ij[:, 0]], E[ij[:, 1]]]).astype(np.float64)
Xtr, Xte = X(train_ij), X(test_ij)

def kern(kernel, gamma, degree, coef0, A, B):
    dot = A @ B.T
    if kernel == "linear": return dot
    if kernel == "poly": return (gamma * dot + coef0) ** degree
    if kernel == "sigmoid": return np.tanh(gamma * dot + coef0)
    sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * dot
    return np.exp(-gamma * sq)

cases = {
    # name: (SVC kwargs, symmetric)
    "linear": (dict(kernel="linear", C=1.0), False),
    "poly2": (dict(kernel="poly", degree=2, C=1.0), False),               # the paper's
    "poly3auto": (dict(kernel="poly", degree=3, gamma="auto", coef0=1.0, C=0.5), False),
    "rbf": (dict(kernel="rbf", C=10.0), False),
    "sigmoid": (dict(kernel="sigmoid", gamma=0.01, coef0=0.0, C=1.0), False),
    "poly2balanced": (dict(kernel="poly", degree=2, C=1.0, class_weight="balanced"), False),
    "poly2sym": (dict(kernel="poly", degree=2, C=1.0), True),
}
for name, (kw, sym) in cases.items():
    kw = dict(kw); kw.setdefault("tol", 1e-3)
    g = kw.get("gamma", "scale")
    gamma = 1.0 / (Xtr.shape[1] * Xtr.var()) if g == "scale" else (1.0 / Xtr.shape[1] if g == "auto" else g)
    kf = lambda A, B: kern(kw["kernel"], gamma, kw.get("degree", 3), kw.get("coef0", 0.0), A, B)
    if sym:
        swap = lambda Z: np.hstack([Z[:, d:], Z[:, :d]])
        ks = lambda A, B: 0.5 * (kf(A, B) + kf(A, swap(B)))
        m = SVC(kernel="precomputed", C=kw["C"], tol=kw["tol"]).fit(ks(Xtr, Xtr), train_y)
        dec = m.decision_function(ks(Xte, Xtr))
        Ksv = ks(Xtr[m.support_], Xtr[m.support_])
    else:
        m = SVC(**kw).fit(Xtr, train_y)
        dec = m.decision_function(Xte)
        Ksv = kf(Xtr[m.support_], Xtr[m.support_])
    c = m.dual_coef_[0]
    obj = 0.5 * c @ Ksv @ c - np.abs(c).sum()
    save("dec_" + name, dec.astype(np.float64))
    save("meta_" + name, np.array([obj, -m.intercept_[0], gamma, len(m.support_)], dtype=np.float64))
    save("sv_" + name, m.support_.astype(np.int64))
    save("coef_" + name, c.astype(np.float64))
    print(f"{name}: obj {obj:.6f} rho {-m.intercept_[0]:.6f} gamma {gamma:.6g} nSV {len(m.support_)}")

# ---- metrics ----
m_n = 101
yt = rng.integers(0, 2, m_n)
score = np.round(rng.standard_normal(m_n) + 0.8 * yt, 1)  # rounded: ties in the scores
yp = (score > 0.3).astype(np.int64)
cm = skm.confusion_matrix(yt, yp)
save("metrics_bin_ytrue", yt.astype(np.int64))
save("metrics_bin_ypred", yp)
save("metrics_bin_score", score)
save("metrics_bin_expect", np.array([skm.accuracy_score(yt, yp), skm.precision_score(yt, yp),
                                      skm.recall_score(yt, yp), skm.f1_score(yt, yp),
                                      skm.roc_auc_score(yt, score), cm[0, 0], cm[0, 1], cm[1, 0],
                                      cm[1, 1]], dtype=np.float64))
rt = rng.standard_normal(77)
rp = np.round(rt + 0.7 * rng.standard_normal(77), 1)
save("metrics_reg_true", rt)
save("metrics_reg_pred", rp)
save("metrics_reg_expect", np.array([skm.r2_score(rt, rp), skm.mean_squared_error(rt, rp),
                                      stats.pearsonr(rt, rp)[0], stats.spearmanr(rt, rp)[0]],
                                     dtype=np.float64))

# ---- epsilon-SVR ----
rng = np.random.default_rng(11)
t_tr = R[train_ij[:, 0], train_ij[:, 1]].astype(np.float64)
Xte5 = Xte[:500]
svr_cases = {
    "poly2": dict(kernel="poly", degree=2, C=1.0, epsilon=0.1),
    "rbf": dict(kernel="rbf", C=10.0, epsilon=0.05),
    "linear": dict(kernel="linear", C=0.1, epsilon=0.1),
    "rbf_tight": dict(kernel="rbf", C=1.0, epsilon=0.02, gamma=0.05, tol=1e-6),
}
for name, kw in svr_cases.items():
    kw = dict(kw); kw.setdefault("tol", 1e-3)
    g = kw.get("gamma", "scale")
    gamma = 1.0 / (Xtr.shape[1] * Xtr.var()) if g == "scale" else g
    m = SVR(**kw).fit(Xtr, t_tr)
    c = m.dual_coef_[0]
    K = kern(kw["kernel"], gamma, kw.get("degree", 3), kw.get("coef0", 0.0), Xtr[m.support_], Xtr[m.support_])
    obj = 0.5 * c @ K @ c + kw["epsilon"] * np.abs(c).sum() - t_tr[m.support_] @ c
    save("svrdec_" + name, m.predict(Xte5).astype(np.float64))
    save("svrmeta_" + name, np.array([obj, -m.intercept_[0], gamma, len(m.support_)], dtype=np.float64))
    print(f"svr {name}: obj {obj:.6f} rho {-m.intercept_[0]:.6f} nSV {len(m.support_)}")

# ---- grid search with an explicit (image-disjoint) inner split ----
ifold = (rng.permutation(n) % 3).astype(np.int64)
ifold[rng.choice(n, 4, replace=False)] = -1        # images outside the outer training set
save("grid_image_fold", ifold)
fa, fb = ifold[P[:, 0]], ifold[P[:, 1]]
used = (fa >= 0) & (fb >= 0)
cv = [(np.where(used & (fa != g) & (fb != g))[0], np.where(used & (fa == g) & (fb == g))[0]) for g in range(3)]
XP = X(P)
vP = R[P[:, 0], P[:, 1]].astype(np.float64)

def run_grid(est, grid, scorers, target, prefix, classify):
    gs = GridSearchCV(est, grid, cv=cv, scoring=scorers, refit=False).fit(XP, target)
    r = gs.cv_results_
    mean = np.array([[r["mean_test_" + s][i] for s in scorers] for i in range(len(r["params"]))])
    split = np.array([[[r[f"split{g}_test_{s}"][i] for g in range(3)] for i in range(len(r["params"]))] for s in scorers])
    best = np.array([int(np.argmin(r["rank_test_" + s])) for s in scorers], dtype=np.int64)
    margin, gap = np.inf, np.inf  # |decision| (accuracy, f1) and gaps between decisions (roc_auc)
    for prm in r["params"]:
        for tr, te in cv:
            e = type(est)(**{**est.get_params(), **prm}).fit(XP[tr], target[tr])
            if classify:
                dv = np.sort(e.decision_function(XP[te]))
                dd = np.diff(dv)
                margin = min(margin, np.abs(dv).min())
                gap = min(gap, dd[dd > 0].min())  # exact ties (repeated pairs) stay exact
    print(prefix, "params", r["params"])
    print(prefix, "mean", mean.T, "best", best, "margin", margin, "gap", gap)
    if classify: assert margin > 1e-4 and gap > 5e-6, (margin, gap)
    save(prefix + "_mean", mean)
    save(prefix + "_split", split.reshape(-1, 3))  # (scorers x settings) x folds
    save(prefix + "_best", best)

run_grid(SVC(tol=1e-6), {"C": [0.1, 1.0, 10.0], "kernel": ["poly", "rbf"], "degree": [2, 3]},
         ["accuracy", "f1", "roc_auc"], (vP > 1).astype(np.int64), "grid", True)
run_grid(SVR(tol=1e-6, kernel="rbf"), {"C": [0.3, 3.0], "epsilon": [0.02, 0.1], "gamma": ["scale", 0.05]},
         ["r2", "neg_mean_squared_error"], vP, "gridsvr", False)
print("fixtures in", out)
