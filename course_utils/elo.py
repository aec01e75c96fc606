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
``theta_i``                strength of model i in natural-log units, theta_i = r_i ln(b) / s
``W_ij``                   wins of model i over model j; a tie adds 1/2 to W_ij and to W_ji
``N_ij``                   battles between i and j, N_ij = W_ij + W_ji
``p_ij``                   Bradley-Terry probability that i beats j, sigma(theta_i - theta_j)
``l(theta)``               log-likelihood sum_ij W_ij log p_ij
``alpha``                  pseudo-ties added per played pair when the MLE does not exist
                           [``pseudo_ties``]
``m``, ``n``               number of models, number of battles
``B``                      bootstrap rounds [``rounds``]
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

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

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

#: Score of ``model_a`` for each accepted value of the ``winner`` column.
WINNER_SCORES: dict[str, float] = {
    "model_a": 1.0,
    "model_b": 0.0,
    "tie": 0.5,
    "tie (bothbad)": 0.5,  # public arena data: a tie where both answers were bad
}
REQUIRED_COLUMNS = ("model_a", "model_b", "winner")

#: Default pseudo-ties per played pair, used only when the Bradley-Terry MLE does not exist.
DEFAULT_PSEUDO_TIES = 0.1


# --------------------------------------------------------------------------- helpers


def _check_scale_base(scale: float, base: float) -> None:
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    if not (np.isfinite(base) and base > 1):
        raise ValueError(f"base must be a finite number > 1, got {base!r}")


def _expected_scalar(diff_theta: float) -> float:
    """Scalar sigma(x) for the online-Elo loop (math is ~20x faster than numpy per call)."""
    if diff_theta >= 0:
        return 1.0 / (1.0 + math.exp(-diff_theta))
    z = math.exp(diff_theta)
    return z / (1.0 + z)


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


def online_elo(
    battles: pd.DataFrame,
    k: float = 4,
    scale: float = 400,
    base: float = 10,
    init: float = 1000,
) -> pd.Series:
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


def elo_history(
    battles: pd.DataFrame,
    k: float = 4,
    scale: float = 400,
    base: float = 10,
    init: float = 1000,
) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- Bradley-Terry


def _win_counts(parsed: _Battles) -> np.ndarray:
    """W (m x m): W_ij += S_A and W_ji += 1 - S_A for every battle of i (as A) against j.

    A win adds 1 to the winner's row, a tie 1/2 to both: ties count as half a win each.
    Two bincounts over the battles, no Python loop.
    """
    m = parsed.m
    w = np.bincount(parsed.a * m + parsed.b, weights=parsed.score_a, minlength=m * m)
    w += np.bincount(parsed.b * m + parsed.a, weights=1.0 - parsed.score_a, minlength=m * m)
    return w.reshape(m, m)


def _reachable(adjacency: np.ndarray, start: int = 0) -> np.ndarray:
    """Models reachable from ``start`` along edges i -> j with adjacency[i, j] (breadth-first)."""
    seen = np.zeros(len(adjacency), dtype=bool)
    seen[start] = True
    frontier = seen.copy()
    while frontier.any():
        frontier = adjacency[frontier].any(axis=0) & ~seen
        seen |= frontier
    return seen


def _components(adjacency: np.ndarray) -> list[np.ndarray]:
    """Connected components of an undirected graph, as arrays of model indices."""
    unassigned = np.ones(len(adjacency), dtype=bool)
    groups = []
    while unassigned.any():
        group = _reachable(adjacency, int(np.flatnonzero(unassigned)[0]))
        groups.append(np.flatnonzero(group))
        unassigned &= ~group
    return groups


def _log_likelihood(theta: np.ndarray, w: np.ndarray) -> float:
    """l(theta) = sum_ij W_ij log sigma(theta_i - theta_j), with log sigma(x) = -log(1 + e^(-x))."""
    return float(-(w * np.logaddexp(0.0, theta[None, :] - theta[:, None])).sum())


