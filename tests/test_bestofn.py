"""Tests for course_utils.bestofn: sampling n answers and keeping the best, and the KL of doing so."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_utils import bestofn, ppo
from course_utils.model import GPTConfig, TinyGPT
from course_utils.reward import RewardModel
from course_utils.tokenizer import VocabularyTokenizer

WORDS = "warfarin bleeding risk dose renal liver check prescriber safe avoid"
PROMPTS = ["warfarin dose", "renal dose check", "liver risk", "avoid bleeding risk", "check liver"]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit([WORDS])


def tiny_model(tok, seed=0) -> TinyGPT:
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=24)
    return TinyGPT(cfg, seed=seed)


class WordCount:
    """A stand-in reward model with ``RewardModel.score``'s interface: occurrences of ``word``, minus 0.01 per word."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls = 0

    def score(self, tok, prompts, answers) -> np.ndarray:
        self.calls += 1
        assert len(prompts) == len(answers)
        return np.array([a.split().count(self.word) - 0.01 * len(a.split()) for a in answers], dtype=np.float64)


# ----------------------------------------------------------------------------- the analytic KL
def test_bon_kl_values_and_monotonicity():
    assert bestofn.bon_kl(1) == 0.0
    assert bestofn.bon_kl(2) == pytest.approx(math.log(2) - 0.5)          # 0.693147 - 0.5 = 0.193147
    assert bestofn.bon_kl(64) == pytest.approx(4.1588831 - 63 / 64)       # log 64 - 0.984375 = 3.174508
    ns = np.arange(1, 1001)
    kl = bestofn.bon_kl(ns)
    assert isinstance(kl, np.ndarray) and (np.diff(kl) > 0).all()         # strictly increasing in n
    assert (kl <= np.log(ns)).all() and kl[-1] == pytest.approx(math.log(1000) - 1, abs=1.01e-3)   # ≈ log n - 1
    with pytest.raises(ValueError):
        bestofn.bon_kl(0)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    on = p > 0
    return float(np.sum(p[on] * np.log(p[on] / q[on])))


def test_bon_policy_by_hand_and_its_kl_is_bounded_by_bon_kl():
    # two equally likely answers with rewards 0 and 1, n = 2: the best is the good one
    # unless both samples are the bad one: P = 1 - 0.5² = 0.75
    np.testing.assert_allclose(bestofn.bon_policy(np.array([0.5, 0.5]), np.array([0.0, 1.0]), 2), [0.25, 0.75])
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6))
    np.testing.assert_allclose(bestofn.bon_policy(p, rng.normal(size=6), 1), p)          # n = 1: π itself
    # many answers with distinct rewards: the KL approaches log n - (n-1)/n from below
    K = 20_000
    p, r = rng.dirichlet(np.ones(K)), rng.normal(size=K)
    for n in (2, 4, 16):
        pn = bestofn.bon_policy(p, r, n)
        assert pn.sum() == pytest.approx(1.0)
        assert _kl(pn, p) <= bestofn.bon_kl(n) + 1e-12
        assert _kl(pn, p) == pytest.approx(bestofn.bon_kl(n), abs=2e-3)
    # a coarse reward (three levels): ties make the KL clearly smaller than the bound
    coarse = np.round(r).clip(-1, 1)
    assert _kl(bestofn.bon_policy(p, coarse, 16), p) < bestofn.bon_kl(16) - 0.5


def test_bon_policy_matches_simulated_best_of_n_with_ties():
    p = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
    r = np.array([1.0, 0.0, 1.0, 2.0, 0.0])                  # answers 0 and 2 tie, so do 1 and 4
    n, draws = 3, 40_000
    samples = np.random.default_rng(1).choice(5, size=(draws, n), p=p)
    best = samples[np.arange(draws), np.argmax(r[samples], axis=1)]      # ties: the first sample
    freq = np.bincount(best, minlength=5) / draws
    np.testing.assert_allclose(freq, bestofn.bon_policy(p, r, n), atol=0.01)


# ----------------------------------------------------------------------------- sampling
def test_best_of_one_is_plain_sampling(tok):
    policy = tiny_model(tok)
    answers, scores, all_scores = bestofn.best_of_n(policy, WordCount("safe"), tok, PROMPTS, 1, temperature=1.0,
                                                    max_new_tokens=6, seed=7)
    assert answers == ppo.sample_answers(policy, tok, PROMPTS, 1.0, 6, seed=7)
    assert all_scores.shape == (5, 1)
    np.testing.assert_array_equal(scores, all_scores[:, 0])


def test_best_of_n_keeps_the_highest_scoring_sample(tok):
    policy = tiny_model(tok, seed=1)
    rm = WordCount("safe")
    answers, scores, all_scores = bestofn.best_of_n(policy, rm, tok, PROMPTS, 8, max_new_tokens=6, seed=3)
    assert rm.calls == 1 and all_scores.shape == (5, 8) and len(answers) == 5
    np.testing.assert_array_equal(scores, all_scores.max(axis=1))
    np.testing.assert_array_equal(rm.score(tok, PROMPTS, answers), scores)   # the returned answer has that score
    # the samples are those of one batched sample_answers call, prompt i in rows i·n .. i·n + n - 1
    samples = ppo.sample_answers(policy, tok, [p for p in PROMPTS for _ in range(8)], 1.0, 6, seed=3)
    np.testing.assert_array_equal(rm.score(tok, [p for p in PROMPTS for _ in range(8)], samples).reshape(5, 8),
                                  all_scores)
    for i, a in enumerate(answers):
        assert samples[i * 8 + int(np.argmax(all_scores[i]))] == a
    assert scores.mean() > all_scores.mean()                  # selection raises the score
    assert len({tuple(row) for row in all_scores}) > 1 or len(set(samples)) > 5   # the samples differ


def test_best_of_n_is_deterministic_and_works_with_a_reward_model(tok):
    policy = tiny_model(tok, seed=2)
    rm = RewardModel(tiny_model(tok, seed=5), seed=0)         # the real class, a random tiny trunk
    first = bestofn.best_of_n(policy, rm, tok, PROMPTS[:3], 4, max_new_tokens=6, seed=11)
    again = bestofn.best_of_n(policy, rm, tok, PROMPTS[:3], 4, max_new_tokens=6, seed=11)
    assert first[0] == again[0]
    np.testing.assert_array_equal(first[2], again[2])
    np.testing.assert_allclose(rm.score(tok, PROMPTS[:3], first[0]), first[1], atol=1e-6)
    assert np.isfinite(first[2]).all()
    other = bestofn.best_of_n(policy, rm, tok, PROMPTS[:3], 4, max_new_tokens=6, seed=12)
    assert not np.array_equal(other[2], first[2])             # another seed, other samples
    with pytest.raises(ValueError):
        bestofn.best_of_n(policy, rm, tok, PROMPTS, 0)
    assert bestofn.best_of_n(policy, rm, tok, [], 3)[2].shape == (0, 3)
