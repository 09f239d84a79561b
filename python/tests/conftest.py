"""Fixtures: one real results file per test session, made by the built rdmlearn.

A 2-subject synthetic dataset (80 images, 2 selections) and one job with five experiments
that cover every kind of model result: the pair SVM (C-SVC, image k-fold), its nested grid
search (holdout split), the epsilon-SVR (pair-level split), the siamese network and the MLP
with a grid (both sharing the regression pairs). Then a sixth experiment, "div", whose
siamese network diverges in folds 2-4 by construction (as tests/cli/test_train.sh makes
it): fold statuses other than "ok" and NaN metrics. About 8 s on 2 ranks. ctest (tests/CMakeLists.txt, py.test_python) sets RDMLEARN
to the built binary and MPIEXEC to the MPI launcher.
"""
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the package of this checkout, not an installed one

import rdmlearn  # noqa: E402

EXPERIMENTS = {
    "svm.ini": "[pairs]\nexperiment = svm\n[run]\nstages = svm\n",
    "grid.ini": "[data]\nsubjects = 1\nrois = V1\n[pairs]\nexperiment = svm-grid\n[split]\nscheme = holdout\n"
                "[grid]\nsvm_c = 0.1, 1\nsvm_kernel = poly, rbf\ninner_folds = 2\n[run]\nstages = svm\n",
    "svr.ini": "[data]\nsubjects = 1\n[pairs]\nexperiment = svr\nlabels = continuous\n"
               "[split]\nscheme = pairs\nallow_pair_leakage = true\n"
               "[svm]\ntype = epsilon_svr\nkernel = rbf\n[run]\nstages = svm\n",
    "nn.ini": "[pairs]\nexperiment = regression\nset = all\n[train]\nmodel = siamese\n[run]\nstages = train\n",
    "mlp.ini": "[data]\nsubjects = 1\nrois = V1\n[pairs]\nexperiment = regression\nset = all\n"
               "[train]\nmodel = mlp\nmlp_widths = 16\n[grid]\ntrain_lr = 0.001, 0.01\ninner_folds = 2\n"
               "[run]\nstages = train\n",
}


def job_text(root, output, experiments=", ".join(EXPERIMENTS)):
    return f"""[synth]
subjects = 2
images = 80
image_size = 24
lh_vertices = 200
rh_vertices = 200
test_images = 0
[data]
root = {root}
rois = V1, class:Faces
[embed]
backend = gabor
[pairs]
k = 8
[train]
tower = 16,8
head = 8
batch = 256
epochs = 2
[run]
stages = rdm, embed, svm, train
output = {output}
log_level = warn
experiments = {experiments}
"""


@pytest.fixture(scope="session")
def binary():
    return rdmlearn.find_binary()


@pytest.fixture(scope="session")
def mpiexec():
    m = os.environ.get("MPIEXEC") or shutil.which("mpirun") or shutil.which("mpiexec")
    assert m, "no MPI launcher: set MPIEXEC"
    return m


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("rdmlearn")


@pytest.fixture(scope="session")
def dataset(workdir, binary):
    """A synthetic dataset (Algonauts layout) with 2 subjects x 80 images."""
    root = workdir / "ds"
    job = workdir / "synth.ini"
    job.write_text(job_text(root, workdir / "unused.h5", experiments='""'))
    subprocess.run([binary, "synth", str(root), "--config", str(job), "-q"], check=True)
    return root


@pytest.fixture(scope="session")
def results_path(workdir, dataset, binary, mpiexec):
    """The results file of the five-experiment job, run with plain mpirun (not rdmlearn.run)."""
    d = workdir / "job"
    d.mkdir()
    for name, text in EXPERIMENTS.items():
        (d / name).write_text(text)
    out = d / "results.h5"
    (d / "job.ini").write_text(job_text(dataset, out))
    cmd = [mpiexec, "--oversubscribe", "--bind-to", "none", "-n", "2"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    p = subprocess.run(cmd + [binary, "run", str(d / "job.ini")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    # "div": one pair of subj02 V1 between an image of test fold 0 and one of test fold 1
    # gets the target 1e25; it trains in folds 2-4 only, which diverge at once
    import h5py
    import numpy as np
    with h5py.File(out, "r+") as f:
        fold = f["/experiments/regression/pairs/subj02/V1/fold"][()]
        a, b = np.flatnonzero(fold == 0)[0], np.flatnonzero(fold == 1)[0]
        ds = f["/subjects/subj02/rdm/V1"]
        r = ds[()]
        r[a, b] = r[b, a] = 1e25
        ds[...] = r
    p = subprocess.run(cmd + [binary, "train", "--config", str(d / "job.ini"), "--set", "run.experiments=",
                              "--set", "pairs.experiment=div", "--set", "data.subjects=2", "--set", "data.rois=V1",
                              "--set", "pairs.set=all", "--set", "train.model=siamese", "-q"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


@pytest.fixture(scope="session")
def h5(results_path):
    import h5py
    with h5py.File(results_path, "r") as f:
        yield f


@pytest.fixture(scope="session")
def res(results_path):
    return rdmlearn.Results(results_path, tables="pandas")
