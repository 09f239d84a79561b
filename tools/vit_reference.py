#!/usr/bin/env python3
"""Reference features for the zoo's vision transformers (tests/cli/test_embed_vit.sh,
bench/embed).

    /usr/bin/python3 tools/vit_reference.py OUT ARCH LAYERS PNG... [--depth N] [--width D]
        [--registers R] [--pos-grid M] [--seed S] [--pth]

ARCH vit_b_16: torchvision 0.14's own model (torchvision.models.vit_b_16, random weights,
small random biases, LayerNorm weights randomised), its ViT_B_16_Weights transform (Resize
256 bilinear, CenterCrop 224, ImageNet mean/std); --depth N keeps the first N encoder layers.

ARCH dinov2: DinoV2 below, a port of facebookresearch/dinov2's DinoVisionTransformer
(vision_transformer.py, layers/{patch_embed,attention,block,layer_scale,mlp}.py) written for
this test from the published code: the publisher's tensor names (patch_embed.proj, cls_token,
pos_embed, register_tokens, mask_token, blocks.K.{norm1, attn.qkv, attn.proj, ls1.gamma,
norm2, mlp.fc1, mlp.fc2, ls2.gamma}, norm), LayerNorm eps 1e-6, exact GELU, layer scale,
registers inserted after the class token once the position embedding is added, and
interpolate_pos_encoding with interpolate_offset = 0.1 (scale factor (w0 + 0.1) / M) and
interpolate_antialias = False; pos_embed is --pos-grid M (37: the released 518-pixel tables)
squared + 1. Preprocessing: make_classification_eval_transform (Resize 256 BICUBIC,
CenterCrop 224, ImageNet mean/std). Width 768 (B/14) unless --width.

Writes OUT/ARCH.safetensors (and OUT/ARCH.pth with --pth), OUT/ARCH.input.npy and, per
comma-separated module name in LAYERS, OUT/ARCH.<layer>.npy: the module's output (tokens
(images, T, D), heads (images, classes)), float32.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pth_to_safetensors import save_safetensors  # noqa: E402


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        a = (q * (C // self.heads) ** -0.5) @ k.transpose(-2, -1)
        return self.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C))


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.attn, self.ls1 = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads), LayerScale(dim)
        self.norm2, self.mlp, self.ls2 = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, 4 * dim), LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    def __init__(self, dim=768, depth=12, registers=0, patch=14, pos_grid=37):
        super().__init__()
        self.patch = patch
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, pos_grid * pos_grid + 1, dim))
        self.register_tokens = nn.Parameter(torch.randn(1, registers, dim)) if registers else None
        self.mask_token = nn.Parameter(torch.randn(1, dim))
        self.blocks = nn.ModuleList([Block(dim, dim // 64) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def interpolate_pos_encoding(self, x, w, h):
        npatch, N = x.shape[1] - 1, self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        pos = self.pos_embed.float()
        cls_pos, patch_pos = pos[:, 0], pos[:, 1:]
        dim = x.shape[-1]
        w0, h0 = w // self.patch, h // self.patch
        M = int(math.sqrt(N))
        assert M * M == N
        sx, sy = float(w0 + 0.1) / M, float(h0 + 0.1) / M  # interpolate_offset = 0.1
        patch_pos = F.interpolate(patch_pos.reshape(1, M, M, dim).permute(0, 3, 1, 2),
                                  scale_factor=(sx, sy), mode="bicubic", antialias=False)
        assert (w0, h0) == tuple(patch_pos.shape[-2:])
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, -1, dim)
        return torch.cat((cls_pos.unsqueeze(0), patch_pos), dim=1)

    def forward(self, x):
        """The outputs of every block and of norm, by module name."""
        B, _, w, h = x.shape
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + self.interpolate_pos_encoding(x, w, h)
        if self.register_tokens is not None:
            x = torch.cat((x[:, :1], self.register_tokens.expand(B, -1, -1), x[:, 1:]), dim=1)
        out = {}
        for k, blk in enumerate(self.blocks):
            x = blk(x)
            out[f"blocks.{k}"] = x
        out["norm"] = self.norm(x)
        return out


def randomise(model):
    """Non-trivial LayerNorm weights, biases and layer scales (the defaults are 1 and 0)."""
    for name, p in model.named_parameters():
        if name == "heads.head.weight":  # torchvision initialises it to zero
            p.data = 0.02 * torch.randn_like(p)
        elif name.endswith(".bias"):
            p.data = 0.02 * torch.randn_like(p)
        elif p.ndim == 1 and name.endswith((".weight", ".gamma")):  # LayerNorm, layer scale
            p.data = 1.0 + 0.1 * torch.randn_like(p)


def transform(arch):
    from torchvision import transforms
    interp = transforms.InterpolationMode.BICUBIC if arch == "dinov2" else transforms.InterpolationMode.BILINEAR
    return transforms.Compose([
        transforms.Resize(256, interpolation=interp), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def build(arch, depth=None, width=768, registers=0, pos_grid=37):
    if arch == "vit_b_16":
        import torchvision
        model = torchvision.models.vit_b_16(weights=None)
        if depth is not None:
            layers = model.encoder.layers
            for k in range(depth, len(layers)):
                delattr(layers, f"encoder_layer_{k}")
    else:
        model = DinoV2(width, 12 if depth is None else depth, registers, 14, pos_grid)
    randomise(model)
    return model.eval()


def features(arch, model, x, layers):
    """{layer: output} for the requested module names."""
    with torch.no_grad():
        if arch == "dinov2":
            out = model(x)
            return {k: out[k] for k in layers}
        feats, mods = {}, dict(model.named_modules())
        for layer in layers:
            if layer not in mods:
                raise SystemExit(f"{arch} has no module {layer}")
            mods[layer].register_forward_hook(
                lambda m, i, o, layer=layer: feats.__setitem__(layer, o.detach().clone()))
        model(x)
        return feats


def opt(argv, name, default, cast=int):
    if name in argv:
        i = argv.index(name)
        v = argv[i + 1]
        del argv[i:i + 2]
        return cast(v)
    return default


def main(argv):
    argv = list(argv[1:])
    depth = opt(argv, "--depth", None)
    width = opt(argv, "--width", 768)
    registers = opt(argv, "--registers", 0)
    pos_grid = opt(argv, "--pos-grid", 37)
    seed = opt(argv, "--seed", 0)
    pth = "--pth" in argv
    args = [a for a in argv if not a.startswith("--")]
    out, arch, layers, pngs = args[0], args[1], args[2].split(","), args[3:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = build(arch, depth, width, registers, pos_grid)
    sd = model.state_dict()
    save_safetensors(sd, os.path.join(out, f"{arch}.safetensors"))
    if pth:
        torch.save(sd, os.path.join(out, f"{arch}.pth"))
    from PIL import Image
    tf = transform(arch)
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in pngs])
    np.save(os.path.join(out, f"{arch}.input.npy"), x.numpy())
    for layer, v in features(arch, model, x, layers).items():
        np.save(os.path.join(out, f"{arch}.{layer}.npy"), v.numpy().astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
