"""Pretraining and supervised fine-tuning (SFT) of TinyGPT.

Symbols (as in chapters 1 and 2)

| symbol | meaning | here |
|---|---|---|
| w_t | the token at position t | ``tokens[:, t]`` |
| P(w_t \\| w_<t) | the model's next-token distribution | ``softmax(logits[:, t-1])`` |
| L | mean cross-entropy, -1/N Σ log P(w_t \\| w_<t) | ``losses.cross_entropy`` |
| PPL | perplexity, exp(L) | ``np.exp(loss)`` |
| x, y | an SFT prompt and its expert response | ``demo["prompt"]``, ``demo["response"]`` |
| m_t | the loss mask: 1 on response tokens, 0 on prompt and padding | ``mask`` |
| L_SFT | -Σ_t m_t log π(y_t \\| x, y_<t) / Σ_t m_t | ``cross_entropy(..., mask)`` |

An SFT example is laid out as ``<bos> <q> prompt <a> response <eos>``; the model learns to
continue after ``<a>``. Pretraining reads the corpus as one token stream and cuts random
windows of ``seq_len + 1`` tokens (inputs are the first ``seq_len``, targets the last).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from . import runtime
from .losses import cross_entropy
from .model import GPTConfig, TinyGPT
from .optim import AdamW, clip_grad_norm, lr_schedule
from .progress import Progress
from .tokenizer import VocabularyTokenizer


# ----------------------------------------------------------------------------- configs
@dataclass
class PretrainConfig:
    """Every knob of a pretraining run (the chapter-1 parameters cell mirrors these)."""

    steps: int = 400            # optimiser steps
    batch_size: int = 16        # windows of the corpus per step
    seq_len: int = 64           # T, tokens per window
    lr: float = 3e-3            # peak AdamW learning rate, reached after the warm-up
    warmup: int = 40            # steps of linear warm-up
    min_lr: float = 3e-4        # where the cosine decay ends
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    grad_clip: float = 1.0      # global gradient-norm clip (0 = none)
    val_fraction: float = 0.1   # share of the corpus held out for the validation loss
    eval_every: int = 50        # steps between validation losses
    eval_batches: int = 8       # windows' batches averaged per validation loss
    seed: int = 0               # initial weights and window order


@dataclass
class SFTConfig:
    """Every knob of an SFT run (the chapter-2 parameters cell mirrors these)."""

    epochs: int = 10              # passes over the demonstrations
    batch_size: int = 16          # demonstrations per step
    lr: float = 3e-3              # peak AdamW learning rate, reached after the warm-up
    warmup: int = 10              # steps of linear warm-up
    min_lr: float = 3e-4          # where the cosine decay ends
    weight_decay: float = 0.0     # AdamW decoupled weight decay
    grad_clip: float = 1.0        # global gradient-norm clip (0 = none)
    mask_prompt: bool = True      # learn the response tokens only (m_t = 0 on the prompt)
    prompt_dropout: float = 0.0   # share of prompt words replaced by <unk> in each batch (word dropout)
    seed: int = 0                 # demonstration order and dropout


@dataclass
class History:
    """What a training run returns: the per-step log and whether it stopped early."""

    log: pd.DataFrame
    diverged: bool = False
    message: str = ""
    config: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- data
def corpus_stream(tokenizer: VocabularyTokenizer, corpus: str) -> np.ndarray:
    """Encode the corpus paragraph by paragraph, each ended by ``<eos>``, as one int array."""
    ids: list[int] = []
    for para in corpus.split("\n\n"):
        para = para.strip()
        if para:
            ids.extend(tokenizer.encode(para))
            ids.append(tokenizer.eos_id)
    return np.asarray(ids, dtype=np.int64)


def split_stream(stream: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train on the first (1 - f) of the stream, validate on the last f (no overlap)."""
    n_val = int(len(stream) * val_fraction)
    return stream[: len(stream) - n_val], stream[len(stream) - n_val :]


def lm_batch(stream: np.ndarray, batch_size: int, seq_len: int, rng: np.random.Generator):
    """Random windows: inputs ``x`` (B, T) and next-token targets ``y`` (B, T)."""
    starts = rng.integers(0, len(stream) - seq_len - 1, size=batch_size)
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    windows = stream[idx]
    return windows[:, :-1], windows[:, 1:]


def encode_sft(tokenizer: VocabularyTokenizer, prompt: str, response: str | None = None) -> tuple[list[int], int]:
    """Token ids of ``<bos> <q> prompt <a> [response <eos>]`` and the index where the response starts."""
    ids = [tokenizer.bos_id, tokenizer.q_id] + tokenizer.encode(prompt) + [tokenizer.a_id]
    start = len(ids)
    if response is not None:
        ids += tokenizer.encode(response) + [tokenizer.eos_id]
    return ids, start


