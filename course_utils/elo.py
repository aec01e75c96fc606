"""Ranking models from pairwise battles: Elo, online Elo, Bradley-Terry MLE, bootstrap CIs.

Chapter 4 ranks pharmaceutical assistants the way public LLM arenas do: two anonymous
models answer the same question, a judge says which answer is better (or calls a tie),
and a rating system turns many such battles into one number per model.

Two rating systems are computed here from the same battle table:

* **Elo** (Elo 1978): after every match both ratings move by K times the surprise,
  ``S_A - E_A``. Cheap and online, but the result depends on the order of the matches
  and on K.
* **Bradley-Terry** (Zermelo 1929; Bradley & Terry 1952): the maximum-likelihood
  strengths of the model P(i beats j) = sigma(theta_i - theta_j), fitted on all battles at
  once. It does not depend on the order, and it is what Chatbot Arena reports
  (Chiang et al. 2024). It is put on the Elo scale, so the two can be compared.

Uncertainty comes from the bootstrap (Efron 1979): refit on battles resampled with
replacement and read the spread of the ratings.

Three modules: ``battles.py`` reads and checks the battle table, this one computes Elo and
simulates battles, ``bradley_terry.py`` fits Bradley-Terry and bootstraps it. Every public
name of the three is importable from here (``from course_utils.elo import ...``).

Symbols (the course's notation; code names in brackets)

=========================  ==================================================================
``r_A, r_B``               ratings of models A and B, in Elo points [``r_a``, ``r_b``]
``s``                      scale: a gap of ``s`` points means odds of ``b`` to 1 [``scale``, 400]
``b``                      base of the odds [``base``, 10]
``E_A``                    expected score of A against B [``expected_score``]
``S_A``                    observed score of A: 1 win, 1/2 tie, 0 loss [``score_a``]
``K``                      K-factor, the largest change one match can make [``k``]
``r_0``                    starting rating (Elo) / mean rating (Bradley-Terry) [``init``]
``sigma(x)``               logistic function 1 / (1 + e^(-x))
``theta_i``, ``W_ij``, ...  the Bradley-Terry symbols: see ``bradley_terry.py``
``m``, ``n``               number of models, number of battles
=========================  ==================================================================

Battle table: a ``pandas.DataFrame`` with columns ``model_a``, ``model_b`` and ``winner``,
``winner`` one of ``"model_a"``, ``"model_b"``, ``"tie"`` or ``"tie (bothbad)"`` (the format
public arena leaderboards publish, so real leaderboard battles can be fed in unchanged).

References
----------
- Elo, A. E. (1978). *The Rating of Chessplayers, Past and Present*. Arco, New York.
- Zermelo, E. (1929). Die Berechnung der Turnier-Ergebnisse als ein Maximumproblem der
  Wahrscheinlichkeitsrechnung. *Mathematische Zeitschrift* 29, 436-460.
- Bradley, R. A. & Terry, M. E. (1952). Rank analysis of incomplete block designs: I. The
  method of paired comparisons. *Biometrika* 39(3/4), 324-345.
- Ford, L. R. Jr. (1957). Solution of a ranking problem from binary comparisons.
  *The American Mathematical Monthly* 64(8), 28-33.
- Efron, B. (1979). Bootstrap methods: another look at the jackknife. *The Annals of
  Statistics* 7(1), 1-26.
- Hunter, D. R. (2004). MM algorithms for generalized Bradley-Terry models. *The Annals of
  Statistics* 32(1), 384-406.
- Chiang, W.-L., Zheng, L., Sheng, Y., et al. (2024). Chatbot Arena: An open platform for
  evaluating LLMs by human preference. *ICML 2024*, arXiv:2403.04132.

Educational material, not medical advice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .battles import (  # noqa: F401  (REQUIRED_COLUMNS, WINNER_SCORES: re-exported)
    REQUIRED_COLUMNS,
    WINNER_SCORES,
    _Battles,
    _check_scale_base,
    _parse_battles,
    _ratings_series,
)
from .bradley_terry import (  # noqa: F401  (re-exported: chapter 4 imports them from here)
    DEFAULT_PSEUDO_TIES,
    bootstrap_ratings,
    bradley_terry_ratings,
    bt_log_likelihood,
    confidence_intervals,
    win_matrix,
)
from .stats import sigmoid  # sigma(x), the "branch" form: only e^(-|x|) <= 1 is ever computed

__all__ = [
    "WINNER_SCORES",
    "expected_score",
    "elo_update",
    "online_elo",
    "elo_history",
    "win_matrix",
    "bradley_terry_ratings",
    "bt_log_likelihood",
    "bootstrap_ratings",
    "confidence_intervals",
    "simulate_battles",
]


def _expected_scalar(diff_theta: float) -> float:
    """Scalar sigma(x) for the online-Elo loop (math is ~20x faster than numpy per call)."""
    if diff_theta >= 0:
        return 1.0 / (1.0 + math.exp(-diff_theta))
    z = math.exp(diff_theta)
    return z / (1.0 + z)


# --------------------------------------------------------------------------- Elo


def expected_score(
    r_a: ArrayLike, r_b: ArrayLike, scale: float = 400, base: float = 10
) -> float | np.ndarray:
    """Expected score of A against B under the Elo model (Elo 1978).

    E_A = 1 / (1 + b^((r_B - r_A)/s)) = sigma((r_A - r_B) ln(b) / s)

    With s = 400 and b = 10, a 400-point lead means 10:1 odds (E_A = 10/11). E_A + E_B = 1,
    and E_A is also the Bradley-Terry probability that A beats B (Bradley & Terry 1952).

    Vectorised (numpy broadcasting of ``r_a`` against ``r_b``) and overflow-safe: it
    evaluates the logistic function through e^(-|x|), so a gap of a million points gives
    exactly 1.0 or 0.0 without warnings. Returns a float for scalar inputs, an array
    otherwise.
    """
    _check_scale_base(scale, base)
    diff = np.asarray(r_a, dtype=float) - np.asarray(r_b, dtype=float)
    e_a = sigmoid(diff * (math.log(base) / scale))
    return float(e_a) if e_a.ndim == 0 else e_a


def elo_update(
    r_a: ArrayLike,
    r_b: ArrayLike,
    score_a: ArrayLike,
    k: float = 32,
    *,
    scale: float = 400,
    base: float = 10,
) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Ratings of A and B after one match (Elo 1978).

    r_A' = r_A + K (S_A - E_A)
    r_B' = r_B + K (S_B - E_B) = r_B - K (S_A - E_A)     (S_B = 1 - S_A, E_B = 1 - E_A)

    ``score_a`` is S_A: 1 if A won, 0.5 for a tie, 0 if A lost (values in between are
    accepted as partial scores). The update is zero-sum: what A gains, B loses. Example: two
    1600 players, K = 32: E_A = 0.5, so the winner gains 32 x (1 - 0.5) = 16 points.
    Vectorised over arrays of matches; returns floats for scalar inputs.
    """
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    s_a = np.asarray(score_a, dtype=float)
    if np.any(~((s_a >= 0) & (s_a <= 1))):
        raise ValueError(f"score_a must be in [0, 1] (1 win, 0.5 tie, 0 loss), got {score_a!r}")
    e_a = expected_score(r_a, r_b, scale=scale, base=base)
    delta = k * (s_a - e_a)
    new_a = np.asarray(r_a, dtype=float) + delta
    new_b = np.asarray(r_b, dtype=float) - delta
    if new_a.ndim == 0 and new_b.ndim == 0:
        return float(new_a), float(new_b)
    return new_a, new_b