def _newton_bradley_terry(
    w: np.ndarray, tol: float = 1e-10, max_iter: int = 200
) -> np.ndarray:
    """Maximise l(theta) by Newton's method with a backtracking line search; mean(theta) = 0.

    Gradient (the score equations):  g_i = sum_j [W_ij - N_ij p_ij]  (observed - expected wins)
    Hessian:  -L, L = D - A, A_ij = N_ij p_ij (1 - p_ij), D = diag(sum_j A_ij): a weighted
    graph Laplacian, so l is concave and 1 = (1, ..., 1) spans its null space (the gauge).
    The step solves (L + 11^T/m) delta = g; because g and L's range are orthogonal to 1,
    delta = L^+ g and sum(theta) stays 0. Quadratic convergence: about ten O(m^3) steps.
    """
    m = len(w)
    n_pairs = w + w.T
    wins = w.sum(axis=1)
    gauge = np.full((m, m), 1.0 / m)
    theta = np.zeros(m)
    loglik = _log_likelihood(theta, w)
    for _ in range(max_iter):
        p = sigmoid(theta[:, None] - theta[None, :])
        grad = wins - (n_pairs * p).sum(axis=1)
        a = n_pairs * p * (1.0 - p)
        laplacian = np.diag(a.sum(axis=1)) - a
        step = np.linalg.solve(laplacian + gauge, grad)
        slope = float(grad @ step)  # >= 0: an ascent direction
        t = 1.0
        while True:  # Armijo backtracking; the slack absorbs round-off near the optimum
            candidate = theta + t * step
            new_loglik = _log_likelihood(candidate, w)
            if new_loglik >= loglik + 1e-4 * t * slope - 1e-12 * (1.0 + abs(loglik)):
                break
            t *= 0.5
            if t < 1e-12:
                raise RuntimeError(
                    "Bradley-Terry fit: the line search found no ascent step "
                    f"(largest score-equation residual {np.max(np.abs(grad)):.2e} wins)"
                )
        moved = float(np.max(np.abs(candidate - theta)))
        theta, loglik = candidate - candidate.mean(), new_loglik
        if moved < tol:
            return theta
    raise RuntimeError(
        f"Bradley-Terry fit did not converge in {max_iter} Newton steps (last step {moved:.2e})"
    )


def _fit_bradley_terry(
    w: np.ndarray, models: pd.Index, pseudo_ties: float = DEFAULT_PSEUDO_TIES
) -> np.ndarray:
    """theta (mean 0) maximising l on the win counts W, after the existence checks.

    1. The comparison graph (i -- j when N_ij > 0) must be connected, else ValueError: no
       battle links the groups, so no data says how far apart they are.
    2. The finite MLE exists iff the "scored against" graph (i -> j when W_ij > 0) is
       strongly connected (Zermelo 1929; Ford 1957). If not (e.g. a model won or lost every
       game), alpha = ``pseudo_ties`` virtual ties are added to every pair that has played
       (alpha/2 to W_ij and to W_ji): a weak prior pulling each played pair towards 50 %,
       which makes the fit finite. ``pseudo_ties=0`` raises instead.
    """
    m = len(w)
    if m == 1:
        return np.zeros(1)
    played = (w + w.T) > 0
    groups = _components(played)
    if len(groups) > 1:
        listing = " | ".join(
            "{" + ", ".join(str(models[i]) for i in g) + "}" for g in groups
        )
        raise ValueError(
            f"the comparison graph is disconnected: no battle links these groups of models: "
            f"{listing}. Ratings across groups are not comparable; add battles between the "
            f"groups or rate each group separately"
        )
    scored = w > 0
    if not (_reachable(scored).all() and _reachable(scored.T).all()):
        if not pseudo_ties > 0:
            raise ValueError(
                "the Bradley-Terry MLE does not exist (diverges to +/- infinity): some group of "
                "models won, or lost, every battle against the others (e.g. a model that won "
                "every game). Pass pseudo_ties > 0 to regularise"
            )
        w = w + 0.5 * pseudo_ties * played
    return _newton_bradley_terry(w)


def _bt_settings(
    scale: float = 400,
    base: float = 10,
    init: float = 1000,
    pseudo_ties: float = DEFAULT_PSEUDO_TIES,
) -> dict[str, float]:
    _check_scale_base(scale, base)
    if not (np.isfinite(pseudo_ties) and pseudo_ties >= 0):
        raise ValueError(f"pseudo_ties must be a finite number >= 0, got {pseudo_ties!r}")
    return {"scale": scale, "base": base, "init": init, "pseudo_ties": pseudo_ties}


def win_matrix(battles: pd.DataFrame) -> pd.DataFrame:
    """The pair-count matrix W the Bradley-Terry fit works on.

    W_ij = (wins of row model i over column model j) + 1/2 (ties between i and j), so
    W_ij + W_ji = N_ij, the number of battles between i and j, and the diagonal is 0. Who
    was ``model_a`` does not matter. Models in order of first appearance.
    """
    parsed = _parse_battles(battles)
    return pd.DataFrame(
        _win_counts(parsed),
        index=pd.Index(parsed.models, name="winner"),
        columns=pd.Index(parsed.models, name="loser"),
    )