def sft_batch(tokenizer: VocabularyTokenizer, demos: list[dict], mask_prompt: bool, max_len: int,
              prompt_dropout: float = 0.0, rng: np.random.Generator | None = None):
    """Pad a list of demonstrations into inputs x, targets y and the loss mask m (all (B, T)).

    m_t = 1 where the *target* y_t is a response token (or the final ``<eos>``); with
    ``mask_prompt=False`` the prompt tokens are learned as well (m_t = 1 on every real token).
    With ``prompt_dropout`` p > 0, each word of the prompt in the *inputs* is replaced by
    ``<unk>`` with probability p (word dropout, Iyyer et al. 2015): the model cannot rely on one
    exact wording and must recognise the case from whichever words remain.
    """
    seqs, starts = zip(*(encode_sft(tokenizer, d["prompt"], d["response"]) for d in demos))
    too_long = [len(s) for s in seqs if len(s) > max_len + 1]
    if too_long:
        raise ValueError(f"an SFT example has {max(too_long)} tokens; the model's max_len is {max_len}")
    T = max(len(s) for s in seqs) - 1
    x = np.full((len(seqs), T), tokenizer.pad_id, dtype=np.int64)
    y = np.full((len(seqs), T), tokenizer.pad_id, dtype=np.int64)
    m = np.zeros((len(seqs), T), dtype=np.float64)
    for i, (s, start) in enumerate(zip(seqs, starts)):
        n = len(s) - 1
        x[i, :n] = s[:-1]
        if prompt_dropout > 0 and rng is not None:
            words = np.arange(2, start - 1)                       # after <bos> <q>, before <a>
            x[i, words[rng.random(len(words)) < prompt_dropout]] = tokenizer.unk_id
        y[i, :n] = s[1:]
        first = start - 1 if mask_prompt else 0  # target index of the first response token
        m[i, first:n] = 1.0
    return x, y, m


def shuffled_batches(n: int, batch_size: int, epochs: int,
                     rng: np.random.Generator) -> Iterator[tuple[int, int, np.ndarray, bool]]:
    """(epoch, step, indices, last_of_epoch) for ``epochs`` shuffled passes over ``n`` examples.

    Each epoch draws a fresh permutation from ``rng`` (when the epoch starts, so draws the
    caller makes between steps keep their place in the stream) and cuts it into
    ceil(n / batch_size) batches; ``step`` counts from 1 over the whole run. SFT, the reward
    model and DPO all walk their examples this way.
    """
    n_batches = math.ceil(n / batch_size)
    step = 0
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        for b in range(n_batches):
            step += 1
            yield epoch, step, order[b * batch_size:(b + 1) * batch_size], b == n_batches - 1


# ----------------------------------------------------------------------------- loops
def _step(model: TinyGPT, opt: AdamW, x, y, mask, lr: float, grad_clip: float):
    logits = model.forward(x)
    loss, dlogits = cross_entropy(logits, y, mask)
    if not np.isfinite(loss):
        return loss, float("nan"), False
    grads = model.backward(dlogits)
    gnorm = clip_grad_norm(grads, grad_clip) if grad_clip else math.nan
    ok = opt.step(grads, lr=lr)
    return loss, gnorm, ok is not False


def window_loss(model: TinyGPT, stream: np.ndarray, seq_len: int, batch_size: int = 16,
                n_batches: int = 8, seed: int = 1234) -> float:
    """Mean cross-entropy of next-token prediction on ``n_batches`` fixed random windows of ``stream``
    (the same windows every call): the validation loss of chapter 1."""
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(n_batches):
        x, y = lm_batch(stream, batch_size, seq_len, rng)
        loss, _ = cross_entropy(model.forward(x), y)
        losses.append(loss)
    return float(np.mean(losses))


def _diverged(step: int, what: str) -> str:
    msg = (f"Training stopped at step {step}: the {what} became infinite or NaN. "
           "The learning rate is probably too large; try a smaller one.")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return msg


