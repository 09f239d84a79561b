#!/usr/bin/python3
"""Regenerates tests/fixtures/ridge/ (used by tests/unit/test_ridge.c).

usage: /usr/bin/python3 tools/make_ridge_fixtures.py [OUTDIR]

Deterministic (numpy default_rng(16)). Cases (prefix <c>_ on every file):
  tall  80 images x 12 features, 25 targets; 60 training rows, 20 test rows (sklearn "svd"
        leave-one-out mode, n_samples > n_features)
  wide  40 images x 60 features, 25 targets; 30 training rows, 10 test rows (D > N:
        sklearn "eigen" mode)
Per case: X.npy (float32, images x features), Y.npy (float32, images x targets), train.npy,
test.npy (int64 row indices), alphas.npy (float64). Per case and standardisation s in {0, 1}
(s = 1: a Pipeline(StandardScaler, model) fitted on the training rows):
  - leave-one-out: sklearn RidgeCV(alphas, alpha_per_target=True, fit_intercept=True) on the
    training rows (float64 copies of the float32 data):
      loo<s>_best.npy (chosen alpha index per target), loo<s>_score.npy (alphas x targets:
      minus the mean squared LOO residual, from cv_values_), then Ridge(alpha_t) per target:
      loo<s>_pred.npy (test x targets), loo<s>_coef.npy (features x targets, on the raw
      feature scale), loo<s>_icpt.npy, loo<s>_r.npy (scipy pearsonr), loo<s>_r2.npy
      (sklearn r2_score).
  - inner k-fold (himalaya solve_ridge_cv_svd semantics) on the fixed inner folds
    kf_fold.npy (one fold id per training row, in train order), K = 4, by a direct numpy
    reference: per inner fold, features and targets centred on the inner training rows,
    w = solve(Xc'Xc + alpha I, Xc'yc), held-out prediction (x - mean_tr) w, score = minus the
    mean squared error (kf<s>_mse_*) or himalaya's r2 (kf<s>_r2_*); the mean over folds
    (…_score.npy, alphas x targets), + 1e-10 ln(alpha), first argmax (…_best.npy), and the
    refit Ridge(alpha_t) on all training rows: …_pred.npy.
The script redraws the data until the best alpha of every target beats the second best by a relative
margin > 1e-5 (so float32 arithmetic cannot flip a choice) and the chosen
alphas vary (at least 3 distinct).
"""
import os
import sys

import numpy as np
from scipy.stats import pearsonr
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ridge")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(16)
ALPHAS = np.logspace(-2, 4, 13)
K = 4


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), a)


def make(nimg, nfeat, ntarget, ntrain):
    scales = np.exp(rng.normal(0, 1, nfeat))          # features on different scales
    X = (rng.normal(0, 1, (nimg, nfeat)) * scales + rng.normal(0, 2, nfeat)).astype(np.float32)
    B = rng.normal(0, 1, (nfeat, ntarget)) / scales[:, None]
    B *= (rng.random((nfeat, ntarget)) < 0.5)
    noise = np.exp(np.linspace(-1, 3, ntarget))       # from strong to no signal
    Y = (X @ B + rng.normal(0, 1, (nimg, ntarget)) * noise + rng.normal(0, 3, ntarget))
    Y = Y.astype(np.float32)
    perm = rng.permutation(nimg)
    return X, Y, np.sort(perm[:ntrain]).astype(np.int64), np.sort(perm[ntrain:]).astype(np.int64)


def margin_ok(score, best):
    """score: alphas x targets, larger is better."""
    for t in range(score.shape[1]):
        s = np.sort(score[:, t])[::-1]
        if not (s[0] - s[1] > 1e-5 * abs(s[0])):
            return False, t
    return True, -1


def refit(Xtr, Ytr, Xte, Yte, alphas_t, std):
    nt = Ytr.shape[1]
    pred = np.zeros((Xte.shape[0], nt)); coef = np.zeros((Xtr.shape[1], nt)); icpt = np.zeros(nt)
    sc = StandardScaler().fit(Xtr) if std else None
    for t in range(nt):
        m = Ridge(alpha=alphas_t[t], fit_intercept=True)
        if std:
            m.fit(sc.transform(Xtr), Ytr[:, t])
            pred[:, t] = m.predict(sc.transform(Xte))
            coef[:, t] = m.coef_ / sc.scale_
            icpt[t] = m.intercept_ - sc.mean_ @ coef[:, t]
        else:
            m.fit(Xtr, Ytr[:, t])
            pred[:, t] = m.predict(Xte)
            coef[:, t] = m.coef_
            icpt[t] = m.intercept_
    r = np.array([pearsonr(Yte[:, t], pred[:, t])[0] for t in range(nt)])
    r2 = np.array([r2_score(Yte[:, t], pred[:, t]) for t in range(nt)])
    return pred, coef, icpt, r, r2


