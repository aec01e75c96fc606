"""The chapter-7 ablations "why all four stages": PPO without SFT, and PPO against a reward model
trained on noisy labels, trained once by ``make checkpoints`` and stored in ``scorecard.npz``.

Educational material, not medical advice.

Symbols
=======

=====================  =======================================================================
``ε``                  share of the reward model's training labels flipped in the noisy ablation
``n``                  the number of training pairs; round(ε · n) of them are flipped
=====================  =======================================================================

Public names: ``build_scorecard_cache``, ``load_scorecard_cache``, ``flip_labels``, ``NOISE_RATE``,
``CACHE_FILE``, ``save_tables``, ``load_tables`` (all re-exported by ``scorecard``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import data, ppo, reward
from . import tables as _tables
from .model import TinyGPT
from .paths import CHECKPOINT_DIR, committed_file
from .runtime import single_threaded_blas
from .tokenizer import VocabularyTokenizer

CACHE_FILE = "scorecard.npz"
CACHE_FORMAT = "scorecard-npz-2"      # tables.save_tables (no pickles)
#: ε: share of the reward model's training pairs whose label the noisy ablation flips.
NOISE_RATE = 0.3
SEED = 0
#: Longest answer generated for the scorecard, in tokens (as in chapter 5).
MAX_NEW_TOKENS = 112


# ============================================================================ the cache file
def save_tables(tables: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """Write DataFrames to one ``.npz`` tagged :data:`CACHE_FORMAT` (``tables.save_tables``: no pickles)."""
    return _tables.save_tables(tables, path, CACHE_FORMAT)


def load_tables(path: Path) -> dict[str, pd.DataFrame]:
    """Read a file written by :func:`save_tables` (without pickles)."""
    return _tables.load_tables(path, CACHE_FORMAT, "a scorecard cache")


def load_scorecard_cache(directory: Path = CHECKPOINT_DIR) -> dict[str, pd.DataFrame]:
    """The tables of ``scorecard.npz`` (written by :func:`build_scorecard_cache`).

    ``answers``          policy, eval_id, answer: greedy answers of the ablation policies
    ``ppo_diagnostics``  run, and ``ppo.DIAGNOSTIC_COLUMNS``: one row per PPO iteration
    ``reward_models``    the clean and the noisy reward model: labels flipped, test accuracy and loss
    ``runs``             run, start, reward model, iterations run, stopped, final KL and scores
    """
    path = committed_file(directory, CACHE_FILE)
    return load_tables(path)


# ============================================================================ the ablations
def flip_labels(pairs: Sequence[Mapping], rate: float = NOISE_RATE, seed: int = SEED) -> list[dict]:
    """The pairs with the labels of round(rate · n) of them flipped (chosen and rejected exchanged).

    Which pairs are flipped is drawn without replacement by ``numpy.random.default_rng(seed)``;
    each returned pair carries ``flipped`` (bool). The input is not changed.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must lie in [0, 1], got {rate!r}")
    pairs = [dict(p) for p in pairs]
    k = int(round(rate * len(pairs)))
    chosen = set(np.random.default_rng(seed).choice(len(pairs), size=k, replace=False).tolist())
    for i, p in enumerate(pairs):
        p["flipped"] = i in chosen
        if p["flipped"]:
            p["chosen"], p["rejected"] = p["rejected"], p["chosen"]
    return pairs


def _run_row(run: str, start: str, rm_name: str, diag: pd.DataFrame, iterations: int) -> dict:
    last = diag.iloc[-1]
    return {"run": run, "start": start, "reward_model": rm_name, "iterations": int(iterations),
            "iterations_run": int(len(diag)), "stopped": bool(diag.attrs.get("stopped", False)),
            "final_kl": float(last["kl"]), "final_score": float(last["score"]),
            "final_judge": float(diag["judge"].dropna().iloc[-1]) if diag["judge"].notna().any() else math.nan,
            "final_ended": float(last["ended"])}


def build_scorecard_cache(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False, *,
                          noise_rate: float = NOISE_RATE, seed: int = SEED, ppo_config=None) -> Path:
    """Train the "why all four stages" ablations and write ``out_dir / "scorecard.npz"``.

    Reads ``base.npz``, ``sft.npz`` and ``reward.npz`` from ``out_dir`` and, with the
    chapter-5 PPO configuration (``ppo.DEFAULT_CONFIG`` unless ``ppo_config``) on the
    training prompts (``data.load_rl_prompts()``):

    * ``ppo_from_base``: PPO with the **base** model as policy and reference (no SFT);
    * ``sft``: the SFT model alone (no training);
    * ``ppo_noisy_rm``: a reward model trained like chapter 3's (``reward.DEFAULT_CONFIG``,
      majority labels) after flipping the labels of a share ε = ``noise_rate`` of the
      training pairs (:func:`flip_labels`, seeded), then PPO from SFT against it.

    Stores the greedy answers of the three policies to every evaluation prompt and the
    diagnostics of both runs (tables of :func:`load_scorecard_cache`); no timings. Returns the path.
    """
    out_dir = Path(out_dir)
    cfg = ppo_config or ppo.DEFAULT_CONFIG
    with single_threaded_blas():                  # small products everywhere: see runtime.single_threaded_blas
        runs = _train_ablations(tok, out_dir, cfg, noise_rate, seed, progress)
        tables = _ablation_tables(tok, runs, noise_rate, cfg.iterations)
    return save_tables(tables, out_dir / CACHE_FILE)


