#!/usr/bin/env python3
"""Reference features for the model zoo (tests/cli/test_embed_zoo.sh, bench/embed).

    /usr/bin/python3 tools/make_zoo_fixtures.py OUT ARCH LAYERS PNG... [--pth] [--seed S]

Builds torchvision 0.14's ARCH (alexnet, vgg16, resnet18, resnet50) with random weights
(torch.manual_seed(S); batch-norm weights, biases and running statistics randomised too, so
that folding them into the convolutions is tested), saves its state dict as
OUT/ARCH.safetensors (tools/pth_to_safetensors.py's writer) and, with --pth, as OUT/ARCH.pth
(torch.save), then runs the model in eval mode on the PNGs with torchvision's ImageNet eval
transform on PIL images (Resize(256), CenterCrop(224), ToTensor, Normalize) and saves, for
every comma-separated module name in LAYERS, the module's output (a clone taken by a forward
hook, i.e. before any in-place ReLU that follows) as OUT/ARCH.<layer>.npy, shaped
(images, C, H, W) or (images, C), float32; and the preprocessed input as OUT/ARCH.input.npy.
"""
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pth_to_safetensors import save_safetensors  # noqa: E402


def randomise_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1.0 + 0.2 * torch.randn(n)
            m.bias.data = 0.1 * torch.randn(n)
            m.running_mean.data = 0.1 * torch.randn(n)
            m.running_var.data = 0.5 + torch.rand(n)
            m.num_batches_tracked.fill_(7)


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    pth = "--pth" in argv
    seed = 0
    if "--seed" in argv:
        seed = int(argv[argv.index("--seed") + 1])
        args.remove(str(seed))
    out, arch, layers, pngs = args[0], args[1], args[2].split(","), args[3:]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None)
    randomise_bn(model)
    # small biases everywhere (torchvision initialises some to 0)
    for name, p in model.named_parameters():
        if name.endswith(".bias") and "bn" not in name and "downsample.1" not in name:
            p.data = 0.01 * torch.randn_like(p)
    model.eval()
    sd = model.state_dict()
    save_safetensors(sd, os.path.join(out, f"{arch}.safetensors"))
    if pth:
        torch.save(sd, os.path.join(out, f"{arch}.pth"))
    tf = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in pngs])
    np.save(os.path.join(out, f"{arch}.input.npy"), x.numpy())
    feats, mods = {}, dict(model.named_modules())
    for layer in layers:
        if layer not in mods:
            raise SystemExit(f"{arch} has no module {layer}")
        mods[layer].register_forward_hook(
            lambda m, i, o, layer=layer: feats.__setitem__(layer, o.detach().clone()))
    with torch.no_grad():
        model(x)
    for layer in layers:
        np.save(os.path.join(out, f"{arch}.{layer}.npy"), feats[layer].numpy().astype(np.float32))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
