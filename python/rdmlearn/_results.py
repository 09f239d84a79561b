"""Read an rdmlearn results file (HDF5, layout in docs/results.md) into numpy arrays and
tidy tables."""
from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field

import numpy as np

try:
    import h5py
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("rdmlearn needs h5py: apt-get install python3-h5py (Debian/Ubuntu) or "
                      "pip install h5py") from exc

from ._encode import _EncodeMixin
from ._tables import make_table, resolve_format

__all__ = ["Results", "RDM", "Embeddings", "NotFound"]

# Metric columns in the order rdmlearn stores them (fold_metrics@columns); fallbacks for
# files whose datasets lack the attribute.
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("r2", "mse", "pearson", "spearman")
CHANCE_PREFIXES = ("mean_predictor_", "shuffled_")


class NotFound(KeyError):
    """A subject, selection, experiment, model, fold, embedding or stage that the results
    file does not hold. The message lists what it holds. (A ``KeyError``.)"""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _subject_number(subject) -> int:
    """1, "1", "subj01" or "01" -> 1."""
    if isinstance(subject, (int, np.integer)) and not isinstance(subject, bool):
        return int(subject)
    if isinstance(subject, str):
        m = re.fullmatch(r"(?:subj)?0*(\d+)", subject.strip())
        if m:
            return int(m.group(1))
    raise ValueError(f"subject {subject!r}: expected a subject number (1) or name ('subj01')")


def _subject_group(subject) -> str:
    return f"subj{_subject_number(subject):02d}"


