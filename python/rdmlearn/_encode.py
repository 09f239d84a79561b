"""The encoding models of a results file (``/encode``, written by ``rdmlearn encode``;
docs/encode.md): per vertex accuracies, per-ROI summaries and the predicted RDMs."""
import numpy as np


class _EncodeMixin:
    """Accessors of :class:`rdmlearn.Results` for the encode stage."""

    def _encode_group(self, f, embedding, subject, selection):
        from ._results import NotFound, _subject_group, _subject_number
        s = _subject_group(subject)
        path = f"encode/{embedding}/{s}/{selection}"
        if path not in f:
            have = []
            for e, ge in f.get("encode", {}).items():
                for sj, gs in ge.items():
                    have += [f"{e}/{_subject_number(sj)}/{sel}" for sel in gs]
            raise NotFound(f"{self.path}: no encoding model for embedding {embedding!r}, subject "
                           f"{subject!r}, selection {selection!r} (embedding/subject/selection: "
                           f"{', '.join(have) or 'none; run `rdmlearn encode`'})")
        return f[path]

    def encodings(self):
        """The encoding models in the file: one row per embedding x subject x selection.

        Columns: ``embedding``, ``subject``, ``selection``, ``n_images``, ``n_features``,
        ``n_vertices``, ``n_folds``, ``mode`` (loo or kfold), ``median_r`` (median over the
        selection's vertices of the fold-mean test Pearson r), ``share_positive`` (share of
        vertices with r > 0) and ``median_noise_normalized`` (percent; NaN without a noise
        ceiling).
        """
        from ._results import _scalar, _subject_number
        keys = ("embedding", "subject", "selection", "n_images", "n_features", "n_vertices", "n_folds",
                "mode", "median_r", "share_positive", "median_noise_normalized")
        cols = {k: [] for k in keys}
        with self.open() as f:
            for e, ge in f.get("encode", {}).items():
                for sj, gs in ge.items():
                    for sel, g in gs.items():
                        rs = g["roi_summary"]
                        cls = [c.decode() if isinstance(c, bytes) else c for c in rs["roi_class"][()]]
                        row = cls.index("selection")
                        cols["embedding"].append(e)
                        cols["subject"].append(_subject_number(sj))
                        cols["selection"].append(sel)
                        for k in ("n_images", "n_features", "n_vertices", "n_folds", "mode"):
                            cols[k].append(_scalar(g.attrs[k]))
                        for k in ("median_r", "share_positive"):
                            cols[k].append(float(rs[k][row]))
                        cols["median_noise_normalized"].append(float(rs["median_noise_normalized"][row]))
        return self._table(cols)

    def encoding(self, embedding, subject, selection, fold=None):
        """Per-vertex accuracy of the encoding model: one row per vertex of the selection
        (lh vertices first, then rh, ascending, as the fMRI columns).

        Columns: ``hemi`` ("lh"/"rh"), ``vertex`` (index into the hemisphere's challenge-space
        vertices, i.e. the fMRI column and the ROI mask entry), ``r`` (test Pearson r),
        ``r2`` (test R^2), ``alpha`` (chosen penalty), and where the dataset has a noise
        ceiling ``noise_ceiling`` and ``noise_normalized`` (percent). With ``fold=None`` the
        means over the outer folds (alpha: geometric mean); with ``fold=f`` that fold's values.
        """
        names = ["r", "r2", "alpha", "noise_ceiling", "noise_normalized"]
        with self.open() as f:
            g = self._encode_group(f, embedding, subject, selection)
            src = g if fold is None else g[f"fold_{int(fold)}"]
            idx = {h: np.flatnonzero(~np.isnan(g[f"r_{h}"][()]) | ~np.isnan(g[f"alpha_{h}"][()]))
                   for h in ("lh", "rh")}
            cols = {"hemi": ["lh"] * len(idx["lh"]) + ["rh"] * len(idx["rh"]),
                    "vertex": np.concatenate([idx["lh"], idx["rh"]]).astype(np.int64)}
            for n in names:
                where = g if n == "noise_ceiling" else src
                if f"{n}_lh" not in where:
                    continue
                cols[n] = np.concatenate([where[f"{n}_{h}"][()][idx[h]] for h in ("lh", "rh")])
        return self._table(cols)

    def encoding_map(self, embedding, subject, selection, what="r", fold=None):
        """Full-length challenge-space vectors ``(lh, rh)`` of one per-vertex quantity (``r``,
        ``r2``, ``alpha``, ``noise_ceiling``, ``noise_normalized``), NaN outside the
        selection: ready for plotting on fsaverage with the dataset's fsaverage masks."""
        with self.open() as f:
            g = self._encode_group(f, embedding, subject, selection)
            src = g if fold is None or what == "noise_ceiling" else g[f"fold_{int(fold)}"]
            if f"{what}_lh" not in src:
                raise KeyError(f"{what!r}: not stored (quantities: r, r2, alpha, and with a noise "
                               "ceiling noise_ceiling, noise_normalized)")
            return src[f"{what}_lh"][()], src[f"{what}_rh"][()]

    def encoding_rois(self, embedding, subject, selection):
        """The per-ROI summary of an encoding model: one row per ROI (of every ROI class) with
        vertices in the selection, then the selection as a whole (``roi_class`` "selection").

        Columns: ``roi``, ``roi_class``, ``n_vertices``, ``median_r``, ``mean_r``,
        ``share_positive``, ``median_r2``, ``median_noise_ceiling``,
        ``median_noise_normalized``, ``mean_noise_normalized`` (statistics of the fold means)."""
        with self.open() as f:
            rs = self._encode_group(f, embedding, subject, selection)["roi_summary"]
            cols = {}
            for k in ("roi", "roi_class"):
                cols[k] = [v.decode() if isinstance(v, bytes) else v for v in rs[k][()]]
            for k in ("n_vertices", "median_r", "mean_r", "share_positive", "median_r2",
                      "median_noise_ceiling", "median_noise_normalized", "mean_noise_normalized"):
                cols[k] = rs[k][()]
        return self._table(cols)

    def encoding_rdm(self, embedding, subject, selection, fold):
        """The predicted RDM of one outer fold's test images as an :class:`RDM` (rows: the
        test images, ``nsd_ids`` theirs); ``test_images`` rows of the subject's images are in
        ``attrs["test_images"]``."""
        from ._results import RDM, _attrs, _subject_number
        with self.open() as f:
            g = self._encode_group(f, embedding, subject, selection)
            fg = g[f"fold_{int(fold)}"]
            rows = fg["test_images"][()].astype(np.int64)
            ids, names = self._images(f, subject)
            attrs = _attrs(fg["pred_rdm"])
            attrs["test_images"] = rows
            attrs["n_vertices"] = int(g.attrs["n_vertices"])
            return RDM(fg["pred_rdm"][()], ids[rows], names[rows], _subject_number(subject),
                       selection, attrs)
