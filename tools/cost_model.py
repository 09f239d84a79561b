#!/usr/bin/python3
"""Cost model of `rdmlearn run`: per-stage wall time and peak memory per rank.

  tools/cost_model.py JOB.ini [--images N] [--vertices V] [--subjects S] [--image-size PX]
                      [--data DIR] [--set sec.key=value ...] [--ranks R | --nodes K --cores C]
                      [--nsd] [--json]
  tools/cost_model.py --calibrate [--rdmlearn build/rdmlearn] [--out tools/cost_model.json]
  tools/cost_model.py JOB.ini --add-run LOG --images N --vertices V --ranks R [--set ...]
                      (a measured `rdmlearn run` of JOB joins the calibration; refit)
  tools/cost_model.py --refit    (fit again from the measurements stored in the json)

Every stage's time is  fixed x units + coefficient x work / parallel ranks, with `work` a
count of flops, pairs or bytes (docs/scaling.md lists each formula) and the coefficients
fitted by --calibrate from measured runs on 1 and 2 ranks of this machine (stored, with the
machine and the OpenBLAS kernel, in tools/cost_model.json). Memory per rank is the largest
array set a stage holds (formulas from docs/rdm.md, encode.md, svm.md, nn.md, evaluate.md)
plus the process's base. numpy only; reads the job INI, its includes and its experiments
the way `rdmlearn run` does (defaults from configs/defaults.ini).
"""
import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
COEF_FILE = os.path.join(HERE, "cost_model.json")
STAGES = ["rdm", "embed", "encode", "svm", "train", "evaluate", "report"]
# [rdm] arithmetic = int16: seconds per N^2 V per rank that the AVX-512 VNNI Gram saves over
# float32 BLAS (bench/rdm, 9841 x 39548 on 2 ranks, Haswell kernel: 17.16 s against 5.65 s)
INT16_SAVED_S_PER_N2V = (17.16 - 5.65) * 2 / (9841.0 ** 2 * 39548)

# NSD / Algonauts 2023 training images per subject (docs/synth.md) and vertices (lh + rh)
NSD_IMAGES = [9841, 9841, 9082, 8779, 9841, 9082, 9841, 8779]
NSD_VERTICES = [39548, 39548, 39548, 39548, 39548, 39198, 39548, 39511]

# share of a hemisphere's vertices per ROI (docs/synth.md, "ROIs"); used without --data
ROI_SHARE = {
    "V1v": 4.5, "V1d": 4.5, "V2v": 4, "V2d": 4, "V3v": 3.5, "V3d": 3.5, "hV4": 3,
    "EBA": 8, "FBA-1": 1, "FBA-2": 1.5, "mTL-bodies": 0.5,
    "OFA": 2, "FFA-1": 2, "FFA-2": 1.5, "mTL-faces": 0.5, "aTL-faces": 0.5,
    "OPA": 5, "PPA": 3, "RSC": 1.5,
    "OWFA": 1.5, "VWFA-1": 2.5, "VWFA-2": 1.5, "mfs-words": 1, "mTL-words": 0.5,
    "early": 24, "midventral": 5, "midlateral": 5, "midparietal": 5, "ventral": 17,
    "lateral": 20, "parietal": 18,
}
UNIONS = {"V1": ["V1v", "V1d"], "V2": ["V2v", "V2d"], "V3": ["V3v", "V3d"],
          "FBA": ["FBA-1", "FBA-2"], "FFA": ["FFA-1", "FFA-2"], "VWFA": ["VWFA-1", "VWFA-2"]}
CLASSES = {
    "Visual": ["V1v", "V1d", "V2v", "V2d", "V3v", "V3d", "hV4"],
    "Bodies": ["EBA", "FBA-1", "FBA-2", "mTL-bodies"],
    "Faces": ["OFA", "FFA-1", "FFA-2", "mTL-faces", "aTL-faces"],
    "Places": ["OPA", "PPA", "RSC"],
    "Words": ["OWFA", "VWFA-1", "VWFA-2", "mfs-words", "mTL-words"],
    "Streams": ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral",
                "parietal"],
}
CLASS_FILES = {"Visual": "prf-visualrois", "Bodies": "floc-bodies", "Faces": "floc-faces",
               "Places": "floc-places", "Words": "floc-words", "Streams": "streams"}

# GFLOP per image of the network backends (docs/embed.md: ViT-B/32 8.82; torchvision
# models from their published counts); converted to seconds with the calibrated BLAS rate
EMBED_GFLOP = {"clip-vit": 8.82, "alexnet": 1.43, "vgg16": 30.9, "resnet18": 3.64,
               "resnet50": 8.21, "vit_b_16": 35.1, "dinov2_vits14": 11.0,
               "dinov2_vitb14": 46.0}
