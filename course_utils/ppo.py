"""RLHF with PPO: rollouts, the value head, GAE, the KL controllers and the PPO loop.

Chapter 5 fine-tunes the SFT policy (chapter 2) against the learned reward model
(chapter 3) with Proximal Policy Optimization (Schulman et al. 2017), keeping it close to
the frozen SFT model with a per-token KL penalty (Ziegler et al. 2019; Stiennon et al.
2020; Ouyang et al. 2022). Every implementation detail is visible below and commented by
what it does; a detail marked [Huang: name] is one of those catalogued by
Huang et al., "The N+ implementation details of RLHF with PPO: a case study on TL;DR
summarization" (2024), and the earlier "The N implementation details of RLHF with PPO"
(Huang, Liu, von Werra et al., ICLR blog track 2024).

The objective, for prompts x from the training set and answers y ~ π(· | x)::

    maximise  E[ r(x, y) ] - β KL(π(· | x) ‖ π_ref(· | x))

is optimised token by token: the answer y = (y_1 .. y_L) is an episode, each token an
action, and the reward is spread over the tokens as

    r_t = -β k(t)             for t < L      (k: a per-token KL estimate, ``losses.kl_penalty``)
    r_L = -β k(L) + r(x, y)                  (the reward model's score, read at the last token)

Symbols
-------
=================  ===========================================================================
x, y               a prompt and a sampled answer; the sequence is ``<bos> <q> x <a> y <eos>``
P, L               tokens of the prompt part (up to and including ``<a>``) and of the answer
                   (``<eos>`` included when the policy emitted it)
π, π_θ             the policy being trained (a TinyGPT), θ its weights
π_old              the policy that sampled the rollout (θ before this iteration's updates)
π_ref              the frozen SFT model (the reference)
τ                  the sampling temperature; every log-probability here is log softmax(z / τ)
log π(y_t)         per-token log-probability of the sampled token, shape (B, T-1) on the
                   grid of *targets* (position j predicts token j + 1)
m_t                the response mask: 1 on the answer's tokens, 0 on prompt and padding
k_t                per-token KL estimate between π_old and π_ref (k1, k2 or k3)
β                  the KL coefficient (``FixedKLController`` / ``AdaptiveKLController``)
r(x, y)            the reward model's score of the whole sequence (normalised, see below)
r_t                per-token reward: -β k_t, plus r(x, y) at the last answer token
h_t                the policy trunk's final hidden state at position t (``model.hidden``)
V_t                the value head's estimate of the return from t on: h_t · w_v + b_v
γ, λ               discount and GAE parameter
δ_t                TD error r_t + γ V_{t+1} - V_t  (V after the last token = 0)
A_t                GAE advantage Σ_l (γλ)^l δ_{t+l}; R_t = A_t + V_t the value target (return)
ρ_t                probability ratio π_θ(y_t) / π_old(y_t)
ε, ε_V             clip range of the policy ratio and of the value change
c_V, c_H           weights of the value loss and of the entropy bonus
H_t                entropy of π_θ(· | context) at t
=================  ===========================================================================

The loss minimised on each minibatch (means ⟨·⟩ over the answer tokens, m_t = 1)::

    L = ⟨max(-A_t ρ_t, -A_t clip(ρ_t, 1-ε, 1+ε))⟩            losses.ppo_clip_loss
      + c_V · ½ ⟨max((V_t - R_t)², (V_old + clip(V_t - V_old, ±ε_V) - R_t)²)⟩   losses.value_loss
      - c_H · ⟨H_t⟩                                            losses.entropy (optional)

Design choices, each documented where it is made:

* **Prompts of equal length per ``generate`` call.** ``TinyGPT.generate`` has no attention
  mask, so prompts of different token lengths cannot share a call. We *group the batch by
  prompt length* (one call per distinct length) rather than left-padding. To keep the
  number of calls small, each iteration draws ``batch_size / samples_per_prompt`` prompts
  and samples ``samples_per_prompt`` answers to each (the answers to one prompt always
  share a call). Everything after sampling works on right-padded sequences, which is exact
  for a causal model: no real token attends to the padding that follows it.
* **One temperature everywhere.** The log-probabilities of the ratio and of the KL come
  from a fresh forward pass of π and π_ref at the *sampling* temperature τ
  (log softmax(z / τ)), never from other settings (see ``_logprobs`` for why).
* **The value head is dropped from ``ppo.npz``.** Later chapters only need the policy, a
  plain TinyGPT that ``checkpoints.load("ppo")`` reads; the value head matters only to
  continue PPO training (pass your own ``ValueHead`` to ``train_ppo`` to keep it).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from . import runtime
from .losses import (
    entropy,
    entropy_backward,
    kl_penalty,
    masked_mean,
    ppo_clip_loss,
    token_logprobs,
    token_logprobs_backward,
    value_loss,
)
from .model import TinyGPT
from .optim import AdamW, clip_grad_norm
from .paths import save_log
from .progress import Progress
from .runtime import one_blas_thread, single_threaded_blas  # single_threaded_blas: re-exported (public here)
from .tokenizer import VocabularyTokenizer
from .training import encode_sft

__all__ = [
    "PPOConfig",
    "DEFAULT_CONFIG",
    "ValueHead",
    "FixedKLController",
    "AdaptiveKLController",
    "Rollout",
    "gae",
    "whiten",
    "rollout",
    "ppo_loss",
    "ppo_update",
    "train_ppo",
    "answer_logprobs",
    "sample_answers",
    "kl_optimal_policy",
    "bandit_ppo",
    "build_ppo_checkpoint",
    "single_threaded_blas",
    "reward_normalisation",
]


class RewardModelLike(Protocol):
    """What PPO needs from a reward model: rewards (B,) read at index ``lengths - 1``."""

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray: ...


# ============================================================================ configuration
def check_rollout_knobs(cfg, per_prompt: str, method: str) -> None:
    """Validate the sampling and update knobs PPO and GRPO configs share; ``per_prompt`` names the
    field of answers per prompt (``samples_per_prompt`` or ``group_size``). Raises ValueError."""
    n = getattr(cfg, per_prompt)
    if cfg.iterations < 0 or cfg.batch_size < 1 or n < 1:
        raise ValueError(f"iterations must be >= 0, batch_size and {per_prompt} >= 1")
    if cfg.batch_size % n:
        raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of {per_prompt}={n}")
    if cfg.max_new_tokens < 1 or cfg.ppo_epochs < 0 or cfg.minibatch_size < 1:
        raise ValueError("max_new_tokens and minibatch_size must be >= 1, ppo_epochs >= 0")
    if not cfg.temperature > 0:
        raise ValueError(f"temperature must be > 0 ({method} needs a stochastic policy), got {cfg.temperature}")


@dataclass
class PPOConfig:
    """Every knob of a PPO run (the chapter-5 parameters cell mirrors the defaults).

    Rollouts
        iterations: rollout + update rounds.  batch_size: answers sampled per iteration.
        samples_per_prompt: answers sampled per prompt (``batch_size`` must be a multiple).
        max_new_tokens: longest answer (``<eos>`` included); longer answers are cut.
        temperature: τ of sampling and of every log-probability.
    KL penalty
        kl_coef: β (the initial β when ``adaptive_kl``).  adaptive_kl: use
        ``AdaptiveKLController(kl_coef, kl_target, kl_horizon)``.  kl_estimator: "k1", "k2"
        or "k3" (``losses.kl_penalty``).
    Rewards
        normalize_reward: use (score - μ) / σ with μ, σ of the scores of ``norm_samples``
        answers sampled from the starting (SFT) policy before training, so r has mean 0 and
        spread 1 for the SFT policy [Huang: reward normalisation]; ``norm_samples`` = 0 takes
        them from the first rollout instead.
        missing_eos_reward: if set, an answer cut at ``max_new_tokens`` without ``<eos>``
        gets this (normalised) reward instead of its score [Huang: EOS trick]; None scores
        it as it is.
    Advantages
        gamma, lam: γ and λ of GAE.  whiten_advantages: shift and scale A to mean 0 and
        standard deviation 1 over the batch's answer tokens [Huang: advantage whitening].
    Updates
        ppo_epochs: passes over each rollout.  minibatch_size: answers per gradient step.
        lr, weight_decay, grad_clip: AdamW and the global gradient-norm clip.
        clip_eps: ε.  value_clip_eps: ε_V (None = unclipped value loss).  vf_coef: c_V.
        ent_coef: c_H (0 = no entropy bonus).  target_kl: stop an iteration's epochs early
        once the approximate KL between π_θ and π_old exceeds it (None = never).
    Guards
        max_kl: stop the run with a warning once the mean KL(π ‖ π_ref) of an answer
        exceeds this many nats (None = never).  judge_every: judge the sampled answers every
        this many iterations (0 = never).  seed: prompt order, sampling and minibatches.
    """

    iterations: int = 60
    batch_size: int = 16
    samples_per_prompt: int = 8
    max_new_tokens: int = 112
    temperature: float = 1.0
    kl_coef: float = 0.05
    adaptive_kl: bool = False
    kl_target: float = 6.0
    kl_horizon: int = 10_000
    kl_estimator: str = "k1"
    normalize_reward: bool = True
    norm_samples: int = 256
    missing_eos_reward: float | None = -1.0
    gamma: float = 1.0
    lam: float = 1.0
    whiten_advantages: bool = True
    ppo_epochs: int = 2
    minibatch_size: int = 16
    lr: float = 1.5e-4
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    clip_eps: float = 0.2
    value_clip_eps: float | None = 0.2
    vf_coef: float = 0.1
    ent_coef: float = 0.0
    target_kl: float | None = None
    max_kl: float | None = 100.0
    judge_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_rollout_knobs(self, "samples_per_prompt", "PPO")
        if self.kl_coef < 0 or self.clip_eps < 0 or self.lr < 0:
            raise ValueError("kl_coef, clip_eps and lr must be >= 0")
        if self.kl_estimator not in ("k1", "k2", "k3"):
            raise ValueError(f"kl_estimator must be 'k1', 'k2' or 'k3', got {self.kl_estimator!r}")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ValueError("gamma and lam must lie in [0, 1]")


DEFAULT_CONFIG = PPOConfig()


# ============================================================================ KL controllers
class FixedKLController:
    """β held fixed: ``.value`` = kl_coef; ``update`` changes nothing (same interface as the adaptive one)."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


