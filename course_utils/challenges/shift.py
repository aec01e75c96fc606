"""Challenge 3, distribution shift: the reward model off its training distribution; retraining on
on-policy pairs as the mitigation.

:func:`distribution_shift_experiment` measures a reward model on a category it never saw, and
its agreement with the gold judge on the answers of a drifting PPO policy (the hacked run of
:func:`reward_hacking_experiment`, up to the mitigations' ``iterations``: its continuation serves
the over-optimisation curve only) before and after retraining on pairs of that policy's own
answers labelled by the gold judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..model import TinyGPT
from ..reward import evaluate_pairs
from ..stats import TAILS_95, bootstrap_indices, percentile_interval
from ..tokenizer import VocabularyTokenizer
from ..training import encode_sft
from .common import (PPORun, _judge, _pair_correct, _preference_pairs, _scores, _trained_reward_model,
                     effectiveness)
from .hacking import HackingSettings, reward_hacking_experiment


@dataclass
class ShiftSettings:
    """Knobs of :func:`distribution_shift_experiment` (defaults: the chapter's cached run).

    A policy-sample pair counts (is *decisive*) when the gold judge's scores differ by at least
    ``gap``. Without a run passed in, the reward-hacking experiment is run first, with the
    ``hacking`` settings at their smallest and largest β only.
    """

    holdout_category: str = "pharmacogenomics"   # the category left out of the reward model's training pairs
    gap: float = 0.05                            # the gold-score difference that makes a pair decisive
    n_onpolicy: int = 240                        # at most this many newly labelled on-policy pairs (the mitigation)
    drift_from: float = 0.5                      # checkpoints from this fraction of the run on are the drifted policy
    n_bootstrap: int = 1000                      # resamples per interval
    reward_epochs: int = 2                       # training passes of each reward model
    n_train: int | None = None                   # reward models see the first n training pairs (None = all)
    seed: int = 0                                # reward models, resamples
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


def _rollout_answers(run: PPORun, tok: VocabularyTokenizer, items: Sequence[Mapping],
                     last: int) -> dict[tuple[int, str], list[str]]:
    """The decoded answers of every rollout the run scored in its first ``last`` iterations, by
    (iteration, prompt), training prompts only."""
    lookup = {tuple(encode_sft(tok, it["prompt"])[0]): it for it in items}
    answers: dict[tuple[int, str], list[str]] = {}
    for it, tokens, lengths in run.rollouts:
        if it >= last:                                       # rollout `it` was sampled at iteration it + 1
            continue
        for row, n in zip(tokens, lengths):
            a_pos = int(np.flatnonzero(row == tok.a_id)[0])
            item = lookup.get(tuple(int(t) for t in row[:a_pos + 1]))
            if item is None:
                continue
            answers.setdefault((it, item["prompt"]), []).append(
                tok.decode([int(t) for t in row[a_pos + 1:int(n)]]))
    return answers


def _onpolicy_pairs(run: PPORun, tok: VocabularyTokenizer, items: Sequence[Mapping], scenarios, gap: float,
                    limit: int, seed: int, last: int) -> list[dict]:
    """Pairs of the run's own rollout answers to the same prompt, labelled by the gold judge.

    Every rollout the reward model scored in the run's first ``last`` iterations (training prompts
    only) is decoded;
    the answers to one prompt in one iteration are paired with each other, and a pair whose
    gold scores differ by at least ``gap`` becomes a preference pair (chosen = the higher
    gold score). At most ``limit`` pairs, spread evenly over the run (a seeded subsample).
    """
    item_by_prompt = {it["prompt"]: it for it in items}
    candidates = []
    for (it, prompt), texts in sorted(_rollout_answers(run, tok, items, last).items()):
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


def _category_table(tok: VocabularyTokenizer, sft: TinyGPT, rm, cfg: ShiftSettings, prefs: list[dict],
                    train: list[dict], test: list[dict], progress: bool) -> pd.DataFrame:
    """``shift_categories``: a reward model trained without ``holdout_category``, next to ``rm``."""
    cat = cfg.holdout_category
    rm_out = _trained_reward_model(sft, tok, [p for p in train if p["category"] != cat], cfg.seed, progress,
                                   epochs=cfg.reward_epochs, desc=f"reward model without {cat}")
    groups = {
        "test pairs, other categories": [p for p in test if p["category"] != cat],
        f"test pairs, {cat}": [p for p in test if p["category"] == cat],
        f"all pairs, {cat}": [p for p in prefs if p["category"] == cat],
    }
    rows = []
    for model_name, model in (("all categories", rm), (f"without {cat}", rm_out)):
        for group, pairs in groups.items():
            if model_name == "all categories" and group.startswith("all pairs"):
                continue                                      # the full model trained on those
            ev = evaluate_pairs(model, tok, pairs)
            rows.append({"reward_model": model_name, "pairs": group, "held_out_category": cat,
                         "seen_in_training": model_name == "all categories" or cat not in group,
                         "n": ev["n"], "accuracy": ev["accuracy"], "ci_low": ev["ci_low"],
                         "ci_high": ev["ci_high"]})
    return pd.DataFrame(rows)


@dataclass
class _Agreement:
    """How often the reward model (before and after retraining) orders a decisive pair like the gold judge,
    along the drifting run: ``table`` (``shift_agreement``, one row per checkpoint) and, per checkpoint,
    ``pairs[iteration]`` = (the prompt of each decisive pair, agreement of the old, of the new model)."""

    iterations: list[int]
    table: pd.DataFrame
    pairs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def pooled(self, iters: Sequence[int], which: str, weights: np.ndarray | None = None) -> float:
        """Agreement pooled over checkpoints; ``weights`` (n_items,) = how often each prompt is drawn."""
        num = den = 0.0
        for it in iters:
            items, a_old, a_new = self.pairs[it]
            a = a_old if which == "old" else a_new
            w = np.ones(len(items)) if weights is None else weights[items]
            num += float((w * a).sum())
            den += float(w.sum())
        return num / den if den > 0 else math.nan


def _agreement_along_run(tok: VocabularyTokenizer, rm, rm_new, hacking_extras: Mapping,
                         gap: float) -> _Agreement:
    """Score the hacked run's held-out answers at every checkpoint with both reward models."""
    run_key = hacking_extras["hacked_run"]
    eval_items = hacking_extras["eval_items"]
    its = [it for it in sorted(hacking_extras["runs"][run_key].snapshots) if it <= hacking_extras["iterations"]]
    rows, pairs_at = [], {}
    for it in its:
        t = hacking_extras["per_answer"][(run_key, it)].copy()
        seqs = _retokenize(tok, [eval_items[i]["prompt"] for i in t["item"]], list(t["answer"]),
                           list(t["ended"] > 0))
        t["score:old"], t["score:new"] = _scores(rm, *seqs), _scores(rm_new, *seqs)
        pairs = _decisive_pairs(t, ["score:old", "score:new"], gap)
        a_old, a_new = _agreement(pairs, "dscore:old"), _agreement(pairs, "dscore:new")
        pairs_at[it] = (pairs["item"].to_numpy().astype(np.int64), a_old, a_new)
        rows.append({"iteration": it, "kl": float(t["kl"].mean()), "d": math.sqrt(max(t["kl"].mean(), 0.0)),
                     "n_pairs": int(len(pairs)), "agree_old": float(a_old.mean()) if len(pairs) else math.nan,
                     "agree_new": float(a_new.mean()) if len(pairs) else math.nan})
    return _Agreement(its, pd.DataFrame(rows), pairs_at)


