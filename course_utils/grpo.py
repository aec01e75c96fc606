"""GRPO, Group Relative Policy Optimization (chapter 8, "beyond PPO"): PPO without a critic.

Shao et al. (2024), "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", drop PPO's value head. For each prompt x they sample a *group* of G answers
y_1 .. y_G from π_old, score each with the reward model, and use the group itself as the
baseline: the advantage of answer i is its score standardised within the group,

    Â_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps),

given to every token of y_i (outcome supervision: no per-token rewards, no GAE, no γ, λ).
An answer better than its siblings is pushed up, a worse one down; a group whose answers all
score the same teaches nothing. The update is PPO's clipped surrogate, plus a KL term::

    L = ⟨max(-Â ρ_t, -Â clip(ρ_t, 1-ε, 1+ε))⟩ + β ⟨k3_t⟩,
    k3_t = π_ref(y_t)/π_θ(y_t) - 1 - log(π_ref(y_t)/π_θ(y_t))

Symbols
-------
=================  ===========================================================================
x, y_i             a prompt and the i-th answer of its group; sequences ``<bos> <q> x <a> y <eos>``
G                  the group size (``group_size``): answers sampled per prompt
π_θ, π_old, π_ref  the policy being trained, the policy that sampled the group, the SFT reference
τ                  the sampling temperature; every log-probability is log softmax(z / τ)
log π(y_t)         per-token log-probability on the target grid (position j predicts token j + 1)
m_t                the answer mask: 1 on the answer's tokens (``<eos>`` included)
r_i                the reward model's (raw) score of answer i
Â_i                its group-relative advantage (``group_advantages``), the same on every token
ρ_t                π_θ(y_t) / π_old(y_t);  ε the clip range
d_t                log π_θ(y_t) - log π_ref(y_t)
k1_t, k3_t         d_t, and e^{-d_t} - 1 + d_t (``losses.kl_penalty``): per-token KL estimates
β                  the weight of the KL term (``kl_coef``)
⟨·⟩                the mean over the minibatch's answer tokens (m_t = 1)
=================  ===========================================================================

Design choices:

* **The KL to π_ref is a k3 term in the loss, as in the GRPO paper, not a penalty in the
  reward as in ``ppo.py``.** With outcome rewards standardised per group, a per-token KL
  penalty in the reward would enter Â through the group's mean and spread: its weight would
  change with each group's reward spread, and in a group whose scores are all equal (no
  signal), the small KL differences alone would be divided by a near-zero spread and blown
  up into advantages of ±1. As a separate loss term the KL acts the same way on every token
  whatever the scores, and a group of equal scores gives exactly Â = 0. k3 is unbiased and
  never negative; its gradient with respect to log π_θ is β (1 - π_ref(y_t) / π_θ(y_t))
  (``losses.kl_penalty_backward``). A subtlety worth knowing: averaged over tokens drawn
  from π_θ itself, that gradient is the gradient of KL(π_ref ‖ π_θ), the *reverse*
  direction of the KL the reward penalty of PPO estimates; both vanish at π_θ = π_ref and
  agree to second order near it, so both hold the policy close to the reference.
* **Token-level averaging.** The loss is a mean over all answer tokens of the minibatch
  (what ``losses.ppo_clip_loss`` computes, as for PPO), not the paper's mean per answer
  then per group (1/G Σ_i 1/|y_i| Σ_t): with the per-answer mean a token of a short answer
  weighs more than one of a long answer (the length bias pointed out by Liu et al. 2025,
  "Understanding R1-Zero-like training", and avoided the same way by DAPO, Yu et al. 2025).
* **Population standard deviation** (ddof = 0) in Â, with eps = 1e-4 (TRL's default); TRL
  divides by the sample standard deviation (ddof = 1), which only rescales Â by
  √((G-1)/G). ``scale_rewards=False`` skips the division (Dr. GRPO, Liu et al. 2025).
* **No reward normalisation and no EOS trick.** Group standardisation already removes the
  reward model's offset and scale; an answer cut at ``max_new_tokens`` is scored as it is.
* **Everything else is PPO's machinery** (``ppo.py``): sampling grouped by prompt length, the
  fresh forward passes at the sampling temperature (``sample_and_score``), the minibatch
  update loop with gradient clipping and the ``target_kl`` early stop
  (``minibatch_updates``), the prompt order, the gold judge and the guards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .losses import kl_penalty, kl_penalty_backward, ppo_clip_loss, token_logprobs_backward
from .model import TinyGPT
from .optim import AdamW
from .progress import Progress
from .rl_loop import (OnPolicyConfig, PromptCycler, check_rollout_knobs, diagnostics_table, end_of_iteration,
                      judge_score, minibatch_updates, quiet_update, run_warning, sample_diagnostics, start_run,
                      warn_extreme_settings)
from .runtime import single_threaded_blas
from .sampling import RewardModelLike, Samples, policy_logprobs, sample_and_score
from .tokenizer import VocabularyTokenizer

__all__ = [
    "GRPOConfig",
    "DEFAULT_CONFIG",
    "DIAGNOSTIC_COLUMNS",
    "GroupRollout",
    "group_advantages",
    "grpo_rollout",
    "grpo_loss",
    "grpo_update",
    "train_grpo",
]


# ============================================================================ configuration
@dataclass
class GRPOConfig(OnPolicyConfig):
    """Every knob of a GRPO run; names and defaults follow ``ppo.PPOConfig`` where they mean the same.

    Groups
        iterations: rollout + update rounds.  batch_size: answers per iteration, a multiple of
        group_size: G, answers sampled per prompt (batch_size / G prompts per iteration).
        max_new_tokens, temperature: as for PPO.
    Advantages
        adv_eps: eps in Â = (r - mean) / (std + eps).  scale_rewards: divide by the group's
        standard deviation (False: only subtract the mean, as Dr. GRPO).
    Loss and updates
        kl_coef: β of the k3 term.  clip_eps: ε.  ppo_epochs, minibatch_size, lr,
        weight_decay, grad_clip, target_kl: as for PPO.
    Guards
        max_kl: stop once the mean KL(π ‖ π_ref) of an answer exceeds this many nats (None =
        never).  judge_every: gold-judge the answers every this many iterations (0 = never).
        seed: prompt order, sampling and minibatches.
    """

    kl_coef: float = 0.04
    group_size: int = 8
    adv_eps: float = 1e-4
    scale_rewards: bool = True

    def __post_init__(self) -> None:
        check_rollout_knobs(self, "group_size", "GRPO")
        if self.kl_coef < 0 or self.clip_eps < 0 or self.lr < 0 or not self.adv_eps > 0:
            raise ValueError("kl_coef, clip_eps and lr must be >= 0, adv_eps > 0")


DEFAULT_CONFIG = GRPOConfig()

DIAGNOSTIC_COLUMNS: tuple[str, ...] = (
    "iteration", "score", "judge", "score_std", "zero_std_groups", "kl", "kl_exact", "beta", "policy_loss",
    "kl_loss", "clipfrac", "approx_kl", "entropy", "length", "ended", "distinct", "grad_norm", "logprob_gap",
)


# ============================================================================ advantages
def group_advantages(scores: np.ndarray, group_size: int, eps: float = 1e-4, scale: bool = True) -> np.ndarray:
    """Â_i = (r_i - mean_g r) / (std_g r + eps) within each group of ``group_size`` consecutive scores.

    ``scores`` (B,) hold the groups one after another (answers 0..G-1 to the first prompt,
    then G..2G-1 to the second, ...). Every group's advantages have mean 0; a group whose
    scores are all equal gets exactly 0 (no signal, and no 0/0). std is the population
    standard deviation (ddof = 0); ``scale=False`` returns r_i - mean_g r. Returns (B,) float64.
    """
    r = np.asarray(scores, dtype=np.float64)
    if r.ndim != 1 or group_size < 1 or r.size % group_size:
        raise ValueError(f"scores must be a 1-D array whose length is a multiple of group_size={group_size}, "
                         f"got shape {r.shape}")
    groups = r.reshape(-1, group_size)
    adv = groups - groups.mean(axis=1, keepdims=True)
    if scale:
        adv = adv / (groups.std(axis=1, keepdims=True) + eps)
    adv[np.ptp(groups, axis=1) == 0] = 0.0                # equal scores: exactly 0 (the mean may round)
    return adv.reshape(-1)


# ============================================================================ rollouts
@dataclass
class GroupRollout(Samples):
    """One batch of groups of sampled answers and what GRPO computes from it (arrays on the target grid).

    The fields of ``sampling.Samples`` (``logprobs`` = log π_old, ``ref_logprobs`` = log π_ref,
    ``scores`` the raw reward-model scores (B,), ``entropy`` H_t and ``exact_kl`` KL_t for the
    diagnostics; ``values`` is None: GRPO has no critic) and ``advantages`` = Â_i m_t (B, T-1).
    """

    advantages: np.ndarray


def grpo_rollout(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
                 prompt_ids: Sequence[Sequence[int]], config: GRPOConfig, rng: np.random.Generator) -> GroupRollout:
    """Sample and score ``prompt_ids`` (each prompt's G copies consecutive), then Â per token.

    Steps 1-4 are PPO's (``sampling.sample_and_score``: sample at τ, one forward of π_old and
    of π_ref, the reward model's score of the whole answer); then
    Â_i = ``group_advantages`` of the scores, spread over the answer's tokens: Â_i m_t.
    """
    s = sample_and_score(policy, ref, reward_model, tok, prompt_ids, config.max_new_tokens, config.temperature,
                         rng)
    adv = group_advantages(s.scores, config.group_size, config.adv_eps, config.scale_rewards)
    return GroupRollout(**vars(s), advantages=adv[:, None] * s.mask)


# ============================================================================ the update
def grpo_loss(policy: TinyGPT, tokens: np.ndarray, mask: np.ndarray, old_logprobs: np.ndarray,
              ref_logprobs: np.ndarray, advantages: np.ndarray,
              config: GRPOConfig) -> tuple[float, dict[str, np.ndarray], dict[str, float]]:
    """The GRPO loss of one minibatch and its gradient with respect to every weight of ``policy``.

        L = ⟨max(-Â ρ, -Â clip(ρ, 1-ε, 1+ε))⟩ + β ⟨k3(log π_θ - log π_ref)⟩

    ``tokens`` (b, W) and every other array on the target grid (b, W-1). One forward pass
    gives log π_θ at temperature τ; ∂L/∂log π_θ = the clipped surrogate's gradient
    (``losses.ppo_clip_loss``) + β (m_t / N)(1 - π_ref / π_θ); ∂L/∂z follows through
    log softmax(z / τ) (``losses.token_logprobs_backward``, times 1/τ), then one backward pass.
    Returns (L, gradients keyed like ``policy.params``, statistics).
    """
    tau = config.temperature
    logp, scaled = policy_logprobs(policy, tokens, tau)                    # log π_θ(y_t), forward with the cache kept
    pg_loss, dlogp, pg_stats = ppo_clip_loss(logp, old_logprobs, advantages, config.clip_eps, mask)
    answer = mask > 0
    w = mask / max(float(mask.sum()), 1.0)                           # m_t / N
    k3 = np.where(answer, kl_penalty(logp, ref_logprobs, "k3"), 0.0)  # padding never enters, not even as 0 · inf
    kl_loss = float((w * k3).sum())
    dlogp = dlogp + config.kl_coef * np.where(answer, kl_penalty_backward(logp, ref_logprobs, w, "k3"), 0.0)
    dscaled = token_logprobs_backward(scaled, tokens[:, 1:], dlogp)
    dlogits = dscaled / np.asarray(tau, dtype=dscaled.dtype) if tau != 1.0 else dscaled
    grads = policy.backward(dlogits)
    loss = pg_loss + config.kl_coef * kl_loss
    stats = {"policy_loss": pg_loss, "kl_loss": kl_loss, "clipfrac": pg_stats["clipfrac"],
             "approx_kl": pg_stats["approx_kl"], "finite": bool(np.isfinite(logp[answer]).all())}
    return float(loss), grads, stats


def grpo_update(policy: TinyGPT, opt: AdamW, batch: GroupRollout, config: GRPOConfig,
                rng: np.random.Generator) -> dict[str, float]:
    """``ppo_epochs`` passes of minibatch steps on one rollout (PPO's loop, ``rl_loop.minibatch_updates``).

    Returns the mean ``policy_loss``, ``kl_loss`` (⟨k3⟩, without β), ``clipfrac``,
    ``approx_kl``, ``grad_norm``, and ``steps``, ``early_stop``; NaN statistics if a loss or
    gradient became non-finite.
    """

    def minibatch_loss(idx: np.ndarray, width: int):
        g = (idx, slice(0, width - 1))                               # the minibatch on the target grid
        return grpo_loss(policy, batch.tokens[idx, :width], batch.mask[g], batch.logprobs[g],
                         batch.ref_logprobs[g], batch.advantages[g], config)

    keys = ("policy_loss", "kl_loss", "clipfrac", "approx_kl", "grad_norm")
    with single_threaded_blas():
        return minibatch_updates(policy, opt, batch.seq_lens, minibatch_loss, keys, config, rng)


# ============================================================================ the loop
def _diagnostics(batch: GroupRollout, it: int, cfg: GRPOConfig, scen: Sequence[Mapping | None]) -> dict:
    """The rollout's half of a diagnostics row (the update's half is added after the update)."""
    groups = batch.scores.reshape(-1, cfg.group_size)
    seq_kl = (kl_penalty(batch.logprobs, batch.ref_logprobs, "k1") * batch.mask).sum(axis=1)
    return {
        "iteration": it,
        "score": float(batch.scores.mean()),
        "judge": judge_score(batch.answers, batch.prompt_index, scen, it, cfg.judge_every),
        "score_std": float(groups.std(axis=1).mean()),
        "zero_std_groups": float(np.mean(np.ptp(groups, axis=1) == 0)),
        "kl": float(seq_kl.mean()),
        "beta": cfg.kl_coef,
        **sample_diagnostics(batch),
    }


def train_grpo(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
               prompts: Sequence[str] | Sequence[Mapping], config: GRPOConfig | None = None, progress: bool = True,
               *, scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None = None,
               desc: str = "GRPO") -> tuple[TinyGPT, pd.DataFrame]:
    """GRPO on ``policy`` (updated in place) against ``reward_model``, KL-anchored to ``ref``.

    Arguments as for ``ppo.train_ppo`` (no value head). Each iteration draws
    batch_size / G prompts, samples G answers to each (``grpo_rollout``) and takes
    ``ppo_epochs`` passes of minibatch steps (``grpo_update``).

    Returns:
        (policy, diagnostics): one row per iteration with ``DIAGNOSTIC_COLUMNS``: mean raw
        ``score`` and gold-``judge`` score of the sampled answers, ``score_std`` (the mean
        spread of the scores within a group) and ``zero_std_groups`` (the share of groups
        whose answers all scored the same: they teach nothing), ``kl`` = mean Σ_t k1_t per
        answer (π_old vs π_ref, nats), ``kl_exact``, ``beta``, ``policy_loss``, ``kl_loss``
        (⟨k3⟩), ``clipfrac``, ``approx_kl``, ``entropy``, ``length``, ``ended``,
        ``distinct``, ``grad_norm`` and ``logprob_gap``, as for PPO.
        ``diagnostics.attrs`` holds ``stopped`` and ``message``.

    Extreme settings never crash: β = 0, ε = 0, G = 1 and very large learning rates warn up
    front; a non-finite rollout, loss, gradient or weight stops the run with a
    ``RuntimeWarning`` and the weights of the last good iteration; so does a KL to the
    reference above ``max_kl``.
    """
    cfg = config or GRPOConfig()
    scen, prompt_ids, rng = start_run(tok, prompts, scenarios, cfg.seed)
    opt = AdamW(policy.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    message = warn_extreme_settings(cfg.kl_coef, cfg.clip_eps, cfg.lr)
    if cfg.group_size == 1:
        message = run_warning("group_size = 1: every answer is its own group, every advantage is 0 and nothing is "
                              "learned (only the KL term pulls towards the reference).")
    cycler = PromptCycler(len(prompt_ids), rng)
    rows, stopped = [], False
    with Progress(cfg.iterations, desc, display=None if progress else False) as bar, single_threaded_blas():
        for it in range(1, cfg.iterations + 1):
            index = np.repeat(cycler.next(cfg.batch_size // cfg.group_size), cfg.group_size)
            snapshot = {k: a.copy() for k, a in policy.params.items()}      # the last good weights
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                batch = grpo_rollout(policy, ref, reward_model, tok, [prompt_ids[i] for i in index], cfg, rng)
            batch.prompt_index = index
            row = _diagnostics(batch, it, cfg, scen)
            if not all(np.isfinite(x).all() for x in (batch.logprobs, batch.ref_logprobs, batch.scores)):
                message, stopped = run_warning(f"GRPO stopped at iteration {it}: the rollout produced non-finite "
                                               "log-probabilities or scores."), True
                rows.append(row)
                break
            upd = quiet_update(grpo_update, policy, opt, batch, cfg, rng)
            row.update({k: upd[k] for k in ("policy_loss", "kl_loss", "clipfrac", "approx_kl", "grad_norm")})
            rows.append(row)
            stop = end_of_iteration("GRPO", it, row, upd, policy.params, snapshot, cfg, bar)
            if stop:
                message, stopped = stop, True
                break
    return policy, diagnostics_table(rows, DIAGNOSTIC_COLUMNS, stopped, message)