class AdaptiveKLController:
    """Adaptive β (Ziegler et al. 2019, "Fine-tuning language models from human preferences"):

        err = clip(KL / KL_target - 1, -0.2, 0.2)
        β  ← β · (1 + err · n_steps / horizon)

    KL above the target raises β (a stronger pull back to π_ref), below lowers it; the
    clip keeps one batch from moving β by more than 20 % of n_steps / horizon.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int) -> None:
        if target <= 0 or horizon <= 0:
            raise ValueError("target and horizon must be > 0")
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Move β after a batch of ``n_steps`` samples whose mean KL was ``current_kl``; returns β."""
        err = float(np.clip(current_kl / self.target - 1.0, -0.2, 0.2))
        self.value *= 1.0 + err * n_steps / self.horizon
        return self.value


# ============================================================================ value head
class ValueHead:
    """V_t = h_t · w_v + b_v, a linear head on the policy trunk's final hidden states.

    ``params``: ``"value.w"`` (D,) and ``"value.b"`` (1,), both 0 at the start (so V = 0,
    the mean of the normalised reward of the SFT policy). The gradient flows into the
    trunk through ``TinyGPT.backward(dlogits, dhidden)``: the policy and the value share
    the transformer, the cheaper choice (as in TRL's value-head models). Stiennon et al.
    (2020) and Ouyang et al. (2022) train a separate value network initialised from the
    reward model instead.
    """

    def __init__(self, d_model: int, dtype=np.float32) -> None:
        self.params: dict[str, np.ndarray] = {"value.w": np.zeros(d_model, dtype=dtype),
                                              "value.b": np.zeros(1, dtype=dtype)}

    def forward(self, hidden: np.ndarray) -> np.ndarray:
        """V (B, T) from h (B, T, D)."""
        return hidden @ self.params["value.w"] + self.params["value.b"][0]

    def backward(self, hidden: np.ndarray, dvalues: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Given ∂L/∂V (B, T): the head's gradients and ∂L/∂h = ∂L/∂V · w_v (B, T, D)."""
        dv = np.asarray(dvalues, dtype=hidden.dtype)
        grads = {"value.w": np.tensordot(dv, hidden, axes=([0, 1], [0, 1])).astype(hidden.dtype),
                 "value.b": np.array([dv.sum()], dtype=hidden.dtype)}
        return grads, dv[..., None] * self.params["value.w"]

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.params.items()}


