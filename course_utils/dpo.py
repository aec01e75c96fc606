"""Direct Preference Optimization (chapter 8, "beyond PPO"): the policy as its own reward model.

RLHF with PPO (chapter 5) maximises E[r(x, y)] - β KL(π ‖ π_ref) against a learned reward
model r. That objective has a closed-form optimum, π*(y | x) ∝ π_ref(y | x) exp(r(x, y) / β)
(``ppo.kl_optimal_policy``), so r(x, y) = β log π*(y | x) / π_ref(y | x) + β log Z(x).
Rafailov et al. (2023), "Direct Preference Optimization: Your Language Model is Secretly a
Reward Model", put this *implicit reward* into the Bradley-Terry loss of the reward model
(chapter 3). Z(x) cancels between two answers to the same prompt, and what is left trains
the policy directly on the preference pairs: no reward model, no sampling, no value head::

    L_DPO = mean_i -log σ( β [(log π(y_c) - log π_ref(y_c)) - (log π(y_r) - log π_ref(y_r))] )

Symbols
-------
=================  ===========================================================================
x, y_c, y_r        a prompt, its chosen and its rejected answer; sequences are laid out as in
                   SFT, ``<bos> <q> x <a> y <eos>``
π, π_ref           the policy being trained and the frozen reference (the SFT model)
log π(y_t)         per-token log-probability of the answer's token t, on the target grid
                   (position j predicts token j + 1)
m_t                the answer mask: 1 on the targets that are the answer's tokens (``<eos>`` too)
log π(y)           the sequence log-probability Σ_t m_t log π(y_t) (``sequence_logprobs``)
β                  the KL coefficient of the implied objective (``DPOConfig.beta``)
r̂(y)               the implicit reward β (log π(y) - log π_ref(y))
u                  r̂(y_c) - r̂(y_r), the implicit-reward margin of a pair
z_t, p_t           the policy's logits and softmax at position t
n                  the number of pairs in a batch
=================  ===========================================================================

The gradient reaches the weights in three steps: ``losses.dpo_loss`` gives
∂L/∂log π(y_c) = -β σ(-u) / n and ∂L/∂log π(y_r) = +β σ(-u) / n; since log π(y) is a sum
over the answer's tokens, every answer token t receives that same number g; and
∂ log π(y_t) / ∂z_t = onehot(y_t) - p_t, so ∂L/∂z_t = g m_t (onehot(y_t) - p_t)
(``losses.token_logprobs_backward``), which ``TinyGPT.backward`` takes into the weights.

Design choices:

* **Sequence log-probabilities are sums, not means**, as in the paper: a longer answer has a
  more negative log π(y), but only *log-ratios* to π_ref enter the loss, and they are
  compared between two answers to the same prompt.
* **π_ref's log-probabilities come from the very batch the policy sees.** In float32 a
  sequence's log-probability depends in its last bits on the batch it is padded into (the
  matrix products are blocked differently), about 1e-5 nats. Precomputing log π_ref once,
  in other batches, would make every margin u of the first step (π = π_ref) a small random
  number instead of exactly 0, and the first step's "accuracy" a coin toss. One forward
  pass of π_ref per step (no backward) costs about a quarter of the step. The held-out
  pairs are scored in fixed chunks, so their log π_ref is computed once.
* **The masking and the sequence layout are those of PPO** (``sampling.answer_batch``,
  ``sampling.policy_logprobs`` at temperature 1): ``sequence_logprobs`` gives what
  ``ppo.answer_logprobs`` gives, for any mix of prompts.
* **Pairs are oriented by ``reward.orient_pairs``** (``label="majority"`` follows the
  annotators' votes, ``"gold"`` the dataset), exactly as the reward model of chapter 3 saw
  them; held-out pairs are always scored against their dataset labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import runtime
from .losses import dpo_loss, dpo_stats, token_logprobs_backward
from .model import TinyGPT
from .optim import AdamW, clip_grad_norm, lr_schedule
from .progress import Progress
from .reward import orient_pairs
from .rl_loop import params_finite, run_warning
from .runtime import single_threaded_blas
from .sampling import answer_batch, policy_logprobs
from .tokenizer import VocabularyTokenizer
from .training import encode_sft, shuffled_batches

__all__ = [
    "DPOConfig",
    "DEFAULT_CONFIG",
    "LOG_COLUMNS",
    "encode_pairs",
    "sequence_logprobs",
    "pair_logprobs",
    "dpo_gradients",
    "evaluate_dpo",
    "train_dpo",
]


# ============================================================================ configuration
@dataclass
class DPOConfig:
    """Every knob of a DPO run. The learning rate warms up and decays as the reward model's does.

    β < 0 and β = 0 are accepted (``train_dpo`` warns): they are the learner's experiments.
    """

    epochs: int = 2             # passes over the (oriented) training pairs
    batch_size: int = 16        # pairs per step
    lr: float = 1e-4            # peak AdamW learning rate
    beta: float = 0.1           # β, how far the policy may move from π_ref
    warmup: int = 4             # steps of linear warm-up
    min_lr_ratio: float = 0.1   # the cosine decay ends at min_lr_ratio · lr
    weight_decay: float = 0.0   # AdamW decoupled weight decay
    grad_clip: float = 1.0      # global gradient-norm clip (0 = none)
    label: str = "majority"     # "majority" or "gold" (reward.orient_pairs)
    eval_every: int = 4         # score the held-out pairs every this many steps and after each epoch (0 = only then)
    seed: int = 0               # pair order

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.warmup < 0 or self.eval_every < 0:
            raise ValueError("epochs, warmup and eval_every must be >= 0, batch_size >= 1")
        if not (self.lr >= 0 and self.weight_decay >= 0 and self.grad_clip >= 0 and 0 <= self.min_lr_ratio <= 1):
            raise ValueError("lr, weight_decay and grad_clip must be >= 0, min_lr_ratio in [0, 1]")
        if not math.isfinite(self.beta):
            raise ValueError(f"beta must be a finite number, got {self.beta}")
        if self.label not in ("majority", "gold"):
            raise ValueError(f"label must be 'majority' or 'gold', got {self.label!r}")


DEFAULT_CONFIG = DPOConfig()

LOG_COLUMNS: tuple[str, ...] = (
    "epoch", "step", "lr", "loss", "accuracy", "margin", "reward_chosen", "reward_rejected",
    "chosen_logp_change", "rejected_logp_change", "grad_norm", "eval_loss", "eval_accuracy", "eval_margin",
)


# ============================================================================ log-probabilities
def encode_pairs(tok: VocabularyTokenizer, pairs: Sequence[Mapping]) -> tuple[np.ndarray, np.ndarray]:
    """One batch of 2n rows, the n chosen sequences then the n rejected ones: tokens (2n, T), mask m (2n, T-1)."""
    prompts = [p["prompt"] for p in pairs]
    return answer_batch(tok, prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])


def _check_lengths(model: TinyGPT, tok: VocabularyTokenizer, pairs: Sequence[Mapping], what: str) -> None:
    """Raise a readable ValueError if some pair's sequence does not fit into ``model.config.max_len``."""
    for i, p in enumerate(pairs):
        n = max(len(encode_sft(tok, p["prompt"], p[k])[0]) for k in ("chosen", "rejected"))
        if n - 1 > model.config.max_len:                         # the forward pass reads all tokens but the last
            name = p.get("id", f"number {i}")
            raise ValueError(f"{what} pair {name} has {n} tokens; the policy reads at most "
                             f"max_len + 1 = {model.config.max_len + 1}")


