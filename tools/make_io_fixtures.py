#!/usr/bin/python3
"""Write the .npy and mapping fixtures of tests/unit/test_npy.c and test_pymap.c.

Regenerate with:  /usr/bin/python3 tools/make_io_fixtures.py   (numpy 1.24, Debian 12)
Output: tests/fixtures/io/  (deterministic: every value comes from a formula, no RNG), and the
fuzzing seed corpora tests/fuzz/corpus/npy/ and tests/fuzz/corpus/pymap/ (small copies).

Numeric arrays of shape (7, 5) hold, for flat index k = i * 5 + j,
    f4, f8: k / 3          i4: 1000 k - 17000      i8: k * 2**33 - 5
    u1: (37 k) % 256       b1: k % 3 == 0
so the C tests recompute the expected values. Files written by numpy itself (np.save,
np.lib.format.write_array) are the ground truth; a few headers are written by hand to cover
what numpy accepts but does not write (key order, spacing, 10L longs) and bad input.
"""
import io
import os
import pickle
import pickletools
import sys

import numpy as np
import numpy.lib.format as fmt

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")
R, C = 7, 5


def arr(kind, shape=(R, C)):
    k = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    if kind in ("f4", "f8"):
        return (k / 3.0).astype("<" + kind)
    if kind == "i4":
        return (1000 * k - 17000).astype("<i4")
    if kind == "i8":
        return (k * 2**33 - 5).astype("<i8")
    if kind == "u1":
        return ((37 * k) % 256).astype("|u1")
    if kind == "b1":
        return (k % 3 == 0)
    raise ValueError(kind)


def save(name, a, **kw):
    path = os.path.join(OUT, name)
    if kw:
        with open(path, "wb") as f:
            fmt.write_array(f, a, **kw)
    else:
        np.save(path, a)
    return path