# ============================================================================ advantages
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


# ============================================================================ log-probabilities
@one_blas_thread
def _logprobs(model: TinyGPT, tokens: np.ndarray, temperature: float):
    """Forward ``tokens[:, :-1]`` and return (log π(y_t) of the targets ``tokens[:, 1:]``, logits / τ).

    The temperature pitfall. The tokens were sampled from softmax(z / τ), so the ratio
    ρ = π_θ / π_old and the KL estimate log π - log π_ref must both be taken under that same
    distribution. Had we sampled at τ = 0.7 but scored at τ = 1 (or sampled with top-k,
    top-p, a minimum length ... and scored without them), then at the first update step
    π_θ ≠ π_old although θ has not moved (so clipping bites from the start), and
    Σ_t (log π - log π_ref) over tokens drawn from *another* distribution is no longer an
    estimate of KL(π ‖ π_ref): it can even come out negative, and PPO then *rewards* the
    policy for drifting. Here every log-probability (sampling, π_old, π_θ, π_ref) is
    log softmax(z / τ) from a fresh forward pass, and the generation's own log q serves
    only as a check (``logprob_gap`` in the diagnostics, about 1e-6).
    """
    logits = model.forward(tokens[:, :-1])
    scaled = logits if temperature == 1.0 else logits / np.asarray(temperature, dtype=logits.dtype)
    return token_logprobs(scaled, tokens[:, 1:]), scaled


