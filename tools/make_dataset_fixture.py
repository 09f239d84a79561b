#!/usr/bin/python3
"""Generate tests/fixtures/algonauts_mini/, a tiny Algonauts 2023 folder, and its expected results.

Regenerate with:   /usr/bin/python3 tools/make_dataset_fixture.py   (from the repository root)

The tree mirrors the real release (the layout: docs/synth.md, "What is written"), written by the
reference libraries themselves: every .npy with numpy's np.save (the mapping_*.npy files are
np.save of a dict with allow_pickle, exactly as the challenge's preparation script does), every
image with Pillow. Two subjects with non-contiguous ids (subj01, subj03) and different sizes,
all six ROI classes with overlaps between streams and prf/floc labels, ROIs that are empty in
one hemisphere, one constant (zero-variance) vertex, a test split of 2 images, and a stray file
and folder at the root that the loader must ignore.

expected.json holds what numpy computes from those files: per subject the image names / NSD
ids, vertex counts, ROI counts per class and hemisphere, the selected global column lists for
several specs (lh columns ascending, then rh columns ascending numbered from n_lh), a block of
rows 3..7 of a selection, and a selection standardised over all images (population std, as
sklearn's StandardScaler; zero-variance columns are 0). Deterministic (fixed seeds).
"""
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image
from sklearn.preprocessing import StandardScaler

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                    "algonauts_mini")

