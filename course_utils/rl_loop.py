"""The training loop's shared parts: what PPO (``ppo.py``) and GRPO (``grpo.py``) both do around their losses.

Checking the sampling and update settings, walking through the prompts in a shuffled order,
the minibatch update epochs (AdamW with a global gradient-norm clip and an optional early stop
on the approximate KL), the gold judge's score of the sampled answers, and the warnings that
extreme settings get. The losses themselves, and what a rollout computes, stay in each method's
own module.

Symbols
-------
=================  ===========================================================================
π_θ, π_old         the policy being updated and the policy that sampled the rollout
B, b               answers in a rollout and in one minibatch
approx KL          the mean of ½ (log π_θ - log π_old)² over the minibatch's answer tokens
                   (``losses.ppo_clip_loss``), the early-stop criterion (``target_kl``)
=================  ===========================================================================
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import data, runtime
from .judge import judge_answer
from .losses import masked_mean
from .model import TinyGPT
from .optim import AdamW, clip_grad_norm
from .training import encode_sft

__all__ = [
    "OnPolicyConfig",
    "check_rollout_knobs",
    "minibatch_updates",
    "prompt_items",
    "run_warning",
    "warn_extreme_settings",
    "PromptCycler",
    "judge_score",
    "params_finite",
    "quiet_update",
    "restore_if_broken",
    "kl_limit_reached",
    "sample_diagnostics",
    "start_run",
    "end_of_iteration",
    "diagnostics_table",
]


@dataclass
class OnPolicyConfig:
    """The knobs of a run that samples answers and updates the policy on them, as PPO and GRPO both do.

    Same names and meanings in ``ppo.PPOConfig`` and ``grpo.GRPOConfig``, which add their own.
    """

    iterations: int = 60            # rollout + update rounds
    batch_size: int = 16            # answers sampled per iteration
    max_new_tokens: int = 112       # longest answer, <eos> included
    temperature: float = 1.0        # τ of sampling and of every log-probability
    kl_coef: float = 0.05           # β, the weight of the per-token KL penalty to π_ref
    clip_eps: float = 0.2           # ε of the clipped ratio
    ppo_epochs: int = 2             # passes over each rollout
    minibatch_size: int = 16        # answers per gradient step
    lr: float = 1.5e-4              # AdamW learning rate
    weight_decay: float = 0.0       # AdamW decoupled weight decay
    grad_clip: float = 1.0          # global gradient-norm clip (0 = none)
    target_kl: float | None = None  # stop an iteration's epochs once approx KL(π_old ‖ π_θ) exceeds it (None = never)
    max_kl: float | None = 100.0    # stop the run once an answer's mean KL(π ‖ π_ref) exceeds this, nats (None = never)
    judge_every: int = 1            # gold-judge the sampled answers every this many iterations (0 = never)
    seed: int = 0                   # prompt order, sampling and minibatches


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


def minibatch_updates(policy: TinyGPT, opt: AdamW, seq_lens: np.ndarray, minibatch_loss, keys: Sequence[str],
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


def prompt_items(prompts: Sequence[str] | Sequence[Mapping], scenarios) -> tuple[list[str], list[dict | None]]:
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
                scenarios = data.load_scenarios()
            lookup = scenarios if isinstance(scenarios, Mapping) else {s["id"]: s for s in scenarios}
        scen.append(lookup[sid])
    return texts, scen


def start_run(tok, prompts: Sequence[str] | Sequence[Mapping], scenarios,
              seed: int) -> tuple[list[dict | None], list[list[int]], np.random.Generator]:
    """What a PPO or a GRPO run does first: set the process up for a training loop (``runtime.configure``),
    read the prompts (:func:`prompt_items`; ValueError if there are none) and encode them as SFT
    prompts. Returns (the scenario of each prompt or None, the prompts' token ids, the run's generator
    seeded by ``seed``)."""
    runtime.configure()                   # glibc keeps the freed temporaries of each iteration (runtime.py)
    texts, scen = prompt_items(prompts, scenarios)
    if not texts:
        raise ValueError("no prompts to train on")
    return scen, [encode_sft(tok, t)[0] for t in texts], np.random.default_rng(seed)


def diagnostics_table(rows: Sequence[Mapping], columns: Sequence[str], stopped: bool, message: str) -> pd.DataFrame:
    """A run's diagnostics: one row per iteration, ``attrs`` holding ``stopped`` and ``message``."""
    table = pd.DataFrame(list(rows), columns=list(columns))
    table.attrs.update(stopped=stopped, message=message)
    return table


def run_warning(msg: str, stacklevel: int = 3) -> str:
    warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
    return msg


