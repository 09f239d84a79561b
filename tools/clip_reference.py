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
  OpenAI class's constructor signature (nn.MultiheadAttention, quick_gelu), so that
  /work/shared/bench/vit_torch.py can load this file as its CLIP_MODEL_PY.
- preprocess(pil_rgb, size): CLIPImageProcessor (Pillow bicubic resize of the short side,
  int() long side, centre crop with floor, /255, CLIP mean/std), channel-first float32.
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