# The real names and codes of the challenge's mapping files (code 0 = Unknown = no ROI).
CLASSES = [
    ("Visual", "prf-visualrois", ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"]),
    ("Bodies", "floc-bodies", ["EBA", "FBA-1", "FBA-2", "mTL-bodies"]),
    ("Faces", "floc-faces", ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"]),
    ("Places", "floc-places", ["OPA", "PPA", "RSC"]),
    ("Words", "floc-words", ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"]),
    ("Streams", "streams", ["early", "midventral", "midlateral", "midparietal", "ventral",
                            "lateral", "parietal"]),
]
UNIONS = {"V1": ["V1v", "V1d"], "V2": ["V2v", "V2d"], "V3": ["V3v", "V3d"],
          "FBA": ["FBA-1", "FBA-2"], "FFA": ["FFA-1", "FFA-2"], "VWFA": ["VWFA-1", "VWFA-2"]}

# Per subject: id, train images, test images, lh / rh vertices, seed, mask dtypes by class tag
# (the real files are <i8; the reader must also take <i4 and <f8), whether the mapping dicts
# carry the 0: 'Unknown' entry, and ROIs forced empty in a hemisphere.
SUBJECTS = [
    dict(id=1, ntrain=12, ntest=2, nlh=30, nrh=25, seed=101, dtypes={}, unknown=True,
         empty={("floc-faces", "aTL-faces"): "rh", ("floc-bodies", "mTL-bodies"): "lh"}),
    dict(id=3, ntrain=10, ntest=2, nlh=28, nrh=22, seed=303,
         dtypes={"floc-words": "<i4", "streams": "<f8"}, unknown=False,
         empty={("floc-places", "RSC"): "lh", ("floc-faces", "aTL-faces"): "both"}),
]

SPECS = ["V1", "V1,hV4", "class:Faces", "all", "early,V1v", "FFA,class:places, OPA"]
STD_SPEC = "V1,hV4"


def labels_for(rng, nv, names, tag, empty, hemi, visual=None):
    """Label vector for one class and hemisphere: contiguous-ish patches, some vertices 0."""
    codes = np.arange(1, len(names) + 1)
    allowed = [c for c, nm in zip(codes, names)
               if empty.get((tag, nm)) not in (hemi, "both")]
    lab = np.zeros(nv, dtype=np.int64)
    if tag == "prf-visualrois":
        # ordered patches along the vertex axis, ~2/3 of the vertices labelled
        cuts = np.sort(rng.choice(np.arange(1, nv), size=len(allowed), replace=False))
        for i, c in enumerate(allowed):
            hi = cuts[i + 1] if i + 1 < len(cuts) else nv
            lab[cuts[i]:hi] = c
        lab[rng.random(nv) < 0.15] = 0
    elif tag == "streams":
        # streams overlap the prf labels like the real data: prf V1-V3 -> early
        lab[:] = rng.choice(np.concatenate([[0], allowed[1:]]), size=nv)
        lab[(visual >= 1) & (visual <= 6)] = 1
    else:
        lab[:] = rng.choice(np.concatenate([[0, 0, 0], allowed]), size=nv)
    # every allowed ROI gets at least one vertex (outside the streams' forced "early" part)
    free = np.arange(nv) if tag != "streams" else np.nonzero((visual < 1) | (visual > 6))[0]
    for c in allowed:
        if not np.any(lab == c):
            lab[rng.choice(free)] = c
    return lab


def write_subject(subj, shared_ids):
    rng = np.random.default_rng(subj["seed"])
    sdir = os.path.join(ROOT, "subj%02d" % subj["id"])
    tr_img = os.path.join(sdir, "training_split", "training_images")
    tr_fmri = os.path.join(sdir, "training_split", "training_fmri")
    te_img = os.path.join(sdir, "test_split", "test_images")
    rois = os.path.join(sdir, "roi_masks")
    for d in (tr_img, tr_fmri, te_img, rois):
        os.makedirs(d)

    n, nlh, nrh = subj["ntrain"], subj["nlh"], subj["nrh"]
    own = rng.choice(np.arange(1000, 73000), size=n + subj["ntest"], replace=False)
    ids = np.concatenate([shared_ids, own])[: n + subj["ntest"]]
    train_ids, test_ids = ids[:n], ids[n:]
    names = []
    for i, nsd in enumerate(train_ids):
        name = "train-%04d_nsd-%05d.png" % (i + 1, nsd)
        px = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(px, "RGB").save(os.path.join(tr_img, name))
        names.append(name)
    for i, nsd in enumerate(test_ids):
        px = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(px, "RGB").save(os.path.join(te_img, "test-%04d_nsd-%05d.png" % (i + 1, nsd)))

    masks = {}
    for cname, tag, rnames in CLASSES:
        mapping = {} if not subj["unknown"] else {0: "Unknown"}
        for c, nm in enumerate(rnames, start=1):
            mapping[c] = nm
        np.save(os.path.join(rois, "mapping_%s.npy" % tag), mapping, allow_pickle=True)
        for h, nv in (("lh", nlh), ("rh", nrh)):
            lab = labels_for(rng, nv, rnames, tag, subj["empty"], h,
                             masks.get(("prf-visualrois", h)))
            masks[(tag, h)] = lab
            dt = subj["dtypes"].get(tag, "<i8")
            np.save(os.path.join(rois, "%s.%s_challenge_space.npy" % (h, tag)), lab.astype(dt))
    # fMRI with structure: a few image factors times vertex loadings plus noise, per-vertex
    # offsets and scales (so standardising matters); the first lh V1v vertex is
    # constant (zero variance, inside the standardised selection).
    k = 3
    f = rng.standard_normal((n, k))
    hemis = {}
    for h, nv in (("lh", nlh), ("rh", nrh)):
        load = rng.standard_normal((k, nv))
        x = f @ load + 0.3 * rng.standard_normal((n, nv))
        x = x * rng.uniform(0.5, 2.0, nv) + rng.uniform(-1.0, 1.0, nv)
        if h == "lh":
            x[:, np.nonzero(masks[("prf-visualrois", "lh")] == 1)[0][0]] = 0.25
        x = x.astype("<f4")
        np.save(os.path.join(tr_fmri, "%s_training_fmri.npy" % h), x)
        hemis[h] = x

    return dict(names=names, train_ids=train_ids, test_ids=test_ids, hemis=hemis, masks=masks)


def select(subj, data, spec):
    nlh, nrh = subj["nlh"], subj["nrh"]
    keep = {"lh": np.zeros(nlh, bool), "rh": np.zeros(nrh, bool)}
    for tok in [t.strip() for t in spec.split(",")]:
        for h in ("lh", "rh"):
            if tok == "all":
                keep[h][:] = True
                continue
            for cname, tag, rnames in CLASSES:
                lab = data["masks"][(tag, h)]
                if tok.startswith("class:"):
                    if tok[6:].lower() == cname.lower():
                        keep[h] |= lab != 0
                    continue
                for c, nm in enumerate(rnames, start=1):
                    if nm == tok or nm in UNIONS.get(tok, []):
                        keep[h] |= lab == c
    lhc = np.nonzero(keep["lh"])[0]
    rhc = np.nonzero(keep["rh"])[0]
    return [int(c) for c in lhc] + [int(nlh + c) for c in rhc], int(len(lhc))


def main():
    if os.path.exists(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    # stray entries the loader must ignore
    with open(os.path.join(ROOT, "README.txt"), "w") as fh:
        fh.write("Tiny Algonauts-2023-shaped dataset; regenerate with tools/make_dataset_fixture.py\n")
    os.makedirs(os.path.join(ROOT, "subjects_extra"))
    with open(os.path.join(ROOT, "subjects_extra", "note.txt"), "w") as fh:
        fh.write("not a subject folder\n")

    shared = np.array([13, 2950, 40000, 71999])  # NSD ids seen by both subjects
    expected = {"subjects": [s["id"] for s in SUBJECTS], "std_spec": STD_SPEC}
    for subj in SUBJECTS:
        data = write_subject(subj, shared)
        e = {"ntrain": subj["ntrain"], "ntest": subj["ntest"], "nlh": subj["nlh"],
             "nrh": subj["nrh"], "images": data["names"],
             "nsd_ids": [int(v) for v in data["train_ids"]], "rois": [], "select": {}}
        for cname, tag, rnames in CLASSES:
            for c, nm in enumerate(rnames, start=1):
                e["rois"].append({"class": cname, "name": nm, "code": c,
                                  "lh": int(np.sum(data["masks"][(tag, "lh")] == c)),
                                  "rh": int(np.sum(data["masks"][(tag, "rh")] == c))})
        for spec in SPECS:
            cols, n_lh = select(subj, data, spec)
            e["select"][spec] = {"cols": cols, "n_lh": n_lh}
        full = np.hstack([data["hemis"]["lh"], data["hemis"]["rh"]])
        cols = e["select"][STD_SPEC]["cols"]
        # rows 3..7 of the selection, exactly as stored (float32 -> double is exact)
        e["block_rows"] = [3, 7]
        e["block"] = [[float(v) for v in row] for row in full[3:7][:, cols]]
        # StandardScaler in double over all images; sklearn keeps scale 1 for a constant
        # column, so (x - mean) / 1 = 0 there, which is also rdmlearn's convention.
        z = StandardScaler().fit_transform(full[:, cols].astype(np.float64))
        e["standardized"] = [[float(v) for v in row] for row in z]
        expected["subj%02d" % subj["id"]] = e

    with open(os.path.join(ROOT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print("wrote %s (%d bytes)" % (ROOT, total), file=sys.stderr)


if __name__ == "__main__":
    main()
