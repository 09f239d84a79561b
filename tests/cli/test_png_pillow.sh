#!/bin/bash
# Pillow reads the PNGs that rdml_png_write produces: the unit test binary writes one image of
# each channel count (1..4) plus its raw pixels, and Pillow must decode every file to exactly
# those pixels, in the matching mode (L, LA, RGB, RGBA).
# Then the 16-bit decoding that docs/embed.md describes, against Pillow: rdmlearn's pixels
# (tests/fixtures/png/*.bin, which unit.test_png checks rdml_png_read against) are
# rint(v / 257) of the raw 16-bit samples v (read here from the PNG's IDAT); Pillow gives
# v >> 8 for 16-bit RGB (at most 1 away) and min(v, 255) for 16-bit gray (clipped); and
# docs/embed.md states these three relations.
set -euo pipefail
BIN="${RDML_BUILD:?RDML_BUILD not set}/tests/test_png"
[ -x "$BIN" ] || { echo "missing $BIN (build the test_png target)"; exit 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/rdml_png_pillow.XXXXXX")
trap 'rm -rf "$OUT"' EXIT
( cd "$OUT" && "$BIN" --export "$OUT" )
/usr/bin/python3 - "$OUT" <<'PY'
import sys, numpy as np
from PIL import Image
out = sys.argv[1]
passed = failed = 0
for c, mode in ((1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")):
    raw = np.fromfile("%s/roundtrip_c%d.bin" % (out, c), dtype=np.uint8)
    w, h, ch = np.frombuffer(raw[:12].tobytes(), dtype=np.int32)
    want = raw[12:].reshape(h, w, ch) if ch > 1 else raw[12:].reshape(h, w)
    im = Image.open("%s/roundtrip_c%d.png" % (out, c))
    got = np.array(im)
    ok = im.mode == mode and im.size == (w, h) and got.shape == want.shape and (got == want).all()
    print("c=%d mode=%s size=%s: %s" % (c, im.mode, im.size, "ok" if ok else "MISMATCH"))
    passed += ok
    failed += not ok
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
/usr/bin/python3 - "${RDML_FIXTURES:?}/png" "${RDML_SRC:?}/docs/embed.md" <<'PY'
import sys, struct, zlib, numpy as np
from PIL import Image
fx, doc = sys.argv[1], sys.argv[2]
fails = 0
def check(ok, msg):
    global fails
    print(("ok: " if ok else "FAIL: ") + msg)
    fails += not ok
def raw16(path):
    """The 16-bit samples of a non-interlaced PNG with unfiltered rows (the fixtures')."""
    b = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(b):
        n, typ = struct.unpack(">I4s", b[pos:pos + 8])
        body = b[pos + 8:pos + 8 + n]
        if typ == b"IHDR":
            w, h, depth, ctype, _, _, il = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 16 and il == 0, (depth, il)
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch * 2)
    if (rows[:, 0] != 0).any():  # Pillow-written files may filter: undo Sub/Up/Avg/Paeth
        out = np.zeros((h, w * ch * 2), np.int64); bpp = ch * 2
        for y in range(h):
            f, r = rows[y, 0], rows[y, 1:].astype(np.int64)
            for x in range(len(r)):
                a = out[y, x - bpp] if x >= bpp else 0
                up = out[y - 1, x] if y else 0
                c = out[y - 1, x - bpp] if y and x >= bpp else 0
                if f == 0: p = 0
                elif f == 1: p = a
                elif f == 2: p = up
                elif f == 3: p = (a + up) // 2
                else:
                    pa, pb, pc = abs(up - c), abs(a - c), abs(a + up - 2 * c)
                    p = a if pa <= pb and pa <= pc else (up if pb <= pc else c)
                out[y, x] = (r[x] + p) & 255
        data = out.astype(np.uint8)
    else:
        data = rows[:, 1:]
    return data.reshape(h, w * ch, 2).astype(np.int64) @ [256, 1], w, h, ch
# 16-bit RGB: rdmlearn rint(v / 257), Pillow the high byte
v, w, h, ch = raw16(f"{fx}/rgb16.png")
rdml = np.fromfile(f"{fx}/rgb16.bin", np.uint8)[w * h * 3: w * h * 6].reshape(h, w * 3).astype(np.int64)
pil = np.asarray(Image.open(f"{fx}/rgb16.png").convert("RGB")).reshape(h, w * 3).astype(np.int64)
check(np.array_equal(rdml, np.rint(v / 257)), "16-bit RGB: rdmlearn = rint(v / 257)")
check(np.array_equal(pil, v >> 8), "16-bit RGB: Pillow convert('RGB') = v >> 8")
d = np.abs(rdml - pil)
check(d.max() == 1 and d.sum() > 0, f"16-bit RGB: rdmlearn and Pillow differ by at most 1 ({(d > 0).sum()} of {d.size} samples differ)")
# 16-bit gray: Pillow opens mode I and clips on conversion
v, w, h, ch = raw16(f"{fx}/gray16.png")
im = Image.open(f"{fx}/gray16.png")
rdml = np.fromfile(f"{fx}/gray16.bin", np.uint8)[: w * h].reshape(h, w).astype(np.int64)
check(im.mode in ("I", "I;16", "I;16B") and np.array_equal(np.asarray(im).astype(np.int64), v), f"16-bit gray: Pillow opens mode {im.mode} with the raw values")
check(np.array_equal(rdml, np.rint(v / 257)), "16-bit gray: rdmlearn = rint(v / 257)")
check(np.array_equal(np.asarray(im.convert("L")).astype(np.int64), np.minimum(v, 255)), "16-bit gray: Pillow convert('L') = min(v, 255)")
rgb = np.asarray(im.convert("RGB")).astype(np.int64)
check(all(np.array_equal(rgb[..., c], np.minimum(v, 255)) for c in range(3)), "16-bit gray: Pillow convert('RGB') = min(v, 255) in each channel")
print(f"16-bit gray: {(np.minimum(v, 255) == 255).sum()} of {v.size} pixels white in Pillow, {(rdml == 255).sum()} in rdmlearn")
# the documentation says so
text = " ".join(open(doc).read().split())
for phrase in ("rint(v / 257)", "v >> 8", "min(v, 255)", "16-bit"):
    check(phrase in text, f"docs/embed.md states '{phrase}'")
sys.exit(1 if fails else 0)
PY