# the lowrank SVM's epochs grow with the pairs: time per fit ~ P^(1 + SVM_EPOCH_EXP), the
# exponent from the calibration runs' largest fit (38,000 training pairs, 0.15 s/1,000
# pairs per fold) and the documented full-size fits (docs/svm.md: ~800,000 training pairs,
# ~72 CPU s per fold, 132-193 epochs): 3.8x the time per pair at 21x the pairs
SVM_EPOCH_EXP = 0.44
SVM_EPOCH_REF = 1e5
# what no calibration run measures, from the documented runs (loaded machine, docs/svm.md):
# exact SMO, 92 s at 82,000 pairs, time ~ pairs^2
SMO_S_PER_PAIR2 = 92.0 / 82000.0 ** 2


# ---------------------------------------------------------------- INI (rdmlearn's syntax)
def read_ini(path, seen=None):
    """{section: {key: value}} of PATH with its includes (theirs first, its own override)."""
    seen = seen or set()
    path = os.path.abspath(path)
    if path in seen:
        raise SystemExit(f"cost_model: include loop at {path}")
    seen.add(path)
    own, sec, buf = {}, None, ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            s = line.strip()
            if not buf and (not s or s[0] in ";#"):
                continue
            if s.endswith("\\"):
                buf += s[:-1] + " "
                continue
            s, buf = (buf + s).strip(), ""
            if s.startswith("["):
                sec = s[1:s.index("]")].strip()
                own.setdefault(sec, {})
                continue
            if "=" not in s or sec is None:
                continue
            k, v = s.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            own[sec][k.strip()] = v
    cfg = {}
    inc = own.get("run", {}).get("include", "")
    for name in [x.strip() for x in inc.split(",") if x.strip()]:
        merge(cfg, read_ini(resolve(name, os.path.dirname(path)), seen))
    merge(cfg, own)
    return cfg


def resolve(name, base):
    for cand in (os.path.join(base, name), name):
        if os.path.exists(cand):
            return cand
    stripped = re.sub(r"^(\.\./)+", "", name)
    for cand in (os.path.join(SRC, stripped), os.path.join(SRC, "configs", stripped)):
        if os.path.exists(cand):
            return cand
    raise SystemExit(f"cost_model: {name} not found (relative to {base} or {SRC})")


def merge(dst, src):
    for s, kv in src.items():
        dst.setdefault(s, {}).update(kv)


def listv(v):
    return [x.strip() for x in str(v).split(",") if x.strip()]


class Cfg:
    def __init__(self, d):
        self.d = d

    def get(self, key):
        s, k = key.split(".", 1)
        return self.d.get(s, {}).get(k)

    def num(self, key):
        return float(self.get(key))


def job_configs(job, sets):
    """(job config, [experiment configs]) as `rdmlearn run` merges them."""
    base = read_ini(os.path.join(SRC, "configs", "defaults.ini"))
    jcfg = read_ini(job)
    over = {}
    for s in sets:
        k, v = s.split("=", 1)
        sec, key = k.split(".", 1)
        over.setdefault(sec, {})[key] = v
    full = {}
    merge(full, base)
    merge(full, jcfg)
    merge(full, over)
    exps = []
    for name in listv(full["run"].get("experiments", "")):
        e = {}
        merge(e, base)
        merge(e, jcfg)
        merge(e, read_ini(resolve(name, os.path.dirname(os.path.abspath(job)))))
        merge(e, over)
        exps.append((name, Cfg(e)))
    return Cfg(full), exps


