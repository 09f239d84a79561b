#!/usr/bin/python3
"""PyTorch reference of the CLIP ViT image tower, written from the published architecture
(Hugging Face CLIPVisionModelWithProjection.get_image_features; OpenAI clip/model.py
VisionTransformer), used by tools/make_embed_fixtures.py and bench/embed/.

- CLIPVisionRef(state_dict in Hugging Face naming, heads, act, eps): forward(pixel_values)
  -> (features, hidden_states) where hidden_states[0] is the output of pre_layrnorm and
  hidden_states[k] the output of layer k (as HF's output_hidden_states).
- hf_to_openai(sd): the same weights in OpenAI naming (visual.*; in_proj fused q|k|v,
  proj transposed).
- VisionTransformer(input_resolution, patch_size, width, layers, heads, output_dim): the
  OpenAI class's constructor signature (nn.MultiheadAttention, quick_gelu), so that code
  written for OpenAI's class (bench/embed/vit_random.py, bench/embed/anchor.py) runs on it.
- preprocess(pil_rgb, size): CLIPImageProcessor (Pillow bicubic resize of the short side,
  int() long side, centre crop with floor, /255, CLIP mean/std), channel-first float32.
- load_openai_state(vt, oa): copy OpenAI-named weights into a VisionTransformer.
- vitgen(seed, **arch) -> (HF state dict of float32 numpy arrays, checksum): the
  reproducible random-weight generator "rdml-vitgen-1" (described below; the C twin is in
  tests/unit/test_embed_clip.c), used by tools/make_embed_vitb32_fixture.py and
  bench/embed/run.sh for full ViT-B/32-shape models that are never committed;
  save_safetensors(path, tensors) writes such a dict.
"""
import math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(im, size):
    w, h = im.size
    if w <= h:
        ow, oh = size, int(size * h / w)
    else:
        ow, oh = int(size * w / h), size
    r = im.convert("RGB").resize((ow, oh), Image.BICUBIC)
    a = np.asarray(r)
    top, left = (oh - size) // 2, (ow - size) // 2
    a = a[top:top + size, left:left + size]
    x = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return x.transpose(2, 0, 1).astype(np.float32), a


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


class CLIPVisionRef(nn.Module):
    """The HF forward pass on a state dict in HF naming (float64 or float32 tensors)."""

    def __init__(self, sd, heads, act="quick_gelu", eps=1e-5):
        super().__init__()
        self.sd, self.heads, self.eps = sd, heads, eps
        self.act = quick_gelu if act == "quick_gelu" else F.gelu
        self.layers = 0
        while f"vision_model.encoder.layers.{self.layers}.layer_norm1.weight" in sd:
            self.layers += 1

    def ln(self, x, name):
        return F.layer_norm(x, x.shape[-1:], self.sd[name + ".weight"], self.sd[name + ".bias"], self.eps)

    def lin(self, x, name):
        return F.linear(x, self.sd[name + ".weight"], self.sd.get(name + ".bias"))

    def forward(self, px):
        sd, p = self.sd, "vision_model."
        w = sd[p + "embeddings.patch_embedding.weight"]
        D, patch = w.shape[0], w.shape[-1]
        x = F.conv2d(px, w, stride=patch)                      # B, D, g, g
        x = x.flatten(2).transpose(1, 2)                       # B, g*g, D (raster order)
        cls = sd[p + "embeddings.class_embedding"].expand(x.shape[0], 1, D)
        x = torch.cat([cls, x], 1) + sd[p + "embeddings.position_embedding.weight"]
        x = self.ln(x, p + "pre_layrnorm")
        hidden = [x]
        B, T, _ = x.shape
        H = self.heads; hd = D // H
        for l in range(self.layers):
            q = p + f"encoder.layers.{l}."
            r = x
            y = self.ln(x, q + "layer_norm1")
            Q = self.lin(y, q + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2) * hd ** -0.5
            K = self.lin(y, q + "self_attn.k_proj").view(B, T, H, hd).transpose(1, 2)
            V = self.lin(y, q + "self_attn.v_proj").view(B, T, H, hd).transpose(1, 2)
            A = torch.softmax(Q @ K.transpose(-1, -2), dim=-1)
            y = (A @ V).transpose(1, 2).reshape(B, T, D)
            x = r + self.lin(y, q + "self_attn.out_proj")
            r = x
            y = self.ln(x, q + "layer_norm2")
            y = self.lin(self.act(self.lin(y, q + "mlp.fc1")), q + "mlp.fc2")
            x = r + y
            hidden.append(x)
        pooled = self.ln(x[:, 0], p + "post_layernorm")
        return F.linear(pooled, sd["visual_projection.weight"]), hidden


