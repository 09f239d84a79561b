#!/usr/bin/python3
"""PyTorch anchor of the siamese bench: the paper authors' ContrastiveNetwork as a Python user
trains it on CPU, on the pairs of bench_data.py.

Network: one branch applied to both images, Linear(512, 512) - ReLU - Dropout(0.5) -
Linear(512, 256) - ReLU; the two 256-d outputs concatenated, then a head Linear(512, 128) -
ReLU - Linear(128, 1) predicting the RDM value; MSE loss, Adam. The seed repository's settings
are batch 32 and learning rate 0.01. One epoch visits the training pairs in a fresh random
order (the generator of bench_data.py, continued). torch.manual_seed(0); THREADS (default 2)
intra-op threads.

usage: torch_anchor.py N_IMAGES EPOCHS [max_pairs=0: all] [batch=32] [lr=0.01]
Prints one line: pairs/s of training and the R^2 on (up to 200,000) training and all test
pairs, in the format bench/siamese/run.sh and siamese_bench.c share."""
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_data  # noqa: E402


class ContrastiveNetwork(nn.Module):
    def __init__(self, dim=512):
        super().__init__()
        self.branch = nn.Sequential(nn.Linear(dim, 512), nn.ReLU(), nn.Dropout(0.5),
                                    nn.Linear(512, 256), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(512, 128), nn.ReLU(), nn.Linear(128, 1))

    def forward(self, a, b):
        both = torch.cat([self.branch(a), self.branch(b)], dim=1)
        return self.head(both).squeeze(1)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    n, epochs = int(sys.argv[1]), int(sys.argv[2])
    max_pairs = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 32
    lr = float(sys.argv[5]) if len(sys.argv) > 5 else 0.01
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    E, P, y, tr, te, rng = bench_data.pairs(n, max_pairs)
    emb, idx, target = torch.from_numpy(E), torch.from_numpy(P), torch.from_numpy(y)
    net = ContrastiveNetwork()
    opt = torch.optim.Adam(net.parameters(), lr)

    def r2(which):
        net.eval()
        with torch.no_grad():
            pred = torch.cat([net(emb[idx[j, 0]], emb[idx[j, 1]])
                              for j in np.array_split(which, max(1, -(-len(which) // 65536)))]).numpy()
        t = y[which]
        return 1 - ((pred - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()

    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(tr))
        for k in range(0, len(order), batch):
            j = order[k:k + batch]
            loss = ((net(emb[idx[j, 0]], emb[idx[j, 1]]) - target[j]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    dt = time.perf_counter() - start
    print(f"torch {torch.__version__} threads={torch.get_num_threads()} siamese n_images={n} "
          f"train_pairs={len(tr)} batch={batch} lr={lr} epochs={epochs}: {dt:.2f} s "
          f"({dt / epochs:.2f} s/epoch, {len(tr) * epochs / dt:.0f} pairs/s) "
          f"R2 train {r2(tr[:200000]):.3f} test {r2(te):.3f}")


if __name__ == "__main__":
    main()
