"""RLHF with PPO: rollouts, rewards and advantages, the clipped update and the PPO loop.

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
    r_L = -β k(L) + r(x, y)                  (the reward model's score of the whole sequence)

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
  (log softmax(z / τ)), never from other settings (see ``policy_logprobs`` for why).
* **The value head is dropped from ``ppo.npz``.** Later chapters only need the policy, a
  plain TinyGPT that ``checkpoints.load("ppo")`` reads; the value head matters only to
  continue PPO training (pass your own ``ValueHead`` to ``train_ppo`` to keep it).

Three pieces live in their own modules and are re-exported here: the β controllers
(``kl_control``), the value head (``value_head``) and the reward normalisation (``sampling``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import data
from .advantages import gae, whiten
from .bandit import bandit_ppo, kl_optimal_policy  # noqa: F401  (re-exported: chapter 5 imports them here)
from .kl_control import AdaptiveKLController, FixedKLController
from .losses import (entropy, entropy_backward, kl_penalty, ppo_clip_loss, token_logprobs_backward,
                     value_loss)
from .model import TinyGPT
from .optim import AdamW
from .paths import save_log
from .progress import Progress
from .ptx import SFTAnchor
from .reward import load_reward_model
from .rl_loop import (OnPolicyConfig, PromptCycler, check_rollout_knobs, diagnostics_table, end_of_iteration,
                      judge_score, minibatch_updates, quiet_update, run_warning, sample_diagnostics, start_run,
                      warn_extreme_settings)
from .runtime import one_blas_thread, single_threaded_blas  # single_threaded_blas: re-exported (public here)
from .sampling import (  # noqa: F401  (answer_logprobs, sample_answers, reward_normalisation: re-exported)
    RewardModelLike,
    Samples,
    answer_logprobs,
    policy_logprobs,
    reward_normalisation,
    sample_and_score,
    sample_answers,
)
from .tokenizer import VocabularyTokenizer
from .value_head import ValueHead

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


# ============================================================================ configuration

@dataclass
class PPOConfig(OnPolicyConfig):
    """Every knob of a PPO run (the chapter-5 parameters cell mirrors the defaults); the shared ones
    come first (``rl_loop.OnPolicyConfig``).

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

    kl_coef: float = 0.1            # β, twice rl_loop's 0.05: measured (benchmarks/ppo_settings_results.jsonl)
    iterations: int = 120           # twice rl_loop's 60, at half its learning rate: measured (the same file)
    lr: float = 7.5e-5              # AdamW learning rate
    samples_per_prompt: int = 8
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
    value_clip_eps: float | None = 0.2
    vf_coef: float = 0.1
    ent_coef: float = 0.0
    ptx_coef: float = 0.0           # γ of the SFT anchor (ptx.SFTAnchor; 0 = none)
    ptx_batch: int = 16             # demonstrations per minibatch step for the anchor

    def __post_init__(self) -> None:
        check_rollout_knobs(self, "samples_per_prompt", "PPO")
        if self.kl_coef < 0 or self.clip_eps < 0 or self.lr < 0:
            raise ValueError("kl_coef, clip_eps and lr must be >= 0")
        if self.kl_estimator not in ("k1", "k2", "k3"):
            raise ValueError(f"kl_estimator must be 'k1', 'k2' or 'k3', got {self.kl_estimator!r}")
        if not (0.0 <= self.gamma <= 1.0 and 0.0 <= self.lam <= 1.0):
            raise ValueError("gamma and lam must lie in [0, 1]")


DEFAULT_CONFIG = PPOConfig()


# ============================================================================ rollouts
@dataclass
class Rollout(Samples):
    """One batch of sampled answers and everything PPO computes from it (arrays on the target grid).

    The fields of ``sampling.Samples`` (``tokens`` (B, T) right-padded ``<bos> <q> x <a> y [<eos>]``,
    ``mask`` m, ``logprobs`` = log π_old, ``ref_logprobs`` = log π_ref, ``values`` = V_old, the raw
    reward-model ``scores`` ...) and what PPO adds: ``kl`` = k_t (masked), the normalised scores
    ``norm_scores``, ``rewards`` = r_t, ``advantages`` (whitened if configured) and ``returns`` R_t.
    """

    kl: np.ndarray
    norm_scores: np.ndarray
    rewards: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray



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


