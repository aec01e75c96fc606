"""Advantages: generalised advantage estimation (GAE) and whitening.

PPO (chapter 5) turns per-token rewards and the value head's estimates into advantages with
GAE; both PPO and the chapter-5 mini-PPO whiten them per batch.

Symbols
-------
=================  ===========================================================================
r_t                the reward at token t (PPO: -β k_t, plus the reward model's score at the last)
V_t                the value estimate at token t; V after an episode's last token = 0
γ, λ               discount and GAE parameter (λ = 1: A_t = Σ_{l≥0} γ^l r_{t+l} - V_t;
                   λ = 0: the one-step TD error)
δ_t                TD error r_t + γ V_{t+1} - V_t
A_t, R_t           advantage Σ_l (γλ)^l δ_{t+l} and return (value target) A_t + V_t
m_t                1 on the tokens of an episode (an answer), 0 on prompt and padding
⟨x⟩                mean over the tokens with m_t = 1
=================  ===========================================================================
"""

from __future__ import annotations

import math

import numpy as np

from .losses import masked_mean

__all__ = ["gae", "whiten"]


def gae(rewards: np.ndarray, values: np.ndarray, gamma: float = 1.0, lam: float = 0.95,
        mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016) over the last axis.

        δ_t = r_t + γ V_{t+1} - V_t,     A_t = δ_t + γ λ A_{t+1},     R_t = A_t + V_t

    The value after the last token of an episode is 0 (the answer is over: no more reward).
    With ``mask`` (1 = the token belongs to the episode), each contiguous run of ones is an
    episode: V_{t+1} and A_{t+1} count as 0 where m_{t+1} = 0, and A_t = R_t = 0 wherever
    m_t = 0. Shapes (T,) or (B, T); returns (advantages, returns) in float64.
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape:
        raise ValueError(f"rewards {r.shape} and values {v.shape} must have the same shape")
    m = np.ones_like(r) if mask is None else np.asarray(mask, dtype=np.float64)
    if m.shape != r.shape:
        raise ValueError(f"mask {m.shape} must match rewards {r.shape}")
    T = r.shape[-1]
    adv = np.zeros_like(r)
    next_value = np.zeros(r.shape[:-1])      # V_{t+1}, 0 after the last token
    next_adv = np.zeros(r.shape[:-1])        # A_{t+1}
    for t in reversed(range(T)):
        mt = m[..., t]
        delta = r[..., t] + gamma * next_value - v[..., t]
        adv[..., t] = mt * (delta + gamma * lam * next_adv)
        # what position t - 1 sees as "next": this token's value and advantage if it is real
        next_value = mt * v[..., t]
        next_adv = adv[..., t]
    return adv, (adv + v) * m


def whiten(x: np.ndarray, mask: np.ndarray | None = None, shift_mean: bool = True, eps: float = 1e-8) -> np.ndarray:
    """(x - ⟨x⟩) / √(⟨(x - ⟨x⟩)²⟩ + eps) over the tokens with m = 1 (0 elsewhere).

    Whitening the advantages per batch [Huang: advantage whitening] makes the size of a
    policy step independent of the reward's scale; ``shift_mean=False`` only rescales.
    """
    x = np.asarray(x, dtype=np.float64)
    m = np.ones_like(x) if mask is None else np.asarray(mask, dtype=np.float64)
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    out = (x - mean) if shift_mean else x
    return out / math.sqrt(var + eps) * m
