"""The chapter-7 arena: battles between the stages' answers, and the Bradley-Terry ratings they give.

For every held-out prompt x_i and every pair of stages (k, l), the answer with the higher score
m(y_i^k) vs m(y_i^l) wins a battle (ties within a margin δ), in the public arena format; the
battles become Bradley-Terry ratings on the Elo scale with bootstrap intervals (``elo.py``).
Chapter 4 first meets it, chapter 7 judges the pipeline's stages with it, once with the gold
judge and once with the reward model. Educational material, not medical advice.

Symbols
=======

=====================  =======================================================================
``y_i^k``              the answer of stage k to held-out prompt x_i
``m(y)``               the score that judges a battle (a column of the scored answers)
``δ``                  tie margin: |m(y_i^k) - m(y_i^l)| <= δ is a tie
``R_k``                Bradley-Terry rating of stage k on the Elo scale (``elo.py``)
``τ``                  Kendall's rank correlation of two leaderboards
=====================  =======================================================================

Public names: ``arena_battles``, ``arena_ratings``, ``compare_rankings``, ``kendall_tau``
(re-exported by ``scorecard``).
"""

from __future__ import annotations

import itertools
import math
from functools import partial
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .elo import bootstrap_ratings, bradley_terry_ratings, confidence_intervals

SEED = 0    # the bootstrap's seed