def _online_elo_path(
    parsed: _Battles, k: float, scale: float, base: float, init: float, record: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the Elo updates in table order; optionally record every rating after every match."""
    if not (np.isfinite(k) and k >= 0):
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    _check_scale_base(scale, base)
    to_theta = math.log(base) / scale
    ratings = [float(init)] * parsed.m
    history = None
    if record:
        history = np.full((parsed.n + 1, parsed.m), np.nan)
        history[0] = init
    for t, (i, j, s) in enumerate(
        zip(parsed.a.tolist(), parsed.b.tolist(), parsed.score_a.tolist())
    ):
        e_a = _expected_scalar((ratings[i] - ratings[j]) * to_theta)
        delta = k * (s - e_a)
        ratings[i] += delta
        ratings[j] -= delta
        if history is not None:
            history[t + 1, i] = ratings[i]
            history[t + 1, j] = ratings[j]
    if history is not None:
        # models that did not play in match t keep their rating: carry it forward
        history = pd.DataFrame(history).ffill().to_numpy()
    return np.array(ratings), history


def online_elo(battles: pd.DataFrame, k: float = 4, scale: float = 400, base: float = 10,
               init: float = 1000) -> pd.Series:
    """Elo ratings after playing the battles one by one, in the order of the table.

    Every model starts at r_0 = ``init``; for each battle, in table order,

    r_A <- r_A + K (S_A - E_A),   r_B <- r_B - K (S_A - E_A),
    E_A = 1 / (1 + b^((r_B - r_A)/s))

    (Elo 1978). A tie ("tie" or "tie (bothbad)") is S_A = 1/2. The default K = 4 is the small
    K Chatbot Arena used for its online Elo (Chiang et al. 2024); chess uses K = 16 to 32.
    The result depends on the order of the battles (shuffle the table and the ratings
    change), which is why leaderboards moved to the Bradley-Terry MLE
    (:func:`bradley_terry_ratings`). Ratings sum to m * r_0 (each update is zero-sum).

    Returns a Series indexed by model name (index name ``"model"``), highest rating first.
    :func:`elo_history` gives the rating of every model after every match.
    """
    parsed = _parse_battles(battles)
    ratings, _ = _online_elo_path(parsed, k, scale, base, init, record=False)
    return _ratings_series(ratings, parsed.models)


def elo_history(battles: pd.DataFrame, k: float = 4, scale: float = 400, base: float = 10,
                init: float = 1000) -> pd.DataFrame:
    """Online Elo rating of every model after every match (for match-history tables and plots).

    Same updates as :func:`online_elo`. Row 0 (index 0) holds the starting ratings r_0; row t
    holds every model's rating after the t-th battle of the table (``battles.iloc[t - 1]``),
    so the last row equals ``online_elo(battles, ...)``. Columns are the models in order of
    first appearance (column index name ``"model"``, row index name ``"match"``).
    """
    parsed = _parse_battles(battles)
    _, history = _online_elo_path(parsed, k, scale, base, init, record=True)
    return pd.DataFrame(
        history,
        index=pd.RangeIndex(parsed.n + 1, name="match"),
        columns=parsed.models,
    )


# --------------------------------------------------------------------------- chapter helpers


def simulate_battles(
    strengths: Mapping[str, float],
    n: int,
    seed: int = 0,
    tie_rate: float = 0.0,
    scale: float = 400,
    *,
    base: float = 10,
) -> pd.DataFrame:
    """A battle table drawn from the Bradley-Terry model with known ratings ``strengths``.

    Each battle picks an ordered pair of distinct models uniformly at random (i as
    ``model_a``, j as ``model_b``); with probability ``tie_rate`` it is a tie, otherwise A
    wins with probability E_A = 1 / (1 + b^((r_j - r_i)/s)). Deterministic for a fixed seed
    (``numpy.random.default_rng(seed)``).

    Ties here do not depend on the rating gap, so they pull every expected score towards
    1/2: with tie rate tau, A's expected score is tau/2 + (1 - tau) E_A, and a fit that
    counts ties as half wins recovers a compressed rating scale. Use ``tie_rate=0`` to test
    that a fit recovers ``strengths``.
    """
    names = list(strengths)
    if len(names) < 2:
        raise ValueError(f"at least two models are needed, got {len(names)}")
    r = np.array([strengths[name] for name in names], dtype=float)
    if not np.all(np.isfinite(r)):
        raise ValueError("strengths must be finite numbers")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not 0 <= tie_rate <= 1:
        raise ValueError(f"tie_rate must be in [0, 1], got {tie_rate!r}")
    rng = np.random.default_rng(seed)
    m = len(names)
    i = rng.integers(0, m, size=n)
    j = rng.integers(0, m - 1, size=n)
    j += j >= i  # a uniformly random opponent other than i
    tie = rng.random(n) < tie_rate
    a_wins = rng.random(n) < expected_score(r[i], r[j], scale=scale, base=base)
    winner = np.where(tie, "tie", np.where(a_wins, "model_a", "model_b"))
    labels = np.array(names, dtype=object)
    return pd.DataFrame({"model_a": labels[i], "model_b": labels[j], "winner": winner})
