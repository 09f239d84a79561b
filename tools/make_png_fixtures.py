#!/usr/bin/python3
"""Regenerate tests/fixtures/png/ (the fixtures of tests/unit/test_png.c).

Run:  /usr/bin/python3 tools/make_png_fixtures.py [OUTDIR]   (default tests/fixtures/png)

Everything is deterministic (numpy RandomState(20230) pixels, zlib level 9), so rerunning
reproduces the committed files byte for byte.

Images Pillow can write are written by Pillow: 8-bit gray 'L', gray+alpha 'LA', 'RGB',
'RGBA', palette 'P' with and without a tRNS chunk, 1-bit gray ('1'), 16-bit gray ('I;16').
Pillow cannot write 2/4-bit gray, 16-bit RGB or Adam7-interlaced PNGs, so those are written
by the small PNG encoder below (stored rows, filter 0, zlib) and then decoded by Pillow to
check the encoder (2/4-bit gray and interlaced images must decode to the source pixels;
16-bit RGB must decode, in Pillow's own 8-bit reduction, to the high bytes).

Expected pixels come from Pillow: the file's own channels after palette expansion
("native"; Pillow's convert('RGBA'/'RGB'/'LA'/'L') of the decoded image), and the conversion
of that native image to 1, 2, 3 and 4 channels with Pillow's convert('L'/'LA'/'RGB'/'RGBA')
(L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16). The one exception is 16-bit data: libpng's
png_set_scale_16 rounds (v / 257, to nearest), which Pillow does not do, so the native 8-bit
values are computed here with numpy as rint(v / 257) and then converted by Pillow.

Output, per fixture NAME: NAME.png and NAME.bin = the expected pixels for want_channels
1, 2, 3, 4 concatenated (h*w*c bytes each, row-major, top row first); manifest.txt lists
"NAME W H NATIVE_CHANNELS" per line. Error fixtures: truncated.png (a valid RGB PNG cut in
its IDAT), crc.png (a bit of the IDAT's stored CRC flipped), corrupt_idat.png (a bit of the
compressed IDAT data flipped: zlib fails), notpng.txt.png (a text file).
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

MODE_OF_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def chunk(tag, data):
    c = struct.pack(">I", len(data)) + tag + data
    return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def pack_row(row, bit_depth):
    """row: 1-D array of samples (already interleaved channels)."""
    if bit_depth == 16:
        return row.astype(">u2").tobytes()
    if bit_depth == 8:
        return row.astype(np.uint8).tobytes()
    per = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(row), per):
        byte = 0
        for k in range(per):
            v = int(row[i + k]) if i + k < len(row) else 0
            byte |= v << (8 - bit_depth * (k + 1))
        out.append(byte)
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def encode_png(px, bit_depth, color_type, interlace=False):
    """Minimal PNG encoder: px is (h, w) or (h, w, c) of samples; filter 0 on every row."""
    if px.ndim == 2:
        px = px[:, :, None]
    h, w, _ = px.shape
    raw = bytearray()
    if not interlace:
        for y in range(h):
            raw += b"\x00" + pack_row(px[y].reshape(-1), bit_depth)
    else:
        for (x0, y0, dx, dy) in ADAM7:
            sub = px[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for y in range(sub.shape[0]):
                raw += b"\x00" + pack_row(sub[y].reshape(-1), bit_depth)
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def pillow_png(im, **kw):
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=9, **kw)
    return buf.getvalue()


def native_from_pillow(im):
    """Pillow's decoded image as an 8-bit array with the channels the reader returns for want 0."""
    if im.mode == "P":
        has_trns = "transparency" in im.info
        return np.array(im.convert("RGBA" if has_trns else "RGB"))
    if im.mode == "1":
        return np.array(im.convert("L"))
    if im.mode in ("L", "LA", "RGB", "RGBA"):
        return np.array(im)
    raise ValueError("unexpected Pillow mode " + im.mode)


