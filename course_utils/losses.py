"""Losses of the course, each returned together with its gradient.

Every loss returns its value *and* the gradient with respect to its inputs, so a training
step reads::

    logits = model.forward(tokens)
    loss, dlogits = cross_entropy(logits, targets, mask)
    grads = model.backward(dlogits)

Symbols (the course's notation)
-------------------------------
=============  ==============================================================
B, T, V        batch size, sequence length, vocabulary size
z              logits, shape (B, T, V); z_t is the row of token position t
y_t            target token at position t
LSE(z_t)       log Σ_v exp(z_tv), computed as max + log Σ exp(z - max)
p_t            softmax(z_t) = exp(z_t - LSE(z_t))
m_t            mask: 1 = the token counts, 0 = it is ignored (prompt, padding)
N              Σ_t m_t, the number of tokens that count
⟨x⟩            masked mean Σ_t m_t x_t / N  (0 when N = 0)
H_t            entropy of p_t: -Σ_v p_tv log p_tv
r_c, r_r       scalar rewards of the chosen and the rejected answer
Δ              r_c - r_r - margin
ε (BT)         label smoothing of the Bradley-Terry loss: the target is 1 - ε, not 1
σ, softplus    σ(x) = 1 / (1 + e^-x);  softplus(x) = log(1 + e^x) = -log σ(-x)
log π, log π₀  per-token log-probability under the current / sampling policy
ρ_t            probability ratio exp(log π(y_t) - log π₀(y_t))
A_t            advantage estimate;  ε the clip range
V_t, R_t       value prediction and return (target);  V₀ value at sampling time
log π(y)       sequence log-probability Σ_t log π(y_t) of a whole answer y (DPO)
y_c, y_r       the chosen and the rejected answer of a preference pair
β              DPO's coefficient: the strength of the implied KL(π ‖ π_ref) constraint
r̂(y)           DPO's implicit reward β (log π(y) - log π_ref(y))
u              r̂(y_c) - r̂(y_r), the implicit-reward margin of a pair
=============  ==============================================================

Every gradient here is checked against finite differences in ``tests/test_losses.py``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .stats import EXP_SAFE  # |z| ≤ 60: exp(z) and Σ_v exp(z_v) neither overflow nor underflow in float32

__all__ = [
    "masked_mean",
    "cross_entropy",
    "token_logprobs",
    "token_logprobs_backward",
    "entropy",
    "entropy_backward",
    "bradley_terry_loss",
    "dpo_loss",
    "dpo_stats",
    "ppo_clip_loss",
    "kl_penalty",
    "kl_penalty_backward",
    "value_loss",
]


# ----------------------------------------------------------------------------- helpers

def _float_array(x: np.ndarray | float) -> np.ndarray:
    """``x`` as a floating array (float64 unless it already is a float32/float64 array)."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def _token_weights(mask: np.ndarray | None, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Weights w_t = m_t / N, so that Σ_t w_t x_t is the masked mean ⟨x⟩.

    ``mask`` holds 0/1 floats or booleans of the given ``shape``; None means every token
    counts. When N = 0 all weights are 0, so losses and gradients are 0, not NaN.
    """
    if mask is None:
        n = int(np.prod(shape))
        return np.full(shape, 1.0 / max(n, 1), dtype=dtype)
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask has shape {m.shape}, expected {tuple(shape)}")
    m = m.astype(dtype)
    n = float(m.sum())
    return m / n if n > 0 else m  # all zeros when nothing counts


def masked_mean(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    """⟨x⟩ = Σ m_t x_t / Σ m_t (plain mean when ``mask`` is None; 0 when Σ m_t = 0)."""
    x = _float_array(x)
    w = _token_weights(mask, x.shape, np.float64)
    return float(np.sum(w * x))


def _softmax_parts(z2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For logits rows z2 (n, V): a shift c (n,), e = exp(z - c) (a new array) and Σ_v e.

    LSE(z) = c + log Σ exp(z - c) and softmax(z) = e / Σ e hold for any shift c. The
    textbook c = max_v z_v keeps exp from overflowing; since shifting costs a pass over
    the whole (n, V) array, we shift only when some row's max lies outside ±EXP_SAFE
    (then exp could overflow, or a whole row could underflow to 0). Row sums are a
    matrix-vector product with a ones vector, several times faster than ``e.sum(-1)``.
    """
    zmax = z2.max(axis=1)
    e = np.empty_like(z2)
    if zmax.size and -EXP_SAFE <= zmax.min() and zmax.max() <= EXP_SAFE:
        shift = np.zeros_like(zmax)
        np.exp(z2, out=e)
    else:
        shift = zmax
        np.subtract(z2, zmax[:, None], out=e)
        np.exp(e, out=e)
    return shift, e, e @ np.ones(e.shape[1], dtype=e.dtype)


