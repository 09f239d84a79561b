#!/usr/bin/python3
"""SVM bench anchor: the paper's setting on planted data (bench/common/planted.py).
usage: anchor.py prepare DIR N K D   -- embeddings, extremes pairs, image-disjoint holdout (0.36)
       anchor.py fit DIR             -- sklearn SVC(kernel='poly', degree=2, C=1) on the same
                                        training pairs; prints times and compares with rdmlearn
       anchor.py prepare-h5 DIR RESULTS.h5 SELECTION EMBEDDING K TEST_SIZE
                                     -- the same files from a results file's RDM and embeddings
                                        (subject 1; labels RDM > its threshold attribute)
       anchor.py linear DIR RANK     -- sklearn LinearSVC(loss='hinge', intercept_scaling=1) on
                                        the explicit poly-2 features of the rank-RANK eigen factor
                                        (what svm.solver = lowrank solves), when it fits in memory
       anchor.py summary DIR         -- medians of runs.tsv, ratios against exact SMO"""
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
elif cmd == "prepare-h5":
    import h5py
    f = h5py.File(sys.argv[3], "r")
    sel, emb, k, ts = sys.argv[4], sys.argv[5], int(sys.argv[6]), float(sys.argv[7])
    E = f[f"/subjects/subj01/embeddings/{emb}"][()]; rd = f[f"/subjects/subj01/rdm/{sel}"]
    R, thr = rd[()], float(rd.attrs["threshold"]); n = len(R)
    pairs = []
    for i0 in range(0, n, 512):  # per image its k lowest, then its k highest partners
        B = R[i0:i0 + 512].astype(np.float64); rows = np.arange(len(B))
        lo = B.copy(); lo[rows, i0 + rows] = np.inf; hi = B.copy(); hi[rows, i0 + rows] = -np.inf
        a = np.argsort(lo, axis=1, kind="stable")[:, :k]; b = np.argsort(-hi, axis=1, kind="stable")[:, :k]
        for r in range(len(B)):
            pairs.append(np.stack([np.full(2 * k, i0 + r), np.concatenate([a[r], b[r]])], 1))
    P = np.concatenate(pairs); y = (R[P[:, 0], P[:, 1]] > thr).astype(np.int64)
    test = np.zeros(n, bool); test[np.random.default_rng(0).permutation(n)[: int(np.ceil(ts * n))]] = True
    tr = ~test[P[:, 0]] & ~test[P[:, 1]]; te = test[P[:, 0]] & test[P[:, 1]]
    np.save(f"{D}/emb.npy", E.astype(np.float32))
    np.save(f"{D}/train_ij.npy", P[tr].astype(np.int64)); np.save(f"{D}/train_y.npy", y[tr])
    np.save(f"{D}/test_ij.npy", P[te].astype(np.int64)); np.save(f"{D}/test_y.npy", y[te])
    print(f"{sys.argv[3]} {sel}/{emb}: n={n} d={E.shape[1]} k={k}: {len(P)} pairs, {tr.sum()} train / "
          f"{te.sum()} test (image-disjoint holdout {ts}), {y[tr].mean():.3f} dissimilar")
elif cmd == "linear":
    from sklearn.svm import LinearSVC
    K = int(sys.argv[3])
    E = np.load(f"{D}/emb.npy").astype(np.float64)
    trij, ytr, teij, yte = (np.load(f"{D}/{s}.npy") for s in ("train_ij", "train_y", "test_ij", "test_y"))
    m2 = 2 * K; nf = m2 * (m2 + 1) // 2
    need = len(trij) * nf * (8 + 16) / 2**30  # dense features + liblinear's feature_node copy
    if need > float(os.environ.get("LINEAR_MAX_GB", "6")):
        print(f"sklearn LinearSVC rank {K}: not run: {len(trij)} pairs x {nf} features need ~{need:.0f} GB "
              f"(LINEAR_MAX_GB={os.environ.get('LINEAR_MAX_GB', '6')})")
        sys.exit(0)
    t = time.perf_counter()
    img = np.unique(trij); w, V = np.linalg.eigh(E[img].T @ E[img]); F = E @ V[:, ::-1][:, :K]
    Xc = np.hstack([E[trij[:, 0]], E[trij[:, 1]]]); g = 1 / (Xc.shape[1] * Xc.var()); del Xc
    iu = np.triu_indices(m2); sc = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))
    def phi(ij):
        z = np.hstack([F[ij[:, 0]], F[ij[:, 1]]])
        return g * z[:, iu[0]] * z[:, iu[1]] * sc
    Xtr = phi(trij)
    m = LinearSVC(loss="hinge", C=1.0, intercept_scaling=1, tol=0.1, max_iter=1000).fit(Xtr, ytr)
    tf = time.perf_counter() - t; del Xtr
    t = time.perf_counter(); dec = m.decision_function(phi(teij)); tp = time.perf_counter() - t
    acc = np.mean((dec > 0) == (yte > 0))
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sklearn LinearSVC rank {K}: fit {tf:.2f} s (features included) predict {tp:.2f} s acc {acc:.4f} peak RSS {rss:.0f} MB")
    with open(f"{D}/runs.tsv", "a") as fh:
        fh.write(f"sklearn-linear{K}\t{len(trij)}\t{tf:.6f}\t{tp:.6f}\t{acc:.6f}\t{rss:.1f}\tnan\n")
elif cmd == "summary":
    rows = [l.split("\t") for l in open(f"{D}/runs.tsv").read().splitlines() if l.strip()]
    tags = list(dict.fromkeys(r[0] for r in rows))
    med = {t: np.median(np.array([[float(x) for x in r[2:6]] for r in rows if r[0] == t]), axis=0) for t in tags}
    cnt = {t: sum(r[0] == t for r in rows) for t in tags}
    base = med.get("rdml")
    print(f"{'solver':<18} {'runs':>4} {'train pairs':>11} {'fit s':>9} {'predict s':>9} {'acc':>7} {'peak MB':>8}  vs SMO")
    for t in tags:
        f_, p_, a_, m_ = med[t]; ntr = [r[1] for r in rows if r[0] == t][0]
        vs = f"fit {base[0] / f_:.1f}x, acc {100 * (a_ - base[2]):+.2f} pt" if base is not None and t != "rdml" else ""
        print(f"{('smo' if t == 'rdml' else t):<18} {cnt[t]:>4} {ntr:>11} {f_:>9.2f} {p_:>9.2f} {a_:>7.4f} {m_:>8.0f}  {vs}")
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
