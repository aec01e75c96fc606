"""The statistics the course uses, in one place: the logistic function, the Wilson interval of a
proportion, and percentile bootstrap intervals.

Chapter 3 reports a reward model's accuracy with a Wilson interval; chapters 6, 7 and 8 put
bootstrap intervals on means over held-out prompts and pairs; the Bradley-Terry models of
chapters 3 and 4 read probabilities through the logistic function. The rating-specific
bootstrap (battles resampled as multinomial counts) stays in ``elo.py``.

Symbols (the course's notation; code names in brackets)

=====================  ======================================================================
``σ(x)``               logistic function 1 / (1 + e^(-x)) [``sigmoid``]
``EXP_SAFE``           60: for |x| ≤ 60, e^x and a sum of e^x over a row neither overflow nor
                       underflow in float32, so a softmax may skip its max-shift
                       (``model.softmax_rows``, ``losses.cross_entropy``)
``k``, ``n``           successes and trials of a proportion; p̂ = k / n
``z``                  standard-normal quantile of a two-sided interval; ``Z95`` = 1.95996...,
                       the 97.5 % quantile (95 % interval)
``[lo, hi]``           Wilson score interval of p̂ (Wilson 1927) [``wilson_interval``]:
                       centre = (p̂ + z²/2n) / (1 + z²/n),
                       half-width = z / (1 + z²/n) · √(p̂(1-p̂)/n + z²/4n²)
``B``                  bootstrap rounds [``rounds``]
``idx``                (B, n) row indices drawn with replacement from
                       ``numpy.random.default_rng(seed)`` [``bootstrap_indices``]
``\\bar m_b``           the mean of resample b, NaN left out [``bootstrap_means``]
``L``                  confidence level; the percentile interval (Efron 1979) is the
                       (1-L)/2 and (1+L)/2 quantiles of the B bootstrap values
                       [``percentile_interval``]
``TAILS_95``           (0.025, 0.975): the quantile levels of a 95 % interval, written exactly
                       (the chapter-6 and chapter-8 tables pass them as ``tails``)
=====================  ======================================================================

Two callers of the same formula sometimes compute it in a different but equivalent way (the
two forms of σ; a 95 % interval read at the quantiles (1 - 0.95)/2 or at exactly 0.025).
The results differ only in the last bit, but a printed table compared bit for bit would
change, so each such detail is an argument and every caller keeps its own.

References
----------
- Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
  *Journal of the American Statistical Association* 22(158), 209-212.
- Efron, B. (1979). Bootstrap methods: another look at the jackknife. *The Annals of
  Statistics* 7(1), 1-26.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "EXP_SAFE",
    "Z95",
    "TAILS_95",
    "sigmoid",
    "wilson_interval",
    "bootstrap_indices",
    "bootstrap_means",
    "percentile_interval",
]

EXP_SAFE = 60.0   # |x| ≤ 60: exp(x) and Σ exp(x) over a row neither overflow nor underflow in float32
Z95 = 1.959963984540054   # the 97.5% quantile of the standard normal
TAILS_95 = (0.025, 0.975)  # the 2.5% and 97.5% quantile levels, written exactly (the chapter-6 and -8 tables)


# ============================================================================ the logistic function
def sigmoid(x, method: str = "branch") -> np.ndarray:
    """σ(x) = 1 / (1 + e^(-x)) without overflow, element-wise. Two equivalent forms:

    * ``"branch"`` (``elo.py``): 1 / (1 + e^(-|x|)) for x ≥ 0 and e^(-|x|) / (1 + e^(-|x|)) for
      x < 0, so only e^(-|x|) ≤ 1 is ever computed; in the dtype of ``x``.
    * ``"logaddexp"`` (``reward.py``): exp(-log(1 + e^(-x))) = exp(-logaddexp(0, -x)), in float64.

    Both are within 2.3e-16 of the exact value (relative error below 5e-16 for the branch
    form, up to 4e-15 for the logaddexp form in the far negative tail), but they differ in the
    last bit for about half of the arguments in [-5, 5], which is why each caller keeps its own.
    """
    if method == "branch":
        with np.errstate(under="ignore"):  # e^(-|x|) -> 0 for huge gaps is the right answer
            z = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
    if method == "logaddexp":
        return np.exp(-np.logaddexp(0.0, -np.asarray(x, dtype=np.float64)))
    raise ValueError(f"method must be 'branch' or 'logaddexp', got {method!r}")


# ============================================================================ a proportion
def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (Wilson 1927): the 95% interval by default.

    centre = (p̂ + z²/2n) / (1 + z²/n),  half-width = z / (1 + z²/n) · √(p̂(1-p̂)/n + z²/4n²).
    Unlike p̂ ± z√(p̂(1-p̂)/n), it stays inside [0, 1] and is sensible at p̂ = 0 or 1.
    Returns (0, 1) when n ≤ 0 (no trial, no information).
    """
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # the interval always contains p̂; min / max only guard against rounding at p̂ = 0 or 1
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


# ============================================================================ the bootstrap
def bootstrap_indices(n: int, rounds: int, seed) -> np.ndarray:
    """(rounds, n) row indices drawn with replacement by ``numpy.random.default_rng(seed)``.

    Row b is bootstrap resample b of n items (Efron 1979). The same (n, rounds, seed) always
    gives the same resamples, so two tables over the same items are resampled identically
    (paired).
    """
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def bootstrap_means(values: np.ndarray, rounds: int, seed) -> np.ndarray:
    """(rounds, M) means \\bar m_b of ``values`` (n, M) over the resamples of
    :func:`bootstrap_indices` (the same rows for every column).

    NaN (a metric that does not apply, like dose accuracy without a number) is left out of
    each mean; a resample with no value at all gives NaN.
    """
    n = values.shape[0]
    drawn = values[bootstrap_indices(n, rounds, seed)]
    counts = (~np.isnan(drawn)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.nansum(drawn, axis=1) / np.maximum(counts, 1), np.nan)


def percentile_interval(values, level: float = 0.95, *, tails: tuple[float, float] | None = None,
                        finite: bool = False) -> tuple[float, float]:
    """The percentile bootstrap interval (Efron 1979): the (1-L)/2 and (1+L)/2 quantiles of
    ``values`` (linear interpolation), with L = ``level``.

    ``tails``: the two quantile levels, given directly instead of through ``level``
    (:data:`TAILS_95` = (0.025, 0.975); (1 - 0.95)/2 is 0.025000000000000022 in floating
    point, which can move an interval in its last bit). NaN values are left out, and with
    ``finite=True`` ±inf too. Returns (NaN, NaN) when no value is left.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)] if finite else v[~np.isnan(v)]
    if v.size == 0:
        return math.nan, math.nan
    if tails is None:
        tail = (1.0 - level) / 2.0
        tails = (tail, 1.0 - tail)
    lo, hi = np.quantile(v, list(tails))
    return float(lo), float(hi)
