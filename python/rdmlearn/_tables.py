"""Tables: pandas DataFrames when pandas is there, numpy structured arrays or lists of
dicts otherwise.

Every tabular accessor of :class:`rdmlearn.Results` builds its table as ordered columns
(name -> list of values) and hands them to :func:`make_table`, so the three formats always
hold the same rows and columns in the same order.
"""
from __future__ import annotations

import math

import numpy as np

FORMATS = ("pandas", "numpy", "records")


def resolve_format(tables):
    """The table format to use: ``tables`` if given, else pandas when importable, else numpy."""
    if tables is None:
        try:
            import pandas  # noqa: F401
        except ImportError:
            return "numpy"
        return "pandas"
    if tables not in FORMATS:
        raise ValueError(f"tables={tables!r}: expected one of {', '.join(FORMATS)} or None "
                         "(pandas when installed, numpy otherwise)")
    if tables == "pandas":
        import pandas  # noqa: F401  (fail here, with pandas' own ImportError)
    return tables


def _column_dtype(values):
    """numpy dtype for one column: int64, float64, bool or a unicode string."""
    kinds = set()
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            kinds.add("missing")
        elif isinstance(v, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(v, (int, np.integer)):
            kinds.add("int")
        elif isinstance(v, (float, np.floating)):
            kinds.add("float")
        else:
            kinds.add("str")
    if "str" in kinds:
        width = max([len(str(v)) for v in values if v is not None] + [1])
        return np.dtype(f"U{width}")
    if kinds == {"bool"}:
        return np.dtype(bool)
    if kinds and kinds <= {"int", "bool"}:
        return np.dtype(np.int64)
    return np.dtype(np.float64)  # floats, or ints with missing values (NaN)


def _fill(values, dtype):
    if dtype.kind == "U":
        return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]
    if dtype.kind == "f":
        return [math.nan if v is None else float(v) for v in values]
    return values


def make_table(columns, fmt):
    """Build a table from ``columns`` (dict: name -> sequence, all the same length).

    Missing values are ``None`` or NaN in the input; they become NaN in float columns and
    ``""`` in string columns. Columns given as numpy arrays keep their dtype.
    """
    names = list(columns)
    n = len(next(iter(columns.values()))) if names else 0
    arrays = {}
    for name in names:
        col = columns[name]
        if len(col) != n:
            raise ValueError(f"column {name!r} has {len(col)} values, expected {n}")
        if isinstance(col, np.ndarray) and col.dtype.kind in "biuf":
            arrays[name] = col
        else:
            values = list(col)
            dt = _column_dtype(values)
            arrays[name] = np.array(_fill(values, dt), dtype=dt) if n else np.zeros(0, dt)
    if fmt == "pandas":
        import pandas as pd
        return pd.DataFrame({k: arrays[k] for k in names}, columns=names)
    if fmt == "numpy":
        out = np.zeros(n, dtype=[(k, arrays[k].dtype) for k in names])
        for k in names:
            out[k] = arrays[k]
        return out
    rows = []
    for i in range(n):
        rows.append({k: arrays[k][i].item() for k in names})
    return rows