def raw(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def npy_bytes(a, **kw):
    f = io.BytesIO()
    fmt.write_array(f, a, **kw) if kw else np.save(f, a)
    return f.getvalue()


def hand_header(text, version=1):
    """A header with exactly this dict text, padded to 64 bytes and ending in '\\n'."""
    h = text.encode("latin1")
    pre = 10 if version == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    size = len(h).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + h


def mapping_bytes(d, protocol):
    """What np.save(path, d) writes, with the pickle protocol chosen (numpy 1.24 fixes 3)."""
    a = np.asanyarray(d)
    f = io.BytesIO()
    fmt.write_array_header_1_0(f, fmt.header_data_from_array_1_0(a))
    pickle.dump(a, f, protocol=protocol)
    return f.getvalue()


ROIS = {0: "Unknown", 1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"}
WIDE = {0: "Unknown", 255: "b255", 256: "b256", 300: "x", 65535: "w", 65536: "w1",
        -1: "minus one", -5: "neg", 2**31 - 1: "i32max", -2**31: "i32min", 2**31: "long",
        2**40: "huge", -2**40: "nh", -2**47: "edge", 2**63 - 1: "max", -2**63: "min",
        9: "h\u00e9llo \u65e5\u672c \U0001F600"}


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy") or f.endswith(".bin"):
            os.remove(os.path.join(OUT, f))

    # --- numeric arrays, every dtype, C order, little-endian ---
    for kind in ("f4", "f8", "i4", "i8", "u1", "b1"):
        save("c_%s.npy" % kind, arr(kind))
    # big-endian
    for kind in ("f4", "f8", "i4", "i8"):
        save("be_%s.npy" % kind, arr(kind).astype(">" + kind))
    # Fortran order
    save("f_f4.npy", np.asfortranarray(arr("f4")))
    save("f_i8.npy", np.asfortranarray(arr("i8")))
    # format versions 2.0 and 3.0
    save("v2_f4.npy", arr("f4"), version=(2, 0))
    save("v3_f4.npy", arr("f4"), version=(3, 0))
    # 0-d, 1-d, 3-d, empty
    save("d0_f8.npy", np.array(2.5, dtype="<f8"))
    save("d1_i8.npy", np.arange(11, dtype="<i8") - 5)
    save("d3_u1.npy", arr("u1", (2, 3, 4)))
    save("empty_f4.npy", np.zeros((0, 5), dtype="<f4"))
    # a header numpy reads but does not write: key order, spacing, 10L longs, trailing comma
    data = arr("f4").tobytes()
    raw("odd_header.npy",
        hand_header("{ \"shape\":(7L ,5L,) ,'fortran_order' :False,\t'descr':'<f4'  ,}") + data)
    raw("odd_header_v2.npy", hand_header("{'descr':'<f4','shape':(7,5),'fortran_order':False}",
                                         version=2) + data)
    # a non-integral float for the int64 reader
    save("frac_f8.npy", np.array([[1.0, 2.0], [3.5, 4.0]], dtype="<f8"))

    # --- np.save reference outputs for rdml_npy_save (byte-identical) ---
    save("save_f4_3x4.npy", arr("f4", (3, 4)))
    save("save_f8_5.npy", arr("f8", (5,)))
    save("save_i4_0d.npy", np.array(-7, dtype="<i4"))
    save("save_i8_2x3x4.npy", arr("i8", (2, 3, 4)))
    save("save_u1_0.npy", np.zeros((0,), dtype="|u1"))
    save("save_b1_4x2.npy", arr("b1", (4, 2)))
    save("save_f8_fortran.npy", np.asfortranarray(arr("f8", (3, 4))))
    save("save_f4_bigdim.npy", np.zeros((123456789012, 0), dtype="<f4"))
    save("save_u1_8d.npy", arr("u1", (2, 1, 1, 1, 1, 1, 1, 3)))

    # --- bad input ---
    good = npy_bytes(arr("f4"))
    raw("bad_magic.npy", b"\x93NUMPZ" + good[6:])
    raw("bad_version.npy", good[:6] + b"\x04\x00" + good[8:])
    raw("trunc_header.npy", good[:40])
    raw("tiny.npy", good[:7])
    raw("hlen_past_eof.npy", good[:8] + (5000).to_bytes(2, "little") + good[10:])
    raw("not_dict.npy", hand_header("[('descr', '<f4'), ('shape', (7, 5))]") + data)
    save("c8.npy", np.zeros((2, 2), dtype="<c8"))
    raw("size_mismatch.npy", good[:-8])
    raw("trailing.npy", good + b"\0\0\0\0")
    raw("negdim.npy", hand_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-3, 4), }"))
    raw("no_newline.npy", good[:127] + b" " + good[128:])
    raw("unknown_key.npy", hand_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 5), 'extra': 1, }") + data)

    # --- mappings ---
    raw("map_p3.npy", open(save("map_p3_np.npy", ROIS), "rb").read())
    os.remove(os.path.join(OUT, "map_p3_np.npy"))
    assert mapping_bytes(ROIS, 3) == open(os.path.join(OUT, "map_p3.npy"), "rb").read()
    raw("map_p2.npy", mapping_bytes(ROIS, 2))
    raw("map_p4.npy", mapping_bytes(ROIS, 4))
    save("map_wide_p3.npy", WIDE)
    raw("map_wide_p2.npy", mapping_bytes(WIDE, 2))
    raw("map_wide_p4.npy", mapping_bytes(WIDE, 4))
    save("map_empty_p3.npy", {})
    save("map_one_p3.npy", {5: "only"})
    big = {i: "n%d" % i for i in range(1001)}
    save("map_1001_p3.npy", big)
    raw("map_1001_p4.npy", mapping_bytes(big, 4))
    # Two values that are the same Python object: pickle memoises and emits BINGET.
    shared = "same"
    dup = {0: shared, 1: shared}
    save("map_memo_p3.npy", dup)
    assert b"h" in open(os.path.join(OUT, "map_memo_p3.npy"), "rb").read()[128 + 140:]
    # numpy 2.x names its module numpy._core: patch a protocol-4 stream the same way.
    p4 = mapping_bytes(ROIS, 4)
    old = b"\x8c\x15numpy.core.multiarray"
    assert p4.count(old) == 1
    head, pk = p4[:128], p4[128:]
    pk = pk.replace(old, b"\x8c\x16numpy._core.multiarray")
    assert pk[2] == 0x95
    flen = int.from_bytes(pk[3:11], "little") + 1
    pk = pk[:3] + flen.to_bytes(8, "little") + pk[11:]
    list(pickletools.genops(pk))  # well-formed
    raw("map_np2_p4.npy", head + pk)

    # bad mappings
    obj_head = mapping_bytes({}, 3)[:128]
    raw("evil_global.npy", obj_head + b"cos\nsystem\n(S'true'\ntR.")
    raw("evil_p4.npy", obj_head + pickle.dumps(eval_reduce(), protocol=4))
    p3 = open(os.path.join(OUT, "map_p3.npy"), "rb").read()
    raw("trunc_map.npy", p3[:200])
    assert p3.count(b"cnumpy\ndtype\n") == 1
    raw("wrong_global.npy", p3.replace(b"cnumpy\ndtype\n", b"cnumpy\nzeros\n"))
    raw("map_strkey.npy", mapping_bytes({"a": "b"}, 3))
    raw("map_intval.npy", mapping_bytes({1: 2}, 3))
    holds_list = np.empty((), dtype=object)
    holds_list[()] = [1, 2]
    raw("map_list.npy", obj_head + pickle.dumps(holds_list, protocol=3))
    two = np.empty((2,), dtype=object)
    two[0], two[1] = ROIS, ROIS
    save("map_two.npy", two)
    raw("pickle_f4.npy", good)  # a numeric array given as a mapping

    # pickle streams alone, for rdml_pymap_parse
    raw("pickle_p3.bin", p3[128:])

    write_corpora()

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes, to %s" % (len(os.listdir(OUT)), total, OUT))
    if total > 200 * 1024:
        sys.exit("fixtures too large")


