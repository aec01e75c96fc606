"""The chapter-6 experiments: four challenges of RLHF, each measured on the course's own models.

Four standard challenges of RLHF (reward hacking, annotation quality, distribution shift,
scalability; Casper et al. 2023 survey these and the method's other open problems), each with a
severity and a "mitigation effectiveness" that are *measured*: each challenge is an experiment
on the chapter-2 SFT policy, the chapter-3 reward model and the chapter-5 PPO loop, and each
mitigation is run and compared with the unmitigated case on held-out data. One function per
experiment returns tidy ``pandas`` tables; small settings make them fast enough for the tests,
the chapter's settings (the dataclass defaults) are what :func:`build_experiments_cache` runs
once and stores in ``experiments.npz`` so that the notebook only loads and plots.

Educational material, not medical advice.

Symbols
-------
=====================  ======================================================================
π_sft, π_ref           the SFT policy (chapter 2); a frozen copy is PPO's reference π_ref
π_θ                    the PPO policy being trained
r_φ                    the learned reward model (chapter 3): the *proxy* PPO maximises
J                      the gold judge's ``overall`` score in [0, 1] (``judge.judge_answer``): the
                       *gold* reward, which PPO never sees
KL                     KL(π_θ ‖ π_ref) per answer in nats, estimated on samples y ~ π_θ as
                       Σ_t [log π_θ(y_t) - log π_ref(y_t)] (unbiased; k1 of ``losses.kl_penalty``)
d                      √KL, the distance Gao et al. (2022) plot rewards against
R(d)                   the gold (or proxy) gain over the SFT policy at distance d
a, b                   the Gao et al. (2022) RL form R(d) = d (a - b log d), fitted by least
                       squares; it peaks at d* = exp(a/b - 1) with R(d*) = b d*
β                      the KL coefficient of PPO
g_sft, g_best,         gold score (mean J on the held-out evaluation prompts) of the SFT policy,
g_hacked, g_M          of the best checkpoint of the hacked run, at the end of the hacked run,
                       and of the policy a mitigation M produced
E                      mitigation effectiveness, the share of the lost quality M recovers:
                       E = (q_M - q_bad) / (q_good - q_bad)  (:func:`effectiveness`)
p                      the extra label-flip rate of the simulated annotators
ε                      label smoothing of the conservative Bradley-Terry loss
Δ                      r_c - r_r - m, the reward margin of a preference pair
σ(u)                   the logistic function 1 / (1 + e^{-u})
L_ε                    -(1-ε) log σ(Δ) - ε log σ(-Δ), averaged over pairs (:func:`conservative_bt_loss`)
acc                    reward-model accuracy: share of held-out pairs with r_c > r_r (dataset labels)
agree                  share of decisive policy-sample pairs (|ΔJ| ≥ gap) that r_φ orders like J
N, D, V                parameters, model width d_model, vocabulary size
C                      training compute ≈ 6 N per token (forward 2N + backward 4N; Kaplan et al. 2020)
=====================  ======================================================================

Effectiveness, defined once for every challenge (:func:`effectiveness`)::

    E = (q_M - q_bad) / (q_good - q_bad)

q is the challenge's quality measure (gold score, reward-model accuracy, agreement with the
gold judge), q_good its value without the problem, q_bad with the problem and no mitigation,
q_M with the problem and mitigation M. E = 1: M recovers everything the problem cost; E = 0:
nothing; E > 1: M beats the problem-free reference; E < 0: M makes things worse. E is
undefined (NaN) when the problem cost nothing (q_good ≤ q_bad). Every E comes with a
bootstrap 95% interval over the held-out prompts or pairs, because q_good - q_bad is a small
difference of noisy means.

Public API: the experiments :func:`reward_hacking_experiment`, :func:`annotation_experiment`,
:func:`distribution_shift_experiment`, :func:`scalability_experiment`, :func:`summary_table`;
their settings :class:`HackingSettings`, :class:`NoiseSettings`, :class:`ShiftSettings`,
:class:`ScaleSettings`; the pieces :func:`effectiveness`, :func:`fit_gao`, :func:`gao_curve`,
:func:`conservative_bt_loss`, :func:`train_reward_model_smoothed`, :func:`noisy_labels`,
:func:`evaluate_policy`, :func:`run_ppo_checkpointed`, :class:`EnsembleReward`,
:func:`measure_ppo_cost` (timings, never cached), :func:`run_all` (every experiment at
:data:`CHAPTER_SETTINGS`); the cache :func:`build_experiments_cache`,
:func:`save_tables`, :func:`load_tables`, :func:`load_results`.
"""

from __future__ import annotations

import math
import re
import sys
import time
import tracemalloc
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .losses import token_logprobs
from .model import GPTConfig, TinyGPT
from .optim import AdamW, clip_grad_norm, lr_schedule
from .paths import CHECKPOINT_DIR
from .progress import Progress
from .tokenizer import VocabularyTokenizer
from .training import History, encode_sft

__all__ = [
    "CHALLENGES",
    "SEVERITY_RULE",
    "HackingSettings",
    "NoiseSettings",
    "ShiftSettings",
    "ScaleSettings",
    "PPORun",
    "EnsembleReward",
    "CHAPTER_SETTINGS",
    "ChapterSettings",
    "NOISE_METHODS",
    "effectiveness",
    "fit_gao",
    "gao_curve",
    "gao_peak",
    "repetition",
    "hacking_ppo_config",
    "split_rl_prompts",
    "ppo_state_bytes",
    "run_all",
    "conservative_bt_loss",
    "train_reward_model_smoothed",
    "noisy_labels",
    "evaluate_policy",
    "run_ppo_checkpointed",
    "reward_hacking_experiment",
    "annotation_experiment",
    "distribution_shift_experiment",
    "scalability_experiment",
    "measure_ppo_cost",
    "severity",
    "summary_table",
    "build_experiments_cache",
    "save_tables",
    "load_tables",
    "load_results",
]

CACHE_FILE = "experiments.npz"
CACHE_FORMAT = "experiments-npz-1"

#: The four challenges of chapter 6, in the order of the chapter and of :func:`summary_table`.
CHALLENGES: tuple[str, ...] = ("reward hacking", "annotation quality", "distribution shift", "scalability")

#: How a measured effect size (the share of a stage's achievement the unmitigated problem
#: destroys, see :func:`summary_table`) becomes a severity: the first threshold it reaches.
SEVERITY_RULE: tuple[tuple[float, str], ...] = ((0.75, "critical"), (0.40, "high"), (0.15, "medium"), (0.0, "low"))


# ============================================================================ small pieces
def effectiveness(q_mitigated, q_bad, q_good, tol: float = 1e-12):
    """E = (q_M - q_bad) / (q_good - q_bad): the share of the lost quality a mitigation recovers.

    ``q_good``: the quality without the problem (e.g. the best gold score before the policy
    over-optimised); ``q_bad``: with the problem and no mitigation; ``q_mitigated``: with the
    problem and the mitigation. Works on floats or arrays (element-wise). Returns NaN where
    nothing was lost (q_good - q_bad ≤ ``tol``): a mitigation cannot recover a loss that did
    not happen. Not clipped: E > 1 means the mitigation did better than the problem-free
    reference, E < 0 that it did worse than no mitigation.
    """
    qm, qb, qg = (np.asarray(x, dtype=np.float64) for x in (q_mitigated, q_bad, q_good))
    lost = qg - qb
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(lost > tol, (qm - qb) / np.where(lost > tol, lost, 1.0), np.nan)
    return float(e) if e.ndim == 0 else e


