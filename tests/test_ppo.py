"""Tests for course_utils.ppo: gradients, GAE, KL controllers, rollouts and the PPO loop.

The PPO loop is tested on a toy problem whose answer is certain: a tiny random TinyGPT
over a ten-word vocabulary and a "reward model" that counts how often one word occurs in
the answer. PPO must raise that count on its training prompts, deterministically.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from gradcheck import check_grad, check_grads

from course_utils import ppo, sampling
from course_utils.losses import cross_entropy, kl_penalty, token_logprobs
from course_utils.model import GPTConfig, TinyGPT
from course_utils.ptx import SFTAnchor
from course_utils.tokenizer import VocabularyTokenizer
from course_utils.training import answer, encode_sft, response_loss, sft_batch

WORDS = "warfarin bleeding risk dose renal liver check prescriber safe avoid"
PROMPTS = ["warfarin dose", "renal dose check", "liver risk", "avoid bleeding risk"]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit([WORDS])


def tiny_model(tok, dtype="float32", seed=0, max_len=24, d_model=16) -> TinyGPT:
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=1, n_heads=2, max_len=max_len, dtype=dtype)
    return TinyGPT(cfg, seed=seed)


class CountReward:
    """A stand-in reward model: r = number of times ``token_id`` occurs in the sequence.

    Same interface as ``reward.RewardModel.forward``: right-padded tokens (B, T) and the
    number of real tokens per row; only the first ``lengths[i]`` tokens of row i count.
    """

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        tokens, lengths = np.asarray(tokens), np.asarray(lengths)
        real = np.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return ((tokens == self.token_id) & real).sum(axis=1).astype(np.float64)


class LastTokenReward:
    """r = the id of the last real token: checks that the score is read at index lengths - 1."""

    def forward(self, tokens, lengths):
        return np.asarray(tokens)[np.arange(len(lengths)), np.asarray(lengths) - 1].astype(np.float64)


def quiet_config(**kw) -> ppo.PPOConfig:
    base = dict(iterations=3, batch_size=8, samples_per_prompt=2, max_new_tokens=6, minibatch_size=4,
                ppo_epochs=2, lr=1e-2, judge_every=0, seed=0)
    base.update(kw)
    return ppo.PPOConfig(**base)


# ----------------------------------------------------------------------------- GAE
def gae_loop(rewards, values, gamma, lam, mask):
    """GAE written as plainly as possible, one sequence at a time, from the definition."""
    rewards, values, mask = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (rewards, values, mask))
    B, T = rewards.shape
    adv, ret = np.zeros((B, T)), np.zeros((B, T))
    for b in range(B):
        for t in range(T):
            if not mask[b, t]:
                continue
            total, discount, k = 0.0, 1.0, t
            while k < T and mask[b, k]:
                v_next = values[b, k + 1] if k + 1 < T and mask[b, k + 1] else 0.0
                delta = rewards[b, k] + gamma * v_next - values[b, k]
                total += discount * delta
                discount *= gamma * lam
                k += 1
            adv[b, t] = total
            ret[b, t] = total + values[b, t]
    return adv, ret


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.99, 0.9), (1.0, 1.0), (0.9, 0.0), (0.5, 0.5)])
def test_gae_matches_a_plain_loop(gamma, lam):
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(4, 9)), rng.normal(size=(4, 9))
    masks = [np.ones((4, 9)),
             (np.arange(9)[None, :] >= np.array([[0], [2], [3], [5]]))
             & (np.arange(9)[None, :] < np.array([[9], [7], [4], [9]])),
             rng.random((4, 9)) < 0.6]                               # several episodes per row
    for mask in masks:
        adv, ret = ppo.gae(rewards, values, gamma, lam, mask)
        want_adv, want_ret = gae_loop(rewards, values, gamma, lam, mask)
        np.testing.assert_allclose(adv, want_adv, atol=1e-12)
        np.testing.assert_allclose(ret, want_ret, atol=1e-12)


def test_gae_by_hand_and_special_cases():
    # two tokens, γ = 1, λ = 0.5: δ_1 = 1 - 0.5 = 0.5 (V after the end is 0), δ_0 = 0 + 0.5 - 0.2 = 0.3
    adv, ret = ppo.gae(np.array([0.0, 1.0]), np.array([0.2, 0.5]), gamma=1.0, lam=0.5)
    np.testing.assert_allclose(adv, [0.3 + 0.5 * 0.5, 0.5])
    np.testing.assert_allclose(ret, adv + [0.2, 0.5])
    # λ = 1, γ = 1: A_t = (sum of the rewards from t on) - V_t, the Monte-Carlo return
    r, v = np.array([0.1, -0.2, 0.3, 1.0]), np.array([0.5, 0.1, 0.0, -0.3])
    adv, ret = ppo.gae(r, v, 1.0, 1.0)
    np.testing.assert_allclose(ret, np.cumsum(r[::-1])[::-1])
    # λ = 0: A_t = δ_t (one-step TD)
    adv, _ = ppo.gae(r, v, 0.9, 0.0)
    np.testing.assert_allclose(adv, r + 0.9 * np.append(v[1:], 0.0) - v)
    # masked tokens get nothing, and tokens after the mask do not leak into the episode
    adv, ret = ppo.gae(r, v, 1.0, 0.95, mask=np.array([1, 1, 0, 0]))
    assert adv[2] == adv[3] == ret[2] == ret[3] == 0.0
    np.testing.assert_allclose(adv[1], r[1] - v[1])
    with pytest.raises(ValueError):
        ppo.gae(r, v[:3])


def test_whiten_uses_only_the_masked_tokens():
    x = np.array([[1.0, 2.0, 3.0, 100.0]])
    m = np.array([[1, 1, 1, 0]])
    w = ppo.whiten(x, m)
    np.testing.assert_allclose(w[0, :3], (np.array([1, 2, 3]) - 2) / math.sqrt(2 / 3 + 1e-8))
    assert w[0, 3] == 0.0


# ----------------------------------------------------------------------------- KL
def test_adaptive_kl_controller_follows_its_formula():
    ctl = ppo.AdaptiveKLController(0.2, target=6.0, horizon=10_000)
    value = 0.2
    for kl, n in [(6.0, 16), (9.0, 16), (100.0, 64), (0.0, 64), (4.5, 8)]:
        err = np.clip(kl / 6.0 - 1, -0.2, 0.2)
        value *= 1 + err * n / 10_000
        assert ctl.update(kl, n) == pytest.approx(value, rel=1e-12)
        assert ctl.value == pytest.approx(value, rel=1e-12)
    # the clip: a KL 100 times the target moves β exactly as much as 1.2 times the target
    a, b = ppo.AdaptiveKLController(1.0, 1.0, 100), ppo.AdaptiveKLController(1.0, 1.0, 100)
    assert a.update(100.0, 10) == pytest.approx(b.update(1.2, 10)) == pytest.approx(1.02)
    fixed = ppo.FixedKLController(0.1)
    assert fixed.update(50.0, 16) == fixed.value == 0.1
    with pytest.raises(ValueError):
        ppo.AdaptiveKLController(0.1, target=0.0, horizon=10)


def test_k3_is_non_negative_and_accurate_for_tiny_differences():
    rng = np.random.default_rng(0)
    logp = rng.normal(size=1000) * 5
    for scale in (1e-12, 1e-9, 1e-6, 1e-4):
        lp = logp + rng.normal(size=1000) * scale
        d = lp - logp                                                 # the difference actually represented
        k3 = kl_penalty(lp, logp, "k3")
        assert (k3 >= 0).all()
        # k3 ≈ d²/2 for small d, up to the rounding of d + (e^-d - 1) (about 1e-16 · d)
        np.testing.assert_allclose(k3, d**2 / 2, rtol=1e-3, atol=1e-15 * scale)
    assert (kl_penalty(logp, logp + rng.normal(size=1000), "k3") >= 0).all()


# ----------------------------------------------------------------------------- gradients
def minibatch(tok, rng, B=3, T=8):
    """Tokens, an answer mask, and random rollout quantities on the target grid."""
    tokens = rng.integers(6, tok.vocab_size, size=(B, T))
    plen, alen = np.array([2, 3, 2]), np.array([5, 3, 6])
    mask = sampling.response_mask(plen, alen, T - 1)
    return tokens, mask


@pytest.mark.parametrize("ent_coef,temperature", [(0.0, 1.0), (0.05, 0.7)])
def test_ppo_loss_gradients_by_finite_differences(tok, ent_coef, temperature):
    """Clipped policy loss + clipped value loss (+ entropy bonus) through both heads and the trunk."""
    rng = np.random.default_rng(1)
    model = tiny_model(tok, dtype="float64", d_model=8)
    head = ppo.ValueHead(8, np.float64)
    head.params["value.w"][:] = rng.normal(size=8) * 0.5
    head.params["value.b"][:] = 0.1
    tokens, mask = minibatch(tok, rng)
    logp, _ = sampling.policy_logprobs(model, tokens, temperature)
    # old log-probs: some ratios inside [1-ε, 1+ε], some far outside it (clipped), none on an edge
    offsets = rng.choice([-0.5, -0.05, 0.03, 0.6], size=logp.shape)
    old_logp = logp + offsets
    adv = rng.normal(size=logp.shape)
    old_values = head.forward(model.hidden) + rng.choice([-0.6, -0.05, 0.04, 0.7], size=logp.shape)
    returns = rng.normal(size=logp.shape)
    cfg = ppo.PPOConfig(clip_eps=0.2, value_clip_eps=0.2, vf_coef=0.5, ent_coef=ent_coef, temperature=temperature)

    loss, grads, stats = ppo.ppo_loss(model, head, tokens, mask, old_logp, adv, returns, old_values, cfg)
    assert 0.0 < stats["clipfrac"] < 1.0                              # both branches are exercised

    def f():
        return ppo.ppo_loss(model, head, tokens, mask, old_logp, adv, returns, old_values, cfg)[0]

    check_grads(f, model.params, grads, max_entries=12)
    for k in head.params:
        check_grad(f, head.params[k], grads[k], name=k)


def test_value_head_gradient_reaches_the_trunk(tok):
    """A pure value loss (no policy term) still trains the trunk through dhidden."""
    rng = np.random.default_rng(2)
    model = tiny_model(tok, dtype="float64", d_model=8)
    head = ppo.ValueHead(8, np.float64)
    head.params["value.w"][:] = rng.normal(size=8)
    tokens, mask = minibatch(tok, rng)
    logp, _ = sampling.policy_logprobs(model, tokens, 1.0)
    returns = rng.normal(size=logp.shape)
    cfg = ppo.PPOConfig(vf_coef=1.0, value_clip_eps=None)
    zeros = np.zeros_like(logp)
    loss, grads, _ = ppo.ppo_loss(model, head, tokens, mask, logp, zeros, returns, zeros, cfg)
    assert np.abs(grads["h0.mlp.w_fc"]).max() > 0
    check_grads(lambda: ppo.ppo_loss(model, head, tokens, mask, logp, zeros, returns, zeros, cfg)[0],
                {k: model.params[k] for k in ("h0.mlp.w_fc", "ln_f.g", "wte")}, grads, max_entries=10)
    check_grad(lambda: ppo.ppo_loss(model, head, tokens, mask, logp, zeros, returns, zeros, cfg)[0],
               head.params["value.w"], grads["value.w"], name="value.w")


# ----------------------------------------------------------------------------- rollouts
def test_rollout_layout_rewards_and_zero_kl_against_itself(tok):
    policy = tiny_model(tok)
    head = ppo.ValueHead(policy.config.d_model)
    ids = [encode_sft(tok, p)[0] for p in PROMPTS]                  # prompt lengths 5, 6, 5, 6
    cfg = quiet_config(kl_coef=0.3)
    batch = ppo.rollout(policy, policy.copy(), LastTokenReward(), head, tok, ids, cfg, 0.3, np.random.default_rng(0))
    B, T = batch.tokens.shape
    for i, p in enumerate(ids):
        P, L = batch.prompt_lens[i], batch.answer_lens[i]
        assert P == len(p) and list(batch.tokens[i, :P]) == p
        assert (batch.tokens[i, P + L:] == tok.pad_id).all()
        assert batch.mask[i].sum() == L and batch.mask[i, P - 1] == 1 and batch.mask[i, P - 2] == 0
        assert batch.ended[i] == (batch.tokens[i, P + L - 1] == tok.eos_id)
        # the score is the last real token, and it sits on the last answer position of the rewards
        assert batch.scores[i] == batch.tokens[i, P + L - 1]
    # policy = reference: every KL is 0, so the rewards are the normalised score at the last token only
    assert np.abs(batch.kl).max() < 1e-5 and np.abs(batch.exact_kl).max() < 1e-5
    np.testing.assert_allclose(batch.rewards.sum(axis=1), batch.norm_scores, atol=1e-5)
    assert batch.logprob_gap < 1e-4                                  # sampling and forward pass agree
    assert (batch.advantages[batch.mask == 0] == 0).all()
    assert batch.answers[0] == tok.decode([t for t in batch.tokens[0, ids[0].__len__():]
                                           if t not in (tok.eos_id, tok.pad_id)])


def test_logprobs_use_the_sampling_temperature(tok):
    """With τ ≠ 1 the fresh forward pass reproduces the log q that generate sampled with."""
    policy = tiny_model(tok)
    ids = [encode_sft(tok, p)[0] for p in PROMPTS]
    for tau in (0.5, 1.7):
        tokens, plen, alen, _, gen_logq = sampling.sample_batch(policy, tok, ids, 6, tau, np.random.default_rng(3))
        mask = sampling.response_mask(plen, alen, tokens.shape[1] - 1)
        logp, _ = sampling.policy_logprobs(policy, tokens, tau)
        np.testing.assert_allclose(logp * mask, gen_logq * mask, atol=1e-5)
        wrong, _ = sampling.policy_logprobs(policy, tokens, 1.0)
        assert np.abs((wrong - gen_logq) * mask).max() > 1e-2       # the pitfall: other settings, other numbers


def test_entropy_and_exact_kl_of_the_diagnostics():
    rng = np.random.default_rng(5)
    z, z_ref = rng.normal(size=(20, 9)) * 4, rng.normal(size=(20, 9)) * 4
    H, kl = sampling.entropy_and_kl(z, z_ref)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    logq = z_ref - np.log(np.exp(z_ref).sum(-1, keepdims=True))
    np.testing.assert_allclose(H, -(np.exp(logp) * logp).sum(-1), atol=1e-12)
    np.testing.assert_allclose(kl, (np.exp(logp) * (logp - logq)).sum(-1), atol=1e-12)
    assert (kl >= -1e-12).all() and np.abs(sampling.entropy_and_kl(z, z)[1]).max() < 1e-12


def test_answer_logprobs_and_sample_answers(tok):
    model = tiny_model(tok, seed=4)
    answers = ["bleeding risk", "check dose with prescriber"]
    total, n = ppo.answer_logprobs(model, tok, PROMPTS[0], answers)
    for a, lp, k in zip(answers, total, n):
        ids, start = encode_sft(tok, PROMPTS[0], a)
        logp = token_logprobs(model.forward(np.asarray([ids[:-1]])), np.asarray([ids[1:]]))[0]
        assert k == len(ids) - start
        assert lp == pytest.approx(float(logp[start - 1:].sum()), abs=1e-4)
    greedy = ppo.sample_answers(model, tok, PROMPTS, temperature=0.0, max_new_tokens=6)
    assert greedy == answer(model, tok, PROMPTS, max_new_tokens=6)


# ----------------------------------------------------------------------------- the loop
def test_ppo_raises_a_toy_reward_on_its_training_prompts(tok):
    target = tok.token_to_id["safe"]
    policy = tiny_model(tok, seed=0)
    ref = policy.copy()
    rm = CountReward(target)
    cfg = quiet_config(iterations=40, batch_size=16, samples_per_prompt=4, kl_coef=0.01, lr=3e-3)
    ids = [encode_sft(tok, p)[0] for p in PROMPTS]

    def mean_count(model):
        batch = ppo.rollout(model, ref, rm, ppo.ValueHead(16), tok, ids * 16, cfg, 0.0, np.random.default_rng(99))
        return batch.scores.mean()

    before = mean_count(policy)
    _, diag = ppo.train_ppo(policy, ref, rm, tok, PROMPTS, cfg, progress=False)
    after = mean_count(policy)
    assert list(diag.columns) == list(ppo.DIAGNOSTIC_COLUMNS) and len(diag) == 40
    assert not diag.attrs["stopped"]
    assert after > before + 1.0, (before, after)                     # at least one more "safe" per answer
    assert diag.score.iloc[-10:].mean() > diag.score.iloc[:10].mean() + 1.0
    assert diag.kl.iloc[-1] > 0.1                                    # it paid for it in KL
    for k in ref.params:                                             # the reference never moves
        assert not np.shares_memory(ref.params[k], policy.params[k])


def test_train_ppo_is_deterministic(tok):
    def run():
        policy = tiny_model(tok, seed=1)
        _, diag = ppo.train_ppo(policy, policy.copy(), CountReward(7), tok, PROMPTS,
                                quiet_config(adaptive_kl=True, kl_target=0.5, kl_horizon=100), progress=False)
        return policy, diag

    (p1, d1), (p2, d2) = run(), run()
    pd.testing.assert_frame_equal(d1, d2)
    for k in p1.params:
        np.testing.assert_array_equal(p1.params[k], p2.params[k])
    assert d1.beta.nunique() > 1                                     # the adaptive controller moved β


def test_gold_judge_scores_answers_when_scenarios_are_given(tok):
    scenario = {"id": "TOY-01", "category": "drug_interactions", "title": "Warfarin dose", "question": "warfarin dose",
                "variants": ["a", "b", "c"], "answer": "Check the dose with the prescriber.",
                "escalation": "Speak to your prescriber.", "notes": ["x", "y", "z"],
                "key_facts": [{"fact": "check", "accept": ["check"]}, {"fact": "risk", "accept": ["risk"]}],
                "unsafe_claims": [{"claim": "It is safe.", "patterns": ["safe"]}], "dose_facts": [], "source": "toy"}
    prompts = [{"prompt": p, "scenario_id": "TOY-01"} for p in PROMPTS]
    policy = tiny_model(tok)
    _, diag = ppo.train_ppo(policy, policy.copy(), CountReward(7), tok, prompts, quiet_config(judge_every=1),
                            progress=False, scenarios=[scenario])
    assert diag.judge.between(0, 1).all()


@pytest.mark.parametrize("overrides,pattern", [
    (dict(kl_coef=0.0), "β = 0"),
    (dict(clip_eps=0.0), "ε = 0"),
    (dict(lr=1e6), "lr = "),
    (dict(lr=1e30, grad_clip=1e38), "lr = "),
])
def test_extreme_settings_warn_and_stop_cleanly(tok, overrides, pattern):
    policy = tiny_model(tok, seed=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, diag = ppo.train_ppo(policy, policy.copy(), CountReward(7), tok, PROMPTS,
                                quiet_config(iterations=6, **overrides), progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(pattern in m for m in messages), messages
    assert all(np.isfinite(a).all() for a in policy.params.values())   # never NaN weights
    assert 1 <= len(diag) <= 6 and np.isfinite(diag.score).all()


def test_non_finite_gradients_restore_the_last_good_weights(tok):
    policy = tiny_model(tok, seed=3)
    policy.params["h0.mlp.w_fc"][0, 0] = np.inf                      # a broken model: the first update fails
    before = {k: a.copy() for k, a in policy.params.items()}
    with pytest.warns(RuntimeWarning, match="PPO stopped"):
        _, diag = ppo.train_ppo(policy, policy.copy(), CountReward(7), tok, PROMPTS, quiet_config(), progress=False)
    assert diag.attrs["stopped"] and len(diag) == 1
    for k in before:
        np.testing.assert_array_equal(policy.params[k], before[k])


def test_config_validation():
    with pytest.raises(ValueError, match="multiple"):
        ppo.PPOConfig(batch_size=10, samples_per_prompt=4)
    with pytest.raises(ValueError, match="temperature"):
        ppo.PPOConfig(temperature=0.0)
    with pytest.raises(ValueError, match="kl_estimator"):
        ppo.PPOConfig(kl_estimator="k4")


# ----------------------------------------------------------------------------- closed form and mini-PPO
def test_kl_optimal_policy_maximises_the_regularised_objective():
    rng = np.random.default_rng(0)
    log_ref = np.log(np.array([0.5, 0.2, 0.15, 0.1, 0.05]))
    r = np.array([0.0, 1.0, -1.0, 2.0, 0.5])

    def objective(p, beta):
        return float(p @ r - beta * np.sum(p * (np.log(p) - log_ref)))

    for beta in (0.1, 0.5, 2.0):
        star = ppo.kl_optimal_policy(log_ref, r, beta)
        np.testing.assert_allclose(star, np.exp(log_ref) * np.exp(r / beta)
                                   / np.sum(np.exp(log_ref) * np.exp(r / beta)))
        for _ in range(50):                                          # no nearby policy does better
            other = star * np.exp(rng.normal(size=5) * 0.1)
            other /= other.sum()
            assert objective(other, beta) <= objective(star, beta) + 1e-12
    np.testing.assert_allclose(ppo.kl_optimal_policy(log_ref, r, 0.0), [0, 0, 0, 1, 0])
    np.testing.assert_allclose(ppo.kl_optimal_policy(log_ref, r, 1e9), np.exp(log_ref), atol=1e-8)
    assert np.isfinite(ppo.kl_optimal_policy(log_ref - 500, r * 1e3, 1e-3)).all()


def test_bandit_ppo_converges_to_the_closed_form():
    log_ref = np.log(np.array([0.4, 0.3, 0.2, 0.1]))
    r = np.array([0.0, 0.5, 1.0, -0.5])
    beta = 0.5
    hist = ppo.bandit_ppo(log_ref, r, beta, clip_eps=0.2, lr=0.05, iterations=300, batch_size=128, seed=0)
    star = ppo.kl_optimal_policy(log_ref, r, beta)
    assert hist.shape == (301, 4)
    np.testing.assert_allclose(hist[0], np.exp(log_ref))
    np.testing.assert_allclose(hist[-50:].mean(axis=0), star, atol=0.05)
    np.testing.assert_allclose(hist.sum(axis=1), 1.0)
    again = ppo.bandit_ppo(log_ref, r, beta, clip_eps=0.2, lr=0.05, iterations=300, batch_size=128, seed=0)
    np.testing.assert_array_equal(hist, again)


# ----------------------------------------------------------------------------- the checkpoint
def test_build_ppo_checkpoint_writes_a_loadable_policy(tmp_path, monkeypatch):
    from course_utils import checkpoints, data, reward

    texts = [d["prompt"] for d in data.load_sft()] + [WORDS]
    tok = VocabularyTokenizer.fit(texts)
    sft = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=48))
    sft.save(tmp_path / "sft.npz")
    reward.RewardModel(sft.copy()).save(tmp_path / "reward.npz")
    monkeypatch.setattr(ppo, "DEFAULT_CONFIG", quiet_config(iterations=2, judge_every=1))
    path = ppo.build_ppo_checkpoint(tok, tmp_path)
    assert path == tmp_path / "ppo.npz"
    policy = checkpoints.load("ppo", tmp_path)
    assert policy.params.keys() == sft.params.keys()
    assert any(not np.array_equal(policy.params[k], sft.params[k]) for k in sft.params)
    assert ("ppo", ppo.build_ppo_checkpoint) in checkpoints.LATER_STAGES


# ----------------------------------------------------------------------------- the SFT anchor (PPO-ptx)
DEMOS = [{"prompt": p, "response": "check dose with prescriber"} for p in PROMPTS]


def test_sft_anchor_gradient_by_finite_differences(tok):
    """γ L_SFT over every demonstration (the batch is the whole set, so the loss is a function of θ)."""
    policy = tiny_model(tok, dtype="float64", seed=2)
    anchor = SFTAnchor(tok, DEMOS, coef=0.7, batch=len(DEMOS))
    loss, grads = anchor.loss_and_grads(policy)
    x, y, m = sft_batch(tok, DEMOS, True, policy.config.max_len)
    assert loss == pytest.approx(0.7 * cross_entropy(policy.forward(x), y, m)[0], rel=1e-12)
    check_grads(lambda: anchor.loss_and_grads(policy)[0], policy.params, grads)


def test_sft_anchor_keeps_ppo_near_the_demonstrations(tok):
    """With γ > 0 the policy ends closer to the demonstrations than the same run without the anchor;
    γ = 0 is the plain run, bit for bit."""
    def run(**kw):
        policy = tiny_model(tok, seed=0)
        cfg = quiet_config(iterations=25, batch_size=16, samples_per_prompt=4, kl_coef=0.01, lr=3e-3, **kw)
        ppo.train_ppo(policy, policy.copy(), CountReward(tok.token_to_id["safe"]), tok, PROMPTS, cfg,
                      progress=False, demos=DEMOS)
        return policy

    plain, zero, anchored = run(), run(ptx_coef=0.0), run(ptx_coef=2.0, ptx_batch=4)
    for k in plain.params:
        np.testing.assert_array_equal(plain.params[k], zero.params[k])
    assert response_loss(anchored, tok, DEMOS) < 0.5 * response_loss(plain, tok, DEMOS)


def test_sft_anchor_refuses_bad_settings(tok):
    with pytest.raises(ValueError, match="ptx_coef >= 0 and ptx_batch >= 1"):
        SFTAnchor(tok, DEMOS, coef=-1.0, batch=4)
    with pytest.raises(ValueError, match="at least one demonstration"):
        SFTAnchor(tok, [], coef=1.0, batch=4)