def _answer_batch(tok: VocabularyTokenizer, prompts: Sequence[str],
                  answers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``<bos> <q> x <a> y <eos>`` rows (n, T) and the answer mask m (n, T-1) on the target grid.

    m is 1 on the targets that are the answer's tokens, ``<eos>`` included (see
    ``_response_mask``), so Σ_t m_t log π(y_t) is the sequence log-probability log π(y | x).
    Shared by ``answer_logprobs`` and the DPO trainer (``dpo.sequence_logprobs``).
    """
    seqs, starts = zip(*(encode_sft(tok, p, a) for p, a in zip(prompts, answers, strict=True)))
    plen = np.asarray(starts, dtype=np.int64)
    alen = np.array([len(s) for s in seqs], dtype=np.int64) - plen
    T = int((plen + alen).max())
    tokens = np.full((len(seqs), T), tok.pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
    return tokens, _response_mask(plen, alen, T - 1)


def answer_logprobs(model: TinyGPT, tok: VocabularyTokenizer, prompt: str, answers: Sequence[str],
                    temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """log π(y | x) = Σ_t log π(y_t | x, y_<t) of each answer (``<eos>`` included), and its token count.

    The sequences are ``<bos> <q> prompt <a> answer <eos>``; returns two arrays of shape (n,).
    """
    tokens, mask = _answer_batch(tok, [prompt] * len(answers), answers)
    logp, _ = _logprobs(model, tokens, temperature)
    return (logp * mask).sum(axis=1).astype(np.float64), mask.sum(axis=1).astype(np.int64)


def sample_answers(model: TinyGPT, tok: VocabularyTokenizer, prompts: Sequence[str], temperature: float = 0.0,
                   max_new_tokens: int = 112, seed: int = 0, return_ended: bool = False):
    """The model's answers to ``prompts`` (greedy when ``temperature == 0``), formatted as in SFT.

    Like ``training.answer`` but prompts of equal token length share one ``generate`` call,
    which makes evaluating a policy on many prompts several times faster. With
    ``return_ended``, also a boolean array: which answers ended with ``<eos>`` (the others
    were cut at ``max_new_tokens``).
    """
    ids = [encode_sft(tok, p)[0] for p in prompts]
    if not ids:
        return ([], np.zeros(0, dtype=bool)) if return_ended else []
    rng = np.random.default_rng(seed)
    tokens, plen, alen, ended, _ = _sample(model, tok, ids, max_new_tokens, temperature, rng)
    texts = [tok.decode([int(t) for t in tokens[i, plen[i]:plen[i] + alen[i]] if t != tok.eos_id])
             for i in range(len(ids))]
    return (texts, ended) if return_ended else texts


# ============================================================================ rollouts
@dataclass
class Rollout:
    """One batch of sampled answers and everything PPO computes from it (arrays on the target grid).

    tokens (B, T) right-padded ``<bos> <q> x <a> y [<eos>]``; the target grid (B, T-1) has
    position j predicting token j + 1. ``mask`` is 1 on the answer's tokens. ``logprobs`` =
    log π_old, ``ref_logprobs`` = log π_ref, ``values`` = V_old, ``kl`` = k_t (masked),
    ``rewards`` = r_t, ``advantages`` (whitened if configured) and ``returns`` R_t.
    ``scores`` are the raw reward-model scores, ``norm_scores`` the normalised ones.
    """

    tokens: np.ndarray
    mask: np.ndarray
    prompt_lens: np.ndarray
    answer_lens: np.ndarray
    ended: np.ndarray
    logprobs: np.ndarray
    ref_logprobs: np.ndarray
    values: np.ndarray
    kl: np.ndarray
    rewards: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    scores: np.ndarray
    norm_scores: np.ndarray
    entropy: np.ndarray
    exact_kl: np.ndarray
    logprob_gap: float
    prompt_index: np.ndarray
    answers: list[str] = field(default_factory=list)

    @property
    def seq_lens(self) -> np.ndarray:
        return self.prompt_lens + self.answer_lens


@one_blas_thread
def _sample(policy: TinyGPT, tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
            temperature: float, rng: np.random.Generator):
    """Sample one answer per prompt; prompts of equal length share one ``generate`` call.

    Returns right-padded full sequences (B, T), prompt lengths, answer lengths, whether each
    answer ended with ``<eos>``, and the generation's own log q of the answer tokens (B, T-1).
    """
    B = len(prompt_ids)
    plen = np.array([len(p) for p in prompt_ids], dtype=np.int64)
    room = policy.config.max_len - int(plen.max())
    if room < 1:
        raise ValueError(f"a prompt of {plen.max()} tokens leaves no room in max_len={policy.config.max_len}")
    n_new = min(int(max_new_tokens), room)
    parts: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for length in sorted(set(plen.tolist())):                      # group by prompt length
        rows = np.flatnonzero(plen == length)
        batch = np.asarray([prompt_ids[i] for i in rows], dtype=np.int64)
        gen = policy.generate(batch, n_new, temperature=temperature, rng=rng, stop_id=tok.eos_id,
                              pad_id=tok.pad_id, return_logprobs=True)
        for k, i in enumerate(rows):
            parts[int(i)] = (gen.tokens[k, :gen.lengths[k]], gen.logprobs[k, :gen.lengths[k]], gen.lengths[k])
    alen = np.array([parts[i][2] for i in range(B)], dtype=np.int64)
    T = int((plen + alen).max())
    tokens = np.full((B, T), tok.pad_id, dtype=np.int64)
    gen_logq = np.zeros((B, T - 1))
    ended = np.zeros(B, dtype=bool)
    for i in range(B):
        new, logq, n = parts[i]
        P = plen[i]
        tokens[i, :P] = prompt_ids[i]
        tokens[i, P:P + n] = new
        gen_logq[i, P - 1:P - 1 + n] = logq
        ended[i] = n > 0 and new[-1] == tok.eos_id
    return tokens, plen, alen, ended, gen_logq


def _response_mask(plen: np.ndarray, alen: np.ndarray, width: int) -> np.ndarray:
    """m on the target grid: 1 at positions P-1 .. P-1+L-1 (the targets that are answer tokens)."""
    j = np.arange(width)[None, :]
    return ((j >= plen[:, None] - 1) & (j < (plen + alen)[:, None] - 1)).astype(np.float64)


def _entropy_and_kl(rows: np.ndarray, ref_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entropy H(π_t) and exact KL(π_t ‖ π_ref,t) per row, from logits rows (n, V) of π and π_ref.

    With p = softmax(z) and LSE the log-sum-exp: H = LSE(z) - Σ_v p z and
    KL = Σ_v p (z - z_ref) - LSE(z) + LSE(z_ref), so one softmax serves both. Computed
    only on the answer's positions (diagnostics: the k1 estimate in the reward is a
    sampled estimate of this KL).
    """
    ones = np.ones(rows.shape[-1], dtype=rows.dtype)
    m = rows.max(axis=-1)
    e = np.exp(rows - m[:, None])
    total = e @ ones
    lse = m + np.log(total)
    p = e / total[:, None]
    pz, pz_ref = (p * rows) @ ones, (p * ref_rows) @ ones
    m_ref = ref_rows.max(axis=-1)
    lse_ref = m_ref + np.log(np.exp(ref_rows - m_ref[:, None]) @ ones)
    return (lse - pz).astype(np.float64), (pz - pz_ref - lse + lse_ref).astype(np.float64)


def _rewards_and_advantages(scores: np.ndarray, ended: np.ndarray, kl: np.ndarray, values: np.ndarray,
                            mask: np.ndarray, last: np.ndarray, config: PPOConfig, beta: float,
                            score_norm: tuple[float, float]):
    """Steps 5-6 of ``rollout``: normalised scores, per-token rewards r_t, GAE advantages and returns."""
    mu, sigma = score_norm
    norm_scores = (scores - mu) / sigma
    if config.missing_eos_reward is not None:                # [Huang: EOS trick] no reward for an unfinished answer
        norm_scores = np.where(ended, norm_scores, config.missing_eos_reward)
    rewards = -beta * kl                                     # -β k_t on every answer token ...
    rewards[np.arange(len(scores)), last] += norm_scores     # ... + r(x, y) at the last one
    advantages, returns = gae(rewards, values, config.gamma, config.lam, mask)
    if config.whiten_advantages:                             # [Huang: advantage whitening]
        advantages = whiten(advantages, mask)
    return norm_scores, rewards, advantages, returns


@dataclass
class _Samples:
    """Sampled answers, scored: what PPO's and GRPO's rollouts share (arrays on the target grid).

    ``values`` is V_old when a value head was given (PPO), else None (GRPO has no critic).
    """

    tokens: np.ndarray
    mask: np.ndarray
    prompt_lens: np.ndarray
    answer_lens: np.ndarray
    ended: np.ndarray
    logprobs: np.ndarray
    ref_logprobs: np.ndarray
    values: np.ndarray | None
    scores: np.ndarray
    entropy: np.ndarray
    exact_kl: np.ndarray
    logprob_gap: float
    answers: list[str]