# ---------------------------------------------------------------- dataset sizes
def selection_vertices(rois, vertices, data=None, subject=1):
    """vertices of each selection of data.rois: from the dataset's masks or the share table."""
    masks = None
    if data:
        masks = {}
        d = os.path.join(data, f"subj{subject:02d}", "roi_masks")
        for cls, stem in CLASS_FILES.items():
            labels = []
            for h in ("lh", "rh"):
                p = os.path.join(d, f"{h}.{stem}_challenge_space.npy")
                labels.append(np.load(p) if os.path.exists(p) else None)
            mp = os.path.join(d, f"mapping_{stem}.npy")
            mapping = np.load(mp, allow_pickle=True).item() if os.path.exists(mp) else {}
            masks[cls] = (labels, mapping)
    out = []
    for sel in rois:
        parts = sel.split("+")
        if masks is not None:
            nv = vertices
            if sel != "all":
                sets = []
                for h in range(2):
                    m = None
                    for part in parts:
                        for cls, (labels, mapping) in masks.items():
                            lab = labels[h]
                            if lab is None:
                                continue
                            names = {v: k for k, v in mapping.items()}
                            if part == f"class:{cls}":
                                hit = lab > 0
                            else:
                                want = UNIONS.get(part, [part])
                                codes = [names[w] for w in want if w in names]
                                if not codes:
                                    continue
                                hit = np.isin(lab, codes)
                            m = hit if m is None else (m | hit)
                    sets.append(0 if m is None else int(m.sum()))
                nv = sum(sets)
            out.append(max(1, nv))
            continue
        share = 0.0
        for part in parts:
            if part == "all":
                share = 100.0
                break
            if part.startswith("class:"):
                share += sum(ROI_SHARE[r] for r in CLASSES[part[6:]])
            else:
                share += sum(ROI_SHARE.get(r, 2.0) for r in UNIONS.get(part, [part]))
        out.append(max(1, int(round(vertices * min(share, 100.0) / 100.0))))
    return out


def npy_shape(path):
    with open(path, "rb") as f:
        f.read(8)
        hl = int.from_bytes(f.read(2), "little")
        hdr = f.read(hl).decode("latin1")
    return tuple(int(x) for x in re.search(r"shape': \(([^)]*)\)", hdr).group(1).split(",")
                 if x.strip())


def dataset_sizes(data):
    """[(images, vertices)] per subject of an Algonauts-layout folder (npy headers only)."""
    subs = []
    for name in sorted(os.listdir(data)):
        m = re.fullmatch(r"subj(\d\d)", name)
        if not m:
            continue
        f = os.path.join(data, name, "training_split", "training_fmri")
        lh = npy_shape(os.path.join(f, "lh_training_fmri.npy"))
        rh = npy_shape(os.path.join(f, "rh_training_fmri.npy"))
        subs.append((int(m.group(1)), lh[0], lh[1] + rh[1]))
    return subs


# ---------------------------------------------------------------- per-stage work
def pair_count(c, n):
    s = c.get("pairs.set")
    allp = n * (n - 1) / 2
    if s == "all":
        return allp
    if s in ("extremes", "balanced"):
        k = c.num("pairs.k")
        extra = c.num("pairs.mid_count") if s == "balanced" else 0
        return min(allp, n * (2 * k + extra) * (0.5 if c.get("pairs.dedup") == "true" else 1))
    if s == "percentile":
        lo, hi = [float(x) for x in listv(c.get("pairs.percentiles"))]
        return allp * (lo + 100 - hi) / 100
    if s == "colors":
        f = 2 * 0.25 * c.num("pairs.color_fraction")
        return (f * n) ** 2 / 2
    return allp


def folds_of(c, n, p):
    """(tasks per selection, train pairs, test pairs, train images) of a split."""
    sch = c.get("split.scheme")
    if sch == "holdout":
        t = c.num("split.test_size")
        return 1, p * (1 - t) ** 2, p * t * t, n * (1 - t)
    f = c.num("split.folds")
    if sch == "pairs":
        return int(f), p * (1 - 1 / f), p / f, n
    return int(f), p * (1 - 1 / f) ** 2, p / f ** 2, n * (1 - 1 / f)


def embeddings_of(c, exps):
    """[(name, backend, model, layers)] of the job's embed stages."""
    out = []
    for cc in [c] + [e for _, e in exps if "embed" in listv(e.get("run.stages"))]:
        if cc is not c and cc.get("embed.name") == c.get("embed.name") and \
                cc.get("embed.backend") == c.get("embed.backend"):
            continue
        be = cc.get("embed.backend")
        layers = max(1, len(listv(cc.get("embed.layers") or "")))
        out.append((be, cc.get("embed.model"), layers))
    return out


def multi(ranks):
    """1 with more than one rank: the calibration sees 1 and 2 ranks only, so the extra
    fixed cost of more ranks is taken as that of the second (docs/scaling.md)."""
    return 1.0 if ranks > 1 else 0.0


def farm_rounds(tasks, ranks):
    return math.ceil(tasks / ranks)


class Model:
    def __init__(self, coef):
        self.k = coef["coefficients"]
        self.base_mb = coef.get("base_mb", 60.0)

    def t(self, stage, units, work, par, ranks):
        """fixed x units (a1 on one rank, a1 + am on more: what the ranks add to a step,
        collectives and waiting for each other) + coefficient x work over the ranks that
        have work (at most `par`)."""
        a, b, am = (list(self.k[stage]) + [0.0])[:3]
        return (a + am * multi(ranks)) * units + b * work / max(1, min(ranks, par))


