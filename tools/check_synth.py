#!/usr/bin/env python3
"""Check a dataset written by `rdmlearn synth ROOT` the way a neuroscientist would load it.

Usage: /usr/bin/python3 tools/check_synth.py ROOT [--max-images N] [--rdm-images N]

Loads everything with numpy and Pillow exactly as the Algonauts 2023 tutorial does
(np.load of the fMRI, np.load(allow_pickle=True).item() of the mapping files, the challenge
masks, np.where(mask == code), Image.open of the sorted PNGs) and asserts:
  * layout: subjNN/training_split/training_fmri/{lh,rh}_training_fmri.npy ('<f4', C order,
    (N, V_hemi)), train-NNNN_nsd-IIIII.png names (NNNN = 1..N in sorted order), test images,
    roi_masks/{lh,rh}.<class>_challenge_space.npy ('<i8', one label per vertex) and
    mapping_<class>.npy with the release's exact ROI names and codes; fsaverage files if any;
  * images are RGB, image_size x image_size, and an NSD id shared by several subjects is the
    same picture in each;
  * ground truth (ROOT/synth_truth/subjNN_{category,color}.npy): each image's colour class by
    the paper's rule (nearest of pure red/green/blue per pixel, ties unclassified, dominant
    fraction >= 0.7) equals the planted class, so planted images pass and the others do not;
  * the brain RDM of V1 (1 - corrcoef over V1v+V1d vertices, lh then rh, standardised) has a
    positive but imperfect Spearman correlation with an image-feature RDM (oriented pixel
    gradient energy on a 6x6 grid).
Exits 1 with a list of every failed check, 0 when all pass. Not a fixture generator.
"""
import argparse
import os
import re
import sys

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