def _rows(logits: np.ndarray, targets: np.ndarray | None = None):
    """Flatten logits (..., V) into rows (n, V) and check targets (...) against them."""
    z = _float_array(logits)
    if z.ndim < 1:
        raise ValueError("logits need a last axis of size V")
    V = z.shape[-1]
    z2 = z.reshape(-1, V)
    if targets is None:
        return z, z2, None
    y = np.asarray(targets)
    if y.shape != z.shape[:-1]:
        raise ValueError(f"targets have shape {y.shape}, expected {z.shape[:-1]} (logits {z.shape})")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"targets must be integer token ids, got dtype {y.dtype}")
    y1 = y.reshape(-1)
    if y1.size and (y1.min() < 0 or y1.max() >= V):
        raise ValueError(f"targets must lie in [0, {V}), got range [{y1.min()}, {y1.max()}]")
    return z, z2, y1


# ----------------------------------------------------------------------------- language modelling

def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, mask: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Next-token cross-entropy L = ⟨-log p_t[y_t]⟩ and its gradient dL/dz.

    -log p_t[y_t] = LSE(z_t) - z_t[y_t] (log-sum-exp form: no overflow for large logits).
    dL/dz_t = (m_t / N) · (p_t - onehot(y_t)).

    Args:
        logits: z, shape (B, T, V) (any leading shape works).
        targets: y, integer ids of shape (B, T).
        mask: m, 0/1 floats or booleans of shape (B, T); None = every token counts.
            Masked positions still need valid ids (use the pad id).

    Returns:
        (loss, dlogits): the mean over unmasked tokens (a float; 0.0 if nothing counts)
        and dL/dz with the dtype and shape of ``logits``.
    """
    z, z2, y = _rows(logits, targets)
    w = _token_weights(mask, z.shape[:-1], z.dtype).reshape(-1)
    at = (np.arange(z2.shape[0]), y)                       # the target entry of every row
    shift, e, sumexp = _softmax_parts(z2)
    nll = np.log(sumexp) + shift - z2[at]                  # -log p_t[y_t] = LSE(z_t) - z_t[y_t]
    loss = float(np.dot(w.astype(np.float64), nll.astype(np.float64)))
    e *= (w / sumexp)[:, None]                             # w p
    e[at] -= w                                             # w (p - onehot(y))
    return loss, e.reshape(z.shape)


def token_logprobs(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """log p_t[y_t] = z_t[y_t] - LSE(z_t) for every position: shape (B, T).

    These are the per-token log π(y_t) that PPO compares between policies.
    """
    z, z2, y = _rows(logits, targets)
    shift, _, sumexp = _softmax_parts(z2)
    logp = z2[np.arange(z2.shape[0]), y] - shift - np.log(sumexp)
    return logp.reshape(z.shape[:-1])


def token_logprobs_backward(logits: np.ndarray, targets: np.ndarray, dlogp: np.ndarray) -> np.ndarray:
    """Gradient of Σ_t g_t log p_t[y_t] with respect to z, given g = ``dlogp`` of shape (B, T).

    d log p_t[y_t] / dz_t = onehot(y_t) - p_t, so dz_t = g_t (onehot(y_t) - p_t).
    """
    z, z2, y = _rows(logits, targets)
    g = np.asarray(dlogp, dtype=z.dtype).reshape(-1)
    if g.size != z2.shape[0]:
        raise ValueError(f"dlogp has {g.size} entries, expected {z2.shape[0]}")
    _, e, sumexp = _softmax_parts(z2)
    e *= (-g / sumexp)[:, None]                            # -g p
    e[np.arange(z2.shape[0]), y] += g                      # + g onehot
    return e.reshape(z.shape)


def entropy(logits: np.ndarray) -> np.ndarray:
    """H_t = -Σ_v p_tv log p_tv = LSE(z_t) - Σ_v p_tv z_tv, shape (B, T) (a PPO diagnostic)."""
    z, z2, _ = _rows(logits)
    shift, e, sumexp = _softmax_parts(z2)
    mean_z = (e * z2) @ np.ones(z2.shape[1], dtype=z2.dtype) / sumexp   # Σ p z
    return (shift + np.log(sumexp) - mean_z).reshape(z.shape[:-1])


def entropy_backward(logits: np.ndarray, dH: np.ndarray) -> np.ndarray:
    """Gradient of Σ_t g_t H_t with respect to z, given g = ``dH`` of shape (B, T).

    dH_t / dz_tv = -p_tv (z_tv - Σ_u p_tu z_tu)  (for an entropy bonus in the PPO loss).
    """
    z, z2, _ = _rows(logits)
    g = np.asarray(dH, dtype=z.dtype).reshape(-1)
    _, e, sumexp = _softmax_parts(z2)
    p = e / sumexp[:, None]
    mean_z = (p * z2) @ np.ones(z2.shape[1], dtype=z2.dtype)
    dz = -g[:, None] * p * (z2 - mean_z[:, None])
    return dz.reshape(z.shape)


# ----------------------------------------------------------------------------- reward model

def bradley_terry_loss(
    r_chosen: np.ndarray,
    r_rejected: np.ndarray,
    margin: float | np.ndarray = 0.0,
    label_smoothing: float = 0.0,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Bradley-Terry preference loss L = mean_i -log σ(Δ_i), Δ_i = r_c,i - r_r,i - margin_i.

    P(chosen ≻ rejected) = σ(r_c - r_r) (Bradley & Terry 1952; used for reward models by
    Ouyang et al. 2022; the margin as in Touvron et al. 2023, Llama 2). Written as
    -log σ(Δ) = softplus(-Δ) = logaddexp(0, -Δ) and σ(-Δ) = exp(-softplus(Δ)), it is finite
    and exact for any Δ (no overflow at |Δ| = 1e4).

    dL/dr_c = -σ(-Δ) / n,   dL/dr_r = +σ(-Δ) / n.

    With ``label_smoothing`` ε > 0 (the name TRL's RewardTrainer and DPO use) the target is
    soft, "the label is right with probability 1 - ε", the *conservative* loss:

        L_ε = mean_i [ -(1-ε) log σ(Δ_i) - ε log σ(-Δ_i) ],
        dL_ε/dr_c = (ε σ(Δ) - (1-ε) σ(-Δ)) / n = (σ(Δ) - (1 - ε)) / n = -dL_ε/dr_r.

    If a share ε of the labels is flipped at random, the expected plain loss over the noise
    has exactly this form. Its minimum in Δ is at σ(Δ) = 1 - ε, Δ* = log((1-ε)/ε): a pair is
    never pushed to infinite confidence, so a wrong label cannot drag its margin without
    bound. ε = 0 (the default) computes the plain loss with the same operations as always.

    Args:
        r_chosen, r_rejected: rewards of shape (n,) (or scalars).
        margin: m ≥ 0, a scalar or one value per pair.
        label_smoothing: ε in [0, 0.5).

    Returns:
        (loss, d_chosen, d_rejected), the gradients shaped like the rewards.
    """
    eps = float(label_smoothing)
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    rc, rr = _float_array(r_chosen), _float_array(r_rejected)
    if rc.shape != rr.shape:
        raise ValueError(f"r_chosen {rc.shape} and r_rejected {rr.shape} must have the same shape")
    dtype = np.result_type(rc, rr)
    delta = rc.astype(np.float64) - rr.astype(np.float64) - np.asarray(margin, dtype=np.float64)
    n = max(delta.size, 1)
    sig_neg = np.exp(-np.logaddexp(0.0, delta))            # σ(-Δ), stable both ways
    if eps == 0.0:
        loss = float(np.sum(np.logaddexp(0.0, -delta)) / n)
        d_chosen = (-sig_neg / n).astype(dtype)
    else:
        loss = float(np.sum((1.0 - eps) * np.logaddexp(0.0, -delta) + eps * np.logaddexp(0.0, delta)) / n)
        sig_pos = np.exp(-np.logaddexp(0.0, -delta))       # σ(Δ); σ(-Δ) = 1 - σ(Δ) without cancellation
        d_chosen = ((eps * sig_pos - (1.0 - eps) * sig_neg) / n).astype(dtype)
    return loss, d_chosen, (-d_chosen).astype(dtype)


