"""Tests for course_utils.elo: hand-computed Elo updates, the worked example's worked example,
Bradley-Terry MLE properties (score equations, order invariance, recovery of known
strengths), ties, edge cases, bootstrap determinism and coverage, input validation."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from course_utils.elo import (
    bootstrap_ratings,
    bradley_terry_ratings,
    bt_log_likelihood,
    confidence_intervals,
    elo_history,
    elo_update,
    expected_score,
    online_elo,
    simulate_battles,
    win_matrix,
)

ELO_UNIT = 400 / math.log(10)  # Elo points per natural-log unit of strength (s / ln b)


def table(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["model_a", "model_b", "winner"])


def centred(ratings: pd.Series | dict) -> pd.Series:
    r = pd.Series(ratings, dtype=float)
    return r - r.mean()


# Chapter 4's worked example, in the chapter's order.
WORKED_MATCHES = table(
    ("MedLLM-v2", "PharmGPT-v1", "model_b"),
    ("ClinicalAI-v3", "MedLLM-v2", "model_a"),
    ("ClinicalAI-v3", "PharmGPT-v1", "model_b"),
    ("MedLLM-v2", "PharmGPT-v1", "model_b"),
    ("ClinicalAI-v3", "MedLLM-v2", "model_a"),
)

STRENGTHS = {  # ratings used to simulate battles (Elo points)
    "PharmGPT-v1": 1150.0,
    "ClinicalAI-v3": 1080.0,
    "MedLLM-v2": 1000.0,
    "RxAssist-1": 960.0,
    "DoseCheck-2": 900.0,
    "Tox-Tutor": 820.0,
}


# --------------------------------------------------------------------------- expected score


def test_expected_score_hand_values():
    # equal ratings: 1 / (1 + 10^0) = 1/2
    assert expected_score(1600, 1600) == 0.5
    # a 400-point lead: 1 / (1 + 10^(-400/400)) = 1 / 1.1 = 10/11 (odds 10:1)
    assert expected_score(2000, 1600) == pytest.approx(10 / 11, abs=1e-15)
    assert expected_score(1600, 2000) == pytest.approx(1 / 11, abs=1e-15)
    # a 200-point lead: 1 / (1 + 10^(-0.5)) = 0.759746926...
    assert expected_score(1800, 1600) == pytest.approx(1 / (1 + 10**-0.5), abs=1e-15)
    # other scale / base: a 100-point gap with scale 100, base e gives sigma(1)
    assert expected_score(100, 0, scale=100, base=math.e) == pytest.approx(1 / (1 + math.exp(-1)))


def test_expected_score_vectorised_symmetric_and_overflow_safe():
    r_a = np.array([[1000.0], [1500.0], [2000.0]])
    r_b = np.array([900.0, 1000.0, 1700.0, 2500.0])
    e = expected_score(r_a, r_b)
    assert e.shape == (3, 4)
    np.testing.assert_allclose(e + expected_score(r_b, r_a), 1.0, rtol=0, atol=1e-15)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        huge = expected_score(np.array([1e6, -1e6, 1e300]), np.array([0.0, 0.0, -1e300]))
        assert expected_score(0.0, 1e6) == 0.0
    np.testing.assert_array_equal(huge, [1.0, 0.0, 1.0])


def test_expected_score_rejects_bad_scale_or_base():
    with pytest.raises(ValueError, match="scale"):
        expected_score(0, 0, scale=0)
    with pytest.raises(ValueError, match="base"):
        expected_score(0, 0, base=1)


# --------------------------------------------------------------------------- Elo update


def test_elo_update_two_1600_players():
    # E_A = 1/2, so the winner gains K (1 - 1/2) = 32 x 0.5 = 16 and the loser drops 16.
    assert elo_update(1600, 1600, 1, k=32) == (1616.0, 1584.0)
    assert elo_update(1600, 1600, 0, k=32) == (1584.0, 1616.0)
    # a tie between equals: K (1/2 - 1/2) = 0
    assert elo_update(1600, 1600, 0.5, k=32) == (1600.0, 1600.0)


def test_elo_update_favourite_and_upset():
    # 1800 vs 1600: E_A = 1 / (1 + 10^(-200/400)) = 1 / (1 + 0.316228) = 0.759747
    e_a = 1 / (1 + 10 ** (-0.5))
    # the favourite wins: +32 x (1 - 0.759747) = +7.688 (a small reward, as expected)
    a, b = elo_update(1800, 1600, 1, k=32)
    assert a == pytest.approx(1800 + 32 * (1 - e_a)) and a == pytest.approx(1807.688, abs=1e-3)
    assert b == pytest.approx(1592.312, abs=1e-3)
    # the underdog wins: the favourite loses 32 x 0.759747 = 24.312
    a, b = elo_update(1800, 1600, 0, k=32)
    assert a == pytest.approx(1775.688, abs=1e-3) and b == pytest.approx(1624.312, abs=1e-3)
    # a tie moves 32 x (0.5 - 0.759747) = -8.312 from the favourite to the underdog
    a, b = elo_update(1800, 1600, 0.5, k=32)
    assert a == pytest.approx(1791.688, abs=1e-3) and b == pytest.approx(1608.312, abs=1e-3)


def test_elo_update_is_zero_sum_and_vectorised():
    rng = np.random.default_rng(3)
    r_a, r_b = rng.normal(1500, 300, 1000), rng.normal(1500, 300, 1000)
    score = rng.choice([0.0, 0.5, 1.0], 1000)
    new_a, new_b = elo_update(r_a, r_b, score, k=24, scale=400, base=10)
    np.testing.assert_allclose(new_a + new_b, r_a + r_b, rtol=0, atol=1e-9)
    # B's side is the same rule from B's point of view: r_B + K (S_B - E_B)
    np.testing.assert_allclose(new_b, r_b + 24 * ((1 - score) - expected_score(r_b, r_a)))


def test_elo_update_rejects_bad_score_and_k():
    with pytest.raises(ValueError, match="score_a"):
        elo_update(1600, 1600, 2)
    with pytest.raises(ValueError, match="k must be"):
        elo_update(1600, 1600, 1, k=-1)


# --------------------------------------------------------------------------- online Elo


def test_chapter_worked_example():
    # All three start at 1600, K = 32, the five matches in the chapter's order.
    # 1. Med vs Pharm, Pharm wins:  E = 0.5            Pharm 1616.000, Med 1584.000
    # 2. Clin vs Med, Clin wins:    E_Clin = 0.52301   Clin 1615.264,  Med 1568.736
    # 3. Clin vs Pharm, Pharm wins: E_Clin = 0.49894   Pharm 1631.966, Clin 1599.298
    # 4. Med vs Pharm, Pharm wins:  E_Med  = 0.40999   Pharm 1645.086, Med 1555.616
    # 5. Clin vs Med, Clin wins:    E_Clin = 0.56253   Clin 1613.297,  Med 1541.617
    ratings = online_elo(WORKED_MATCHES, k=32, init=1600)
    assert list(ratings.index) == ["PharmGPT-v1", "ClinicalAI-v3", "MedLLM-v2"]
    assert ratings.round(1).to_dict() == {
        "PharmGPT-v1": 1645.1,
        "ClinicalAI-v3": 1613.3,
        "MedLLM-v2": 1541.6,
    }
    assert ratings["PharmGPT-v1"] == pytest.approx(1645.086, abs=1e-3)
    assert ratings.sum() == pytest.approx(3 * 1600)


def test_elo_history_match_by_match():
    history = elo_history(WORKED_MATCHES, k=32, init=1600)
    assert history.shape == (6, 3) and history.index.name == "match"
    assert (history.iloc[0] == 1600).all()
    assert history.loc[1, "PharmGPT-v1"] == 1616 and history.loc[1, "MedLLM-v2"] == 1584
    # each match moves exactly its two players, and keeps the total
    for t, (a, b) in enumerate(zip(WORKED_MATCHES.model_a, WORKED_MATCHES.model_b), start=1):
        changed = set(history.columns[history.loc[t] != history.loc[t - 1]])
        assert changed == {a, b}
    np.testing.assert_allclose(history.sum(axis=1), 3 * 1600)
    final = online_elo(WORKED_MATCHES, k=32, init=1600)
    pd.testing.assert_series_equal(
        history.iloc[-1].sort_values(ascending=False), final, check_names=False
    )


def test_online_elo_depends_on_order():
    battles = simulate_battles(STRENGTHS, 3000, seed=1)
    shuffled = battles.sample(frac=1.0, random_state=7).reset_index(drop=True)
    reversed_ = battles.iloc[::-1].reset_index(drop=True)
    base = online_elo(battles)
    for other in (online_elo(shuffled), online_elo(reversed_)):
        # same battles, same models, same total; different ratings
        assert other.sum() == pytest.approx(base.sum())
        assert (other - base.reindex(other.index)).abs().max() > 1.0
    # the Bradley-Terry MLE does not care
    bt = bradley_terry_ratings(battles)
    for other in (shuffled, reversed_):
        pd.testing.assert_series_equal(bradley_terry_ratings(other), bt, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------- Bradley-Terry


def test_win_matrix_counts_ties_as_half_wins():
    battles = table(
        ("A", "B", "model_a"),
        ("B", "A", "model_a"),
        ("B", "A", "model_b"),
        ("A", "C", "tie"),
        ("C", "A", "tie (bothbad)"),
    )
    w = win_matrix(battles)
    assert w.loc["A", "B"] == 2 and w.loc["B", "A"] == 1
    assert w.loc["A", "C"] == 1 and w.loc["C", "A"] == 1  # two ties: 1/2 + 1/2 each
    assert w.loc["B", "C"] == 0 and np.all(np.diag(w) == 0)
    assert (w + w.T).to_numpy().sum() / 2 == len(battles)


def test_bradley_terry_two_models_closed_form():
    # A: 3 wins, B: 1 win, 2 ties -> W_AB = 3 + 1 = 4, W_BA = 1 + 1 = 2.
    # MLE: p_AB = 4/6, so r_A - r_B = 400 log10(4/2) = 120.412; mean rating = 1000.
    battles = table(
        *[("A", "B", "model_a")] * 3, ("B", "A", "model_a"), ("A", "B", "tie"), ("B", "A", "tie")
    )
    r = bradley_terry_ratings(battles)
    gap = 400 * math.log10(2)
    assert r["A"] == pytest.approx(1000 + gap / 2, abs=1e-9)
    assert r["B"] == pytest.approx(1000 - gap / 2, abs=1e-9)
    r = bradley_terry_ratings(battles, scale=100, base=math.e, init=0)
    assert r["A"] - r["B"] == pytest.approx(100 * math.log(2), abs=1e-9)


def test_bradley_terry_only_ties_gives_equal_ratings():
    battles = table(
        ("A", "B", "tie"), ("B", "C", "tie"), ("C", "D", "tie (bothbad)"), ("D", "A", "tie"),
        ("A", "C", "tie"),
    )
    r = bradley_terry_ratings(battles, init=1200)
    np.testing.assert_allclose(r, 1200.0, rtol=0, atol=1e-9)


def test_tie_equals_one_win_each_way():
    # Counting a tie as half a win for each side = replacing two ties by one win each way.
    ties = table(("A", "B", "tie"), ("A", "B", "tie"), ("B", "C", "model_a"), ("C", "B", "model_a"),
                 ("A", "C", "model_a"), ("C", "A", "model_a"), ("A", "C", "model_a"))
    wins = table(("A", "B", "model_a"), ("A", "B", "model_b"), ("B", "C", "model_a"),
                 ("C", "B", "model_a"), ("A", "C", "model_a"), ("C", "A", "model_a"),
                 ("A", "C", "model_a"))
    pd.testing.assert_series_equal(
        bradley_terry_ratings(ties), bradley_terry_ratings(wins), rtol=0, atol=1e-9
    )


def test_bradley_terry_recovers_known_strengths():
    # 30,000 battles among 6 models, 2,000 per pair. The MLE is asymptotically normal with
    # covariance L^+ (L = Fisher information, a Laplacian with weights N_ij p_ij (1 - p_ij)),
    # about 3 Elo points of standard error per model here. Every centred rating must lie
    # within 4 standard errors of the truth (a miss by chance has probability ~4e-4), and
    # the SEs must be small enough for that to mean something.
    battles = simulate_battles(STRENGTHS, 30_000, seed=11)
    r = bradley_terry_ratings(battles)
    truth = pd.Series(STRENGTHS)
    names = list(truth.index)
    n_pairs = win_matrix(battles).reindex(index=names, columns=names)
    n_pairs = (n_pairs + n_pairs.T).to_numpy()
    p = expected_score(truth.to_numpy()[:, None], truth.to_numpy()[None, :])
    a = n_pairs * p * (1 - p)
    information = np.diag(a.sum(axis=1)) - a
    se = ELO_UNIT * np.sqrt(np.diag(np.linalg.pinv(information)))
    assert se.max() < 6.0
    error = (centred(r).reindex(names) - centred(truth)).to_numpy()
    assert np.all(np.abs(error) < 4 * se), (error, se)
    assert list(r.index) == names  # the true order
    assert r.mean() == pytest.approx(1000.0)  # the gauge


def test_bradley_terry_score_equations_hold_at_the_solution():
    # d l / d theta_i = sum_j W_ij - sum_j N_ij p_ij = 0: observed wins = expected wins.
    battles = simulate_battles(STRENGTHS, 5000, seed=2, tie_rate=0.2)
    r = bradley_terry_ratings(battles)
    w = win_matrix(battles).reindex(index=r.index, columns=r.index).to_numpy()
    p = expected_score(r.to_numpy()[:, None], r.to_numpy()[None, :])
    observed, expected = w.sum(axis=1), ((w + w.T) * p).sum(axis=1)
    np.testing.assert_allclose(observed, expected, rtol=0, atol=1e-6)

    # Independently: the per-battle log-likelihood sum_t [S log E + (1 - S) log(1 - E)]
    # has a zero finite-difference gradient at r (no aggregation involved).
    score = battles.winner.map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()

    def loglik(ratings: pd.Series) -> float:
        e = expected_score(ratings[battles.model_a].to_numpy(), ratings[battles.model_b].to_numpy())
        return float(np.sum(score * np.log(e) + (1 - score) * np.log1p(-e)))

    h = 1e-3
    for model in r.index:
        up, down = r.copy(), r.copy()
        up[model] += h
        down[model] -= h
        assert abs(loglik(up) - loglik(down)) / (2 * h) < 1e-6
    # and moving any model by 5 points lowers the likelihood
    for model in r.index:
        moved = r.copy()
        moved[model] += 5
        assert loglik(moved) < loglik(r)


def test_bradley_terry_invariant_to_order_and_side():
    battles = simulate_battles(STRENGTHS, 4000, seed=4, tie_rate=0.1)
    expected = bradley_terry_ratings(battles)
    shuffled = battles.sample(frac=1.0, random_state=1).reset_index(drop=True)
    # swap model_a and model_b on every other row, flipping the winner accordingly
    swap = np.arange(len(shuffled)) % 2 == 0
    flipped = shuffled.copy()
    flipped.loc[swap, ["model_a", "model_b"]] = shuffled.loc[swap, ["model_b", "model_a"]].to_numpy()
    flipped.loc[swap, "winner"] = shuffled.loc[swap, "winner"].replace(
        {"model_a": "model_b", "model_b": "model_a"}
    )
    pd.testing.assert_series_equal(bradley_terry_ratings(flipped), expected, rtol=0, atol=1e-8)


def test_bradley_terry_all_wins_stays_finite():
    # PharmGPT won every game: the MLE would send it to +infinity.
    battles = table(
        *[("PharmGPT-v1", "MedLLM-v2", "model_a")] * 5,
        *[("ClinicalAI-v3", "PharmGPT-v1", "model_b")] * 5,
        *[("MedLLM-v2", "ClinicalAI-v3", "model_a")] * 2,
        *[("MedLLM-v2", "ClinicalAI-v3", "model_b")] * 3,
    )
    r = bradley_terry_ratings(battles)
    assert np.all(np.isfinite(r)) and r.index[0] == "PharmGPT-v1"
    assert r.mean() == pytest.approx(1000.0)
    assert 300 < r["PharmGPT-v1"] - r["ClinicalAI-v3"] < 1500
    # two models, A won 10 of 10: alpha = 0.1 pseudo-ties make W_AB = 10.05, W_BA = 0.05,
    # so r_A - r_B = 400 log10(10.05 / 0.05) = 400 log10(201) = 921.3 (as documented)
    r = bradley_terry_ratings(table(*[("A", "B", "model_a")] * 10))
    assert r["A"] - r["B"] == pytest.approx(400 * math.log10(201), abs=1e-6)
    # the worked example: PharmGPT won all three of its games
    r = bradley_terry_ratings(WORKED_MATCHES)
    assert list(r.index) == ["PharmGPT-v1", "ClinicalAI-v3", "MedLLM-v2"] and np.all(np.isfinite(r))
    # a chain A > B > C (each pair one-sided): connected, no finite MLE, still finite here
    chain = table(*[("A", "B", "model_a")] * 3, *[("B", "C", "model_a")] * 3)
    r = bradley_terry_ratings(chain)
    assert list(r.index) == ["A", "B", "C"] and np.all(np.isfinite(r))
    with pytest.raises(ValueError, match="MLE does not exist"):
        bradley_terry_ratings(battles, pseudo_ties=0)


def test_bradley_terry_disconnected_graph_raises():
    battles = table(("A", "B", "model_a"), ("B", "A", "model_a"), ("C", "D", "tie"), ("D", "C", "model_a"))
    with pytest.raises(ValueError, match=r"disconnected.*\{A, B\} \| \{C, D\}"):
        bradley_terry_ratings(battles)


def test_empty_table_and_single_model():
    empty = pd.DataFrame(columns=["model_a", "model_b", "winner"])
    for fn in (bradley_terry_ratings, online_elo):
        with pytest.raises(ValueError, match="empty"):
            fn(empty)
    # a single model can only appear as a battle against itself, which is rejected
    with pytest.raises(ValueError, match=r"row 0 pits 'A' against itself"):
        bradley_terry_ratings(table(("A", "A", "model_a")))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_deterministic_for_a_seed():
    battles = simulate_battles(STRENGTHS, 2000, seed=5, tie_rate=0.1)
    for fn, rounds in ((bradley_terry_ratings, 50), (functools.partial(online_elo, k=8), 5)):
        first = bootstrap_ratings(battles, fn, rounds=rounds, seed=0)
        again = bootstrap_ratings(battles, fn, rounds=rounds, seed=0)
        other = bootstrap_ratings(battles, fn, rounds=rounds, seed=1)
        pd.testing.assert_frame_equal(first, again)
        assert first.shape == (rounds, len(STRENGTHS)) and first.index.name == "round"
        assert not np.allclose(first.sort_index(axis=1), other.sort_index(axis=1))
        medians = first.median().to_numpy()
        assert np.all(np.diff(medians) <= 0)  # columns ordered by median, highest first


def test_bootstrap_count_resampling_matches_row_resampling():
    # The fast path (multinomial over aggregated cells) and the generic path (resampled
    # rows) draw from the same distribution: same medians and spreads up to Monte-Carlo
    # error. The difference of the two medians has an SE of about
    # 1.25 SD sqrt(1/150 + 1/600) = 0.11 SD, so half an SD is about 4.5 SE; an SD estimated
    # from 150 rounds has a relative SE of about 6 %, so a ratio in [0.75, 1.33] is > 4 SE.
    battles = simulate_battles(STRENGTHS, 2000, seed=6, tie_rate=0.1)
    fast = bootstrap_ratings(
        battles, functools.partial(bradley_terry_ratings, init=1500), rounds=600, seed=0
    )
    slow = bootstrap_ratings(
        battles, lambda b: bradley_terry_ratings(b, init=1500), rounds=150, seed=0
    ).reindex(columns=fast.columns)
    assert fast.mean().mean() == pytest.approx(1500.0)
    assert np.all((fast.median() - slow.median()).abs() < 0.5 * fast.std())
    ratio = (fast.std() / slow.std()).to_numpy()
    assert np.all((ratio > 0.75) & (ratio < 1.33)), ratio


def test_confidence_intervals_contain_the_truth():
    # Nominal 95 % intervals; percentile intervals from a few hundred rounds on 4,000
    # battles cover about 90 % of the true ratings (mean over 30 simulations: 91 %), so
    # "most" here means at least 6 of the 8 models.
    strengths = {f"model-{i}": 1000.0 + 35.0 * i for i in range(8)}
    battles = simulate_battles(strengths, 4000, seed=8)
    boot = bootstrap_ratings(battles, bradley_terry_ratings, rounds=400, seed=3)
    ci = confidence_intervals(boot, level=0.95)
    assert list(ci.columns) == ["rating", "lower", "upper"]
    assert ci["rating"].is_monotonic_decreasing
    assert np.all((ci["lower"] <= ci["rating"]) & (ci["rating"] <= ci["upper"]))
    truth = centred(strengths).reindex(ci.index) + 1000.0  # same gauge: mean = init
    covered = (ci["lower"] <= truth) & (truth <= ci["upper"])
    assert covered.sum() >= 6, ci.assign(truth=truth)
    narrow = confidence_intervals(boot, level=0.5)
    assert np.all(narrow["upper"] - narrow["lower"] < ci.loc[narrow.index, "upper"] - ci.loc[narrow.index, "lower"])
    with pytest.raises(ValueError, match="level"):
        confidence_intervals(boot, level=1.0)


# --------------------------------------------------------------------------- validation


def test_bad_winner_value_names_row_and_value():
    battles = table(("A", "B", "model_a"), ("B", "A", "tie"), ("A", "B", "model_c"))
    with pytest.raises(ValueError, match=r"row 2 has winner 'model_c'"):
        online_elo(battles)
    battles.index = ["m1", "m2", "m3"]
    with pytest.raises(ValueError, match=r"row 'm3' has winner 'model_c'"):
        bradley_terry_ratings(battles)
    with pytest.raises(ValueError, match=r"row 1 has winner nan"):
        bradley_terry_ratings(table(("A", "B", "tie"), ("A", "B", None)))


def test_missing_column_and_other_bad_tables():
    with pytest.raises(ValueError, match=r"missing column\(s\) 'winner'"):
        bradley_terry_ratings(pd.DataFrame({"model_a": ["A"], "model_b": ["B"], "win": ["model_a"]}))
    with pytest.raises(ValueError, match=r"row 1 has no model name in column 'model_b'"):
        online_elo(table(("A", "B", "tie"), ("A", None, "tie")))
    with pytest.raises(TypeError, match="DataFrame"):
        bradley_terry_ratings([("A", "B", "model_a")])
    with pytest.raises(ValueError, match="rounds"):
        bootstrap_ratings(table(("A", "B", "tie")), bradley_terry_ratings, rounds=0)


def test_public_arena_format_is_accepted():
    # categorical columns, extra columns and "tie (bothbad)" as in published battle tables
    battles = table(("A", "B", "tie (bothbad)"), ("B", "C", "model_a"), ("C", "A", "model_b"),
                    ("A", "C", "model_b"), ("C", "B", "tie"))
    battles = battles.astype("category").assign(judge="pharmacist", turn=1)
    as_tie = battles.astype(str).replace({"winner": {"tie (bothbad)": "tie"}})
    pd.testing.assert_series_equal(bradley_terry_ratings(battles), bradley_terry_ratings(as_tie))
    pd.testing.assert_series_equal(online_elo(battles), online_elo(as_tie))


# --------------------------------------------------------------------------- chapter helpers


def test_simulate_battles():
    battles = simulate_battles(STRENGTHS, 20_000, seed=9, tie_rate=0.25)
    pd.testing.assert_frame_equal(battles, simulate_battles(STRENGTHS, 20_000, seed=9, tie_rate=0.25))
    assert list(battles.columns) == ["model_a", "model_b", "winner"]
    assert not (battles.model_a == battles.model_b).any()
    assert set(battles.model_a) == set(STRENGTHS) == set(battles.model_b)
    assert (battles.winner == "tie").mean() == pytest.approx(0.25, abs=0.01)
    pair = battles[(battles.model_a == "PharmGPT-v1") & (battles.model_b == "Tox-Tutor")]
    decisive = pair[pair.winner != "tie"]
    expected = expected_score(STRENGTHS["PharmGPT-v1"], STRENGTHS["Tox-Tutor"])  # 0.851
    assert (decisive.winner == "model_a").mean() == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match="two models"):
        simulate_battles({"A": 1000.0}, 10)


# --------------------------------------------------------------------------- log-likelihood


def test_bt_log_likelihood_hand_values():
    # equal ratings: every battle has E = 1/2, so l = n log(1/2) whatever the results
    equal = {m: 1600.0 for m in ("PharmGPT-v1", "ClinicalAI-v3", "MedLLM-v2")}
    assert bt_log_likelihood(WORKED_MATCHES, equal) == pytest.approx(5 * math.log(0.5), abs=1e-12)
    # one battle, A 400 points ahead: A wins -> log(10/11); A loses -> log(1/11); tie -> the mean
    ratings = {"A": 2000.0, "B": 1600.0}
    assert bt_log_likelihood(table(("A", "B", "model_a")), ratings) == pytest.approx(math.log(10 / 11))
    assert bt_log_likelihood(table(("A", "B", "model_b")), ratings) == pytest.approx(math.log(1 / 11))
    assert bt_log_likelihood(table(("A", "B", "tie")), ratings) == pytest.approx(
        0.5 * math.log(10 / 11) + 0.5 * math.log(1 / 11)
    )
    # the same gap on another scale: 100 points at scale 100 is also 10:1
    assert bt_log_likelihood(table(("A", "B", "model_a")), {"A": 100.0, "B": 0.0}, scale=100) == (
        pytest.approx(math.log(10 / 11))
    )


def test_bt_log_likelihood_matches_per_battle_sum_and_ignores_order_and_shift():
    battles = simulate_battles(STRENGTHS, 2000, seed=5, tie_rate=0.1)
    truth = pd.Series(STRENGTHS)
    score = battles.winner.map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5}).to_numpy()
    e = expected_score(truth[battles.model_a].to_numpy(), truth[battles.model_b].to_numpy())
    per_battle = float(np.sum(score * np.log(e) + (1 - score) * np.log1p(-e)))
    value = bt_log_likelihood(battles, truth)
    assert value == pytest.approx(per_battle, rel=1e-12)
    shuffled = battles.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert bt_log_likelihood(shuffled, truth) == pytest.approx(value, rel=1e-12)
    assert bt_log_likelihood(battles, truth + 250.0) == pytest.approx(value, rel=1e-12)
    # extra models in ratings are ignored
    assert bt_log_likelihood(battles, {**STRENGTHS, "Unused": 3000.0}) == pytest.approx(value)


def test_bt_log_likelihood_is_maximised_by_the_bradley_terry_fit():
    battles = simulate_battles(STRENGTHS, 3000, seed=6)
    mle = bradley_terry_ratings(battles)
    best = bt_log_likelihood(battles, mle)
    assert best > bt_log_likelihood(battles, pd.Series(STRENGTHS))
    assert best > bt_log_likelihood(battles, online_elo(battles, k=32))
    for model in mle.index:
        for step in (-5.0, 5.0):
            moved = mle.copy()
            moved[model] += step
            assert bt_log_likelihood(battles, moved) < best


def test_bt_log_likelihood_rejects_missing_or_non_finite_ratings():
    with pytest.raises(ValueError, match="MedLLM-v2"):
        bt_log_likelihood(WORKED_MATCHES, {"PharmGPT-v1": 1600.0, "ClinicalAI-v3": 1600.0})
    ratings = {"PharmGPT-v1": 1600.0, "ClinicalAI-v3": 1600.0, "MedLLM-v2": float("nan")}
    with pytest.raises(ValueError, match="finite"):
        bt_log_likelihood(WORKED_MATCHES, ratings)
    with pytest.raises(ValueError, match="scale"):
        bt_log_likelihood(WORKED_MATCHES, {m: 0.0 for m in ratings}, scale=0)