@one_blas_thread
def _sample_and_score(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
                      prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, temperature: float,
                      rng: np.random.Generator, value_head: ValueHead | None = None,
                      timings: dict[str, float] | None = None) -> _Samples:
    """Steps 1-4 of ``rollout``: sample, one forward of π_old (and V_old) and of π_ref, the scores.

    ``timings``, if given, receives the seconds spent in ``generation`` (step 1).
    """
    t0 = time.perf_counter()
    tokens, plen, alen, ended, gen_logq = _sample(policy, tok, prompt_ids, max_new_tokens, temperature, rng)
    if timings is not None:
        timings["generation"] = time.perf_counter() - t0
    B, T = tokens.shape
    mask = _response_mask(plen, alen, T - 1)

    answer = mask > 0                                                                # (B, T-1) booleans
    logprobs, scaled = _logprobs(policy, tokens, temperature)                        # log π_old
    values = (None if value_head is None
              else value_head.forward(policy.hidden).astype(np.float64) * mask)     # V_old
    ref_logprobs, ref_scaled = _logprobs(ref, tokens, temperature)                   # log π_ref
    ent, exact = np.zeros(mask.shape), np.zeros(mask.shape)                          # diagnostics only:
    ent[answer], exact[answer] = _entropy_and_kl(scaled[answer], ref_scaled[answer]) # H_t, exact KL_t
    del scaled, ref_scaled
    policy._cache = ref._cache = None                        # free the activations: nothing to backprop yet

    scores = np.asarray(reward_model.forward(tokens, plen + alen), dtype=np.float64)   # r(x, y), raw
    gap = float(np.abs((gen_logq - logprobs) * mask).sum() / max(mask.sum(), 1.0))
    answers = [tok.decode([int(t) for t in tokens[i, plen[i]:plen[i] + alen[i]] if t != tok.eos_id])
               for i in range(B)]
    return _Samples(tokens, mask, plen, alen, ended, logprobs, ref_logprobs, values, scores, ent, exact, gap, answers)


@one_blas_thread
def rollout(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, value_head: ValueHead,
            tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], config: PPOConfig, beta: float,
            rng: np.random.Generator, score_norm: tuple[float, float] = (0.0, 1.0),
            timings: dict[str, float] | None = None) -> Rollout:
    """Sample answers, score them, and compute rewards, advantages and returns (no update).

    1. sample y ~ π_old(· | x) at temperature τ with the KV cache (``generate``);
    2. one forward of π_old on the full sequences: log π_old(y_t) and V_old(t) (value head);
    3. one forward of π_ref: log π_ref(y_t); k_t = kl_penalty(log π_old, log π_ref, estimator);
    4. the reward model's score of the whole sequence, read at its last token
       [Huang: reward at the EOS token];
    5. r_t = -β k_t, plus the (normalised) score at the last answer token;
    6. GAE (γ, λ) → A_t and R_t; whiten A over the batch's answer tokens.
    ``score_norm`` = (μ, σ): the normalised score is (score - μ) / σ. ``timings``, if given,
    receives the seconds spent in ``generation`` (step 1) and ``scoring`` (steps 2-6).
    Steps 1-4 are ``_sample_and_score``, which GRPO's rollout shares.
    """
    t0 = time.perf_counter()
    own_timings: dict[str, float] = {}
    s = _sample_and_score(policy, ref, reward_model, tok, prompt_ids, config.max_new_tokens, config.temperature,
                          rng, value_head, own_timings)
    last = s.prompt_lens + s.answer_lens - 2                 # target index of the last answer token
    kl = kl_penalty(s.logprobs, s.ref_logprobs, config.kl_estimator) * s.mask      # k_t on answer tokens
    norm_scores, rewards, advantages, returns = _rewards_and_advantages(s.scores, s.ended, kl, s.values, s.mask,
                                                                        last, config, beta, score_norm)
    if timings is not None:
        timings["generation"] = own_timings["generation"]
        timings["scoring"] = time.perf_counter() - t0 - own_timings["generation"]
    B = s.tokens.shape[0]
    return Rollout(s.tokens, s.mask, s.prompt_lens, s.answer_lens, s.ended, s.logprobs, s.ref_logprobs, s.values,
                   kl, rewards, advantages, returns, s.scores, norm_scores, s.entropy, s.exact_kl, s.logprob_gap,
                   np.zeros(B, dtype=np.int64), s.answers)


# ============================================================================ the update
@one_blas_thread
def ppo_loss(policy: TinyGPT, value_head: ValueHead, tokens: np.ndarray, mask: np.ndarray,
             old_logprobs: np.ndarray, advantages: np.ndarray, returns: np.ndarray, old_values: np.ndarray,
             config: PPOConfig) -> tuple[float, dict[str, np.ndarray], dict[str, float]]:
    """The PPO loss of one minibatch and its gradient with respect to the policy and the value head.

        L = ⟨max(-A ρ, -A clip(ρ, 1-ε, 1+ε))⟩ + c_V L_V(V_θ, R; V_old, ε_V) - c_H ⟨H⟩

    ``tokens`` (b, W) and every other array on the target grid (b, W-1); ``mask`` = m.
    One forward pass of π_θ gives the logits (log π_θ at temperature τ) and the hidden
    states (V_θ from the value head); one backward pass sends ∂L/∂z through the LM head and
    ∂L/∂V · w_v through the value head into the shared trunk.
    Returns (L, gradients keyed like ``policy.params`` plus ``value_head.params``, statistics).
    """
    tau = config.temperature
    logp, scaled = _logprobs(policy, tokens, tau)                    # log π_θ(y_t), forward with the cache kept
    hidden = policy.hidden
    values = value_head.forward(hidden)                              # V_θ(t)
    # clipped surrogate: the ratio to π_old, the advantages of the rollout
    pg_loss, dlogp, pg_stats = ppo_clip_loss(logp, old_logprobs, advantages, config.clip_eps, mask)
    # clipped value loss around V_old: V may move at most ε_V per rollout
    v_loss, dvalues = value_loss(values, returns, old_values, config.value_clip_eps, mask)
    # ∂L/∂z through log softmax(z / τ): the chain rule brings a factor 1/τ
    dscaled = token_logprobs_backward(scaled, tokens[:, 1:], dlogp)
    ent = 0.0
    if config.ent_coef:                                              # entropy bonus: - c_H ⟨H⟩
        w = mask / max(float(mask.sum()), 1.0)
        ent = float((entropy(scaled) * w).sum())
        dscaled += entropy_backward(scaled, -config.ent_coef * w)
    dlogits = dscaled / np.asarray(tau, dtype=dscaled.dtype) if tau != 1.0 else dscaled
    vgrads, dhidden = value_head.backward(hidden, config.vf_coef * dvalues)
    grads = policy.backward(dlogits, dhidden)                        # both heads into the shared trunk
    grads.update(vgrads)
    loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * ent
    stats = {"policy_loss": pg_loss, "value_loss": v_loss, "clipfrac": pg_stats["clipfrac"],
             "approx_kl": pg_stats["approx_kl"], "finite": bool(np.isfinite(logp[mask > 0]).all())}
    return float(loss), grads, stats


