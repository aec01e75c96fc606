"""Challenge 2, annotation quality: reward models trained on noisier labels; two mitigations.

:func:`annotation_experiment` flips the simulated annotators' votes at several rates
(:func:`noisy_labels`) and measures reward-model accuracy on clean held-out pairs, with one
annotator per pair, the majority of three, and one annotator with the label-smoothed
(conservative) Bradley-Terry loss (``reward.train_reward_model(..., label_smoothing=ε)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..model import TinyGPT
from ..stats import TAILS_95, bootstrap_indices, percentile_interval, wilson_interval
from ..tokenizer import VocabularyTokenizer
from .common import _pair_correct, _preference_pairs, _trained_reward_model, effectiveness


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


def _labels_per_pair(method: str) -> int:
    return 3 if method.startswith("majority") else 1


def _fit_correct(tok: VocabularyTokenizer, sft: TinyGPT, pairs: Sequence[Mapping], test: Sequence[Mapping],
                 cfg: NoiseSettings, eps: float, progress: bool) -> np.ndarray:
    """Train a reward model on ``pairs`` as oriented (label smoothing ``eps``); 1.0 per test pair it ranks right."""
    rm = _trained_reward_model(sft, tok, pairs, cfg.seed, progress, epochs=cfg.epochs, label="gold",
                               label_smoothing=eps, desc="reward model (ε)" if eps > 0 else "reward model")
    return _pair_correct(rm, tok, test)


def _accuracy_row(method: str, flip_rate: float, label_error: float, correct: np.ndarray) -> dict:
    lo, hi = wilson_interval(int(round(correct.sum())), len(correct))
    return {"method": method, "flip_rate": flip_rate, "label_error": label_error,
            "labels_per_pair": _labels_per_pair(method), "accuracy": float(correct.mean()), "ci_low": lo, "ci_high": hi}


def _noise_curves(tok: VocabularyTokenizer, sft: TinyGPT, train: list[dict], test: list[dict], cfg: NoiseSettings,
                  progress: bool) -> tuple[pd.DataFrame, dict[tuple[str, float], np.ndarray]]:
    """``noise_curves`` (the clean reference, then every flip rate and method) and, per (method, p),
    which test pairs the reward model ranks right."""
    votes = np.array([p["votes"] for p in train])
    clean = _fit_correct(tok, sft, train, test, cfg, 0.0, progress)
    correct = {("clean labels", 0.0): clean}
    rows = [_accuracy_row("clean labels", 0.0, 0.0, clean)]
    for p in cfg.flip_rates:
        lab = noisy_labels(votes, float(p), seed=cfg.seed)
        for method in NOISE_METHODS:
            y = lab["majority"] if method.startswith("majority") else lab["single"]
            eps = cfg.smoothing if "conservative" in method else 0.0
            c = correct[(method, float(p))] = _fit_correct(tok, sft, _orient(train, y), test, cfg, eps, progress)
            rows.append(_accuracy_row(method, float(p), float(np.mean(y == 0)), c))
    return pd.DataFrame(rows), correct


def _noise_mitigations(correct: Mapping[tuple[str, float], np.ndarray], cfg: NoiseSettings,
                       n_test: int) -> pd.DataFrame:
    """``noise_mitigations``: E of each mitigation pooled over the flip rates p > 0, with a bootstrap
    interval over the test pairs, and the accuracies at the reference flip rate."""
    clean = correct[("clean labels", 0.0)]
    idx = bootstrap_indices(n_test, cfg.n_bootstrap, cfg.seed)
    noisy = [float(p) for p in cfg.flip_rates if p > 0]

    def stacked(method: str) -> np.ndarray:                 # (flip rates, test pairs)
        return np.stack([correct[(method, p)] for p in noisy]) if noisy else np.zeros((0, n_test))

    base = stacked("one annotator")
    lost = (clean[None, :] - base).sum()
    bl = (clean[None, :] - base)[:, idx].mean(axis=2).sum(axis=0)
    ref = float(cfg.reference_rate)
    at_ref = {m: float(correct[(m, ref)].mean()) for m in NOISE_METHODS if (m, ref) in correct}
    rows = []
    for method in NOISE_METHODS[1:]:
        gained = stacked(method) - base
        gain = gained.sum()
        e = effectiveness(gain / max(n_test, 1), 0.0, lost / max(n_test, 1))
        bg = gained[:, idx].mean(axis=2).sum(axis=0)
        lo, hi = percentile_interval(effectiveness(bg, np.zeros_like(bg), bl), tails=TAILS_95, finite=True)
        rows.append({"mitigation": method, "labels_per_pair": _labels_per_pair(method),
                     "effectiveness": e, "ci_low": lo, "ci_high": hi,
                     "accuracy_at_reference": at_ref.get(method, math.nan),
                     "one_annotator_at_reference": at_ref.get("one annotator", math.nan),
                     "clean_accuracy": float(clean.mean()), "reference_rate": ref,
                     "mean_gain": float(gain / max(len(noisy), 1) / max(n_test, 1)),
                     "mean_loss": float(lost / max(len(noisy), 1) / max(n_test, 1))})
    return pd.DataFrame(rows)


def annotation_experiment(tok: VocabularyTokenizer, sft: TinyGPT, settings: NoiseSettings | None = None,
                          progress: bool = False) -> dict[str, pd.DataFrame]:
    """Reward-model accuracy as the annotators' labels get noisier, with and without mitigations.

    For every flip rate p, each of the dataset's three simulated annotators' votes flips with
    probability p (:func:`noisy_labels`), and three reward models are trained from the SFT
    trunk: on the label of one random annotator per pair (plain Bradley-Terry), on the
    majority of the three noisy votes (plain BT; three labels per pair), and on one
    annotator's label with the conservative loss L_ε (label smoothing ε). One more is trained
    on the clean labels (the knowledge base's own chosen/rejected), the no-noise reference.
    Accuracy is measured on the held-out test pairs against their clean labels.

    Effectiveness of a mitigation, pooled over the flip rates p > 0:
    E = Σ_p (acc_M(p) - acc_1(p)) / Σ_p (acc_clean - acc_1(p)), the share of the accuracy lost
    to noise (one annotator vs clean labels) that the mitigation wins back; the interval
    resamples the test pairs.

    Returns ``noise_curves`` (one row per method and p, plus the clean reference) and
    ``noise_mitigations``.
    """
    cfg = settings or NoiseSettings()
    _, train, test = _preference_pairs(cfg.n_train, cfg.n_test)
    curves, correct = _noise_curves(tok, sft, train, test, cfg, progress)
    return {"noise_curves": curves, "noise_mitigations": _noise_mitigations(correct, cfg, len(test))}