def _shift_mitigation(tok: VocabularyTokenizer, rm, rm_new, test: list[dict], agreement: _Agreement,
                      n_items: int, n_onpolicy: int, cfg: ShiftSettings) -> pd.DataFrame:
    """``shift_mitigation``: E = (agree_new - agree_old) / (acc_pairs - agree_old) on the drifted checkpoints,
    the interval resampling the held-out prompts and the test pairs."""
    its = agreement.iterations
    drift = [it for it in its if it > 0 and it >= cfg.drift_from * its[-1]] or its[-1:]
    # q_good: how well r_φ orders pairs like its training data (held-out preference pairs)
    correct = _pair_correct(rm, tok, test)
    q_good, q_sft = float(correct.mean()), agreement.pooled(its[:1], "old")
    q_bad, q_mit = agreement.pooled(drift, "old"), agreement.pooled(drift, "new")
    idx = bootstrap_indices(n_items, cfg.n_bootstrap, cfg.seed)
    idx_test = bootstrap_indices(len(test), cfg.n_bootstrap, cfg.seed + 1)
    boot = []
    for r, rt in zip(idx, idx_test):
        w = np.bincount(r, minlength=n_items).astype(np.float64)
        boot.append(effectiveness(agreement.pooled(drift, "new", w), agreement.pooled(drift, "old", w),
                                  correct[rt].mean()))
    lo, hi = percentile_interval(np.array(boot), tails=TAILS_95, finite=True)
    acc_new = evaluate_pairs(rm_new, tok, test)
    return pd.DataFrame([{
        "mitigation": "retrain with on-policy pairs labelled by the gold judge",
        "n_onpolicy_pairs": n_onpolicy, "accuracy_preference_pairs": q_good, "agree_sft_samples": q_sft,
        "agree_drifted": q_bad, "agree_drifted_retrained": q_mit,
        "drifted_checkpoints": ", ".join(str(i) for i in drift),
        "effectiveness": effectiveness(q_mit, q_bad, q_good), "ci_low": lo, "ci_high": hi,
        "test_accuracy_after": acc_new["accuracy"],
    }])


