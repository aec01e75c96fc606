"""The KL-regularised objective on K candidate answers (a one-step bandit): closed form, mini-PPO, mini-DPO.

Chapter 5 solves max_π E_π[r] - β KL(π ‖ π_ref) exactly when the answers are K fixed
candidates, and then watches PPO, run on the same one-step problem, converge to that solution.
Chapter 8 runs DPO on the same problem: with soft (Bradley-Terry) labels it reaches the same
optimum, with hard labels it does not.

Symbols
-------
=================  ===========================================================================
K, y               the number of candidate answers, one of them
π_ref(y), r(y)     the reference probability and the reward of candidate y
β                  the KL coefficient; β → 0 puts all mass on the best reward, β → ∞ keeps π_ref
π*(y)              the optimum: π_ref(y) exp(r(y) / β) / Z
θ                  the logits of the softmax policy π_θ = softmax(θ) that the mini-PPO trains
ε                  the clip range of the probability ratio
p_ij, u_ij         mini-DPO: the probability that candidate i is preferred to j, and the implicit
                   reward margin β [(log π_i - log π_ref,i) - (log π_j - log π_ref,j)]
=================  ===========================================================================
"""

from __future__ import annotations

import numpy as np

from .advantages import whiten
from .losses import ppo_clip_loss, token_logprobs, token_logprobs_backward
from .optim import AdamW

__all__ = ["kl_optimal_policy", "bandit_ppo", "bandit_dpo"]