def gao_curve(d, a: float, b: float) -> np.ndarray:
    """R(d) = d (a - b log d), with R(0) = 0 (the limit d log d → 0)."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        dlogd = np.where(d > 0, d * np.log(np.where(d > 0, d, 1.0)), 0.0)
    return a * d - b * dlogd


def fit_gao(d, r) -> tuple[float, float]:
    """Least-squares (a, b) of R(d) = d (a - b log d) (Gao et al. 2022, the RL form).

    R is linear in (a, b): R = a·d - b·(d log d), so the fit is ordinary least squares on
    the two columns [d, -d log d] (points at d = 0 carry no information: R(0) = 0 whatever
    a and b). ``r`` is the gain over the starting policy (e.g. gold - g_sft). With b > 0 the
    curve rises, peaks at d* = exp(a/b - 1) with R(d*) = b·d*, then falls: over-optimisation.
    Raises ``ValueError`` with fewer than two points at d > 0.
    """
    d = np.asarray(d, dtype=np.float64).reshape(-1)
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    if d.shape != r.shape:
        raise ValueError(f"d has {d.size} points but r has {r.size}")
    if np.any(d < 0) or not np.all(np.isfinite(d)) or not np.all(np.isfinite(r)):
        raise ValueError("d must be finite and >= 0, r finite")
    keep = d > 0
    if keep.sum() < 2:
        raise ValueError("the Gao fit needs at least two points with d > 0")
    X = np.stack([d[keep], -d[keep] * np.log(d[keep])], axis=1)
    (a, b), *_ = np.linalg.lstsq(X, r[keep], rcond=None)
    return float(a), float(b)


def gao_peak(a: float, b: float) -> tuple[float, float]:
    """(d*, R(d*)) of R(d) = d (a - b log d): d* = exp(a/b - 1), R(d*) = b d* when b > 0;
    (inf, inf) when the curve never turns down (b ≤ 0) or turns beyond any float."""
    if b <= 0 or a / b - 1.0 > 700.0:                  # no turn, or one far beyond any float
        return math.inf, math.inf
    d_star = math.exp(a / b - 1.0)
    return d_star, b * d_star


def conservative_bt_loss(r_chosen, r_rejected, eps: float = 0.0,
                         margin: float | np.ndarray = 0.0) -> tuple[float, np.ndarray, np.ndarray]:
    """Conservative (label-smoothed) Bradley-Terry loss and its gradients.

        L_ε = 1/n Σ_i [ -(1-ε) log σ(Δ_i) - ε log σ(-Δ_i) ],   Δ_i = r_c,i - r_r,i - m_i

    It is the Bradley-Terry loss against the soft target "the label is right with probability
    1 - ε": if a share ε of the labels is flipped at random, the expected BT loss over the
    noise has exactly this form. Its minimum in Δ is at σ(Δ) = 1 - ε, i.e. Δ* = log((1-ε)/ε):
    the model is never pushed to infinite confidence, so a wrong label cannot drag a pair's
    margin without bound (ε = 0 gives ``losses.bradley_terry_loss``).

        ∂L/∂Δ_i = (σ(Δ_i) - (1 - ε)) / n,   ∂L/∂r_c = ∂L/∂Δ,   ∂L/∂r_r = -∂L/∂Δ

    Written with logaddexp, it is finite for any Δ. Returns (loss, d_chosen, d_rejected).
    """
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"eps must lie in [0, 0.5), got {eps}")
    rc = np.asarray(r_chosen, dtype=np.float64)
    rr = np.asarray(r_rejected, dtype=np.float64)
    if rc.shape != rr.shape:
        raise ValueError(f"r_chosen {rc.shape} and r_rejected {rr.shape} must have the same shape")
    delta = rc - rr - np.asarray(margin, dtype=np.float64)
    n = max(delta.size, 1)
    # -log σ(Δ) = log(1 + e^{-Δ}),  -log σ(-Δ) = log(1 + e^{Δ})
    loss = float(np.sum((1.0 - eps) * np.logaddexp(0.0, -delta) + eps * np.logaddexp(0.0, delta)) / n)
    sig_pos = np.exp(-np.logaddexp(0.0, -delta))                   # σ(Δ), stable both ways
    sig_neg = np.exp(-np.logaddexp(0.0, delta))                    # σ(-Δ) = 1 - σ(Δ) without cancellation
    d_delta = (eps * sig_pos - (1.0 - eps) * sig_neg) / n          # = (σ(Δ) - (1 - ε)) / n
    return loss, d_delta, -d_delta


def train_reward_model_smoothed(rm, tok: VocabularyTokenizer, pairs: Sequence[Mapping], eps: float = 0.1,
                                epochs: int = 2, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                                warmup: int = 4, min_lr_ratio: float = 0.1, grad_clip: float = 1.0,
                                progress: bool = False, desc: str = "reward model (ε)") -> History:
    """``reward.train_reward_model`` with the conservative loss :func:`conservative_bt_loss`.

    The same loop step for step (shuffled mini-batches from ``np.random.default_rng(seed)``,
    linear warm-up then cosine decay, gradient-norm clip, AdamW on every array), so ε = 0
    reproduces ``reward.train_reward_model(..., label="gold")`` exactly (a test checks it).
    The pairs are used as oriented (``chosen`` is the label); orient them beforehand.
    Written here because ``reward.py`` fixes the loss; the rest of the reward model (forward,
    backward, encoding) is ``reward.RewardModel``'s. Returns a ``training.History``.
    """
    from .reward import encode_pairs

    data = list(pairs)
    if not data:
        raise ValueError("no preference pairs to train on")
    opt = AdamW(dict(rm.params), lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    n_batches = math.ceil(len(data) / batch_size)
    total = epochs * n_batches
    rows, step, diverged, msg = [], 0, False, ""
    with Progress(total, desc, display=None if progress else False) as bar:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(data))
            for b in range(n_batches):
                step += 1
                batch = [data[i] for i in order[b * batch_size:(b + 1) * batch_size]]
                tokens, lengths = encode_pairs(rm, tok, batch)
                lr_t = lr_schedule(step - 1, lr, warmup, total, lr * min_lr_ratio)
                with np.errstate(over="ignore", invalid="ignore"):
                    r = rm.forward(tokens, lengths)
                n = len(batch)
                if not np.all(np.isfinite(r)):
                    diverged, msg = True, f"stopped at step {step}: non-finite reward"
                    break
                loss, d_c, d_r = conservative_bt_loss(r[:n], r[n:], eps)
                with np.errstate(over="ignore", invalid="ignore"):
                    grads = rm.backward(np.concatenate([d_c, d_r]))
                grads = {k: grads[k] for k in rm.params}           # the order reward.py clips in
                gnorm = clip_grad_norm(grads, grad_clip) if grad_clip else math.nan
                if not all(np.isfinite(g).all() for g in grads.values()):
                    diverged, msg = True, f"stopped at step {step}: non-finite gradient"
                    break
                opt.step(grads, lr=lr_t)
                rows.append({"epoch": epoch, "step": step, "lr": lr_t, "loss": loss,
                             "accuracy": float(np.mean(r[:n] > r[n:])), "grad_norm": gnorm})
                bar.update(loss=loss)
            if diverged:
                break
    if diverged:
        warnings.warn(f"Smoothed reward-model training {msg}; try a smaller learning rate.", RuntimeWarning,
                      stacklevel=2)
    log = pd.DataFrame(rows, columns=["epoch", "step", "lr", "loss", "accuracy", "grad_norm"])
    return History(log, diverged, msg, {"eps": eps, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                                        "seed": seed})


def noisy_labels(votes: np.ndarray, flip_rate: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Simulated annotation with extra noise: each annotator's vote flips with probability p.

    ``votes`` (n, k): the dataset's simulated annotators (1 = prefers the dataset's chosen
    answer). Every vote is flipped independently with probability ``flip_rate`` (tired or
    careless labelling on top of each annotator's own errors). The same uniform numbers are
    used for every p (a flip at p = 0.1 is also a flip at p = 0.3), so the curves over p
    differ only by the extra flips, not by a new draw.

    Returns ``single`` (n,): the label of *one* annotator per pair, drawn at random (what a
    pipeline that pays for one label per pair gets); ``majority`` (n,): the majority of all k
    noisy votes (k times the labelling cost; a tie, possible for even k, keeps the dataset's
    order); ``votes`` (n, k): the noisy votes. Labels are 1 = the dataset's chosen is preferred.
    """
    v = np.asarray(votes, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] < 1:
        raise ValueError(f"votes must have shape (n_pairs, n_annotators), got {v.shape}")
    if not 0.0 <= flip_rate <= 1.0:
        raise ValueError(f"flip_rate must lie in [0, 1], got {flip_rate}")
    rng = np.random.default_rng(seed)
    u = rng.random(v.shape)
    who = rng.integers(0, v.shape[1], size=v.shape[0])
    noisy = np.where(u < flip_rate, 1 - v, v)
    single = noisy[np.arange(v.shape[0]), who]
    majority = (2 * noisy.sum(axis=1) >= v.shape[1]).astype(np.int64)
    return {"single": single, "majority": majority, "votes": noisy}


def _orient(pairs: Sequence[Mapping], labels: np.ndarray) -> list[dict]:
    """Pairs as a reward model learns them: label 1 keeps chosen/rejected, 0 swaps them."""
    out = []
    for p, y in zip(pairs, labels):
        q = dict(p)
        if not y:
            q["chosen"], q["rejected"] = p["rejected"], p["chosen"]
        out.append(q)
    return out


def _pair_correct(rm, tok, pairs: Sequence[Mapping]) -> np.ndarray:
    """1.0 where the reward model ranks the dataset's chosen answer above the rejected one."""
    from .reward import pair_rewards

    rc, rr = pair_rewards(rm, tok, pairs)
    return (rc > rr).astype(np.float64)


def _wilson(k: float, n: int) -> tuple[float, float]:
    from .reward import wilson_interval

    return wilson_interval(int(round(k)), int(n))


def _bootstrap_index(n: int, rounds: int, seed: int) -> np.ndarray:
    """(rounds, n) indices drawn with replacement: the resamples every bootstrap here uses."""
    return np.random.default_rng(seed).integers(0, n, size=(rounds, n))