def _scalar(v):
    """An HDF5 attribute as a plain Python value (numbers, str; arrays as lists)."""
    if isinstance(v, bytes):
        return v.decode("utf-8")
    if isinstance(v, np.ndarray):
        if v.shape == ():
            return _scalar(v[()])
        return [_scalar(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _attrs(obj) -> dict:
    return {k: _scalar(v) for k, v in obj.attrs.items()}


def _cell(v):
    """An attribute value as a table cell: lists become comma-joined text."""
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return v


def _strings(ds) -> np.ndarray:
    """A string dataset as a numpy array of str (object dtype)."""
    return np.asarray(ds.asstr()[()], dtype=object)


def _fold_index(name: str):
    m = re.fullmatch(r"fold_(\d+)", name)
    return int(m.group(1)) if m else None


def _fold_names(group) -> list:
    """The fold_<f> children of a group, ordered by f."""
    return sorted((n for n in group if _fold_index(n) is not None), key=_fold_index)


EMBEDDING_COLUMNS = ("embedding", "architecture", "layer", "depth", "relative_depth")


def _embedding_columns(g) -> dict:
    """The sweep table part g's embedding columns (tasks/ or summary/ of /sweep/<exp>/<model>),
    one value per row: "" and NaN where the table has none (written before they existed)."""
    key = "subject"
    n = g[key].shape[0]
    out = {}
    for k in EMBEDDING_COLUMNS:
        if k in g and g[k].shape[0] == n:
            out[k] = list(_strings(g[k])) if k in ("embedding", "architecture", "layer") else \
                [float(x) for x in g[k][()]]
        else:
            out[k] = [""] * n if k in ("embedding", "architecture", "layer") else [float("nan")] * n
    return out


def _columns_attr(ds, fallback):
    cols = ds.attrs.get("columns")
    if cols is None:
        return list(fallback)
    return [c.strip() for c in _scalar(cols).split(",")]


class _ArrayView:
    """numpy's array protocol and ``shape`` for a result held in ``self._array``."""

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)

    @property
    def shape(self):
        return self._array.shape


@dataclass(repr=False)
class RDM(_ArrayView):
    """One subject's RDM for one vertex selection.

    Attributes
    ----------
    matrix : numpy.ndarray, float32, shape (N, N)
        Dissimilarities (``attrs["metric"]``, e.g. correlation distance 1 - r, unitless);
        exactly symmetric, zero diagonal. Row/column i is image ``nsd_ids[i]``.
    nsd_ids : numpy.ndarray, int64, shape (N,)
        NSD image id (0-based) of each row.
    image_names : numpy.ndarray of str, shape (N,)
        Image file names of each row (Algonauts layout).
    subject : int
    selection : str
    attrs : dict
        The dataset's attributes (metric, threshold, n_vertices, ...; docs/results.md).

    ``numpy.asarray(rdm)`` is the matrix.
    """

    matrix: np.ndarray
    nsd_ids: np.ndarray
    image_names: np.ndarray
    subject: int
    selection: str
    attrs: dict = field(default_factory=dict)

    @property
    def _array(self):
        return self.matrix

    @property
    def metric(self) -> str:
        return self.attrs.get("metric", "")

    def vector(self) -> np.ndarray:
        """The strict upper triangle (i < j) row by row, shape (N * (N - 1) / 2,): the
        order of ``scipy.spatial.distance.squareform`` and of rsatoolbox's
        ``RDMs(dissimilarities=...)``."""
        i, j = np.triu_indices(self.matrix.shape[0], k=1)
        return self.matrix[i, j]

    def to_frame(self):
        """The matrix as a pandas DataFrame indexed by NSD id on both axes."""
        import pandas as pd
        idx = pd.Index(self.nsd_ids, name="nsd_id")
        return pd.DataFrame(self.matrix, index=idx, columns=idx.copy())

    def __repr__(self):
        n = self.matrix.shape[0]
        return (f"<RDM subj{self.subject:02d} {self.selection}: {n} x {n} {self.metric}, "
                f"{self.attrs.get('n_vertices', '?')} vertices>")


@dataclass(repr=False)
class Embeddings(_ArrayView):
    """One subject's image embeddings.

    Attributes
    ----------
    values : numpy.ndarray, float32, shape (N, D)
        Row i embeds image ``nsd_ids[i]`` (D = ``attrs["dims"]`` features).
    nsd_ids : numpy.ndarray, int64, shape (N,)
    image_names : numpy.ndarray of str, shape (N,)
    subject : int
    name : str
        ``embed.name`` (e.g. gabor, clip-vit).
    attrs : dict
        backend, model, dims, preprocessing, normalized, ... (docs/results.md).

    ``numpy.asarray(emb)`` is the values.
    """

    values: np.ndarray
    nsd_ids: np.ndarray
    image_names: np.ndarray
    subject: int
    name: str
    attrs: dict = field(default_factory=dict)

    @property
    def _array(self):
        return self.values

    def __repr__(self):
        n, d = self.values.shape
        return f"<Embeddings subj{self.subject:02d} {self.name}: {n} images x {d} ({self.attrs.get('backend', '?')})>"


class Results(_EncodeMixin):
    """An rdmlearn results file (docs/results.md), read with h5py.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file (``run.output``).
    tables : {None, "pandas", "numpy", "records"}
        Format of the tabular accessors: None (default) gives pandas DataFrames when pandas
        is installed and numpy structured arrays otherwise; "records" gives lists of dicts.

    Every accessor opens the file, reads, and closes it again: a ``Results`` never holds the
    file open, so a later ``rdmlearn`` command may replace it, and the next access reads the
    new contents. Subjects are numbers (1 for subj01; "subj01" is accepted too); selections
    are written as in ``data.rois`` (``V1``, ``class:Faces``, ``V1v+V1d``).

    Examples
    --------
    >>> r = Results("results.h5")
    >>> r.subjects, r.selections, r.experiments
    >>> rdm = r.rdm(1, "V1")                 # rdm.matrix (N x N), rdm.nsd_ids (N)
    >>> r.folds("svm", "svm")                # one row per subject x selection x fold
    """

    #: stdout and stderr of the program, for a Results returned by :func:`rdmlearn.run`.
    log = ""
    #: the command line, for a Results returned by :func:`rdmlearn.run`.
    command = None

    def __init__(self, path, tables=None):
        self.path = os.path.abspath(os.fspath(path))
        self._fmt = resolve_format(tables)
        if not os.path.exists(self.path):
            raise FileNotFoundError(
                f"{self.path}: no such results file (it is run.output of an rdmlearn command; "
                "a file that exists is complete, docs/results.md)")
        with self.open() as f:
            if "meta" not in f:
                raise ValueError(f"{self.path}: not an rdmlearn results file (no /meta group)")

    # ---- raw access
    def open(self) -> h5py.File:
        """The file opened read-only with h5py (close it, or use it in a ``with``)."""
        return h5py.File(self.path, "r")

    @property
    def side_folder(self):
        """The folder of the file's large datasets (``<file>.d``, docs/results.md), or None."""
        d = self.path + ".d"
        return d if os.path.isdir(d) else None

    def copy(self, dest, single_file=False) -> "Results":
        """Copy the results file to ``dest`` (a file path, or a folder to copy it into) with
        what it links to, and return the copy as a Results.

        A large job keeps its big datasets (the RDMs) in side files, ``<file>.d/``, reached by
        external links relative to the file's folder: a plain ``cp`` of the file alone leaves
        those links dangling. By default the side folder is copied beside the new file under
        the name the links hold. With ``single_file=True`` the copy is one self-contained file
        with every link expanded (to send or archive it; it is as large as all the data).
        """
        import shutil
        dest = os.path.abspath(os.fspath(dest))
        if os.path.isdir(dest):
            dest = os.path.join(dest, os.path.basename(self.path))
        if dest == self.path:
            raise ValueError(f"{dest}: copy onto itself")
        if single_file:
            tmp = dest + ".tmp-copy"
            with h5py.File(self.path, "r") as src, h5py.File(tmp, "w") as dst:
                for name in src:
                    src.copy(name, dst, expand_external=True)
                dst.attrs.update(src.attrs)
            os.replace(tmp, dest)
            return Results(dest, tables=self._fmt)
        side = self.side_folder
        if side:
            # the links name <original file name>.d, relative to the file's folder
            target = os.path.join(os.path.dirname(dest), os.path.basename(side))
            if os.path.abspath(target) != os.path.abspath(side):
                if os.path.exists(target):
                    raise FileExistsError(f"{target} exists: the copy's links would point there "
                                          "(hint: copy into another folder, or single_file=True)")
                shutil.copytree(side, target)
        shutil.copyfile(self.path, dest)
        return Results(dest, tables=self._fmt)

    def _table(self, columns):
        return make_table(columns, self._fmt)

    # ---- what the file holds
    @property
    def version(self) -> str:
        """rdmlearn version that wrote the file."""
        with self.open() as f:
            return _scalar(f["meta"].attrs.get("rdmlearn_version", ""))

    @property
    def stages(self) -> list:
        """Stages that wrote into the file (rdm, embed, svm, train, evaluate, report)."""
        with self.open() as f:
            return list(f["meta/stages"]) if "meta/stages" in f else []

    @property
    def subjects(self) -> list:
        """Subject numbers with data in the file (sorted), e.g. ``[1, 2]``."""
        with self.open() as f:
            if "subjects" not in f:
                return []
            return sorted(_subject_number(s) for s in f["subjects"])

    @property
    def selections(self) -> list:
        """Vertex selections with an RDM for some subject, e.g. ``['V1', 'class:Faces']``."""
        seen = []
        with self.open() as f:
            for s in f.get("subjects", {}):
                for sel in f[f"subjects/{s}"].get("rdm", {}):
                    if sel not in seen:
                        seen.append(sel)
        return seen

    @property
    def experiments(self) -> list:
        """Experiments (``pairs.experiment`` names) with model results."""
        with self.open() as f:
            return list(f["experiments"]) if "experiments" in f else []

    def models(self, experiment=None):
        """Models of one experiment (list), or of every experiment (dict: experiment -> list).

        Names as in the sweep tables: ``svm`` (``svr`` for an epsilon-SVR; its results are
        stored under ``/experiments/<experiment>/svm``), ``siamese``, ``mlp``, ``cnn``.
        """
        with self.open() as f:
            if experiment is None:
                return {e: self._models(f, e) for e in (f["experiments"] if "experiments" in f else [])}
            self._experiment(f, experiment)
            return self._models(f, experiment)

    def _experiment(self, f, experiment):
        if "experiments" not in f or experiment not in f["experiments"]:
            have = list(f["experiments"]) if "experiments" in f else []
            raise NotFound(f"{self.path}: no experiment {experiment!r} (experiments: "
                           f"{', '.join(have) or 'none'}; an experiment is named by pairs.experiment)")
        return f[f"experiments/{experiment}"]

    @staticmethod
    def _svm_name(g) -> str:
        """'svr' for an epsilon-SVR group, else 'svm'."""
        for subj in g.values():
            for sel in subj.values():
                return "svr" if _scalar(sel.attrs.get("type", "")) == "epsilon_svr" else "svm"
        return "svm"

    def _models(self, f, experiment):
        g = f[f"experiments/{experiment}"]
        out = []
        for m in g:
            if m == "pairs":
                continue
            out.append(self._svm_name(g[m]) if m == "svm" else m)
        return out

    def _model_group(self, f, experiment, model):
        """(h5py group of the model's results, model name as in the sweep tables)."""
        e = self._experiment(f, experiment)
        group = "svm" if model == "svr" else "svm@" + model[4:] if model.startswith("svr@") else model
        if group == "pairs" or group not in e:
            raise NotFound(f"{self.path}: experiment {experiment!r} has no model {model!r} "
                           f"(models: {', '.join(self._models(f, experiment)) or 'none'})")
        return e[group], (self._svm_name(e[group]) if group == "svm" else group)

    def _subject(self, f, subject):
        s = _subject_group(subject)
        if "subjects" not in f or s not in f["subjects"]:
            have = [str(_subject_number(x)) for x in f.get("subjects", {})]
            raise NotFound(f"{self.path}: no subject {subject!r} (subjects: {', '.join(have) or 'none'})")
        return f[f"subjects/{s}"]

    def _images(self, f, subject):
        g = self._subject(f, subject)
        if "images" not in g:
            raise NotFound(f"{self.path}: subject {subject!r} has no /images group (run the rdm or embed stage)")
        ids = g["images/nsd_id"][()].astype(np.int64)
        names = _strings(g["images/names"]) if "names" in g["images"] else np.full(len(ids), "", dtype=object)
        return ids, names

    # ---- per-subject data
    def images(self, subject):
        """The subject's images in row order of its RDMs, embeddings and pairs.

        Returns a table with columns ``row`` (0-based row), ``nsd_id`` (0-based NSD image id)
        and ``name`` (image file name).
        """
        with self.open() as f:
            ids, names = self._images(f, subject)
        return self._table({"row": np.arange(len(ids), dtype=np.int64), "nsd_id": ids, "name": list(names)})

    def rdm(self, subject, selection) -> RDM:
        """The RDM of ``subject`` for ``selection`` as an :class:`RDM` (``.matrix``: float32
        N x N; ``.nsd_ids``: int64 N, the NSD id of each row/column)."""
        with self.open() as f:
            g = self._subject(f, subject)
            if "rdm" not in g or selection not in g["rdm"]:
                have = list(g["rdm"]) if "rdm" in g else []
                raise NotFound(f"{self.path}: subject {subject!r} has no RDM for selection {selection!r} "
                               f"(selections: {', '.join(have) or 'none'})")
            ds = g[f"rdm/{selection}"]
            ids, names = self._images(f, subject)
            return RDM(ds[()], ids[: ds.shape[0]], names[: ds.shape[0]], _subject_number(subject),
                       selection, _attrs(ds))

    def embeddings(self, subject=None, name=None):
        """Image embeddings.

        ``embeddings(subject, name)`` returns :class:`Embeddings` (``.values``: float32 N x D;
        ``.nsd_ids``: int64 N). Without ``name`` it lists the embedding names (of that
        subject, or of any subject when ``subject`` is None), e.g. ``['gabor']``.
        """
        with self.open() as f:
            if name is None:
                subjects = [_subject_group(subject)] if subject is not None else list(f.get("subjects", {}))
                if subject is not None:
                    self._subject(f, subject)
                seen = []
                for s in subjects:
                    for n in f[f"subjects/{s}"].get("embeddings", {}):
                        if n not in seen:
                            seen.append(n)
                return seen
            if subject is None:
                raise ValueError("embeddings(subject, name): give the subject too")
            g = self._subject(f, subject)
            if "embeddings" not in g or name not in g["embeddings"]:
                have = list(g["embeddings"]) if "embeddings" in g else []
                raise NotFound(f"{self.path}: subject {subject!r} has no embedding {name!r} "
                               f"(embeddings: {', '.join(have) or 'none'}; the name is embed.name)")
            ds = g[f"embeddings/{name}"]
            ids, names = self._images(f, subject)
            return Embeddings(ds[()], ids[: ds.shape[0]], names[: ds.shape[0]], _subject_number(subject),
                              name, _attrs(ds))

    def noise_ceilings(self):
        """Inter-subject RSA (``/rsa``): one row per selection x comparison method.

        Columns: ``selection``, ``method`` (spearman, pearson, kendall_tau_a), ``lower``,
        ``upper`` (noise ceiling bounds, correlations), ``pool`` (mean or rsatoolbox),
        ``n_subjects``, ``n_shared_images``.
        """
        cols = {k: [] for k in ("selection", "method", "lower", "upper", "pool", "n_subjects", "n_shared_images")}
        with self.open() as f:
            for sel, g in f.get("rsa", {}).items():
                for method, m in g.items():
                    if not isinstance(m, h5py.Group):
                        continue
                    cols["selection"].append(sel)
                    cols["method"].append(method)
                    cols["lower"].append(_scalar(m.attrs.get("noise_ceiling_lower", np.nan)))
                    cols["upper"].append(_scalar(m.attrs.get("noise_ceiling_upper", np.nan)))
                    cols["pool"].append(_scalar(m.attrs.get("noise_ceiling_pool", "")))
                    cols["n_subjects"].append(int(g["subjects"].shape[0]) if "subjects" in g else None)
                    cols["n_shared_images"].append(_scalar(g.attrs.get("n_shared_images", None)))
        return self._table(cols)

    # ---- experiments
    def _pair_group(self, f, experiment, subject, selection):
        e = self._experiment(f, experiment)
        s = _subject_group(subject)
        if "pairs" not in e or s not in e["pairs"] or selection not in e[f"pairs/{s}"]:
            have = []
            if "pairs" in e:
                have = [f"{_subject_number(x)}/{y}" for x in e["pairs"] for y in e[f"pairs/{x}"]]
            raise NotFound(f"{self.path}: experiment {experiment!r} has no pairs for subject {subject!r}, "
                           f"selection {selection!r} (subject/selection: {', '.join(have) or 'none'})")
        return e[f"pairs/{s}/{selection}"]

    @staticmethod
    def _pair_test_fold(pg):
        """Test fold of each pair (-1: in no fold's test set)."""
        ij = pg["ij"][()]
        fold = pg["fold"][()].astype(np.int64)
        if _scalar(pg.attrs.get("scheme", "")) == "pairs":
            return fold
        fa, fb = fold[ij[:, 0]], fold[ij[:, 1]]
        return np.where((fa == fb) & (fa >= 0), fa, -1)

    def pairs(self, experiment, subject, selection):
        """The experiment's image pairs for one subject and selection, in construction order.

        Columns: ``pair`` (index, what ``predictions()['pair']`` refers to), ``image_a``,
        ``image_b`` (rows of the subject's images), ``nsd_id_a``, ``nsd_id_b``, ``value`` (RDM
        value of the pair), ``label`` (1 dissimilar / 0 similar, or the value with
        ``pairs.labels = continuous``; absent for the networks, which regress ``value``) and
        ``test_fold`` (the outer fold whose test set holds the pair; -1: none, e.g. its two
        images are in different folds, or both in a holdout's training part).
        """
        with self.open() as f:
            pg = self._pair_group(f, experiment, subject, selection)
            ids, _ = self._images(f, subject)
            ij = pg["ij"][()].astype(np.int64)
            cols = {"pair": np.arange(ij.shape[0], dtype=np.int64), "image_a": ij[:, 0], "image_b": ij[:, 1],
                    "nsd_id_a": ids[ij[:, 0]], "nsd_id_b": ids[ij[:, 1]], "value": pg["value"][()]}
            if "label" in pg:
                cols["label"] = pg["label"][()]
            cols["test_fold"] = self._pair_test_fold(pg)
        return self._table(cols)

    def folds(self, experiment, model):
        """Cross-validation results: one row per subject x selection x outer fold.

        Columns: ``experiment``, ``model``, ``subject``, ``selection``, ``fold``, ``status``;
        the test metrics (classifiers: accuracy, precision, recall, f1, roc_auc; regressors:
        r2, mse, pearson, spearman; all unitless except mse, in squared RDM units); for the
        networks the chance levels ``mean_predictor_<m>`` (predicting the training targets'
        mean) and ``shuffled_<m>`` (the predictions scored against permuted test targets);
        then every other attribute of the fold (``n_train``, ``n_test`` in pairs,
        ``fit_seconds``, ``train_r2``; with a grid the chosen setting: ``setting``/``chosen``
        and its parameters).

        ``status`` is the network's fold status ("ok", or why the fold stopped, e.g.
        "diverged in epoch 3: ..."; its metrics are NaN); for the SVM "ok" when the solver
        converged, else "not converged" (the SVM's fold is still scored, as sklearn does).
        """
        with self.open() as f:
            mg, name = self._model_group(f, experiment, model)
            rows = []
            metrics = None
            for s in mg:
                for sel in mg[s]:
                    g = mg[f"{s}/{sel}"]
                    if metrics is None and "fold_metrics" in g:
                        metrics = _columns_attr(g["fold_metrics"], REGRESSION_METRICS if name not in ("svm",)
                                                else CLASSIFICATION_METRICS)
                    for fn in _fold_names(g):
                        a = _attrs(g[fn])
                        if "status" not in a:
                            a["status"] = "ok" if a.get("converged", 1) else "not converged"
                        rows.append((_subject_number(s), sel, _fold_index(fn), a))
        if metrics is None:
            metrics = list(CLASSIFICATION_METRICS if name == "svm" else REGRESSION_METRICS)
        keys = ["experiment", "model", "subject", "selection", "fold", "status"]
        order = list(metrics)
        for p in CHANCE_PREFIXES:
            order += [p + m for m in metrics if any(p + m in r[3] for r in rows)]
        rest = sorted({k for r in rows for k in r[3]} - set(order) - set(keys))
        cols = {k: [] for k in keys + order + rest}
        for subj, sel, fold, a in rows:
            cols["experiment"].append(experiment)
            cols["model"].append(name)
            cols["subject"].append(subj)
            cols["selection"].append(sel)
            cols["fold"].append(fold)
            cols["status"].append(a["status"])
            for k in order + rest:
                cols[k].append(_cell(a.get(k)))
        return self._table(cols)

    def predictions(self, experiment, model, subject, selection, fold=None):
        """Test-set predictions of one subject and selection (all outer folds, or one).

        Columns: ``subject``, ``selection``, ``fold``, ``pair`` (row of ``pairs()``),
        ``image_a``, ``image_b`` (image rows), ``nsd_id_a``, ``nsd_id_b``, ``value`` (RDM
        value), ``target`` and ``prediction``; classifiers: ``target`` is the 0/1 label,
        ``prediction`` the predicted label and ``decision`` the SVM decision value (> 0
        predicts 1); regressors: the RDM value (or the network's target) and its prediction.
        """
        with self.open() as f:
            mg, name = self._model_group(f, experiment, model)
            s = _subject_group(subject)
            if s not in mg or selection not in mg[s]:
                have = [f"{_subject_number(x)}/{y}" for x in mg for y in mg[x]]
                raise NotFound(f"{self.path}: {experiment}/{name} has no results for subject {subject!r}, "
                               f"selection {selection!r} (subject/selection: {', '.join(have) or 'none'})")
            g = mg[f"{s}/{selection}"]
            pg = f[_scalar(g.attrs["pairs"])] if "pairs" in g.attrs else self._pair_group(f, experiment, subject, selection)
            ij = pg["ij"][()].astype(np.int64)
            value = pg["value"][()]
            ids, _ = self._images(f, subject)
            names = _fold_names(g)
            if fold is not None:
                if f"fold_{int(fold)}" not in names:
                    raise NotFound(f"{self.path}: {experiment}/{name} subject {subject!r} {selection!r} has no fold "
                                   f"{fold!r} (folds: {', '.join(str(_fold_index(n)) for n in names)})")
                names = [f"fold_{int(fold)}"]
            parts = {k: [] for k in ("fold", "pair", "target", "prediction", "decision")}
            classifier = False
            for fn in names:
                fg = g[fn]
                te = fg["test_pairs"][()].astype(np.int64)
                parts["fold"].append(np.full(len(te), _fold_index(fn), dtype=np.int64))
                parts["pair"].append(te)
                if "decision" in fg:  # C-SVC
                    classifier = True
                    parts["target"].append(fg["label"][()].astype(np.int64))
                    parts["prediction"].append(fg["pred"][()].astype(np.int64))
                    parts["decision"].append(fg["decision"][()])
                else:  # epsilon-SVR: prediction; networks: pred
                    parts["target"].append(fg["target"][()])
                    parts["prediction"].append(fg["prediction" if "prediction" in fg else "pred"][()])
        cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
        te = cat["pair"].astype(np.int64)
        n = len(te)
        cols = {"subject": [_subject_number(subject)] * n, "selection": [selection] * n,
                "fold": cat["fold"].astype(np.int64), "pair": te,
                "image_a": ij[te, 0], "image_b": ij[te, 1], "nsd_id_a": ids[ij[te, 0]], "nsd_id_b": ids[ij[te, 1]],
                "value": value[te], "target": cat["target"], "prediction": cat["prediction"]}
        if classifier:
            cols["decision"] = cat["decision"]
        return self._table(cols)

    def grid(self, experiment, model, subject, selection):
        """Nested cross-validation of a grid search: one row per outer fold x setting.

        Columns: ``fold``, ``setting`` (index in ParameterGrid order), the setting's
        parameters (SVM: kernel, C, degree, coef0, gamma, epsilon; networks: lr, dropout,
        weight_decay, epochs, tower, head), ``mean_inner_score`` (``scoring`` over the inner
        folds), ``std_inner_score`` and ``chosen`` (True for the setting the outer fold used).
        """
        with self.open() as f:
            mg, name = self._model_group(f, experiment, model)
            path = f"{_subject_group(subject)}/{selection}"
            if path not in mg:
                raise NotFound(f"{self.path}: {experiment}/{name} has no results for subject {subject!r}, "
                               f"selection {selection!r}")
            g = mg[path]
            if "grid" not in g:
                raise NotFound(f"{self.path}: {experiment}/{name} subject {subject!r} {selection!r} was run without "
                               "a grid ([grid] lists)")
            gg = g["grid"]
            mean = gg["mean_inner_score"][()]
            chosen = gg["chosen"][()]
            params = {}
            for k in gg:
                ds = gg[k]
                if isinstance(ds, h5py.Dataset) and k not in ("chosen", "mean_inner_score"):
                    params[k] = _strings(ds) if ds.dtype.kind in "OSU" else ds[()]
            nf, ns = mean.shape
            std = np.full((nf, ns), np.nan)
            for fo in range(nf):
                if f"fold_{fo}/std" in gg:
                    std[fo] = gg[f"fold_{fo}/std"][()]
        cols = {"fold": np.repeat(np.arange(nf, dtype=np.int64), ns),
                "setting": np.tile(np.arange(ns, dtype=np.int64), nf)}
        for k, v in params.items():
            cols[k] = np.tile(v, nf) if v.dtype != object else list(v) * nf
        cols["mean_inner_score"] = mean.reshape(-1)
        cols["std_inner_score"] = std.reshape(-1)
        cols["chosen"] = (cols["setting"] == np.repeat(chosen, ns))
        return self._table(cols)

    def sweep(self, wide=False):
        """The sweep table of every experiment and model (``/sweep``; also
        ``<output stem>.sweep.csv``).

        Long format (default): one row per task x metric with columns ``experiment``,
        ``model``, ``subject``, ``selection``, ``fold``, ``metric``, ``value`` (NaN for a
        fold that stopped), then the embedding the model was fitted on: ``embedding`` (its
        name under ``/subjects/subjNN/embeddings``; with ``pairs.embeddings`` one model per
        embedding, docs/run.md), ``architecture``, ``layer``, ``depth`` and
        ``relative_depth`` (the embedding's attributes: "" and NaN when it has none, e.g. a
        single-output backend, or a table written before these columns). ``wide=True``: one
        row per task, a column per metric (NaN where a model has no such metric).

        The layer curve of a pair model, per network and selection::

            t = r.sweep(wide=True)
            t.groupby(["architecture", "selection", "relative_depth", "layer"])["r2"].mean()
        """
        tasks = []
        with self.open() as f:
            for e, eg in f.get("sweep", {}).items():
                for m, g in eg.items():
                    t = g["tasks"]
                    tasks.append((e, m, t["subject"][()].astype(np.int64), _strings(t["selection"]),
                                  t["fold"][()].astype(np.int64), t["metrics"][()],
                                  _columns_attr(t["metrics"], []), _embedding_columns(t)))
        if wide:
            metrics = []
            for *_, cols, _v in tasks:
                metrics += [c for c in cols if c not in metrics]
            out = {k: [] for k in ("experiment", "model", "subject", "selection", "fold")}
            out.update({m: [] for m in metrics})
            out.update({k: [] for k in EMBEDDING_COLUMNS})
            for e, m, subj, sel, fold, M, cols, V in tasks:
                n = len(subj)
                out["experiment"] += [e] * n
                out["model"] += [m] * n
                out["subject"] += subj.tolist()
                out["selection"] += list(sel)
                out["fold"] += fold.tolist()
                for c in metrics:
                    out[c] += M[:, cols.index(c)].tolist() if c in cols else [np.nan] * n
                for k in EMBEDDING_COLUMNS:
                    out[k] += list(V[k])
            return self._table(out)
        out = {k: [] for k in ("experiment", "model", "subject", "selection", "fold", "metric", "value")
               + EMBEDDING_COLUMNS}
        for e, m, subj, sel, fold, M, cols, V in tasks:
            for t in range(len(subj)):
                for c, name in enumerate(cols):
                    out["experiment"].append(e)
                    out["model"].append(m)
                    out["subject"].append(int(subj[t]))
                    out["selection"].append(sel[t])
                    out["fold"].append(int(fold[t]))
                    out["metric"].append(name)
                    out["value"].append(float(M[t, c]))
                    for k in EMBEDDING_COLUMNS:
                        out[k].append(V[k][t])
        return self._table(out)

    def summary(self):
        """Mean and population std (ddof 0) over the finished folds of every metric: one
        row per experiment x model x subject x selection x metric (``/sweep/.../summary``;
        columns ``experiment``, ``model``, ``subject``, ``selection``, ``metric``, ``mean``,
        ``std`` and ``folds_finished``, the number of folds they are over: those whose
        metrics are not all NaN in the sweep table; a network's fold that stopped has none.
        The ``folds`` column of ``<stem>.summary.csv`` is the number of outer folds
        instead), then the embedding columns of :meth:`sweep` (one row per embedding with
        ``pairs.embeddings``)."""
        out = {k: [] for k in ("experiment", "model", "subject", "selection", "metric", "mean", "std",
                               "folds_finished") + EMBEDDING_COLUMNS}
        with self.open() as f:
            for e, eg in f.get("sweep", {}).items():
                for m, g in eg.items():
                    s = g["summary"]
                    subj, sel = s["subject"][()], _strings(s["selection"])
                    mean, std = s["mean"][()], s["std"][()]
                    cols = _columns_attr(s["mean"], [])
                    t = g["tasks"]
                    done = ~np.all(np.isnan(t["metrics"][()]), axis=1)
                    V, TV = _embedding_columns(s), _embedding_columns(t)
                    finished = {}
                    for ts, tsel, temb, ok in zip(t["subject"][()], _strings(t["selection"]),
                                                  TV["embedding"], done):
                        key = (int(ts), tsel, temb)
                        finished[key] = finished.get(key, 0) + int(ok)
                    for r in range(len(subj)):
                        for c, name in enumerate(cols):
                            out["experiment"].append(e)
                            out["model"].append(m)
                            out["subject"].append(int(subj[r]))
                            out["selection"].append(sel[r])
                            out["metric"].append(name)
                            out["mean"].append(float(mean[r, c]))
                            out["std"].append(float(std[r, c]))
                            out["folds_finished"].append(
                                finished.get((int(subj[r]), sel[r], V["embedding"][r]), 0))
                            for k in EMBEDDING_COLUMNS:
                                out[k].append(V[k][r])
        return self._table(out)

    def evaluation(self, per_fold=False):
        """The model comparison of ``rdmlearn evaluate`` (``/evaluate``, docs/evaluate.md;
        also ``<output stem>.evaluate.csv``).

        Default: one row per analysis x subject x selection x model x method, the rows of
        the CSV table, with columns ``analysis`` (``rdm``: the embedding's model RDM against
        one subject's brain RDM on all its images; ``rdm-group``: the subjects together on
        the images they all saw, ``subject`` 0; ``folds:<experiment>``: the mean over the
        outer folds of the scores on each fold's test pairs), ``subject``, ``selection``,
        ``model`` (an embedding name; for folds also the experiment's models, e.g. ``svm``,
        ``siamese``, and ``embedding:<name>``, ``encode:<name>``), ``method`` (spearman,
        pearson, kendall_tau_a), ``score``, ``ci_low``, ``ci_high`` (percentile bootstrap
        interval), ``p`` (permutation test of score > 0), ``q`` (corrected,
        evaluate.correction), ``noise_ceiling_lower``, ``noise_ceiling_upper``. NaN where a
        value does not apply (folds rows: the interval, p and q are per fold).

        ``per_fold=True``: the folds analyses fold by fold, with columns ``experiment``,
        ``subject``, ``selection``, ``fold``, ``model``, ``method``, ``score``, ``ci_low``,
        ``ci_high``, ``p``, ``q``, ``noise_ceiling_lower``, ``noise_ceiling_upper``,
        ``perm_scheme``.
        """
        with self.open() as f:
            if "evaluate" not in f:
                raise NotFound(f"{self.path} holds no model comparison (/evaluate): run "
                               "`rdmlearn evaluate` (or the evaluate stage of `rdmlearn run`)")
            ev = f["evaluate"]
            if per_fold:
                keys = ("experiment", "subject", "selection", "fold", "model", "method", "score", "ci_low",
                        "ci_high", "p", "q", "noise_ceiling_lower", "noise_ceiling_upper", "perm_scheme")
                out = {k: [] for k in keys}
                for e, eg in ev.get("folds", {}).items():
                    for sel, sg in eg.items():
                        for subj, g in sg.items():
                            models = list(_strings(g["models"]))
                            folds = g["folds"][()]
                            for method, mg in g.items():
                                if not isinstance(mg, h5py.Group):
                                    continue
                                vals = {k: mg[k][()] for k in ("score", "ci_low", "ci_high", "p", "q")}
                                nc = mg["noise_ceiling"][()]
                                scheme = _strings(mg["perm_scheme"])
                                for fi, fold in enumerate(folds):
                                    for c, model in enumerate(models):
                                        out["experiment"].append(e)
                                        out["subject"].append(int(subj[4:]))
                                        out["selection"].append(sel)
                                        out["fold"].append(int(fold))
                                        out["model"].append(model)
                                        out["method"].append(method)
                                        for k, v in vals.items():
                                            out[k].append(float(v[fi, c]))
                                        out["noise_ceiling_lower"].append(float(nc[fi, 0]))
                                        out["noise_ceiling_upper"].append(float(nc[fi, 1]))
                                        out["perm_scheme"].append(scheme[fi])
                return self._table(out)
            keys = ("analysis", "subject", "selection", "model", "method", "score", "ci_low", "ci_high", "p", "q",
                    "noise_ceiling_lower", "noise_ceiling_upper")
            out = {k: [] for k in keys}
            stats = ("score", "ci_low", "ci_high", "p", "q")

            def row(analysis, subject, sel, model, method, vals, nc):
                out["analysis"].append(analysis)
                out["subject"].append(int(subject))
                out["selection"].append(sel)
                out["model"].append(model)
                out["method"].append(method)
                for k, v in zip(stats, vals):
                    out[k].append(float(v))
                out["noise_ceiling_lower"].append(float(nc[0]))
                out["noise_ceiling_upper"].append(float(nc[1]))

            for sel, g in ev.get("rdm", {}).items():
                models = list(_strings(g["models"]))
                subjects = g["subjects"][()]
                for method in ("spearman", "pearson", "kendall_tau_a"):
                    if method not in g:
                        continue
                    mg = g[method]
                    nc = mg["noise_ceiling"][()]
                    tab = [mg[k][()] for k in stats]
                    for i, s in enumerate(subjects):
                        for e, model in enumerate(models):
                            row("rdm", s, sel, model, method, [t[i, e] for t in tab], nc)
                    if "group" in mg and "score" in mg["group"]:
                        gt = [mg["group"][k][()] for k in stats]
                        for e, model in enumerate(models):
                            row("rdm-group", 0, sel, model, method, [t[e] for t in gt], nc)
            nan4 = [np.nan] * 4
            for e, eg in ev.get("folds", {}).items():
                for sel, sg in eg.items():
                    for subj, g in sg.items():
                        models = list(_strings(g["models"]))
                        for method in ("spearman", "pearson", "kendall_tau_a"):
                            if method not in g:
                                continue
                            mg = g[method]
                            nc = mg["noise_ceiling"][()]
                            ok = np.all(np.isfinite(nc), axis=1)
                            ncm = nc[ok].mean(axis=0) if ok.any() else [np.nan, np.nan]
                            for c, model in enumerate(models):
                                row(f"folds:{e}", subj[4:], sel, model, method, [mg["mean"][c]] + nan4, ncm)
            return self._table(out)

    def config(self, stage, raw=False):
        """The resolved configuration a stage ran with (``/meta/stages/<stage>@config``).

        Returns a dict of sections, each a dict of key -> value (str, as in the INI file:
        ``cfg["pairs"]["k"] == "8"``); ``raw=True`` returns the INI text. A stage run by
        several experiments stores the configuration of the last one.
        """
        with self.open() as f:
            st = f["meta/stages"] if "meta/stages" in f else {}
            if stage not in st:
                raise NotFound(f"{self.path}: no stage {stage!r} in /meta/stages (stages: "
                               f"{', '.join(st) or 'none'})")
            text = _scalar(st[stage].attrs.get("config", ""))
        if raw:
            return text
        p = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=(";", "#"),
                                      inline_comment_prefixes=None, empty_lines_in_values=False)
        p.optionxform = str
        p.read_string(text)
        out = {}
        for sec in p.sections():
            out[sec] = {}
            for k, v in p.items(sec, raw=True):
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                out[sec][k] = v
        return out

    # ---- summary
    def __repr__(self):
        try:
            with self.open() as f:
                lines = [f"<rdmlearn.Results {self.path!r}"]
                subs = sorted(f.get("subjects", {}), key=_subject_number)
                if subs:
                    n_img = [f[f"subjects/{s}/images/nsd_id"].shape[0] if f"subjects/{s}/images/nsd_id" in f else 0
                             for s in subs]
                    lines.append(f"  subjects    {', '.join(str(_subject_number(s)) for s in subs)}"
                                 f" ({', '.join(map(str, n_img))} images)")
                    sels, embs = [], {}
                    for s in subs:
                        for x in f[f"subjects/{s}"].get("rdm", {}):
                            if x not in sels:
                                sels.append(x)
                        for n, ds in f[f"subjects/{s}"].get("embeddings", {}).items():
                            embs.setdefault(n, ds.shape[1] if ds.ndim == 2 else 0)
                    if sels:
                        lines.append(f"  selections  {', '.join(sels)}")
                    if embs:
                        lines.append("  embeddings  " + ", ".join(f"{n} ({d} dims)" for n, d in embs.items()))
                for e in f.get("experiments", {}):
                    parts = []
                    for m in self._models(f, e):
                        mg, _ = self._model_group(f, e, m)
                        groups = [mg[f"{s}/{x}"] for s in mg for x in mg[s]]
                        nf = max((len(_fold_names(g)) for g in groups), default=0)
                        n_s = len(list(mg))
                        metric = "accuracy" if m == "svm" else "r2"
                        vals = [_scalar(g.attrs.get(f"mean_{metric}", np.nan)) for g in groups]
                        vals = [v for v in vals if isinstance(v, float) and np.isfinite(v)]
                        grid = any(int(_scalar(g.attrs.get("grid_settings", 0)) or 0) > 0 for g in groups)
                        desc = f"{m} ({n_s} subj x {len(groups) // max(n_s, 1)} sel x {nf} fold{'s' * (nf != 1)}"
                        if grid:
                            desc += ", grid"
                        stopped = sum(_scalar(g[fn].attrs.get("status", "ok")) != "ok"
                                      for g in groups for fn in _fold_names(g))
                        if stopped:
                            desc += f", {stopped} stopped"
                        if vals:
                            desc += f", mean {metric} {np.mean(vals):.3f}"
                        parts.append(desc + ")")
                    lines.append(f"  experiment  {e}: {'; '.join(parts) or 'pairs only'}")
                st = list(f["meta/stages"]) if "meta/stages" in f else []
                lines.append(f"  stages      {', '.join(st) or 'none'} "
                             f"(rdmlearn {_scalar(f['meta'].attrs.get('rdmlearn_version', '?'))})>")
                return "\n".join(lines)
        except OSError as exc:  # the file went away or is unreadable
            return f"<rdmlearn.Results {self.path!r} (unreadable: {exc})>"