def conversions(native):
    """Expected bytes for want_channels 1, 2, 3, 4, each converted by Pillow."""
    c = 1 if native.ndim == 2 else native.shape[2]
    src = Image.fromarray(native if c > 1 else native.reshape(native.shape[:2]),
                          MODE_OF_CHANNELS[c])
    out = b""
    for want in (1, 2, 3, 4):
        conv = np.ascontiguousarray(np.array(src.convert(MODE_OF_CHANNELS[want])), dtype=np.uint8)
        out += conv.tobytes()
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "png")
    os.makedirs(outdir, exist_ok=True)
    rs = np.random.RandomState(20230)
    manifest = []

    def emit(name, png_bytes, native):
        with open(os.path.join(outdir, name + ".png"), "wb") as f:
            f.write(png_bytes)
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(conversions(native))
        h, w = native.shape[:2]
        c = 1 if native.ndim == 2 else native.shape[2]
        manifest.append("%s %d %d %d" % (name, w, h, c))

    def pillow_fixture(name, im, **kw):
        data = pillow_png(im, **kw)
        back = Image.open(io.BytesIO(data))
        back.load()
        emit(name, data, native_from_pillow(back))

    W, H = 7, 5
    pillow_fixture("gray8", Image.fromarray(rs.randint(0, 256, (H, W)).astype(np.uint8), "L"))
    pillow_fixture("gray_alpha8", Image.fromarray(rs.randint(0, 256, (H, W, 2)).astype(np.uint8), "LA"))
    pillow_fixture("rgb8", Image.fromarray(rs.randint(0, 256, (H, W, 3)).astype(np.uint8), "RGB"))
    pillow_fixture("rgba8", Image.fromarray(rs.randint(0, 256, (H, W, 4)).astype(np.uint8), "RGBA"))
    # palette of 6 colours, entries 1 and 4 partly transparent via tRNS
    pal = rs.randint(0, 256, (6, 3)).astype(np.uint8)
    idx = rs.randint(0, 6, (H, W)).astype(np.uint8)
    p = Image.fromarray(idx, "P")
    p.putpalette(pal.reshape(-1).tolist())
    pillow_fixture("palette", p, bits=8)
    pillow_fixture("palette_trns", p, bits=8, transparency=bytes([255, 0, 255, 255, 90, 255]))
    # 1-bit gray (Pillow mode '1')
    bits = Image.fromarray((rs.randint(0, 2, (H, W)) * 255).astype(np.uint8), "L").convert("1")
    pillow_fixture("gray1", bits)

    # 16-bit gray written by Pillow from 'I;16'; native = libpng's rounded reduction
    g16 = rs.randint(0, 65536, (H, W)).astype(np.uint16)
    g16[0, :4] = [0, 65535, 128, 129]  # around a rounding boundary: 128/257 < .5 < 129/257
    im16 = Image.frombytes("I;16", (W, H), g16.astype("<u2").tobytes())
    data = pillow_png(im16)
    back = np.array(Image.open(io.BytesIO(data)), dtype=np.int64)
    assert (back == g16).all(), "Pillow did not round-trip the 16-bit gray image"
    emit("gray16", data, np.rint(g16 / 257.0).astype(np.uint8))

    # 16-bit RGB (own encoder); Pillow reduces 16-bit RGB by taking the high byte
    rgb16 = rs.randint(0, 65536, (H, W, 3)).astype(np.uint16)
    data = encode_png(rgb16, 16, 2)
    back = np.array(Image.open(io.BytesIO(data)).convert("RGB"))
    assert (back == (rgb16 >> 8)).all(), "own 16-bit RGB encoder does not decode in Pillow"
    emit("rgb16", data, np.rint(rgb16 / 257.0).astype(np.uint8))

    # 2- and 4-bit gray (own encoder), decoded by Pillow (which scales like libpng's expand)
    for bd in (2, 4):
        v = rs.randint(0, 1 << bd, (H, W)).astype(np.uint8)
        data = encode_png(v, bd, 0)
        back = Image.open(io.BytesIO(data))
        back.load()
        nat = native_from_pillow(back)
        assert (nat == v.astype(np.int64) * (255 // ((1 << bd) - 1))).all()
        emit("gray%d" % bd, data, nat)

    # Adam7-interlaced RGB and gray+alpha, 11 x 9 so every pass is non-empty
    for name, c, ct in (("interlaced_rgb", 3, 2), ("interlaced_la", 2, 4)):
        src = rs.randint(0, 256, (9, 11, c)).astype(np.uint8)
        data = encode_png(src, 8, ct, interlace=True)
        back = Image.open(io.BytesIO(data))
        back.load()
        assert back.info.get("interlace") == 1
        nat = native_from_pillow(back)
        assert (nat == src).all(), "own interlaced encoder does not decode in Pillow"
        emit(name, data, nat)

    # error cases
    good = pillow_png(Image.fromarray(rs.randint(0, 256, (H, W, 3)).astype(np.uint8), "RGB"))
    idat = good.index(b"IDAT")
    with open(os.path.join(outdir, "truncated.png"), "wb") as f:
        f.write(good[: idat + 4 + 10])  # signature, IHDR, and 10 bytes of IDAT data
    idat_len = struct.unpack(">I", good[idat - 4: idat])[0]
    bad = bytearray(good)
    bad[idat + 4 + idat_len] ^= 0x40  # first byte of the IDAT's stored CRC: data intact
    with open(os.path.join(outdir, "crc.png"), "wb") as f:
        f.write(bytes(bad))
    bad = bytearray(good)
    bad[idat + 4 + 5] ^= 0x40  # inside the compressed data: zlib fails before the CRC check
    with open(os.path.join(outdir, "corrupt_idat.png"), "wb") as f:
        f.write(bytes(bad))
    with open(os.path.join(outdir, "notpng.txt.png"), "wb") as f:
        f.write(b"this is a text file, not a PNG image\n")

    with open(os.path.join(outdir, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")


if __name__ == "__main__":
    main()