def _interval(values: np.ndarray) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of the finite bootstrap values (NaN, NaN if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(v, [2.5, 97.5])
    return float(lo), float(hi)


# ============================================================================ policies: sampling and scoring
class EnsembleReward:
    """The mean (or minimum) of several reward models, each standardised first.

    A reward model's zero and scale are arbitrary (only differences enter its loss), so
    averaging raw scores would let the member with the widest spread dominate, and a minimum
    would mostly pick the member with the lowest offset. Each member's score is therefore
    standardised with the mean and standard deviation of its scores on reference answers
    (:meth:`calibrate`) before they are combined (Coste et al. 2024 combine standardised
    members the same way; ``reduce="min"`` is their worst-case optimisation).
    ``forward(tokens, lengths)`` has the reward-model interface PPO expects.
    """

    def __init__(self, members: Sequence, reduce: str = "mean") -> None:
        if reduce not in ("mean", "min"):
            raise ValueError(f"reduce must be 'mean' or 'min', got {reduce!r}")
        if not members:
            raise ValueError("an ensemble needs at least one reward model")
        self.members = list(members)
        self.reduce = reduce
        self.mu = np.zeros(len(self.members))
        self.sigma = np.ones(len(self.members))

    def calibrate(self, tok: VocabularyTokenizer, prompts: Sequence[str], answers: Sequence[str]) -> "EnsembleReward":
        """Set each member's (μ, σ) from its scores of ``answers`` to ``prompts``; returns self."""
        for k, m in enumerate(self.members):
            s = m.score(tok, list(prompts), list(answers))
            self.mu[k], self.sigma[k] = float(s.mean()), float(max(s.std(), 1e-6))
        return self

    def member_scores(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Standardised scores (n_members, B)."""
        return np.stack([(np.asarray(m.forward(tokens, lengths), dtype=np.float64) - mu) / sd
                         for m, mu, sd in zip(self.members, self.mu, self.sigma)])

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        s = self.member_scores(tokens, lengths)
        return s.mean(axis=0) if self.reduce == "mean" else s.min(axis=0)


def _generate(policy: TinyGPT, tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
              temperature: float, rng: np.random.Generator):
    """Answers to every prompt (prompts of equal length share a ``generate`` call).

    Returns right-padded sequences (B, T) ``<bos> <q> x <a> y [<eos>]``, prompt lengths,
    answer lengths (``<eos>`` included), whether each answer ended, and Σ_t log π(y_t) of
    each answer under the distribution sampled from (0 for greedy decoding).
    """
    B = len(prompt_ids)
    plen = np.array([len(p) for p in prompt_ids], dtype=np.int64)
    n_new = min(int(max_new_tokens), policy.config.max_len - int(plen.max()))
    if n_new < 1:
        raise ValueError(f"a prompt of {plen.max()} tokens leaves no room in max_len={policy.config.max_len}")
    parts: dict[int, tuple[np.ndarray, float]] = {}
    for length in sorted(set(plen.tolist())):
        rows = np.flatnonzero(plen == length)
        gen = policy.generate(np.asarray([prompt_ids[i] for i in rows], dtype=np.int64), n_new,
                              temperature=temperature, rng=rng, stop_id=tok.eos_id, pad_id=tok.pad_id,
                              return_logprobs=True)
        for k, i in enumerate(rows):
            n = int(gen.lengths[k])
            parts[int(i)] = (gen.tokens[k, :n], float(gen.logprobs[k, :n].sum()))
    alen = np.array([len(parts[i][0]) for i in range(B)], dtype=np.int64)
    tokens = np.full((B, int((plen + alen).max())), tok.pad_id, dtype=np.int64)
    ended = np.zeros(B, dtype=bool)
    for i in range(B):
        new = parts[i][0]
        tokens[i, :plen[i]] = prompt_ids[i]
        tokens[i, plen[i]:plen[i] + len(new)] = new
        ended[i] = len(new) > 0 and new[-1] == tok.eos_id
    return tokens, plen, alen, ended, np.array([parts[i][1] for i in range(B)])


def _answer_logprob(model: TinyGPT, tokens: np.ndarray, plen: np.ndarray, alen: np.ndarray,
                    temperature: float = 1.0, chunk: int = 32) -> np.ndarray:
    """Σ_t log π(y_t) over each answer's tokens (B,), from full forward passes in chunks of rows."""
    out = np.zeros(len(plen))
    for s in range(0, len(plen), chunk):
        idx = np.arange(s, min(s + chunk, len(plen)))
        W = int((plen[idx] + alen[idx]).max())
        logits = model.forward(tokens[idx, :W - 1])
        if temperature != 1.0:
            logits = logits / np.asarray(temperature, dtype=logits.dtype)
        lp = token_logprobs(logits, tokens[idx, 1:W]).astype(np.float64)
        j = np.arange(W - 1)[None, :]
        mask = (j >= plen[idx, None] - 1) & (j < (plen[idx] + alen[idx])[:, None] - 1)
        out[idx] = (lp * mask).sum(axis=1)
    return out


def _scores(reward_model, tokens: np.ndarray, lengths: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Reward-model scores of right-padded sequences, read at the last real token, in chunks."""
    out = np.empty(len(lengths))
    for s in range(0, len(lengths), chunk):
        idx = slice(s, s + chunk)
        W = int(lengths[idx].max())
        out[idx] = np.asarray(reward_model.forward(tokens[idx, :W], lengths[idx]), dtype=np.float64)
    return out


def _judge(answers: Sequence[str], scenarios: Sequence[Mapping]) -> pd.DataFrame:
    from .judge import judge_many

    return judge_many(list(answers), list(scenarios))


def evaluate_policy(policy: TinyGPT, ref: TinyGPT, tok: VocabularyTokenizer, items: Sequence[Mapping],
                    scenarios: Mapping[str, Mapping], reward_models: Mapping[str, object], samples: int = 3,
                    max_new_tokens: int = 112, temperature: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Sample ``samples`` answers per prompt from π_θ and score each with the proxies and the gold judge.

    ``items``: prompts with ``prompt``, ``scenario_id`` (and ``id``). Per answer: the KL
    estimate Σ_t [log π_θ(y_t) - log π_ref(y_t)] (unbiased for KL(π_θ ‖ π_ref) of the whole
    answer, at the sampling temperature), each reward model's score (read at the last real
    token, as PPO reads it), and the gold judge's five metrics and ``overall``.
    The same ``seed`` for every checkpoint of a run gives common random numbers, so the
    differences between checkpoints are less noisy than the checkpoints themselves.

    Returns one row per answer: ``item``, ``id``, ``sample``, ``kl``, ``length``, ``ended``,
    ``score:<name>`` for every reward model, the judge's METRICS, ``overall``,
    ``repetition`` (:func:`repetition`) and ``answer``.
    """
    from .judge import METRICS

    items = list(items)
    ids = [encode_sft(tok, it["prompt"])[0] for it in items for _ in range(samples)]
    rng = np.random.default_rng(seed)
    tokens, plen, alen, ended, logq = _generate(policy, tok, ids, max_new_tokens, temperature, rng)
    ref_lp = _answer_logprob(ref, tokens, plen, alen, temperature)
    answers = [tok.decode([int(t) for t in tokens[i, plen[i]:plen[i] + alen[i]]]) for i in range(len(ids))]
    item_index = np.repeat(np.arange(len(items)), samples)
    table = pd.DataFrame({
        "item": item_index,
        "id": [items[i].get("id", str(i)) for i in item_index],
        "sample": np.tile(np.arange(samples), len(items)),
        "kl": logq - ref_lp,
        "length": alen.astype(np.float64),
        "ended": ended.astype(np.float64),
    })
    for name, model in reward_models.items():
        table[f"score:{name}"] = _scores(model, tokens, plen + alen)
    verdicts = _judge(answers, [scenarios[items[i]["scenario_id"]] for i in item_index])
    for m in (*METRICS, "overall"):
        table[m] = verdicts[m].to_numpy()
    table["repetition"] = [repetition(a) for a in answers]
    table["answer"] = answers
    return table


def repetition(text: str, n: int = 4) -> float:
    """Share of repeated word n-grams, 1 - distinct / total ("seq-rep-4"; 0 without repeats)."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _greedy(policy: TinyGPT, tok: VocabularyTokenizer, items: Sequence[Mapping], max_new_tokens: int) -> list[str]:
    from .ppo import sample_answers

    return sample_answers(policy, tok, [it["prompt"] for it in items], 0.0, max_new_tokens)


# ============================================================================ PPO with checkpoints
@dataclass
class PPORun:
    """One PPO run: its diagnostics, the policy's weights at the checkpoint iterations, and
    (if recorded) every rollout the reward model scored: (iteration, tokens, lengths)."""

    name: str
    diagnostics: pd.DataFrame
    snapshots: dict[int, dict[str, np.ndarray]]
    rollouts: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    def policy(self, iteration: int, like: TinyGPT) -> TinyGPT:
        """A TinyGPT with the weights of ``iteration`` (``like`` gives the configuration)."""
        p = like.copy()
        p.load_state_dict(self.snapshots[iteration])
        return p

    @property
    def last(self) -> int:
        return max(self.snapshots)


class _Recorder:
    """A reward model that also watches the run: ``train_ppo`` calls ``forward`` exactly once per
    iteration (in the rollout, before that iteration's update), so call k sees the policy after
    k iterations. The recorder copies the weights at the chosen iterations and, if asked, keeps
    the scored rollouts. ``train_ppo`` itself is unchanged (``ppo.py`` has no callback hook)."""

    def __init__(self, reward_model, policy: TinyGPT, checkpoints: set[int], record: bool) -> None:
        self.reward_model, self.policy, self.checkpoints, self.record = reward_model, policy, checkpoints, record
        self.calls = 0
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}
        self.rollouts: list[tuple[int, np.ndarray, np.ndarray]] = []

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if self.calls in self.checkpoints:
            self.snapshots[self.calls] = self.policy.state_dict()
        if self.record:
            self.rollouts.append((self.calls, np.array(tokens, copy=True), np.array(lengths, copy=True)))
        self.calls += 1
        return self.reward_model.forward(tokens, lengths)


def run_ppo_checkpointed(sft: TinyGPT, reward_model, tok: VocabularyTokenizer, prompts: Sequence[Mapping],
                         config, checkpoints: Sequence[int], record_rollouts: bool = False, progress: bool = False,
                         name: str = "PPO") -> PPORun:
    """``ppo.train_ppo`` from a copy of ``sft`` (π_ref = ``sft``), keeping the weights at ``checkpoints``.

    Iteration 0 is the SFT policy itself; the final weights are always kept (under the number
    of iterations that ran, which is smaller than ``config.iterations`` if the run stopped at
    ``max_kl``). Warnings of ``train_ppo`` (β = 0, a stopped run) are passed on.
    """
    from .ppo import reward_normalisation, train_ppo
    from .training import encode_sft

    policy = sft.copy()
    score_norm = None
    if config.normalize_reward and config.norm_samples > 0:   # measured on the raw model, not the recorder
        prompt_ids = [encode_sft(tok, p["prompt"] if isinstance(p, Mapping) else p)[0] for p in prompts]
        score_norm = reward_normalisation(policy, reward_model, tok, prompt_ids, config.norm_samples,
                                          config.max_new_tokens, config.temperature, config.seed)
    rec = _Recorder(reward_model, policy, set(int(c) for c in checkpoints), record_rollouts)
    _, diag = train_ppo(policy, sft, rec, tok, list(prompts), config, progress=progress, desc=name,
                        score_norm=score_norm)
    done = len(diag)
    if done and diag.attrs.get("stopped") and not np.isfinite(diag["policy_loss"].iloc[-1]):
        done -= 1                                     # the last update was undone
    rec.snapshots[done] = policy.state_dict()
    return PPORun(name, diag, rec.snapshots, rec.rollouts)


# ============================================================================ 1. reward hacking
@dataclass
class HackingSettings:
    """Every knob of :func:`reward_hacking_experiment` (defaults: the chapter's cached run).

    PPO runs at each β of ``betas`` for ``iterations`` iterations from the SFT policy, all
    with the chapter-5 defaults except a learning rate ``lr`` twice chapter 5's (so that
    over-optimisation shows within the time budget), ``batch_size`` answers per iteration
    as ``samples_per_prompt`` answers to each of several prompts (four prompts of four
    answers made the held-out proxy rise more steadily than two of eight), and PPO's own
    judge switched off (the gold judge is applied here, on held-out prompts). The smallest β is the *hacked* run; it
    is evaluated at ``checkpoints``, the others at ``coarse_checkpoints`` (the ensemble run at
    ``ensemble_checkpoints``: its end is what the comparison needs). A ``n_val``-prompt
    validation subset of the SFT prompts is kept out of PPO's training prompts and judged at
    every checkpoint of the hacked run, for early stopping with ``patience``. The ensemble
    run optimises the ``ensemble_reduce`` of ``ensemble_size`` reward models, each trained on
    a random ``ensemble_fraction`` of the training pairs (the first ``n_pairs``, None = all)
    with its own seed, at the smallest β.
    Evaluation: ``eval_samples`` answers per held-out prompt (``n_eval`` prompts, None = all)
    at temperature 1 with one fixed seed; effectiveness intervals from ``n_bootstrap``
    resamples of the prompts.
    """

    betas: tuple[float, ...] = (0.002, 0.2)
    iterations: int = 45
    lr: float = 3e-4
    checkpoints: tuple[int, ...] = (0, 5, 10, 15, 20, 30, 40, 45)
    coarse_checkpoints: tuple[int, ...] = (0, 15, 30, 45)
    ensemble_checkpoints: tuple[int, ...] = (0, 45)
    batch_size: int = 16
    samples_per_prompt: int = 4
    max_new_tokens: int = 112
    eval_samples: int = 2
    n_eval: int | None = None
    n_val: int = 24
    val_samples: int = 2
    patience: int = 2
    ensemble_size: int = 3
    ensemble_fraction: float = 0.8
    ensemble_reduce: str = "mean"
    ensemble_epochs: int = 2
    n_pairs: int | None = None
    n_examples: int = 64
    n_bootstrap: int = 1000
    seed: int = 0


def hacking_ppo_config(s: HackingSettings, beta: float, iterations: int | None = None):
    """The ``ppo.PPOConfig`` of a reward-hacking run at β (``iterations`` overrides the settings')."""
    from .ppo import PPOConfig

    return PPOConfig(iterations=int(iterations if iterations is not None else s.iterations), kl_coef=float(beta),
                     lr=float(s.lr), batch_size=s.batch_size, samples_per_prompt=s.samples_per_prompt,
                     minibatch_size=s.batch_size, max_new_tokens=s.max_new_tokens, judge_every=0, seed=s.seed)


def split_rl_prompts(n_val: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(PPO training prompts, validation prompts): ``n_val`` RL prompts held out for early stopping."""
    from . import data

    items = data.load_rl_prompts()
    order = np.random.default_rng(seed).permutation(len(items))
    val = {int(i) for i in order[:n_val]}
    return [items[i] for i in range(len(items)) if i not in val], [items[i] for i in sorted(val)]


def _train_members(tok, sft, pairs, s: HackingSettings, progress: bool):
    """``ensemble_size`` reward models, member k: seed k + 1, a random share of the pairs."""
    from .reward import RewardModel, train_reward_model

    members = []
    for k in range(s.ensemble_size):
        rng = np.random.default_rng(s.seed + 1000 + k)
        n = max(2, int(round(s.ensemble_fraction * len(pairs))))
        subset = [pairs[i] for i in np.sort(rng.choice(len(pairs), n, replace=False))]
        m = RewardModel(sft.copy(), seed=s.seed + k + 1)
        train_reward_model(m, tok, subset, epochs=s.ensemble_epochs, seed=s.seed + k + 1, progress=progress,
                           desc=f"ensemble member {k + 1}")
        members.append(m)
    return members


def _early_stop(iterations: Sequence[int], val_gold: Sequence[float], patience: int) -> tuple[int, int]:
    """Early stopping on the validation gold score, checkpoint by checkpoint.

    Walk the checkpoints in order, remember the best validation score so far, and stop once
    ``patience`` checkpoints in a row have not improved on it. Returns (the iteration whose
    weights are kept, the iteration at which training stopped).
    """
    best_i, best, since = 0, -math.inf, 0
    for k, (it, g) in enumerate(zip(iterations, val_gold)):
        if g > best:
            best, best_i, since = g, k, 0
        else:
            since += 1
            if since >= patience:
                return int(iterations[best_i]), int(it)
    return int(iterations[best_i]), int(iterations[-1])


def _word_shift(before: Sequence[str], after: Sequence[str], top: int = 15) -> pd.DataFrame:
    """The words the hacked policy uses far more often than the SFT policy (what the proxy likes).

    Counts every lower-case word in each set of answers; ``ratio`` = (rate after + 1e-3) /
    (rate before + 1e-3) with rates per 1,000 words, sorted by the increase in rate.
    """
    def counts(texts):
        c = Counter(w for t in texts for w in re.findall(r"[a-z][a-z0-9\-]*", t.lower()))
        return c, max(sum(c.values()), 1)

    cb, nb = counts(before)
    ca, na = counts(after)
    rows = []
    for w in set(ca) | set(cb):
        rb, ra = 1000 * cb[w] / nb, 1000 * ca[w] / na
        rows.append({"word": w, "per_1000_sft": rb, "per_1000_hacked": ra, "increase": ra - rb})
    df = pd.DataFrame(rows, columns=["word", "per_1000_sft", "per_1000_hacked", "increase"])
    df = df.sort_values(["increase", "word"], ascending=[False, True]).head(top).reset_index(drop=True)
    return df


def reward_hacking_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: HackingSettings | None = None,
                              progress: bool = False, return_runs: bool = False):
    """Over-optimisation of the learned reward, and three mitigations, measured with the gold judge.

    PPO optimises the reward model r_φ (the proxy) from the SFT policy at several β. At each
    checkpoint the policy answers the held-out evaluation prompts (``data.load_eval_prompts``)
    and we record KL to π_ref, d = √KL, the proxy and the gold judge. Gao et al. (2022): the
    proxy keeps rising with d while the gold score peaks and falls; we fit
    R(d) = d (a - b log d) to the gold gain g(d) - g_sft of the hacked run (smallest β).

    Mitigations, all measured on the same evaluation prompts:
      * strong KL: the largest β, same run length;
      * early stopping: the hacked run, stopped by the gold score of a validation subset of
        SFT prompts (never the evaluation prompts), weights of the best validation checkpoint;
      * ensemble: PPO at the smallest β on the mean (or min) of several standardised reward
        models trained with different seeds and data subsets (Coste et al. 2024).
    Effectiveness E = (g_M - g_hacked) / (g_best - g_hacked), with g_best the gold score of
    the hacked run's best evaluation checkpoint and g_hacked that of its last. The interval
    resamples the evaluation prompts and re-chooses the best checkpoint in every resample
    (the mitigated policies stay fixed: early stopping chose its checkpoint on validation
    prompts). g_best is the maximum of noisy checkpoint means, so it is biased upwards, and
    E downwards.

    Returns a dict of tables: ``hacking_curves`` (one row per run and checkpoint),
    ``hacking_training`` (PPO's own diagnostics per iteration: the proxy on the training
    prompts, where the policy is optimised), ``gao_fit``, ``hacking_mitigations``, ``hacked_answers`` (greedy answers of the SFT and
    the hacked policy with their proxy and gold scores), ``hacked_words`` (the words whose
    frequency grew most), ``policy_answers`` (greedy answers of the hacked and of every
    mitigated policy to every evaluation prompt; chapter 7 reads them). With
    ``return_runs=True`` it returns ``(tables, extras)``; ``extras`` holds the runs, the
    per-answer evaluations and the prompts, which :func:`distribution_shift_experiment` reuses.
    """
    from . import data
    from .judge import METRICS

    s = settings or HackingSettings()
    if len(s.betas) < 2:
        raise ValueError("reward hacking needs at least two β: the smallest is the hacked run, the largest the "
                         "strong-KL mitigation")
    scenarios = {x["id"]: x for x in data.load_scenarios()}
    eval_items = data.load_eval_prompts()
    if s.n_eval is not None:
        eval_items = eval_items[:s.n_eval]
    train_items, val_items = split_rl_prompts(s.n_val, s.seed)
    pairs = [p for p in data.load_preferences() if p["split"] == "train"][:s.n_pairs]
    members = _train_members(tok, sft, pairs, s, progress)
    ensemble = EnsembleReward(members, s.ensemble_reduce).calibrate(
        tok, [p["prompt"] for p in pairs] * 2, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])

    betas = sorted(float(b) for b in s.betas)
    beta_hack, beta_strong = betas[0], betas[-1]
    fine = sorted({c for c in s.checkpoints if c <= s.iterations} | {0, s.iterations})
    coarse = sorted({c for c in s.coarse_checkpoints if c <= s.iterations} | {0, s.iterations})
    ens_cps = sorted({c for c in s.ensemble_checkpoints if c <= s.iterations} | {0, s.iterations})
    specs = [(f"β={b:g}", b, "reward model", fine if b == beta_hack else coarse) for b in betas]
    specs.append((f"ensemble β={beta_hack:g}", beta_hack, f"ensemble ({s.ensemble_reduce} of {len(members)})",
                  ens_cps))
    both = {"proxy": rm, "ensemble": ensemble}

    def evaluate(policy, items, samples, seed, proxies=both):
        with np.errstate(over="ignore", invalid="ignore"):
            return evaluate_policy(policy, sft, tok, items, scenarios, proxies, samples, s.max_new_tokens,
                                   seed=seed)

    per_answer: dict[tuple[str, int], pd.DataFrame] = {}
    sft_eval = evaluate(sft, eval_items, s.eval_samples, s.seed + 7)
    runs: dict[str, PPORun] = {}
    val_gold: dict[int, float] = {}
    for name, beta, target, cps in specs:
        reward_fn = ensemble if name.startswith("ensemble") else rm
        hacked = name == specs[0][0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run = run_ppo_checkpointed(sft, reward_fn, tok, train_items, hacking_ppo_config(s, beta), cps,
                                       record_rollouts=hacked, progress=progress, name=f"PPO {name}")
        runs[name] = run
        for it in sorted(run.snapshots):
            policy = sft if it == 0 else run.policy(it, sft)
            proxies = both if reward_fn is ensemble else {"proxy": rm}
            per_answer[(name, it)] = sft_eval if it == 0 else evaluate(policy, eval_items, s.eval_samples,
                                                                       s.seed + 7, proxies)
            if hacked:
                val_gold[it] = float(evaluate(policy, val_items, s.val_samples, s.seed + 11,
                                              {"proxy": rm})["overall"].mean())

    # ---- curves: one row per run and checkpoint
    rows = []
    for name, beta, target, _ in specs:
        for it in sorted(runs[name].snapshots):
            t = per_answer[(name, it)]
            kl = float(t["kl"].mean())
            g_items = t.groupby("item")["overall"].mean()
            row = {"run": name, "beta": beta, "optimised": target, "iteration": it, "kl": kl,
                   "d": math.sqrt(max(kl, 0.0)), "proxy": float(t["score:proxy"].mean()),
                   "ensemble_score": float(t["score:ensemble"].mean()) if "score:ensemble" in t else math.nan,
                   "gold": float(t["overall"].mean()),
                   "gold_se": float(g_items.std(ddof=1) / math.sqrt(len(g_items))) if len(g_items) > 1 else math.nan,
                   "proxy_sd": float(t["score:proxy"].std(ddof=1)) if len(t) > 1 else math.nan,
                   "gold_sd": float(t["overall"].std(ddof=1)) if len(t) > 1 else math.nan}
            row.update({m: float(t[m].mean()) for m in METRICS})
            row.update(length=float(t["length"].mean()), ended=float(t["ended"].mean()),
                       repetition=float(t["repetition"].mean()),
                       val_gold=val_gold.get(it, math.nan) if name == specs[0][0] else math.nan)
            rows.append(row)
    curves = pd.DataFrame(rows)
    training = pd.concat([runs[name].diagnostics[["iteration", "score", "kl", "length"]].assign(run=name, beta=beta)
                          for name, beta, *_ in specs], ignore_index=True)
    training = training[["run", "beta", "iteration", "score", "kl", "length"]]

    # ---- the Gao fit, gold and proxy gains over the SFT policy, per β run
    g_sft, p_sft = float(sft_eval["overall"].mean()), float(sft_eval["score:proxy"].mean())
    fits = []
    for name, *_ in specs:
        c = curves[curves.run == name]
        for target, base in (("gold", g_sft), ("proxy", p_sft)):
            try:
                a, b = fit_gao(c["d"], c[target] - base)
            except ValueError:
                a, b = math.nan, math.nan
            d_star, r_star = gao_peak(a, b) if np.isfinite(b) else (math.nan, math.nan)
            pred = gao_curve(c["d"], a, b) + base
            fits.append({"run": name, "target": target, "a": a, "b": b, "d_peak": d_star,
                         "peak_gain": r_star, "baseline": base,
                         "rmse": float(np.sqrt(np.mean((pred - c[target]) ** 2))), "n_points": int(len(c)),
                         "d_max": float(c["d"].max())})
    gao = pd.DataFrame(fits)

    # ---- mitigations and their effectiveness (bootstrap over the evaluation prompts)
    hack_name, strong_name, ens_name = specs[0][0], f"β={beta_strong:g}", specs[-1][0]
    hack_its = sorted(runs[hack_name].snapshots)
    chosen_it, stopped_it = _early_stop(hack_its, [val_gold[i] for i in hack_its], s.patience)

    def item_means(name: str, it: int) -> np.ndarray:
        t = per_answer[(name, it)]
        return t.groupby("item")["overall"].mean().to_numpy()

    G_hack = np.stack([item_means(hack_name, it) for it in hack_its])          # (checkpoints, prompts)
    best_k = int(np.argmax(G_hack.mean(axis=1)))
    g_best, g_hacked = float(G_hack[best_k].mean()), float(G_hack[-1].mean())

    def ran(name: str) -> str:
        last = runs[name].last
        return "" if last >= s.iterations else f"; the run stopped at iteration {last} (KL above PPO's max_kl)"

    mitig = {
        "strong KL": (strong_name, runs[strong_name].last, f"β = {beta_strong:g} instead of {beta_hack:g}"
                                                           + ran(strong_name)),
        "early stopping": (hack_name, chosen_it, f"validation gold peaked at iteration {chosen_it}; "
                                                 f"stopped at {stopped_it} of {runs[hack_name].last}"),
        "reward-model ensemble": (ens_name, runs[ens_name].last,
                                  f"{s.ensemble_reduce} of {len(members)} standardised reward models" + ran(ens_name)),
    }
    idx = _bootstrap_index(G_hack.shape[1], s.n_bootstrap, s.seed)
    boot_best = G_hack[:, idx].mean(axis=2).max(axis=0)       # the best checkpoint, re-chosen in every resample
    boot_hacked = G_hack[-1][idx].mean(axis=1)
    mrows = [
        {"mitigation": "no skill (answers to other questions)", "run": hack_name, "iteration": 0,
         "detail": "the SFT policy's answers, each judged against the next prompt's case"},
        {"mitigation": "none (SFT policy)", "run": hack_name, "iteration": 0, "detail": "before PPO"},
        {"mitigation": "none (best checkpoint)", "run": hack_name, "iteration": hack_its[best_k],
         "detail": "the hacked run at its best evaluation checkpoint"},
        {"mitigation": "none (hacked)", "run": hack_name, "iteration": hack_its[-1],
         "detail": f"β = {beta_hack:g}, {hack_its[-1]} iterations" + ran(hack_name)},
    ] + [{"mitigation": m, "run": r, "iteration": it, "detail": det} for m, (r, it, det) in mitig.items()]
    for row in mrows:
        t = per_answer[(row["run"], row["iteration"])]
        if row["mitigation"].startswith("no skill"):          # the floor: a fluent answer to another question
            other = [eval_items[(i + 1) % len(eval_items)]["scenario_id"] for i in t["item"]]
            t = t.copy()
            t["overall"] = _judge(list(t["answer"]), [scenarios[x] for x in other])["overall"].to_numpy()
        g_items = t.groupby("item")["overall"].mean().to_numpy()
        row.update(kl=float(t["kl"].mean()), proxy=float(t["score:proxy"].mean()), gold=float(g_items.mean()),
                   medical_accuracy=float(t["medical_accuracy"].mean()), specificity=float(t["specificity"].mean()),
                   humility=float(t["humility"].mean()))
        if row["mitigation"] in mitig:
            row["effectiveness"] = effectiveness(row["gold"], g_hacked, g_best)
            lo, hi = _interval(effectiveness(g_items[idx].mean(axis=1), boot_hacked, boot_best))
            row["ci_low"], row["ci_high"] = lo, hi
        else:
            row["effectiveness"] = row["ci_low"] = row["ci_high"] = math.nan
    mitigations = pd.DataFrame(mrows)

    # ---- greedy answers: what the hacked policy says, and what chapter 7 needs
    final_policies = {
        "hacked": runs[hack_name].policy(runs[hack_name].last, sft),
        "strong_kl": runs[strong_name].policy(runs[strong_name].last, sft),
        "early_stopped": sft if chosen_it == 0 else runs[hack_name].policy(chosen_it, sft),
        "ensemble": runs[ens_name].policy(runs[ens_name].last, sft),
    }
    examples = eval_items[:s.n_examples]
    greedy = {name: _greedy(p, tok, eval_items, s.max_new_tokens) for name, p in final_policies.items()}
    greedy_sft = _greedy(sft, tok, examples, s.max_new_tokens)
    policy_answers = pd.DataFrame([{"policy": name, "eval_id": it["id"], "answer": a}
                                   for name, answers in greedy.items() for it, a in zip(eval_items, answers)])
    hrows = []
    for label, answers in (("sft", greedy_sft), ("hacked", greedy["hacked"][:len(examples)])):
        verdicts = _judge(answers, [scenarios[it["scenario_id"]] for it in examples])
        proxy = rm.score(tok, [it["prompt"] for it in examples], answers)
        for k, it in enumerate(examples):
            hrows.append({"policy": label, "eval_id": it["id"], "prompt": it["prompt"], "answer": answers[k],
                          "proxy": float(proxy[k]), "gold": float(verdicts["overall"].iloc[k]),
                          **{m: float(verdicts[m].iloc[k]) for m in METRICS}})
    hacked_answers = pd.DataFrame(hrows)
    words = _word_shift(per_answer[(hack_name, 0)]["answer"], per_answer[(hack_name, hack_its[-1])]["answer"])

    tables = {"hacking_curves": curves, "hacking_training": training, "gao_fit": gao,
              "hacking_mitigations": mitigations,
              "hacked_answers": hacked_answers, "hacked_words": words, "policy_answers": policy_answers}
    if not return_runs:
        return tables
    extras = {"runs": runs, "per_answer": per_answer, "hacked_run": hack_name, "eval_items": eval_items,
              "train_items": train_items, "scenarios": scenarios}
    return tables, extras


# ============================================================================ 2. annotation quality
@dataclass
class NoiseSettings:
    """Knobs of :func:`annotation_experiment` (defaults: the chapter's cached run).

    Reward models from the SFT trunk, ``epochs`` over the training pairs (``n_train``, None =
    all) with the chapter-3 learning rate and batch size; accuracy on the held-out test
    pairs (``n_test``, None = all) against their clean labels. ``smoothing`` is ε of the
    conservative loss; ``n_bootstrap`` resamples of the test pairs give the intervals.
    """

    flip_rates: tuple[float, ...] = (0.0, 0.2, 0.4)
    epochs: int = 2
    smoothing: float = 0.1
    n_train: int | None = None
    n_test: int | None = None
    reference_rate: float = 0.2
    n_bootstrap: int = 1000
    seed: int = 0


NOISE_METHODS: tuple[str, ...] = ("one annotator", "majority of 3", "one annotator, conservative loss")


def annotation_experiment(tok: VocabularyTokenizer, sft: TinyGPT, settings: NoiseSettings | None = None,
                          progress: bool = False) -> dict[str, pd.DataFrame]:
    """Reward-model accuracy as the annotators' labels get noisier, with and without mitigations.

    For every flip rate p, each of the dataset's three simulated annotators' votes flips with
    probability p (:func:`noisy_labels`), and three reward models are trained from the SFT
    trunk: on the label of one random annotator per pair (plain Bradley-Terry), on the
    majority of the three noisy votes (plain BT; three labels per pair), and on one
    annotator's label with the conservative loss L_ε. One more is trained on the clean labels
    (the knowledge base's own chosen/rejected), the no-noise reference. Accuracy is measured on
    the held-out test pairs against their clean labels.

    Effectiveness of a mitigation, pooled over the flip rates p > 0:
    E = Σ_p (acc_M(p) - acc_1(p)) / Σ_p (acc_clean - acc_1(p)), the share of the accuracy lost
    to noise (one annotator vs clean labels) that the mitigation wins back; the interval
    resamples the test pairs.

    Returns ``noise_curves`` (one row per method and p, plus the clean reference) and
    ``noise_mitigations``.
    """
    from . import data
    from .reward import RewardModel, train_reward_model

    s = settings or NoiseSettings()
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"][:s.n_train]
    test = [p for p in prefs if p["split"] == "test"][:s.n_test]
    votes = np.array([p["votes"] for p in train])
    n_train_steps = None

    def fit(pairs, eps: float, seed: int):
        nonlocal n_train_steps
        rm = RewardModel(sft.copy(), seed=seed)
        if eps > 0:
            h = train_reward_model_smoothed(rm, tok, pairs, eps=eps, epochs=s.epochs, seed=seed, progress=progress)
        else:
            h = train_reward_model(rm, tok, pairs, epochs=s.epochs, seed=seed, label="gold", progress=progress)
        n_train_steps = len(h.log)
        return _pair_correct(rm, tok, test)

    correct: dict[tuple[str, float], np.ndarray] = {}
    rows = []
    clean = fit(train, 0.0, s.seed)
    correct[("clean labels", 0.0)] = clean
    lo, hi = _wilson(clean.sum(), len(test))
    rows.append({"method": "clean labels", "flip_rate": 0.0, "label_error": 0.0, "labels_per_pair": 1,
                 "accuracy": float(clean.mean()), "ci_low": lo, "ci_high": hi})
    for p in s.flip_rates:
        lab = noisy_labels(votes, float(p), seed=s.seed)
        for method in NOISE_METHODS:
            y = lab["majority"] if method.startswith("majority") else lab["single"]
            eps = s.smoothing if "conservative" in method else 0.0
            c = fit(_orient(train, y), eps, s.seed)
            correct[(method, float(p))] = c
            lo, hi = _wilson(c.sum(), len(test))
            rows.append({"method": method, "flip_rate": float(p), "label_error": float(np.mean(y == 0)),
                         "labels_per_pair": 3 if method.startswith("majority") else 1,
                         "accuracy": float(c.mean()), "ci_low": lo, "ci_high": hi})
    curves = pd.DataFrame(rows)

    idx = _bootstrap_index(len(test), s.n_bootstrap, s.seed)
    noisy = [float(p) for p in s.flip_rates if p > 0]
    mrows = []
    base = np.stack([correct[("one annotator", p)] for p in noisy]) if noisy else np.zeros((0, len(test)))
    for method in NOISE_METHODS[1:]:
        M = np.stack([correct[(method, p)] for p in noisy]) if noisy else np.zeros((0, len(test)))
        gain = (M - base).sum()
        lost = (clean[None, :] - base).sum()
        e = effectiveness(gain / max(len(test), 1), 0.0, lost / max(len(test), 1))
        bg = (M - base)[:, idx].mean(axis=2).sum(axis=0)
        bl = (clean[None, :] - base)[:, idx].mean(axis=2).sum(axis=0)
        lo, hi = _interval(effectiveness(bg, np.zeros_like(bg), bl))
        ref = float(s.reference_rate)
        at_ref = {m: float(correct[(m, ref)].mean()) for m in NOISE_METHODS if (m, ref) in correct}
        mrows.append({"mitigation": method, "labels_per_pair": 3 if method.startswith("majority") else 1,
                      "effectiveness": e, "ci_low": lo, "ci_high": hi,
                      "accuracy_at_reference": at_ref.get(method, math.nan),
                      "one_annotator_at_reference": at_ref.get("one annotator", math.nan),
                      "clean_accuracy": float(clean.mean()), "reference_rate": ref,
                      "mean_gain": float(gain / max(len(noisy), 1) / max(len(test), 1)),
                      "mean_loss": float(lost / max(len(noisy), 1) / max(len(test), 1))})
    return {"noise_curves": curves, "noise_mitigations": pd.DataFrame(mrows)}


# ============================================================================ 3. distribution shift
@dataclass
class ShiftSettings:
    """Knobs of :func:`distribution_shift_experiment` (defaults: the chapter's cached run).

    ``holdout_category``: the category left out of the reward model's training pairs.
    ``gap``: a policy-sample pair counts (is *decisive*) when the gold judge's scores differ
    by at least this much. ``n_onpolicy``: at most this many newly labelled on-policy pairs
    are added for the mitigation. ``drift_from``: the checkpoints from this fraction of the run
    on are pooled as the "drifted" policy.
    ``n_train``: the reward models see the first ``n_train`` training pairs (None = all;
    fewer only in the tests).
    Without a run passed in, a PPO run with ``beta``, ``iterations`` (``hacking`` settings)
    is made first.
    """

    holdout_category: str = "pharmacogenomics"
    gap: float = 0.05
    n_onpolicy: int = 240
    drift_from: float = 0.5
    n_bootstrap: int = 1000
    reward_epochs: int = 2
    n_train: int | None = None
    seed: int = 0
    hacking: HackingSettings = field(default_factory=HackingSettings)


def _retokenize(tok: VocabularyTokenizer, prompts: Sequence[str], answers: Sequence[str],
                ended: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``<bos> <q> x <a> y [<eos>]`` and lengths, ``<eos>`` only where the answer ended."""
    seqs = []
    for p, a, e in zip(prompts, answers, ended):
        ids, _ = encode_sft(tok, p, a)
        seqs.append(ids if e else ids[:-1])
    lengths = np.array([len(x) for x in seqs], dtype=np.int64)
    tokens = np.full((len(seqs), int(lengths.max())), tok.pad_id, dtype=np.int64)
    for i, x in enumerate(seqs):
        tokens[i, :len(x)] = x
    return tokens, lengths


def _decisive_pairs(table: pd.DataFrame, score_cols: Sequence[str], gap: float) -> pd.DataFrame:
    """All pairs of answers to the same prompt whose gold scores differ by at least ``gap``.

    Returns one row per pair: ``item``, ``dgold`` = J_a - J_b, and ``d<col>`` for every score
    column (the proxy's difference for the same two answers).
    """
    rows = []
    for item, g in table.groupby("item", sort=True):
        gold = g["overall"].to_numpy()
        sc = {c: g[c].to_numpy() for c in score_cols}
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                if abs(gold[i] - gold[j]) >= gap:
                    rows.append({"item": item, "dgold": gold[i] - gold[j],
                                 **{f"d{c}": sc[c][i] - sc[c][j] for c in score_cols}})
    return pd.DataFrame(rows, columns=["item", "dgold", *[f"d{c}" for c in score_cols]])


def _agreement(pairs: pd.DataFrame, col: str) -> np.ndarray:
    """1.0 where the score difference has the same sign as the gold difference (ties count half)."""
    s = np.sign(pairs[col].to_numpy()) * np.sign(pairs["dgold"].to_numpy())
    return np.where(s > 0, 1.0, np.where(s < 0, 0.0, 0.5))


def _onpolicy_pairs(run: PPORun, tok: VocabularyTokenizer, items: Sequence[Mapping], scenarios, gap: float,
                    limit: int, seed: int) -> list[dict]:
    """Pairs of the run's own rollout answers to the same prompt, labelled by the gold judge.

    Every rollout the reward model scored during the run (training prompts only) is decoded;
    the answers to one prompt in one iteration are paired with each other, and a pair whose
    gold scores differ by at least ``gap`` becomes a preference pair (chosen = the higher
    gold score). At most ``limit`` pairs, spread evenly over the run (a seeded subsample).
    """
    lookup = {tuple(encode_sft(tok, it["prompt"])[0]): it for it in items}
    answers: dict[tuple[int, str], list[str]] = {}
    for it, tokens, lengths in run.rollouts:
        for row, n in zip(tokens, lengths):
            a_pos = int(np.flatnonzero(row == tok.a_id)[0])
            item = lookup.get(tuple(int(t) for t in row[:a_pos + 1]))
            if item is None:
                continue
            answers.setdefault((it, item["prompt"]), []).append(
                tok.decode([int(t) for t in row[a_pos + 1:int(n)]]))
    item_by_prompt = {it["prompt"]: it for it in items}
    candidates = []
    for (it, prompt), texts in sorted(answers.items()):
        item = item_by_prompt[prompt]
        gold = _judge(texts, [scenarios[item["scenario_id"]]] * len(texts))["overall"].to_numpy()
        for i in range(len(texts)):
            for j in range(i + 1, len(texts)):
                if abs(gold[i] - gold[j]) >= gap and texts[i] != texts[j]:
                    hi, lo = (i, j) if gold[i] > gold[j] else (j, i)
                    candidates.append({"id": f"ONPOLICY-{it}-{i}-{j}", "scenario_id": item["scenario_id"],
                                       "category": item.get("category", ""), "split": "train", "prompt": prompt,
                                       "chosen": texts[hi], "rejected": texts[lo], "flaw": "on_policy",
                                       "votes": [1, 1, 1], "featured": False, "iteration": it})
    if len(candidates) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(candidates), limit, replace=False))
        candidates = [candidates[i] for i in keep]
    return candidates


def distribution_shift_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: ShiftSettings | None = None,
                                  progress: bool = False, hacking_extras: Mapping | None = None
                                  ) -> dict[str, pd.DataFrame]:
    """The reward model off its training distribution, and retraining on on-policy pairs.

    1. *A category it never saw.* A reward model is trained (chapter-3 settings, from the SFT
       trunk) on the training pairs of every category but ``holdout_category``; its accuracy
       on the test pairs of the other categories (in distribution) is compared with its
       accuracy on every pair of the held-out category, and with ``rm`` (all categories).
    2. *The policy drifts.* Along a PPO run (the hacked run of
       :func:`reward_hacking_experiment` when ``hacking_extras`` is given), pairs of the
       policy's own answers to the same held-out prompt are formed at each checkpoint;
       ``agree`` is the share of decisive pairs (gold scores differ by ≥ ``gap``) the reward
       model orders like the gold judge. As the KL grows, the answers move away from the
       preference data and the agreement falls.
    3. *Mitigation: label on-policy data.* Pairs of the run's own rollout answers on its
       *training* prompts are labelled by the gold judge (the stand-in for new human labels),
       added to the preference pairs, and the reward model is retrained (iterated RLHF, Bai et
       al. 2022; Touvron et al. 2023). The quality lost to the shift is the gap between the
       reward model's accuracy on held-out preference pairs (pairs like its training data)
       and its agreement on the drifted policy's pairs (the checkpoints from ``drift_from`` of
       the run on, pooled): E = (agree_new - agree_old) / (acc_pairs - agree_old); the interval
       resamples the held-out prompts and the test pairs.

    Returns ``shift_categories``, ``shift_agreement`` (one row per checkpoint) and
    ``shift_mitigation``.
    """
    from . import data
    from .reward import RewardModel, evaluate, train_reward_model

    s = settings or ShiftSettings()
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"][:s.n_train]
    test = [p for p in prefs if p["split"] == "test"]
    cat = s.holdout_category
    if cat not in {p["category"] for p in prefs}:
        raise ValueError(f"unknown category {cat!r}")

    # ---- 1. leave one category out
    rm_out = RewardModel(sft.copy(), seed=s.seed)
    train_reward_model(rm_out, tok, [p for p in train if p["category"] != cat], epochs=s.reward_epochs,
                       seed=s.seed, progress=progress, desc=f"reward model without {cat}")
    groups = {
        "test pairs, other categories": [p for p in test if p["category"] != cat],
        f"test pairs, {cat}": [p for p in test if p["category"] == cat],
        f"all pairs, {cat}": [p for p in prefs if p["category"] == cat],
    }
    crows = []
    for model_name, model in (("all categories", rm), (f"without {cat}", rm_out)):
        for group, pairs in groups.items():
            if model_name == "all categories" and group.startswith("all pairs"):
                continue                                      # the full model trained on those
            ev = evaluate(model, tok, pairs)
            crows.append({"reward_model": model_name, "pairs": group, "held_out_category": cat,
                          "seen_in_training": model_name == "all categories" or cat not in group,
                          "n": ev["n"], "accuracy": ev["accuracy"], "ci_low": ev["ci_low"],
                          "ci_high": ev["ci_high"]})
    categories = pd.DataFrame(crows)

    # ---- 2. agreement along a drifting policy
    if hacking_extras is None:
        h = s.hacking
        _, hacking_extras = reward_hacking_experiment(
            tok, sft, rm, replace(h, betas=(min(h.betas), max(h.betas))), progress=progress, return_runs=True)
    run_key = hacking_extras["hacked_run"]
    run = hacking_extras["runs"][run_key]
    per_answer = hacking_extras["per_answer"]
    eval_items, scenarios = hacking_extras["eval_items"], hacking_extras["scenarios"]
    its = sorted(run.snapshots)

    # ---- 3. on-policy pairs labelled by the gold judge, and a retrained reward model
    onpolicy = _onpolicy_pairs(run, tok, hacking_extras["train_items"], scenarios, s.gap, s.n_onpolicy, s.seed)
    # the chapter's recipe (``rm`` was trained with it on the training pairs), on more pairs
    rm_new = RewardModel(sft.copy(), seed=s.seed)
    train_reward_model(rm_new, tok, train + onpolicy, epochs=s.reward_epochs, seed=s.seed, progress=progress,
                       desc="reward model + on-policy pairs")
    agree_rows, agree_items = [], {}
    for it in its:
        t = per_answer[(run_key, it)].copy()
        seqs = _retokenize(tok, [eval_items[i]["prompt"] for i in t["item"]], list(t["answer"]),
                           list(t["ended"] > 0))
        t["score:old"], t["score:new"] = _scores(rm, *seqs), _scores(rm_new, *seqs)
        pairs = _decisive_pairs(t, ["score:old", "score:new"], s.gap)
        a_old, a_new = _agreement(pairs, "dscore:old"), _agreement(pairs, "dscore:new")
        agree_items[it] = (pairs["item"].to_numpy().astype(np.int64), a_old, a_new)
        agree_rows.append({"iteration": it, "kl": float(t["kl"].mean()), "d": math.sqrt(max(t["kl"].mean(), 0.0)),
                           "n_pairs": int(len(pairs)), "agree_old": float(a_old.mean()) if len(pairs) else math.nan,
                           "agree_new": float(a_new.mean()) if len(pairs) else math.nan})
    agreement = pd.DataFrame(agree_rows)

    drift = [it for it in its if it > 0 and it >= s.drift_from * its[-1]] or its[-1:]
    n_items = len(eval_items)

    def pooled(iters, which, weights=None):
        """Agreement pooled over checkpoints; ``weights`` (n_items,) = how often each prompt is drawn."""
        num = den = 0.0
        for it in iters:
            items, a_old, a_new = agree_items[it]
            a = a_old if which == "old" else a_new
            w = np.ones(len(items)) if weights is None else weights[items]
            num += float((w * a).sum())
            den += float(w.sum())
        return num / den if den > 0 else math.nan

    # q_good: how well r_φ orders pairs like its training data (held-out preference pairs)
    correct = _pair_correct(rm, tok, test)
    q_good, q_sft = float(correct.mean()), pooled(its[:1], "old")
    q_bad, q_mit = pooled(drift, "old"), pooled(drift, "new")
    idx = _bootstrap_index(n_items, s.n_bootstrap, s.seed)
    idx_test = _bootstrap_index(len(test), s.n_bootstrap, s.seed + 1)
    boot = []
    for r, rt in zip(idx, idx_test):
        w = np.bincount(r, minlength=n_items).astype(np.float64)
        boot.append(effectiveness(pooled(drift, "new", w), pooled(drift, "old", w), correct[rt].mean()))
    lo, hi = _interval(np.array(boot))
    acc_new = evaluate(rm_new, tok, test)
    mitigation = pd.DataFrame([{
        "mitigation": "retrain with on-policy pairs labelled by the gold judge",
        "n_onpolicy_pairs": len(onpolicy), "accuracy_preference_pairs": q_good, "agree_sft_samples": q_sft,
        "agree_drifted": q_bad, "agree_drifted_retrained": q_mit,
        "drifted_checkpoints": ", ".join(str(i) for i in drift),
        "effectiveness": effectiveness(q_mit, q_bad, q_good), "ci_low": lo, "ci_high": hi,
        "test_accuracy_after": acc_new["accuracy"],
    }])
    return {"shift_categories": categories, "shift_agreement": agreement, "shift_mitigation": mitigation}


# ============================================================================ 4. scalability
@dataclass
class ScaleSettings:
    """Knobs of :func:`scalability_experiment` (defaults: the chapter's cached run).

    ``widths``: d_model of the TinyGPTs compared (layers, heads and vocabulary as the course's
    model). ``prompt_tokens`` / ``answer_tokens``: the token counts a PPO iteration is costed
    with (``batch_size`` answers, ``ppo_epochs`` passes). ``label_counts``: numbers of
    labelled pairs for the reward-model learning curve, each trained for ``label_steps``
    steps. ``real_models``: (name, parameters) for the estimate on paper, with a run of
    ``run_answers`` answers of ``run_tokens`` tokens and ``flops_per_second`` of useful
    throughput per accelerator (an assumption, stated as such). ``n_train``: reward models see
    the first ``n_train`` training pairs (None = all; fewer only in the tests).
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)
    n_layers: int = 2
    n_heads: int = 4
    prompt_tokens: int = 20
    answer_tokens: int = 80
    batch_size: int = 8
    ppo_epochs: int = 2
    label_counts: tuple[int, ...] = (30, 60, 125, 250)
    label_steps: int = 32
    real_models: tuple[tuple[str, float], ...] = (("GPT-2 small", 124e6), ("1.3B (smallest InstructGPT)", 1.3e9),
                                                  ("7B", 7e9), ("70B", 70e9))
    run_answers: int = 256_000
    run_tokens: int = 300
    flops_per_second: float = 1e14
    bytes_trainable: int = 16
    bytes_frozen: int = 2
    n_train: int | None = None
    seed: int = 0


def _counts(model: TinyGPT) -> dict[str, int]:
    """Parameter counts: all, the embeddings, the last block (+ final LayerNorm)."""
    c = model.config
    total = model.n_params
    emb = model.params["wte"].size + model.params["wpe"].size
    last = sum(a.size for k, a in model.params.items() if k.startswith(f"h{c.n_layers - 1}.") or k.startswith("ln_f."))
    return {"total": int(total), "embedding": int(emb), "last_block": int(last)}


def ppo_state_bytes(n_policy: int, n_reward: int, n_last_block: int, d_model: int, bytes_trainable: int = 16,
                    bytes_frozen: int = 4) -> dict[str, int]:
    """Bytes of weights, gradients and optimiser state PPO holds, for three set-ups.

    A trained array costs ``bytes_trainable`` per parameter (float32 weights, gradients and
    AdamW's two moments: 4 + 4 + 4 + 4 = 16), a frozen one ``bytes_frozen`` (float32: 4).
    Four models are in play: the policy (trained, ``n_policy``), the reference (frozen, the
    same size), the reward model (frozen, ``n_reward``: a trunk and a scalar head) and the
    value function:

    * ``separate_value``: the value function is a second trained model of the reward model's
      shape:  16 (N_π + N_r) + 4 (N_π + N_r);
    * ``shared_trunk``: a value head (D + 1 weights) on the policy's trunk, as ``ppo.py``
      does:  16 (N_π + D + 1) + 4 (N_π + N_r);
    * ``last_block``: shared trunk, and only the policy's last block, final LayerNorm and the
      value head are trained (LoRA-style); the frozen rest of the policy *is* the reference's,
      so only the reference's own copy of the last block is extra:
      16 (N_last + D + 1) + 4 (N_π - N_last) + 4 N_last + 4 N_r.
    """
    head = d_model + 1
    separate = bytes_trainable * (n_policy + n_reward) + bytes_frozen * (n_policy + n_reward)
    shared = bytes_trainable * (n_policy + head) + bytes_frozen * (n_policy + n_reward)
    last = bytes_trainable * (n_last_block + head) + bytes_frozen * (n_policy + n_reward)
    return {"separate_value": int(separate), "shared_trunk": int(shared), "last_block": int(last)}


def _ppo_flops(n_fwd: int, n_rm: int, tokens_prompt: int, tokens_answer: int, batch: int, epochs: int) -> dict[str, float]:
    """FLOPs of one PPO iteration by the 2N (forward) / 6N (forward + backward) rule.

    ``n_fwd``: parameters a policy token passes through (non-embedding weights + the LM head);
    ``n_rm``: the reward model's (no LM head). Per iteration: generation (answer tokens),
    one policy and one reference forward over the whole sequence, one reward forward, and
    ``epochs`` training passes of the policy (6N per token; the value head rides along).
    The attention term (2 n_layers T d_model per token) is left out, as in Kaplan et al.
    """
    T = tokens_prompt + tokens_answer
    parts = {"generation": 2.0 * n_fwd * tokens_answer * batch,
             "policy_and_reference_forward": 2.0 * 2.0 * n_fwd * T * batch,
             "reward_forward": 2.0 * n_rm * T * batch,
             "training": 6.0 * n_fwd * T * batch * epochs}
    parts["total"] = sum(parts.values())
    parts["sft_step_same_tokens"] = 6.0 * n_fwd * T * batch
    return parts


def scalability_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm=None, settings: ScaleSettings | None = None,
                           progress: bool = False) -> dict[str, pd.DataFrame]:
    """What PPO costs and how it grows: counted on the course's models, extrapolated on paper.

    ``scale_width``: for each width, the parameters of the four models PPO keeps (policy,
    reference, reward model, value), the bytes of weights + gradients + optimiser state for a
    separate value model, a value head on the shared trunk, and LoRA-style training of the
    last block only, and the FLOPs of one PPO iteration next to an SFT step over the same
    tokens. (Times and measured peak memory are machine-dependent: :func:`measure_ppo_cost`
    measures them live and nothing here stores them.)
    ``label_curve``: reward-model accuracy on the held-out pairs against the number of
    labelled training pairs (the cost of human labels), each model trained for the same
    number of steps. ``scale_extrapolation``: the same accounting for real model sizes
    (an estimate on paper). ``scale_mitigations``: the share of PPO's training-state memory
    each mitigation saves at the course's width, and what training only the last block costs
    the reward model in accuracy (measured). ``rm``, if given, must be the chapter-3 reward
    model (all training pairs, chapter-3 settings); it is reused instead of retrained.
    """
    from . import data
    from .reward import RewardModel, evaluate, train_reward_model

    s = settings or ScaleSettings()
    V, L = tok.vocab_size, s.n_layers
    wrows = []
    for D in s.widths:
        m = TinyGPT(GPTConfig(vocab_size=V, d_model=int(D), n_layers=L, n_heads=s.n_heads,
                              max_len=sft.config.max_len), seed=0)
        c = _counts(m)
        n_rm = c["total"] + D + 1
        n_fwd = c["total"] - c["embedding"] + D * V                  # blocks + LN_f + the (tied) LM head matmul
        n_rm_fwd = c["total"] - c["embedding"]
        mem = ppo_state_bytes(c["total"], n_rm, c["last_block"], int(D), 16, 4)
        fl = _ppo_flops(n_fwd, n_rm_fwd, s.prompt_tokens, s.answer_tokens, s.batch_size, s.ppo_epochs)
        wrows.append({"d_model": int(D), "params_policy": c["total"], "params_reference": c["total"],
                      "params_reward": n_rm, "params_value_head": int(D) + 1, "params_value_separate": n_rm,
                      "params_last_block": c["last_block"],
                      "mb_separate_value": mem["separate_value"] / 2**20, "mb_shared_trunk": mem["shared_trunk"] / 2**20,
                      "mb_last_block": mem["last_block"] / 2**20, "mb_sft": 16 * c["total"] / 2**20,
                      "mflop_ppo_iteration": fl["total"] / 1e6, "mflop_sft_step": fl["sft_step_same_tokens"] / 1e6,
                      "mflop_generation": fl["generation"] / 1e6})
    width = pd.DataFrame(wrows)

    # ---- the cost of labels: accuracy against the number of labelled pairs
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"][:s.n_train]
    test = [p for p in prefs if p["split"] == "test"]
    order = np.random.default_rng(s.seed).permutation(len(train))
    lrows = []
    for n in s.label_counts:
        n = int(min(n, len(train)))
        subset = [train[i] for i in np.sort(order[:n])]
        epochs = max(1, round(s.label_steps * 16 / n))
        steps = epochs * math.ceil(n / 16)
        if rm is not None and n == len(train) and epochs == 2:
            model = rm                                          # the chapter-3 model is exactly this run
        else:
            model = RewardModel(sft.copy(), seed=s.seed)
            train_reward_model(model, tok, subset, epochs=epochs, seed=s.seed, progress=progress,
                               desc=f"reward model, {n} pairs")
        ev = evaluate(model, tok, test)
        lrows.append({"n_pairs": n, "epochs": epochs, "steps": steps, "accuracy": ev["accuracy"],
                      "ci_low": ev["ci_low"], "ci_high": ev["ci_high"]})
    labels = pd.DataFrame(lrows)

    # ---- on paper: real sizes (an estimate)
    erows = []
    for name, N in s.real_models:
        mem = ppo_state_bytes(int(N), int(N), 0, 0, s.bytes_trainable, s.bytes_frozen)
        tokens = s.run_answers * s.run_tokens
        # per answer token: generation 2N, policy + reference forward 4N, reward forward 2N, training 6N × epochs
        flop = tokens * N * (2 + 4 + 2 + 6 * s.ppo_epochs)
        erows.append({"model": name, "params": float(N),
                      "estimate_gb_separate_value": mem["separate_value"] / 1e9,
                      "estimate_gb_shared_trunk": mem["shared_trunk"] / 1e9,
                      "estimate_ppo_run_flop": float(flop),
                      "estimate_accelerator_days": float(flop / s.flops_per_second / 86400),
                      "estimate_sft_same_tokens_flop": float(tokens * 6 * N)})
    extrap = pd.DataFrame(erows)

    # ---- mitigations: memory saved (counted) and the accuracy cost of training less (measured)
    here = width.loc[(width.d_model - sft.config.d_model).abs().idxmin()]
    base = here["mb_separate_value"]
    rm_last = RewardModel(sft.copy(), seed=s.seed)
    train_reward_model(rm_last, tok, train, seed=s.seed, progress=progress, trainable="last_block",
                       desc="reward model, last block only")
    rm_all = rm
    if rm_all is None:
        rm_all = RewardModel(sft.copy(), seed=s.seed)
        train_reward_model(rm_all, tok, train, seed=s.seed, progress=progress, desc="reward model, all weights")
    acc_last, acc_all = evaluate(rm_last, tok, test)["accuracy"], evaluate(rm_all, tok, test)["accuracy"]
    mit = pd.DataFrame([
        {"mitigation": "value head on the shared trunk", "d_model": int(here["d_model"]),
         "memory_saved": 1 - here["mb_shared_trunk"] / base, "reward_accuracy_all": acc_all,
         "reward_accuracy_mitigated": acc_all},
        {"mitigation": "shared trunk + train only the last block", "d_model": int(here["d_model"]),
         "memory_saved": 1 - here["mb_last_block"] / base, "reward_accuracy_all": acc_all,
         "reward_accuracy_mitigated": acc_last},
    ])
    return {"scale_width": width, "label_curve": labels, "scale_extrapolation": extrap, "scale_mitigations": mit}


def measure_ppo_cost(tok: VocabularyTokenizer, widths: Sequence[int] = (32, 64, 128, 256), iterations: int = 2,
                     max_new_tokens: int = 48, batch_size: int = 8, samples_per_prompt: int = 4,
                     prompts: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Seconds per PPO iteration and peak traced memory, measured live at each width (machine-dependent).

    Fresh TinyGPTs (the course's layers and heads, random weights: speed does not depend on
    what a model knows) play policy, reference and reward model; ``ppo.train_ppo`` runs
    ``iterations`` iterations after one warm-up iteration. Memory is the peak of Python
    allocations seen by ``tracemalloc`` during the run (numpy's arrays; BLAS buffers are not
    counted). Never cached and never compared: print it in an ignored cell or plot it.
    """
    from . import data
    from .ppo import PPOConfig, train_ppo
    from .reward import RewardModel

    if prompts is None:
        prompts = [d["prompt"] for d in data.load_rl_prompts()[:16]]
    rows = []
    for D in widths:
        cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=int(D), n_layers=2, n_heads=4, max_len=192)
        policy, rm = TinyGPT(cfg, seed=seed), RewardModel(TinyGPT(cfg, seed=seed + 1), seed=seed)
        ref = policy.copy()
        pcfg = PPOConfig(iterations=1, batch_size=batch_size, samples_per_prompt=samples_per_prompt,
                         minibatch_size=batch_size, max_new_tokens=max_new_tokens, missing_eos_reward=None,
                         judge_every=0, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_ppo(policy, ref, rm, tok, list(prompts), pcfg, progress=False)       # warm-up
            tracemalloc.start()
            t0 = time.perf_counter()
            train_ppo(policy, ref, rm, tok, list(prompts), replace(pcfg, iterations=iterations), progress=False)
            seconds = (time.perf_counter() - t0) / iterations
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        rows.append({"d_model": int(D), "seconds_per_iteration": seconds, "peak_mb": peak / 2**20})
    return pd.DataFrame(rows)


# ============================================================================ summary
def severity(effect: float) -> str:
    """The severity of an effect size by :data:`SEVERITY_RULE` ("n/a" for NaN)."""
    if not np.isfinite(effect):
        return "n/a"
    for threshold, label in SEVERITY_RULE:
        if effect >= threshold:
            return label
    return "low"


def summary_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per challenge: the measured effect, its severity, the measured mitigation
    effectiveness with its interval, and what that interval shows.

    Effect size: the share of a stage's skill above a no-skill floor that the unmitigated
    problem destroys, (q_good - q_bad) / (q_good - q_floor):
      * reward hacking: the gold score, from the hacked run's best checkpoint to its end; the
        floor is the gold score of fluent answers to *other* questions (the SFT policy's
        answers judged against the next prompt's case);
      * annotation quality: reward-model accuracy, from clean labels to one annotator at the
        reference flip rate; the floor is chance (0.5);
      * distribution shift: how often the reward model orders a pair like the gold standard,
        from held-out preference pairs (accuracy) to pairs of the drifted policy's own
        answers (agreement with the gold judge); the floor is chance (0.5);
      * scalability: not a loss of quality. Its severity is the course's judgement; beside it
        stands PPO's training-state memory as a multiple of SFT's at the course's width.
    Severity: the first threshold of :data:`SEVERITY_RULE` the effect size reaches; for
    reward hacking it is marked "(loss within noise)" when the gold score lost from the best
    checkpoint to the end is within two standard errors. The effectiveness shown is the best
    mitigation's.
    """
    rows = []
    # reward hacking
    m = tables["hacking_mitigations"].set_index("mitigation")
    g_floor, g_sft, g_best, g_hack = (float(m.loc[k, "gold"]) for k in (
        "no skill (answers to other questions)", "none (SFT policy)", "none (best checkpoint)", "none (hacked)"))
    effect = _lost_share(g_best, g_hack, g_floor)
    mit = m.dropna(subset=["effectiveness"])
    best = mit["effectiveness"].idxmax() if len(mit) else ""
    curves = tables["hacking_curves"]
    hack = curves[curves.run == m.loc["none (hacked)", "run"]].set_index("iteration")
    se = math.hypot(float(hack.loc[int(m.loc["none (best checkpoint)", "iteration"]), "gold_se"]),
                    float(hack.loc[int(m.loc["none (hacked)", "iteration"]), "gold_se"]))
    row = _summary_row("reward hacking", effect, best, mit,
                       f"gold {g_sft:.3f} (SFT) → {g_best:.3f} (best checkpoint) → {g_hack:.3f} (hacked); "
                       f"no skill {g_floor:.3f}")
    if not g_best - g_hack > 2 * se:
        row["severity"] += " (loss within noise)"
        row["note"] = (f"The gold score lost to hacking ({g_best - g_hack:.3f}) is within two standard errors "
                       f"({2 * se:.3f}) in this run, so no effectiveness can be measured reliably. ")
    rows.append(row)
    # annotation quality
    n = tables["noise_curves"]
    nm = tables["noise_mitigations"].set_index("mitigation")
    ref = float(nm["reference_rate"].iloc[0])
    clean = float(n.loc[n.method == "clean labels", "accuracy"].iloc[0])
    noisy = n[(n.method == "one annotator") & (np.isclose(n.flip_rate, ref))]
    acc_ref = float(noisy["accuracy"].iloc[0]) if len(noisy) else math.nan
    effect = _lost_share(clean, acc_ref, 0.5)
    best = nm["effectiveness"].idxmax() if nm["effectiveness"].notna().any() else ""
    rows.append(_summary_row("annotation quality", effect, best, nm,
                             f"accuracy {clean:.3f} (clean labels) → {acc_ref:.3f} (one annotator, {ref:.0%} flips)"))
    # distribution shift
    sm = tables["shift_mitigation"].iloc[0]
    effect = _lost_share(sm["accuracy_preference_pairs"], sm["agree_drifted"], 0.5)
    sc = tables["shift_categories"]
    out = sc[(sc.reward_model != "all categories") & (sc.pairs.str.startswith("all pairs"))]
    inn = sc[(sc.reward_model != "all categories") & (sc.pairs == "test pairs, other categories")]
    cat_text = (f"; held-out category: {float(inn.accuracy.iloc[0]):.3f} → {float(out.accuracy.iloc[0]):.3f}"
                if len(out) and len(inn) else "")
    rows.append(_summary_row("distribution shift", effect, str(sm["mitigation"]), tables["shift_mitigation"]
                             .set_index("mitigation"),
                             f"ranking {sm['accuracy_preference_pairs']:.3f} (preference pairs) → "
                             f"{sm['agree_sft_samples']:.3f} (SFT samples) → {sm['agree_drifted']:.3f} "
                             f"(drifted policy){cat_text}"))
    # scalability
    sw = tables["scale_width"]
    sx = tables["scale_mitigations"].set_index("mitigation")
    here = sw.loc[sw.d_model == int(sx["d_model"].iloc[0])].iloc[0]
    ratio = here["mb_separate_value"] / here["mb_sft"]
    best = sx["memory_saved"].idxmax()
    row = {"challenge": "scalability", "measured": f"PPO holds {ratio:.1f}× the training-state memory of SFT "
                                                  f"and costs {here['mflop_ppo_iteration'] / here['mflop_sft_step']:.1f}× "
                                                  "the FLOPs of an SFT step on the same tokens",
           "effect_size": math.nan, "severity": "medium (course's judgement)",
           "best_mitigation": best, "effectiveness": float(sx.loc[best, "memory_saved"]),
           "ci_low": math.nan, "ci_high": math.nan}
    rows.append(row)
    out = pd.DataFrame(rows)
    notes = out["note"].fillna("") if "note" in out else pd.Series([""] * len(out))
    out["explanation"] = [n + _explain(r) for n, r in zip(notes, out.drop(columns=["note"], errors="ignore")
                                                         .to_dict("records"))]
    return out.drop(columns=["note"], errors="ignore")


def _lost_share(q_good: float, q_bad: float, q_floor: float) -> float:
    """(q_good - q_bad) / (q_good - q_floor): the share of the skill above the no-skill floor that is lost."""
    return (q_good - q_bad) / (q_good - q_floor) if q_good - q_floor > 1e-12 else math.nan


def _summary_row(challenge: str, effect: float, best: str, mit: pd.DataFrame, measured: str) -> dict:
    e = float(mit.loc[best, "effectiveness"]) if best in mit.index else math.nan
    lo = float(mit.loc[best, "ci_low"]) if best in mit.index else math.nan
    hi = float(mit.loc[best, "ci_high"]) if best in mit.index else math.nan
    return {"challenge": challenge, "measured": measured, "effect_size": effect, "severity": severity(effect),
            "best_mitigation": best, "effectiveness": e, "ci_low": lo, "ci_high": hi}


def _explain(r: Mapping) -> str:
    """One sentence per challenge on what the best mitigation's measured effectiveness shows."""
    e, lo, hi = r["effectiveness"], r["ci_low"], r["ci_high"]
    if r["challenge"] == "scalability":
        return (f"Memory saved at the course's width ({e:.0%}), not a quality recovered: scaling is a cost "
                "that grows with N, not a loss a mitigation wins back, so this share is not comparable "
                "with the others.")
    if not np.isfinite(e):
        return "Not measurable here: the problem cost nothing measurable in this run."
    if np.isfinite(lo) and np.isfinite(hi):
        ci = f" (95% interval {lo:.0%} to {hi:.0%})"
        verdict = ("the mitigation helps: its interval excludes 0" if lo > 0 else
                   "the mitigation hurts: its interval lies below 0" if hi < 0 else
                   "not distinguishable from no mitigation: its interval contains 0")
    else:
        ci, verdict = "", "without an interval, not distinguishable from no mitigation"
    return (f"The best mitigation's effectiveness is {e:.0%}{ci}: {verdict}. One tiny model, one seed and "
            "a few dozen held-out prompts: the interval, not the point, is the result.")


# ============================================================================ the cache
def _encode_table(name: str, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Arrays for one table: every column as a numpy array, strings as unicode, NaN as a mask."""
    out = {f"{name}/__columns__": np.array([str(c) for c in df.columns], dtype=str)}
    for k, col in enumerate(df.columns):
        v = df[col].to_numpy()
        key = f"{name}/{k}"
        if v.dtype.kind in "biu":
            out[key] = v.astype(np.int64) if v.dtype.kind != "b" else v.astype(bool)
        elif v.dtype.kind == "f":
            v = v.astype(np.float64)
            nan = np.isnan(v)                  # ±inf is stored as itself (a Gao curve with no peak)
            if nan.any():                      # NaN never equals NaN: store a mask, so rebuilds compare equal
                out[f"{key}:nan"] = nan
                v = np.where(nan, 0.0, v)
            out[key] = v
        else:
            out[key] = np.array(["" if x is None else str(x) for x in v], dtype=str)
    return out


def save_tables(tables: Mapping[str, pd.DataFrame], path: str | Path) -> Path:
    """Write every table to one ``.npz`` (no pickles): column arrays, strings as numpy unicode."""
    arrays: dict[str, np.ndarray] = {"__format__": np.array(CACHE_FORMAT),
                                     "__tables__": np.array(list(tables), dtype=str)}
    for name, df in tables.items():
        if "/" in name:
            raise ValueError(f"table names may not contain '/': {name!r}")
        arrays.update(_encode_table(name, df))
    path = Path(path)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def load_tables(path: str | Path) -> dict[str, pd.DataFrame]:
    """Read a file written by :func:`save_tables` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        if "__format__" not in z.files or str(z["__format__"]) != CACHE_FORMAT:
            raise ValueError(f"{path} is not an experiments cache (format {CACHE_FORMAT!r} expected)")
        tables = {}
        for name in z["__tables__"].tolist():
            cols = z[f"{name}/__columns__"].tolist()
            data = {}
            for k, c in enumerate(cols):
                v = z[f"{name}/{k}"]
                if f"{name}/{k}:nan" in z.files:
                    v = np.where(z[f"{name}/{k}:nan"], np.nan, v)
                data[c] = v.tolist() if v.dtype.kind == "U" else v
            tables[name] = pd.DataFrame(data, columns=cols)
    return tables


def load_results(directory: str | Path = CHECKPOINT_DIR) -> dict[str, pd.DataFrame]:
    """The cached chapter-6 tables (``experiments.npz``; rebuild with ``make checkpoints``)."""
    path = Path(directory) / CACHE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; rebuild the checkpoints with `make checkpoints`")
    return load_tables(path)


@dataclass
class ChapterSettings:
    """The settings :func:`build_experiments_cache` runs (one object, so the notebook can print them)."""

    hacking: HackingSettings = field(default_factory=HackingSettings)
    noise: NoiseSettings = field(default_factory=NoiseSettings)
    shift: ShiftSettings = field(default_factory=ShiftSettings)
    scale: ScaleSettings = field(default_factory=ScaleSettings)


CHAPTER_SETTINGS = ChapterSettings()


def _label_experiments(tok: VocabularyTokenizer, sft: TinyGPT, rm, noise: NoiseSettings, scale: ScaleSettings,
                       progress: bool = False) -> dict[str, pd.DataFrame]:
    """The experiments that train only reward models (annotation quality, scalability): they do not
    depend on the PPO runs, so :func:`run_all` can run them in a second process."""
    from .ppo import single_threaded_blas

    with single_threaded_blas():
        out = annotation_experiment(tok, sft, noise, progress=progress)
        out.update(scalability_experiment(tok, sft, rm, scale, progress=progress))
    return out


def run_all(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: ChapterSettings | None = None,
            progress: bool = False, workers: int = 1) -> dict[str, pd.DataFrame]:
    """Every experiment at ``settings`` and the summary: all the chapter's tables.

    BLAS runs on one thread (``ppo.single_threaded_blas`` explains why: small matrices, and a busy
    second core would slow the products down tenfold); results do not depend on the core count.
    With ``workers=2`` the reward-model-only experiments run in a second, forked process while
    this one runs PPO (Linux only: "spawn", the default elsewhere, would re-run the caller's
    script in the child); the tables are the same either way, and where no second process can
    be forked everything runs here, one experiment after the other.
    """
    from .ppo import single_threaded_blas

    s = settings or CHAPTER_SETTINGS
    pool = side = None
    if workers > 1 and sys.platform.startswith("linux"):
        try:
            import concurrent.futures
            import multiprocessing

            pool = concurrent.futures.ProcessPoolExecutor(max_workers=1,
                                                          mp_context=multiprocessing.get_context("fork"))
            side = pool.submit(_label_experiments, tok, sft, rm, s.noise, s.scale, False)
        except (OSError, RuntimeError, ValueError):         # no second process here: run sequentially
            pool = side = None
    try:
        with single_threaded_blas():
            hacking, extras = reward_hacking_experiment(tok, sft, rm, s.hacking, progress=progress,
                                                        return_runs=True)
            shift = distribution_shift_experiment(tok, sft, rm, s.shift, progress=progress, hacking_extras=extras)
        labels = None
        if side is not None:
            try:
                labels = side.result()
            except Exception:                                # the second process failed: redo it here
                labels = None
        if labels is None:
            labels = _label_experiments(tok, sft, rm, s.noise, s.scale, progress)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    tables = {**hacking}
    tables.update({k: labels[k] for k in ("noise_curves", "noise_mitigations")})
    tables.update(shift)
    tables.update({k: labels[k] for k in ("scale_width", "label_curve", "scale_extrapolation", "scale_mitigations")})
    tables["summary"] = summary_table(tables)
    tables["settings"] = pd.DataFrame([{"experiment": k, "settings": repr(v)} for k, v in asdict(s).items()])
    return tables


def build_experiments_cache(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False) -> Path:
    """Run every chapter-6 experiment at the chapter's settings; write ``out_dir / "experiments.npz"``.

    Reads ``sft.npz`` and ``reward.npz`` from ``out_dir`` (the checkpoint builder writes them
    first). Everything is seeded, and no timing is stored, so a rebuild reproduces the file.
    About two minutes of one core; the reward-model-only experiments run in a second process
    (:func:`run_all` with ``workers=2``), so on two cores it takes about a minute and a half.
    """
    from .model import TinyGPT as _TinyGPT
    from .reward import load_reward_model

    out_dir = Path(out_dir)
    sft = _TinyGPT.load(out_dir / "sft.npz")
    rm = load_reward_model(out_dir)
    tables = run_all(tok, sft, rm, CHAPTER_SETTINGS, progress=progress, workers=2)
    return save_tables(tables, out_dir / CACHE_FILE)