def predict(c, exps, subjects, ranks, coef, image_size=425, data=None, nodes=1, cores=None):
    """[(stage, seconds, peak bytes per rank, note)] of the job on `ranks` ranks."""
    M = Model(coef)
    K = coef["coefficients"]
    run_stages = listv(c.get("run.stages"))
    rois = listv(c.get("data.rois"))
    cap = c.num("data.images")
    embs = embeddings_of(c, exps)
    n_emb = sum(x[2] for x in embs)
    rows = []
    base = M.base_mb * 1e6

    def sizes():
        for (sid, n, v) in subjects:
            n = int(min(n, cap)) if cap > 0 else n
            yield sid, n, v, selection_vertices(rois, v, data, sid)

    if "rdm" in run_stages:
        t = mem = 0.0
        units = 0
        int16 = (c.get("rdm.arithmetic") or "float32") == "int16"
        for sid, n, v, vs in sizes():
            for vsel in vs:
                units += 1
                t += M.t("rdm", 1, n * n * vsel + 64 * n * vsel, 10 ** 9, ranks)
                if int16:
                    # The VNNI engine replaces only the Gram product: the float32 fit minus
                    # the difference of the two Gram rates measured by bench/rdm on the
                    # full subject, 2 ranks, the environment's kernel (whole stage 17.16 s
                    # float32, 5.65 s int16). The reading, the N^2 work (reductions,
                    # distances, mirror, summaries, the HDF5 write) stays.
                    t -= INT16_SAVED_S_PER_N2V * n * n * vsel / max(1, ranks)
                    mem = max(mem, 4 * n * vsel / ranks + 4 * n * n / ranks + 1020 * 8 * n + 25e6)
                else:
                    mem = max(mem, 4 * n * vsel / ranks + 4 * n * n / ranks + 25e6)
        rows.append(("rdm", t, mem + base, f"{units} RDMs" + (" (int16)" if int16 else "")))
    if "embed" in run_stages or any("embed" in listv(e.get("run.stages")) for _, e in exps):
        t = mem = 0.0
        for be, model, layers in embs:
            for sid, n, v, vs in sizes():
                par = max(1, n // 32)
                if be == "gabor":
                    w = n * (1 + (image_size / 128.0) ** 2)
                    t += M.t("embed_gabor", 1, w, par, ranks)
                elif be == "pixels":
                    t += M.t("embed_gabor", 1, n * (image_size / 128.0) ** 2 * 0.2, par, ranks)
                elif be == "file":
                    t += 1.0
                else:
                    g = EMBED_GFLOP.get(model if be == "torchvision" else be, 10.0)
                    t += K["blas_s_per_flop"] * 1.25 * g * 1e9 * n / min(ranks, par) + 2.0
                mem = max(mem, 4.0 * n * 512 * layers + 400e6)
        rows.append(("embed", t, mem + base, ", ".join(x[0] if x[0] != "torchvision" else x[1]
                                                         for x in embs)))
    folds = 1 if c.get("split.scheme") == "holdout" else int(c.num("split.folds"))
    if "encode" in run_stages:
        t = mem = 0.0
        A = float(coef.get("loo_alphas_evaluated", 2.8))
        na = c.num("encode.n_alphas") if c.get("encode.alphas") == "logspace" else \
            len(listv(c.get("encode.alphas")))
        if c.get("encode.mode") == "kfold":
            A = na * c.num("encode.inner_folds") / 5.0 * 5
        D = 512
        block = c.num("encode.block") or 1024
        for sid, n, v, vs in sizes():
            for vsel in vs:
                ntr = n * (1 - 1 / folds) if folds > 1 else n * 0.75
                w = n_emb * folds * (ntr * D * D + 2 * D * ((1 + A) * ntr + (n - ntr)) * vsel
                                     + 60 * n * vsel)
                t += M.t("encode", n_emb, w, math.ceil(vsel / block), ranks)
                mem = max(mem, 4 * n * vsel / min(ranks, math.ceil(vsel / block)) * 1.25
                          + 4 * n * D * n_emb + 5 * 22e6 + 80e6)
        rows.append(("encode", t, mem + base, f"{n_emb} embedding(s) x {folds} folds"))
    nsub = len(subjects)
    for name, e in exps:
        st = listv(e.get("run.stages"))
        for stage in ("svm", "train"):
            if stage not in st:
                continue
            erois = listv(e.get("data.rois"))
            t = mem = 0.0
            tasks_all = 0
            task_times = []
            for sid, n, v, vs in sizes():
                pim = e.num("pairs.images")
                ne = int(min(n, pim)) if pim > 0 else n
                p = pair_count(e, ne)
                nt, ptr, pte, _ = folds_of(e, ne, p)
                tasks = nt * len(erois)
                tasks_all += tasks
                if stage == "svm":
                    if e.get("svm.solver") == "lowrank":
                        kk = e.num("svm.rank")
                        feat = (2 * kk) ** (e.num("svm.degree") if e.get("svm.kernel") == "poly"
                                            else 1) / 1e4
                        conv = (ptr / SVM_EPOCH_REF) ** SVM_EPOCH_EXP
                        task = M.t("svm_lowrank", 1, ptr * feat * conv + pte, 1, 1)
                        tm = 4 * n * n + 60 * ptr + 4 * n * 512
                    else:
                        task = K["svm_lowrank"][0] + SMO_S_PER_PAIR2 * ptr ** 2
                        tm = 4 * n * n + 8 * n * n + e.num("svm.cache_mb") * 1e6
                    note = f"{name}: {e.get('svm.solver')}, {tasks} tasks/subject x {ptr:,.0f} train pairs"
                    key = "svm"
                else:
                    model = e.get("train.model")
                    ep = e.num("train.epochs")
                    tower = [float(x) for x in listv(e.get("train.tower"))]
                    dims = [512.0] + tower + [e.num("train.head")]
                    net = sum(a * b for a, b in zip(dims[:-1], dims[1:])) / (
                        512 * 512 + 512 * 256 + 256 * 128)
                    # each of train.null_shuffles shuffled-target R^2 goes over the test
                    # pairs (docs/nn.md): ~1/100 of a training pair-step per pair
                    nulls = e.num("train.null_shuffles") / 100.0
                    if model == "siamese":
                        w = (ptr * ep + pte * (2 + nulls)) * (0.3 + 0.7 * net)
                        task = M.t("siamese", 1, w, 1, 1)
                    else:
                        # MLP / CNN: per-pair network passes, not decomposed (docs/nn.md)
                        w = (ptr * ep + pte * (1 + nulls)) * (8 if model == "cnn" else 2)
                        task = M.t("siamese", 1, w, 1, 1)
                    tm = 4 * n * n + 24 * ptr + 4 * n * 512
                    note = (f"{name}: {model} {ep:g} epochs, {tasks} tasks x "
                            f"{ptr:,.0f} train pairs")
                    key = "train"
                # a task's fixed cost on more than one rank (reading the RDM while the other
                # ranks do the same, the farm's counter) is part of the task: it runs in parallel
                ck = "svm_lowrank" if stage == "svm" else "siamese"
                task += (list(K[ck]) + [0.0])[2] * multi(ranks)
                task_times += [task] * tasks
                mem = max(mem, tm)
            # one farm over every subject's tasks: rounds of R tasks (equal-sized tasks of a
            # subject; a subject's tasks are longer than the next's when it has more images)
            task_times.sort(reverse=True)
            t += sum(task_times[i] for i in range(0, len(task_times), max(1, ranks)))
            rows.append((key, t, mem + base, note))
    if "evaluate" in run_stages:
        t = mem = 0.0
        nb, npm = c.num("evaluate.bootstrap"), c.num("evaluate.permutations")
        meth = len(listv(c.get("evaluate.methods")))
        for sid, n, v, vs in sizes():
            P = n * (n - 1) / 2
            gram = M.t("rdm", 0, n * n * 512 * n_emb, 10 ** 9, ranks)
            t += gram
            for vsel in vs:
                # the observed scores sort the brain and each model; a permutation test sorts
                # them again for its own data (docs/evaluate.md): on 2+ ranks side by side
                sort = meth * P * (1 + n_emb) * math.log2(P)
                prep = (2 * sort, 2) if npm > 0 else (sort, 1)
                t += M.t("evaluate", 1, prep[0], prep[1], ranks)
                w = meth * (nb * P * math.log2(P) * (1 + n_emb) + npm * 4 * P * n_emb)
                t += M.t("evaluate", 0, w, nb + npm, ranks)
            # every rank: the brain RDM and each model RDM (float32, N^2), the pair list and
            # its local positions (4 x int64 per pair), the brain and model values, the
            # permutation data (canonical order, gathered values, standardised models, the
            # 4-byte brain matrix) and a sort's two word arrays (docs/evaluate.md)
            mem = max(mem, 4 * n * n * (2 + n_emb) + P * (64 + 16 * n_emb))
        rows.append(("evaluate", t, mem + base,
                     f"{nb:g} bootstrap, {npm:g} permutations, {n_emb} embedding(s)"))
    if "report" in run_stages:
        units = nsub * len(rois) * (1 + len(exps))
        rows.append(("report", M.t("report", units, 0, 1, ranks), base + 200e6,
                     f"{units} figure groups"))
    return rows


# ---------------------------------------------------------------- calibration
CAL_JOB = """[data]
root = {root}
rois = V1, class:Faces, all
[encode]
block = 512
[evaluate]
bootstrap = 20
permutations = 200
[run]
experiments = svm.ini, siamese.ini
stages = rdm, embed, encode, svm, train, evaluate, report
output = {out}
"""
CAL_SVM = """[data]
rois = all
[pairs]
experiment = svm
set = extremes
k = 20
[split]
scheme = kfold
folds = 5
[svm]
solver = lowrank
[run]
stages = svm
"""
CAL_SIA = """[data]
rois = all
[pairs]
experiment = siamese
set = all
[split]
scheme = kfold
folds = 5
[train]
model = siamese
epochs = 1
batch = 4096
[run]
stages = train
"""
# images, image px, vertices: two small runs (fixed costs) and one mid-size run where the
# stages' work dominates (rdm 1500^2 x 16,000: ~0.1 TFLOP; 1.1 M pairs)
CAL_SIZES = [(300, 64, 2000), (700, 160, 6000), (1500, 256, 16000)]


def parse_log(text):
    """{stage: seconds} from `rdmlearn run`'s log (`run: [exp: ]stage X done in S s`)."""
    out = {}
    for m in re.finditer(r"run: (?:(\S+): )?stage (\w+) done in ([0-9.]+) s", text):
        out[m.group(2)] = out.get(m.group(2), 0.0) + float(m.group(3))
    m = re.search(r"run: finished in ([0-9.]+) s", text)
    if m:
        out["total"] = float(m.group(1))
        out["report"] = max(0.0, out["total"] - sum(v for k, v in out.items()
                                                       if k not in ("total", "report")))
    return out


def blas_kernel(exe):
    """the OpenBLAS kernel rdmlearn runs here (bench/common/blas_probe.py)."""
    try:
        r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "common", "blas_probe.py"),
                            "exe", exe], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        return r.stdout.strip().split(": ", 1)[-1] or "?"
    except OSError:
        return "?"


