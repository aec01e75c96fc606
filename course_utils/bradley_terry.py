"""Bradley-Terry ratings from pairwise battles: the maximum-likelihood fit and bootstrap intervals.

**Bradley-Terry** (Zermelo 1929; Bradley & Terry 1952): the maximum-likelihood strengths of
the model P(i beats j) = sigma(theta_i - theta_j), fitted on all battles at once, by Newton's
method on the log-likelihood (Ford 1957 gives the condition for the MLE to exist; where it
does not, ``alpha`` pseudo-ties per played pair make it exist). It does not depend on the
order of the battles, and it is what Chatbot Arena reports (Chiang et al. 2024). It is put on
the Elo scale (``elo.py``), so the two can be compared. Uncertainty comes from the bootstrap
(Efron 1979): refit on battles resampled with replacement and read the spread.

Symbols (the course's notation; code names in brackets)
=========================  ==================================================================
``theta_i``                strength of model i in natural-log units, theta_i = r_i ln(b) / s
``r_i``, ``r_0``           rating on the Elo scale, mean rating [``init``]
``s``, ``b``               scale and base of the Elo scale [``scale``, ``base``]
``W_ij``                   wins of model i over model j; a tie adds 1/2 to W_ij and to W_ji
``N_ij``                   battles between i and j, N_ij = W_ij + W_ji
``p_ij``                   Bradley-Terry probability that i beats j, sigma(theta_i - theta_j)
``l(theta)``               log-likelihood sum_ij W_ij log p_ij
``alpha``                  pseudo-ties added per played pair when the MLE does not exist
                           [``pseudo_ties``]
``m``, ``n``               number of models, number of battles
``B``                      bootstrap rounds [``rounds``]
=========================  ==================================================================

Educational material, not medical advice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from .battles import _Battles, _check_scale_base, _parse_battles, _ratings_series
from .stats import sigmoid  # sigma(x), the "branch" form: only e^(-|x|) <= 1 is ever computed

__all__ = ["win_matrix", "bradley_terry_ratings", "bt_log_likelihood", "bootstrap_ratings", "confidence_intervals"]

#: Default pseudo-ties per played pair, used only when the Bradley-Terry MLE does not exist.
DEFAULT_PSEUDO_TIES = 0.1


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