def bradley_terry_ratings(
    battles: pd.DataFrame,
    scale: float = 400,
    base: float = 10,
    init: float = 1000,
    *,
    pseudo_ties: float = DEFAULT_PSEUDO_TIES,
) -> pd.Series:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale, ties counted as half wins.

    Model (Zermelo 1929; Bradley & Terry 1952), with theta_i = r_i ln(b) / s:

        P(i beats j) = p_ij = sigma(theta_i - theta_j) = 1 / (1 + b^((r_j - r_i)/s))

    the same curve as the Elo expected score. The battles are first aggregated into the
    win counts W (:func:`win_matrix`; a tie adds 1/2 to W_ij and W_ji), and the
    log-likelihood

        l(theta) = sum_ij W_ij log sigma(theta_i - theta_j)

    is maximised on the m x m counts by Newton's method with a line search, to a step
    below 1e-10 (about 2e-8 Elo points). At the maximum the score equations hold: for every
    model, observed wins = expected wins, sum_j W_ij = sum_j N_ij p_ij. The result does not
    depend on the order of the battles. This is the MLE Chatbot Arena reports (Chiang et al.
    2024), which it computes by logistic regression on one row per battle; here the fit
    costs O(m^3) per step whatever the number of battles.

    Gauge: only differences are identified, so the ratings are shifted to have mean r_0
    (``init``): r_i = r_0 + (s / ln b) (theta_i - mean(theta)).

    Edge cases:

    * an empty table: ValueError; a model never compared with the rest (a disconnected
      comparison graph): ValueError naming the groups;
    * the MLE does not exist (a model, or a group of models, won or lost every battle
      against the others; Ford 1957): ``pseudo_ties`` = alpha virtual ties are added to
      every pair of models that has played, a weak prior that keeps the ratings finite
      (a model that won 10 of 10 against one opponent ends about 400 log10(201) = 921
      points above it with alpha = 0.1). Only then: whenever the MLE exists it is returned
      exactly. ``pseudo_ties=0`` raises a ValueError instead.

    Returns a Series indexed by model (index name ``"model"``), highest rating first.
    """
    settings = _bt_settings(scale, base, init, pseudo_ties)
    parsed = _parse_battles(battles)
    theta = _fit_bradley_terry(_win_counts(parsed), parsed.models, settings["pseudo_ties"])
    return _ratings_series(init + theta * (scale / math.log(base)), parsed.models)


def bt_log_likelihood(
    battles: pd.DataFrame,
    ratings: pd.Series | Mapping[str, float],
    scale: float = 400,
    base: float = 10,
) -> float:
    """Bradley-Terry log-likelihood of the battles under given ratings (natural log).

        l(r) = sum_t [ S_t log E_t + (1 - S_t) log(1 - E_t) ] = sum_ij W_ij log p_ij

    where battle t is A vs B with observed score S_t (1, 1/2 or 0) and
    E_t = 1 / (1 + b^((r_B - r_A)/s)). A tie adds (1/2) log E_t + (1/2) log(1 - E_t): half a
    win each way. l depends on the battles only through the counts W (:func:`win_matrix`),
    so not on their order, and on the ratings only through their differences;
    :func:`bradley_terry_ratings` maximises it. ``ratings`` must rate every model in the
    table (extra models are ignored). Computed as -sum W_ij log(1 + e^(-(theta_i - theta_j))),
    which stays finite for any finite ratings.
    """
    _check_scale_base(scale, base)
    parsed = _parse_battles(battles)
    r = pd.Series(ratings, dtype=float)
    missing = [str(name) for name in parsed.models if name not in r.index]
    if missing:
        raise ValueError(f"ratings has no value for model(s) {', '.join(missing)}")
    values = r.reindex(parsed.models).to_numpy()
    if not np.all(np.isfinite(values)):
        raise ValueError("ratings must be finite numbers")
    theta = values * (math.log(base) / scale)
    return _log_likelihood(theta, _win_counts(parsed))


# --------------------------------------------------------------------------- bootstrap


def _bradley_terry_keywords(rating_fn: Callable) -> dict | None:
    """Keywords if ``rating_fn`` is bradley_terry_ratings (or a keyword-only partial of it)."""
    if rating_fn is bradley_terry_ratings:
        return {}
    if (
        isinstance(rating_fn, functools.partial)
        and rating_fn.func is bradley_terry_ratings
        and not rating_fn.args
    ):
        return dict(rating_fn.keywords)
    return None


def _bootstrap_bradley_terry(
    parsed: _Battles, rounds: int, rng: np.random.Generator, settings: dict
) -> np.ndarray:
    """B x m Bradley-Terry ratings, resampling the aggregated counts instead of the rows.

    Battles that share a cell (winner i, loser j) or (tie between i and j) are
    interchangeable for the fit, so resampling the n battles with replacement is the same,
    in distribution, as one multinomial draw of n over the cells with probabilities
    count/n. Each round then costs O(cells + m^3), not O(n).
    """
    m, n = parsed.m, parsed.n
    tie = parsed.score_a == 0.5
    a_won = parsed.score_a == 1.0
    winner = np.where(a_won, parsed.a, parsed.b)
    loser = np.where(a_won, parsed.b, parsed.a)
    low, high = np.minimum(parsed.a, parsed.b), np.maximum(parsed.a, parsed.b)
    cell_id = np.where(tie, m * m + low * m + high, winner * m + loser)
    cells, counts = np.unique(cell_id, return_counts=True)
    is_tie = cells >= m * m
    flat = np.where(is_tie, cells - m * m, cells)
    row, col = flat // m, flat % m
    win_weight = np.where(is_tie, 0.5, 1.0)  # cell count -> W_row,col
    back_weight = np.where(is_tie, 0.5, 0.0)  # cell count -> W_col,row
    probabilities = counts / n
    to_rating = settings["scale"] / math.log(settings["base"])
    out = np.full((rounds, m), np.nan)
    for r in range(rounds):
        c = rng.multinomial(n, probabilities)
        w = np.bincount(row * m + col, weights=c * win_weight, minlength=m * m)
        w += np.bincount(col * m + row, weights=c * back_weight, minlength=m * m)
        w = w.reshape(m, m)
        present = np.flatnonzero((w + w.T).sum(axis=1) > 0)
        theta = _fit_bradley_terry(
            w[np.ix_(present, present)], parsed.models[present], settings["pseudo_ties"]
        )
        out[r, present] = settings["init"] + theta * to_rating
    return out


def bootstrap_ratings(
    battles: pd.DataFrame,
    rating_fn: Callable[[pd.DataFrame], pd.Series],
    rounds: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Ratings refitted on ``rounds`` bootstrap resamples of the battles (Efron 1979).

    Round b draws n battles from the table with replacement, using
    ``numpy.random.Generator(PCG64(seed))`` (``numpy.random.default_rng(seed)``), and
    computes ``rating_fn(resample)``. The spread of a column across rounds estimates the
    sampling uncertainty of that model's rating; :func:`confidence_intervals` turns it into
    intervals, as Chatbot Arena does (Chiang et al. 2024). Deterministic for a fixed seed.

    Fast path: when ``rating_fn`` is :func:`bradley_terry_ratings` (or a
    ``functools.partial`` of it with keyword arguments only), the table is aggregated once
    into cells (winner i, loser j) and (tie i-j) and each round is a multinomial draw of n
    battles over the cells, which has exactly the distribution of resampling the rows; no
    DataFrame is built per round. Any other ``rating_fn`` (e.g. :func:`online_elo`, for which
    the resample's random order also matters) gets the resampled rows as a DataFrame.

    Returns a DataFrame of shape (rounds, m): row index ``"round"``, one column per model,
    columns ordered by median rating, highest first. A model absent from a resample (one with
    very few battles) has NaN in that round; since each round is fitted on its own, the
    Bradley-Terry gauge (mean rating = r_0) is then taken over the models present, which
    shifts every rating of that round a little.
    """
    if not callable(rating_fn):
        raise TypeError(f"rating_fn must be callable, got {type(rating_fn).__name__}")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    parsed = _parse_battles(battles)
    rng = np.random.default_rng(seed)
    keywords = _bradley_terry_keywords(rating_fn)
    if keywords is not None:
        values = _bootstrap_bradley_terry(parsed, int(rounds), rng, _bt_settings(**keywords))
        boot = pd.DataFrame(values, columns=parsed.models)
    else:
        rows = []
        for _ in range(int(rounds)):
            resample = battles.iloc[rng.integers(0, parsed.n, size=parsed.n)]
            rows.append(pd.Series(rating_fn(resample), dtype=float))
        boot = pd.DataFrame(rows).reindex(columns=parsed.models)
    boot.index = pd.RangeIndex(len(boot), name="round")
    boot.columns.name = "model"
    order = boot.median(axis=0).sort_values(ascending=False, kind="stable").index
    return boot[order]


def confidence_intervals(boot_df: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Percentile bootstrap intervals from :func:`bootstrap_ratings`.

    For each model (column): ``rating`` = median over rounds, ``lower`` and ``upper`` = the
    (1 - level)/2 and (1 + level)/2 quantiles (linear interpolation; NaN rounds skipped).
    Sorted by rating, highest first; index name ``"model"``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level!r}")
    if not isinstance(boot_df, pd.DataFrame) or boot_df.empty:
        raise ValueError("boot_df must be a non-empty DataFrame of bootstrap ratings (rounds x models)")
    tail = (1.0 - level) / 2.0
    table = pd.DataFrame(
        {
            "rating": boot_df.median(axis=0),
            "lower": boot_df.quantile(tail, axis=0),
            "upper": boot_df.quantile(1.0 - tail, axis=0),
        }
    )
    table.index.name = "model"
    return table.sort_values("rating", ascending=False, kind="stable")


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
