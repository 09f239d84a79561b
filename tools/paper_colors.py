#!/usr/bin/python3
"""The paper's colour classes and colour pair set, ported to numpy (the reference that
rdmlearn's pairs.set = colors is tested against: tests/unit/test_pairs.c through
tools/make_svm_fixtures.py, tests/cli/test_svm.sh directly).

  classify_images_rgb(images, threshold): each pixel goes to the nearest of pure red, green,
      blue (squared RGB distance; a pixel equally near two of them stays unclassified); the
      image's share of each colour is its count over all pixels; the image takes the colour
      with the LARGEST share (the first of red, green, blue on a tie, as np.argmax), and only
      when that share reaches `threshold`; else no class. Returns (classes, shares): int64
      (N,) with -1 = none, 0 = red, 1 = green, 2 = blue, and float64 (N, 3).
  color_pairs(classes, a, b): the first m images of colour a and the first m of colour b in
      image order (m the smaller count), listed a-images first, then every pair (s < t) of
      that list: all a-a pairs and b-b pairs in image order, and every a-b pair with the
      colour-a image first. int64 (P, 2).

usage: /usr/bin/python3 tools/paper_colors.py IMAGE_DIR THRESHOLD [A B]
  prints the class of every PNG of IMAGE_DIR (sorted names) and the pair count.
usage: /usr/bin/python3 tools/paper_colors.py --fixtures [OUTDIR]   (default tests/fixtures/svm)
  writes the fixtures of tests/unit/test_pairs.c (numpy default_rng(13), deterministic):
  color_px.npy int64 (40 x 24, 3): 40 images of 24 pixels (red-, green-, blue-ish pixels,
  pixels equally near red and green, gray pixels equally near all three) mixed so that at
  0.4 many images have two colours reaching the threshold or two equal largest shares;
  color_share.npy float64 (40, 3); color_class_040.npy int64 (40,) at threshold 0.4;
  color_pairs_040_rb.npy and color_pairs_040_gb.npy int64 (P, 2): color_pairs for
  (red, blue) and (green, blue).
"""
import os
import sys

import numpy as np

PURE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=np.int64)
NAMES = ("red", "green", "blue")


def color_shares(rgb):
    px = np.asarray(rgb).reshape(-1, 3).astype(np.int64)
    d = ((px[:, None, :] - PURE[None, :, :]) ** 2).sum(-1)  # (npix, 3)
    unique = (d == d.min(1)[:, None]).sum(1) == 1  # a tie between the nearest leaves it out
    nearest = d.argmin(1)
    counts = np.array([np.sum(unique & (nearest == c)) for c in range(3)], dtype=np.float64)
    return counts / px.shape[0]


def classify_images_rgb(images, threshold):
    shares = np.array([color_shares(im) for im in images], dtype=np.float64).reshape(-1, 3)
    classes = np.full(len(shares), -1, dtype=np.int64)
    for i, s in enumerate(shares):
        best = int(np.argmax(s))
        if s[best] >= threshold:
            classes[i] = best
    return classes, shares


def color_pairs(classes, a, b):
    A = [i for i, c in enumerate(classes) if c == a]
    B = [i for i, c in enumerate(classes) if c == b]
    m = min(len(A), len(B))
    imgs = A[:m] + B[:m]
    pairs = [(imgs[s], imgs[t]) for s in range(len(imgs)) for t in range(s + 1, len(imgs))]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def load_rgb(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"))


def fixtures(out):
    rng = np.random.default_rng(13)
    n, npix = 40, 24
    kinds = np.array([[230, 20, 10], [15, 220, 30], [10, 25, 240], [128, 128, 0], [100, 100, 100]])
    px = np.zeros((n, npix, 3), dtype=np.int64)
    for i in range(n):
        if i % 4 == 0:  # two equal largest shares (10 + 10) or two shares >= 0.4 (10 + 11)
            a, b = rng.choice(3, 2, replace=False)
            cnt = np.zeros(5, dtype=np.int64)
            cnt[a], cnt[b] = 10, 10 + (i % 8 == 4)
            cnt[4] = npix - cnt.sum()
        else:
            w = rng.dirichlet([1.0, 1.0, 1.0, 0.3, 0.3])
            cnt = np.floor(w * npix).astype(np.int64)
            cnt[4] += npix - cnt.sum()
        kind = np.repeat(np.arange(5), cnt)
        rng.shuffle(kind)
        px[i] = np.clip(kinds[kind] + np.where(kind[:, None] < 3, rng.integers(-8, 9, (npix, 3)), 0), 0, 255)
    cls, sh = classify_images_rgb([p for p in px], 0.4)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "color_px.npy"), px.reshape(-1, 3))
    np.save(os.path.join(out, "color_share.npy"), sh)
    np.save(os.path.join(out, "color_class_040.npy"), cls)
    np.save(os.path.join(out, "color_pairs_040_rb.npy"), color_pairs(cls, 0, 2))
    np.save(os.path.join(out, "color_pairs_040_gb.npy"), color_pairs(cls, 1, 2))
    last = np.array([max([c for c in range(3) if s[c] >= 0.4], default=-1) for s in sh])
    print("classes", np.bincount(cls + 1, minlength=4).tolist(), "images where the last colour "
          "reaching 0.4 is not the largest:", int((last != cls).sum()), "pairs rb",
          len(color_pairs(cls, 0, 2)), "gb", len(color_pairs(cls, 1, 2)))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--fixtures":
    fixtures(sys.argv[2] if len(sys.argv) > 2 else
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "svm"))
elif __name__ == "__main__":
    d, thr = sys.argv[1], float(sys.argv[2])
    a = NAMES.index(sys.argv[3]) if len(sys.argv) > 3 else 0
    b = NAMES.index(sys.argv[4]) if len(sys.argv) > 4 else 2
    names = sorted(n for n in os.listdir(d) if n.endswith(".png"))
    cls, sh = classify_images_rgb([load_rgb(os.path.join(d, n)) for n in names], thr)
    for n, c, s in zip(names, cls, sh):
        print(n, NAMES[c] if c >= 0 else "none", " ".join("%.4f" % x for x in s))
    print("pairs", len(color_pairs(cls, a, b)))
