"""course_utils.stats against scipy: the Wilson interval, the logistic function, the bootstrap
helpers; and the Bradley-Terry Newton fit of elo.py against a general-purpose optimiser
(scipy.optimize.minimize on the negative log-likelihood)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from course_utils import elo, layers, losses, reward, stats

# ----------------------------------------------------------------------------- the Wilson interval
GRID = [(k, n) for n in (1, 2, 3, 5, 10, 20, 37, 100, 1000) for k in sorted({0, 1, n // 3, n // 2, n - 1, n})]


@pytest.mark.parametrize(("k", "n"), GRID)
def test_wilson_interval_matches_scipy(k, n):
    ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson_interval(k, n)
    assert lo == pytest.approx(max(ci.low, 0.0), abs=1e-12)
    assert hi == pytest.approx(min(ci.high, 1.0), abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.99])
def test_wilson_interval_other_levels_match_scipy(level):
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    for k, n in [(3, 10), (17, 40), (0, 7), (9, 9)]:
        ci = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        assert stats.wilson_interval(k, n, z=z) == pytest.approx((max(ci.low, 0.0), min(ci.high, 1.0)), abs=1e-12)


def test_wilson_interval_z95_and_no_trials():
    assert stats.Z95 == pytest.approx(scipy.stats.norm.ppf(0.975), abs=1e-15)
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)


def test_reward_reexports_the_wilson_interval():
    assert reward.wilson_interval is stats.wilson_interval
    assert reward.Z95 == stats.Z95


# ----------------------------------------------------------------------------- the logistic function
@pytest.mark.parametrize(("method", "rtol"), [("branch", 5e-16), ("logaddexp", 5e-15)])
def test_sigmoid_matches_scipy_without_overflow(method, rtol):
    x = np.concatenate([np.linspace(-50, 50, 2001), [-1e308, -1000.0, -745.2, 0.0, 745.2, 1000.0, 1e308]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                 # no overflow or underflow warnings
        s = stats.sigmoid(x, method=method)
    np.testing.assert_allclose(s, scipy.special.expit(x), rtol=rtol, atol=0)
    near = np.abs(x) <= 5
    assert np.abs(s - scipy.special.expit(x))[near].max() <= np.finfo(float).eps
    assert s[-1] == 1.0 and s[-7] == 0.0


def test_sigmoid_forms_keep_their_dtype_and_reject_unknown_methods():
    x32 = np.linspace(-5, 5, 11, dtype=np.float32)
    assert stats.sigmoid(x32).dtype == np.float32                        # the branch form: dtype of x
    assert stats.sigmoid(x32, method="logaddexp").dtype == np.float64   # the logaddexp form: float64
    with pytest.raises(ValueError, match="method"):
        stats.sigmoid(x32, method="tanh")


def test_exp_safe_is_one_constant():
    assert layers.EXP_SAFE is stats.EXP_SAFE and losses.EXP_SAFE is stats.EXP_SAFE


# ----------------------------------------------------------------------------- the bootstrap
def test_bootstrap_indices_are_seeded_resamples():
    idx = stats.bootstrap_indices(7, 50, seed=3)
    assert idx.shape == (50, 7) and idx.min() >= 0 and idx.max() < 7
    np.testing.assert_array_equal(idx, stats.bootstrap_indices(7, 50, seed=3))
    np.testing.assert_array_equal(idx, np.random.default_rng(3).integers(0, 7, size=(50, 7)))
    assert not np.array_equal(idx, stats.bootstrap_indices(7, 50, seed=4))


def test_bootstrap_means_leave_nan_out():
    values = np.array([[1.0, np.nan], [2.0, np.nan], [4.0, 3.0]])
    boot = stats.bootstrap_means(values, 200, seed=0)
    idx = stats.bootstrap_indices(3, 200, seed=0)
    np.testing.assert_allclose(boot[:, 0], values[idx, 0].mean(axis=1))
    second = values[idx, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)                 # all-NaN resamples
        np.testing.assert_allclose(boot[:, 1], np.nanmean(second, axis=1))
    assert np.isnan(boot[:, 1]).any() and not np.isnan(boot[:, 0]).any()


def test_percentile_interval():
    v = np.random.default_rng(1).standard_normal(1001)
    lo, hi = stats.percentile_interval(v, 0.95)
    t = (1 - 0.95) / 2
    assert (lo, hi) == tuple(np.quantile(v, [t, 1 - t]))
    assert stats.percentile_interval(v, tails=stats.TAILS_95) == tuple(np.percentile(v, [2.5, 97.5]))
    assert stats.percentile_interval(v, 0.9) == pytest.approx(tuple(scipy.stats.mstats.mquantiles(
        v, [0.05, 0.95], alphap=1, betap=1)), abs=1e-12)                # linear interpolation (type 7)
    with_gaps = np.concatenate([v, [np.nan, np.inf]])
    assert stats.percentile_interval(with_gaps, tails=stats.TAILS_95, finite=True) == \
        stats.percentile_interval(v, tails=stats.TAILS_95)
    assert stats.percentile_interval(np.concatenate([v, [np.nan]])) == stats.percentile_interval(v)
    assert all(math.isnan(x) for x in stats.percentile_interval([np.nan, np.inf], finite=True))


# ----------------------------------------------------------------------------- the Bradley-Terry fit
def _negative_log_likelihood(theta: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """-l(theta) = sum_ij W_ij log(1 + e^(theta_j - theta_i)) and its gradient."""
    diff = theta[None, :] - theta[:, None]                              # theta_j - theta_i
    nll = float((w * np.logaddexp(0.0, diff)).sum())
    q = w * scipy.special.expit(diff)                                   # W_ij (1 - p_ij)
    return nll, q.sum(axis=0) - q.sum(axis=1)


def _scipy_theta(w: np.ndarray) -> np.ndarray:
    res = scipy.optimize.minimize(_negative_log_likelihood, np.zeros(len(w)), args=(w,), jac=True,
                                  method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000})
    return res.x - res.x.mean()


def _theta(ratings: pd.Series, init: float = 1000, scale: float = 400, base: float = 10) -> np.ndarray:
    return (ratings.to_numpy() - init) * math.log(base) / scale


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bradley_terry_newton_fit_matches_scipy_minimize(seed):
    strengths = {"A": 1250, "B": 1100, "C": 1000, "D": 980, "E": 700}
    battles = elo.simulate_battles(strengths, 3000, seed=seed, tie_rate=0.1)
    w = elo.win_matrix(battles)
    ratings = elo.bradley_terry_ratings(battles).reindex(w.index)
    theta_newton = _theta(ratings)
    theta_scipy = _scipy_theta(w.to_numpy())
    np.testing.assert_allclose(theta_newton, theta_scipy, atol=1e-6)
    nll_newton, grad = _negative_log_likelihood(theta_newton, w.to_numpy())
    assert nll_newton <= _negative_log_likelihood(theta_scipy, w.to_numpy())[0] + 1e-9
    np.testing.assert_allclose(grad, 0.0, atol=1e-6)                   # the score equations hold
    assert elo.bt_log_likelihood(battles, ratings) == pytest.approx(-nll_newton, rel=1e-12)


def test_bradley_terry_pseudo_ties_are_the_mle_of_the_padded_counts():
    # A wins every battle: no finite MLE; alpha pseudo-ties per played pair make it the MLE of W + alpha/2
    battles = pd.DataFrame({"model_a": ["A"] * 6 + ["B"] * 5 + ["C"] * 3,
                            "model_b": ["B"] * 6 + ["C"] * 5 + ["A"] * 3,
                            "winner": ["model_a"] * 6 + ["model_a", "model_b"] * 2 + ["tie"] + ["model_b"] * 3})
    w = elo.win_matrix(battles)
    alpha = 0.1
    padded = w.to_numpy() + np.where((w + w.T).to_numpy() > 0, alpha / 2, 0.0)
    ratings = elo.bradley_terry_ratings(battles, pseudo_ties=alpha).reindex(w.index)
    np.testing.assert_allclose(_theta(ratings), _scipy_theta(padded), atol=1e-6)
