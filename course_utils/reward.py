"""The reward model of chapter 3: a TinyGPT trunk with a scalar head, trained on preferences.

A reward model reads a prompt and an answer and returns one number, the reward. It is the
SFT model (chapter 2) with its language-model head set aside and a linear *reward head*
that reads the final hidden state of the answer's last token, as in InstructGPT (Ouyang et al.
2022; Stiennon et al. 2020), together with the mean of the hidden states over the answer's
tokens. In a model this small the last token's state must carry the whole answer through
attention alone; the mean lets every word of the answer reach the reward directly, and ranks
more held-out pairs right (``benchmarks/reward_pairs.py``). It is trained on pairs of answers
to the same prompt, one preferred by the annotators, with the Bradley-Terry loss (Bradley &
Terry 1952; Christiano et al. 2017).

Symbols
-------
=================  ===========================================================================
x                  the prompt; the sequence read is ``<bos> <q> x <a> y <eos>`` (as in SFT)
y_c, y_r           the chosen (preferred) and the rejected answer of a pair
ℓ                  the number of real tokens of a sequence (``lengths``), padding excluded
h                  final hidden states LN_f(x) of the trunk, (B, T, D)
h_last             h at position ℓ - 1, the last real token (``<eos>``), (B, D)
a_t                answer weights: 1/n_y on the n_y answer positions (after ``<a>``, ``<eos>``
                   included), 0 elsewhere (``answer_weights``), (B, T)
h̄                  Σ_t a_t h_t, the mean hidden state over the answer, (B, D)
w, u, b            the reward head: ``head.w`` (D,), ``head.u`` (D,) and ``head.b`` (1,)
r(x, y)            the reward, h_last · w + h̄ · u + b (a scalar per sequence)
r_c, r_r           r(x, y_c) and r(x, y_r)
m                  the margin (≥ 0) the chosen reward should exceed the rejected one by
Δ                  r_c - r_r - m
σ(u)               the logistic function 1 / (1 + e^{-u})
P(y_c ≻ y_r)       σ(r_c - r_r), the Bradley-Terry probability that y_c is preferred
L_RM               -1/n Σ_i log σ(Δ_i) (``losses.bradley_terry_loss``)
ε                  label smoothing (default 0): L_RM = -1/n Σ_i [(1-ε) log σ(Δ_i) + ε log σ(-Δ_i)]
∂L/∂r_c            -σ(-Δ) / n; ∂L/∂r_r = +σ(-Δ) / n: the pair is pushed apart until Δ ≫ 0
votes              the three simulated annotators' votes (1 = prefers the dataset's chosen answer)
=================  ===========================================================================

Causal attention makes h_last and h̄ (which read positions up to ℓ - 1 only) independent
of whatever follows the sequence, so a batch can be right-padded freely. Only differences of
rewards enter the loss: adding a constant to every reward (to ``head.b``) changes nothing, so
the scale and the zero of r are arbitrary.

Public API: :class:`RewardModel` (``forward``, ``backward``, ``score``, ``save``, ``load``,
``copy``), :class:`RewardConfig` and :data:`DEFAULT_CONFIG`, :func:`train_reward_model`,
:func:`evaluate_pairs`, :func:`calibration`, :func:`wilson_interval`, :func:`orient_pairs`,
:func:`build_reward_checkpoint`, :func:`load_reward_model`.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import data, runtime
from .losses import bradley_terry_loss
from .model import GPTConfig, TinyGPT, copy_into
from .optim import AdamW, clip_grad_norm, lr_schedule
from .paths import CHECKPOINT_DIR, committed_file, save_log
from .progress import Progress
from .stats import Z95, sigmoid, wilson_interval  # noqa: F401  (Z95, wilson_interval: re-exported)
from .tokenizer import VocabularyTokenizer
from .training import History, encode_sft, shuffled_batches

__all__ = [
    "RewardModel",
    "answer_weights",
    "RewardConfig",
    "DEFAULT_CONFIG",
    "TRAINABLE",
    "encode_pairs",
    "orient_pairs",
    "train_reward_model",
    "pair_rewards",
    "evaluate_pairs",
    "calibration",
    "wilson_interval",
    "build_reward_checkpoint",
    "load_reward_model",
]

SAVE_FORMAT = "reward-npz-2"           # -1 had a head on the last token only (w, b)
HEAD_KEYS = ("head.w", "head.u", "head.b")


def answer_weights(tokens: np.ndarray, lengths: np.ndarray, a_id: int = VocabularyTokenizer.a_id) -> np.ndarray:
    """a (B, T): 1/n_y on each answer position of every row, 0 elsewhere, so Σ_t a_t h_t = h̄.

    The answer positions of row i are those after its first ``<a>`` up to and including
    position ``lengths[i] - 1`` (the answer's words and ``<eos>``). A row without ``<a>``
    counts all its real tokens as the answer; a row that ends at ``<a>`` (an empty answer)
    uses that one position, so every row's weights sum to 1.
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    pos = np.arange(tokens.shape[1])[None, :]
    real = pos < lengths[:, None]
    is_a = (tokens == a_id) & real
    first_a = np.where(is_a.any(axis=1), is_a.argmax(axis=1), -1)            # -1: no <a>, all tokens
    start = np.minimum(first_a + 1, lengths - 1)[:, None]
    mask = real & (pos >= start)
    return mask / mask.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- the model
class RewardModel:
    """r(x, y) = h_last · w + h̄ · u + b: a TinyGPT trunk and a scalar head on its final hidden states.

    Attributes:
        trunk: the TinyGPT whose final hidden states ``h`` the head reads (its LM head is
            never used).
        params: every trainable array: the trunk's own arrays (the same objects as
            ``trunk.params``, so an optimiser updating ``params`` updates the trunk) plus
            ``"head.w"`` (D,), ``"head.u"`` (D,) and ``"head.b"`` (1,). Change weights in place
            (``load_state_dict``), never by rebinding ``trunk.params``, or the two part ways.

    The head starts at w, u ~ N(0, 1/(2D)), b = 0, so the initial rewards have a spread of
    about one (LN_f makes each feature of h about unit size).
    """

    def __init__(self, trunk: TinyGPT, seed: int = 0) -> None:
        self.trunk = trunk
        D = trunk.config.d_model
        rng = np.random.default_rng(seed)
        head = {"head.w": (rng.standard_normal(D) / math.sqrt(2 * D)).astype(trunk.dtype),
                "head.u": (rng.standard_normal(D) / math.sqrt(2 * D)).astype(trunk.dtype),
                "head.b": np.zeros(1, dtype=trunk.dtype)}
        self.params: dict[str, np.ndarray] = {**trunk.params, **head}
        self._cache: tuple | None = None

    @property
    def config(self) -> GPTConfig:
        return self.trunk.config

    # --------------------------------------------------------------- forward / backward
    def forward(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Rewards r (B,) of right-padded sequences ``tokens`` (B, T) with ``lengths`` (B,) real tokens.

        Row i's reward reads h at position ``lengths[i] - 1`` (h_last) and the mean of h over
        its answer positions (h̄, :func:`answer_weights`); positions after ``lengths[i] - 1`` are
        padding and, with causal attention, cannot change either (columns past max(lengths)
        are not even computed). Returns float64 rewards and keeps what ``backward`` needs.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None, :]
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        if lengths.shape[0] != tokens.shape[0]:
            raise ValueError(f"{tokens.shape[0]} sequences but {lengths.shape[0]} lengths")
        if lengths.size and (lengths.min() < 1 or lengths.max() > tokens.shape[1]):
            raise ValueError(f"lengths must lie in [1, {tokens.shape[1]}] (the padded width), got "
                             f"{lengths.min()}..{lengths.max()}")
        T = int(lengths.max()) if lengths.size else 0
        h = self.trunk.forward_hidden(tokens[:, :T])   # h = LN_f(x), without the V-wide LM head
        rows = np.arange(len(lengths))
        h_last = h[rows, lengths - 1]                                       # (B, D)
        a = answer_weights(tokens[:, :T], lengths).astype(h.dtype)          # (B, T)
        h_bar = np.einsum("bt,btd->bd", a, h)                               # (B, D)
        p = self.params
        r = h_last @ p["head.w"] + h_bar @ p["head.u"] + p["head.b"][0]
        self._cache = (h.shape, lengths, h_last, h_bar, a)
        return r.astype(np.float64)

    def backward(self, drewards: np.ndarray, trunk: bool = True) -> dict[str, np.ndarray]:
        """Gradients of the loss with respect to every array of ``params``, from ∂L/∂r (B,).

        ∂L/∂w = Σ_i ∂L/∂r_i h_last,i;  ∂L/∂u = Σ_i ∂L/∂r_i h̄_i;  ∂L/∂b = Σ_i ∂L/∂r_i.
        Into the trunk: ∂L/∂h_i,t = ∂L/∂r_i (a_i,t u + [t = ℓ_i - 1] w), sent through
        ``trunk.backward``. ``trunk=False`` returns the head's three gradients only (for a
        frozen trunk), skipping the backward pass through the transformer.
        """
        if self._cache is None:
            raise RuntimeError("call forward() before backward()")
        shape, lengths, h_last, h_bar, a = self._cache
        dtype = self.trunk.dtype
        dr = np.asarray(drewards, dtype=np.float64).reshape(-1)
        if dr.shape[0] != shape[0]:
            raise ValueError(f"drewards has {dr.shape[0]} entries, the last forward had {shape[0]} sequences")
        w, u = self.params["head.w"], self.params["head.u"]
        grads: dict[str, np.ndarray] = {}
        if trunk:
            dhidden = (a[:, :, None] * (dr[:, None] * u)[:, None, :]).astype(dtype)
            dhidden[np.arange(shape[0]), lengths - 1] += (dr[:, None] * w).astype(dtype)
            grads = self.trunk.backward(None, dhidden)
        grads["head.w"] = (dr @ h_last.astype(np.float64)).astype(dtype)
        grads["head.u"] = (dr @ h_bar.astype(np.float64)).astype(dtype)
        grads["head.b"] = np.array([dr.sum()], dtype=dtype)
        return grads

    # --------------------------------------------------------------- scoring text
    def encode(self, tok: VocabularyTokenizer, prompts: Sequence[str], answers: Sequence[str]):
        """Right-padded token ids (B, T) and lengths (B,) of ``<bos> <q> prompt <a> answer <eos>``."""
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
        seqs = [encode_sft(tok, p, a)[0] for p, a in zip(prompts, answers)]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        if len(seqs) and lengths.max() > self.config.max_len:
            i = int(lengths.argmax())
            raise ValueError(f"prompt + answer {i} has {lengths[i]} tokens; the reward model reads at most "
                             f"max_len = {self.config.max_len}")
        tokens = np.full((len(seqs), max(lengths, default=1)), tok.pad_id, dtype=np.int64)
        for i, s in enumerate(seqs):
            tokens[i, :len(s)] = s
        return tokens, lengths

    def score(self, tok: VocabularyTokenizer, prompts: Sequence[str] | str, answers: Sequence[str] | str,
              batch_size: int = 32) -> np.ndarray:
        """Rewards r(x_i, y_i) (float64, shape (n,)) of answers to prompts, without training.

        Sequences are laid out as in SFT, ``<bos> <q> prompt <a> answer <eos>``, grouped into
        batches of similar length (less padding; the result does not depend on the grouping
        beyond float rounding) and returned in the input order. A single string prompt is
        used for every answer.
        """
        answers = [answers] if isinstance(answers, str) else list(answers)
        prompts = [prompts] * len(answers) if isinstance(prompts, str) else list(prompts)
        tokens, lengths = self.encode(tok, prompts, answers)
        out = np.empty(len(answers), dtype=np.float64)
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(order), max(int(batch_size), 1)):
            idx = order[start:start + batch_size]
            out[idx] = self.forward(tokens[idx], lengths[idx])
        self._cache, self.trunk._cache = None, None                         # nothing to backpropagate
        return out

    # --------------------------------------------------------------- copies and files
    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every array of ``params``."""
        return {k: a.copy() for k, a in self.params.items()}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Copy ``state`` into ``params`` in place (keys and shapes must match)."""
        copy_into(self.params, state)

    def copy(self) -> "RewardModel":
        """An independent reward model with a copy of the trunk and of the head."""
        other = object.__new__(RewardModel)
        other.trunk = self.trunk.copy()
        other.params = {**other.trunk.params, **{k: self.params[k].copy() for k in HEAD_KEYS}}
        other._cache = None
        return other

    def save(self, path: str | Path, storage: str | None = None) -> None:
        """Write the trunk's config (JSON), the trunk and the head to one ``.npz`` file at ``path``
        (``storage="float16"`` as for ``TinyGPT.save``)."""
        arrays = {f"param:{k}": (a.astype(storage) if storage else a) for k, a in self.params.items()}
        with open(path, "wb") as f:
            np.savez(f, __format__=np.array(SAVE_FORMAT),
                     __config__=np.array(json.dumps(asdict(self.config))), **arrays)

    @classmethod
    def load(cls, path: str | Path, dtype: str | None = None) -> "RewardModel":
        """Rebuild a reward model written by :meth:`save`; ``dtype`` overrides the saved one."""
        with np.load(path, allow_pickle=False) as data:
            found = str(data["__format__"]) if "__format__" in data.files else None
            if found != SAVE_FORMAT:
                raise ValueError(f"{path} is not a reward-model checkpoint of this version (format "
                                 f"{SAVE_FORMAT!r} expected, found {found!r}); rebuild it with make checkpoints")
            config = GPTConfig(**{**json.loads(str(data["__config__"])), **({"dtype": dtype} if dtype else {})})
            state = {name[len("param:"):]: data[name] for name in data.files if name.startswith("param:")}
        rm = cls(TinyGPT(config))
        rm.load_state_dict(state)
        return rm

    def __repr__(self) -> str:
        c = self.config
        return (f"RewardModel(d_model={c.d_model}, n_layers={c.n_layers}, n_heads={c.n_heads}, "
                f"max_len={c.max_len}, params={sum(a.size for a in self.params.values()):,})")


