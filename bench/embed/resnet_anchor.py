#!/usr/bin/env python3
"""PyTorch CPU anchor for bench/embed/run_resnet50.sh: torchvision's ARCH with the state dict
WEIGHTS.pth, eval mode, torch.no_grad(), torch.set_num_threads(THREADS), on the preprocessed
batch PIXELS.npy (B x 3*224*224 float32, torchvision's ImageNet transform); a warm-up on 2
images, then REPS timed forwards of the whole batch, as a Python user runs it. MKLDNN=0 in the
environment turns oneDNN off (torch.backends.mkldnn.enabled = False: convolutions then go
through PyTorch's own im2col + BLAS path).

    resnet_anchor.py ARCH WEIGHTS.pth PIXELS.npy REPS OUT.npy THREADS
"""
import os
import sys
import time

import numpy as np
import torch
import torchvision


def main(argv):
    arch, wts, pix, reps, out, threads = argv[1], argv[2], argv[3], int(argv[4]), argv[5], int(argv[6])
    torch.set_num_threads(threads)
    mk = os.environ.get("MKLDNN", "1") != "0"
    torch.backends.mkldnn.enabled = mk
    model = getattr(torchvision.models, arch)(weights=None)
    model.load_state_dict(torch.load(wts, map_location="cpu", weights_only=True))
    model.eval()
    x = torch.from_numpy(np.load(pix)).reshape(-1, 3, 224, 224)
    tag = "torch" if mk else "torch_nomkldnn"
    print(f"{tag}: torch {torch.__version__}, threads {torch.get_num_threads()}, mkldnn {mk}")
    with torch.no_grad():
        model(x[:2])
        for _ in range(reps):
            t = time.perf_counter()
            y = model(x)
            t = time.perf_counter() - t
            print(f"{tag} batch={x.shape[0]} seconds={t:.4f} images/s={x.shape[0] / t:.2f}", flush=True)
    np.save(out, y.numpy())


if __name__ == "__main__":
    main(sys.argv)
