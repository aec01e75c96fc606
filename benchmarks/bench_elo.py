"""Speed of the Bradley-Terry ratings in course_utils.elo on an arena-sized battle table.

Default: 1,000,000 simulated battles among 50 models (10 % ties). Prints the time to
validate and aggregate the table into win counts, to fit once on the counts, for
``bradley_terry_ratings`` end to end, and for a 100-round bootstrap.

When scikit-learn is importable (``pip install .[sklearn]``), it also fits the same MLE the
way public leaderboards compute it (the Chatbot Arena notebook, Chiang et al. 2024): one row
per battle with +ln(b) in model_a's column and -ln(b) in model_b's, every battle
duplicated so that a tie becomes one win for each side, and an unpenalised
LogisticRegression without intercept. It reports that fit's time and the largest absolute
rating difference between the two methods.

    python benchmarks/bench_elo.py [--battles N] [--models M] [--rounds B] [--seed S]

Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import inspect
import math
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from course_utils import bradley_terry, elo
from course_utils import battles as battles_mod


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[object, float, float]:
    """Run ``fn`` ``repeat`` times; return the last result, the best and the median seconds."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times), statistics.median(times)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.1f} ms" if seconds < 10 else f"{seconds:9.2f} s "


def print_environment() -> None:
    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        print("threadpoolctl not installed: BLAS kernel unknown (pip install .[dev])")
        return
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            print(
                f"BLAS: {pool.get('internal_api')} {pool.get('version')}, "
                f"kernel {pool.get('architecture')}, {pool.get('num_threads')} thread(s)"
            )


def arena_logistic_regression(
    battles: pd.DataFrame, scale: float = 400, base: float = 10, init: float = 1000
) -> tuple[pd.Series, dict[str, float]]:
    """Bradley-Terry MLE by logistic regression on a per-battle design matrix.

    X has one row per battle and one column per model, +ln(b) for model_a and -ln(b) for
    model_b, so P(y = 1) = sigma(ln(b) (beta_a - beta_b)) = 1 / (1 + b^(beta_b - beta_a)) and
    r = s beta + r_0. Every battle appears twice; y = 1 when model_a won, and for a tie in
    the first copy only, which makes a tie one win for each side (half a win each, as in
    ``elo.bradley_terry_ratings``). No intercept and no penalty; lbfgs starts at beta = 0 and
    every gradient sums to zero over the models, so the mean rating stays r_0.
    """
    from sklearn.linear_model import LogisticRegression

    timings = {}
    start = time.perf_counter()
    models = pd.concat([battles["model_a"], battles["model_b"]]).unique()
    column = pd.Series(np.arange(len(models)), index=models)
    doubled = pd.concat([battles, battles], ignore_index=True)
    n, m = len(doubled), len(models)
    x = np.zeros((n, m))
    x[np.arange(n), column[doubled["model_a"]].to_numpy()] = +math.log(base)
    x[np.arange(n), column[doubled["model_b"]].to_numpy()] = -math.log(base)
    y = np.zeros(n)
    y[(doubled["winner"] == "model_a").to_numpy()] = 1.0
    tie = doubled["winner"].isin(["tie", "tie (bothbad)"]).to_numpy(copy=True)
    tie[n // 2 :] = False
    y[tie] = 1.0
    timings["design matrix"] = time.perf_counter() - start

    # "no penalty" is penalty=None up to scikit-learn 1.7 and C=inf from 1.8 on
    if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated":
        no_penalty = {"C": np.inf}
    else:
        no_penalty = {"penalty": None}
    model = LogisticRegression(fit_intercept=False, tol=1e-8, **no_penalty)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y)
    timings["fit"] = time.perf_counter() - start
    timings["lbfgs iterations"] = float(np.max(model.n_iter_))
    timings["warnings"] = [str(w.message).splitlines()[0] for w in caught]
    ratings = pd.Series(scale * model.coef_[0] + init, index=models, name="rating")
    return ratings.sort_values(ascending=False), timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--battles", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--tie-rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print_environment()
    rng = np.random.default_rng(args.seed)
    strengths = {
        f"model-{i:02d}": float(r) for i, r in enumerate(rng.normal(1000.0, 150.0, args.models))
    }
    battles, t_sim, _ = timed(
        lambda: elo.simulate_battles(strengths, args.battles, seed=args.seed, tie_rate=args.tie_rate)
    )
    print(
        f"\n{args.battles:,} battles among {args.models} models, tie rate {args.tie_rate:.2f}, "
        f"seed {args.seed}"
    )
    print(f"{'simulate the battle table':44s}{fmt(t_sim)}")

    def aggregate() -> tuple[np.ndarray, pd.Index]:
        parsed = battles_mod._parse_battles(battles)
        return bradley_terry._win_counts(parsed), parsed.models

    (w, models), t_agg, median = timed(aggregate, repeat=3)
    print(f"{'aggregation (validate + win counts W)':44s}{fmt(t_agg)}  (best of 3, median {fmt(median).strip()})")
    _, t_fit, median = timed(lambda: bradley_terry._fit_bradley_terry(w, models), repeat=20)
    print(f"{'one fit on the counts (Newton)':44s}{fmt(t_fit)}  (best of 20, median {fmt(median).strip()})")
    ratings, t_e2e, _ = timed(lambda: elo.bradley_terry_ratings(battles), repeat=3)
    print(f"{'bradley_terry_ratings end to end':44s}{fmt(t_e2e)}  (best of 3)")
    boot, t_boot, _ = timed(
        lambda: elo.bootstrap_ratings(battles, elo.bradley_terry_ratings, rounds=args.rounds, seed=0)
    )
    print(
        f"{f'bootstrap, {args.rounds} rounds (multinomial counts)':44s}{fmt(t_boot)}  "
        f"({t_boot / args.rounds * 1e3:.1f} ms per round, aggregation included)"
    )
    ci = elo.confidence_intervals(boot)
    print(
        f"95 % CI width: median {(ci.upper - ci.lower).median():.2f} Elo points, "
        f"max {(ci.upper - ci.lower).max():.2f}"
    )

    print()
    try:
        import sklearn
    except ImportError:
        print("scikit-learn not installed: skipping the logistic-regression comparison "
              "(pip install .[sklearn])")
        return
    print(f"scikit-learn {sklearn.__version__}: logistic regression on the per-battle design matrix")
    lr_ratings, timings = arena_logistic_regression(battles)
    print(f"{'design matrix (2n x m, dense float64)':44s}{fmt(timings['design matrix'])}")
    print(f"{'LogisticRegression.fit (lbfgs, tol 1e-8)':44s}{fmt(timings['fit'])}  "
          f"({timings['lbfgs iterations']:.0f} iterations)")
    for message in timings["warnings"]:
        print(f"  warning: {message}")
    lr_ratings = lr_ratings.reindex(ratings.index)
    print(f"mean rating: Newton {ratings.mean():.6f}, logistic regression {lr_ratings.mean():.6f}")
    diff = (ratings - lr_ratings).abs()
    print(f"max |Newton - logistic regression| = {diff.max():.2e} Elo points (model {diff.idxmax()})")
    same_order = list(ratings.index) == list(lr_ratings.sort_values(ascending=False).index)
    print(f"same ranking: {same_order}")
    print(
        f"time ratio, logistic regression (matrix + fit) / bradley_terry_ratings end to end: "
        f"{(timings['design matrix'] + timings['fit']) / t_e2e:.0f}x"
    )


if __name__ == "__main__":
    main()