# ----------------------------------------------------------------------------- data
def orient_pairs(pairs: Iterable[Mapping], label: str = "majority") -> list[dict]:
    """The pairs as the reward model learns them: ``chosen`` is the answer labelled better.

    ``label="gold"`` keeps the dataset's chosen / rejected (the answer the knowledge base
    says is better). ``label="majority"`` follows the annotators: a pair where most votes
    went to the rejected answer (sum(votes) < len(votes) / 2) is swapped, as a real
    annotation pipeline would; a tie keeps the dataset's order. Each returned pair carries
    ``swapped`` (True when its answers were exchanged).
    """
    if label not in ("majority", "gold"):
        raise ValueError(f"label must be 'majority' or 'gold', got {label!r}")
    out = []
    for p in pairs:
        q = dict(p)
        votes = list(p.get("votes", []))
        swap = label == "majority" and len(votes) > 0 and 2 * sum(votes) < len(votes)
        if swap:
            q["chosen"], q["rejected"] = p["rejected"], p["chosen"]
        q["swapped"] = bool(swap)
        out.append(q)
    return out


def encode_pairs(rm: RewardModel, tok: VocabularyTokenizer, pairs: Sequence[Mapping]):
    """One batch of 2n rows: the n chosen sequences, then the n rejected ones; and their lengths."""
    prompts = [p["prompt"] for p in pairs]
    return rm.encode(tok, prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])


