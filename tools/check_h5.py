#!/usr/bin/python3
"""Check with h5py that a results file written by `tests/mpi/test_h5 --keep PATH` (rdml/h5.h)
reads back in Python with the expected values and types. Used by tests/cli/test_h5py.sh.

    /usr/bin/python3 tools/check_h5.py PATH

The expected values are the formulas of tests/mpi/test_h5.c (f32_val, f64_val, i64_val)
evaluated with numpy in the same precision. Strings: attributes must come back as Python str;
string datasets must be variable-length UTF-8 (h5py.check_string_dtype), which h5py 3 returns
as str through .asstr() (plain indexing of any string dataset gives bytes in h5py >= 3).
Prints "N passed, M failed" and exits non-zero on any failure.
"""
import sys

import h5py
import numpy as np

N, D, NSMALL = 23, 5, 2
STRINGS = ["img-000 Grüße", "", "日本語の画像", "a,b;c\"d'e", "x"]

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def grid(rows, cols):
    r, c = np.meshgrid(np.arange(rows, dtype=np.int64), np.arange(cols, dtype=np.int64),
                       indexing="ij")
    return r, c


def f32_val(rows, cols):
    r, c = grid(rows, cols)
    return (r * 100 + c).astype(np.float32) + np.float32(0.25)


def f64_val(rows, cols):
    r, c = grid(rows, cols)
    return r.astype(np.float64) * 1.5 - c.astype(np.float64) / 3.0


def i64_val(rows, cols):
    r, c = grid(rows, cols)
    return r * 4000000000 + c - 7


def dataset(f, path, dtype, expect):
    check(path + " is a dataset", isinstance(f.get(path), h5py.Dataset))
    if not isinstance(f.get(path), h5py.Dataset):
        return
    ds = f[path]
    check(path + " dtype", ds.dtype == np.dtype(dtype), str(ds.dtype))
    check(path + " shape", ds.shape == expect.shape, str(ds.shape))
    if ds.shape == expect.shape:
        got = ds[()]
        check(path + " values", np.array_equal(got, expect),
              "max diff %s" % (np.abs(got.astype(np.float64) - expect).max() if got.size else 0))


def attr_str(obj, name, expect):
    v = obj.attrs.get(name)
    check("%s@%s is str" % (obj.name, name), isinstance(v, str), repr(type(v)))
    check("%s@%s value" % (obj.name, name), v == expect, repr(v))


def attr_arr(obj, name, dtype, expect):
    """One value is stored as a scalar attribute, several as a 1-D array."""
    v = obj.attrs.get(name)
    if len(expect) == 1:
        ok = isinstance(v, np.generic) and v.dtype == np.dtype(dtype)
        check("%s@%s is a %s scalar" % (obj.name, name, dtype), ok, repr(v))
        if ok:
            check("%s@%s value" % (obj.name, name), v == expect[0], repr(v))
        return
    ok = isinstance(v, np.ndarray) and v.dtype == np.dtype(dtype) and v.ndim == 1
    check("%s@%s is a 1-D %s array" % (obj.name, name, dtype), ok, repr(v))
    if ok:
        check("%s@%s value" % (obj.name, name), np.array_equal(v, np.array(expect, dtype=dtype)),
              repr(v))


def strings(f, path, expect):
    ds = f.get(path)
    check(path + " is a dataset", isinstance(ds, h5py.Dataset))
    if not isinstance(ds, h5py.Dataset):
        return
    info = h5py.check_string_dtype(ds.dtype)
    check(path + " is variable-length UTF-8",
          info is not None and info.encoding == "utf-8" and info.length is None, repr(info))
    check(path + " shape", ds.shape == (len(expect),), str(ds.shape))
    got = ds.asstr()[()].tolist() if ds.shape else []
    check(path + " items are str", all(isinstance(s, str) for s in got))
    check(path + " values", got == expect, repr(got))


def main():
    path = sys.argv[1]
    with h5py.File(path, "r") as f:
        dataset(f, "/subjects/subj01/embeddings/gabor", "float32", f32_val(N, D))
        dataset(f, "/after/strings", "float32", f32_val(N, D))
        dataset(f, "/subjects/subj01/rdm/corr", "float64", f64_val(N, D))
        dataset(f, "/experiments/e1/pairs", "int64", i64_val(N, D))
        dataset(f, "/small", "float64", f64_val(NSMALL, 3))
        dataset(f, "/empty", "float32", np.zeros((0, 4), dtype=np.float32))
        check("/meta/notes is a group", isinstance(f.get("/meta/notes"), h5py.Group))
        gabor = f["/subjects/subj01/embeddings/gabor"]
        check("gabor is chunked", gabor.chunks is not None and gabor.chunks[1] == D,
              repr(gabor.chunks))
        attr_str(gabor, "units", "a.u.")
        attr_arr(gabor, "shape", "int64", [N, D])
        attr_str(f["/meta"], "greeting", "Grüße ✓")
        attr_arr(f["/meta"], "big", "int64", [-9000000000])
        attr_str(f["/"], "empty", "")
        attr_arr(f["/subjects/subj01/rdm/corr"], "thresholds", "float64", [0.5, 1.0, -2.25e-3])
        strings(f, "/subjects/subj01/images", STRINGS)
        attr_str(f["/subjects/subj01/images"], "meaning", "file names")
        strings(f, "/meta/no_strings", [])
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