def kl_optimal_policy(log_ref: np.ndarray, rewards: np.ndarray, beta: float) -> np.ndarray:
    """π*(y) ∝ π_ref(y) exp(r(y) / β), the maximiser of E_π[r] - β KL(π ‖ π_ref) over candidates y.

    Computed in log space (log π_ref + r / β, then a stable softmax). β = 0 is the limit:
    all the mass on the highest reward (shared equally among ties); β → ∞ gives π_ref.
    ``log_ref`` may be unnormalised log-probabilities.
    """
    lr = np.asarray(log_ref, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta == 0:
        best = (r == r.max()).astype(np.float64)
        return best / best.sum()
    z = lr + r / beta
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def bandit_ppo(log_ref: np.ndarray, rewards: np.ndarray, beta: float, clip_eps: float = 0.2, lr: float = 0.02,
               iterations: int = 150, batch_size: int = 64, epochs: int = 4, seed: int = 0) -> np.ndarray:
    """PPO on a one-step problem: a softmax policy π_θ = softmax(θ) over K candidate answers.

    Each iteration samples ``batch_size`` answers y ~ π_θ, gives each the KL-penalised reward
    r(y) - β (log π_θ(y) - log π_ref(y)) (the k1 estimate, as in the full PPO), uses the batch
    mean as the baseline and whitens the advantages, then takes ``epochs`` AdamW steps on the
    clipped surrogate (``losses.ppo_clip_loss``), whose gradient reaches θ through
    ``losses.token_logprobs_backward``. θ starts at log π_ref, i.e. π_θ = π_ref.
    Returns the probabilities π_θ after each iteration, shape (iterations + 1, K) (row 0 = π_ref).
    In expectation the fixed point is ``kl_optimal_policy(log_ref, rewards, beta)``.
    """
    log_ref = np.asarray(log_ref, dtype=np.float64)
    log_ref = log_ref - np.logaddexp.reduce(log_ref)                 # normalise π_ref
    r = np.asarray(rewards, dtype=np.float64)
    K = len(log_ref)
    theta = {"theta": log_ref.copy()}
    opt = AdamW(theta, lr=lr, betas=(0.9, 0.99), weight_decay=0.0)
    rng = np.random.default_rng(seed)
    history = np.empty((iterations + 1, K))

    def logp_all() -> np.ndarray:
        z = theta["theta"]
        return z - np.logaddexp.reduce(z)

    history[0] = np.exp(logp_all())
    for it in range(1, iterations + 1):
        p_old = np.exp(logp_all())
        y = rng.choice(K, size=batch_size, p=p_old / p_old.sum())    # sample answers from π_old
        logp_old = np.log(p_old[y])
        reward = r[y] - beta * (logp_old - log_ref[y])                # KL-penalised reward (k1)
        adv = whiten(reward) if reward.std() > 1e-12 else np.zeros(batch_size)   # baseline = batch mean
        for _ in range(epochs):
            logits = np.broadcast_to(theta["theta"], (batch_size, K))
            logp_new = token_logprobs(logits, y)
            _, dlogp, _ = ppo_clip_loss(logp_new, logp_old, adv, clip_eps)
            dlogits = token_logprobs_backward(logits, y, dlogp)       # (batch, K): one row per sample
            opt.step({"theta": dlogits.sum(axis=0)})
        history[it] = np.exp(logp_all())
    return history


def bandit_dpo(log_ref: np.ndarray, rewards: np.ndarray, beta: float, labels: str = "soft", lr: float = 0.05,
               steps: int = 300) -> np.ndarray:
    """DPO on a one-step problem: a softmax policy π_θ = softmax(θ) over K answers, starting at θ = log π_ref.

    The preference data are all K(K-1)/2 pairs of candidates. ``labels="soft"``: pair (i, j) is
    labelled i ≻ j with probability p_ij = σ(r_i - r_j), the Bradley-Terry probability of the
    reward model (infinitely many annotators); the loss is p_ij ℓ(u_ij) + (1 - p_ij) ℓ(-u_ij)
    with ℓ(u) = -log σ(u) and u_ij = β [(log π_i - log π_ref,i) - (log π_j - log π_ref,j)].
    Its minimum is exactly u_ij = r_i - r_j, i.e. π = π* ∝ π_ref exp(r / β) (chapter 5's
    optimum). ``labels="hard"``: the higher reward always wins (p_ij ∈ {0, 1}); the loss then
    keeps falling as the loser's probability goes to 0, for every β. Full-batch AdamW steps
    (weight decay 0). Returns the policy after each step, shape (steps + 1, K).
    """
    if labels not in ("soft", "hard"):
        raise ValueError(f"labels must be 'soft' or 'hard', got {labels!r}")
    if not (np.isfinite(beta) and np.isfinite(lr) and lr >= 0):
        raise ValueError(f"beta must be finite and lr >= 0, got beta={beta!r}, lr={lr!r}")
    ref = np.asarray(log_ref, dtype=np.float64) - np.logaddexp.reduce(np.asarray(log_ref, dtype=np.float64))
    r = np.asarray(rewards, dtype=np.float64)
    i, j = np.triu_indices(len(r), k=1)
    d = r[i] - r[j]
    p = 1.0 / (1.0 + np.exp(-d)) if labels == "soft" else (d > 0) + 0.5 * (d == 0)
    theta = {"theta": ref.copy()}
    opt = AdamW(theta, lr=lr, weight_decay=0.0)
    history = [np.exp(ref)]
    for _ in range(int(steps)):
        t = theta["theta"]
        u = beta * ((t[i] - ref[i]) - (t[j] - ref[j]))
        sig = np.exp(-np.logaddexp(0.0, -u))                           # σ(u), stable
        du = (-p * (1.0 - sig) + (1.0 - p) * sig) * beta / len(u)       # ∂L/∂(θ_i - θ_j), mean over pairs
        grad = np.zeros_like(t)
        np.add.at(grad, i, du)
        np.add.at(grad, j, -du)
        opt.step({"theta": grad})
        z = theta["theta"] - theta["theta"].max()
        history.append(np.exp(z) / np.exp(z).sum())
    return np.array(history)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    nz = p > 0
    return float(np.sum(p[nz] * (np.log(p[nz]) - np.log(np.maximum(q[nz], 1e-300)))))