def distribution_shift_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: ShiftSettings | None = None,
                                  progress: bool = False, hacking_extras: Mapping | None = None
                                  ) -> dict[str, pd.DataFrame]:
    """The reward model off its training distribution, and retraining on on-policy pairs.

    1. *A category it never saw.* A reward model is trained (chapter-3 settings, from the SFT
       trunk, on preference pairs only: no knowledge-base pairs, unlike chapter 3's reference
       model) on the training pairs of every category but ``holdout_category``; its accuracy
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
    cfg = settings or ShiftSettings()
    prefs, train, test = _preference_pairs(cfg.n_train)
    if cfg.holdout_category not in {p["category"] for p in prefs}:
        raise ValueError(f"unknown category {cfg.holdout_category!r}")
    categories = _category_table(tok, sft, rm, cfg, prefs, train, test, progress)
    if hacking_extras is None:
        h = cfg.hacking
        _, hacking_extras = reward_hacking_experiment(
            tok, sft, rm, replace(h, betas=(min(h.betas), max(h.betas))), progress=progress, return_runs=True)
    run = hacking_extras["runs"][hacking_extras["hacked_run"]]
    onpolicy = _onpolicy_pairs(run, tok, hacking_extras["train_items"], hacking_extras["scenarios"], cfg.gap,
                               cfg.n_onpolicy, cfg.seed, hacking_extras["iterations"])
    # the chapter's recipe (``rm`` was trained with it on the training pairs), on more pairs
    rm_new = _trained_reward_model(sft, tok, train + onpolicy, cfg.seed, progress, epochs=cfg.reward_epochs,
                                   desc="reward model + on-policy pairs")
    agreement = _agreement_along_run(tok, rm, rm_new, hacking_extras, cfg.gap)
    mitigation = _shift_mitigation(tok, rm, rm_new, test, agreement, len(hacking_extras["eval_items"]),
                                   len(onpolicy), cfg)
    return {"shift_categories": categories, "shift_agreement": agreement.table, "shift_mitigation": mitigation}
