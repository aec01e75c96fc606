"""Losses: hand-computed values and finite-difference checks of every gradient (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradcheck import check_grad

from course_utils.losses import (
    bradley_terry_loss,
    cross_entropy,
    dpo_loss,
    dpo_stats,
    entropy,
    entropy_backward,
    kl_penalty,
    kl_penalty_backward,
    masked_mean,
    ppo_clip_loss,
    token_logprobs,
    token_logprobs_backward,
    value_loss,
)

RNG = np.random.default_rng(1234)


# ----------------------------------------------------------------------------- cross-entropy

def test_cross_entropy_hand_computed():
    # token 1: z = (2, 1, 0.1), y = 0
    #   Σ e^z = 7.389056 + 2.718282 + 1.105171 = 11.212509
    #   p = (0.659001, 0.242433, 0.098566),  -log p_0 = 0.417030
    # token 2: z = (0, 0, 0), y = 2  ->  p = 1/3 each,  -log(1/3) = log 3 = 1.098612
    logits = np.array([[[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]]])
    targets = np.array([[0, 2]])
    loss, dz = cross_entropy(logits, targets)
    assert loss == pytest.approx((0.4170300 + 1.0986123) / 2, abs=1e-6)   # 0.757821
    # dL/dz = (p - onehot) / N with N = 2
    np.testing.assert_allclose(dz[0, 0], np.array([0.659001 - 1, 0.242433, 0.098566]) / 2, atol=1e-6)
    np.testing.assert_allclose(dz[0, 1], np.array([1 / 3, 1 / 3, 1 / 3 - 1]) / 2, atol=1e-6)

    # masking the second token: N = 1, its gradient is 0
    loss, dz = cross_entropy(logits, targets, mask=np.array([[1.0, 0.0]]))
    assert loss == pytest.approx(0.4170300, abs=1e-6)
    np.testing.assert_allclose(dz[0, 0], [0.659001 - 1, 0.242433, 0.098566], atol=1e-6)
    assert np.all(dz[0, 1] == 0)


def test_cross_entropy_boolean_mask_equals_float_mask_and_empty_mask_is_zero():
    z = RNG.standard_normal((2, 3, 5))
    y = RNG.integers(0, 5, (2, 3))
    m = np.array([[True, False, True], [False, False, True]])
    a, da = cross_entropy(z, y, m)
    b, db = cross_entropy(z, y, m.astype(float))
    assert a == b and np.array_equal(da, db)
    loss, dz = cross_entropy(z, y, np.zeros((2, 3)))
    assert loss == 0.0 and not dz.any()


@pytest.mark.parametrize("with_mask", [False, True])
def test_cross_entropy_gradient(with_mask):
    z = RNG.standard_normal((2, 4, 7)) * 3
    y = RNG.integers(0, 7, (2, 4))
    mask = (RNG.random((2, 4)) < 0.6).astype(float) if with_mask else None
    _, dz = cross_entropy(z, y, mask)
    check_grad(lambda: cross_entropy(z, y, mask)[0], z, dz, max_entries=56)


def test_cross_entropy_is_stable_for_huge_logits():
    z = RNG.standard_normal((3, 4, 6))
    y = RNG.integers(0, 6, (3, 4))
    ref_loss, ref_dz = cross_entropy(z, y)
    for offset in (1e4, -1e4):        # shift-invariant, and no overflow or underflow
        loss, dz = cross_entropy(z + offset, y)
        assert loss == pytest.approx(ref_loss, rel=1e-9)
        np.testing.assert_allclose(dz, ref_dz, atol=1e-12)
    big = z.astype(np.float32) * 1e3   # float32, logits far apart: finite, gradient rows sum to 0
    loss, dz = cross_entropy(big, y)
    assert np.isfinite(loss) and np.isfinite(dz).all() and dz.dtype == np.float32
    np.testing.assert_allclose(dz.sum(-1), 0, atol=1e-6)


def test_cross_entropy_rejects_bad_targets():
    z = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cross_entropy(z, np.array([[0, 3]]))
    with pytest.raises(ValueError, match="shape"):
        cross_entropy(z, np.array([0, 1]))


# ----------------------------------------------------------------------------- log-probs and entropy

def test_token_logprobs_match_cross_entropy_and_gradient():
    z = RNG.standard_normal((2, 3, 5)) * 2
    y = RNG.integers(0, 5, (2, 3))
    logp = token_logprobs(z, y)
    assert logp.shape == (2, 3)
    assert -logp.mean() == pytest.approx(cross_entropy(z, y)[0], rel=1e-12)
    g = RNG.standard_normal((2, 3))
    dz = token_logprobs_backward(z, y, g)
    check_grad(lambda: float(np.sum(g * token_logprobs(z, y))), z, dz, max_entries=30)


def test_entropy_values_and_gradient():
    assert entropy(np.zeros((1, 1, 8)))[0, 0] == pytest.approx(math.log(8))   # uniform: log V
    peaked = np.array([[[50.0, 0.0, 0.0]]])
    assert entropy(peaked)[0, 0] == pytest.approx(0.0, abs=1e-18)
    z = RNG.standard_normal((2, 3, 4)) * 2
    g = RNG.standard_normal((2, 3))
    dz = entropy_backward(z, g)
    check_grad(lambda: float(np.sum(g * entropy(z))), z, dz, max_entries=24)


# ----------------------------------------------------------------------------- Bradley-Terry

def test_bradley_terry_hand_computed():
    # Δ = 1 - 0 = 1:  -log σ(1) = log(1 + e^-1) = 0.313262;  σ(-1) = 0.268941
    loss, dc, dr = bradley_terry_loss(np.array([1.0]), np.array([0.0]))
    assert loss == pytest.approx(0.3132617, abs=1e-7)
    assert dc[0] == pytest.approx(-0.2689414, abs=1e-7) and dr[0] == pytest.approx(0.2689414, abs=1e-7)
    # with margin 0.5: Δ = 0.5,  log(1 + e^-0.5) = 0.474077,  σ(-0.5) = 0.377541
    loss, dc, _ = bradley_terry_loss(np.array([1.0]), np.array([0.0]), margin=0.5)
    assert loss == pytest.approx(0.4740770, abs=1e-7)
    assert dc[0] == pytest.approx(-0.3775407, abs=1e-7)


def test_bradley_terry_is_finite_and_exact_at_huge_differences():
    rc, rr = np.array([1e4, -1e4, 0.0]), np.array([0.0, 0.0, 0.0])
    loss, dc, dr = bradley_terry_loss(rc, rr)
    # per pair: softplus(-1e4) = 0 (to double precision), softplus(1e4) = 1e4, log 2
    assert loss == (0.0 + 1e4 + math.log(2)) / 3
    np.testing.assert_array_equal(dc, [-0.0, -1 / 3, -0.5 / 3])
    np.testing.assert_array_equal(dr, -dc)
    assert np.isfinite(dc).all()


def test_bradley_terry_gradient_with_margins():
    rc, rr = RNG.standard_normal(6) * 3, RNG.standard_normal(6) * 3
    margin = RNG.random(6)
    _, dc, dr = bradley_terry_loss(rc, rr, margin)
    check_grad(lambda: bradley_terry_loss(rc, rr, margin)[0], rc, dc, name="r_chosen")
    check_grad(lambda: bradley_terry_loss(rc, rr, margin)[0], rr, dr, name="r_rejected")


def test_label_smoothed_bradley_terry_hand_computed():
    # Δ = 2 - 0 - 0.5 = 1.5, ε = 0.1:  -log σ(1.5) = log(1 + e^-1.5) = 0.2014133,
    # -log σ(-1.5) = log(1 + e^1.5) = 1.7014133,  σ(1.5) = 0.8175745
    loss, dc, dr = bradley_terry_loss(np.array([2.0]), np.array([0.0]), margin=0.5, label_smoothing=0.1)
    assert loss == pytest.approx(0.9 * 0.2014133 + 0.1 * 1.7014133, abs=1e-7)         # 0.3514133
    assert dc[0] == pytest.approx(0.8175745 - 0.9, abs=1e-7)                             # σ(Δ) - (1 - ε)
    assert dr[0] == -dc[0]
    # the same by the formula, over several pairs: mean of -(1-ε) log σ(Δ) - ε log σ(-Δ)
    rng = np.random.default_rng(1)
    rc, rr, eps, margin = rng.normal(size=7) * 2, rng.normal(size=7) * 2, 0.3, 0.3
    loss, dc, dr = bradley_terry_loss(rc, rr, margin, label_smoothing=eps)
    delta = rc - rr - margin
    sig = 1 / (1 + np.exp(-delta))
    assert loss == pytest.approx(np.mean(-(1 - eps) * np.log(sig) - eps * np.log(1 - sig)), rel=1e-12)
    np.testing.assert_allclose(dc, (sig - (1 - eps)) / 7, rtol=1e-12)
    np.testing.assert_array_equal(dr, -dc)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 0.49])
def test_label_smoothed_bradley_terry_gradient_matches_finite_differences(eps):
    rc, rr = RNG.standard_normal(7) * 2, RNG.standard_normal(7) * 2
    margin = RNG.random(7)
    _, dc, dr = bradley_terry_loss(rc, rr, margin, label_smoothing=eps)
    check_grad(lambda: bradley_terry_loss(rc, rr, margin, label_smoothing=eps)[0], rc, dc, name="r_chosen")
    check_grad(lambda: bradley_terry_loss(rc, rr, margin, label_smoothing=eps)[0], rr, dr, name="r_rejected")


def test_label_smoothing_zero_is_the_plain_loss_bit_for_bit():
    rc, rr = RNG.standard_normal(9) * 4, RNG.standard_normal(9) * 4
    delta = rc - rr - 0.2
    loss, dc, dr = bradley_terry_loss(rc, rr, 0.2, label_smoothing=0.0)
    assert loss == float(np.sum(np.logaddexp(0.0, -delta)) / 9)                  # the operations of ε = 0
    np.testing.assert_array_equal(dc, -np.exp(-np.logaddexp(0.0, delta)) / 9)
    default = bradley_terry_loss(rc, rr, 0.2)
    assert loss == default[0] and np.array_equal(dc, default[1]) and np.array_equal(dr, default[2])
    f32 = bradley_terry_loss(rc.astype(np.float32), rr.astype(np.float32), label_smoothing=0.1)[1]
    assert f32.dtype == np.float32                                                # gradients keep the rewards' dtype


def test_label_smoothed_bradley_terry_is_minimal_at_one_minus_eps_and_finite():
    eps = 0.2
    best = math.log((1 - eps) / eps)                                              # σ(Δ*) = 1 - ε
    _, g, _ = bradley_terry_loss(np.array([best]), np.array([0.0]), label_smoothing=eps)
    assert g[0] == pytest.approx(0.0, abs=1e-15)
    _, g, _ = bradley_terry_loss(np.array([best + 1.0]), np.array([0.0]), label_smoothing=eps)
    assert g[0] > 0                                                               # past Δ*, pulled back
    loss, g, _ = bradley_terry_loss(np.array([1e4, -1e4]), np.zeros(2), label_smoothing=0.1)
    assert loss == pytest.approx((0.1 * 1e4 + 0.9 * 1e4) / 2) and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [0.1 / 2, -0.9 / 2])
    for bad in (-0.1, 0.5, 1.0):
        with pytest.raises(ValueError, match="label_smoothing"):
            bradley_terry_loss(np.array([1.0]), np.array([0.0]), label_smoothing=bad)


# ----------------------------------------------------------------------------- PPO

def _ppo_case():
    """Five log-ratios crossed with A = +1 and A = -1, none on a clip boundary (ε = 0.2):
    ρ = e^d for d in (-0.5, -0.1, 0, 0.1, 0.5) -> (0.61, 0.90, 1, 1.11, 1.65)."""
    d = np.array([-0.5, -0.1, 0.0, 0.1, 0.5])
    logp_old = np.log(np.array([0.3, 0.2, 0.5, 0.1, 0.4]))
    logp_new = np.concatenate([logp_old + d, logp_old + d])[None, :]
    logp_old = np.concatenate([logp_old, logp_old])[None, :]
    adv = np.concatenate([np.full(5, 1.0), np.full(5, -1.0)])[None, :] * 0.7
    return logp_new, logp_old, adv


def test_ppo_clip_regions_values_and_stats():
    lp, lo, adv = _ppo_case()
    loss, dlogp, stats = ppo_clip_loss(lp, lo, adv, clip_eps=0.2)
    ratio = np.exp(lp - lo)[0]
    # A > 0: ρ = 1.65 > 1.2 is clipped (no gradient); ρ = 0.61 < 0.8 keeps its gradient
    # A < 0: ρ = 0.61 < 0.8 is clipped; ρ = 1.65 keeps its gradient (the pessimistic side)
    clipped = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    assert np.all(dlogp[0, clipped] == 0)
    np.testing.assert_allclose(dlogp[0, ~clipped], (-adv[0] * ratio / 10)[~clipped], rtol=1e-12)
    per_token = np.where(clipped, -adv[0] * np.clip(ratio, 0.8, 1.2), -adv[0] * ratio)
    assert loss == pytest.approx(per_token.mean(), rel=1e-12)
    assert stats["clipfrac"] == pytest.approx(0.2)
    assert stats["approx_kl"] == pytest.approx(0.5 * np.mean((lp - lo) ** 2), rel=1e-12)


@pytest.mark.parametrize("with_mask", [False, True])
def test_ppo_clip_gradient_by_finite_differences(with_mask):
    lp, lo, adv = _ppo_case()
    mask = np.array([[1, 1, 0, 1, 1, 1, 0, 1, 1, 1]], dtype=float) if with_mask else None
    _, dlogp, stats = ppo_clip_loss(lp, lo, adv, 0.2, mask)
    check_grad(lambda: ppo_clip_loss(lp, lo, adv, 0.2, mask)[0], lp, dlogp, name="logp_new")
    if with_mask:   # the two clipped tokens are among the 8 that count
        assert stats["clipfrac"] == pytest.approx(2 / 8)


def test_ppo_zero_clip_range_and_mask_edge_cases():
    lp, lo, adv = _ppo_case()
    loss, dlogp, stats = ppo_clip_loss(lp, lo, adv, clip_eps=0.0)
    assert np.isfinite(loss) and np.isfinite(dlogp).all()
    # ε = 0: only moves that make ρ·A smaller than at ρ = 1 keep a gradient
    ratio = np.exp(lp - lo)[0]
    passes = (-adv[0] * ratio) >= -adv[0]
    assert np.all((dlogp[0] != 0) == passes)
    # finite differences away from the kink at ρ = 1 (tokens 2 and 7 are masked out)
    away = np.array([[1, 1, 0, 1, 1, 1, 1, 0, 1, 1]], dtype=float)
    _, dlogp = ppo_clip_loss(lp, lo, adv, 0.0, away)[:2]
    check_grad(lambda: ppo_clip_loss(lp, lo, adv, 0.0, away)[0], lp, dlogp, name="logp_new")
    loss, dlogp, stats = ppo_clip_loss(lp, lo, adv, mask=np.zeros_like(lp))
    assert loss == 0.0 and not dlogp.any() and stats["clipfrac"] == 0.0
    with pytest.raises(ValueError):
        ppo_clip_loss(lp, lo, adv, clip_eps=-0.1)


# ----------------------------------------------------------------------------- KL

def test_kl_estimators_hand_computed():
    # π(y) = 0.5, π_ref(y) = 0.25: d = log 2 = 0.693147, r = 0.5
    # k1 = 0.693147;  k2 = ½ (log 2)² = 0.240227;  k3 = (0.5 - 1) - log 0.5 = 0.193147
    lp, ref = np.log([0.5]), np.log([0.25])
    assert kl_penalty(lp, ref, "k1")[0] == pytest.approx(0.6931472, abs=1e-7)
    assert kl_penalty(lp, ref, "k2")[0] == pytest.approx(0.2402265, abs=1e-7)
    assert kl_penalty(lp, ref, "k3")[0] == pytest.approx(0.1931472, abs=1e-7)
    assert kl_penalty(lp, ref)[0] == kl_penalty(lp, ref, "k1")[0]       # k1 is the default
    with pytest.raises(ValueError, match="k1"):
        kl_penalty(lp, ref, "k4")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_k3_is_non_negative_for_tiny_differences(dtype):
    base = np.full(7, -2.3, dtype=dtype)
    tiny = np.array([0.0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6], dtype=dtype)
    k3 = kl_penalty(base + tiny, base, "k3")
    assert np.all(k3 >= 0)
    # for small d, k3 ≈ ½ d²
    d = (base + tiny).astype(np.float64) - base
    np.testing.assert_allclose(k3, 0.5 * d * d, atol=1e-12)


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_penalty_gradient(kind):
    lp, ref = RNG.standard_normal((2, 5)), RNG.standard_normal((2, 5))
    g = RNG.standard_normal((2, 5))
    d = kl_penalty_backward(lp, ref, g, kind)
    check_grad(lambda: float(np.sum(g * kl_penalty(lp, ref, kind))), lp, d, name=kind)


# ----------------------------------------------------------------------------- value loss

def test_value_loss_hand_computed():
    # V = (1, 2), R = (0, 4): ½ mean((1)², (-2)²) = ½ · 2.5 = 1.25;  dV = (V - R) / 2 = (0.5, -1)
    loss, dv = value_loss(np.array([1.0, 2.0]), np.array([0.0, 4.0]))
    assert loss == pytest.approx(1.25)
    np.testing.assert_allclose(dv, [0.5, -1.0])
    # clipped form, V₀ = (0.9, 1.0), ε = 0.2: V clipped = (1.0 [inside], 1.2)
    # token 2: max((2 - 4)², (1.2 - 4)²) = 7.84 is the clipped term -> no gradient
    loss, dv = value_loss(np.array([1.0, 2.0]), np.array([0.0, 4.0]), np.array([0.9, 1.0]), clip_eps=0.2)
    assert loss == pytest.approx(0.5 * (1.0 + 7.84) / 2)
    np.testing.assert_allclose(dv, [0.5, 0.0])


@pytest.mark.parametrize("clipped", [False, True])
def test_value_loss_gradient(clipped):
    v = RNG.standard_normal((3, 6))
    ret = RNG.standard_normal((3, 6))
    v_old = v + RNG.choice([-0.5, -0.05, 0.05, 0.5], size=v.shape)   # inside and outside ε = 0.2
    mask = (RNG.random((3, 6)) < 0.7).astype(float)
    kwargs = {"old_values": v_old, "clip_eps": 0.2} if clipped else {}
    _, dv = value_loss(v, ret, mask=mask, **kwargs)
    if clipped:
        assert (dv == 0).sum() > (mask == 0).sum()        # some tokens are cut off by the clip
    check_grad(lambda: value_loss(v, ret, mask=mask, **kwargs)[0], v, dv, max_entries=18, name="values")


def test_masked_mean():
    x = np.array([[1.0, 2.0, 3.0]])
    assert masked_mean(x) == pytest.approx(2.0)
    assert masked_mean(x, np.array([[1, 0, 1]])) == pytest.approx(2.0)
    assert masked_mean(x, np.array([[0, 1, 1]])) == pytest.approx(2.5)
    assert masked_mean(x, np.zeros((1, 3))) == 0.0


# ----------------------------------------------------------------------------- DPO

def test_dpo_loss_hand_computed():
    # policy: log π(y_c) = -10, log π(y_r) = -12;  reference: log π_ref(y_c) = log π_ref(y_r) = -11;  β = 0.5
    #   log-ratios: chosen -10 - (-11) = +1, rejected -12 - (-11) = -1
    #   u = 0.5 · (1 - (-1)) = 1
    #   L = -log σ(1) = log(1 + e^-1) = log 1.367879 = 0.313262
    #   σ(-1) = 1 / (1 + e) = 0.268941:  dL/dlog π(y_c) = -0.5 · 0.268941 = -0.134471,  dL/dlog π(y_r) = +0.134471
    loss, dc, dr = dpo_loss(np.array([-10.0]), np.array([-12.0]), np.array([-11.0]), np.array([-11.0]), beta=0.5)
    assert loss == pytest.approx(0.3132617, abs=1e-7)
    assert dc[0] == pytest.approx(-0.1344707, abs=1e-7) and dr[0] == pytest.approx(0.1344707, abs=1e-7)
    stats = dpo_stats(np.array([-10.0]), np.array([-12.0]), np.array([-11.0]), np.array([-11.0]), beta=0.5)
    # implicit rewards β · log-ratio: 0.5 · 1 = 0.5 and 0.5 · (-1) = -0.5;  margin u = 1
    assert stats == pytest.approx({"reward_chosen": 0.5, "reward_rejected": -0.5, "margin": 1.0, "accuracy": 1.0,
                                   "chosen_logp_change": 1.0, "rejected_logp_change": -1.0})


def _dpo_case(n=6, scale=3.0):
    return tuple(RNG.standard_normal(n) * scale - 20.0 for _ in range(4))


@pytest.mark.parametrize("beta", [0.1, 1.0, 3.0])
def test_dpo_loss_gradient_by_finite_differences(beta):
    lc, lr, rc, rr = _dpo_case()
    _, dc, dr = dpo_loss(lc, lr, rc, rr, beta)
    check_grad(lambda: dpo_loss(lc, lr, rc, rr, beta)[0], lc, dc, name="logp_chosen")
    check_grad(lambda: dpo_loss(lc, lr, rc, rr, beta)[0], lr, dr, name="logp_rejected")


def test_dpo_loss_swap_symmetry_and_reference_shift():
    lc, lr, rc, rr = _dpo_case()
    beta, n = 0.7, len(lc)
    loss, dc, dr = dpo_loss(lc, lr, rc, rr, beta)
    loss_s, dc_s, dr_s = dpo_loss(lr, lc, rr, rc, beta)              # chosen and rejected exchanged: u → -u
    u = beta * ((lc - rc) - (lr - rr))
    # softplus(-u) - softplus(u) = -u, and σ(-u) + σ(u) = 1
    assert loss - loss_s == pytest.approx(-np.mean(u), rel=1e-12)
    np.testing.assert_allclose(dc + dc_s, -beta / n, rtol=1e-12)
    np.testing.assert_array_equal(dr, -dc)
    np.testing.assert_array_equal(dr_s, -dc_s)
    # only log-ratios count: adding c to log π(y_c) and to log π_ref(y_c) changes nothing
    again = dpo_loss(lc + 5.0, lr - 3.0, rc + 5.0, rr - 3.0, beta)
    assert again[0] == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(again[1], dc, rtol=1e-9)


def test_dpo_loss_beta_to_zero_is_log_2():
    lc, lr, rc, rr = _dpo_case()
    loss, dc, dr = dpo_loss(lc, lr, rc, rr, 0.0)
    assert loss == math.log(2) and not dc.any() and not dr.any()
    delta = np.abs((lc - rc) - (lr - rr)).max()                      # |u| ≤ β · delta
    for beta in (1e-3, 1e-6, 1e-9):
        loss, dc, _ = dpo_loss(lc, lr, rc, rr, beta)
        assert abs(loss - math.log(2)) <= beta * delta               # softplus(-u) = log 2 - u/2 + u²/8 - ...
        np.testing.assert_allclose(dc, -beta / 2 / len(lc), rtol=beta * delta)   # σ(-u) = ½ - u/4 + ...


def test_dpo_loss_is_finite_and_exact_at_huge_margins():
    zeros = np.zeros(3)
    lc, lr = np.array([1e4, -1e4, 0.0]), np.array([0.0, 0.0, 0.0])     # log-ratio margins +1e4, -1e4, 0
    loss, dc, dr = dpo_loss(lc, lr, zeros, zeros, beta=1.0)
    # per pair: softplus(-1e4) = 0 (to double precision), softplus(1e4) = 1e4, log 2
    assert loss == (0.0 + 1e4 + math.log(2)) / 3
    np.testing.assert_array_equal(dc, [-0.0, -1 / 3, -0.5 / 3])
    np.testing.assert_array_equal(dr, -dc)
    for beta in (1e3, 50.0):                                          # |u| up to 1e7: still finite
        loss, dc, dr = dpo_loss(lc, lr, zeros, zeros, beta)
        assert math.isfinite(loss) and np.isfinite(dc).all() and np.isfinite(dr).all()
        assert dc[1] == pytest.approx(-beta / 3)                     # the wrongly ranked pair pulls with β / n
    f32 = dpo_loss(lc.astype(np.float32), lr.astype(np.float32), zeros, zeros, 1.0)
    assert f32[1].dtype == np.float32 and np.isfinite(f32[1]).all()


def test_dpo_loss_rejects_mismatched_shapes_and_bad_beta():
    with pytest.raises(ValueError, match="same shape"):
        dpo_loss(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="finite"):
        dpo_loss(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), math.nan)


def test_dpo_stats_at_the_start_and_both_falling():
    lc, lr, rc, rr = _dpo_case()
    start = dpo_stats(rc, rr, rc, rr, 0.1)                            # π = π_ref: every margin is 0, a tie
    assert start["margin"] == 0.0 and start["accuracy"] == 0.0
    # both answers lose probability, the rejected one more: the margin rises all the same
    falling = dpo_stats(rc - 2.0, rr - 5.0, rc, rr, 0.1)
    assert falling["chosen_logp_change"] == pytest.approx(-2.0)
    assert falling["rejected_logp_change"] == pytest.approx(-5.0)
    assert falling["margin"] == pytest.approx(0.3) and falling["accuracy"] == 1.0
    assert falling["reward_chosen"] == pytest.approx(-0.2) and falling["reward_rejected"] == pytest.approx(-0.5)