def arena_battles(scored_df: pd.DataFrame, score_col: str = "overall", tie_margin: float = 0.0,
                  stages: Sequence[str] | None = None) -> pd.DataFrame:
    """Battles between stages in the public arena format, judged by the column ``score_col``.

    For every prompt x_i and every pair of stages (k, l), k before l in ``stages`` (default:
    order of first appearance), one battle: ``model_a`` = k, ``model_b`` = l, and

        winner = "tie"      if |m(y_i^k) - m(y_i^l)| <= δ (``tie_margin``)
                 "model_a"  if m(y_i^k) > m(y_i^l) + δ
                 "model_b"  otherwise.

    A prompt that one of the two stages did not answer (or scored NaN) gives no battle. Returns
    the columns ``eval_id``, ``model_a``, ``model_b``, ``score_a``, ``score_b``, ``winner``
    (``elo.bradley_terry_ratings`` reads the last three of the format and ignores the rest);
    battles ordered by pair, then by eval_id.
    """
    if score_col not in scored_df.columns:
        raise ValueError(f"scored_df has no column {score_col!r}")
    if not (np.isfinite(tie_margin) and tie_margin >= 0):
        raise ValueError(f"tie_margin must be a number >= 0, got {tie_margin!r}")
    names = list(pd.unique(scored_df["stage"])) if stages is None else list(stages)
    dup = scored_df.duplicated(["stage", "eval_id"])
    if dup.any():
        row = scored_df[dup].iloc[0]
        raise ValueError(f"stage {row['stage']!r} answered {row['eval_id']!r} more than once")
    wide = scored_df.pivot(index="eval_id", columns="stage", values=score_col).sort_index()
    absent = [s for s in names if s not in wide.columns]
    if absent:
        raise ValueError(f"no scored answers of stage(s) {absent}")
    frames = []
    for a, b in itertools.combinations(names, 2):
        pair = wide[[a, b]].dropna()
        sa, sb = pair[a].to_numpy(dtype=np.float64), pair[b].to_numpy(dtype=np.float64)
        winner = np.where(np.abs(sa - sb) <= tie_margin, "tie", np.where(sa > sb, "model_a", "model_b"))
        frames.append(pd.DataFrame({"eval_id": pair.index.to_numpy(), "model_a": a, "model_b": b,
                                    "score_a": sa, "score_b": sb, "winner": winner}))
    columns = ["eval_id", "model_a", "model_b", "score_a", "score_b", "winner"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def arena_ratings(battles: pd.DataFrame, rounds: int = 1000, seed: int = SEED, level: float = 0.95,
                  scale: float = 400, base: float = 10, init: float = 1000) -> pd.DataFrame:
    """Bradley-Terry ratings of the battles (Elo scale) with percentile bootstrap intervals.

    ``rating`` = ``elo.bradley_terry_ratings`` on all battles (the MLE, ties as half wins);
    ``lower`` / ``upper`` = ``elo.confidence_intervals`` of ``elo.bootstrap_ratings`` with
    ``rounds`` resamples of the battles; ``battles`` and ``win_rate`` = (wins + ties/2) /
    battles of each model. Sorted by rating, highest first (index ``model``).
    """
    fit = partial(bradley_terry_ratings, scale=scale, base=base, init=init)
    mle = fit(battles)
    ci = confidence_intervals(bootstrap_ratings(battles, fit, rounds=rounds, seed=seed), level=level)
    score_a = battles["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5})
    points = pd.concat([pd.Series(score_a.to_numpy(), index=battles["model_a"].to_numpy()),
                        pd.Series(1.0 - score_a.to_numpy(), index=battles["model_b"].to_numpy())])
    grouped = points.groupby(level=0)
    out = pd.DataFrame({"rating": mle, "lower": ci["lower"].reindex(mle.index),
                        "upper": ci["upper"].reindex(mle.index),
                        "battles": grouped.size().reindex(mle.index).astype(int),
                        "win_rate": grouped.mean().reindex(mle.index)})
    out.index.name = "model"
    return out


def _settled(ratings: pd.Series, decimals: int = 6) -> pd.Series:
    """Ratings rounded to ``decimals``: two models with the same battles get ratings equal up to the
    solver's floating-point noise (1e-12), which would otherwise order them differently on
    different CPUs; rounded, they tie exactly."""
    return ratings.astype(float).round(decimals)


def kendall_tau(a: pd.Series | Mapping[str, float], b: pd.Series | Mapping[str, float]) -> float:
    """Kendall's τ between two scorings of the same items (the items both contain).

    τ = (concordant - discordant) / (m(m-1)/2) over the pairs of items; a pair tied in
    either scoring counts as neither (τ_a). 1: same order, -1: reversed, NaN with fewer than 2 items.
    """
    a, b = _settled(pd.Series(a, dtype=float)), _settled(pd.Series(b, dtype=float))
    items = [i for i in a.index if i in b.index]
    m = len(items)
    if m < 2:
        return math.nan
    x, y = a[items].to_numpy(), b[items].to_numpy()
    s = sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in itertools.combinations(range(m), 2))
    return float(s / (m * (m - 1) / 2))


def compare_rankings(ratings_a: pd.Series | pd.DataFrame, ratings_b: pd.Series | pd.DataFrame,
                     names: tuple[str, str] = ("gold judge", "reward model")) -> pd.DataFrame:
    """Two leaderboards of the same models side by side: rating and rank (1 = best) under each.

    Accepts Series of ratings or the DataFrames of :func:`arena_ratings` (column ``rating``).
    ``rank change`` = rank under the second minus rank under the first (> 0: the second
    judge ranks the model lower). Sorted by the first ranking.
    """
    ra = _settled(ratings_a["rating"] if isinstance(ratings_a, pd.DataFrame) else pd.Series(ratings_a, dtype=float))
    rb = _settled(ratings_b["rating"] if isinstance(ratings_b, pd.DataFrame) else pd.Series(ratings_b, dtype=float))
    models = [m for m in ra.sort_values(ascending=False, kind="stable").index if m in rb.index]
    rank_a = ra[models].rank(ascending=False, method="min").astype(int)
    rank_b = rb[models].rank(ascending=False, method="min").astype(int)
    out = pd.DataFrame({f"rating ({names[0]})": ra[models], f"rank ({names[0]})": rank_a,
                        f"rating ({names[1]})": rb[models], f"rank ({names[1]})": rank_b,
                        "rank change": rank_b - rank_a}, index=pd.Index(models, name="model"))
    return out