@one_blas_thread
def rollout(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, value_head: ValueHead,
            tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], config: PPOConfig, beta: float,
            rng: np.random.Generator, score_norm: tuple[float, float] = (0.0, 1.0),
            timings: dict[str, float] | None = None) -> Rollout:
    """Sample answers, score them, and compute rewards, advantages and returns (no update).

    1. sample y ~ π_old(· | x) at temperature τ with the KV cache (``generate``);
    2. one forward of π_old on the full sequences: log π_old(y_t) and V_old(t) (value head);
    3. one forward of π_ref: log π_ref(y_t); k_t = kl_penalty(log π_old, log π_ref, estimator);
    4. the reward model's score of the whole sequence
       [Huang: reward at the EOS token];
    5. r_t = -β k_t, plus the (normalised) score at the last answer token;
    6. GAE (γ, λ) → A_t and R_t; whiten A over the batch's answer tokens.
    ``score_norm`` = (μ, σ): the normalised score is (score - μ) / σ. ``timings``, if given,
    receives the seconds spent in ``generation`` (step 1) and ``scoring`` (steps 2-6).
    Steps 1-4 are ``sample_and_score``, which GRPO's rollout shares.
    """
    t0 = time.perf_counter()
    own_timings: dict[str, float] = {}
    s = sample_and_score(policy, ref, reward_model, tok, prompt_ids, config.max_new_tokens, config.temperature,
                          rng, value_head, own_timings)
    last = s.prompt_lens + s.answer_lens - 2                 # target index of the last answer token
    kl = kl_penalty(s.logprobs, s.ref_logprobs, config.kl_estimator) * s.mask      # k_t on answer tokens
    norm_scores, rewards, advantages, returns = _rewards_and_advantages(s.scores, s.ended, kl, s.values, s.mask,
                                                                        last, config, beta, score_norm)
    if timings is not None:
        timings["generation"] = own_timings["generation"]
        timings["scoring"] = time.perf_counter() - t0 - own_timings["generation"]
    return Rollout(**vars(s), kl=kl, norm_scores=norm_scores, rewards=rewards, advantages=advantages,
                   returns=returns)


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
    logp, scaled = policy_logprobs(policy, tokens, tau)                    # log π_θ(y_t), forward with the cache kept
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
               rng: np.random.Generator, anchor: SFTAnchor | None = None) -> dict[str, float]:
    """``ppo_epochs`` passes of minibatch gradient steps on one rollout; returns mean statistics.

    Per minibatch: ``ppo_loss`` (forward, clipped surrogate, clipped value loss, optional
    entropy bonus, backward), the global gradient-norm clip, one AdamW step. Returns NaN
    statistics if a loss or gradient became non-finite (the caller stops the run);
    ``steps`` counts the steps taken, ``early_stop`` whether ``target_kl`` ended the epochs.
    """

    def minibatch_loss(idx: np.ndarray, width: int):
        g = (idx, slice(0, width - 1))                               # the minibatch on the target grid
        loss, grads, stats = ppo_loss(policy, value_head, batch.tokens[idx, :width], batch.mask[g],
                                      batch.logprobs[g], batch.advantages[g], batch.returns[g], batch.values[g],
                                      config)
        if anchor is not None:                                       # + γ L_SFT on fresh demonstrations
            ptx, ptx_grads = anchor.loss_and_grads(policy)
            loss += ptx
            for k, gk in ptx_grads.items():
                grads[k] += gk
        return loss, grads, stats

    keys = ("policy_loss", "value_loss", "clipfrac", "approx_kl", "grad_norm")
    return minibatch_updates(policy, opt, batch.seq_lens, minibatch_loss, keys, config, rng)


DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "iteration", "score", "judge", "reward", "kl", "kl_exact", "beta", "policy_loss", "value_loss", "clipfrac",
    "approx_kl", "entropy", "length", "ended", "distinct", "grad_norm", "logprob_gap",
)


def _diagnostics(batch: Rollout, it: int, cfg: PPOConfig, beta: float, scen: Sequence[Mapping | None]) -> dict:
    """One row of ``train_ppo``'s diagnostics, before the update (see ``DIAGNOSTIC_COLUMNS``)."""
    seq_kl = (batch.kl if cfg.kl_estimator == "k1" else
              kl_penalty(batch.logprobs, batch.ref_logprobs, "k1") * batch.mask).sum(axis=1)
    return {
        "iteration": it,
        "score": float(batch.scores.mean()),
        "judge": judge_score(batch.answers, batch.prompt_index, scen, it, cfg.judge_every),
        "reward": float(batch.rewards.sum(axis=1).mean()),
        "kl": float(seq_kl.mean()),
        "beta": beta,
        **sample_diagnostics(batch),
    }


def _first_rollout(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, value_head: ValueHead,
                   tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], cfg: PPOConfig, beta: float,
                   rng: np.random.Generator) -> tuple[Rollout, tuple[float, float]]:
    """The first rollout when ``norm_samples`` = 0: its own scores give (μ, σ) of the normalisation."""
    batch = rollout(policy, ref, reward_model, value_head, tok, prompt_ids, cfg, beta, rng, (0.0, 1.0))
    sd = float(batch.scores.std())
    score_norm = (float(batch.scores.mean()), sd if sd > 1e-6 else 1.0)
    return _renormalise(batch, cfg, beta, score_norm), score_norm