def hf_to_openai(sd):
    o, p = {}, "vision_model."
    o["visual.conv1.weight"] = sd[p + "embeddings.patch_embedding.weight"]
    o["visual.class_embedding"] = sd[p + "embeddings.class_embedding"]
    o["visual.positional_embedding"] = sd[p + "embeddings.position_embedding.weight"]
    for a, b in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for s in ("weight", "bias"):
            o[f"visual.{a}.{s}"] = sd[f"{p}{b}.{s}"]
    l = 0
    while f"{p}encoder.layers.{l}.layer_norm1.weight" in sd:
        q, r = f"{p}encoder.layers.{l}.", f"visual.transformer.resblocks.{l}."
        for s in ("weight", "bias"):
            o[r + "ln_1." + s] = sd[q + "layer_norm1." + s]
            o[r + "ln_2." + s] = sd[q + "layer_norm2." + s]
            o[r + "attn.out_proj." + s] = sd[q + "self_attn.out_proj." + s]
            o[r + "mlp.c_fc." + s] = sd[q + "mlp.fc1." + s]
            o[r + "mlp.c_proj." + s] = sd[q + "mlp.fc2." + s]
        o[r + "attn.in_proj_weight"] = torch.cat([sd[q + f"self_attn.{k}_proj.weight"] for k in "qkv"], 0)
        o[r + "attn.in_proj_bias"] = torch.cat([sd[q + f"self_attn.{k}_proj.bias"] for k in "qkv"], 0)
        l += 1
    o["visual.proj"] = sd["visual_projection.weight"].t().contiguous()
    return o


