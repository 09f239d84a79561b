#!/usr/bin/python3
"""SVM bench anchor: the paper's setting on planted data (bench/common/planted.py).
usage: anchor.py prepare DIR N K D   -- embeddings, extremes pairs, image-disjoint holdout (0.36)
       anchor.py fit DIR             -- sklearn SVC(kernel='poly', degree=2, C=1) on the same
                                        training pairs; prints times and compares with rdmlearn"""
import os, sys, time, numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
cmd, D = sys.argv[1], sys.argv[2]
if cmd == "prepare":
    import planted
    n, k, d = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    E, R = planted.make(n=n, d=d)
    P = planted.extremes(R, k)
    y = (R[P[:, 0], P[:, 1]] > 1).astype(np.int64)
    test = np.zeros(n, bool); test[np.random.default_rng(0).permutation(n)[: int(np.ceil(0.36 * n))]] = True
    tr = ~test[P[:, 0]] & ~test[P[:, 1]]; te = test[P[:, 0]] & test[P[:, 1]]
    np.save(f"{D}/emb.npy", E.astype(np.float32))
    np.save(f"{D}/train_ij.npy", P[tr].astype(np.int64)); np.save(f"{D}/train_y.npy", y[tr])
    np.save(f"{D}/test_ij.npy", P[te].astype(np.int64)); np.save(f"{D}/test_y.npy", y[te])
    print(f"planted n={n} d={d} K={k}: {len(P)} pairs, {tr.sum()} train / {te.sum()} test (image-disjoint)")
else:
    from sklearn.svm import SVC
    from sklearn.metrics import accuracy_score, f1_score
    E = np.load(f"{D}/emb.npy"); X = lambda ij: np.hstack([E[ij[:, 0]], E[ij[:, 1]]])
    trij, ytr, teij, yte = (np.load(f"{D}/{s}.npy") for s in ("train_ij", "train_y", "test_ij", "test_y"))
    Xtr, Xte = X(trij), X(teij)
    t = time.perf_counter(); m = SVC(kernel="poly", degree=2, C=1.0).fit(Xtr, ytr); tf = time.perf_counter() - t
    t = time.perf_counter(); dec = m.decision_function(Xte); tp = time.perf_counter() - t
    p = (dec > 0).astype(int)
    print(f"sklearn : fit {tf:9.2f} s  predict {tp:8.2f} s  acc {accuracy_score(yte, p):.4f} f1 {f1_score(yte, p):.4f} nSV {len(m.support_)}")
    r = np.load(f"{D}/dec_rdml.npy"); t_r = np.load(f"{D}/times_rdml.npy")
    c = m.dual_coef_[0]; g = 1 / (Xtr.shape[1] * Xtr.var()); S = Xtr[m.support_]
    obj = 0.5 * c @ ((g * S @ S.T) ** 2) @ c - np.abs(c).sum()
    pr = (r > 0).astype(int)
    print(f"rdmlearn: fit {t_r[0]:9.2f} s  predict {t_r[1]:8.2f} s  acc {accuracy_score(yte, pr):.4f} f1 {f1_score(yte, pr):.4f} nSV {int(t_r[3])}")
    print(f"dual objective: rdmlearn {t_r[2]:.6f} sklearn {obj:.6f} (rel {abs(t_r[2] - obj) / abs(obj):.1e}); "
          f"predictions agree {np.mean(pr == p):.4%}")
    print(f"fit speed-up sklearn / rdmlearn: {tf / t_r[0]:.1f}x   predict: {tp / max(t_r[1], 1e-9):.1f}x")