@one_blas_thread
def ppo_update(policy: TinyGPT, value_head: ValueHead, opt: AdamW, batch: Rollout, config: PPOConfig,
               rng: np.random.Generator) -> dict[str, float]:
    """``ppo_epochs`` passes of minibatch gradient steps on one rollout; returns mean statistics.

    Per minibatch: ``ppo_loss`` (forward, clipped surrogate, clipped value loss, optional
    entropy bonus, backward), the global gradient-norm clip, one AdamW step. Returns NaN
    statistics if a loss or gradient became non-finite (the caller stops the run);
    ``steps`` counts the steps taken, ``early_stop`` whether ``target_kl`` ended the epochs.
    """

    def minibatch_loss(idx: np.ndarray, width: int):
        g = (idx, slice(0, width - 1))                               # the minibatch on the target grid
        return ppo_loss(policy, value_head, batch.tokens[idx, :width], batch.mask[g], batch.logprobs[g],
                        batch.advantages[g], batch.returns[g], batch.values[g], config)

    keys = ("policy_loss", "value_loss", "clipfrac", "approx_kl", "grad_norm")
    return _minibatch_updates(policy, opt, batch.seq_lens, minibatch_loss, keys, config, rng)


def _minibatch_updates(policy: TinyGPT, opt: AdamW, seq_lens: np.ndarray, minibatch_loss, keys: Sequence[str],
                       config, rng: np.random.Generator) -> dict[str, float]:
    """The update loop PPO and GRPO share: ``config.ppo_epochs`` passes of minibatch AdamW steps.

    ``minibatch_loss(idx, width)`` returns (loss, gradients, statistics with ``keys`` but
    ``grad_norm``, and ``finite``) for the rows ``idx`` cut to ``width`` tokens; ``config``
    provides ``ppo_epochs``, ``minibatch_size``, ``grad_clip`` and ``target_kl``.
    Returns the mean statistics, ``steps`` and ``early_stop`` (NaN statistics if a loss or
    gradient became non-finite: the caller stops the run).
    """
    B = len(seq_lens)
    stats: dict[str, list[float]] = {k: [] for k in keys}
    steps, stopped_early = 0, False
    for _epoch in range(config.ppo_epochs):
        order = rng.permutation(B)                                   # fresh minibatches every epoch
        for start in range(0, B, config.minibatch_size):
            idx = order[start:start + config.minibatch_size]
            width = int(seq_lens[idx].max())                         # drop columns that are padding everywhere
            loss, grads, st = minibatch_loss(idx, width)
            if not (math.isfinite(loss) and st["finite"]):
                policy._cache = None
                return {k: math.nan for k in keys} | {"steps": steps, "early_stop": False}
            st["grad_norm"] = clip_grad_norm(grads, config.grad_clip) if config.grad_clip else math.nan
            if not opt.step(grads):                                  # a non-finite gradient: step skipped
                policy._cache = None
                return {k: math.nan for k in keys} | {"steps": steps, "early_stop": False}
            steps += 1
            for k in keys:
                stats[k].append(float(st[k]))
            if config.target_kl is not None and st["approx_kl"] > config.target_kl:
                stopped_early = True                                  # π_θ has left π_old far enough
                break
        if stopped_early:
            break
    policy._cache = None
    out = {k: float(np.mean(v)) if v else math.nan for k, v in stats.items()}
    return out | {"steps": steps, "early_stop": stopped_early}


# ============================================================================ the loop
def _prompt_items(prompts: Sequence[str] | Sequence[Mapping], scenarios) -> tuple[list[str], list[dict | None]]:
    """Prompt texts and, where known, the scenario each belongs to (for the gold judge)."""
    texts, scen = [], []
    lookup = None
    for p in prompts:
        if isinstance(p, str):
            texts.append(p)
            scen.append(None)
            continue
        texts.append(p["prompt"])
        sid = p.get("scenario_id")
        if sid is None:
            scen.append(None)
            continue
        if lookup is None:
            if scenarios is None:
                from . import data
                scenarios = data.load_scenarios()
            lookup = scenarios if isinstance(scenarios, Mapping) else {s["id"]: s for s in scenarios}
        scen.append(lookup[sid])
    return texts, scen


def _warn(msg: str, stacklevel: int = 3) -> str:
    warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
    return msg


def _warn_extreme_settings(beta: float, clip_eps: float, lr: float) -> str:
    """The up-front warnings of ``train_ppo`` and ``grpo.train_grpo``; returns the last message ("" if none)."""
    message = ""
    if beta == 0:
        message = _warn("β = 0: nothing pulls the policy back to the SFT reference. Expect the reward to be "
                        "exploited: KL grows without bound and the answers collapse onto one pattern.", 4)
    if clip_eps == 0:
        message = _warn("ε = 0: the clipped objective cuts the gradient of every token as soon as its ratio moves "
                        "in the direction its advantage favours, so the policy can hardly improve.", 4)
    if lr > 1e-2:
        message = _warn(f"lr = {lr:g} is far above what fine-tuning a pretrained model tolerates "
                        "(1e-5 .. 1e-3): expect the policy to break down.", 4)
    return message


