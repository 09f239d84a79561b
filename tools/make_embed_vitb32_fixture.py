#!/usr/bin/python3
"""Regenerate the full ViT-B/32-shape CLIP fixture (tests/fixtures/embed/vitb32_*), checked by
`test_embed_clip --vitb32` (run by tests/cli/test_embed_vitb32.sh).

Run:  /usr/bin/python3 tools/make_embed_vitb32_fixture.py [--weights FILE] [OUTDIR]
      (default OUTDIR tests/fixtures/embed; needs numpy, Pillow and python3-torch)

The ~350 MB of weights are not committed: tools/clip_reference.py's generator
"rdml-vitgen-1" (SplitMix64 counter hash per tensor name, see there) makes them from SEED in
Hugging Face naming, and test_embed_clip regenerates the same values in C. Committed:
- vitb32.txt: the seed, the architecture, the value count and the 64-bit checksum of the
  generated weights (so a generator mismatch is reported as such, not as a forward error);
- vitb32_ref.npy: float64 (3, 512) get_image_features of images img0..img2.png (preprocessed
  by CLIPImageProcessor at 224, tools/clip_reference.py preprocess) by the float64 PyTorch
  reference forward (CLIPVisionRef, quick_gelu, eps 1e-5, 12 heads);
- vitb32_ref_l6mean.npy: float64 (3, 768) mean of the patch tokens of hidden state 6.
The script also runs the reference in float32 and the OpenAI-layout module
(VisionTransformer, nn.MultiheadAttention) on the same weights and prints their deviations
from the float64 result, to put the C test's tolerance (1e-4 relative) in context.
--weights FILE also writes the generated model as an F32 safetensors in HF naming
(bench/embed/run.sh uses this).
Deterministic: no random state besides the seed below.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_reference as cr  # noqa: E402

SEED = 20260101
ARCH = dict(image=224, patch=32, width=768, layers=12, mlp=3072, proj=512)
HEADS = 12
args = sys.argv[1:]
weights = None
if args[:1] == ["--weights"]:
    weights, args = args[1], args[2:]
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "embed")
OUT = args[0] if args else FIX

os.makedirs(OUT, exist_ok=True)
sd, cs = cr.vitgen(SEED, **ARCH)
nvals = sum(v.size for v in sd.values())
print(f"generated {len(sd)} tensors, {nvals} values, checksum {cs:016x}")
if weights:
    cr.save_safetensors(weights, sd, {"format": "pt", "made_by": f"rdml-vitgen-1 seed {SEED}"})
    print(f"wrote {weights}")

pxs = []
for i in range(3):
    x, _ = cr.preprocess(Image.open(os.path.join(FIX, f"img{i}.png")), ARCH["image"])
    pxs.append(x)
X = torch.from_numpy(np.array(pxs))


def rel(a, b):  # max |a - b| / max |b| per row, worst row (as the C test measures)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float((np.abs(a - b).max(1) / np.abs(b).max(1)).max())


with torch.no_grad():
    sd64 = {k: torch.from_numpy(v).double() for k, v in sd.items()}
    feats, hid = cr.CLIPVisionRef(sd64, HEADS, "quick_gelu", 1e-5)(X.double())
    l6 = hid[6][:, 1:].mean(1)
    sd32 = {k: torch.from_numpy(v) for k, v in sd.items()}
    f32, _ = cr.CLIPVisionRef(sd32, HEADS, "quick_gelu", 1e-5)(X)
    print(f"float32 PyTorch reference vs float64: {rel(f32.numpy(), feats.numpy()):.2e} relative")
    oa = cr.hf_to_openai(sd32)
    vt = cr.VisionTransformer(ARCH["image"], ARCH["patch"], ARCH["width"], ARCH["layers"], HEADS, ARCH["proj"]).eval()
    cr.load_openai_state(vt, oa)
    print("images differ: " + ", ".join(f"{rel(feats[i:i + 1].numpy(), feats[j:j + 1].numpy()):.2f}"
                                        for i, j in ((0, 1), (0, 2), (1, 2))) + " relative (pairs 01 02 12)")
    print(f"OpenAI-layout module (float32, nn.MultiheadAttention) vs float64: "
          f"{rel(vt(X).numpy(), feats.numpy()):.2e} relative")

np.save(os.path.join(OUT, "vitb32_ref.npy"), feats.numpy())
np.save(os.path.join(OUT, "vitb32_ref_l6mean.npy"), l6.numpy())
with open(os.path.join(OUT, "vitb32.txt"), "w") as f:
    f.write("# tools/make_embed_vitb32_fixture.py: generator rdml-vitgen-1 (tools/clip_reference.py)\n")
    f.write(f"seed {SEED}\n")
    for k, v in ARCH.items():
        f.write(f"{k} {v}\n")
    f.write(f"heads {HEADS}\nvalues {nvals}\nchecksum {cs:016x}\n")
print(f"wrote {OUT}/vitb32_ref.npy, vitb32_ref_l6mean.npy, vitb32.txt; "
      f"feature norms {np.linalg.norm(feats.numpy(), axis=1).round(3).tolist()}")
