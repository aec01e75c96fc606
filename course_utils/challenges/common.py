"""What every chapter-6 experiment shares: the effectiveness measure, the Gao fit, intervals,
reward models on the SFT trunk, sampling and scoring a policy, and PPO that keeps checkpoints.

* :func:`effectiveness`: E = (q_M - q_bad) / (q_good - q_bad), the one measure of every mitigation;
* :func:`gao_curve`, :func:`fit_gao`, :func:`gao_peak`: R(d) = d (a - b log d) (Gao et al. 2022);
* the 95% intervals of the tables come from ``stats.py`` (``wilson_interval``,
  ``bootstrap_indices``, ``percentile_interval`` at ``TAILS_95``);
* ``_preference_pairs``, ``_trained_reward_model``, ``_pair_correct``: reward models trained and
  scored on the preference pairs;
* :class:`EnsembleReward`: several standardised reward models as one;
* :func:`evaluate_policy` (with ``_generate``, ``_answer_logprob``, ``_scores``, ``_judge``,
  :func:`repetition`, ``_greedy``): answers of a policy, their KL to π_ref, proxies and gold score;
* :class:`PPORun`, :func:`run_ppo_checkpointed`: ``ppo.train_ppo`` keeping the weights of chosen
  iterations (and, if asked, every scored rollout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import data
from ..judge import METRICS, judge_many
from ..losses import token_logprobs
from ..model import TinyGPT
from ..ppo import reward_normalisation, sample_answers, train_ppo
from ..reward import RewardConfig, RewardModel, pair_rewards, train_reward_model
from ..tokenizer import VocabularyTokenizer
from ..training import encode_sft


# ============================================================================ effectiveness and the Gao fit
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


# ============================================================================ reward models on the SFT trunk
def _preference_pairs(n_train: int | None = None,
                      n_test: int | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """(every preference pair, the first ``n_train`` training pairs, the first ``n_test`` test pairs);
    None keeps them all."""
    prefs = data.load_preferences()
    train = [p for p in prefs if p["split"] == "train"][:n_train]
    test = [p for p in prefs if p["split"] == "test"][:n_test]
    return prefs, train, test


def _trained_reward_model(sft: TinyGPT, tok: VocabularyTokenizer, pairs: Sequence[Mapping], seed: int,
                          progress: bool = False, *, desc: str = "reward model", label_smoothing: float = 0.0,
                          **config_fields) -> RewardModel:
    """A reward model on a copy of ``sft`` (head drawn with ``seed``), trained on ``pairs`` with
    ``reward.RewardConfig(seed=seed, **config_fields)`` (epochs, label, trainable, ...)."""
    rm = RewardModel(sft.copy(), seed=seed)
    train_reward_model(rm, tok, pairs, RewardConfig(seed=seed, **config_fields), progress, desc=desc,
                       label_smoothing=label_smoothing)
    return rm


def _pair_correct(rm, tok, pairs: Sequence[Mapping]) -> np.ndarray:
    """1.0 where the reward model ranks the dataset's chosen answer above the rejected one."""
    rc, rr = pair_rewards(rm, tok, pairs)
    return (rc > rr).astype(np.float64)


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
    """Reward-model scores of right-padded sequences, in chunks."""
    out = np.empty(len(lengths))
    for s in range(0, len(lengths), chunk):
        idx = slice(s, s + chunk)
        W = int(lengths[idx].max())
        out[idx] = np.asarray(reward_model.forward(tokens[idx, :W], lengths[idx]), dtype=np.float64)
    return out


def _judge(answers: Sequence[str], scenarios: Sequence[Mapping]) -> pd.DataFrame:
    return judge_many(list(answers), list(scenarios))


def evaluate_policy(policy: TinyGPT, ref: TinyGPT, tok: VocabularyTokenizer, items: Sequence[Mapping],
                    scenarios: Mapping[str, Mapping], reward_models: Mapping[str, object], samples: int = 3,
                    max_new_tokens: int = 112, temperature: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Sample ``samples`` answers per prompt from π_θ and score each with the proxies and the gold judge.

    ``items``: prompts with ``prompt``, ``scenario_id`` (and ``id``). Per answer: the KL
    estimate Σ_t [log π_θ(y_t) - log π_ref(y_t)] (unbiased for KL(π_θ ‖ π_ref) of the whole
    answer, at the sampling temperature), each reward model's score (of the whole
    answer, as PPO scores it), and the gold judge's five metrics and ``overall``.
    The same ``seed`` for every checkpoint of a run gives common random numbers, so the
    differences between checkpoints are less noisy than the checkpoints themselves.

    Returns one row per answer: ``item``, ``id``, ``sample``, ``kl``, ``length``, ``ended``,
    ``score:<name>`` for every reward model, the judge's METRICS, ``overall``,
    ``repetition`` (:func:`repetition`) and ``answer``.
    """
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
