"""Sampling answers from a policy and scoring them: what PPO, GRPO, DPO and best-of-n share.

Every method of chapters 5 and 8 needs the same four things from a TinyGPT policy: answers
sampled to prompts, the log-probability of each answer token under π and under the frozen
reference π_ref, and the reward model's score of each answer. They live here, once.

Symbols
-------
=================  ===========================================================================
x, y               a prompt and an answer; the sequence is ``<bos> <q> x <a> y <eos>``
P, L               tokens of the prompt part (up to and including ``<a>``) and of the answer
                   (``<eos>`` included when the policy emitted it)
π, π_ref, π_old    the policy, the frozen SFT reference, the policy that sampled the answers
τ                  the sampling temperature; every log-probability here is log softmax(z / τ)
z_t                the logits at position t (divided by τ: "scaled")
log π(y_t)         per-token log-probability of the sampled token, shape (B, T-1) on the
                   grid of *targets* (position j predicts token j + 1)
m_t                the response mask: 1 on the answer's tokens, 0 on prompt and padding
H_t, KL_t          entropy of π and exact KL(π ‖ π_ref) at position t (diagnostics)
r(x, y)            the reward model's score of the whole sequence (prompt and answer)
μ, σ               mean and standard deviation of r over a policy's samples (reward normalisation)
=================  ===========================================================================

Prompts of equal token length share one ``TinyGPT.generate`` call (it has no attention mask,
so prompts of different lengths cannot); everything after sampling works on right-padded
sequences, which is exact for a causal model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .losses import token_logprobs
from .model import TinyGPT
from .runtime import one_blas_thread
from .tokenizer import VocabularyTokenizer
from .training import encode_sft

__all__ = [
    "RewardModelLike",
    "Samples",
    "policy_logprobs",
    "answer_batch",
    "answer_logprobs",
    "sample_answers",
    "sample_batch",
    "response_mask",
    "entropy_and_kl",
    "sample_and_score",
    "reward_normalisation",
]


class RewardModelLike(Protocol):
    """What PPO needs from a reward model: rewards (B,) of right-padded sequences of ``lengths`` real tokens."""

    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray: ...


class ValueHeadLike(Protocol):
    """A value head: V_t (B, T) from the trunk's hidden states (``ppo.ValueHead``)."""

    def forward(self, hidden: np.ndarray) -> np.ndarray: ...



@one_blas_thread
def policy_logprobs(model: TinyGPT, tokens: np.ndarray, temperature: float):
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


