"""Planted-signal data for the anchors of bench/svm and bench/siamese: n unit-norm image
embeddings E (n x d, float32), voxel responses Y = tanh(E W) + noise (W: d x v, scaled by 3),
and the RDM R = 1 - Pearson correlation of the rows of Y. Deterministic for a seed; the draws
come in the order E, W, noise from one numpy default_rng(seed).

extremes(R, k): the pairs of the paper's "extremes" set, per image i (in order) its k most
similar partners (lowest R[i, j], j != i) and then its k most dissimilar ones (highest)."""
import numpy as np


def make(n=500, d=512, v=4000, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    weights = 3 * rng.standard_normal((d, v)).astype(np.float32)
    resp = np.tanh(emb @ weights) + noise * rng.standard_normal((n, v)).astype(np.float32)
    z = resp - resp.mean(axis=1, keepdims=True)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return emb, 1 - z @ z.T


def extremes(R, k=50):
    pairs = []
    for i in range(R.shape[0]):
        row = R[i]
        low = row.copy()
        low[i] = np.inf                      # never its own partner
        pairs.extend((i, j) for j in np.argsort(low)[:k])
        high = row.copy()
        high[i] = -np.inf
        pairs.extend((i, j) for j in np.argsort(high)[::-1][:k])
    return np.array(pairs)