@dataclass
class _Ablations:
    """What the ablation runs leave behind for the tables (:func:`_ablation_tables`)."""

    sft: TinyGPT
    clean_rm: reward.RewardModel
    from_base: TinyGPT
    diag_base: pd.DataFrame
    train_pairs: list[dict]          # the reference reward model's pairs, dataset labels
    majority: list[dict]             # the same, oriented by the annotators' majority
    noisy_pairs: list[dict]          # the same, a share ε of the labels flipped
    noisy_rm: reward.RewardModel
    noisy_policy: TinyGPT
    diag_noisy: pd.DataFrame


def _train_ablations(tok: VocabularyTokenizer, out_dir: Path, cfg, noise_rate: float, seed: int,
                     progress: bool) -> _Ablations:
    """The two trained ablations: PPO from the base model, and PPO against a reward model on noisy labels."""
    rm_cfg = reward.DEFAULT_CONFIG
    base = TinyGPT.load(out_dir / "base.npz")
    sft = TinyGPT.load(out_dir / "sft.npz")
    clean_rm = reward.load_reward_model(out_dir)
    train_prompts = data.load_rl_prompts()
    # (a) PPO straight from the pretrained model: policy and reference are the base model
    from_base, diag_base = ppo.train_ppo(base.copy(), base, clean_rm, tok, train_prompts, cfg, progress=progress,
                                         desc="PPO from base")

    # (c) a reward model on noisy labels, then PPO from SFT against it. It trains on what the reference
    # reward model trained on (the preference pairs and the knowledge-base pairs), with labels flipped,
    # so that the labels are the only difference between the two.
    train_pairs = [p for p in data.load_preferences() if p["split"] == "train"]
    train_pairs += data.contrast_pairs(data.load_scenarios())
    majority = reward.orient_pairs(train_pairs, rm_cfg.label)
    noisy_pairs = flip_labels(majority, noise_rate, seed)
    noisy_rm = reward.RewardModel(sft.copy(), seed=rm_cfg.seed)
    reward.train_reward_model(noisy_rm, tok, noisy_pairs, replace(rm_cfg, label="gold"), progress,
                              desc="noisy reward model")
    noisy_policy, diag_noisy = ppo.train_ppo(sft.copy(), sft, noisy_rm, tok, train_prompts, cfg, progress=progress,
                                             desc="PPO, noisy reward")
    return _Ablations(sft, clean_rm, from_base, diag_base, train_pairs, majority, noisy_pairs, noisy_rm,
                      noisy_policy, diag_noisy)


def _ablation_tables(tok: VocabularyTokenizer, a: _Ablations, noise_rate: float,
                     iterations: int) -> dict[str, pd.DataFrame]:
    """The tables of ``scorecard.npz``: greedy answers, PPO diagnostics, the two reward models, the runs."""
    eval_prompts = data.load_eval_prompts()
    prompts = [p["prompt"] for p in eval_prompts]
    answer_rows = []
    for name, policy in (("ppo_from_base", a.from_base), ("sft", a.sft), ("ppo_noisy_rm", a.noisy_policy)):
        texts = ppo.sample_answers(policy, tok, prompts, 0.0, MAX_NEW_TOKENS)
        answer_rows += [(name, p["id"], t) for p, t in zip(eval_prompts, texts)]
    answers = pd.DataFrame(answer_rows, columns=["policy", "eval_id", "answer"])

    diagnostics = pd.concat([d.assign(run=name) for name, d in (("ppo_from_base", a.diag_base),
                                                                ("ppo_noisy_rm", a.diag_noisy))], ignore_index=True)
    diagnostics = diagnostics[["run", *ppo.DIAGNOSTIC_COLUMNS]]
    test_pairs = [p for p in data.load_preferences() if p["split"] == "test"]
    gold_agreement = float(np.mean([not p["swapped"] for p in a.majority]))
    rm_rows = []
    for name, rm, pairs in (("clean", a.clean_rm, a.majority), ("noisy", a.noisy_rm, a.noisy_pairs)):
        agree = np.mean([p["chosen"] == q["chosen"] for p, q in zip(pairs, a.train_pairs)])
        ev = reward.evaluate_pairs(rm, tok, test_pairs)
        rm_rows.append({"reward_model": name, "train_pairs": len(pairs),
                        "flipped": int(sum(p.get("flipped", False) for p in pairs)),
                        "label_noise": noise_rate if name == "noisy" else 0.0,
                        "train_labels_gold": float(agree) if name == "noisy" else gold_agreement,
                        "test_pairs": ev["n"], "test_accuracy": ev["accuracy"], "test_ci_low": ev["ci_low"],
                        "test_ci_high": ev["ci_high"], "test_loss": ev["loss"]})
    runs = pd.DataFrame([_run_row("ppo_from_base", "base", "clean", a.diag_base, iterations),
                         _run_row("ppo_noisy_rm", "sft", "noisy", a.diag_noisy, iterations)])
    return {"answers": answers, "ppo_diagnostics": diagnostics, "reward_models": pd.DataFrame(rm_rows), "runs": runs}
