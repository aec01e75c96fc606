"""Tests for course_utils.grpo: group-relative advantages, the loss gradient, rollouts and the loop.

As for PPO (tests/test_ppo.py), the loop is tested on a toy problem whose answer is certain:
a tiny random TinyGPT over a ten-word vocabulary and a "reward model" that counts how often
one word occurs in the answer. GRPO must raise that count, deterministically.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from gradcheck import check_grads

from course_utils import grpo, ppo, sampling
from course_utils.losses import kl_penalty
from course_utils.model import GPTConfig, TinyGPT
from course_utils.tokenizer import VocabularyTokenizer
from course_utils.training import encode_sft

WORDS = "warfarin bleeding risk dose renal liver check prescriber safe avoid"
PROMPTS = ["warfarin dose", "renal dose check", "liver risk", "avoid bleeding risk"]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit([WORDS])


def tiny_model(tok, dtype="float32", seed=0, d_model=16) -> TinyGPT:
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=1, n_heads=2, max_len=24, dtype=dtype)
    return TinyGPT(cfg, seed=seed)


class CountReward:
    """r = number of times ``token_id`` occurs in the first ``lengths[i]`` tokens of row i."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        real = np.arange(tokens.shape[1])[None, :] < np.asarray(lengths)[:, None]
        return ((np.asarray(tokens) == self.token_id) & real).sum(axis=1).astype(np.float64)


def quiet_config(**kw) -> grpo.GRPOConfig:
    base = dict(iterations=3, batch_size=8, group_size=4, max_new_tokens=6, minibatch_size=4, ppo_epochs=2,
                lr=1e-2, judge_every=0, seed=0)
    base.update(kw)
    return grpo.GRPOConfig(**base)


# ----------------------------------------------------------------------------- advantages
def test_group_advantages_by_hand():
    # group 1: r = (1, 2, 3, 6): mean 3, deviations (-2, -1, 0, 3),
    #          population std = √((4 + 1 + 0 + 9) / 4) = √3.5 = 1.870829
    # group 2: r = (0.1, 0.1, 0.1, 0.1): every answer alike, no signal, Â = 0 (not 0/0)
    # group 3: r = (5, -5, 5, -5): mean 0, std 5, Â = ±5 / (5 + 1e-4) = ±0.99998
    scores = np.array([1.0, 2.0, 3.0, 6.0, 0.1, 0.1, 0.1, 0.1, 5.0, -5.0, 5.0, -5.0])
    adv = grpo.group_advantages(scores, 4, eps=1e-4)
    np.testing.assert_allclose(adv[:4], np.array([-2.0, -1.0, 0.0, 3.0]) / (1.8708287 + 1e-4), rtol=1e-7)
    assert (adv[4:8] == 0.0).all()                                    # exactly 0, although 4 · 0.1 / 4 rounds
    np.testing.assert_allclose(adv[8:], [0.99998, -0.99998, 0.99998, -0.99998], rtol=1e-6)
    np.testing.assert_allclose(adv.reshape(3, 4).sum(axis=1), 0.0, atol=1e-12)   # zero mean per group
    # without the division (Dr. GRPO): the deviations from the group mean
    np.testing.assert_allclose(grpo.group_advantages(scores, 4, scale=False)[:4], [-2.0, -1.0, 0.0, 3.0])


