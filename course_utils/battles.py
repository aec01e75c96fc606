"""The battle table of chapter 4: who played whom and who won, validated and coded as integers.

A battle table is a ``pandas.DataFrame`` with columns ``model_a``, ``model_b`` and ``winner``,
``winner`` one of ``"model_a"``, ``"model_b"``, ``"tie"`` or ``"tie (bothbad)"`` (the format
public arena leaderboards publish). Elo (``elo.py``) and Bradley-Terry (``bradley_terry.py``)
both read it through :func:`_parse_battles`, which checks it once and names what is wrong.

Symbols
-------
=========================  ==================================================================
``S_A``                    observed score of A: 1 win, 1/2 tie, 0 loss [``score_a``]
``m``, ``n``               number of models, number of battles
``s``, ``b``               rating scale and base of the odds (validated here) [``scale``, ``base``]
=========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["WINNER_SCORES", "REQUIRED_COLUMNS"]

#: Score of ``model_a`` for each accepted value of the ``winner`` column.
WINNER_SCORES: dict[str, float] = {
    "model_a": 1.0,
    "model_b": 0.0,
    "tie": 0.5,
    "tie (bothbad)": 0.5,  # public arena data: a tie where both answers were bad
}
REQUIRED_COLUMNS = ("model_a", "model_b", "winner")


def _check_scale_base(scale: float, base: float) -> None:
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if not (np.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, got {base!r}")


@dataclass(frozen=True)
class _Battles:
    """A validated battle table as integer codes: battle t is models[a[t]] vs models[b[t]]."""

    models: pd.Index  # model names in order of first appearance
    a: np.ndarray  # int64 (n,)
    b: np.ndarray  # int64 (n,)
    score_a: np.ndarray  # float64 (n,), S_A in {1, 0.5, 0}

    @property
    def n(self) -> int:
        return len(self.a)

    @property
    def m(self) -> int:
        return len(self.models)


def _parse_battles(battles: pd.DataFrame) -> _Battles:
    """Validate a battle table and encode it; every error names the column or the row."""
    if not isinstance(battles, pd.DataFrame):
        raise TypeError(
            f"battles must be a pandas DataFrame with columns {', '.join(REQUIRED_COLUMNS)}; "
            f"got {type(battles).__name__}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in battles.columns]
    if missing:
        raise ValueError(
            f"battles is missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"expected columns {', '.join(REQUIRED_COLUMNS)} "
            f"(found {', '.join(repr(c) for c in battles.columns) or 'none'})"
        )
    n = len(battles)
    if n == 0:
        raise ValueError("battles is empty: at least one battle is needed to rate models")

    # winner -> S_A, by a hash lookup (no Python loop over the rows)
    winner = battles["winner"]
    code = pd.Index(list(WINNER_SCORES)).get_indexer(winner.to_numpy(dtype=object))
    bad = np.flatnonzero(code < 0)
    if bad.size:
        pos = int(bad[0])
        raise ValueError(
            f"battles row {battles.index[pos]!r} has winner {winner.iloc[pos]!r}; expected one of "
            f"{', '.join(repr(w) for w in WINNER_SCORES)} ({bad.size} invalid row(s) in all)"
        )
    score_a = np.array(list(WINNER_SCORES.values()))[code]

    names_a = battles["model_a"].to_numpy(dtype=object)
    names_b = battles["model_b"].to_numpy(dtype=object)
    for column, names in (("model_a", names_a), ("model_b", names_b)):
        null = np.flatnonzero(pd.isna(names))
        if null.size:
            pos = int(null[0])
            raise ValueError(
                f"battles row {battles.index[pos]!r} has no model name in column {column!r} "
                f"({null.size} such row(s) in all)"
            )
    # interleave a and b so that models are numbered in order of first appearance
    both = np.empty(2 * n, dtype=object)
    both[0::2], both[1::2] = names_a, names_b
    codes, models = pd.factorize(both)
    a, b = codes[0::2].astype(np.int64), codes[1::2].astype(np.int64)
    same = np.flatnonzero(a == b)
    if same.size:
        pos = int(same[0])
        raise ValueError(
            f"battles row {battles.index[pos]!r} pits {names_a[pos]!r} against itself; "
            f"model_a and model_b must differ ({same.size} such row(s) in all)"
        )
    return _Battles(models=pd.Index(models, name="model"), a=a, b=b, score_a=score_a)


def _ratings_series(values: np.ndarray, models: pd.Index) -> pd.Series:
    """Ratings as a Series indexed by model, highest first (equal ratings keep their order)."""
    ratings = pd.Series(np.asarray(values, dtype=float), index=models, name="rating")
    ratings.index.name = "model"
    return ratings.sort_values(ascending=False, kind="stable")
