"""Chapter 8, "beyond PPO": DPO, GRPO and best-of-n next to PPO, on the same model, data and judge.

Three ways to turn preferences into a better policy without chapter 5's PPO loop:

* **DPO** (Rafailov et al. 2023, ``dpo.py``) trains the policy directly on the preference
  pairs: no reward model, no sampling.
* **GRPO** (Shao et al. 2024, ``grpo.py``) keeps the reward model and the sampling but drops
  PPO's value head: each answer is compared with the other answers to the same prompt.
* **Best-of-n** (Nakano et al. 2021; Gao et al. 2023, ``bestofn.py``) trains nothing: it samples
  n answers from the SFT model and keeps the one the reward model scores highest.

This module trains the reference DPO and GRPO policies (:func:`build_beyond_cache`, run by
``make checkpoints`` after the PPO stage), measures every method on the 64 held-out questions
(:func:`side_by_side`) and stores the tables in ``beyond.npz`` (``challenges.save_tables``),
so that chapter 8 only loads, prints and plots. The chapter's small pieces live with their
ideas and are re-exported here: the tabular DPO on a handful of candidate answers
(``bandit.bandit_dpo``), the best-of-n choice (``bestofn.bon_choice``) and the two widgets
(``widgets.beyond``: ``dpo_beta_widget``, ``best_of_n_widget``).

Educational material, not medical advice.

Symbols
-------
=====================  ======================================================================
x_i, s_i               held-out question i (i = 1 .. 64, ``data.load_eval_prompts``), its scenario
π_sft = π_ref          the SFT policy (chapter 2), the reference of PPO, DPO and GRPO
π_ppo, π_dpo, π_grpo   the trained policies; their answers are decoded greedily
y_ij                   sample j of π_sft at temperature 1 for question i (j = 1 .. N, N = 64)
r(x, y)                the reward model's score (chapter 3)
J(y, s)                the gold judge's ``overall`` score in [0, 1] (``judge.judge_many``)
BoN_n                  best-of-n: argmax_{j ≤ n} r(x_i, y_ij) (ties: the earliest sample), so
                       the n = 4 choice is made from the first four of the 64 samples
KL                     KL(π ‖ π_ref) per answer in nats: for a trained policy the mean of
                       Σ_t [log π(y_t) - log π_ref(y_t)] over samples y ~ π at temperature 1
                       (``challenges.evaluate_policy``); for best-of-n the analytic bound
                       log n - (n-1)/n (``bestofn.bon_kl``)
P, L                   prompt and answer length in tokens (``<bos> <q> x <a> y <eos>``)
=====================  ======================================================================

Compute is counted in **token positions passed through a network** (policy, reference or reward
model; padding not counted; a backward pass costs about twice a forward one), never in seconds,
so a rebuild reproduces the file:

* DPO training: every epoch, each pair's two sequences go forward through π and π_ref and
  backward through π: forward 2 E Σ (P + L), backward E Σ (P + L);
* PPO and GRPO training, per iteration of B answers with mean answer length L̄ (from the log):
  S = B (P̄ + L̄) tokens; forward (4 + K) S (sampling, π_old, π_ref, reward model, and K update
  epochs), backward K S; P̄ is the mean prompt length of the RL prompts (:func:`rl_prompts`);
* answering one question: a greedy policy processes P + L tokens; best-of-n samples and scores
  n answers, 2 n (P + L̄).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import data
from .bandit import bandit_dpo  # noqa: F401  (re-exported: chapter 8 calls beyond.bandit_dpo)
from .bestofn import bon_choice, bon_kl
from .challenges import evaluate_policy, load_tables, save_tables
from .dpo import DPOConfig, train_dpo
from .grpo import GRPOConfig, train_grpo
from .judge import judge_many
from .model import TinyGPT
from .paths import CHECKPOINT_DIR, committed_file, save_log
from .ppo import DEFAULT_CONFIG as PPO_CONFIG
from .reward import load_reward_model
from .runtime import ForkedCall, single_threaded_blas
from .sampling import sample_answers
from .scorecard import reward_scores, score_stages, scorecard
from .stats import TAILS_95, bootstrap_indices, percentile_interval
from .tokenizer import VocabularyTokenizer
from .training import encode_sft
from .widgets.beyond import (  # noqa: F401  (re-exported: chapter 8 calls beyond.dpo_beta_widget ...)
    best_of_n_view,
    best_of_n_widget,
    dpo_beta_view,
    dpo_beta_widget,
)

__all__ = [
    "CACHE_FILE", "REFERENCE_DPO", "REFERENCE_GRPO", "BON_SAMPLES", "TABLE_NS", "CURVE_NS", "SUMMARY_COLUMNS",
    "fitting_pairs", "rl_prompts", "train_reference_dpo", "train_reference_grpo", "dpo_train_tokens", "rl_train_tokens",
    "bon_samples", "bon_choice", "bestofn_curve", "side_by_side", "build_beyond_cache", "load_beyond_cache",
    "bandit_dpo", "dpo_beta_view", "dpo_beta_widget", "best_of_n_view", "best_of_n_widget",
]

CACHE_FILE = "beyond.npz"
SEED = 0
#: Longest answer, as in chapters 5-7 (the expert answers have 69-108 tokens).
MAX_NEW_TOKENS = 112
#: The reference DPO run: the defaults of ``dpo.DPOConfig`` (two epochs over the training pairs,
#: β = 0.1), the held-out pairs evaluated every 8 steps.
REFERENCE_DPO = DPOConfig(eval_every=8, seed=SEED)
#: The reference GRPO run: the defaults of ``grpo.GRPOConfig`` (60 iterations of 2 prompts × 8 answers,
#: as many answers as chapter 5's PPO run).
REFERENCE_GRPO = GRPOConfig(seed=SEED)
#: Samples per held-out question for best-of-n (every n up to this reuses the first n samples).
BON_SAMPLES = 64
#: The best-of-n settings of the side-by-side table, and of the curve against n.
TABLE_NS: tuple[int, ...] = (1, 4, 16, 64)
CURVE_NS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Samples per question from which the KL of a trained policy is estimated.
KL_SAMPLES = 4
ROUNDS = 1000
SUMMARY_COLUMNS: tuple[str, ...] = (
    "method", "setting", "decoding", "n", "gold", "gold_lower", "gold_upper", "reward", "reward_lower",
    "reward_upper", "kl", "kl_kind", "words", "train_fwd_tokens", "train_bwd_tokens", "answer_tokens",
)


# ============================================================================ training
def fitting_pairs(tok: VocabularyTokenizer, pairs: Sequence[Mapping], max_len: int) -> list[dict]:
    """The pairs whose chosen and rejected sequences both fit a model reading ``max_len`` positions.

    A sequence of n tokens needs n - 1 ≤ max_len (the forward pass reads all tokens but the last).
    """
    return [dict(p) for p in pairs
            if max(len(encode_sft(tok, p["prompt"], p[k])[0]) for k in ("chosen", "rejected")) - 1 <= max_len]


def train_reference_dpo(sft: TinyGPT, tok: VocabularyTokenizer, config: DPOConfig | None = None,
                        progress: bool = False) -> tuple[TinyGPT, pd.DataFrame]:
    """DPO from a copy of ``sft`` (also the frozen π_ref) on the training pairs of ``data.load_preferences()``,
    the test pairs evaluated on the way. Returns (policy, log) as ``dpo.train_dpo``."""
    prefs = data.load_preferences()
    train = fitting_pairs(tok, [p for p in prefs if p["split"] == "train"], sft.config.max_len)
    test = fitting_pairs(tok, [p for p in prefs if p["split"] == "test"], sft.config.max_len)
    return train_dpo(sft.copy(), sft, tok, train, config or REFERENCE_DPO, progress=progress, eval_pairs=test)


def rl_prompts() -> list[dict]:
    """The prompts reinforcement learning trains on: ``data.load_rl_prompts()`` (two wordings of
    every case that no SFT demonstration used); never the held-out questions."""
    return data.load_rl_prompts()


def train_reference_grpo(sft: TinyGPT, reward_model, tok: VocabularyTokenizer, config: GRPOConfig | None = None,
                         progress: bool = False) -> tuple[TinyGPT, pd.DataFrame]:
    """GRPO from a copy of ``sft`` against ``reward_model`` on :func:`rl_prompts`, KL-anchored to ``sft``.
    Returns (policy, diagnostics) as ``grpo.train_grpo``."""
    return train_grpo(sft.copy(), sft, reward_model, tok, rl_prompts(), config or REFERENCE_GRPO,
                      progress=progress, scenarios=data.load_scenarios())


def dpo_train_tokens(tok: VocabularyTokenizer, pairs: Sequence[Mapping], epochs: int) -> dict[str, float]:
    """Token positions of a DPO run: forward 2 E Σ (P + L) (π and π_ref), backward E Σ (P + L)."""
    per_epoch = sum(len(encode_sft(tok, p["prompt"], p[k])[0]) for p in pairs for k in ("chosen", "rejected"))
    return {"train_fwd_tokens": float(2 * epochs * per_epoch), "train_bwd_tokens": float(epochs * per_epoch)}


def rl_train_tokens(log: pd.DataFrame, batch_size: int, update_epochs: int, prompt_tokens: float) -> dict[str, float]:
    """Token positions of a PPO or GRPO run from its log: S = Σ_iterations B (P̄ + L̄);
    forward (4 + K) S, backward K S (K = ``update_epochs``)."""
    s = float(batch_size * (prompt_tokens + log["length"].to_numpy(dtype=np.float64)).sum())
    return {"train_fwd_tokens": (4 + update_epochs) * s, "train_bwd_tokens": update_epochs * s}


# ============================================================================ best-of-n
def bon_samples(policy: TinyGPT, reward_model, tok: VocabularyTokenizer, items: Sequence[Mapping],
                scenarios: Mapping[str, Mapping], n: int = BON_SAMPLES, max_new_tokens: int = MAX_NEW_TOKENS,
                seed: int = SEED, chunk: int = 16) -> pd.DataFrame:
    """n answers per question sampled from ``policy`` at temperature 1, each scored by the reward model
    and the gold judge.

    One row per sample: ``item`` (index into ``items``), ``eval_id``, ``sample`` (0 .. n-1, the
    order best-of-n reads them in), ``reward``, ``gold`` (``overall``), ``words``, ``tokens``
    (P + L) and ``answer``. Questions are sampled ``chunk`` at a time (the KV cache of 64 × 64
    sequences at once would be large), chunk c with seed (seed, c).
    """
    frames = []
    for c, start in enumerate(range(0, len(items), chunk)):
        part = list(items[start:start + chunk])
        prompts = [it["prompt"] for it in part for _ in range(n)]
        answers = sample_answers(policy, tok, prompts, 1.0, max_new_tokens, seed=[seed, c])
        verdicts = judge_many(answers, [scenarios[it["scenario_id"]] for it in part for _ in range(n)])
        frames.append(pd.DataFrame({
            "item": np.repeat(np.arange(start, start + len(part)), n),
            "eval_id": [it["id"] for it in part for _ in range(n)],
            "sample": np.tile(np.arange(n), len(part)),
            "reward": reward_scores(reward_model, tok, prompts, answers),
            "gold": verdicts["overall"].to_numpy(dtype=np.float64),
            "words": np.array([len(a.split()) for a in answers], dtype=np.float64),
            "tokens": np.array([len(encode_sft(tok, p, a)[0]) for p, a in zip(prompts, answers)], dtype=np.float64),
            "answer": answers,
        }))
    return pd.concat(frames, ignore_index=True)


def bestofn_curve(samples: pd.DataFrame, ns: Sequence[int] = CURVE_NS, rounds: int = ROUNDS,
                  seed: int = SEED) -> pd.DataFrame:
    """Best-of-n against n: mean reward and gold score of the chosen answers, a bootstrap 95% interval
    of the gold mean over the questions, the oracle's gold, the answers' length and the KL bound."""
    rows = []
    for n in ns:
        pick, oracle = bon_choice(samples, n), bon_choice(samples, n, by="gold")
        gold = pick["gold"].to_numpy()
        lo, hi = percentile_interval(gold[bootstrap_indices(len(gold), rounds, seed)].mean(axis=1), tails=TAILS_95,
                                     finite=True)
        rows.append({"n": int(n), "reward": float(pick["reward"].mean()), "gold": float(gold.mean()),
                     "gold_lower": lo, "gold_upper": hi, "gold_oracle": float(oracle["gold"].mean()),
                     "words": float(pick["words"].mean()), "kl_bound": float(bon_kl(n))})
    return pd.DataFrame(rows)


# ============================================================================ the side-by-side table
def _answer_rows(stage: str, items: Sequence[Mapping], answers: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({"stage": stage, "eval_id": [it["id"] for it in items],
                         "scenario_id": [it["scenario_id"] for it in items],
                         "category": [it["category"] for it in items], "prompt": [it["prompt"] for it in items],
                         "answer": list(answers)})


def _policy_kl(policy: TinyGPT, ref: TinyGPT, tok: VocabularyTokenizer, items: Sequence[Mapping],
               scenarios: Mapping[str, Mapping], samples: int, max_new_tokens: int, seed: int) -> float:
    """Mean Σ_t [log π(y_t) - log π_ref(y_t)] over ``samples`` answers per question sampled from π
    (0 if π is π_ref)."""
    if policy is ref:
        return 0.0
    table = evaluate_policy(policy, ref, tok, items, scenarios, {}, samples=samples, max_new_tokens=max_new_tokens,
                            seed=seed)
    return float(table["kl"].mean())


def _summary(scored: pd.DataFrame, stats: pd.DataFrame, meta: Mapping[str, dict], tok) -> pd.DataFrame:
    """One row per stage of ``scored``: means and intervals from ``stats`` (``scorecard.scorecard``), ``meta``."""
    rows = []
    for stage, info in meta.items():
        s = stats[stats["stage"] == stage].set_index("metric")
        ans = scored[scored["stage"] == stage]
        row = {"method": info["method"], "setting": info["setting"], "decoding": info["decoding"], "n": info["n"]}
        for col, metric in (("gold", "overall"), ("reward", "reward")):
            row.update({col: s.loc[metric, "mean"], f"{col}_lower": s.loc[metric, "lower"],
                        f"{col}_upper": s.loc[metric, "upper"]})
        tokens = np.mean([len(encode_sft(tok, p, a)[0]) for p, a in zip(ans["prompt"], ans["answer"])])
        row.update({"kl": info["kl"], "kl_kind": info["kl_kind"], "words": float(ans["answer"].str.split().str.len()
                                                                                  .mean()),
                    "train_fwd_tokens": info.get("train_fwd_tokens", math.nan),
                    "train_bwd_tokens": info.get("train_bwd_tokens", math.nan),
                    "answer_tokens": info.get("answer_tokens", float(tokens))})
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def side_by_side(policies: Mapping[str, TinyGPT], ref: TinyGPT, reward_model, tok: VocabularyTokenizer,
                 items: Sequence[Mapping] | None = None, scenarios: Mapping[str, Mapping] | None = None, *,
                 samples: pd.DataFrame | None = None, ns: Sequence[int] = TABLE_NS,
                 compute: Mapping[str, Mapping[str, float]] | None = None, kl_samples: int = KL_SAMPLES,
                 max_new_tokens: int = MAX_NEW_TOKENS, rounds: int = ROUNDS,
                 seed: int = SEED) -> dict[str, pd.DataFrame]:
    """Every method on the held-out questions: gold score with a bootstrap 95% interval, reward, KL, compute.

    ``policies``: name -> TinyGPT, answered greedily (e.g. SFT, PPO, DPO, GRPO; ``ref`` itself,
    the SFT model, has KL 0). Best-of-n for each n in ``ns`` picks from the first n of
    ``samples`` (:func:`bon_samples` of ``ref``; drawn here if None, as many as ``max(ns)``).
    ``compute``: name -> ``train_fwd_tokens`` / ``train_bwd_tokens``, the training beyond SFT and the
    reward model (0 for ``ref`` and best-of-n, NaN for a policy missing from ``compute``).
    Intervals: ``scorecard.scorecard`` (percentile bootstrap over the questions, the same
    resamples for every method, so differences are paired).

    Returns {"summary": one row per method and setting (``SUMMARY_COLUMNS``), "answers": every
    answer with the gold judge's metrics and the reward (``scorecard.score_stages``)}.
    """
    items = list(items if items is not None else data.load_eval_prompts())
    scenarios = scenarios or {s["id"]: s for s in data.load_scenarios()}
    compute = compute or {}
    if samples is None:
        samples = bon_samples(ref, reward_model, tok, items, scenarios, max(ns), max_new_tokens, seed)
    frames, meta = [], {}
    for name, policy in policies.items():
        frames.append(_answer_rows(name, items, sample_answers(policy, tok, [it["prompt"] for it in items], 0.0,
                                                               max_new_tokens)))
        kl = _policy_kl(policy, ref, tok, items, scenarios, kl_samples, max_new_tokens, seed)
        none = {"train_fwd_tokens": 0.0, "train_bwd_tokens": 0.0} if policy is ref else {}
        meta[name] = {"method": name, "setting": "greedy", "decoding": "greedy", "n": 1, "kl": kl,
                      "kl_kind": "0 (π = π_ref)" if policy is ref else "sampled estimate",
                      **none, **compute.get(name, {})}
    for n in ns:
        pick = bon_choice(samples, n)
        stage = f"best-of-{n}"
        frames.append(_answer_rows(stage, [items[i] for i in pick["item"]], pick["answer"].tolist()))
        meta[stage] = {"method": "best-of-n", "setting": f"n = {n}", "decoding": "sampled, τ = 1", "n": int(n),
                       "kl": float(bon_kl(n)), "kl_kind": "analytic bound", "train_fwd_tokens": 0.0,
                       "train_bwd_tokens": 0.0,
                       "answer_tokens": float(2 * n * samples[samples["sample"] < n]["tokens"].mean())}
    scored = score_stages(pd.concat(frames, ignore_index=True), scenarios, reward_model, tok)
    stats = scorecard(scored, metrics=["overall", "reward"], rounds=rounds, seed=seed)
    return {"summary": _summary(scored, stats, meta, tok), "answers": scored}


# ============================================================================ the cache
def _settings_table(dpo_cfg: DPOConfig, grpo_cfg: GRPOConfig, dpo_log: pd.DataFrame,
                    grpo_log: pd.DataFrame) -> pd.DataFrame:
    rows = [{"run": "dpo", "setting": k, "value": repr(v)} for k, v in asdict(dpo_cfg).items()]
    rows += [{"run": "grpo", "setting": k, "value": repr(v)} for k, v in asdict(grpo_cfg).items()]
    for run, log in (("dpo", dpo_log), ("grpo", grpo_log)):
        rows += [{"run": run, "setting": "stopped", "value": repr(bool(log.attrs.get("stopped", False)))},
                 {"run": run, "setting": "rows", "value": repr(len(log))}]
    rows += [{"run": "side_by_side", "setting": k, "value": repr(v)}
             for k, v in {"bon_samples": BON_SAMPLES, "table_ns": TABLE_NS, "curve_ns": CURVE_NS,
                          "kl_samples": KL_SAMPLES, "rounds": ROUNDS, "max_new_tokens": MAX_NEW_TOKENS}.items()]
    return pd.DataFrame(rows)


def _training_compute(tok: VocabularyTokenizer, out_dir: Path, dpo_log: pd.DataFrame,
                      grpo_log: pd.DataFrame, max_len: int) -> dict[str, dict[str, float]]:
    """Training token counts of DPO (from the pairs), GRPO and PPO (from their logs; PPO only if logged)."""
    prefs = [p for p in data.load_preferences() if p["split"] == "train"]
    prompt_tokens = float(np.mean([len(encode_sft(tok, d["prompt"])[0]) for d in rl_prompts()]))
    out = {"DPO": dpo_train_tokens(tok, fitting_pairs(tok, prefs, max_len), REFERENCE_DPO.epochs),
           "GRPO": rl_train_tokens(grpo_log, REFERENCE_GRPO.batch_size, REFERENCE_GRPO.ppo_epochs, prompt_tokens)}
    ppo_log = Path(out_dir) / "logs" / "ppo.csv"
    if ppo_log.exists():
        out["PPO"] = rl_train_tokens(pd.read_csv(ppo_log), PPO_CONFIG.batch_size, PPO_CONFIG.ppo_epochs,
                                     prompt_tokens)
    return out


def build_beyond_cache(tok: VocabularyTokenizer, out_dir: Path, progress: bool = False) -> Path:
    """Chapter 8's reference runs and tables: DPO and GRPO from ``sft.npz``, then :func:`side_by_side`.

    Reads ``sft.npz``, ``reward.npz`` and ``ppo.npz`` from ``out_dir``; writes ``dpo.npz`` and
    ``grpo.npz`` (float16, like ``ppo.npz``), the logs ``logs/dpo.csv`` and ``logs/grpo.csv``,
    and ``beyond.npz`` with the tables ``summary`` and ``answers`` (:func:`side_by_side`),
    ``samples`` (the ``BON_SAMPLES`` SFT samples per question, without their text), ``curve``
    (:func:`bestofn_curve`) and ``settings``. The policies are evaluated as saved (float16
    weights). The SFT samples for best-of-n are drawn in a second process while DPO and GRPO
    train (one BLAS thread each; ``runtime.ForkedCall``). Everything is seeded and no timing is stored, so a rebuild
    reproduces the file.
    """
    out_dir = Path(out_dir)
    sft, rm = TinyGPT.load(out_dir / "sft.npz"), load_reward_model(out_dir)
    items, scenarios = data.load_eval_prompts(), {s["id"]: s for s in data.load_scenarios()}
    sample_args = (sft, rm, tok, items, scenarios, BON_SAMPLES, MAX_NEW_TOKENS, SEED)
    with ForkedCall(_single_threaded, bon_samples, *sample_args, enabled=(os.cpu_count() or 1) >= 2) as side:
        dpo_policy, dpo_log = train_reference_dpo(sft, tok, progress=progress)
        dpo_policy.save(out_dir / "dpo.npz", storage="float16")
        save_log(dpo_log, out_dir, "dpo")
        grpo_policy, grpo_log = train_reference_grpo(sft, rm, tok, progress=progress)
        grpo_policy.save(out_dir / "grpo.npz", storage="float16")
        save_log(grpo_log, out_dir, "grpo")
        samples = side.result()                               # None: no second process, sample here
    with single_threaded_blas():
        if samples is None:
            samples = bon_samples(*sample_args)
        policies = {"SFT": sft, **{k: TinyGPT.load(out_dir / f"{k.lower()}.npz") for k in ("PPO", "DPO", "GRPO")}}
        tables = side_by_side(policies, sft, rm, tok, items, scenarios, samples=samples, ns=TABLE_NS,
                              compute=_training_compute(tok, out_dir, dpo_log, grpo_log, sft.config.max_len),
                              kl_samples=KL_SAMPLES, max_new_tokens=MAX_NEW_TOKENS, rounds=ROUNDS, seed=SEED)
    tables["samples"] = samples.drop(columns=["answer"])
    tables["curve"] = bestofn_curve(samples, CURVE_NS, ROUNDS, SEED)
    tables["settings"] = _settings_table(REFERENCE_DPO, REFERENCE_GRPO, dpo_log, grpo_log)
    return save_tables(tables, out_dir / CACHE_FILE)


def _single_threaded(fn: Callable, *args):
    """``fn(*args)`` with one BLAS thread (``runtime.single_threaded_blas``)."""
    with single_threaded_blas():
        return fn(*args)


def load_beyond_cache(directory: str | Path = CHECKPOINT_DIR) -> dict[str, pd.DataFrame]:
    """The tables of ``beyond.npz`` (written by :func:`build_beyond_cache`)."""
    path = committed_file(directory, CACHE_FILE)
    return load_tables(path)
