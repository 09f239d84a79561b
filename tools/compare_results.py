#!/usr/bin/env python3
"""Compare two rdmlearn results files (HDF5): every group, dataset and attribute must be
equal, bit for bit, except what measures time or the machine (timings, dates, input stamps,
the command line that made a stage). Prints each difference; exit status 1 when any.

    python3 tools/compare_results.py A.h5 B.h5 [--ignore NAME ...]
"""
import sys

import h5py
import numpy as np

# attribute and dataset names that hold timings, dates or provenance rather than results
VOLATILE = {"fit_seconds", "pairs_per_second", "elapsed", "seconds", "date", "time",
            "started", "finished", "created", "command", "host", "hostname", "wall_seconds",
            "load_seconds", "task_seconds", "seconds_per_epoch", "epoch_seconds",
            "rdmlearn_version", "version", "git", "cwd", "user",
            "ranks_busy", "ranks_busy_mean"}
# /meta/done holds each stage's stamp, which hashes the input files' modification times
VOLATILE_PATHS = ("/meta/done",)


def volatile(name, extra):
    base = name.rsplit("/", 1)[-1]
    low = base.lower()
    return (base in VOLATILE or base in extra or "seconds" in low or low.endswith("_time")
            or "date" in low or low.startswith("time") or "stamp" in low)


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    if a.dtype.fields is not None:
        return a.tobytes() == b.tobytes()
    return np.array_equal(a, b)


def compare(fa, fb, extra=()):
    diffs = []

    def walk(path, ga, gb):
        for k in sorted(set(ga.attrs) | set(gb.attrs)):
            if volatile(k, extra) or path.startswith(VOLATILE_PATHS):
                continue
            if k not in ga.attrs or k not in gb.attrs:
                diffs.append(f"{path} attribute {k}: only in {'B' if k not in ga.attrs else 'A'}")
            elif not same(ga.attrs[k], gb.attrs[k]):
                diffs.append(f"{path} attribute {k}: {ga.attrs[k]!r} != {gb.attrs[k]!r}")
        if not isinstance(ga, h5py.Group):
            return
        for k in sorted(set(ga) | set(gb)):
            p = f"{path.rstrip('/')}/{k}"
            if volatile(k, extra):
                continue
            if k not in ga or k not in gb:
                diffs.append(f"{p}: only in {'B' if k not in ga else 'A'}")
                continue
            oa, ob = ga[k], gb[k]
            if isinstance(oa, h5py.Dataset) != isinstance(ob, h5py.Dataset):
                diffs.append(f"{p}: a dataset in one file, a group in the other")
                continue
            if isinstance(oa, h5py.Dataset) and not p.startswith(VOLATILE_PATHS):
                if oa.shape != ob.shape or oa.dtype != ob.dtype:
                    diffs.append(f"{p}: shape/dtype {oa.shape} {oa.dtype} != {ob.shape} {ob.dtype}")
                elif not same(oa[()], ob[()]):
                    diffs.append(f"{p}: values differ")
            walk(p, oa, ob)

    walk("/", fa, fb)
    # /meta/done and /meta/stages: the same stages, whatever their stamps
    for g in ("/meta/done",):
        ka = set(fa[g].attrs) if g in fa else set()
        kb = set(fb[g].attrs) if g in fb else set()
        if ka != kb:
            diffs.append(f"{g}: stages {sorted(ka ^ kb)} in one file only")
    return diffs


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    extra = set()
    if "--ignore" in argv:
        i = argv.index("--ignore")
        extra = set(argv[i + 1:])
        argv = argv[:i]
    with h5py.File(argv[1], "r") as fa, h5py.File(argv[2], "r") as fb:
        diffs = compare(fa, fb, extra)
    for d in diffs:
        print(d)
    print(f"{argv[1]} vs {argv[2]}: {'identical' if not diffs else f'{len(diffs)} difference(s)'}"
          " (timings, dates and input stamps left out)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
