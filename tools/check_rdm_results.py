#!/usr/bin/python3
"""Check an `rdmlearn rdm` results file the way a Python user would, from the raw dataset.

usage:
  check_rdm_results.py reference ROOT RESULTS.h5 SUBJ SELECTION [METRIC]
      recompute the RDM of subject SUBJ (e.g. 1) and SELECTION (e.g. V1, V1v+V1d, class:Faces,
      all) with numpy/scipy (standardise each vertex as sklearn's StandardScaler, then
      scipy.spatial.distance.pdist) and compare (1e-5); also the stored summary (median,
      histogram, extremes) and, with >= 2 subjects, the noise ceiling (scipy.stats).
  check_rdm_results.py same A.h5 B.h5
      every dataset under /subjects and /rsa of A equals B's within 1e-6 (rank invariance).
Exit status 0 when everything agrees; messages name what differs.
"""
import sys
import numpy as np
import h5py
from scipy.spatial.distance import pdist, squareform
from scipy import stats

CLASSES = ["prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams"]
CLASS_NAMES = ["Visual", "Bodies", "Faces", "Places", "Words", "Streams"]
UNIONS = {"V1": ["V1v", "V1d"], "V2": ["V2v", "V2d"], "V3": ["V3v", "V3d"],
          "FBA": ["FBA-1", "FBA-2"], "FFA": ["FFA-1", "FFA-2"], "VWFA": ["VWFA-1", "VWFA-2"]}
fails = []


def fail(msg):
    fails.append(msg)
    print("FAIL:", msg)


def columns(root, subj, spec):
    """Column indices (lh first, rh offset by n_lh) as the Algonauts tutorial selects them."""
    d = f"{root}/subj{subj:02d}/roi_masks"
    lh = np.load(f"{root}/subj{subj:02d}/training_split/training_fmri/lh_training_fmri.npy", mmap_mode="r")
    nlh = lh.shape[1]
    sel = {"lh": set(), "rh": set()}
    for part in spec.split("+"):
        for hemi in ("lh", "rh"):
            n = nlh if hemi == "lh" else np.load(f"{root}/subj{subj:02d}/training_split/training_fmri/rh_training_fmri.npy", mmap_mode="r").shape[1]
            if part == "all":
                sel[hemi] |= set(range(n))
                continue
            if part.startswith("class:"):
                tag = CLASSES[CLASS_NAMES.index(part[6:])]
                mask = np.load(f"{d}/{hemi}.{tag}_challenge_space.npy")
                sel[hemi] |= set(np.where(mask != 0)[0])
                continue
            names = UNIONS.get(part, [part])
            for tag in CLASSES:
                mapping = np.load(f"{d}/mapping_{tag}.npy", allow_pickle=True).item()
                inv = {v: k for k, v in mapping.items()}
                mask = np.load(f"{d}/{hemi}.{tag}_challenge_space.npy")
                for nm in names:
                    if nm in inv:
                        sel[hemi] |= set(np.where(mask == inv[nm])[0])
    return sorted(sel["lh"]), sorted(sel["rh"]), nlh


