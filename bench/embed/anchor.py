#!/usr/bin/python3
"""PyTorch side of bench/embed/run.sh: OpenAI's VisionTransformer class (tools/clip_reference.py's
copy: nn.MultiheadAttention, nn.Linear, quick_gelu) timed as a Python user would (no_grad, a
warm-up on 2 images, then whole batches; vit_random.py does the same with PyTorch's own
random initialisation), on the SAME weights and images as rdmlearn: the weights are read from the
safetensors file rdmlearn reads (Hugging Face naming, mapped to OpenAI naming by
clip_reference.hf_to_openai), the images are the preprocessed batch in PIXELS.npy.

usage: anchor.py WEIGHTS PIXELS.npy REPS OUT.npy [threads=2]
Prints one "torch batch=B seconds=S images/s=R" line per repetition and writes the last
batch's features to OUT.npy (compared with rdmlearn's by run.sh)."""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import clip_reference as cr  # noqa: E402

weights, pixels, reps, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
torch.set_num_threads(threads)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        data = f.read()
    sd = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        b, e = v["data_offsets"]
        sd[k] = torch.from_numpy(np.frombuffer(data, "<f4", (e - b) // 4, b).reshape(v["shape"]).copy())
    return sd


sd = read_safetensors(weights)
D = sd["vision_model.embeddings.class_embedding"].shape[0]
patch = sd["vision_model.embeddings.patch_embedding.weight"].shape[-1]
T = sd["vision_model.embeddings.position_embedding.weight"].shape[0]
L = sum(1 for k in sd if k.endswith(".layer_norm1.weight"))
P = sd["visual_projection.weight"].shape[0]
image = int(round((T - 1) ** 0.5)) * patch
m = cr.VisionTransformer(image, patch, D, L, D // 64, P).eval()
cr.load_openai_state(m, cr.hf_to_openai(sd))
X = np.load(pixels)
x = torch.from_numpy(X.reshape(X.shape[0], 3, image, image))
B = x.shape[0]
print(f"torch {torch.__version__} threads={torch.get_num_threads()} model width {D} layers {L} "
      f"patch {patch} image {image} proj {P}")
with torch.no_grad():
    m(x[:2])
    for _ in range(reps):
        t = time.perf_counter()
        y = m(x)
        dt = time.perf_counter() - t
        print(f"torch batch={B} seconds={dt:.4f} images/s={B / dt:.2f}", flush=True)
np.save(out, y.numpy())