def train_ppo(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
              prompts: Sequence[str] | Sequence[Mapping], config: PPOConfig | None = None, progress: bool = True,
              *, scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None = None,
              value_head: ValueHead | None = None, desc: str = "PPO",
              score_norm: tuple[float, float] | None = None,
              demos: Sequence[Mapping] | None = None) -> tuple[TinyGPT, pd.DataFrame]:
    """RLHF: PPO on ``policy`` (updated in place) against ``reward_model``, KL-anchored to ``ref``.

    ``score_norm`` = (μ, σ), if given, is used as the reward normalisation instead of measuring
    it (``reward_normalisation``; several runs from the same SFT model can share one).

    Args:
        policy: the SFT model to fine-tune (its weights change).  ref: the frozen reference
            (never changed; pass ``policy.copy()`` made before training).
        reward_model: anything with ``forward(tokens, lengths) -> rewards (B,)`` of whole
            right-padded sequences (``reward.RewardModel``).
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
    cfg = config or PPOConfig()
    scen, prompt_ids, rng = start_run(tok, prompts, scenarios, cfg.seed)
    value_head = value_head or ValueHead(policy.config.d_model, policy.dtype)
    params = {**policy.params, **value_head.params}               # one optimiser for both heads and the trunk
    opt = AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    kl_ctl = (AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon) if cfg.adaptive_kl
              else FixedKLController(cfg.kl_coef))

    message = warn_extreme_settings(cfg.kl_coef, cfg.clip_eps, cfg.lr)

    anchor = (SFTAnchor(tok, data.load_sft() if demos is None else demos, cfg.ptx_coef, cfg.ptx_batch, cfg.seed)
              if cfg.ptx_coef > 0 else None)
    n_prompts = cfg.batch_size // cfg.samples_per_prompt
    cycler = PromptCycler(len(prompt_ids), rng)
    score_norm = _score_normalisation(cfg, score_norm, policy, reward_model, tok, prompt_ids)
    rows, stopped = [], False
    with Progress(cfg.iterations, desc, display=None if progress else False) as bar, single_threaded_blas():
        for it in range(1, cfg.iterations + 1):
            index = np.repeat(cycler.next(n_prompts), cfg.samples_per_prompt)
            snapshot = {k: a.copy() for k, a in params.items()}      # the last good weights
            beta = kl_ctl.value
            prompts_it = [prompt_ids[i] for i in index]
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                if score_norm is None:                   # [Huang: reward normalisation] on the SFT policy's samples
                    batch, score_norm = _first_rollout(policy, ref, reward_model, value_head, tok, prompts_it, cfg,
                                                       beta, rng)
                else:
                    batch = rollout(policy, ref, reward_model, value_head, tok, prompts_it, cfg, beta, rng, score_norm)
            batch.prompt_index = index
            row = _diagnostics(batch, it, cfg, beta, scen)
            if not all(np.isfinite(x).all() for x in (batch.logprobs, batch.ref_logprobs, batch.values, batch.scores,
                                                      batch.advantages)):
                message, stopped = run_warning(f"PPO stopped at iteration {it}: the rollout produced non-finite "
                                               "log-probabilities, values or rewards."), True
                rows.append(row)
                break
            upd = quiet_update(ppo_update, policy, value_head, opt, batch, cfg, rng, anchor)
            row.update({k: upd[k] for k in ("policy_loss", "value_loss", "clipfrac", "approx_kl", "grad_norm")})
            rows.append(row)
            stop = end_of_iteration("PPO", it, row, upd, params, snapshot, cfg, bar, kl_ctl.update)
            if stop:
                message, stopped = stop, True
                break
    return policy, diagnostics_table(rows, DIAGNOSTIC_COLUMNS, stopped, message)


def _score_normalisation(cfg: PPOConfig, given: tuple[float, float] | None, policy: TinyGPT,
                         reward_model: RewardModelLike, tok: VocabularyTokenizer,
                         prompt_ids: Sequence[Sequence[int]]) -> tuple[float, float] | None:
    """The run's (μ, σ): (0, 1) without ``normalize_reward``; else ``given`` if set, else measured on
    ``norm_samples`` SFT answers (:func:`reward_normalisation`), or None to take it from the first rollout."""
    if not cfg.normalize_reward:
        return 0.0, 1.0
    if given is None and cfg.norm_samples > 0:
        return reward_normalisation(policy, reward_model, tok, prompt_ids, cfg.norm_samples, cfg.max_new_tokens,
                                    cfg.temperature, cfg.seed)
    return given


def _renormalise(batch: Rollout, cfg: PPOConfig, beta: float, score_norm: tuple[float, float]) -> Rollout:
    """Redo steps 5-6 of ``rollout`` with a new score normalisation (the first iteration)."""
    (batch.norm_scores, batch.rewards, batch.advantages,
     batch.returns) = _rewards_and_advantages(batch.scores, batch.ended, batch.kl, batch.values, batch.mask,
                                              batch.seq_lens - 2, cfg, beta, score_norm)
    return batch


# ============================================================================ the checkpoint
def build_ppo_checkpoint(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False,
                         config: PPOConfig | None = None) -> Path:
    """Chapter 5's policy: PPO from ``sft.npz`` against ``reward.npz`` (both in ``out_dir``).

    Trains with ``DEFAULT_CONFIG`` on the RL prompts (``data.load_rl_prompts()``: two wordings of
    every case that no SFT demonstration used, never the held-out evaluation prompts) and writes the policy
    to ``out_dir / "ppo.npz"`` (a plain TinyGPT checkpoint; the value head is dropped).
    """
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