def answer_batch(tok: VocabularyTokenizer, prompts: Sequence[str],
                  answers: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded ``<bos> <q> x <a> y <eos>`` rows (n, T) and the answer mask m (n, T-1) on the target grid.

    m is 1 on the targets that are the answer's tokens, ``<eos>`` included (see
    ``response_mask``), so Σ_t m_t log π(y_t) is the sequence log-probability log π(y | x).
    Shared by ``answer_logprobs`` and the DPO trainer (``dpo.sequence_logprobs``).
    """
    seqs, starts = zip(*(encode_sft(tok, p, a) for p, a in zip(prompts, answers, strict=True)))
    plen = np.asarray(starts, dtype=np.int64)
    alen = np.array([len(s) for s in seqs], dtype=np.int64) - plen
    T = int((plen + alen).max())
    tokens = np.full((len(seqs), T), tok.pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
    return tokens, response_mask(plen, alen, T - 1)


def answer_logprobs(model: TinyGPT, tok: VocabularyTokenizer, prompt: str, answers: Sequence[str],
                    temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """log π(y | x) = Σ_t log π(y_t | x, y_<t) of each answer (``<eos>`` included), and its token count.

    The sequences are ``<bos> <q> prompt <a> answer <eos>``; returns two arrays of shape (n,).
    """
    tokens, mask = answer_batch(tok, [prompt] * len(answers), answers)
    logp, _ = policy_logprobs(model, tokens, temperature)
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
    tokens, plen, alen, ended, _ = sample_batch(model, tok, ids, max_new_tokens, temperature, rng)
    texts = [tok.decode([int(t) for t in tokens[i, plen[i]:plen[i] + alen[i]] if t != tok.eos_id])
             for i in range(len(ids))]
    return (texts, ended) if return_ended else texts


@one_blas_thread
def sample_batch(policy: TinyGPT, tok: VocabularyTokenizer, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int,
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


def response_mask(plen: np.ndarray, alen: np.ndarray, width: int) -> np.ndarray:
    """m on the target grid: 1 at positions P-1 .. P-1+L-1 (the targets that are answer tokens)."""
    j = np.arange(width)[None, :]
    return ((j >= plen[:, None] - 1) & (j < (plen + alen)[:, None] - 1)).astype(np.float64)


def entropy_and_kl(rows: np.ndarray, ref_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


@dataclass
class Samples:
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
    prompt_index: np.ndarray

    @property
    def seq_lens(self) -> np.ndarray:
        return self.prompt_lens + self.answer_lens


@one_blas_thread
def sample_and_score(policy: TinyGPT, ref: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
                      prompt_ids: Sequence[Sequence[int]], max_new_tokens: int, temperature: float,
                      rng: np.random.Generator, value_head: ValueHeadLike | None = None,
                      timings: dict[str, float] | None = None) -> Samples:
    """Steps 1-4 of ``rollout``: sample, one forward of π_old (and V_old) and of π_ref, the scores.

    ``timings``, if given, receives the seconds spent in ``generation`` (step 1).
    """
    t0 = time.perf_counter()
    tokens, plen, alen, ended, gen_logq = sample_batch(policy, tok, prompt_ids, max_new_tokens, temperature, rng)
    if timings is not None:
        timings["generation"] = time.perf_counter() - t0
    B, T = tokens.shape
    mask = response_mask(plen, alen, T - 1)

    answer = mask > 0                                                                # (B, T-1) booleans
    logprobs, scaled = policy_logprobs(policy, tokens, temperature)                        # log π_old
    values = (None if value_head is None
              else value_head.forward(policy.hidden).astype(np.float64) * mask)     # V_old
    ref_logprobs, ref_scaled = policy_logprobs(ref, tokens, temperature)                   # log π_ref
    ent, exact = np.zeros(mask.shape), np.zeros(mask.shape)                          # diagnostics only:
    ent[answer], exact[answer] = entropy_and_kl(scaled[answer], ref_scaled[answer]) # H_t, exact KL_t
    del scaled, ref_scaled
    policy._cache = ref._cache = None                        # free the activations: nothing to backprop yet

    scores = np.asarray(reward_model.forward(tokens, plen + alen), dtype=np.float64)   # r(x, y), raw
    gap = float(np.abs((gen_logq - logprobs) * mask).sum() / max(mask.sum(), 1.0))
    answers = [tok.decode([int(t) for t in tokens[i, plen[i]:plen[i] + alen[i]] if t != tok.eos_id])
               for i in range(B)]
    return Samples(tokens=tokens, mask=mask, prompt_lens=plen, answer_lens=alen, ended=ended, logprobs=logprobs,
                   ref_logprobs=ref_logprobs, values=values, scores=scores, entropy=ent, exact_kl=exact,
                   logprob_gap=gap, answers=answers, prompt_index=np.zeros(B, dtype=np.int64))


@one_blas_thread
def reward_normalisation(policy: TinyGPT, reward_model: RewardModelLike, tok: VocabularyTokenizer,
                         prompt_ids: Sequence[Sequence[int]], n: int, max_new_tokens: int, temperature: float,
                         seed: int = 0, batch_size: int = 64) -> tuple[float, float]:
    """(μ, σ) of the reward model's raw scores r(x, y) of ``n`` answers y sampled from ``policy``
    (the SFT model, before PPO) at ``temperature``, the prompts x cycled in a seeded random order.

    PPO's reward normalisation (Huang et al. 2024, "The N+ implementation details of RLHF with PPO").
    The first rollout alone (16 answers) gives a noisy μ and σ; a few hundred samples fix the scale
    of r for the whole run. σ below 1e-6 is taken as 1.
    """
    rng = np.random.default_rng([seed, 1])
    order = np.resize(rng.permutation(len(prompt_ids)), n)
    scores = []
    for start in range(0, n, batch_size):
        ids = [prompt_ids[i] for i in order[start:start + batch_size]]
        tokens, plen, alen, _, _ = sample_batch(policy, tok, ids, max_new_tokens, temperature, rng)
        scores.append(np.asarray(reward_model.forward(tokens, plen + alen), dtype=np.float64))
        policy._cache = None
    scores = np.concatenate(scores)
    sd = float(scores.std())
    return float(scores.mean()), (sd if sd > 1e-6 else 1.0)