def write_corpora():
    """Seeds for tests/fuzz: whole .npy files, and pickle streams without the .npy header."""
    base = os.path.join(OUT, "..", "..", "fuzz", "corpus")
    npy_dir, pm_dir = os.path.join(base, "npy"), os.path.join(base, "pymap")
    for d in (npy_dir, pm_dir):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
    small = {"c_f4": arr("f4", (2, 3)), "be_i8": arr("i8", (3,)).astype(">i8"),
             "f_f8": np.asfortranarray(arr("f8", (2, 2))), "d0_u1": np.array(7, dtype="|u1"),
             "b1": arr("b1", (4,)), "i4": arr("i4", (1, 2))}
    for name, a in small.items():
        with open(os.path.join(npy_dir, name + ".npy"), "wb") as f:
            f.write(npy_bytes(a))
    with open(os.path.join(npy_dir, "v2_f4.npy"), "wb") as f:
        f.write(npy_bytes(arr("f4", (2, 2)), version=(2, 0)))
    with open(os.path.join(npy_dir, "odd.npy"), "wb") as f:
        f.write(hand_header("{ \"shape\":(2L ,1L,) ,'fortran_order' :False,'descr':'<f4'  ,}")
                + arr("f4", (2, 1)).tobytes())
    with open(os.path.join(npy_dir, "map.npy"), "wb") as f:
        f.write(mapping_bytes({0: "a"}, 3))
    seeds = {"p2": mapping_bytes(ROIS, 2), "p3": mapping_bytes(ROIS, 3),
             "p4": mapping_bytes(ROIS, 4), "wide_p3": mapping_bytes(WIDE, 3),
             "wide_p4": mapping_bytes(WIDE, 4), "empty": mapping_bytes({}, 3),
             "one": mapping_bytes({5: "only"}, 3),
             "memo": open(os.path.join(OUT, "map_memo_p3.npy"), "rb").read(),
             "np2": open(os.path.join(OUT, "map_np2_p4.npy"), "rb").read()}
    for name, b in seeds.items():
        with open(os.path.join(pm_dir, name + ".pkl"), "wb") as f:
            f.write(b[128:])


class eval_reduce:
    """An object whose pickle calls builtins.eval: the reader must refuse it, not run it."""

    def __reduce__(self):
        return (eval, ("1+1",))


if __name__ == "__main__":
    main()