class _PromptCycler:
    """The prompts of each iteration: a walk through a shuffled order, reshuffled after each pass over the data."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n, self.rng = n, rng
        self.order, self.cursor = rng.permutation(n), 0

    def next(self, k: int) -> np.ndarray:
        """Indices of the next ``k`` prompts (drawn with replacement when k exceeds the number of prompts)."""
        if self.cursor + k > len(self.order):
            self.order, self.cursor = self.rng.permutation(self.n), 0
        chosen = self.order[self.cursor:self.cursor + k] if k <= len(self.order) else self.rng.choice(self.n, k)
        self.cursor += k
        return chosen


def _judge_score(answers: Sequence[str], index: np.ndarray, scen: Sequence[Mapping | None], it: int,
                 judge_every: int) -> float:
    """Mean gold-judge overall score of the answers on judged iterations (every ``judge_every``), else NaN."""
    if judge_every and (it - 1) % judge_every == 0 and all(scen[i] is not None for i in index):
        from .judge import judge_answer
        return float(np.mean([judge_answer(a, scen[i]).overall for a, i in zip(answers, index)]))
    return math.nan


def _params_finite(params: Mapping[str, np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in params.values())


DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "iteration", "score", "judge", "reward", "kl", "kl_exact", "beta", "policy_loss", "value_loss", "clipfrac",
    "approx_kl", "entropy", "length", "ended", "distinct", "grad_norm", "logprob_gap",
)


def train_ppo(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
              prompts: Sequence[str] | Sequence[Mapping], config: PPOConfig | None = None, progress: bool = True,
              *, scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None = None,
              value_head: ValueHead | None = None, desc: str = "PPO",
              score_norm: tuple[float, float] | None = None) -> tuple[TinyGPT, pd.DataFrame]:
    """RLHF: PPO on ``policy`` (updated in place) against ``reward_model``, KL-anchored to ``ref``.

    ``score_norm`` = (μ, σ), if given, is used as the reward normalisation instead of measuring
    it (``reward_normalisation``; several runs from the same SFT model can share one).

    Args:
        policy: the SFT model to fine-tune (its weights change).  ref: the frozen reference
            (never changed; pass ``policy.copy()`` made before training).
        reward_model: anything with ``forward(tokens, lengths) -> rewards (B,)`` read at the
            last real token (``reward.RewardModel``).
        prompts: training prompts: strings, or dicts with ``"prompt"`` and ``"scenario_id"``
            (e.g. ``data.load_rl_prompts()``); with scenario ids the gold judge scores the answers.
        scenarios: the knowledge base (list or id → scenario); default ``data.load_scenarios()``.
        value_head: a ``ValueHead`` to train (and keep); default a fresh one (dropped).

    Returns:
        (policy, diagnostics): one row per iteration with ``DIAGNOSTIC_COLUMNS``: the mean raw
        reward-model ``score`` and gold-``judge`` overall score of the sampled answers, the
        mean total ``reward`` Σ_t r_t per answer, ``kl`` = mean Σ_t k1_t per answer (the
        sampled KL(π ‖ π_ref) in nats), ``kl_exact`` the same from the full distributions,
        the ``beta`` used, the losses, ``clipfrac``, ``approx_kl`` (π_θ vs π_old), mean
        per-token ``entropy``, answer ``length`` (tokens), share of answers that ``ended``
        with ``<eos>``, share of ``distinct`` answers, and ``logprob_gap`` (sampling vs
        forward pass log-probs, a consistency check). ``diagnostics.attrs`` holds
        ``stopped`` (bool) and ``message``.

    Extreme settings never crash: β = 0, ε = 0 and very large learning rates warn up front;
    a non-finite loss, gradient or weight stops the run with a ``RuntimeWarning`` and the
    weights of the last good iteration; so does a KL to the reference above ``max_kl``.
    """
    runtime.configure()                   # glibc keeps the freed temporaries of each iteration (runtime.py)
    cfg = config or PPOConfig()
    texts, scen = _prompt_items(prompts, scenarios)
    if not texts:
        raise ValueError("no prompts to train on")
    prompt_ids = [encode_sft(tok, t)[0] for t in texts]
    rng = np.random.default_rng(cfg.seed)
    value_head = value_head or ValueHead(policy.config.d_model, policy.dtype)
    params = {**policy.params, **value_head.params}               # one optimiser for both heads and the trunk
    opt = AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    kl_ctl = (AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.adaptive_kl
              else FixedKLController(cfg.kl_coef))

    message = _warn_extreme_settings(cfg.kl_coef, cfg.clip_eps, cfg.lr)

    n_prompts = cfg.batch_size // cfg.samples_per_prompt
    cycler = _PromptCycler(len(texts), rng)
    if not cfg.normalize_reward:
        score_norm = (0.0, 1.0)
    elif score_norm is None and cfg.norm_samples > 0:
        score_norm = reward_normalisation(policy, reward_model, tok, prompt_ids, cfg.norm_samples,
                                          cfg.max_new_tokens, cfg.temperature, cfg.seed)
    rows, stopped = [], False
    with Progress(cfg.iterations, desc, display=None if progress else False) as bar, single_threaded_blas():
        for it in range(1, cfg.iterations + 1):
            index = np.repeat(cycler.next(n_prompts), cfg.samples_per_prompt)
            snapshot = {k: a.copy() for k, a in params.items()}      # the last good weights
            beta = kl_ctl.value
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                if score_norm is None:                   # [Huang: reward normalisation] on the SFT policy's samples
                    batch = rollout(policy, ref, reward_model, value_head, tok, [prompt_ids[i] for i in index],
                                    cfg, beta, rng, (0.0, 1.0))
                    sd = float(batch.scores.std())
                    score_norm = (float(batch.scores.mean()), sd if sd > 1e-6 else 1.0)
                    batch = _renormalise(batch, cfg, beta, score_norm)
                else:
                    batch = rollout(policy, ref, reward_model, value_head, tok, [prompt_ids[i] for i in index],
                                    cfg, beta, rng, score_norm)
            batch.prompt_index = index
            seq_kl = (batch.kl if cfg.kl_estimator == "k1" else
                      kl_penalty(batch.logprobs, batch.ref_logprobs, "k1") * batch.mask).sum(axis=1)
            row = {
                "iteration": it,
                "score": float(batch.scores.mean()),
                "judge": _judge_score(batch.answers, index, scen, it, cfg.judge_every),
                "reward": float(batch.rewards.sum(axis=1).mean()),
                "kl": float(seq_kl.mean()),
                "kl_exact": float(batch.exact_kl.sum(axis=1).mean()),
                "beta": beta,
                "entropy": masked_mean(batch.entropy, batch.mask),
                "length": float(batch.answer_lens.mean()),
                "ended": float(batch.ended.mean()),
                "distinct": len(set(batch.answers)) / len(batch.answers),
                "logprob_gap": batch.logprob_gap,
            }
            finite_batch = all(np.isfinite(x).all() for x in (batch.logprobs, batch.ref_logprobs, batch.values,
                                                              batch.scores, batch.advantages))
            if not finite_batch:
                message, stopped = _warn(f"PPO stopped at iteration {it}: the rollout produced non-finite "
                                         "log-probabilities, values or rewards."), True
                rows.append(row)
                break
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")                  # a skipped AdamW step is reported below instead
                upd = ppo_update(policy, value_head, opt, batch, cfg, rng)
            row.update({k: upd[k] for k in ("policy_loss", "value_loss", "clipfrac", "approx_kl", "grad_norm")})
            rows.append(row)
            if cfg.ppo_epochs and (upd["steps"] == 0 or not math.isfinite(upd["policy_loss"])
                                   or not _params_finite(params)):
                for k, a in params.items():                          # back to the last good weights
                    a[...] = snapshot[k]
                message, stopped = _warn(f"PPO stopped at iteration {it}: a loss, gradient or weight became "
                                         "infinite or NaN (the learning rate is probably too large). The "
                                         "weights of the last good iteration are kept."), True
                break
            kl_ctl.update(row["kl"], cfg.batch_size)                 # Ziegler et al.: n_steps = batch size
            bar.update(score=row["score"], kl=row["kl"])
            if cfg.max_kl is not None and row["kl"] > cfg.max_kl:
                message, stopped = _warn(f"PPO stopped at iteration {it}: the KL to the reference reached "
                                         f"{row['kl']:.0f} nats per answer (max_kl = {cfg.max_kl:g}); the policy "
                                         "has left the SFT model far behind."), True
                break
    diagnostics = pd.DataFrame(rows, columns=list(DIAGNOSTIC_COLUMNS))
    diagnostics.attrs.update(stopped=stopped, message=message)
    return policy, diagnostics


@one_blas_thread
def reward_normalisation(policy: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
                         prompt_ids: Sequence[Sequence[int]], n: int, max_new_tokens: int, temperature: float,
                         seed: int = 0, batch_size: int = 64) -> tuple[float, float]:
    """(μ, σ) of the reward model's raw scores r(x, y) of ``n`` answers y sampled from ``policy``
    (the SFT model, before PPO) at ``temperature``, the prompts x cycled in a seeded random order.

    [Huang: reward normalisation]. The first rollout alone (16 answers) gives a noisy μ and σ;
    a few hundred samples fix the scale of r for the whole run. σ below 1e-6 is taken as 1.
    """
    rng = np.random.default_rng([seed, 1])
    order = np.resize(rng.permutation(len(prompt_ids)), n)
    scores = []
    for start in range(0, n, batch_size):
        ids = [prompt_ids[i] for i in order[start:start + batch_size]]
        tokens, plen, alen, _, _ = _sample(policy, tok, ids, max_new_tokens, temperature, rng)
        scores.append(np.asarray(reward_model.forward(tokens, plen + alen), dtype=np.float64))
        policy._cache = None
    scores = np.concatenate(scores)
    sd = float(scores.std())
    return float(scores.mean()), (sd if sd > 1e-6 else 1.0)


def _renormalise(batch: Rollout, cfg: PPOConfig, beta: float, score_norm: tuple[float, float]) -> Rollout:
    """Redo steps 5-6 of ``rollout`` with a new score normalisation (the first iteration)."""
    (batch.norm_scores, batch.rewards, batch.advantages,
     batch.returns) = _rewards_and_advantages(batch.scores, batch.ended, batch.kl, batch.values, batch.mask,
                                              batch.seq_lens - 2, cfg, beta, score_norm)
    return batch


# ============================================================================ the closed form and a mini-PPO
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


# ============================================================================ the checkpoint
def build_ppo_checkpoint(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False,
                         config: PPOConfig | None = None) -> Path:
    """Chapter 5's policy: PPO from ``sft.npz`` against ``reward.npz`` (both in ``out_dir``).

    Trains with ``DEFAULT_CONFIG`` on the RL prompts (``data.load_rl_prompts()``: two wordings of
    every case that no SFT demonstration used, never the held-out evaluation prompts) and writes the policy
    to ``out_dir / "ppo.npz"`` (a plain TinyGPT checkpoint; the value head is dropped).
    """
    from . import data
    from .reward import load_reward_model

    out_dir = Path(out_dir)
    policy = TinyGPT.load(out_dir / "sft.npz")
    ref = policy.copy()
    rm = load_reward_model(out_dir)
    _, diagnostics = train_ppo(policy, ref, rm, tok, data.load_rl_prompts(), config or DEFAULT_CONFIG,
                               progress=progress)
    path = out_dir / "ppo.npz"
    policy.save(path, storage="float16")
    save_log(diagnostics, out_dir, "ppo")
    return path


def config_dict(config: PPOConfig) -> dict:
    """The config as a plain dict (for tables and logs)."""
    return asdict(config)
