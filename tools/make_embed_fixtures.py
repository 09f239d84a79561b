#!/usr/bin/python3
"""Regenerate tests/fixtures/embed/ (the fixtures of tests/unit/test_embed*.c).

Run:  /usr/bin/python3 tools/make_embed_fixtures.py [OUTDIR]   (default tests/fixtures/embed)
Needs numpy, Pillow and python3-torch (the committed fixtures let the test suite run
without torch). Deterministic: numpy RandomState(4004) images, torch.manual_seed(4004).

Images (img0..img4.png): smooth random fields plus oriented gratings and a bright square,
of different sizes and aspect ratios (landscape, portrait, square, gray, one smaller than
the CLIP input so it is upsampled). manifest.txt: "NAME W H CHANNELS" per line.

- resize.bin: Pillow Image.resize of the RGB of images 0, 1 and 4 to each (OW, OH, FILTER) of
  RESIZES (FILTER 0 BOX, 1 BILINEAR, 2 BICUBIC), concatenated uint8 (oh*ow*3 each).
- pixels.npy: float32 (5, 16*16): convert('L').resize((16,16), BILINEAR), min-max.
- gabor.npy: float32 (5, 512): the Gabor energy model of docs/embed.md re-implemented in
  numpy in double precision with the full 2-D complex kernel (not the separable form C uses).
- clip_hf/model.safetensors (F32) + config.json, clip_bf16/model.safetensors (BF16) +
  config.json, clip_openai/model.safetensors (F16, OpenAI naming, no config.json): one TINY
  random CLIP vision tower (image 32, patch 8, width 16, 2 layers, 2 heads, MLP 64, proj 16)
  whose weights are rounded to values exactly representable in BF16 and F16, so all three
  files hold the same model. Text-tower-like extras (logit_scale, position_ids int64) are
  included to check that they are ignored.
- clip_crop.bin: uint8, per image the 32x32x3 resized + centre-cropped RGB (Pillow).
- clip_ref.npy: float64 (5, 16) get_image_features (quick_gelu) from tools/clip_reference.py
  run in float64 on the preprocessed inputs; clip_ref_gelu.npy: the same with exact GELU;
  clip_ref_l1cls.npy (5, 16): CLS token of hidden state 1; clip_ref_l2mean.npy: mean of the
  patch tokens of hidden state 2; clip_ref_l0cls.npy: CLS of hidden state 0.
The full ViT-B/32-shape fixture (vitb32*) comes from tools/make_embed_vitb32_fixture.py.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_reference as cr  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "embed")
os.makedirs(OUT, exist_ok=True)
rs = np.random.RandomState(4004)

SIZES = [(40, 30, 3), (27, 45, 3), (48, 48, 3), (50, 50, 1), (20, 24, 3)]
RESIZES = [(16, 16, 1), (32, 24, 2), (13, 21, 2), (50, 35, 2), (32, 32, 0), (9, 40, 1), (45, 12, 2)]
RESIZE_IMAGES = (0, 1, 4)


def make_image(w, h, c):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for ch in range(3):
        f = rs.uniform(0.05, 0.5, 2); th = rs.uniform(0, np.pi)
        img[..., ch] = 128 + 70 * np.sin(f[0] * (xx * np.cos(th) + yy * np.sin(th)) + rs.uniform(0, 6))
        img[..., ch] += 30 * rs.randn(h, w)
    x0, y0 = rs.randint(0, w // 2), rs.randint(0, h // 2)
    img[y0:y0 + h // 3, x0:x0 + w // 3] = 240
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return Image.fromarray(img[..., 0] if c == 1 else img, "L" if c == 1 else "RGB")


images = []
with open(os.path.join(OUT, "manifest.txt"), "w") as man:
    for i, (w, h, c) in enumerate(SIZES):
        im = make_image(w, h, c)
        im.save(os.path.join(OUT, f"img{i}.png"), optimize=True)
        images.append(im)
        man.write(f"img{i} {w} {h} {c}\n")

FILTERS = [Image.BOX, Image.BILINEAR, Image.BICUBIC]
with open(os.path.join(OUT, "resize.bin"), "wb") as f:
    for i in RESIZE_IMAGES:
        for ow, oh, flt in RESIZES:
            im = images[i]
            f.write(np.asarray(im.convert("RGB").resize((ow, oh), FILTERS[flt])).tobytes())

pix = []
for im in images:
    a = np.asarray(im.convert("L").resize((16, 16), Image.BILINEAR)).astype(np.float64)
    lo, hi = a.min(), a.max()
    pix.append((a - lo) / (hi - lo) if hi > lo else np.zeros_like(a))
np.save(os.path.join(OUT, "pixels.npy"), np.array(pix, np.float32).reshape(len(images), -1))


def gabor(im):
    R, lam = 7, 4.0
    sig = 0.56 * lam
    t = np.arange(-R, R + 1)
    G = np.exp(-t ** 2 / (2 * sig ** 2)); G /= G.sum()
    feats = []
    g = im.convert("L")
    for s in range(4):
        M = 128 >> s
        a = np.asarray(g.resize((M, M), Image.BILINEAR)).astype(np.float64) / 255.0
        a -= a.mean()
        pad = np.zeros((M + 2 * R, M + 2 * R)); pad[R:R + M, R:R + M] = a
        for o in range(8):
            th = o * np.pi / 8
            kx, ky = 2 * np.pi / lam * np.cos(th), 2 * np.pi / lam * np.sin(th)
            DY, DX = np.meshgrid(t, t, indexing="ij")
            K = G[:, None] * G[None, :] * np.exp(1j * (kx * DX + ky * DY))
            r = np.zeros((M, M), complex)
            for iy, dy in enumerate(t):
                for ix, dx in enumerate(t):
                    r += K[iy, ix] * pad[R + dy:R + dy + M, R + dx:R + dx + M]
            amp = np.abs(r)
            c = M // 4
            feats.append(amp.reshape(4, c, 4, c).mean(axis=(1, 3)).ravel())
    return np.concatenate(feats)


np.save(os.path.join(OUT, "gabor.npy"), np.array([gabor(im) for im in images], np.float32))

# ---- tiny CLIP ----
torch.manual_seed(4004)
S, P, D, L, H, MLP, PROJ = 32, 8, 16, 2, 2, 64, 16
T = (S // P) ** 2 + 1


def rnd(*shape, scale=0.3, offset=0.0):
    w = (offset + scale * torch.randn(*shape)).to(torch.bfloat16).to(torch.float32)
    w[w.abs() < 2 ** -14] = 0.0  # keep F16-exact (no F16 subnormals)
    return w


sd = {}
p = "vision_model."
sd[p + "embeddings.class_embedding"] = rnd(D)
sd[p + "embeddings.patch_embedding.weight"] = rnd(D, 3, P, P, scale=0.1)
sd[p + "embeddings.position_embedding.weight"] = rnd(T, D)
for n in ("pre_layrnorm", "post_layernorm"):
    sd[p + n + ".weight"] = rnd(D, scale=0.2, offset=1.0); sd[p + n + ".bias"] = rnd(D, scale=0.1)
for l in range(L):
    q = f"{p}encoder.layers.{l}."
    for n in ("layer_norm1", "layer_norm2"):
        sd[q + n + ".weight"] = rnd(D, scale=0.2, offset=1.0); sd[q + n + ".bias"] = rnd(D, scale=0.1)
    for k in "qkvo":
        nm = "out_proj" if k == "o" else f"{k}_proj"
        sd[q + f"self_attn.{nm}.weight"] = rnd(D, D, scale=0.4); sd[q + f"self_attn.{nm}.bias"] = rnd(D, scale=0.1)
    sd[q + "mlp.fc1.weight"] = rnd(MLP, D, scale=0.4); sd[q + "mlp.fc1.bias"] = rnd(MLP, scale=0.1)
    sd[q + "mlp.fc2.weight"] = rnd(D, MLP, scale=0.2); sd[q + "mlp.fc2.bias"] = rnd(D, scale=0.1)
sd["visual_projection.weight"] = rnd(PROJ, D, scale=0.3)
for k, v in sd.items():
    assert torch.equal(v.to(torch.float16).to(torch.float32), v), k


def save_st(path, tensors, dtype):
    hdr, blobs, off = {"__metadata__": {"format": "pt", "made_by": "tools/make_embed_fixtures.py"}}, [], 0
    for name in sorted(tensors):
        v = tensors[name]
        if v.dtype == torch.int64:
            b, dt = v.numpy().astype("<i8").tobytes(), "I64"
        elif dtype == "F32":
            b, dt = v.numpy().astype("<f4").tobytes(), "F32"
        elif dtype == "F16":
            b, dt = v.numpy().astype("<f2").tobytes(), "F16"
        else:
            b, dt = (v.numpy().astype("<f4").view("<u4") >> 16).astype("<u2").tobytes(), "BF16"
        hdr[name] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little")); f.write(h)
        for b in blobs:
            f.write(b)


extras = {"logit_scale": torch.tensor([2.6562]), p + "embeddings.position_ids": torch.arange(T).view(1, T)}
cfg = {"architectures": ["CLIPModel"], "vision_config": {"hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
       "num_attention_heads": H, "hidden_size": D, "image_size": S, "patch_size": P, "num_hidden_layers": L}}
save_st(os.path.join(OUT, "clip_hf", "model.safetensors"), {**sd, **extras}, "F32")
save_st(os.path.join(OUT, "clip_bf16", "model.safetensors"), sd, "BF16")
save_st(os.path.join(OUT, "clip_openai", "model.safetensors"), {**cr.hf_to_openai(sd), "logit_scale": extras["logit_scale"]}, "F16")
for d in ("clip_hf", "clip_bf16"):
    with open(os.path.join(OUT, d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)

pxs, crops = [], []
for im in images:
    x, a = cr.preprocess(im, S)
    pxs.append(x); crops.append(a)
with open(os.path.join(OUT, "clip_crop.bin"), "wb") as f:
    for a in crops:
        f.write(np.ascontiguousarray(a).tobytes())
sd64 = {k: v.double() for k, v in sd.items()}
X = torch.from_numpy(np.array(pxs)).double()
with torch.no_grad():
    feats, hid = cr.CLIPVisionRef(sd64, H, "quick_gelu")(X)
    feats_g, _ = cr.CLIPVisionRef(sd64, H, "gelu")(X)
np.save(os.path.join(OUT, "clip_ref.npy"), feats.numpy())
np.save(os.path.join(OUT, "clip_ref_gelu.npy"), feats_g.numpy())
np.save(os.path.join(OUT, "clip_ref_l0cls.npy"), hid[0][:, 0].numpy())
np.save(os.path.join(OUT, "clip_ref_l1cls.npy"), hid[1][:, 0].numpy())
np.save(os.path.join(OUT, "clip_ref_l2mean.npy"), hid[2][:, 1:].mean(1).numpy())
# the OpenAI-layout module must agree with the HF one (checks hf_to_openai's conventions)
oa = cr.hf_to_openai(sd64)
vt = cr.VisionTransformer(S, P, D, L, H, PROJ).double()
with torch.no_grad():
    vt.conv1.weight.copy_(oa["visual.conv1.weight"]); vt.class_embedding.copy_(oa["visual.class_embedding"])
    vt.positional_embedding.copy_(oa["visual.positional_embedding"]); vt.proj.copy_(oa["visual.proj"])
    for a in ("ln_pre", "ln_post"):
        getattr(vt, a).weight.copy_(oa[f"visual.{a}.weight"]); getattr(vt, a).bias.copy_(oa[f"visual.{a}.bias"])
    for l, blk in enumerate(vt.blocks):
        r = f"visual.transformer.resblocks.{l}."
        blk.attn.in_proj_weight.copy_(oa[r + "attn.in_proj_weight"]); blk.attn.in_proj_bias.copy_(oa[r + "attn.in_proj_bias"])
        blk.attn.out_proj.weight.copy_(oa[r + "attn.out_proj.weight"]); blk.attn.out_proj.bias.copy_(oa[r + "attn.out_proj.bias"])
        for a, b in (("ln_1", "ln_1"), ("ln_2", "ln_2"), ("c_fc", "mlp.c_fc"), ("c_proj", "mlp.c_proj")):
            getattr(blk, a).weight.copy_(oa[r + b + ".weight"]); getattr(blk, a).bias.copy_(oa[r + b + ".bias"])
    diff = (vt(X) - feats).abs().max().item()
assert diff < 1e-10, diff
print(f"wrote {OUT}; OpenAI-layout module agrees with the HF forward to {diff:.1e}")
