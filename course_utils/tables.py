"""DataFrames to one ``.npz`` and back, without pickles: the format of the cached result tables.

``experiments.npz`` (chapter 6), ``beyond.npz`` (chapter 8) and ``scorecard.npz`` (chapter 7)
are written by :func:`save_tables` and read by :func:`load_tables`, each with its own format
tag (``challenges.CACHE_FORMAT``, ``scorecard.CACHE_FORMAT``).

Layout: ``__format__`` (the tag), ``__tables__`` (table names in order), and per table
``<table>/__columns__`` (column names in order) and ``<table>/<k>`` (column k). Integers are
stored as int64, booleans as bool, floats as float64 with NaN replaced by 0 and a mask
``<table>/<k>:nan`` (NaN never equals NaN, so a rebuild compares equal), anything else as
numpy unicode (None as ""). The index is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["save_tables", "load_tables"]


def _encode_table(name: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Arrays for one table: every column as a numpy array, strings as unicode, NaN as a mask."""
    out = {f"{name}/__columns__": np.array([str(c) for c in df.columns], dtype=str)}
    for k, col in enumerate(df.columns):
        v = df[col].to_numpy()
        key = f"{name}/{k}"
        if v.dtype.kind in "biu":
            out[key] = v.astype(np.int64) if v.dtype.kind != "b" else v.astype(bool)
        elif v.dtype.kind == "f":
            v = v.astype(np.float64)
            nan = np.isnan(v)                  # ±inf is stored as itself (a Gao curve with no peak)
            if nan.any():                      # NaN never equals NaN: store a mask, so rebuilds compare equal
                out[f"{key}:nan"] = nan
                v = np.where(nan, 0.0, v)
            out[key] = v
        else:
            out[key] = np.array(["" if x is None else str(x) for x in v], dtype=str)
    return out


def save_tables(tables: Mapping[str, pd.DataFrame], path: str | Path, fmt: str) -> Path:
    """Write every table to one compressed ``.npz`` tagged ``fmt`` (no pickles); returns the path."""
    arrays: dict[str, np.ndarray] = {"__format__": np.array(fmt),
                                     "__tables__": np.array(list(tables), dtype=str)}
    for name, df in tables.items():
        if "/" in name:
            raise ValueError(f"table names may not contain '/': {name!r}")
        arrays.update(_encode_table(name, df))
    path = Path(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_tables(path: str | Path, fmt: str, what: str = "a table cache") -> dict[str, pd.DataFrame]:
    """Read a file written by :func:`save_tables` with the tag ``fmt`` (``allow_pickle=False``).

    Raises ``ValueError`` ("<path> is not <what> ...") when the file carries another tag.
    """
    with np.load(path, allow_pickle=False) as z:
        if "__format__" not in z.files or str(z["__format__"]) != fmt:
            raise ValueError(f"{path} is not {what} (format {fmt!r} expected)")
        tables = {}
        for name in z["__tables__"].tolist():
            cols = z[f"{name}/__columns__"].tolist()
            data = {}
            for k, c in enumerate(cols):
                v = z[f"{name}/{k}"]
                if f"{name}/{k}:nan" in z.files:
                    v = np.where(z[f"{name}/{k}:nan"], np.nan, v)
                data[c] = v.tolist() if v.dtype.kind == "U" else v
            tables[name] = pd.DataFrame(data, columns=cols)
    return tables
