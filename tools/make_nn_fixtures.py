#!/usr/bin/python3
"""Generates tests/fixtures/nn/ (read by tests/unit/test_nn_torch.c): 20 optimiser steps of
the pair networks in PyTorch with dropout off, from PyTorch's own initial weights (exported in
parameters() order, which is rdml's parameter-buffer order), on fixed batches.

  siamese: the paper's ContrastiveNetwork at small size, tower D-16-8 (Dropout off), head
           16-6-1, MSE, Adam lr 0.01, batches of 8 pairs with repeated images
  mlp:     concat(e_i, e_j) 24 -> 12 -> 6 -> 1, ReLU, 2*sigmoid output, MSE,
           Adam lr 0.01 weight_decay 1e-3
  cnn:     siamese CNN on 14x14 grayscale, conv 4 3x3 + ReLU + pool 2, conv 6 3x3 + ReLU +
           pool 2, flatten, concat, Dense(1), 2*sigmoid, MSE, Adam lr 0.01. (The -Pearson/MSE
           mix is not a 20-step fixture: PyTorch's own float32 and float64 runs of it differ by
           ~1e-3 relative after 20 steps, so 1e-4 cannot be asked of any float32 code; its
           gradient is checked by finite differences in test_nn.c instead.)

Files per model NAME: NAME_init.npy (float32 flat parameters), NAME_final.npy (after 20
steps), NAME_losses.npy (float64, the loss of each step before its update), NAME_ij.npy
(int64, 20*B x 2 pairs), NAME_y.npy (float32 targets); inputs: emb.npy (N x D float32),
imgs.npy (N x 196 float32). Deterministic (fixed seeds). Run: /usr/bin/python3 tools/make_nn_fixtures.py
"""
import os, sys
import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "nn")
STEPS, B, N, D, S = 20, 8, 10, 12, 14
torch.set_num_threads(1)


def flat(m):
    return np.concatenate([p.detach().numpy().ravel() for p in m.parameters()]).astype(np.float32)


class Siamese(nn.Module):
    def __init__(s):
        super().__init__()
        s.branch = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 8), nn.ReLU())
        s.head = nn.Sequential(nn.Linear(16, 6), nn.ReLU(), nn.Linear(6, 1))

    def forward(s, a, b):
        return s.head(torch.cat([s.branch(a), s.branch(b)], 1)).squeeze(1)


class MLP(nn.Module):
    def __init__(s):
        super().__init__()
        s.net = nn.Sequential(nn.Linear(2 * D, 12), nn.ReLU(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 1))

    def forward(s, a, b):
        return 2 * torch.sigmoid(s.net(torch.cat([a, b], 1)).squeeze(1))


class CNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.branch = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten())
        s.dense = nn.Linear(2 * 6 * 2 * 2, 1)

    def forward(s, a, b):
        return 2 * torch.sigmoid(s.dense(torch.cat([s.branch(a), s.branch(b)], 1)).squeeze(1))


def pearson_loss(p, y):
    pc, yc = p - p.mean(), y - y.mean()
    return -(pc * yc).sum() / torch.sqrt((pc * pc).sum() * (yc * yc).sum())


def run(name, model, X, opt, lossf, rng):
    model.eval()  # dropout off
    init = flat(model)
    ij = rng.integers(0, N, size=(STEPS * B, 2)).astype(np.int64)
    ij[::5, 0] = ij[1::5, 0][: len(ij[::5])]  # repeated images inside batches
    y = rng.uniform(0, 2, size=STEPS * B).astype(np.float32)
    Xt = torch.from_numpy(X)
    losses = []
    for t in range(STEPS):
        j = ij[t * B:(t + 1) * B]
        p = model(Xt[j[:, 0]], Xt[j[:, 1]])
        loss = lossf(p, torch.from_numpy(y[t * B:(t + 1) * B]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    np.save(f"{OUT}/{name}_init.npy", init)
    np.save(f"{OUT}/{name}_final.npy", flat(model))
    np.save(f"{OUT}/{name}_losses.npy", np.array(losses, np.float64))
    np.save(f"{OUT}/{name}_ij.npy", ij)
    np.save(f"{OUT}/{name}_y.npy", y)
    print(name, len(init), "parameters, loss", losses[0], "->", losses[-1])


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    E = rng.standard_normal((N, D)).astype(np.float32)
    imgs = rng.uniform(0, 1, size=(N, 1, S, S)).astype(np.float32)
    np.save(f"{OUT}/emb.npy", E)
    np.save(f"{OUT}/imgs.npy", imgs.reshape(N, S * S))
    mse = nn.MSELoss()
    torch.manual_seed(1)
    m = Siamese()
    run("siamese", m, E, torch.optim.Adam(m.parameters(), lr=0.01), mse, rng)
    torch.manual_seed(2)
    m = MLP()
    run("mlp", m, E, torch.optim.Adam(m.parameters(), lr=0.01, weight_decay=1e-3), mse, rng)
    torch.manual_seed(3)
    m = CNN()
    run("cnn", m, imgs, torch.optim.Adam(m.parameters(), lr=0.01), mse, rng)


if __name__ == "__main__":
    sys.exit(main())