def sequence_logprobs(model: TinyGPT, tokens: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log π(y) = Σ_t m_t log π(y_t) for every row (float64, shape (B,)), and the logits z (B, T-1, V).

    One forward pass (``sampling.policy_logprobs`` at temperature 1) whose cache stays in ``model``, so
    ``model.backward`` can follow (``dpo_gradients``); set ``model._cache = None`` otherwise.
    """
    logp, logits = policy_logprobs(model, tokens, 1.0)
    return (logp * mask).sum(axis=1).astype(np.float64), logits


def pair_logprobs(model: TinyGPT, tok: VocabularyTokenizer, pairs: Sequence[Mapping],
                  batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(log π(y_c), log π(y_r)) of every pair, in order (no gradient; ``batch_size`` pairs per forward)."""
    pairs = list(pairs)
    chosen, rejected = np.empty(len(pairs)), np.empty(len(pairs))
    for start in range(0, len(pairs), max(int(batch_size), 1)):
        chunk = pairs[start:start + batch_size]
        tokens, mask = encode_pairs(tok, chunk)
        seq, _ = sequence_logprobs(model, tokens, mask)
        chosen[start:start + len(chunk)], rejected[start:start + len(chunk)] = seq[:len(chunk)], seq[len(chunk):]
    model._cache = None                                          # nothing to backpropagate
    return chosen, rejected


def dpo_gradients(policy: TinyGPT, tokens: np.ndarray, mask: np.ndarray, ref_logprobs: np.ndarray,
                  beta: float) -> tuple[float, dict[str, np.ndarray], dict[str, float]]:
    """L_DPO of one batch and its gradient with respect to every weight of ``policy``.

    ``tokens`` (2n, T) and ``mask`` (2n, T-1) hold the n chosen rows then the n rejected ones
    (``encode_pairs``); ``ref_logprobs`` (2n,) are log π_ref of the same rows. One forward
    pass gives log π(y) of all 2n answers; ``losses.dpo_loss`` gives g = ∂L/∂log π(y) per
    row; every answer token of the row receives g, ∂L/∂z_t = g m_t (onehot(y_t) - p_t), and
    one backward pass takes it into the weights.
    Returns (L, gradients keyed like ``policy.params``, ``losses.dpo_stats`` of the batch).
    """
    seq, logits = sequence_logprobs(policy, tokens, mask)
    n = len(seq) // 2
    ref = np.asarray(ref_logprobs, dtype=np.float64)
    if len(seq) != 2 * n or ref.shape != seq.shape:
        raise ValueError(f"expected 2n rows and 2n reference log-probabilities, got {len(seq)} and {ref.shape}")
    loss, d_chosen, d_rejected = dpo_loss(seq[:n], seq[n:], ref[:n], ref[n:], beta)
    stats = dpo_stats(seq[:n], seq[n:], ref[:n], ref[n:], beta)
    dseq = np.concatenate([d_chosen, d_rejected])                 # g = ∂L/∂log π(y), one per row
    dlogits = token_logprobs_backward(logits, tokens[:, 1:], dseq[:, None] * mask)
    grads = policy.backward(dlogits)
    policy._cache = None
    return loss, grads, stats


def evaluate_dpo(policy: TinyGPT, ref: TinyGPT | None, tok: VocabularyTokenizer, pairs: Sequence[Mapping],
                 beta: float, ref_logprobs: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """How the policy's implicit reward ranks ``pairs`` by their dataset labels (chosen should win).

    Returns ``n``, ``loss`` (L_DPO), and the ``losses.dpo_stats`` keys: ``accuracy`` (share of
    pairs with u > 0), ``margin``, ``reward_chosen``, ``reward_rejected``,
    ``chosen_logp_change`` and ``rejected_logp_change``. ``ref_logprobs`` = (log π_ref(y_c),
    log π_ref(y_r)) if already computed (then ``ref`` may be None).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pairs to evaluate")
    if ref_logprobs is None:
        if ref is None:
            raise ValueError("pass the reference model or its log-probabilities")
        ref_logprobs = pair_logprobs(ref, tok, pairs)
    with single_threaded_blas():
        lc, lr = pair_logprobs(policy, tok, pairs)
    loss, _, _ = dpo_loss(lc, lr, ref_logprobs[0], ref_logprobs[1], beta)
    return {"n": len(pairs), "loss": loss, **dpo_stats(lc, lr, ref_logprobs[0], ref_logprobs[1], beta)}


# ============================================================================ the loop
def warn_extreme_settings(cfg: DPOConfig) -> str:
    """The up-front warnings of ``train_dpo``; returns the last message ("" if none)."""
    message = ""
    if cfg.beta == 0:
        message = run_warning("β = 0: the DPO loss is log 2 for every pair and its gradient is 0, so the policy "
                              "does not move at all.", 4)
    elif cfg.beta < 0:
        message = run_warning(f"β = {cfg.beta:g} < 0 reverses every preference: the policy learns to prefer the "
                              "rejected answers.", 4)
    elif cfg.beta > 10:
        message = run_warning(f"β = {cfg.beta:g} is far above the usual 0.01 .. 0.5: σ saturates after a tiny "
                              "move, so a pair stops pulling as soon as it is ranked the right way by the smallest "
                              "margin, and the loss jumps between 0 and large values.", 4)
    if cfg.lr > 1e-2:
        message = run_warning(f"lr = {cfg.lr:g} is far above what fine-tuning a pretrained model tolerates "
                              "(1e-5 .. 1e-3): expect the policy to break down.", 4)
    return message


def _step(policy: TinyGPT, opt: AdamW, tokens: np.ndarray, mask: np.ndarray, ref_logprobs: np.ndarray,
          cfg: DPOConfig, lr: float) -> tuple[dict[str, float], str]:
    """One DPO step: loss and gradient, clip, AdamW. Returns the log entries and what went wrong ("" if nothing)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, grads, stats = dpo_gradients(policy, tokens, mask, ref_logprobs, cfg.beta)
    row = {"loss": loss, **stats, "grad_norm": math.nan}
    if not math.isfinite(loss):
        return row, "loss"
    if cfg.grad_clip:
        row["grad_norm"] = clip_grad_norm(grads, cfg.grad_clip)
    if not all(np.isfinite(g).all() for g in grads.values()):
        return row, "gradient"
    opt.step(grads, lr=lr)
    return row, "" if params_finite(policy.params) else "weights"


def train_dpo(policy: TinyGPT, ref: TinyGPT, tok: VocabularyTokenizer, pairs: Sequence[Mapping],
              config: DPOConfig | None = None, progress: bool = True,
              eval_pairs: Sequence[Mapping] | None = None, *, desc: str = "DPO") -> tuple[TinyGPT, pd.DataFrame]:
    """DPO on ``policy`` (updated in place) from preference ``pairs``, anchored to the frozen ``ref``.

    Each step takes ``batch_size`` shuffled pairs (oriented by ``config.label``), computes
    L_DPO and its gradient in one forward and one backward pass of the policy
    (``dpo_gradients``; log π_ref from one forward pass of ``ref`` on the same batch), clips
    the gradient norm and takes an AdamW step.

    Returns:
        (policy, log): one row per step with ``LOG_COLUMNS``: the batch's ``loss``,
        ``accuracy``, ``margin`` (mean u), implicit rewards, and the mean log-probability
        changes of the chosen and rejected answers against π_ref (nats; both falling is the
        pitfall to look for), all *before* the step's update; ``grad_norm`` (before
        clipping); and on evaluation steps (after the update) ``eval_loss``,
        ``eval_accuracy`` and ``eval_margin`` on ``eval_pairs`` (their dataset labels).
        ``log.attrs`` holds ``stopped`` (bool), ``message`` and ``config``.

    β ≤ 0, β > 10 and a learning rate above 1e-2 warn up front; a non-finite loss, gradient
    or weight stops the run with a ``RuntimeWarning`` and the weights that last gave a
    finite loss.
    """
    runtime.configure()                   # glibc keeps the freed temporaries of each step (runtime.py)
    cfg = config or DPOConfig()
    data = orient_pairs(pairs, cfg.label)
    if not data:
        raise ValueError("no preference pairs to train on")
    held_out = list(eval_pairs or [])
    _check_lengths(policy, tok, data, "training")
    _check_lengths(policy, tok, held_out, "held-out")
    message = warn_extreme_settings(cfg)
    with single_threaded_blas():
        eval_ref = pair_logprobs(ref, tok, held_out) if held_out else None   # π_ref is frozen: once
    opt = AdamW(policy.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    total = cfg.epochs * math.ceil(len(data) / cfg.batch_size)
    good = policy.state_dict()                                        # the weights that last gave a finite loss
    rows, stopped = [], False
    with Progress(total, desc, display=None if progress else False) as bar, single_threaded_blas():
        for epoch, step, idx, epoch_end in shuffled_batches(len(data), cfg.batch_size, cfg.epochs, rng):
            tokens, mask = encode_pairs(tok, [data[i] for i in idx])
            lr = lr_schedule(step - 1, cfg.lr, cfg.warmup, total, cfg.lr * cfg.min_lr_ratio)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                ref_seq, _ = sequence_logprobs(ref, tokens, mask)      # log π_ref on the same batch layout
            ref._cache = None
            snapshot = policy.state_dict()
            entries, failed = _step(policy, opt, tokens, mask, ref_seq, cfg, lr)
            row = {"epoch": epoch, "step": step, "lr": lr, **entries}
            rows.append(row)
            if math.isfinite(entries["loss"]):
                good = snapshot
            if failed:
                policy.load_state_dict(good)
                message = run_warning(f"DPO stopped at step {step}: the {failed} became infinite or NaN "
                                      "(the learning rate is probably too large). The weights that last gave a "
                                      "finite loss are kept.")
                stopped = True
                break
            if held_out and (epoch_end or (cfg.eval_every and step % cfg.eval_every == 0)):
                ev = evaluate_dpo(policy, None, tok, held_out, cfg.beta, eval_ref)
                row.update(eval_loss=ev["loss"], eval_accuracy=ev["accuracy"], eval_margin=ev["margin"])
            bar.update(loss=row["loss"], acc=row["accuracy"])
    log = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    log.attrs.update(stopped=stopped, message=message, config=asdict(cfg))
    return policy, log