def calibrate(args):
    exe = os.path.abspath(args.rdmlearn)
    work = args.workdir
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1")
    meas = []
    for n, px, v in CAL_SIZES:
        root = os.path.join(work, f"d{n}")
        if not os.path.isdir(os.path.join(root, "subj01")):
            subprocess.run(["rm", "-rf", root])
            subprocess.run([exe, "synth", root, "-q", "--set", "synth.subjects=1",
                            "--set", f"synth.images={n}", "--set", f"synth.image_size={px}",
                            "--set", f"synth.lh_vertices={v // 2}",
                            "--set", f"synth.rh_vertices={v - v // 2}"],
                           check=True, env=env)
        for r in (1, 2):
            d = os.path.join(work, f"job{n}_{r}")
            subprocess.run(["rm", "-rf", d])
            job = write_cal_job(d, root)
            cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-n", str(r),
                   "/usr/bin/time", "-f", "MAXRSS %M", exe, "run", job]
            t0 = time.time()
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
                raise SystemExit(f"cost_model: calibration run failed: {' '.join(cmd)}")
            st = parse_log(p.stdout + p.stderr)
            rss = [int(x) * 1024 for x in re.findall(r"MAXRSS (\d+)", p.stderr)]
            st["maxrss"] = max(rss) if rss else 0
            print(f"calibration: {n} images x {v} vertices, {px} px, {r} rank(s): "
                  + ", ".join(f"{k} {val:.1f}" for k, val in st.items() if k != "maxrss")
                  + f" s; peak RSS {st['maxrss'] / 1e6:.0f} MB ({time.time() - t0:.0f} s)")
            meas.append(dict(images=n, image_size=px, vertices=v, ranks=r, stages=st))
    store(fit(meas, work), meas, exe, args.out)


