#!/usr/bin/python3
"""ViT-B/32 image-tower throughput in PyTorch on CPU as a Python user would time it: OpenAI's
VisionTransformer class (tools/clip_reference.py's copy), PyTorch's own random initialisation
(torch.manual_seed(0)), a random batch of already-preprocessed 224 x 224 images, no_grad,
one warm-up call on 2 images, then BATCHES timed batches. A reference beside anchor.py, which
runs the same class on rdmlearn's weights and images.

usage: vit_random.py [batch=32] [batches=4] [threads=2]
Prints images/s and the GFLOP/s they mean (8.82 GFLOP per image)."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import clip_reference as cr  # noqa: E402

batch = int(sys.argv[1]) if len(sys.argv) > 1 else 32
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 4
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
torch.manual_seed(0)
model = cr.VisionTransformer(224, 32, 768, 12, 12, 512).eval()
x = torch.randn(batch, 3, 224, 224)
with torch.no_grad():
    model(x[:2])
    t = time.perf_counter()
    for _ in range(batches):
        model(x)
    dt = time.perf_counter() - t
rate = batch * batches / dt
print(f"torch {torch.__version__} ViT-B/32 (random init) threads={torch.get_num_threads()} "
      f"batch={batch}: {rate:.1f} images/s ({8.82 * rate:.0f} GFLOP/s)")
