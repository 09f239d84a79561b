#!/usr/bin/env python3
"""PyTorch CPU anchor for bench/embed/run_vit.sh: DINOv2 (tools/vit_reference.py's port of
facebookresearch/dinov2's DinoVisionTransformer: the same modules, plain attention as dinov2
runs it on a CPU without xformers) with the state dict WEIGHTS.pth, eval mode, no_grad,
torch.set_num_threads(THREADS), on the preprocessed batch PIXELS.npy (B x 3*224*224); a
warm-up on 2 images, then REPS timed forwards of the whole batch. Writes the final norm's
tokens (B x T*D) of the last batch to OUT.npy.

    vit_anchor.py WEIGHTS.pth PIXELS.npy REPS OUT.npy THREADS
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import vit_reference as vr  # noqa: E402


def main(argv):
    wts, pix, reps, out, threads = argv[1], argv[2], int(argv[3]), argv[4], int(argv[5])
    torch.set_num_threads(threads)
    sd = torch.load(wts, map_location="cpu", weights_only=True)
    D = sd["cls_token"].shape[-1]
    depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    R = sd["register_tokens"].shape[1] if "register_tokens" in sd else 0
    M = int(round((sd["pos_embed"].shape[1] - 1) ** 0.5))
    model = vr.DinoV2(D, depth, R, sd["patch_embed.proj.weight"].shape[-1], M)
    model.load_state_dict(sd)
    model.eval()
    x = torch.from_numpy(np.load(pix)).reshape(-1, 3, 224, 224)
    print(f"torch_dinov2: torch {torch.__version__}, threads {torch.get_num_threads()}, width {D}, depth {depth}, registers {R}")
    with torch.no_grad():
        model(x[:2])
        for _ in range(reps):
            t = time.perf_counter()
            y = model(x)["norm"]
            t = time.perf_counter() - t
            print(f"torch_dinov2 batch={x.shape[0]} seconds={t:.4f} images/s={x.shape[0] / t:.2f}", flush=True)
    np.save(out, y.reshape(y.shape[0], -1).numpy())


if __name__ == "__main__":
    main(sys.argv)