# ---- OpenAI's VisionTransformer, same constructor, for the throughput anchor ----
class _Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, h)
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.c_proj(quick_gelu(self.c_fc(self.ln_2(x))))


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        s = width ** -0.5
        self.class_embedding = nn.Parameter(s * torch.randn(width))
        self.positional_embedding = nn.Parameter(s * torch.randn((input_resolution // patch_size) ** 2 + 1, width))
        self.ln_pre, self.ln_post = nn.LayerNorm(width), nn.LayerNorm(width)
        self.blocks = nn.Sequential(*[_Block(width, heads) for _ in range(layers)])
        self.proj = nn.Parameter(s * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        c = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([c, x], 1) + self.positional_embedding)
        x = self.blocks(x.permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0]) @ self.proj


# ---- reproducible random weights (generator "rdml-vitgen-1"; tests/unit/test_embed_clip.c
# implements the same in C, so ~350 MB of ViT-B/32 weights never need to be committed) ----
#
# Tensors are generated in Hugging Face naming, in the order of vitgen_tensors(). For a
# tensor NAME with n values and a 64-bit SEED:
#   key    = mix64(SEED ^ fnv1a64(NAME))
#   u_i    = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)   (i = 0..n-1, uint64 wrap-around)
#   x_i    = float32(u_i >> 40) * 2^-23 - 1              (exact: a multiple of 2^-23 in [-1, 1))
#   w_i    = float32(base + x_i * bound)                 (bound a power of two: the product
#                                                          is exact, one rounding, no FMA issue)
# mix64 is SplitMix64's finaliser. base / bound by name: LayerNorm weights 1 / 2^-3, LayerNorm
# biases 0 / 2^-4, class and position embeddings 0 / 2^-4, fc2 and the patch convolution
# (fan-in 3072) 0 / 2^-6, every other linear weight and bias (fan-in 768) 0 / 2^-5: the
# power of two nearest PyTorch's default bound 1 / sqrt(fan_in).
# Checksum of a whole model: sum over tensors and i of mix64(key ^ ((i << 32) | bits(w_i)))
# modulo 2^64 (bits = the float32's IEEE bit pattern).
_M64 = (1 << 64) - 1
_GAMMA = np.uint64(0x9E3779B97F4A7C15)


def _mix64_np(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & _M64
    return h


def vitgen_scale(name):
    """(base, bound) of a tensor, see above."""
    if "norm" in name:
        return (1.0, 2.0 ** -3) if name.endswith(".weight") else (0.0, 2.0 ** -4)
    if "class_embedding" in name or "position_embedding" in name:
        return 0.0, 2.0 ** -4
    if ".fc2." in name or "patch_embedding" in name:
        return 0.0, 2.0 ** -6
    return 0.0, 2.0 ** -5


def vitgen_tensors(image=224, patch=32, width=768, layers=12, mlp=3072, proj=512):
    """[(HF name, shape)] in generation order."""
    T = (image // patch) ** 2 + 1
    p = "vision_model."
    t = [(p + "embeddings.class_embedding", (width,)),
         (p + "embeddings.patch_embedding.weight", (width, 3, patch, patch)),
         (p + "embeddings.position_embedding.weight", (T, width)),
         (p + "pre_layrnorm.weight", (width,)), (p + "pre_layrnorm.bias", (width,))]
    for l in range(layers):
        q = f"{p}encoder.layers.{l}."
        t += [(q + "layer_norm1.weight", (width,)), (q + "layer_norm1.bias", (width,))]
        for k in ("q_proj", "k_proj", "v_proj", "out_proj"):
            t += [(q + f"self_attn.{k}.weight", (width, width)), (q + f"self_attn.{k}.bias", (width,))]
        t += [(q + "layer_norm2.weight", (width,)), (q + "layer_norm2.bias", (width,)),
              (q + "mlp.fc1.weight", (mlp, width)), (q + "mlp.fc1.bias", (mlp,)),
              (q + "mlp.fc2.weight", (width, mlp)), (q + "mlp.fc2.bias", (width,))]
    t += [(p + "post_layernorm.weight", (width,)), (p + "post_layernorm.bias", (width,)),
          ("visual_projection.weight", (proj, width))]
    return t


def vitgen_tensor(seed, name, shape):
    """One tensor (float32 numpy array) and its checksum term (python int)."""
    n = int(np.prod(shape))
    key = _mix64((seed & _M64) ^ fnv1a64(name))
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        u = _mix64_np(np.uint64(key) + (i + np.uint64(1)) * _GAMMA)
        x = (u >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1.0)
        base, bound = vitgen_scale(name)
        w = (np.float32(base) + x * np.float32(bound)).astype(np.float32)
        h = _mix64_np(np.uint64(key) ^ ((i << np.uint64(32)) | w.view(np.uint32).astype(np.uint64)))
        cs = int(h.sum(dtype=np.uint64))
    return w.reshape(shape), cs


def vitgen(seed, **arch):
    """(dict HF name -> float32 array, checksum) of the generated model."""
    sd, cs = {}, 0
    for name, shape in vitgen_tensors(**arch):
        sd[name], c = vitgen_tensor(seed, name, shape)
        cs = (cs + c) & _M64
    return sd, cs


def save_safetensors(path, tensors, metadata=None):
    """Write {name: numpy array} as safetensors (F32 / F16 / I64 by dtype), in dict order."""
    import json
    codes = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}
    hdr, off = {"__metadata__": metadata or {"format": "pt"}}, 0
    for name, v in tensors.items():
        nb = v.size * v.dtype.itemsize
        hdr[name] = {"dtype": codes[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for v in tensors.values():
            f.write(np.ascontiguousarray(v, v.dtype.newbyteorder("<")).tobytes())


def load_openai_state(vt, oa):
    """Copy a state dict in OpenAI naming (hf_to_openai) into a VisionTransformer above."""
    with torch.no_grad():
        t = lambda k: torch.as_tensor(oa[k])  # noqa: E731
        vt.conv1.weight.copy_(t("visual.conv1.weight")); vt.class_embedding.copy_(t("visual.class_embedding"))
        vt.positional_embedding.copy_(t("visual.positional_embedding")); vt.proj.copy_(t("visual.proj"))
        for a in ("ln_pre", "ln_post"):
            getattr(vt, a).weight.copy_(t(f"visual.{a}.weight")); getattr(vt, a).bias.copy_(t(f"visual.{a}.bias"))
        for l, blk in enumerate(vt.blocks):
            r = f"visual.transformer.resblocks.{l}."
            blk.attn.in_proj_weight.copy_(t(r + "attn.in_proj_weight")); blk.attn.in_proj_bias.copy_(t(r + "attn.in_proj_bias"))
            blk.attn.out_proj.weight.copy_(t(r + "attn.out_proj.weight")); blk.attn.out_proj.bias.copy_(t(r + "attn.out_proj.bias"))
            for a, b in (("ln_1", "ln_1"), ("ln_2", "ln_2"), ("c_fc", "mlp.c_fc"), ("c_proj", "mlp.c_proj")):
                getattr(blk, a).weight.copy_(t(r + b + ".weight")); getattr(blk, a).bias.copy_(t(r + b + ".bias"))