def pair_rewards(rm: RewardModel, tok: VocabularyTokenizer, pairs: Sequence[Mapping],
                 batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(r_c, r_r): the rewards of the chosen and of the rejected answer of every pair, in order."""
    pairs = list(pairs)
    prompts = [p["prompt"] for p in pairs]
    r = rm.score(tok, prompts + prompts, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs],
                 batch_size=batch_size)
    return r[:len(pairs)], r[len(pairs):]


# ----------------------------------------------------------------------------- training
TRAINABLE = ("all", "last_block", "head")


@dataclass
class RewardConfig:
    """Every knob of a reward-model run (the chapter-3 parameters cell mirrors these).

    The defaults are the reference run of ``make checkpoints``: two passes over the training
    pairs of ``data.load_preferences()``. Chapter 3 shows its log: the held-out loss is lowest
    after a few steps and then rises while the training loss heads to zero, because most pairs
    share their chosen answer with other pairs (the correlated comparisons Ouyang et al. 2022
    put in one batch element for the same reason).

    ``trainable``: ``"all"`` fine-tunes the whole trunk and the head; ``"last_block"`` only
    the last transformer block, LN_f and the head; ``"head"`` only w, u and b (a logistic
    regression on frozen SFT features).
    """

    epochs: int = 2             # passes over the (oriented) training pairs
    batch_size: int = 16        # pairs per step (2 · batch_size answers in one forward pass)
    lr: float = 1e-3            # peak AdamW learning rate
    warmup: int = 4             # steps of linear warm-up
    min_lr_ratio: float = 0.1   # the cosine decay ends at min_lr_ratio · lr
    weight_decay: float = 0.0   # AdamW decoupled weight decay
    grad_clip: float = 1.0      # global gradient-norm clip (0 = none)
    margin: float = 0.0         # m, the margin r_c must exceed r_r by
    label: str = "majority"     # "majority" or "gold" (orient_pairs)
    trainable: str = "all"      # "all", "last_block" or "head" (above)
    seed: int = 0               # head initialisation and pair order

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr < 0:
            raise ValueError("epochs must be >= 0, batch_size >= 1 and lr >= 0")


DEFAULT_CONFIG = RewardConfig()
EVAL_EVERY = 16         # steps between the held-out evaluations the reference run logs


def _trainable_keys(rm: RewardModel, trainable: str) -> list[str]:
    if trainable not in TRAINABLE:
        raise ValueError(f"trainable must be one of {TRAINABLE}, got {trainable!r}")
    if trainable == "all":
        return list(rm.params)
    keys = list(HEAD_KEYS)
    if trainable == "last_block":
        last = f"h{rm.config.n_layers - 1}."
        keys += [k for k in rm.params if k.startswith(last) or k.startswith("ln_f.")]
    return keys


def _stopped(step: int, what: str) -> str:
    msg = (f"Reward-model training stopped at step {step}: the {what} became infinite or NaN. "
           "The learning rate is probably too large; try a smaller one.")
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    return msg


def _pair_gradients(rm: RewardModel, tok: VocabularyTokenizer, batch: Sequence[Mapping], cfg: RewardConfig,
                    keys: Sequence[str], label_smoothing: float, row: dict) -> tuple[dict[str, np.ndarray], str]:
    """One step's forward pass, Bradley-Terry loss and backward pass on ``batch``; the gradients of the
    trainable ``keys``, clipped. Fills ``row`` (loss, accuracy, margin, grad_norm). The second value
    names what became non-finite ("reward" or "gradient"), "" if nothing did."""
    tokens, lengths = encode_pairs(rm, tok, batch)
    with np.errstate(over="ignore", invalid="ignore"):
        r = rm.forward(tokens, lengths)
    if not np.all(np.isfinite(r)):
        return {}, "reward"
    rc, rr = r[:len(batch)], r[len(batch):]
    loss, d_c, d_r = bradley_terry_loss(rc, rr, cfg.margin, label_smoothing)
    row.update(loss=loss, accuracy=float(np.mean(rc > rr)), margin=float(np.mean(rc - rr)))
    with np.errstate(over="ignore", invalid="ignore"):
        grads = rm.backward(np.concatenate([d_c, d_r]), trunk=cfg.trainable != "head")
    grads = {k: grads[k] for k in keys}
    row["grad_norm"] = clip_grad_norm(grads, cfg.grad_clip) if cfg.grad_clip else math.nan
    if not all(np.isfinite(g).all() for g in grads.values()):
        return grads, "gradient"
    return grads, ""


def train_reward_model(
    rm: RewardModel,
    tok: VocabularyTokenizer,
    pairs: Sequence[Mapping],
    config: RewardConfig | None = None,
    progress: bool = True,
    *,
    eval_pairs: Sequence[Mapping] | None = None,
    eval_every: int | None = None,
    desc: str = "reward model",
    label_smoothing: float = 0.0,
) -> History:
    """Minimise L_RM = -1/n Σ log σ(r_c - r_r - m) over shuffled mini-batches of ``pairs``.

    ``config`` (a :class:`RewardConfig`, default :data:`DEFAULT_CONFIG`) holds every knob named
    below. Each step scores the chosen and the rejected answers of ``batch_size`` pairs in one
    forward pass (2·batch_size rows), takes the Bradley-Terry loss and its gradient
    (``losses.bradley_terry_loss``), back-propagates through the head and the trunk, clips
    the gradient norm at ``grad_clip`` and takes an AdamW step on the ``trainable`` arrays
    (learning rate: linear warm-up over ``warmup`` steps, then cosine decay to
    ``min_lr_ratio · lr``). Pairs are oriented by ``label`` (see :func:`orient_pairs`).
    ``label_smoothing`` ε > 0 trains on the conservative loss -(1-ε) log σ(Δ) - ε log σ(-Δ)
    instead (``losses.bradley_terry_loss``; chapter 6's mitigation for noisy labels); the
    default 0 is the plain loss.

    The held-out ``eval_pairs`` (if given) are scored against their dataset labels (the
    truth, whatever ``label`` the training used) at the end of every epoch, and also every
    ``eval_every`` steps if that is set (for smoother held-out curves).

    Returns a ``training.History`` whose ``log`` has one row per step: epoch, step, lr,
    loss, accuracy (the share of the batch's pairs with r_c > r_r, before the update),
    margin (mean r_c - r_r), grad_norm, and eval_loss / eval_accuracy (after the step's
    update; NaN on steps without an evaluation). A non-finite loss or gradient stops the run with a
    ``RuntimeWarning`` (``history.diverged``), leaving the weights of the last good step.
    """
    runtime.configure()                   # glibc keeps the freed temporaries of each step (runtime.py)
    cfg = config or DEFAULT_CONFIG
    oriented = orient_pairs(pairs, cfg.label)
    if not oriented:
        raise ValueError("no preference pairs to train on")
    keys = _trainable_keys(rm, cfg.trainable)
    opt = AdamW({k: rm.params[k] for k in keys}, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    total = cfg.epochs * math.ceil(len(oriented) / cfg.batch_size)
    rows: list[dict] = []
    diverged, msg = False, ""
    with Progress(total, desc, display=None if progress else False) as bar:
        for epoch, step, idx, epoch_end in shuffled_batches(len(oriented), cfg.batch_size, cfg.epochs, rng):
            batch = [oriented[i] for i in idx]
            lr_t = lr_schedule(step - 1, cfg.lr, cfg.warmup, total, cfg.lr * cfg.min_lr_ratio)
            row = {"epoch": epoch, "step": step, "lr": lr_t, "loss": np.nan, "accuracy": np.nan,
                   "margin": np.nan, "grad_norm": np.nan, "eval_loss": np.nan, "eval_accuracy": np.nan}
            grads, broken = _pair_gradients(rm, tok, batch, cfg, keys, label_smoothing, row)
            if broken:
                diverged, msg = True, _stopped(step, broken)
                rows.append(row)
                break
            opt.step(grads, lr=lr_t)
            if eval_pairs is not None and len(eval_pairs) and (epoch_end or (eval_every and step % eval_every == 0)):
                ev = evaluate_pairs(rm, tok, eval_pairs)
                row["eval_loss"], row["eval_accuracy"] = ev["loss"], ev["accuracy"]
            rows.append(row)
            bar.update(loss=row["loss"], acc=row["accuracy"])
    log = pd.DataFrame(rows, columns=["epoch", "step", "lr", "loss", "accuracy", "margin", "grad_norm",
                                      "eval_loss", "eval_accuracy"])
    return History(log, diverged, msg, {**asdict(cfg), "label_smoothing": float(label_smoothing)})


# ----------------------------------------------------------------------------- evaluation
# wilson_interval (stats.py) is re-exported here: the 95% interval of an accuracy.


def evaluate_pairs(rm: RewardModel, tok: VocabularyTokenizer, pairs: Sequence[Mapping],
                   margin: float = 0.0) -> dict:
    """How well the reward model ranks ``pairs`` by their dataset labels (chosen should win).

    Returns a dict: ``n``, ``correct`` (pairs with r_c > r_r), ``accuracy``, its 95% Wilson
    interval ``ci_low`` / ``ci_high``, ``mean_margin`` (mean r_c - r_r), ``loss`` (L_RM at
    ``margin``) and ``mean_p_chosen`` (mean σ(r_c - r_r)).
    """
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no pairs to evaluate")
    rc, rr = pair_rewards(rm, tok, pairs)
    correct = int(np.sum(rc > rr))
    n = len(pairs)
    lo, hi = wilson_interval(correct, n)
    loss, _, _ = bradley_terry_loss(rc, rr, margin)
    return {"n": n, "correct": correct, "accuracy": correct / n, "ci_low": lo, "ci_high": hi,
            "mean_margin": float(np.mean(rc - rr)), "loss": loss,
            "mean_p_chosen": float(np.mean(sigmoid(rc - rr, method="logaddexp")))}


def calibration(rm: RewardModel, tok: VocabularyTokenizer, pairs: Sequence[Mapping], bins: int = 5,
                target: str = "gold") -> pd.DataFrame:
    """Predicted P(y_c ≻ y_r) = σ(r_c - r_r), in ``bins`` equal-width bins, against what was observed.

    ``target="gold"``: each pair enters twice, as (p, 1) for "the chosen answer is better"
    and (1 - p, 0) for the reverse, so the bins cover [0, 1] symmetrically and ``observed``
    is the share of statements in the bin that are true; a calibrated model has
    observed ≈ predicted in every bin.
    ``target="votes"``: each pair enters once with p, and ``observed`` is the share of the
    annotators' votes that went to the chosen answer (what the Bradley-Terry model says p is).

    Returns one row per bin: ``bin`` (a label like "0.6-0.8"), ``p_low``, ``p_high``,
    ``count``, ``predicted`` (mean p in the bin) and ``observed`` (NaN for an empty bin).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if target not in ("gold", "votes"):
        raise ValueError(f"target must be 'gold' or 'votes', got {target!r}")
    pairs = list(pairs)
    rc, rr = pair_rewards(rm, tok, pairs)
    p = sigmoid(rc - rr, method="logaddexp")
    if target == "gold":
        pred = np.concatenate([p, 1.0 - p])
        obs = np.concatenate([np.ones(len(p)), np.zeros(len(p))])
    else:
        pred = p
        obs = np.array([np.mean(q["votes"]) if len(q.get("votes", [])) else np.nan for q in pairs])
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, pred, side="right") - 1, 0, bins - 1)
    rows = []
    for i in range(bins):
        sel = which == i
        rows.append({"bin": f"{edges[i]:.1f}-{edges[i + 1]:.1f}", "p_low": edges[i], "p_high": edges[i + 1],
                     "count": int(sel.sum()),
                     "predicted": float(pred[sel].mean()) if sel.any() else np.nan,
                     "observed": float(np.nanmean(obs[sel])) if sel.any() else np.nan})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- checkpoint
def build_reward_checkpoint(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False,
                            config: RewardConfig | None = None) -> Path:
    """Chapter 3's reward model: ``sft.npz`` from ``out_dir`` + a new head, trained with
    ``DEFAULT_CONFIG`` on the pairs of the ``train`` split and the knowledge-base pairs of
    ``data.contrast_pairs`` (every kind of ``data.CONTRAST_KINDS``); writes ``out_dir / "reward.npz"``."""
    cfg = config or DEFAULT_CONFIG
    out_dir = Path(out_dir)
    rm = RewardModel(TinyGPT.load(out_dir / "sft.npz"), seed=cfg.seed)
    train = [p for p in data.load_preferences() if p["split"] == "train"]
    train += data.contrast_pairs(data.load_scenarios())
    test = [p for p in data.load_preferences() if p["split"] == "test"]
    history = train_reward_model(rm, tok, train, cfg, progress, eval_pairs=test, eval_every=EVAL_EVERY)
    path = out_dir / "reward.npz"
    rm.save(path, storage="float16")
    save_log(history.log, out_dir, "reward")
    return path


def load_reward_model(directory: Path = CHECKPOINT_DIR, dtype: str | None = None) -> RewardModel:
    """Load the committed reward model ``reward.npz`` (rebuild it with ``make checkpoints``);
    ``dtype="float64"`` for scores that do not depend on the CPU."""
    path = committed_file(directory, "reward.npz")
    return RewardModel.load(path, dtype)