def pretrain(model: TinyGPT, train: np.ndarray, val: np.ndarray | None = None,
             config: PretrainConfig | None = None, progress: bool = True, desc: str = "pretraining") -> History:
    """Next-token prediction on random windows of ``train``; validation loss every ``eval_every`` steps.

    Returns a History whose log has one row per step: step, lr, train_loss, grad_norm,
    and val_loss (NaN between evaluations). A non-finite loss stops the run with a warning.
    """
    runtime.configure()                   # glibc keeps the freed temporaries of each step (runtime.py)
    cfg = config or PretrainConfig()
    rng = np.random.default_rng(cfg.seed)
    opt = AdamW(model.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rows, msg, diverged = [], "", False
    with Progress(cfg.steps, desc, display=None if progress else False) as bar:
        for step in range(1, cfg.steps + 1):
            lr = lr_schedule(step, cfg.lr, cfg.warmup, cfg.steps, cfg.min_lr)
            x, y = lm_batch(train, cfg.batch_size, cfg.seq_len, rng)
            loss, gnorm, ok = _step(model, opt, x, y, None, lr, cfg.grad_clip)
            row = {"step": step, "lr": lr, "train_loss": float(loss), "grad_norm": gnorm, "val_loss": np.nan}
            if not (ok and np.isfinite(loss)):
                diverged, msg = True, _diverged(step, "loss" if not np.isfinite(loss) else "gradient")
                rows.append(row)
                break
            if val is not None and (step % cfg.eval_every == 0 or step == cfg.steps):
                row["val_loss"] = window_loss(model, val, cfg.seq_len, n_batches=cfg.eval_batches)
            rows.append(row)
            bar.update(loss=float(loss))
    return History(pd.DataFrame(rows), diverged, msg, asdict(cfg))


def sft(model: TinyGPT, tokenizer: VocabularyTokenizer, demos: list[dict], config: SFTConfig | None = None,
        progress: bool = True, desc: str = "SFT") -> History:
    """Behaviour cloning: minimise L_SFT over ``epochs`` shuffled passes through ``demos``.

    Returns a History whose log has one row per step: epoch, step, lr, loss, grad_norm.
    """
    runtime.configure()                   # glibc keeps the freed temporaries of each step (runtime.py)
    cfg = config or SFTConfig()
    rng = np.random.default_rng(cfg.seed)
    opt = AdamW(model.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * math.ceil(len(demos) / cfg.batch_size)
    rows, msg, diverged = [], "", False
    with Progress(total, desc, display=None if progress else False) as bar:
        for epoch, step, idx, _ in shuffled_batches(len(demos), cfg.batch_size, cfg.epochs, rng):
            batch = [demos[i] for i in idx]
            x, y, m = sft_batch(tokenizer, batch, cfg.mask_prompt, model.config.max_len, cfg.prompt_dropout, rng)
            lr = lr_schedule(step, cfg.lr, cfg.warmup, total, cfg.min_lr)
            loss, gnorm, ok = _step(model, opt, x, y, m, lr, cfg.grad_clip)
            rows.append({"epoch": epoch, "step": step, "lr": lr, "loss": float(loss), "grad_norm": gnorm})
            if not (ok and np.isfinite(loss)):
                diverged, msg = True, _diverged(step, "loss" if not np.isfinite(loss) else "gradient")
                break
            bar.update(loss=float(loss))
    return History(pd.DataFrame(rows), diverged, msg, asdict(cfg))


def response_loss(model: TinyGPT, tokenizer: VocabularyTokenizer, demos: list[dict], batch_size: int = 32) -> float:
    """Mean -log π(y_t | x, y_<t) over the response tokens of ``demos`` (the SFT loss, no update)."""
    total, count = 0.0, 0.0
    for i in range(0, len(demos), batch_size):
        x, y, m = sft_batch(tokenizer, demos[i:i + batch_size], True, model.config.max_len)
        loss, _ = cross_entropy(model.forward(x), y, m)
        total += loss * m.sum()
        count += m.sum()
    return float(total / count)


# ----------------------------------------------------------------------------- answers
def answer(model: TinyGPT, tokenizer: VocabularyTokenizer, prompts: list[str] | str, max_new_tokens: int = 112,
           temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
           seed: int = 0) -> list[str] | str:
    """The model's answer(s) to prompt(s), formatted as in SFT; greedy when ``temperature == 0``.

    ``max_new_tokens = 112`` is the answer length every chapter evaluates with (PPO, scorecard),
    so a stage scores the same wherever it is measured.
    """
    single = isinstance(prompts, str)
    prompts = [prompts] if single else list(prompts)
    rng = np.random.default_rng(seed)
    outs = []
    for p in prompts:
        ids, _ = encode_sft(tokenizer, p)
        room = model.config.max_len - len(ids)
        new = model.generate(np.asarray([ids]), min(max_new_tokens, room), temperature=temperature,
                             top_k=top_k, top_p=top_p, rng=rng, stop_id=tokenizer.eos_id)
        new = np.asarray(new[0] if isinstance(new, tuple) else new)[0].tolist()
        if tokenizer.eos_id in new:
            new = new[: new.index(tokenizer.eos_id)]
        outs.append(tokenizer.decode(new))
    return outs[0] if single else outs


def new_model(tokenizer: VocabularyTokenizer, seed: int = 0, **overrides) -> TinyGPT:
    """A freshly initialised TinyGPT at the course's chapter configuration."""
    cfg = dict(vocab_size=tokenizer.vocab_size, d_model=64, n_layers=2, n_heads=4, max_len=192)
    cfg.update(overrides)
    return TinyGPT(GPTConfig(**cfg), seed=seed)
