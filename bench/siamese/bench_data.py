"""The data of the siamese bench, shared by anchor.py (which writes them for siamese_bench.c)
and torch_anchor.py (which trains on them in PyTorch), so both sides see the same numbers:

  pairs(n, max_pairs) -> E (n x 512 float32), P (all pairs i < j, as rows), y (R[i, j]),
                         tr, te (indices into P: numpy default_rng(0).permutation of all
                         pairs, the first max_pairs of it when > 0, cut at 80 % for training)

The embeddings and RDM come from bench/common/planted.py, or, with RDML_BENCH_H5 set, from
the demo's results file (planted_demo.py: a learnable problem)."""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
sys.path.insert(0, HERE)

if os.environ.get("RDML_BENCH_H5"):
    import planted_demo as source
else:
    import planted as source


def pairs(n, max_pairs=0):
    E, R = source.make(n=n, d=512)
    iu = np.triu_indices(n, 1)
    P = np.stack(iu, axis=1)
    y = R[iu].astype(np.float32)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(P))
    if max_pairs:
        perm = perm[:max_pairs]
    cut = int(0.8 * len(perm))
    return E, P, y, perm[:cut], perm[cut:], rng