def warn_extreme_settings(beta: float, clip_eps: float, lr: float) -> str:
    """The up-front warnings of ``train_ppo`` and ``grpo.train_grpo``; returns the last message ("" if none)."""
    message = ""
    if beta == 0:
        message = run_warning("β = 0: nothing pulls the policy back to the SFT reference. Expect the reward "
                              "to be exploited: KL grows without bound and the answers collapse onto one pattern.", 4)
    if clip_eps == 0:
        message = run_warning("ε = 0: the clipped objective cuts the gradient of every token as soon as its "
                              "ratio moves in the direction its advantage favours, so the policy can hardly "
                              "improve.", 4)
    if lr > 1e-2:
        message = run_warning(f"lr = {lr:g} is far above what fine-tuning a pretrained model tolerates "
                              "(1e-5 .. 1e-3): expect the policy to break down.", 4)
    return message


class PromptCycler:
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


def judge_score(answers: Sequence[str], index: np.ndarray, scen: Sequence[Mapping | None], it: int,
                 judge_every: int) -> float:
    """Mean gold-judge overall score of the answers on judged iterations (every ``judge_every``), else NaN."""
    if judge_every and (it - 1) % judge_every == 0 and all(scen[i] is not None for i in index):
        return float(np.mean([judge_answer(a, scen[i]).overall for a, i in zip(answers, index)]))
    return math.nan


def params_finite(params: Mapping[str, np.ndarray]) -> bool:
    return all(np.isfinite(a).all() for a in params.values())


def quiet_update(update: Callable[..., dict[str, float]], *args) -> dict[str, float]:
    """``update(*args)`` with numpy's overflow warnings and AdamW's skipped-step warning silenced:
    the loop reports a broken update itself (:func:`restore_if_broken`)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return update(*args)


def restore_if_broken(method: str, it: int, upd: Mapping[str, float], params: Mapping[str, np.ndarray],
                      snapshot: Mapping[str, np.ndarray], ppo_epochs: int) -> str | None:
    """After an iteration's update: if no step was taken, the loss or a weight is not finite, put the
    weights of ``snapshot`` (the last good iteration) back and return the warning; else None."""
    if not ppo_epochs or (upd["steps"] and math.isfinite(upd["policy_loss"]) and params_finite(params)):
        return None
    for k, a in params.items():
        a[...] = snapshot[k]
    return run_warning(f"{method} stopped at iteration {it}: a loss, gradient or weight became infinite or NaN "
                       "(the learning rate is probably too large). The weights of the last good iteration are "
                       "kept.", 5)


def kl_limit_reached(method: str, it: int, kl: float, max_kl: float | None) -> str | None:
    """The warning that stops a run whose KL to the reference exceeds ``max_kl`` nats per answer; else None."""
    if max_kl is None or not kl > max_kl:
        return None
    return run_warning(f"{method} stopped at iteration {it}: the KL to the reference reached {kl:.0f} nats per "
                       f"answer (max_kl = {max_kl:g}); the policy has left the SFT model far behind.", 5)


def end_of_iteration(method: str, it: int, row: Mapping[str, float], upd: Mapping[str, float],
                     params: Mapping[str, np.ndarray], snapshot: Mapping[str, np.ndarray], config, bar,
                     kl_update: Callable[[float, int], None] | None = None) -> str | None:
    """What the PPO and GRPO loops do after an iteration's update, in order: put ``snapshot`` back if the
    update broke the weights (:func:`restore_if_broken`), pass the iteration's KL to ``kl_update`` (PPO's
    KL controller), move the progress ``bar``, and check the KL limit (:func:`kl_limit_reached`).
    Returns the warning that stops the run, or None to go on."""
    stop = restore_if_broken(method, it, upd, params, snapshot, config.ppo_epochs)
    if stop:
        return stop
    if kl_update is not None:
        kl_update(row["kl"], config.batch_size)          # Ziegler et al.: n_steps = batch size
    bar.update(score=row["score"], kl=row["kl"])
    return kl_limit_reached(method, it, row["kl"], config.max_kl)


def sample_diagnostics(batch) -> dict[str, float]:
    """What a PPO and a GRPO diagnostics row both report about the sampled answers (a ``sampling.Samples``):
    ``kl_exact`` Σ_t KL_t per answer, mean per-token ``entropy``, answer ``length`` in tokens, the share
    that ``ended`` with ``<eos>``, the share of ``distinct`` answers and the ``logprob_gap`` check."""
    return {
        "kl_exact": float(batch.exact_kl.sum(axis=1).mean()),
        "entropy": masked_mean(batch.entropy, batch.mask),
        "length": float(batch.answer_lens.mean()),
        "ended": float(batch.ended.mean()),
        "distinct": len(set(batch.answers)) / len(batch.answers),
        "logprob_gap": batch.logprob_gap,
    }