def store(coef, meas, exe, out):
    coef.update(machine=dict(host=platform.node(), cpu=cpu_name(), cores=os.cpu_count(),
                             mem_gib=round(mem_total() / 2 ** 30, 1),
                             kernel=blas_kernel(exe),
                             coretype=os.environ.get("OPENBLAS_CORETYPE", "(auto)"),
                             load=os.getloadavg()[0],
                             date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
                measurements=meas)
    with open(out, "w") as f:
        json.dump(coef, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"cost_model: coefficients written to {out}")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def mem_total():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def unit_coef():
    keys = ["rdm", "embed_gabor", "encode", "svm_lowrank", "siamese", "evaluate", "report"]
    return dict(coefficients={k: [0.0, 0.0, 0.0] for k in keys} | {"blas_s_per_flop": 0.0},
                base_mb=60.0)


def write_cal_job(d, root="DATA"):
    os.makedirs(d, exist_ok=True)
    for fn, txt in (("svm.ini", CAL_SVM), ("siamese.ini", CAL_SIA)):
        with open(os.path.join(d, fn), "w") as f:
            f.write(txt)
    job = os.path.join(d, "job.ini")
    with open(job, "w") as f:
        f.write(CAL_JOB.format(root=root, out=os.path.join(d, "results.h5")))
    return job


def fit(meas, workdir):
    """least squares (non-negative) of each stage's [fixed, per-work, fixed x log2 R]."""
    job = write_cal_job(os.path.join(workdir, "fit"))
    coef = unit_coef()
    stage_of = {"rdm": "rdm", "embed_gabor": "embed", "encode": "encode",
                "svm_lowrank": "svm", "siamese": "train", "evaluate": "evaluate",
                "report": "report"}
    for key, stage in stage_of.items():
        rows, ys = [], []
        for m in meas:
            # each term's (units, work/par) with unit coefficients [1, 0] and [0, 1]
            cols = []
            for ab in ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]):
                cc = unit_coef()
                cc["coefficients"][key] = ab
                cc["coefficients"]["blas_s_per_flop"] = 0.0
                c, exps = job_configs(m.get("job_file") and os.path.join(SRC, m["job_file"])
                                      or job, m.get("set", []))
                subs = [(1, m["images"], m["vertices"])]
                pr = predict(c, exps, subs, m["ranks"], cc, m["image_size"])
                cols.append(sum(t for s, t, _, _ in pr if s == stage))
            rows.append(cols)
            ys.append(m["stages"].get(stage, 0.0))
        A, y = np.array(rows), np.array(ys)
        sol = nnls(A, y)
        coef["coefficients"][key] = [float(x) for x in sol]
    # BLAS rate (for the network backends) from the rdm coefficient: s per N^2 V
    coef["coefficients"]["blas_s_per_flop"] = coef["coefficients"]["rdm"][1] / 2.0
    coef["base_mb"] = 60.0
    return coef