# ----------------------------------------------------------------------------- DPO

def _dpo_margins(logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, beta):
    """Checked float64 log-ratios log π(y) - log π_ref(y) of both answers, u, and the gradient dtype."""
    arrays = [_float_array(a) for a in (logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected)]
    if len({a.shape for a in arrays}) != 1:
        raise ValueError("logp_chosen, logp_rejected, ref_logp_chosen and ref_logp_rejected must have the same "
                         f"shape, got {[a.shape for a in arrays]}")
    if not math.isfinite(beta):
        raise ValueError(f"beta must be a finite number, got {beta}")
    lc, lr, rc, rr = (a.astype(np.float64) for a in arrays)
    ratio_c, ratio_r = lc - rc, lr - rr
    return ratio_c, ratio_r, beta * (ratio_c - ratio_r), np.result_type(arrays[0], arrays[1])


def dpo_loss(
    logp_chosen: np.ndarray,
    logp_rejected: np.ndarray,
    ref_logp_chosen: np.ndarray,
    ref_logp_rejected: np.ndarray,
    beta: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Direct Preference Optimization loss (Rafailov et al. 2023) and its gradient.

        u_i = β [(log π(y_c,i) - log π_ref(y_c,i)) - (log π(y_r,i) - log π_ref(y_r,i))]
        L   = mean_i -log σ(u_i)

    It is the Bradley-Terry loss (``bradley_terry_loss``) with the implicit reward
    r̂(y) = β (log π(y) - log π_ref(y)) in place of a reward model's score: the policy is
    its own reward model. Written as softplus(-u) = logaddexp(0, -u), it is finite and
    exact for any u (no overflow at |u| = 1e4); σ(-u) = exp(-softplus(u)) likewise.

        dL/dlog π(y_c,i) = -β σ(-u_i) / n,   dL/dlog π(y_r,i) = +β σ(-u_i) / n

    A pair the policy already ranks far apart (u ≫ 0) stops pulling; a pair ranked the
    wrong way (u ≪ 0) pulls with the full weight β / n. The reference's log-probabilities
    are constants (π_ref is frozen): no gradient flows to them. β = 0 gives L = log 2 and
    a zero gradient (nothing is learned); β < 0 would teach the reverse preference.

    Args:
        logp_chosen, logp_rejected: log π(y_c), log π(y_r), *sequence* log-probabilities
            (the sum over the answer's tokens) under the policy, shape (n,).
        ref_logp_chosen, ref_logp_rejected: the same under the frozen reference π_ref.
        beta: β, a finite number (typically 0.01 .. 0.5).

    Returns:
        (loss, d_chosen, d_rejected), the gradients shaped like ``logp_chosen`` (the mean
        over the n pairs included, as in ``bradley_terry_loss``).
    """
    _, _, u, dtype = _dpo_margins(logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, beta)
    n = max(u.size, 1)
    loss = float(np.sum(np.logaddexp(0.0, -u)) / n)
    sig_neg = np.exp(-np.logaddexp(0.0, u))                # σ(-u), stable both ways
    d_chosen = -beta * sig_neg / n
    return loss, d_chosen.astype(dtype), (-d_chosen).astype(dtype)


def dpo_stats(
    logp_chosen: np.ndarray,
    logp_rejected: np.ndarray,
    ref_logp_chosen: np.ndarray,
    ref_logp_rejected: np.ndarray,
    beta: float,
) -> dict[str, float]:
    """What a DPO run logs about a batch of pairs (same arguments as ``dpo_loss``).

    Returns the batch means of:
    ``reward_chosen`` r̂(y_c) = β (log π(y_c) - log π_ref(y_c)) and ``reward_rejected`` r̂(y_r);
    ``margin`` u = r̂(y_c) - r̂(y_r); ``accuracy``, the share of pairs with u > 0 (a tie,
    e.g. every pair while π = π_ref, counts as wrong, as in TRL);
    ``chosen_logp_change`` log π(y_c) - log π_ref(y_c) and ``rejected_logp_change`` (nats
    per answer, without β). DPO only needs the *difference* to grow: both changes can fall
    below 0 while the margin rises (the "both falling" pitfall: the policy then moves
    probability mass to answers that are in neither set).
    """
    ratio_c, ratio_r, u, _ = _dpo_margins(logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected, beta)

    def mean(x: np.ndarray) -> float:
        return float(np.mean(x)) if x.size else math.nan

    return {"reward_chosen": mean(beta * ratio_c), "reward_rejected": mean(beta * ratio_r), "margin": mean(u),
            "accuracy": mean((u > 0).astype(np.float64)), "chosen_logp_change": mean(ratio_c),
            "rejected_logp_change": mean(ratio_r)}


# ----------------------------------------------------------------------------- PPO

def ppo_clip_loss(
    logp_new: np.ndarray,
    logp_old: np.ndarray,
    advantages: np.ndarray,
    clip_eps: float = 0.2,
    mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray, dict[str, float]]:
    """Clipped PPO surrogate (Schulman et al. 2017) and its gradient with respect to log π.

    L = ⟨ max(-A_t ρ_t, -A_t clip(ρ_t, 1-ε, 1+ε)) ⟩,   ρ_t = exp(log π(y_t) - log π₀(y_t)).

    The max of the two negated objectives is the pessimistic (clipped) bound. Where the
    unclipped term is the max, dL/dlog π_t = -(m_t / N) A_t ρ_t (since dρ/dlog π = ρ); where
    the clipped term is strictly larger the ratio is held at the boundary and the gradient
    is 0. ε = 0 is allowed (then only moves that lower ρ·A pass a gradient).

    Args:
        logp_new: log π(y_t), shape (B, T); logp_old: log π₀(y_t); advantages: A_t.
        clip_eps: ε ≥ 0.  mask: m, which tokens count (response tokens).

    Returns:
        (loss, dlogp_new, stats) with stats:
        ``clipfrac``: share of counted tokens where the clipped term is strictly larger, i.e.
        the gradient is cut off (cleanrl counts |ρ - 1| > ε instead, which also includes
        tokens whose clipped side is not the active one);
        ``approx_kl``: ⟨½ (log π - log π₀)²⟩ (the k2 estimator, see ``kl_penalty``);
        ``ratio_mean``, ``ratio_max``: ⟨ρ⟩ and the largest counted ρ.
    """
    if clip_eps < 0:
        raise ValueError(f"clip_eps must be >= 0, got {clip_eps}")
    lp = _float_array(logp_new)
    lo, adv = _float_array(logp_old), _float_array(advantages)
    if lo.shape != lp.shape or adv.shape != lp.shape:
        raise ValueError(f"logp_new {lp.shape}, logp_old {lo.shape} and advantages {adv.shape} must match")
    w = _token_weights(mask, lp.shape, np.float64)
    log_ratio = lp.astype(np.float64) - lo
    ratio = np.exp(log_ratio)
    unclipped = -adv * ratio
    clipped = -adv * np.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    unclipped_active = unclipped >= clipped            # ties (ρ inside the range) pass the gradient
    loss = float(np.sum(w * np.where(unclipped_active, unclipped, clipped)))
    dlogp = np.where(unclipped_active, w * unclipped, 0.0).astype(lp.dtype)
    counted = w > 0
    stats = {
        "clipfrac": float(np.mean(~unclipped_active[counted])) if counted.any() else 0.0,
        "approx_kl": float(np.sum(w * 0.5 * log_ratio**2)),
        "ratio_mean": float(np.sum(w * ratio)),
        "ratio_max": float(ratio[counted].max()) if counted.any() else 1.0,
    }
    return loss, dlogp, stats


KLKind = Literal["k1", "k2", "k3"]


def kl_penalty(logp: np.ndarray, ref_logp: np.ndarray, kind: KLKind = "k1") -> np.ndarray:
    """Per-token estimate of KL(π ‖ π_ref) from tokens sampled from π.

    With d = log π(y) - log π_ref(y) and r = π_ref(y) / π(y) = exp(-d):

    * k1 = d                     unbiased, can be negative, high variance
    * k2 = ½ d²                  biased, non-negative, low variance
    * k3 = (r - 1) - log r       unbiased and non-negative (r - 1 ≥ log r)

    J. Schulman, "Approximating KL Divergence", 2020, http://joschu.net/blog/kl-approx.html.
    k3 is computed as expm1(-d) + d, which keeps it ≥ 0 and accurate for tiny d (the naive
    (r - 1) - log r rounds to 0 or a negative number there).

    Returns:
        An array shaped like ``logp`` (no reduction; the PPO reward subtracts β times it).
    """
    lp, lr = _float_array(logp), _float_array(ref_logp)
    if lp.shape != lr.shape:
        raise ValueError(f"logp {lp.shape} and ref_logp {lr.shape} must have the same shape")
    d = lp - lr
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d * d
    if kind == "k3":
        return np.maximum(np.expm1(-d) + d, 0.0)
    raise ValueError(f"kind must be 'k1', 'k2' or 'k3', got {kind!r}")


def kl_penalty_backward(logp: np.ndarray, ref_logp: np.ndarray, dkl: np.ndarray, kind: KLKind = "k1") -> np.ndarray:
    """Gradient of Σ_t g_t k(d_t) with respect to log π, given g = ``dkl``.

    dk1/dd = 1,  dk2/dd = d,  dk3/dd = 1 - e^{-d} = -expm1(-d)  (for a KL term in the loss,
    as in GRPO, rather than in the reward).
    """
    lp, lr = _float_array(logp), _float_array(ref_logp)
    g = np.asarray(dkl, dtype=lp.dtype)
    d = lp - lr
    if kind == "k1":
        return g * np.ones_like(d)
    if kind == "k2":
        return g * d
    if kind == "k3":
        return g * -np.expm1(-d)
    raise ValueError(f"kind must be 'k1', 'k2' or 'k3', got {kind!r}")


def value_loss(
    values: np.ndarray,
    returns: np.ndarray,
    old_values: np.ndarray | None = None,
    clip_eps: float | None = None,
    mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Value-function loss L_V = ½ ⟨(V_t - R_t)²⟩ and dL_V/dV.

    With ``old_values`` and ``clip_eps`` given, the PPO clipped form (as in the OpenAI
    baselines / cleanrl implementations):

        L_V = ½ ⟨ max((V - R)², (V₀ + clip(V - V₀, -ε, ε) - R)²) ⟩

    Where the clipped term is strictly larger, V has moved more than ε from V₀ and the
    gradient is 0; elsewhere dL_V/dV_t = (m_t / N)(V_t - R_t).
    """
    v, ret = _float_array(values), _float_array(returns)
    if ret.shape != v.shape:
        raise ValueError(f"values {v.shape} and returns {ret.shape} must have the same shape")
    w = _token_weights(mask, v.shape, np.float64)
    err = v.astype(np.float64) - ret
    sq = err * err
    if old_values is None or clip_eps is None:
        return float(0.5 * np.sum(w * sq)), (w * err).astype(v.dtype)
    if clip_eps < 0:
        raise ValueError(f"clip_eps must be >= 0, got {clip_eps}")
    v_old = _float_array(old_values)
    if v_old.shape != v.shape:
        raise ValueError(f"old_values {v_old.shape} must match values {v.shape}")
    v_clipped = v_old + np.clip(v - v_old, -clip_eps, clip_eps)
    sq_clipped = (v_clipped - ret) ** 2
    unclipped_active = sq >= sq_clipped
    loss = float(0.5 * np.sum(w * np.where(unclipped_active, sq, sq_clipped)))
    return loss, np.where(unclipped_active, w * err, 0.0).astype(v.dtype)