def test_group_advantages_are_zero_mean_unit_scale_and_never_nan():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 8)) * rng.uniform(0.01, 100, size=(5, 1)) + rng.normal(size=(5, 1)) * 50
    adv = grpo.group_advantages(scores.reshape(-1), 8).reshape(5, 8)
    np.testing.assert_allclose(adv.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(adv.std(axis=1), 1.0, rtol=1e-2)       # the reward's scale is gone
    # an affine change of the reward model's scores (r → a r + b, a > 0) changes nothing but eps' share
    np.testing.assert_allclose(grpo.group_advantages(3.0 * scores.reshape(-1) + 7.0, 8), adv.reshape(-1), rtol=1e-3)
    assert (grpo.group_advantages(np.zeros(6), 3) == 0).all()
    assert (grpo.group_advantages(np.array([1.0, 2.0, 3.0]), 1) == 0).all()      # G = 1: no baseline but itself
    tiny = grpo.group_advantages(np.array([0.0, 1e-300, 0.0, 0.0]), 4)
    assert np.isfinite(tiny).all()
    with pytest.raises(ValueError, match="multiple"):
        grpo.group_advantages(np.zeros(7), 4)


# ----------------------------------------------------------------------------- gradient
@pytest.mark.parametrize("kl_coef,temperature", [(0.0, 1.0), (0.3, 0.7)])
def test_grpo_loss_gradient_by_finite_differences(tok, kl_coef, temperature):
    """Clipped surrogate + β k3 term, through log softmax(z / τ) into every weight."""
    rng = np.random.default_rng(1)
    model = tiny_model(tok, dtype="float64", d_model=8)
    for p in model.params.values():                                   # away from the initialisation
        p += 0.3 * rng.standard_normal(p.shape)
    tokens = rng.integers(6, tok.vocab_size, size=(3, 8))
    mask = sampling.response_mask(np.array([2, 3, 2]), np.array([5, 3, 6]), 7)
    logp, _ = sampling.policy_logprobs(model, tokens, temperature)
    old_logp = logp + rng.choice([-0.5, -0.05, 0.03, 0.6], size=logp.shape)   # inside and outside [1-ε, 1+ε]
    ref_logp = logp + rng.normal(size=logp.shape) * 0.8                        # k3 well away from 0
    adv = np.repeat(rng.normal(size=(3, 1)), 7, axis=1) * mask
    cfg = grpo.GRPOConfig(clip_eps=0.2, kl_coef=kl_coef, temperature=temperature)

    loss, grads, stats = grpo.grpo_loss(model, tokens, mask, old_logp, ref_logp, adv, cfg)
    assert 0.0 < stats["clipfrac"] < 1.0 and stats["kl_loss"] > 0.0
    w = mask / mask.sum()
    assert stats["kl_loss"] == pytest.approx(float((w * kl_penalty(logp, ref_logp, "k3")).sum()), rel=1e-12)
    assert loss == pytest.approx(stats["policy_loss"] + kl_coef * stats["kl_loss"], rel=1e-12)
    check_grads(lambda: grpo.grpo_loss(model, tokens, mask, old_logp, ref_logp, adv, cfg)[0], model.params, grads,
                max_entries=10)


# ----------------------------------------------------------------------------- rollouts
def test_rollout_spreads_the_group_advantage_over_each_answer(tok):
    policy = tiny_model(tok)
    ids = [encode_sft(tok, p)[0] for p in PROMPTS[:2] for _ in range(4)]     # two groups of four
    cfg = quiet_config()
    batch = grpo.grpo_rollout(policy, policy.copy(), CountReward(tok.token_to_id["safe"]), tok, ids, cfg,
                              np.random.default_rng(0))
    want = grpo.group_advantages(batch.scores, 4)
    for i in range(8):
        on = batch.mask[i] > 0
        assert on.sum() == batch.answer_lens[i]
        assert (batch.advantages[i, on] == want[i]).all() and (batch.advantages[i, ~on] == 0).all()
    assert np.abs(batch.logprobs - batch.ref_logprobs).max() < 1e-5       # π = π_ref: no KL yet
    assert batch.logprob_gap < 1e-4
    # the same sampling as PPO's rollout with the same seed (shared machinery)
    ppo_batch = ppo.rollout(policy, policy.copy(), CountReward(tok.token_to_id["safe"]), ppo.ValueHead(16), tok, ids,
                            ppo.PPOConfig(max_new_tokens=6, batch_size=8, samples_per_prompt=4), 0.0,
                            np.random.default_rng(0))
    np.testing.assert_array_equal(batch.tokens, ppo_batch.tokens)
    np.testing.assert_array_equal(batch.scores, ppo_batch.scores)


# ----------------------------------------------------------------------------- the loop
def test_grpo_raises_a_toy_reward_on_its_training_prompts(tok):
    target = tok.token_to_id["safe"]
    policy = tiny_model(tok, seed=0)
    ref = policy.copy()
    rm = CountReward(target)
    cfg = quiet_config(iterations=30, batch_size=16, group_size=4, kl_coef=0.01, lr=3e-3)
    ids = [encode_sft(tok, p)[0] for p in PROMPTS]

    def mean_count(model):
        batch = grpo.grpo_rollout(model, ref, rm, tok, ids * 16, quiet_config(), np.random.default_rng(99))
        return batch.scores.mean()

    before = mean_count(policy)
    _, diag = grpo.train_grpo(policy, ref, rm, tok, PROMPTS, cfg, progress=False)
    after = mean_count(policy)
    assert list(diag.columns) == list(grpo.DIAGNOSTIC_COLUMNS) and len(diag) == 30
    assert not diag.attrs["stopped"] and np.isfinite(diag.drop(columns="judge").to_numpy(dtype=float)).all()
    assert after > before + 1.0, (before, after)                     # at least one more "safe" per answer
    assert diag.score.iloc[-10:].mean() > diag.score.iloc[:10].mean() + 1.0
    assert diag.kl.iloc[-1] > 0.1 and diag.kl_loss.iloc[-1] > 0.0    # it paid for it in KL
    assert diag.zero_std_groups.between(0, 1).all()
    for k in ref.params:                                             # the reference never moves
        assert not np.shares_memory(ref.params[k], policy.params[k])


def test_train_grpo_is_deterministic(tok):
    def run():
        policy = tiny_model(tok, seed=1)
        _, diag = grpo.train_grpo(policy, policy.copy(), CountReward(7), tok, PROMPTS, quiet_config(),
                                  progress=False)
        return policy, diag

    (p1, d1), (p2, d2) = run(), run()
    pd.testing.assert_frame_equal(d1, d2)
    for k in p1.params:
        np.testing.assert_array_equal(p1.params[k], p2.params[k])


@pytest.mark.parametrize("overrides,pattern", [
    (dict(kl_coef=0.0), "β = 0"),
    (dict(clip_eps=0.0), "ε = 0"),
    (dict(group_size=1, batch_size=4), "group_size = 1"),
    (dict(lr=1e6), "lr = "),
    (dict(lr=1e30, grad_clip=1e38), "lr = "),
])
def test_extreme_settings_warn_and_never_nan(tok, overrides, pattern):
    policy = tiny_model(tok, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, diag = grpo.train_grpo(policy, policy.copy(), CountReward(7), tok, PROMPTS,
                                  quiet_config(iterations=4, **overrides), progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(pattern in m for m in messages), messages
    assert all(np.isfinite(a).all() for a in policy.params.values())   # never NaN weights
    assert 1 <= len(diag) <= 4 and np.isfinite(diag.score).all() and np.isfinite(diag.kl).all()
    if "group_size" in overrides:                                     # G = 1: nothing to learn from
        assert (diag.zero_std_groups == 1.0).all()


def test_non_finite_gradients_restore_the_last_good_weights(tok):
    policy = tiny_model(tok, seed=3)
    policy.params["h0.mlp.w_fc"][0, 0] = np.inf                      # a broken model
    before = {k: a.copy() for k, a in policy.params.items()}
    with pytest.warns(RuntimeWarning, match="GRPO stopped at iteration 1"):
        _, diag = grpo.train_grpo(policy, policy.copy(), CountReward(7), tok, PROMPTS, quiet_config(),
                                  progress=False)
    assert diag.attrs["stopped"] and len(diag) == 1
    for k in before:
        np.testing.assert_array_equal(policy.params[k], before[k])


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        grpo.GRPOConfig(batch_size=10, group_size=4)
    with pytest.raises(ValueError, match="temperature"):
        grpo.GRPOConfig(temperature=0.0)
    with pytest.raises(ValueError, match="adv_eps"):
        grpo.GRPOConfig(adv_eps=0.0)
    assert math.isclose(grpo.DEFAULT_CONFIG.kl_coef, 0.04)           # the paper's β
