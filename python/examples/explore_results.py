# %% [markdown]
# # Exploring an rdmlearn results file
#
# A notebook-style script (cells marked `# %%`, as Jupyter, VS Code and Spyder read them).
# Make a results file first, from the repository root:
#
#     bash tools/demo.sh          # synthetic dataset -> build/demo/results.h5
#
# then run `python3 python/examples/explore_results.py [RESULTS.h5]` (with PYTHONPATH=python
# or the package installed), or open it as a notebook. Set RDMLEARN_EXAMPLE_RUN=1 to also
# run the last cell, which re-runs an experiment through `rdmlearn.run`.
#
# The demo job (jobs/demo.ini) has three experiments: `svm` (the paper's pair SVM on every
# subject, V1 and face-selective cortex), `svm-grid` (a nested grid search for it on subj01
# V1) and `regression` (the paper's siamese network on all pairs of subj01 V1).

# %%
import os
import sys

import numpy as np
from scipy.stats import spearmanr

import rdmlearn

path = sys.argv[1] if len(sys.argv) > 1 else "build/demo/results.h5"
r = rdmlearn.Results(path, tables="pandas")  # tables as DataFrames (needs pandas)
print(r)  # subjects, selections, embeddings, experiments and models, stages

# %% [markdown]
# ## RDMs and their images
# Each subject saw its own images: the rows of its RDMs follow `r.images(subject)`, and every
# RDM and embedding carries the NSD id of each row.

# %%
subject, selection = r.subjects[0], r.selections[0]
rdm = r.rdm(subject, selection)
print(rdm, "| metric:", rdm.metric, "| first NSD ids:", rdm.nsd_ids[:5])
print(r.images(subject)[:3])

# How similar are the geometries of the vertex selections (Spearman over the upper triangle,
# as rsatoolbox compares RDMs)?
for other in r.selections[1:]:
    rho = spearmanr(rdm.vector(), r.rdm(subject, other).vector()).statistic
    print(f"subj{subject:02d}: {selection} vs {other}: Spearman {rho:.3f}")

# Inter-subject consistency: the noise ceiling of each selection
print(r.noise_ceilings())

# %% [markdown]
# ## Image embeddings, aligned with the RDM rows by NSD id

# %%
for name in r.embeddings(subject):
    emb = r.embeddings(subject, name)
    assert np.array_equal(emb.nsd_ids[: len(rdm.nsd_ids)], rdm.nsd_ids)
    print(emb, "| mean feature norm:", float(np.linalg.norm(emb.values, axis=1).mean()))

# %% [markdown]
# ## Cross-validated pair models
# `folds(experiment, model)` is one row per subject x selection x outer fold with every test
# metric, the networks' chance levels (mean predictor, shuffled targets) and the fold status.

# %%
for experiment, models in r.models().items():
    for model in models:
        folds = r.folds(experiment, model)
        metric = "accuracy" if "accuracy" in folds.columns else "r2"
        print(f"\n== {experiment} / {model}: {len(folds)} folds, metric {metric}")
        cols = [c for c in (metric, f"mean_predictor_{metric}", f"shuffled_{metric}") if c in folds.columns]
        print(folds.groupby(["subject", "selection"])[cols].agg(["mean", "std"]).round(3))
        stopped = folds[folds["status"] != "ok"]
        if len(stopped):
            print("folds that did not finish:\n", stopped[["subject", "selection", "fold", "status"]])

# %% [markdown]
# ## Test predictions with their images
# Which test pairs does a model get most wrong? Each row names the two images by NSD id.

# %%
experiment = r.experiments[0]
model = r.models(experiment)[0]
first = r.folds(experiment, model).iloc[0]
pred = r.predictions(experiment, model, first["subject"], first["selection"])
err = pred.assign(error=(pred["prediction"] - pred["target"]).abs()).sort_values("error", ascending=False)
print(f"{experiment}/{model}, subj{first['subject']:02d} {first['selection']}: worst test pairs")
print(err[["fold", "nsd_id_a", "nsd_id_b", "value", "target", "prediction", "error"]].head())
print("test pairs per fold:", pred.groupby("fold").size().to_dict())

# %% [markdown]
# ## Grid searches: which setting did each outer fold choose?

# %%
for experiment, models in r.models().items():
    for model in models:
        first = r.folds(experiment, model).iloc[0]
        try:
            g = r.grid(experiment, model, first["subject"], first["selection"])
        except rdmlearn.NotFound:
            continue  # this model ran without a grid
        print(f"\n== grid of {experiment}/{model}, subj{first['subject']:02d} {first['selection']}")
        print(g[g["chosen"]])

# %% [markdown]
# ## What exactly was run
# The resolved configuration of each stage, and the sweep table (also in `<stem>.sweep.csv`).

# %%
cfg = r.config("rdm")
print({k: cfg["rdm"][k] for k in ("metric", "threshold", "noise_ceiling")})
print(r.summary().head(8))

# %% [markdown]
# ## Run again with another setting
# `rdmlearn.run` runs the job under mpirun and returns the new Results; a stage whose
# settings did not change is reused from the file (here: the RDMs and embeddings).

# %%
if os.environ.get("RDMLEARN_EXAMPLE_RUN") == "1":
    cfg = r.config("svm")
    out = os.path.splitext(path)[0] + "-k10.h5"
    import shutil
    shutil.copy(path, out)  # start from the existing file: RDMs and embeddings are reused
    try:
        r2 = rdmlearn.run("jobs/demo.ini", ranks=2, output=out, data__root=cfg["data"]["root"],
                          pairs__k=10, run__stages="svm", verbose=True)
        print(r2.folds("svm", "svm").groupby("selection")["accuracy"].mean())
    except rdmlearn.RdmlearnError as e:
        print("rdmlearn failed with exit code", e.exit_code, ":", e.message)
