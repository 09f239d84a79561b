#!/usr/bin/env python3
"""Data of the statistics bench: one brain RDM and M model RDMs over n images (float64 .npy),
from planted features: brain = distance of 8-d features + noise; model 0 = the same features
with less noise, model 1 = weakly related, model 2 = unrelated.
usage: data.py DIR N [M]"""
import os
import sys

import numpy as np


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    m = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rs = np.random.default_rng(0)
    f = rs.normal(size=(n, 8))
    d0 = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1))

    def rdm(scale, signal=1.0):
        x = signal * d0 + rs.normal(scale=scale, size=(n, n))
        x = (x + x.T) / 2
        np.fill_diagonal(x, 0)
        return x

    brain = rdm(1.0)
    models = np.stack([rdm(0.5), rdm(8.0), rdm(1.0, 0.0)][:m])
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "brain.npy"), brain)
    np.save(os.path.join(d, "models.npy"), models.reshape(len(models), n * n))  # M x n*n


if __name__ == "__main__":
    main()
