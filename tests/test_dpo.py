"""Tests for course_utils.dpo: the gradient through TinyGPT, a toy run, determinism, guards.

The toy preference: over a ten-word vocabulary, the chosen answers never say "safe" and the
rejected ones do. DPO must widen the chosen-minus-rejected margin on these pairs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from gradcheck import check_grads

from course_utils import dpo, ppo
from course_utils.losses import dpo_loss
from course_utils.model import GPTConfig, TinyGPT
from course_utils.tokenizer import VocabularyTokenizer

WORDS = "warfarin bleeding risk dose renal liver check prescriber safe avoid"
PAIRS = [
    {"prompt": "warfarin dose", "chosen": "check dose prescriber", "rejected": "safe dose"},
    {"prompt": "renal dose check", "chosen": "check renal dose", "rejected": "safe"},
    {"prompt": "liver risk", "chosen": "avoid liver risk", "rejected": "safe safe"},
    {"prompt": "avoid bleeding risk", "chosen": "bleeding risk check prescriber", "rejected": "safe bleeding"},
]
HELD_OUT = [
    {"prompt": "warfarin bleeding", "chosen": "check prescriber", "rejected": "safe"},
    {"prompt": "renal risk", "chosen": "avoid renal risk", "rejected": "safe risk"},
]


@pytest.fixture(scope="module")
def tok() -> VocabularyTokenizer:
    return VocabularyTokenizer.fit([WORDS])


def tiny_model(tok, dtype="float32", seed=0, d_model=16, jitter=0.0) -> TinyGPT:
    """One layer, two heads; ``jitter`` moves every weight away from the initialisation (for gradient checks)."""
    cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=d_model, n_layers=1, n_heads=2, max_len=24, dtype=dtype)
    model = TinyGPT(cfg, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for p in model.params.values():
        p += (jitter * rng.standard_normal(p.shape)).astype(p.dtype)
    return model


def quiet_config(**kw) -> dpo.DPOConfig:
    base = dict(epochs=20, batch_size=4, lr=1e-2, beta=0.5, warmup=0, min_lr_ratio=1.0, seed=0)
    base.update(kw)
    return dpo.DPOConfig(**base)


# ----------------------------------------------------------------------------- log-probabilities and gradients
def test_sequence_logprobs_match_answer_logprobs(tok):
    model = tiny_model(tok, dtype="float64", seed=3, jitter=0.3)
    tokens, mask = dpo.encode_pairs(tok, PAIRS)
    seq, logits = dpo.sequence_logprobs(model, tokens, mask)
    assert seq.shape == (8,) and logits.shape == (8, tokens.shape[1] - 1, tok.vocab_size)
    for i, p in enumerate(PAIRS):                     # rows: the 4 chosen answers, then the 4 rejected ones
        want, _ = ppo.answer_logprobs(model, tok, p["prompt"], [p["chosen"], p["rejected"]])
        np.testing.assert_allclose([seq[i], seq[4 + i]], want, atol=1e-10)
    # the answer mask: one 1 per answer token plus <eos>, nothing on the prompt or the padding
    np.testing.assert_array_equal(mask.sum(axis=1), [len(tok.encode(p[k])) + 1 for k in ("chosen", "rejected")
                                                       for p in PAIRS])
    chosen, rejected = dpo.pair_logprobs(model, tok, PAIRS, batch_size=3)   # other chunks, same numbers
    np.testing.assert_allclose(np.concatenate([chosen, rejected]), seq, atol=1e-10)


@pytest.mark.parametrize("beta", [0.1, 2.0])
def test_dpo_gradient_through_tinygpt_by_finite_differences(tok, beta):
    """d L_DPO / d θ for every weight of a float64 TinyGPT, against central differences."""
    policy = tiny_model(tok, dtype="float64", d_model=8, seed=1, jitter=0.3)
    ref = tiny_model(tok, dtype="float64", d_model=8, seed=2, jitter=0.3)  # π ≠ π_ref: margins far from 0
    tokens, mask = dpo.encode_pairs(tok, PAIRS)
    ref_seq, _ = dpo.sequence_logprobs(ref, tokens, mask)
    loss, grads, stats = dpo.dpo_gradients(policy, tokens, mask, ref_seq, beta)
    assert grads.keys() == policy.params.keys()
    # log-ratio margins (-1.24, 2.83, 4.41, -0.49): two pairs ranked the wrong way, two the right way,
    # one of them far into σ's flat tail at β = 2 (u = 8.8)
    assert stats["accuracy"] == 0.5

    def f() -> float:                                 # the objective from scratch: forward, sum, DPO loss
        seq, _ = dpo.sequence_logprobs(policy, tokens, mask)
        return dpo_loss(seq[:4], seq[4:], ref_seq[:4], ref_seq[4:], beta)[0]

    assert f() == pytest.approx(loss, rel=1e-12)
    errors = check_grads(f, policy.params, grads, max_entries=10)
    assert max(errors.values()) < 1e-5


def test_dpo_gradient_is_zero_at_beta_zero(tok):
    policy = tiny_model(tok, dtype="float64", d_model=8, jitter=0.3)
    tokens, mask = dpo.encode_pairs(tok, PAIRS)
    loss, grads, _ = dpo.dpo_gradients(policy, tokens, mask, np.zeros(8), 0.0)
    assert loss == math.log(2) and not any(g.any() for g in grads.values())


# ----------------------------------------------------------------------------- the loop
def test_dpo_widens_the_margin_on_toy_pairs(tok):
    policy = tiny_model(tok, seed=0)
    ref = policy.copy()
    before = dpo.evaluate_dpo(policy, ref, tok, PAIRS, beta=0.5)
    assert before["margin"] == 0.0 and before["loss"] == pytest.approx(math.log(2))   # π = π_ref: every u = 0
    _, log = dpo.train_dpo(policy, ref, tok, PAIRS, quiet_config(), progress=False, eval_pairs=HELD_OUT)
    after = dpo.evaluate_dpo(policy, ref, tok, PAIRS, beta=0.5)
    assert list(log.columns) == list(dpo.LOG_COLUMNS) and len(log) == 20 and not log.attrs["stopped"]
    assert log.margin.iloc[0] == 0.0 and log.accuracy.iloc[0] == 0.0        # step 1: π = π_ref exactly
    assert after["accuracy"] == 1.0 and after["margin"] > 2.0, after
    assert after["loss"] < 0.5 * before["loss"]
    assert log.loss.iloc[-5:].mean() < log.loss.iloc[:5].mean() - 0.3
    # one batch per epoch: the held-out pairs are evaluated after every step
    assert log.eval_accuracy.notna().sum() == 20 and np.isfinite(log.eval_margin).all()
    for k in ref.params:                                                    # the reference never moves
        assert not np.shares_memory(ref.params[k], policy.params[k])
        np.testing.assert_array_equal(ref.params[k], tiny_model(tok, seed=0).params[k])


def test_train_dpo_is_deterministic(tok):
    def run():
        policy = tiny_model(tok, seed=1)
        votes = [dict(p, votes=[0, 0, 1]) if i == 0 else p for i, p in enumerate(PAIRS)]   # one pair swapped
        _, log = dpo.train_dpo(policy, policy.copy(), tok, votes, quiet_config(epochs=3, batch_size=3),
                               progress=False)
        return policy, log

    (p1, l1), (p2, l2) = run(), run()
    pd.testing.assert_frame_equal(l1, l2)
    assert len(l1) == 6                                                     # 2 batches (3 + 1 pairs) per epoch
    for k in p1.params:
        np.testing.assert_array_equal(p1.params[k], p2.params[k])


@pytest.mark.parametrize("overrides,pattern", [
    (dict(beta=0.0), "β = 0"),
    (dict(beta=-0.5), "reverses"),
    (dict(beta=1e4), "far above the usual"),
    (dict(lr=1e6), "lr = "),
    (dict(lr=1e30, grad_clip=1e38), "lr = "),
])
def test_extreme_settings_warn_and_never_nan(tok, overrides, pattern):
    policy = tiny_model(tok, seed=2)
    start = policy.state_dict()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, log = dpo.train_dpo(policy, policy.copy(), tok, PAIRS, quiet_config(epochs=6, **overrides), progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any(pattern in m for m in messages), messages
    assert all(np.isfinite(a).all() for a in policy.params.values())       # never NaN weights
    finite_rows = log.iloc[:-1] if log.attrs["stopped"] else log
    assert 1 <= len(log) <= 6 and np.isfinite(finite_rows.loss).all()
    if overrides.get("beta") == 0.0:                                        # no gradient at all: nothing moves
        assert (log.loss == math.log(2)).all()
        for k in start:
            np.testing.assert_array_equal(policy.params[k], start[k])
    if overrides.get("beta") == -0.5:                                       # it learns the reverse preference
        assert dpo.evaluate_dpo(policy, tiny_model(tok, seed=2), tok, PAIRS, 0.5)["margin"] < 0


def test_non_finite_loss_restores_the_last_good_weights(tok):
    policy = tiny_model(tok, seed=3)
    policy.params["h0.mlp.w_fc"][0, 0] = np.inf                              # a broken model: the first loss is NaN
    before = policy.state_dict()
    with pytest.warns(RuntimeWarning, match="DPO stopped at step 1"):
        _, log = dpo.train_dpo(policy, policy.copy(), tok, PAIRS, quiet_config(), progress=False)
    assert log.attrs["stopped"] and len(log) == 1
    for k in before:
        np.testing.assert_array_equal(policy.params[k], before[k])


def test_blow_up_mid_run_keeps_the_weights_of_a_finite_loss(tok):
    policy = tiny_model(tok, seed=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, log = dpo.train_dpo(policy, policy.copy(), tok, PAIRS, quiet_config(lr=1e30, grad_clip=1e38),
                               progress=False)
    messages = [str(w.message) for w in caught]
    assert messages[0].startswith("lr = 1e+30") and messages[-1].startswith("DPO stopped at step 2"), messages
    assert log.attrs["stopped"] and log.attrs["message"] == messages[-1] and len(log) == 2
    tokens, mask = dpo.encode_pairs(tok, PAIRS)
    seq, _ = dpo.sequence_logprobs(policy, tokens, mask)                    # the kept weights give a finite loss
    assert np.isfinite(seq).all()


def test_config_and_data_validation(tok):
    with pytest.raises(ValueError, match="label"):
        dpo.DPOConfig(label="votes")
    with pytest.raises(ValueError, match="finite"):
        dpo.DPOConfig(beta=math.inf)
    with pytest.raises(ValueError, match="batch_size"):
        dpo.DPOConfig(batch_size=0)
    policy = tiny_model(tok)
    with pytest.raises(ValueError, match="no preference pairs"):
        dpo.train_dpo(policy, policy.copy(), tok, [], progress=False)
    long = [{"prompt": "warfarin dose", "chosen": " ".join(["risk"] * 30), "rejected": "safe", "id": "PREF-LONG"}]
    with pytest.raises(ValueError, match="PREF-LONG.*max_len"):
        dpo.train_dpo(policy, policy.copy(), tok, long, progress=False)