def reference(root, res, subj, spec, metric="correlation", arith="float32"):
    f = h5py.File(res, "r")
    d = f[f"/subjects/subj{subj:02d}/rdm/{spec}"]
    R = d[()]
    n = R.shape[0]
    lhc, rhc, nlh = columns(root, subj, spec)
    base = f"{root}/subj{subj:02d}/training_split/training_fmri"
    X = np.concatenate([np.load(f"{base}/lh_training_fmri.npy")[:n, lhc],
                        np.load(f"{base}/rh_training_fmri.npy")[:n, rhc]], axis=1).astype(np.float64)
    if d.attrs["n_vertices"] != X.shape[1]:
        fail(f"subj{subj:02d} {spec}: {d.attrs['n_vertices']} vertices stored, numpy selects {X.shape[1]}")
    if d.attrs["standardized"]:
        sd = X.std(0)
        sd[sd == 0] = 1
        X = (X - X.mean(0)) / sd
    if metric == "spearman":
        X = stats.rankdata(X, axis=1)
        metric = "correlation"
    Rref = squareform(pdist(X, metric))
    # float32 output: 1e-5 absolute, relative to the value where it exceeds 1 (sqeuclidean);
    # rdm.arithmetic = int16: 2 c / (4095 sqrt(V)) with c = sqrt(V) max |z| over the prepared
    # (centred, unit-norm) rows, about 5x the rms of the rounding error (docs/rdm.md
    # "Arithmetic")
    tol = 1e-5
    if arith == "int16":
        Z = X - X.mean(1, keepdims=True) if metric == "correlation" else X
        nz = np.linalg.norm(Z, axis=1, keepdims=True)
        c = np.sqrt(X.shape[1]) * (np.abs(Z) / np.where(nz > 0, nz, 1)).max()
        tol = 2 * c / (4095 * np.sqrt(X.shape[1]))
    if d.attrs["arithmetic"] != arith:
        fail(f"subj{subj:02d} {spec}: arithmetic attribute {d.attrs['arithmetic']!r}, expected {arith!r}")
    err = (np.abs(R - Rref) / np.maximum(1.0, np.abs(Rref))).max()
    print(f"subj{subj:02d} {spec}: {n} images x {X.shape[1]} vertices, max |rdmlearn - scipy pdist| / max(1, |pdist|) = {err:.2e} (tolerance {tol:.1e})")
    if err > tol:
        fail(f"subj{subj:02d} {spec}: RDM differs from scipy pdist by {err:.3g}")
    if not (np.all(np.diag(R) == 0) and np.array_equal(R, R.T)):
        fail("RDM diagonal not exactly 0 or RDM not exactly symmetric")
    # summary
    s = f[f"/subjects/subj{subj:02d}/rdm_summary/{spec}"]
    up = R[np.triu_indices(n, 1)].astype(np.float64)
    off = R[~np.eye(n, dtype=bool)].astype(np.float64)
    if abs(s.attrs["median"] - np.median(off)) > 1e-7:
        fail(f"median {s.attrs['median']} vs numpy {np.median(off)}")
    h, e = np.histogram(up, bins=len(s["hist"]), range=(up.min(), up.max()))
    if np.abs(h - s["hist"][()]).sum() > 2 or np.abs(e - s["edges"][()]).max() > 1e-6:
        fail("histogram differs from numpy.histogram")
    order = np.lexsort((np.triu_indices(n, 1)[1], np.triu_indices(n, 1)[0], up))
    k = len(s["low_values"])
    if k and np.abs(np.sort(up)[:k] - s["low_values"][()]).max() > 0:
        fail("most similar pairs differ from numpy's smallest values")
    if k and np.abs(np.sort(up)[::-1][:k] - s["high_values"][()]).max() > 0:
        fail("most dissimilar pairs differ from numpy's largest values")
    lo = s["low_pairs"][()]
    for t in range(k):
        i, j = lo[t]
        if R[i, j] != s["low_values"][t]:
            fail(f"low pair {t} ({i},{j}) has RDM value {R[i, j]}, stored {s['low_values'][t]}")
    del order
    # inter-subject consistency
    if f"/rsa/{spec}" in f:
        g = f[f"/rsa/{spec}"]
        subs = list(g["subjects"][()])
        rdms, ids = [], []
        for sj in subs:
            ids.append(f[f"/subjects/subj{sj:02d}/images/nsd_id"][()])
        shared = sorted(set(ids[0]).intersection(*map(set, ids[1:])))
        if g.attrs["n_shared_images"] != len(shared):
            fail(f"{len(shared)} shared ids by numpy, {g.attrs['n_shared_images']} stored")
        for sj, idl in zip(subs, ids):
            pos = {v: i for i, v in enumerate(idl)}
            ix = np.array([pos[v] for v in shared])
            Rs = f[f"/subjects/subj{sj:02d}/rdm/{spec}"][()]
            rdms.append(Rs[np.ix_(ix, ix)][np.triu_indices(len(ix), 1)].astype(np.float64))
        for meth, fn in (("spearman", lambda a, b: stats.spearmanr(a, b)[0]),
                         ("pearson", lambda a, b: stats.pearsonr(a, b)[0])):
            if meth not in g:
                continue
            # the pooled RDM: plain mean, or rsatoolbox's pool_rdm (ranks for spearman,
            # z-scores for pearson) as named by the noise_ceiling_pool attribute
            pool = g[meth].attrs.get("noise_ceiling_pool", "mean")
            if isinstance(pool, bytes):
                pool = pool.decode()
            if pool == "rsatoolbox":
                tr = [stats.rankdata(r) if meth == "spearman" else (r - r.mean()) / r.std() for r in rdms]
            else:
                tr = rdms
            up_ = np.mean([fn(r, np.mean(tr, axis=0)) for r in rdms])
            lo_ = np.mean([fn(r, np.mean([q for j, q in enumerate(tr) if j != i], axis=0))
                           for i, r in enumerate(rdms)])
            got = (g[meth].attrs["noise_ceiling_lower"], g[meth].attrs["noise_ceiling_upper"])
            print(f"  {spec} {meth} noise ceiling: rdmlearn [{got[0]:.6f}, {got[1]:.6f}] numpy [{lo_:.6f}, {up_:.6f}]")
            if abs(got[0] - lo_) > 1e-5 or abs(got[1] - up_) > 1e-5:
                fail(f"{spec} {meth} noise ceiling differs from numpy")


def same(a, b):
    fa, fb = h5py.File(a, "r"), h5py.File(b, "r")
    names = []
    def walk(g, path):  # by keys: visititems skips external links (large datasets)
        for k in g:
            o = g[k]
            if isinstance(o, h5py.Dataset):
                names.append(f"{path}/{k}")
            else:
                walk(o, f"{path}/{k}")
    for top in ("subjects", "rsa"):
        if top in fa:
            walk(fa[top], f"/{top}")
    if not names:
        fail(f"{a} holds no datasets")
    worst = 0.0
    for n in names:
        if n not in fb:
            fail(f"{n} missing from {b}")
            continue
        x, y = fa[n][()], fb[n][()]
        if x.shape != y.shape:
            fail(f"{n}: shape {x.shape} vs {y.shape}")
            continue
        if x.dtype.kind in "fi":
            err = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max()) if x.size else 0.0
            worst = max(worst, err)
            if err > 1e-6:
                fail(f"{n}: differs by {err:.3g}")
        elif not np.array_equal(x, y):
            fail(f"{n}: differs")
    print(f"{len(names)} datasets compared, max difference {worst:.2e}")


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "reference":
        reference(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5],
                  sys.argv[6] if len(sys.argv) > 6 else "correlation",
                  sys.argv[7] if len(sys.argv) > 7 else "float32")
    elif len(sys.argv) == 4 and sys.argv[1] == "same":
        same(sys.argv[2], sys.argv[3])
    else:
        print(__doc__)
        sys.exit(2)
    print(f"{len(fails)} problem(s)")
    sys.exit(1 if fails else 0)