def kfold_ref(Xs, Y, fold, score):
    """Xs: training features (already standardised or not), Y: training targets."""
    sc = np.zeros((len(ALPHAS), Y.shape[1]))
    for k in range(K):
        tr, te = fold != k, fold == k
        mx, my = Xs[tr].mean(0), Y[tr].mean(0)
        Xc, Yc = Xs[tr] - mx, Y[tr] - my
        G, XtY = Xc.T @ Xc, Xc.T @ Yc
        for a, alpha in enumerate(ALPHAS):
            W = np.linalg.solve(G + alpha * np.eye(G.shape[0]), XtY)
            p = (Xs[te] - mx) @ W
            yt = Y[te] - my
            sse = ((yt - p) ** 2).sum(0)
            if score == "mse":
                sc[a] += -sse / te.sum()
            else:
                var = ((yt - yt.mean(0)) ** 2).sum(0)
                sc[a] += np.where(var == 0, 0.0, 1 - sse / np.where(var == 0, 1, var))
    sc /= K
    best = np.argmax(sc + (np.log(ALPHAS) * 1e-10)[:, None], axis=0)
    return sc, best


def case(name, nimg, nfeat, ntarget, ntrain):
    """Draws data until every choice has a clear margin (deterministic: the same draws)."""
    for attempt in range(50):
        try:
            return case_once(name, nimg, nfeat, ntarget, ntrain)
        except AssertionError as e:
            print(f"{name}: redraw ({e})")
    raise SystemExit(f"{name}: no draw without near ties")


def case_once(name, nimg, nfeat, ntarget, ntrain):
    X, Y, train, test = make(nimg, nfeat, ntarget, ntrain)
    save(f"{name}_X", X); save(f"{name}_Y", Y)
    save(f"{name}_train", train); save(f"{name}_test", test); save(f"{name}_alphas", ALPHAS)
    Xtr, Ytr = X[train].astype(np.float64), Y[train].astype(np.float64)
    Xte, Yte = X[test].astype(np.float64), Y[test].astype(np.float64)
    fold = rng.permutation(np.arange(ntrain) % K).astype(np.int64)
    save(f"{name}_kf_fold", fold)
    for std in (0, 1):
        Xs = StandardScaler().fit(Xtr).transform(Xtr) if std else Xtr
        cv = RidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=True,
                     store_cv_values=True).fit(Xs, Ytr)
        best = np.array([np.flatnonzero(ALPHAS == a)[0] for a in cv.alpha_]).astype(np.int64)
        score = -cv.cv_values_.mean(0).T                  # alphas x targets
        assert np.array_equal(np.argmax(score, axis=0), best)
        ok, t = margin_ok(score, best)
        assert ok, f"{name} std={std}: target {t} has a near tie between alphas"
        assert len(set(best)) >= 3, f"{name} std={std}: chosen alphas barely vary: {best}"
        save(f"{name}_loo{std}_best", best); save(f"{name}_loo{std}_score", score)
        pred, coef, icpt, r, r2 = refit(Xtr, Ytr, Xte, Yte, ALPHAS[best], std)
        save(f"{name}_loo{std}_pred", pred); save(f"{name}_loo{std}_coef", coef)
        save(f"{name}_loo{std}_icpt", icpt); save(f"{name}_loo{std}_r", r); save(f"{name}_loo{std}_r2", r2)
        for sname in ("mse", "r2"):
            sc, kbest = kfold_ref(Xs, Ytr, fold, sname)
            ok, t = margin_ok(sc, kbest)
            assert ok, f"{name} std={std} {sname}: target {t} has a near tie between alphas"
            save(f"{name}_kf{std}_{sname}_best", kbest.astype(np.int64))
            save(f"{name}_kf{std}_{sname}_score", sc)
            pred, *_ = refit(Xtr, Ytr, Xte, Yte, ALPHAS[kbest], std)
            save(f"{name}_kf{std}_{sname}_pred", pred)
        print(f"{name} std={std}: LOO alphas {np.bincount(best, minlength=len(ALPHAS))}")


case("tall", 80, 12, 25, 60)
case("wide", 40, 60, 25, 30)
print("wrote", OUT)
