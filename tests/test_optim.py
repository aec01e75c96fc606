"""AdamW, the learning-rate schedule and gradient clipping."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from course_utils.optim import (AdamW, NonFiniteGradientWarning, clip_grad_norm, default_no_decay, global_norm,
                                lr_schedule)


def test_adamw_two_steps_hand_computed():
    # η = 0.1, β = (0.9, 0.95), ε = 1e-8, λ = 0.01; "w" (2-D) decays, "b" (1-D, a bias) does not.
    params = {"w": np.array([[1.0, -2.0]]), "b": np.array([0.5])}
    opt = AdamW(params, lr=0.1, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    # step 1, g_w = (0.5, -0.1): m = 0.1 g, v = 0.05 g², m̂ = g, v̂ = g², so m̂ / (√v̂ + ε) ≈ sign(g)
    #   w = (1, -2) · (1 - 0.1 · 0.01) - 0.1 · (0.5 / (0.5 + 1e-8), -0.1 / (0.1 + 1e-8))
    #     = (0.999 - 0.1, -1.998 + 0.1) = (0.899000002, -1.89800001)
    #   b = 0.5 - 0.1 · 0.2 / (0.2 + 1e-8) = 0.400000005
    assert opt.step({"w": np.array([[0.5, -0.1]]), "b": np.array([0.2])})
    np.testing.assert_allclose(params["w"], [[0.899000002, -1.89800001]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(params["b"], [0.400000005], rtol=0, atol=1e-12)
    # step 2, g_w = (0.1, 0.3), g_b = -0.4. For w[0]:
    #   m = 0.9 · 0.05 + 0.1 · 0.1 = 0.055,  v = 0.95 · 0.0125 + 0.05 · 0.01 = 0.012375
    #   m̂ = 0.055 / 0.19 = 0.289474,  v̂ = 0.012375 / 0.0975 = 0.126923,  √v̂ = 0.356262
    #   w = 0.899 · 0.999 - 0.1 · 0.289474 / 0.356262 = 0.898101 - 0.081253 = 0.816848
    assert opt.step({"w": np.array([[0.1, 0.3]]), "b": np.array([-0.4])})
    np.testing.assert_allclose(params["w"], [[0.8168481188, -1.9450315846]], rtol=0, atol=1e-9)
    np.testing.assert_allclose(params["b"], [0.4363373989], rtol=0, atol=1e-9)
    np.testing.assert_allclose(opt.m["w"], [[0.055, 0.021]], atol=1e-15)
    np.testing.assert_allclose(opt.v["w"], [[0.012375, 0.004975]], atol=1e-15)
    assert opt.t == 2


def test_adamw_lr_override_and_float32_stays_float32():
    params = {"w": np.ones((2, 2), dtype=np.float32)}
    opt = AdamW(params, lr=1.0, weight_decay=0.0)
    opt.step({"w": np.ones((2, 2), dtype=np.float32)}, lr=0.01)
    assert params["w"].dtype == np.float32
    np.testing.assert_allclose(params["w"], 0.99, atol=1e-6)   # first step moves by ≈ lr


def test_no_decay_defaults_patterns_and_callable():
    params = {"wte": np.ones((4, 2)), "h0.attn.w_qkv": np.ones((2, 6)), "h0.attn.b_qkv": np.ones(6),
              "h0.ln1.g": np.ones(2), "lm_head": np.ones((2, 4))}
    assert AdamW(params).decay == {"wte": False, "h0.attn.w_qkv": True, "h0.attn.b_qkv": False,
                                   "h0.ln1.g": False, "lm_head": True}
    assert not default_no_decay("h0.mlp.w_fc", np.ones((2, 2)))
    assert AdamW(params, no_decay={"*.b_*", "*.g", "wte", "lm_head"}).decay == \
        {"wte": False, "h0.attn.w_qkv": True, "h0.attn.b_qkv": False, "h0.ln1.g": False, "lm_head": False}
    assert AdamW(params, no_decay=lambda name, p: True).decay == dict.fromkeys(params, False)

    # with a zero gradient only the decay moves a weight: θ ← θ (1 - η λ)
    opt = AdamW(params, lr=0.1, weight_decay=0.5)
    opt.step({k: np.zeros_like(p) for k, p in params.items()})
    assert params["h0.attn.w_qkv"][0, 0] == pytest.approx(0.95)
    assert params["wte"][0, 0] == 1.0 and params["h0.ln1.g"][0] == 1.0


def test_non_finite_gradient_warns_and_skips():
    params = {"w": np.array([[1.0, 2.0]]), "b": np.array([0.0])}
    opt = AdamW(params, lr=0.1)
    opt.step({"w": np.array([[0.1, 0.1]]), "b": np.array([0.1])})
    before = {k: p.copy() for k, p in params.items()}
    m_before = opt.m["w"].copy()
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.warns(NonFiniteGradientWarning, match="skipped"):
            applied = opt.step({"w": np.array([[bad, 0.1]]), "b": np.array([0.1])})
        assert applied is False
    assert all(np.array_equal(params[k], before[k]) for k in params)
    assert np.array_equal(opt.m["w"], m_before) and opt.t == 1 and opt.skipped_steps == 3


def test_huge_learning_rate_gives_warnings_not_a_crash():
    """A learner's slider at lr = 1e6: the loss explodes, the gradients overflow, and the
    optimiser skips those steps with a warning instead of writing NaN into the weights."""
    from course_utils.losses import cross_entropy
    from course_utils.model import GPTConfig, TinyGPT

    model = TinyGPT(GPTConfig(vocab_size=12, d_model=8, n_layers=1, n_heads=2, max_len=8), seed=0)
    opt = AdamW(model.params, lr=1e6)
    tokens = np.arange(9)[None, :] % 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        applied = []
        for _ in range(5):
            logits = model.forward(tokens[:, :-1])
            loss, dz = cross_entropy(logits, tokens[:, 1:])
            applied.append(opt.step(model.backward(dz)))
    assert any(issubclass(w.category, NonFiniteGradientWarning) for w in caught)
    assert applied[0] and not applied[-1] and opt.skipped_steps >= 1
    assert all(np.isfinite(p).all() for p in model.params.values())     # weights never hold NaN


def test_missing_gradient_is_an_error():
    opt = AdamW({"w": np.ones((1, 1)), "b": np.ones(1)})
    with pytest.raises(KeyError, match="b"):
        opt.step({"w": np.ones((1, 1))})


def test_optimizer_state_round_trip():
    params = {"w": np.ones((2, 2))}
    opt = AdamW(params, lr=0.1)
    opt.step({"w": np.full((2, 2), 0.3)})
    state = opt.state_dict()
    fresh = AdamW({"w": np.ones((2, 2))}, lr=0.1)
    fresh.load_state_dict(state)
    assert fresh.t == 1 and np.array_equal(fresh.m["w"], opt.m["w"]) and np.array_equal(fresh.v["w"], opt.v["w"])


# ----------------------------------------------------------------------------- schedule


def test_lr_schedule_warmup_and_cosine():
    kw = {"max_lr": 1e-3, "warmup_steps": 10, "total_steps": 110, "min_lr": 1e-4}
    assert lr_schedule(0, **kw) == pytest.approx(1e-4)             # max_lr · 1/10, never 0
    assert lr_schedule(4, **kw) == pytest.approx(5e-4)
    assert lr_schedule(9, **kw) == pytest.approx(1e-3)             # end of warm-up
    assert lr_schedule(10, **kw) == pytest.approx(1e-3)            # start of the cosine
    assert lr_schedule(60, **kw) == pytest.approx((1e-3 + 1e-4) / 2)   # halfway: cos(π/2) = 0
    assert lr_schedule(110, **kw) == pytest.approx(1e-4)           # end
    assert lr_schedule(500, **kw) == pytest.approx(1e-4)           # after the end
    values = [lr_schedule(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))          # monotone decay
    assert lr_schedule(0, 1.0, warmup_steps=0, total_steps=100) == 1.0   # no warm-up


# ----------------------------------------------------------------------------- clipping


def test_clip_grad_norm():
    grads = {"a": np.array([3.0]), "b": np.array([[4.0]])}        # ‖g‖ = 5
    assert clip_grad_norm(grads, 1.0) == pytest.approx(5.0)
    assert global_norm(grads) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(grads["a"], [0.6], atol=1e-6)
    untouched = {"a": np.array([0.3]), "b": np.array([[0.4]])}
    assert clip_grad_norm(untouched, 1.0) == pytest.approx(0.5)
    assert untouched["a"][0] == 0.3
    bad = {"a": np.array([np.nan]), "b": np.array([[4.0]])}
    assert math.isnan(clip_grad_norm(bad, 1.0)) and bad["b"][0, 0] == 4.0
    huge = {"a": np.array([3e30], dtype=np.float32), "b": np.array([4e30], dtype=np.float32)}
    assert global_norm(huge) == pytest.approx(5e30, rel=1e-6)    # the float32 square would overflow