CLASSES = ["prf-visualrois", "floc-bodies", "floc-faces", "floc-places", "floc-words", "streams"]
MAPPINGS = {
    "prf-visualrois": ["Unknown", "V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
    "floc-bodies": ["Unknown", "EBA", "FBA-1", "FBA-2", "mTL-bodies"],
    "floc-faces": ["Unknown", "OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"],
    "floc-places": ["Unknown", "OPA", "PPA", "RSC"],
    "floc-words": ["Unknown", "OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"],
    "streams": ["Unknown", "early", "midventral", "midlateral", "midparietal", "ventral",
                "lateral", "parietal"],
}
FSAVERAGE = 163842
NCAT = 7

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def check(cond, msg):
    if not cond:
        fail(msg)
    return cond


def npy_header(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        return np.lib.format.read_array_header_2_0(f)


def paper_color_class(rgb):
    """The paper's rule, written from its definition (distances, not channel maxima)."""
    px = rgb.reshape(-1, 3).astype(np.int64)
    pure = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.int64)
    d = ((px[:, None, :] - pure[None, :, :]) ** 2).sum(-1)  # (npix, 3)
    dmin = d.min(1)
    unique = (d == dmin[:, None]).sum(1) == 1  # ties stay unclassified
    nearest = d.argmin(1)
    counts = np.array([np.sum(unique & (nearest == c)) for c in range(3)])
    best = int(counts.argmax())
    frac = counts[best] / px.shape[0]
    return (best + 1 if frac >= 0.7 else 0), frac


def sample(n, k):
    if n <= k:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


def gradient_rdm(images):
    g = images.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    n, S = g.shape[0], g.shape[1]
    gy, gx = np.gradient(g, axis=(1, 2))
    mag, th = np.hypot(gx, gy), np.arctan2(gy, gx) % np.pi
    B = 6
    cs = S // B
    feats = []
    for o in range(4):
        w = mag * np.maximum(0, np.cos(2 * (th - o * np.pi / 4)))
        feats.append(w[:, :cs * B, :cs * B].reshape(n, B, cs, B, cs).mean(axis=(2, 4)).reshape(n, -1))
    F = np.concatenate(feats, 1)
    F = (F - F.mean(0)) / (F.std(0) + 1e-12)
    return 1 - np.corrcoef(F)


def check_subject(root, s, args, pixels_by_id):
    sd = os.path.join(root, s)
    fmri = {}
    for h in ["lh", "rh"]:
        p = os.path.join(sd, "training_split", "training_fmri", f"{h}_training_fmri.npy")
        if not check(os.path.isfile(p), f"{p} is missing"):
            return None
        shape, fortran, dtype = npy_header(p)
        check(dtype == np.dtype("<f4"), f"{p}: dtype {dtype.str}, expected <f4")
        check(not fortran, f"{p}: fortran_order is True, expected C order")
        a = np.load(p)
        check(a.ndim == 2, f"{p}: {a.ndim}-D, expected (N, V)")
        check(bool(np.isfinite(a).all()), f"{p}: non-finite values")
        fmri[h] = a
    N = fmri["lh"].shape[0]
    check(fmri["rh"].shape[0] == N, f"{s}: lh has {N} rows, rh {fmri['rh'].shape[0]}")
    nv = {h: fmri[h].shape[1] for h in fmri}

    idir = os.path.join(sd, "training_split", "training_images")
    names = sorted(os.listdir(idir))
    check(len(names) == N, f"{s}: {len(names)} training images but {N} fMRI rows")
    ids = []
    for i, n in enumerate(names):
        m = re.fullmatch(r"train-(\d{4})_nsd-(\d{5})\.png", n)
        if not check(m is not None, f"{s}: bad image name {n}"):
            return None
        check(int(m.group(1)) == i + 1, f"{s}: sorted name {i} is {n}, expected row {i + 1:04d}")
        ids.append(int(m.group(2)))
    check(len(set(ids)) == len(ids), f"{s}: repeated NSD ids among training images")
    check(all(0 <= i < 73000 for i in ids), f"{s}: NSD id outside 0..72999")
    tdir = os.path.join(sd, "test_split", "test_images")
    tnames = sorted(os.listdir(tdir))
    for i, n in enumerate(tnames):
        m = re.fullmatch(r"test-(\d{4})_nsd-(\d{5})\.png", n)
        check(m is not None and int(m.group(1)) == i + 1, f"{s}: bad test image name {n}")
    check(not set(ids) & {int(n[-9:-4]) for n in tnames}, f"{s}: an NSD id is both train and test")

    mdir = os.path.join(sd, "roi_masks")
    labels = {}
    for c in CLASSES:
        mp = np.load(os.path.join(mdir, f"mapping_{c}.npy"), allow_pickle=True).item()
        want = {k: v for k, v in enumerate(MAPPINGS[c])}
        check(mp == want, f"{s}: mapping_{c}.npy is {mp}, expected {want}")
        for h in ["lh", "rh"]:
            p = os.path.join(mdir, f"{h}.{c}_challenge_space.npy")
            shape, fortran, dtype = npy_header(p)
            check(dtype == np.dtype("<i8"), f"{p}: dtype {dtype.str}, expected <i8")
            m = np.load(p)
            check(m.shape == (nv[h],), f"{p}: shape {m.shape}, expected ({nv[h]},)")
            check(set(np.unique(m).tolist()) <= set(want), f"{p}: labels outside the mapping")
            labels[(c, h)] = m
            fs = os.path.join(mdir, f"{h}.{c}_fsaverage_space.npy")
            allv = os.path.join(mdir, f"{h}.all-vertices_fsaverage_space.npy")
            if os.path.exists(fs):
                a, f = np.load(allv), np.load(fs)
                check(a.shape == (FSAVERAGE,) and f.shape == (FSAVERAGE,),
                      f"{fs}: shape {f.shape}, expected ({FSAVERAGE},)")
                pos = np.where(a != 0)[0]
                check(len(pos) == nv[h], f"{allv}: {len(pos)} challenge vertices, expected {nv[h]}")
                if len(pos) == nv[h]:
                    check(np.array_equal(f[pos], m), f"{fs}: labels differ from challenge space")
        for code, name in want.items():
            if code == 0:
                continue
            n_lh = int(np.sum(labels[(c, "lh")] == code))
            n_rh = int(np.sum(labels[(c, "rh")] == code))
            if name in ("V1v", "V1d"):
                check(n_lh > 0 and n_rh > 0, f"{s}: {name} is empty in a hemisphere")
            check(n_lh + n_rh > 0, f"{s}: {name} has no vertex in either hemisphere")

    tr = os.path.join(root, "synth_truth")
    cat = np.load(os.path.join(tr, f"{s}_category.npy"))
    col = np.load(os.path.join(tr, f"{s}_color.npy"))
    check(cat.dtype == np.int64 and cat.shape == (N,), f"{s}_category.npy: {cat.dtype} {cat.shape}")
    check(col.dtype == np.int64 and col.shape == (N,), f"{s}_color.npy: {col.dtype} {col.shape}")
    check(cat.min() >= 0 and cat.max() < NCAT, f"{s}_category.npy: values outside 0..{NCAT - 1}")
    check(col.min() >= 0 and col.max() <= 3, f"{s}_color.npy: values outside 0..3")

    size = None
    bad_color = 0
    checked = sample(N, args.max_images)
    for i in checked:
        im = Image.open(os.path.join(idir, names[i]))
        if not check(im.mode == "RGB", f"{s}/{names[i]}: mode {im.mode}, expected RGB"):
            continue
        if size is None:
            size = im.size
            check(size[0] == size[1], f"{s}/{names[i]}: not square {size}")
        check(im.size == size, f"{s}/{names[i]}: size {im.size}, others {size}")
        rgb = np.asarray(im)
        cls, frac = paper_color_class(rgb)
        if cls != col[i]:
            bad_color += 1
            if bad_color <= 5:
                fail(f"{s}/{names[i]}: paper's colour rule gives class {cls} (dominant fraction "
                     f"{frac:.3f}) but the planted class is {col[i]}")
        if ids[i] in pixels_by_id:
            check(np.array_equal(pixels_by_id[ids[i]], rgb),
                  f"{s}/{names[i]}: NSD id {ids[i]} differs from the same id in another subject")
        else:
            pixels_by_id[ids[i]] = rgb
    planted = int(np.sum(col[checked] > 0))
    print(f"{s}: {N} images ({len(tnames)} test), {nv['lh']} + {nv['rh']} vertices, "
          f"{len(checked)} images checked, {planted} planted colour images, "
          f"colour classes {np.bincount(col, minlength=4).tolist()}")
    return dict(N=N, fmri=fmri, labels=labels, names=names, idir=idir, ids=ids)


def check_rdm(info, args):
    n = min(info["N"], args.rdm_images)
    m = MAPPINGS["prf-visualrois"]
    v1 = [m.index("V1v"), m.index("V1d")]
    cols = [np.where(np.isin(info["labels"][("prf-visualrois", h)], v1))[0] for h in ["lh", "rh"]]
    X = np.concatenate([info["fmri"]["lh"][:n, cols[0]], info["fmri"]["rh"][:n, cols[1]]], 1)
    X = (X - X.mean(0)) / X.std(0)
    brain = 1 - np.corrcoef(X)
    imgs = np.stack([np.asarray(Image.open(os.path.join(info["idir"], f)).convert("RGB"))
                     for f in info["names"][:n]])
    feat = gradient_rdm(imgs)
    iu = np.triu_indices(n, 1)
    rho = spearmanr(brain[iu], feat[iu])[0]
    print(f"subj01 V1 ({X.shape[1]} vertices, {n} images): Spearman(brain RDM, gradient RDM) = "
          f"{rho:.3f}")
    check(rho > args.min_rho, f"V1 brain RDM vs image-gradient RDM: Spearman {rho:.3f} <= "
          f"{args.min_rho} (the planted retinotopic structure is missing)")
    check(rho < 0.95, f"V1 brain RDM vs image-gradient RDM: Spearman {rho:.3f} >= 0.95 "
          "(the brain RDM should not be a copy of an image feature)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--max-images", type=int, default=2000,
                    help="images per subject whose pixels are checked (evenly spaced sample)")
    ap.add_argument("--rdm-images", type=int, default=300, help="images in the RDM check")
    ap.add_argument("--min-rho", type=float, default=0.1,
                    help="smallest acceptable Spearman rho between the V1 and gradient RDMs")
    args = ap.parse_args()
    root = args.root
    if not os.path.isdir(root):
        print(f"check_synth: {root} is not a folder", file=sys.stderr)
        return 1
    subjects = sorted(d for d in os.listdir(root) if re.fullmatch(r"subj\d\d", d))
    if not subjects:
        print(f"check_synth: no subjNN folders in {root}", file=sys.stderr)
        return 1
    check(subjects == [f"subj{i:02d}" for i in range(1, len(subjects) + 1)],
          f"subject folders {subjects} are not subj01..subj{len(subjects):02d}")
    pixels_by_id = {}
    infos = {}
    for s in subjects:
        try:
            infos[s] = check_subject(root, s, args, pixels_by_id)
        except (OSError, ValueError, KeyError) as e:
            fail(f"{s}: {e}")
    if len(subjects) > 1 and infos.get("subj01") and infos.get("subj02"):
        shared = set(infos["subj01"]["ids"]) & set(infos["subj02"]["ids"])
        check(len(shared) > 0, "subj01 and subj02 share no NSD id")
        print(f"subj01 and subj02 share {len(shared)} NSD ids")
    if infos.get("subj01"):
        check_rdm(infos["subj01"], args)
    if failures:
        print(f"check_synth: {len(failures)} check(s) failed for {root}", file=sys.stderr)
        return 1
    print(f"check_synth: {root} OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
