"""Decoding: turning the model's logits into tokens (temperature, top-k, top-p) and what ``generate`` returns.

Chapter 1 samples from TinyGPT with these functions; ``model.TinyGPT.generate`` calls
:func:`sample_next_token` once per new token.

Symbols
-------
=============  ==============================================================
z              logits of one position, one row per sequence (B, V)
τ              temperature: sample from softmax(z / τ); τ = 0 is greedy (argmax z)
k, p           top-k keeps the k largest logits; top-p the smallest set of most likely
               tokens whose probability reaches p (nucleus sampling, Holtzman et al. 2020)
q              the distribution actually sampled from, after τ, top-k and top-p
=============  ==============================================================
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Generation", "filter_logits", "sample_next_token"]


class Generation(NamedTuple):
    """What ``TinyGPT.generate`` returns when log-probabilities or logits are requested.

    tokens:   (B, n) new tokens; after a row's ``stop_id`` the row holds ``pad_id``.
    logprobs: (B, n) log q(token) under the distribution actually sampled from (after
              temperature, top-k, top-p); 0 after the stop and for greedy decoding.
    logits:   (B, n, V) raw model logits (before temperature) at each step, or None.
    lengths:  (B,) number of generated tokens per row, the stop token included.
    """

    tokens: np.ndarray
    logprobs: np.ndarray | None
    logits: np.ndarray | None
    lengths: np.ndarray




def filter_logits(logits: np.ndarray, top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
    """Set the logits of tokens outside the top-k / nucleus (top-p) set to -∞ (float64 copy).

    * top-k: keep every token whose logit is ≥ the k-th largest (so ties with the k-th are
      all kept; the result does not depend on how ties are ordered). k ≥ V keeps all.
    * top-p (Holtzman et al. 2020): sort by probability, keep the shortest prefix whose
      probability mass reaches p (the most likely token is always kept), plus every token
      tied with the least likely kept one. p = 1 keeps all.
    Applied in this order, to the rows of ``logits`` (..., V).
    """
    z = np.array(logits, dtype=np.float64)
    V = z.shape[-1]
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or None), got {top_k}")
        if top_k < V:
            kth_largest = np.partition(z, V - top_k, axis=-1)[..., V - top_k, None]
            z[z < kth_largest] = -np.inf
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
        if top_p < 1.0:
            prob = np.exp(z - z.max(axis=-1, keepdims=True))
            prob /= prob.sum(axis=-1, keepdims=True)
            p_sorted = -np.sort(-prob, axis=-1)                         # descending
            mass_before = np.cumsum(p_sorted, axis=-1) - p_sorted
            n_keep = (mass_before < top_p).sum(axis=-1, keepdims=True)  # ≥ 1
            p_min_kept = np.take_along_axis(p_sorted, n_keep - 1, axis=-1)
            z[prob < p_min_kept] = -np.inf
    return z


def sample_next_token(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one token per row of ``logits`` (B, V); return (tokens (B,), log q(token) (B,)).

    q = softmax(filter_logits(z / τ, top_k, top_p)), sampled by inverting its cumulative
    distribution with one uniform number per row. τ = 0 is greedy: token = argmax z and
    log q = 0 (q puts all its mass there).
    """
    z = np.asarray(logits, dtype=np.float64)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return z.argmax(axis=-1), np.zeros(z.shape[0])
    rng = np.random.default_rng(rng)
    z = filter_logits(z / temperature, top_k, top_p)
    log_q = z - z.max(axis=-1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(axis=-1, keepdims=True))        # log softmax
    cdf = np.cumsum(np.exp(log_q), axis=-1)
    u = rng.random(z.shape[0]) * cdf[:, -1]
    token = (cdf <= u[:, None]).sum(axis=-1)                          # first index with cdf > u
    last_allowed = z.shape[1] - 1 - np.argmax(np.isfinite(z[:, ::-1]), axis=-1)
    token = np.minimum(token, last_allowed)                           # guard against rounding at u ≈ 1
    return token, log_q[np.arange(z.shape[0]), token]
