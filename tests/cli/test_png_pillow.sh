#!/bin/bash
# Pillow reads the PNGs that rdml_png_write produces: the unit test binary writes one image of
# each channel count (1..4) plus its raw pixels, and Pillow must decode every file to exactly
# those pixels, in the matching mode (L, LA, RGB, RGBA).
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
