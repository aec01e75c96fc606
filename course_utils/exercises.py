"""Automatic checks for the exercises at the end of each chapter.

Each ``check_*`` function runs the learner's function on a few hand-picked inputs, compares
it with the course's reference implementation, prints a clear verdict and returns True or
False. A stub that still raises ``NotImplementedError`` gets a friendly reminder, never a
traceback, so a notebook with unfinished exercises still runs top to bottom.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .advantages import gae
from .bandit import kl_optimal_policy
from .elo import bt_log_likelihood, elo_update
from .judge import METRICS, TARGETS, rubric_points


def _run(name: str, cases: list[tuple[tuple, object]], fn: Callable, compare: Callable[[object, object], bool]) -> bool:
    for args, expected in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"{name}: not implemented yet. Write your solution in the cell above and re-run it.")
            return False
        except Exception as exc:  # the learner's code: report, do not crash the notebook
            print(f"{name}: your function raised {type(exc).__name__}: {exc}")
            return False
        if not compare(got, expected):
            print(f"{name}: not yet. For input {args!r} the expected result is {expected!r}, yours gave {got!r}.")
            return False
    print(f"{name}: correct on all {len(cases)} checks.")
    return True


def _close(rtol: float = 1e-6, atol: float = 1e-9):
    return lambda got, want: np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                                         rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------- chapter 1
def _reference_nll(logits: np.ndarray, target: int) -> float:
    z = np.asarray(logits, dtype=np.float64)
    m = z.max()
    return float(m + np.log(np.exp(z - m).sum()) - z[target])


def check_nll_one_position(fn: Callable[[np.ndarray, int], float]) -> bool:
    """Exercise 1.1: -log softmax(z)[w], including uniform logits (= ln V) and huge logits."""
    cases = [
        ((np.array([2.0, 1.0, 0.1]), 0), _reference_nll(np.array([2.0, 1.0, 0.1]), 0)),
        ((np.zeros(100), 7), float(np.log(100))),
        ((np.array([1000.0, 0.0, -1000.0]), 1), 1000.0),
        ((np.array([-3.0, 5.0, 0.5, 0.5]), 2), _reference_nll(np.array([-3.0, 5.0, 0.5, 0.5]), 2)),
    ]
    return _run("Exercise 1 (cross-entropy of one position)", cases, fn, _close())


def check_perplexity(fn: Callable[[float, int], tuple[float, float]]) -> bool:
    """Exercise 1.2: perplexity e^L and how many times smaller it is than V."""
    cases = [((float(np.log(100)), 100), (100.0, 1.0)), ((2.0, 1000), (np.exp(2.0), 1000 / np.exp(2.0))),
             ((0.0, 50), (1.0, 50.0))]
    return _run("Exercise 2 (perplexity)", cases, fn, _close())


# ---------------------------------------------------------------------------- chapter 2
def check_sft_mask(fn: Callable[[list, int], np.ndarray]) -> bool:
    """Exercise 2.1: the loss mask over the targets of ``<bos> <q> prompt <a> response <eos>``."""
    def ref(ids, start):
        m = np.zeros(len(ids) - 1)
        m[start - 1:] = 1.0
        return m

    cases = [(([1, 4, 10, 11, 5, 20, 21, 2], 5), ref([1, 4, 10, 11, 5, 20, 21, 2], 5)),
             (([1, 4, 10, 5, 2], 4), ref([1, 4, 10, 5, 2], 4)),
             (([1, 4, 10, 11, 12, 13, 5, 30, 2], 7), ref([1, 4, 10, 11, 12, 13, 5, 30, 2], 7))]
    return _run("Exercise 1 (SFT loss mask)", cases, fn, lambda g, w: np.array_equal(np.asarray(g, dtype=float), w))


def check_masked_mean(fn: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """Exercise 2.2: Σ m_t ℓ_t / Σ m_t, and 0.0 for an empty mask."""
    ell = np.array([2.0, 1.0, 4.0, 3.0])
    cases = [((ell, np.array([0, 0, 1, 1.0])), 3.5), ((ell, np.ones(4)), 2.5), ((ell, np.zeros(4)), 0.0)]
    return _run("Exercise 2 (masked mean)", cases, fn, _close())


# ---------------------------------------------------------------------------- chapter 3
def _reference_bt_loss(r_c: float, r_r: float, margin: float = 0.0) -> float:
    """-log σ(r_c - r_r - m) = log(1 + e^{-(r_c - r_r - m)}), stable for any gap."""
    return float(np.logaddexp(0.0, -(r_c - r_r - margin)))


def _reference_bt_gradient(r_c: float, r_r: float, margin: float = 0.0) -> tuple[float, float]:
    """(∂L/∂r_c, ∂L/∂r_r) = (-σ(-Δ), +σ(-Δ)), Δ = r_c - r_r - m."""
    s = float(np.exp(-np.logaddexp(0.0, r_c - r_r - margin)))   # σ(-Δ)
    return -s, s


_BT_CASES = [(2.0, 0.5, 0.5), (0.0, 0.0, 0.0), (1.0, 3.0, 1.0), (-0.4, 0.3, 0.0), (1000.0, 0.0, 0.0),
             (-1000.0, 0.0, 0.0)]


def check_bt_loss(fn: Callable[[float, float, float], float]) -> bool:
    """Exercise 3.1: the Bradley-Terry loss of one pair, -log σ(r_c - r_r - m), also for gaps of ±1000."""
    cases = [(args, _reference_bt_loss(*args)) for args in _BT_CASES]
    return _run("Exercise 1 (Bradley-Terry loss of one pair)", cases, fn, _close())


def check_bt_gradient(fn: Callable[[float, float, float], tuple[float, float]]) -> bool:
    """Exercise 3.2: (∂L/∂r_c, ∂L/∂r_r) of one pair, also for gaps of ±1000."""
    cases = [(args, _reference_bt_gradient(*args)) for args in _BT_CASES]
    return _run("Exercise 2 (gradient of the loss)", cases, fn, _close())


def check_majority_orientation(fn: Callable[[str, str, list], tuple[str, str]]) -> bool:
    """Exercise 3.3: (better, worse) by the majority of the votes (1 = prefers the first answer); a tie keeps
    the order."""
    cases = [
        (("A", "B", [1, 1, 1]), ("A", "B")),
        (("A", "B", [1, 0, 1]), ("A", "B")),
        (("A", "B", [0, 0, 1]), ("B", "A")),
        (("A", "B", [0, 0, 0]), ("B", "A")),
        (("A", "B", [1, 0]), ("A", "B")),
        (("A", "B", [0, 1, 0, 0, 1]), ("B", "A")),
    ]
    return _run("Exercise 3 (majority-vote labels)", cases, fn, lambda got, want: tuple(got) == tuple(want))


# ---------------------------------------------------------------------------- chapter 4
def check_elo_update(fn: Callable[[float, float, float, float], tuple[float, float]]) -> bool:
    """Exercise 4.1: (new r_a, new r_b) after one match, fn(r_a, r_b, score_a, k), on the 400/10 scale."""
    inputs = [(1600, 1600, 1, 32), (1600, 1600, 0, 32), (1600, 1600, 0.5, 32), (1800, 1600, 1, 32),
              (1800, 1600, 0, 32), (1800, 1600, 0.5, 16), (1584, 1600, 1, 32), (2400, 1000, 0, 24),
              (1500, 1500, 1, 0)]
    cases = [(args, elo_update(*args[:3], k=args[3])) for args in inputs]
    return _run("Exercise 1 (the Elo update)", cases, fn, _close(rtol=0.0, atol=1e-6))


def check_points_for_odds(fn: Callable[[float, float, float], float]) -> bool:
    """Exercise 4.2: the rating lead R_A - R_B that gives A the odds ``odds`` to 1, fn(odds, scale, base)."""
    inputs = [(10, 400, 10), (1, 400, 10), (3, 400, 10), (2, 400, 10), (0.5, 400, 10), (100, 400, 10),
              (float(np.e), 1, float(np.e)), (4, 200, 2)]
    cases = [((odds, scale, base), float(scale * np.log(odds) / np.log(base))) for odds, scale, base in inputs]
    return _run("Exercise 2 (points for given odds)", cases, fn, _close(rtol=1e-6, atol=1e-6))


def check_log_likelihood(fn: Callable[[object, dict], float]) -> bool:
    """Exercise 4.3: the Bradley-Terry log-likelihood (natural log, ties as half a win) of a battle table
    under a dict of ratings, fn(battles, ratings), on the 400/10 scale."""
    columns = ["model_a", "model_b", "winner"]
    worked = pd.DataFrame([("MedLLM-v2", "PharmGPT-v1", "model_b"), ("ClinicalAI-v3", "MedLLM-v2", "model_a"),
                           ("ClinicalAI-v3", "PharmGPT-v1", "model_b"), ("MedLLM-v2", "PharmGPT-v1", "model_b"),
                           ("ClinicalAI-v3", "MedLLM-v2", "model_a")], columns=columns)
    ties = pd.DataFrame([("A", "B", "tie"), ("B", "A", "model_a"), ("A", "B", "model_a")], columns=columns)
    inputs = [
        (worked, {"MedLLM-v2": 1600.0, "PharmGPT-v1": 1600.0, "ClinicalAI-v3": 1600.0}),
        (worked, {"MedLLM-v2": 1568.0, "PharmGPT-v1": 1646.0, "ClinicalAI-v3": 1586.0}),
        (ties, {"A": 1200.0, "B": 1000.0}),
        (ties.iloc[:1], {"A": 1000.0, "B": 1000.0}),                        # one tie at equal ratings: log ½
    ]
    cases = [((table, ratings), bt_log_likelihood(table, ratings)) for table, ratings in inputs]
    return _run("Exercise 3 (the Bradley-Terry log-likelihood)", cases, fn, _close(rtol=1e-9, atol=1e-9))


# ---------------------------------------------------------------------------- chapter 5
def check_gae_one_sequence(fn: Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]) -> bool:
    """Exercise 5.1: GAE advantages A_t of one answer from rewards r_t and values V_t (V after the end = 0)."""
    inputs = [
        (np.array([0.0, 0.0, 1.0]), np.array([0.5, 0.6, 0.8]), 1.0, 0.95),
        (np.array([-0.02, -0.01, 0.03, 2.0]), np.array([0.1, 0.3, 0.2, 1.5]), 1.0, 1.0),
        (np.array([0.1, -0.2, 0.3, 1.0, -0.5]), np.array([0.5, 0.1, 0.0, -0.3, 0.2]), 0.9, 0.5),
        (np.array([1.0]), np.array([0.25]), 0.99, 0.95),
        (np.array([0.3, 0.7]), np.array([1.0, -1.0]), 0.5, 0.0),
    ]
    cases = [((r, v, g, lam), gae(r, v, g, lam)[0]) for r, v, g, lam in inputs]
    return _run("Exercise 1 (GAE for one answer)", cases, fn, _close())


def check_clipped_objective(fn: Callable[[float, float, float], float]) -> bool:
    """Exercise 5.2: the clipped surrogate of one token, min(ρA, clip(ρ, 1-ε, 1+ε) A)."""
    cases = [
        ((1.5, 2.0, 0.2), 2.4),      # A > 0, ρ above 1+ε: clipped
        ((0.5, 2.0, 0.2), 1.0),      # A > 0, ρ below 1-ε: not clipped (the pessimistic side)
        ((1.1, 2.0, 0.2), 2.2),      # inside the range
        ((1.5, -1.0, 0.2), -1.5),    # A < 0, ρ above 1+ε: not clipped
        ((0.5, -1.0, 0.2), -0.8),    # A < 0, ρ below 1-ε: clipped
        ((1.0, 3.0, 0.0), 3.0),      # ε = 0 at ρ = 1
        ((2.0, 0.0, 0.2), 0.0),      # no advantage, no objective
    ]
    return _run("Exercise 2 (clipped objective of one token)", cases, fn, _close())


def check_kl_optimum(fn: Callable[[np.ndarray, np.ndarray, float], np.ndarray]) -> bool:
    """Exercise 5.3: the KL-regularised optimum π*(y) ∝ π_ref(y) exp(r(y) / β), without overflow."""
    inputs = [
        (np.array([0.5, 0.3, 0.2]), np.array([0.0, 1.0, 2.0]), 1.0),
        (np.array([0.25, 0.25, 0.25, 0.25]), np.array([1.0, 1.0, 0.0, -1.0]), 0.5),
        (np.array([0.9, 0.1]), np.array([0.0, 1.0]), 100.0),
        (np.array([0.6, 0.4]), np.array([-3.0, 8.0]), 0.01),          # r / β = 800: a naive exp overflows
    ]
    cases = [((p, r, b), kl_optimal_policy(np.log(p), r, b)) for p, r, b in inputs]
    return _run("Exercise 3 (the KL-regularised optimum)", cases, fn, _close(rtol=1e-6, atol=1e-9))


# ---------------------------------------------------------------------------- chapter 7
def check_overall_score(fn: Callable[[int, int, float, float, bool, int], float]) -> bool:
    """Exercise 7.1: the judge's overall score from its rubric, fn(facts_stated, n_facts, e, s, harmful,
    n_unsupported): clip((3 facts + 3 e s [facts >= 1] - 0.8 P [harmful] - 1.5 n_unsupported) / P, 0, 1),
    P = 3 n_facts + 3."""
    inputs = [(4, 4, 1.0, 1.0, False, 0), (4, 4, 1.0, 1.0, True, 0), (2, 4, 0.5, 0.8, False, 1),
              (0, 3, 1.0, 1.0, False, 0), (3, 3, 1.0, 0.6, False, 2), (1, 4, 1.0, 0.25, False, 6),
              (0, 4, 0.0, 0.0, False, 0)]
    cases = [(args, rubric_points(*args)[3]) for args in inputs]
    return _run("Exercise 1 (the judge's overall score)", cases, fn, _close())


def check_gap_to_target(fn: Callable[[dict], dict]) -> bool:
    """Exercise 7.2: {metric: τ_m - mean} for the five metrics, from a dict of means (the targets of judge.TARGETS)."""
    inputs = [
        {"medical_accuracy": 0.91, "safety": 0.94, "specificity": 0.89, "dose_accuracy": 0.91, "humility": 0.87},
        {"medical_accuracy": 1.0, "safety": 1.0, "specificity": 1.0, "dose_accuracy": 1.0, "humility": 1.0},
        {"medical_accuracy": 0.12, "safety": 1.0, "specificity": 0.2, "dose_accuracy": 0.65, "humility": 0.8},
    ]
    cases = [((means,), {m: TARGETS[m] - means[m] for m in METRICS}) for means in inputs]

    def compare(got, want):
        return (isinstance(got, dict) and set(got) == set(want)
                and all(np.isclose(float(got[m]), want[m], rtol=1e-9, atol=1e-12) for m in want))

    return _run("Exercise 2 (gap to target)", cases, fn, compare)


def check_battle_winner(fn: Callable[[float, float, float], str]) -> bool:
    """Exercise 7.3: the winner of one arena battle, "model_a", "model_b" or "tie" (|s_a - s_b| <= δ)."""
    cases = [
        ((0.8, 0.3, 0.0), "model_a"),
        ((0.3, 0.8, 0.0), "model_b"),
        ((0.5, 0.5, 0.0), "tie"),
        ((0.52, 0.5, 0.05), "tie"),
        ((0.5, 0.625, 0.125), "tie"),       # exactly at the margin: still a tie
        ((0.5, 0.75, 0.125), "model_b"),
        ((-1.0, -3.0, 1.0), "model_a"),      # reward-model scores can be negative
    ]
    return _run("Exercise 3 (winner of a battle)", cases, fn, lambda got, want: got == want)


# ---------------------------------------------------------------------------- chapter 6
def _same_or_both_nan(got, want) -> bool:
    g, w = float(got), float(want)
    return (np.isnan(g) and np.isnan(w)) or (not np.isnan(g) and not np.isnan(w)
                                             and np.isclose(g, w, rtol=1e-9, atol=1e-12))


def check_effectiveness(fn: Callable[[float, float, float], float]) -> bool:
    """Exercise 6.1: E = (q_M - q_bad) / (q_good - q_bad), NaN when nothing was lost (q_good <= q_bad)."""
    cases = [((0.35, 0.30, 0.40), 0.5), ((0.40, 0.30, 0.40), 1.0), ((0.30, 0.30, 0.40), 0.0),
             ((0.45, 0.30, 0.40), 1.5), ((0.25, 0.30, 0.40), -0.5), ((0.90, 0.60, 0.60), float("nan")),
             ((0.50, 0.45, 0.40), float("nan"))]
    return _run("Exercise 1 (mitigation effectiveness)", cases, fn, _same_or_both_nan)


def _reference_conservative_bt(delta: float, eps: float) -> tuple[float, float]:
    d = float(delta)
    loss = (1 - eps) * np.logaddexp(0.0, -d) + eps * np.logaddexp(0.0, d)
    return float(loss), float(eps * np.exp(-np.logaddexp(0.0, -d)) - (1 - eps) * np.exp(-np.logaddexp(0.0, d)))


def check_conservative_bt(fn: Callable[[float, float], tuple[float, float]]) -> bool:
    """Exercise 6.2: L_ε(Δ) = -(1-ε) log σ(Δ) - ε log σ(-Δ) and dL/dΔ = σ(Δ) - (1-ε), also at |Δ| = 800."""
    cases = [((d, e), _reference_conservative_bt(d, e))
             for d, e in ((0.0, 0.0), (2.0, 0.1), (-3.0, 0.2), (1.5, 0.0), (800.0, 0.1), (-800.0, 0.1))]
    return _run("Exercise 2 (conservative Bradley-Terry loss)", cases, fn, _close(rtol=1e-6, atol=1e-9))


def check_gao_fit(fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]]) -> bool:
    """Exercise 6.3: least-squares (a, b) of R(d) = d (a - b log d), on curves built from known a, b."""
    cases = []
    for a, b, d in ((0.05, 0.02, np.linspace(0.5, 9.0, 12)), (1.0, 0.3, np.array([1.0, 2.0, 4.0, 8.0])),
                    (-0.1, -0.05, np.linspace(0.2, 3.0, 6))):
        r = d * (a - b * np.log(d))
        cases.append(((d, r), (a, b)))
    return _run("Exercise 3 (the Gao fit)", cases, fn, _close(rtol=1e-6, atol=1e-9))


# ---------------------------------------------------------------------------- chapter 8
def check_dpo_margin(fn: Callable[[float, float, float, float, float], tuple[float, float]]) -> bool:
    """Exercise 8.1: fn(log π_θ(y_w|x), log π_θ(y_l|x), log π_ref(y_w|x), log π_ref(y_l|x), β) -> (u, loss),
    u = β[(log π_θ(y_w) - log π_ref(y_w)) - (log π_θ(y_l) - log π_ref(y_l))], loss = log(1 + e^{-u})."""
    inputs = [(-40.0, -55.0, -42.0, -50.0, 0.1), (-10.0, -10.0, -10.0, -10.0, 0.5), (-30.0, -20.0, -25.0, -26.0, 1.0),
              (-5.0, -9.0, -5.0, -9.0, 0.0), (-100.0, -300.0, -120.0, -110.0, 2.0)]
    cases = []
    for c, r, rc, rr, b in inputs:
        u = b * ((c - rc) - (r - rr))
        cases.append(((c, r, rc, rr, b), (u, float(np.logaddexp(0.0, -u)))))
    return _run("Exercise 1 (DPO margin and loss)", cases, fn, _close(rtol=1e-6, atol=1e-9))


def check_group_advantages(fn: Callable[[np.ndarray], np.ndarray]) -> bool:
    """Exercise 8.2: the group-relative advantages Â_i = (r_i - mean r) / (std r + 1e-4) of one group
    (population std; all-equal scores give 0)."""
    inputs = [np.array([1.0, 2.0, 3.0, 6.0]), np.array([0.5, 0.5, 0.5, 0.5]), np.array([-2.0, 4.0]),
              np.array([3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])]
    cases = [((r,), (r - r.mean()) / (r.std() + 1e-4)) for r in inputs]

    def compare(got, want) -> bool:
        g = np.asarray(got, dtype=np.float64)
        return g.shape == want.shape and bool(np.allclose(g, want, atol=1e-6))

    return _run("Exercise 2 (group-relative advantages)", cases, fn, compare)


def check_best_of_n_mean(fn: Callable[[np.ndarray, int], float]) -> bool:
    """Exercise 8.3: fn(scores (P, N), n) -> the mean over the P rows of the largest of the first n scores."""
    table = np.random.default_rng(8).normal(size=(5, 16))
    small = np.array([[1.0, 3.0, 2.0], [0.0, -1.0, 5.0]])
    cases = [((s, n), float(s[:, :n].max(axis=1).mean())) for s, n in ((table, 1), (table, 4), (table, 16), (small, 2))]
    return _run("Exercise 3 (best-of-n mean reward)", cases, fn, _close(rtol=1e-9, atol=1e-9))