def nnls(A, y):
    """non-negative least squares by trying every subset of the (few) columns."""
    best = None
    k = A.shape[1]
    for mask in range(1, 2 ** k):
        idx = [i for i in range(k) if mask >> i & 1]
        if not np.any(A[:, idx]):
            continue
        s, *_ = np.linalg.lstsq(A[:, idx], y, rcond=None)
        if np.any(s < 0):
            continue
        x = np.zeros(k)
        x[idx] = s
        r = float(np.sum((A @ x - y) ** 2))
        if best is None or r < best[0]:
            best = (r, x)
    return best[1] if best else np.zeros(k)


# ---------------------------------------------------------------- main
def fmt_t(s):
    return f"{s:8.1f} s" if s < 600 else f"{s / 60:8.1f} min" if s < 36000 else f"{s / 3600:8.1f} h"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("job", nargs="?")
    ap.add_argument("--images", type=int, help="images per subject (default: 9841, or --data)")
    ap.add_argument("--vertices", type=int, help="vertices per subject (default 39548)")
    ap.add_argument("--subjects", type=int, help="number of subjects of that size")
    ap.add_argument("--nsd", action="store_true",
                    help="the 8 NSD subjects with their real image and vertex counts")
    ap.add_argument("--image-size", type=int, default=425, help="image side in px (425)")
    ap.add_argument("--data", help="read sizes and ROI masks from this dataset folder")
    ap.add_argument("--set", action="append", default=[], help="sec.key=value, as rdmlearn")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--nodes", type=int, help="K cluster nodes (ranks = nodes x cores)")
    ap.add_argument("--cores", type=int, default=64, help="cores (ranks) per node (64)")
    ap.add_argument("--node-mem-gib", type=float, default=None,
                    help="warn when the ranks of a node need more than this")
    ap.add_argument("--coef", default=COEF_FILE)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--calibrate", action="store_true",
                    help="measure the calibration runs (1 and 2 ranks) and fit --out")
    ap.add_argument("--add-run", metavar="LOG",
                    help="add a measured run of JOB (its rdmlearn log) to --coef, then refit")
    ap.add_argument("--refit", action="store_true",
                    help="fit --out again from the measurements stored in --coef")
    ap.add_argument("--rdmlearn", default=os.path.join(SRC, "build", "rdmlearn"))
    ap.add_argument("--workdir", default="/tmp/rdml-cost-model")
    ap.add_argument("--out", default=COEF_FILE)
    args = ap.parse_args(argv)
    if args.calibrate:
        calibrate(args)
        return 0
    if args.add_run:
        # a measured `rdmlearn run` of a committed job (its log) joins the calibration
        with open(args.coef) as f:
            old = json.load(f)
        with open(args.add_run) as f:
            st = parse_log(f.read())
        if not args.job or not args.images or not args.vertices:
            ap.error("--add-run needs the JOB, --images, --vertices (and --ranks, --set)")
        old["measurements"].append(dict(
            job_file=os.path.relpath(os.path.abspath(args.job), SRC), set=args.set,
            images=args.images, vertices=args.vertices, image_size=args.image_size,
            ranks=args.ranks, stages=st))
        with open(args.coef, "w") as f:
            json.dump(old, f, indent=1, sort_keys=True)
            f.write("\n")
        args.refit = True
    if args.refit:
        # fit again from the measurements stored in --coef (after a change of the formulas)
        with open(args.coef) as f:
            old = json.load(f)
        coef = fit(old["measurements"], args.workdir)
        coef["machine"] = old["machine"]
        coef["measurements"] = old["measurements"]
        with open(args.out, "w") as f:
            json.dump(coef, f, indent=1, sort_keys=True)
            f.write("\n")
        return 0
    if not args.job:
        ap.error("a job file (or --calibrate)")
    for path, what in ((args.job, "job file"), (args.coef, "coefficient file")):
        if not os.path.isfile(path):
            raise SystemExit(f"cost_model: {what} {path} not found (hint: a job of jobs/, "
                             f"or --calibrate to make {COEF_FILE})")
    with open(args.coef) as f:
        coef = json.load(f)
    c, exps = job_configs(args.job, args.set)
    if args.data:
        subjects = dataset_sizes(args.data)
    elif args.nsd:
        subjects = [(i + 1, n, v) for i, (n, v) in enumerate(zip(NSD_IMAGES, NSD_VERTICES))]
    else:
        subs = c.get("data.subjects")
        ns = args.subjects or (len(listv(subs)) if subs != "all" else 1)
        subjects = [(i + 1, args.images or 9841, args.vertices or 39548) for i in range(ns)]
    nodes = args.nodes or 1
    ranks = args.nodes * args.cores if args.nodes else args.ranks
    rows = predict(c, exps, subjects, ranks, coef, args.image_size, args.data, nodes)
    total = sum(r[1] for r in rows)
    peak = max(r[2] for r in rows)
    per_node = ranks // nodes
    if args.json:
        json.dump(dict(job=args.job, ranks=ranks, nodes=nodes, subjects=subjects,
                       stages=[dict(stage=s, seconds=t, peak_bytes_per_rank=m, note=n)
                               for s, t, m, n in rows],
                       total_seconds=total, peak_bytes_per_rank=peak), sys.stdout, indent=1)
        print()
        return 0
    where = f"{nodes} node(s) x {per_node} ranks" if args.nodes else f"{ranks} rank(s) here"
    print(f"{args.job}: {len(subjects)} subject(s) "
          f"({', '.join(f'{n}x{v}' for _, n, v in subjects[:3])}"
          f"{', ...' if len(subjects) > 3 else ''}), {where}; coefficients {args.coef} "
          f"({coef.get('machine', {}).get('kernel', '?')})")
    print(f"  {'stage':9s} {'predicted':>12s} {'peak/rank':>10s}  what")
    for s, t, m, n in rows:
        print(f"  {s:9s} {fmt_t(t):>12s} {m / 2 ** 30:8.2f} GiB  {n}")
    print(f"  {'total':9s} {fmt_t(total):>12s} {peak / 2 ** 30:8.2f} GiB  "
          f"(node: {peak * per_node / 2 ** 30:.1f} GiB for {per_node} ranks)")
    if args.node_mem_gib and peak * per_node > args.node_mem_gib * 2 ** 30:
        print(f"  warning: {per_node} ranks need {peak * per_node / 2 ** 30:.1f} GiB of a "
              f"node's {args.node_mem_gib:g} GiB (hint: fewer ranks per node, or data.images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
