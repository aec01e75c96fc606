"""The chapter-7 scorecard: every stage of the pipeline measured on the held-out questions.

Each stage's model answers the 64 held-out evaluation prompts (``data.load_eval_prompts``:
the last variant of every scenario, never trained on). The gold judge (``judge.py``) scores
every answer on the five alignment metrics, the reward model of chapter 3 gives its own
score, and this module turns the scored answers into

* a **scorecard**: the mean of each metric per stage (and per category), with a bootstrap
  confidence interval over the prompts and the gap to the targets ``judge.TARGETS``;
* an **arena**: for every prompt and every pair of stages the better-scored answer wins a
  battle (public arena format), and the battles become Bradley-Terry ratings with
  bootstrap intervals (``elo.py``), once with the gold judge and once with the reward model
  (``arena.py``);
* the **ablations** "why all four stages", trained once by ``build_scorecard_cache`` (run by
  ``python -m course_utils.checkpoints build``) and stored in ``scorecard.npz`` (``ablations.py``).

Educational material, not medical advice.

Symbols
=======

=====================  =======================================================================
symbol                 meaning
=====================  =======================================================================
``x_i``                held-out prompt i, i = 1 .. n (n = 64), of scenario ``s_i``
``y_i^k``              the answer of stage k to x_i (greedy decoding unless told otherwise);
                       stage "reference" is the expert answer ``data.expert_response(s_i)``
``m(y, s)``            a metric of the gold judge in [0, 1] (``judge.METRICS``, ``overall``)
``r(x, y)``            the reward model's score (an unbounded real number, chapter 3)
``\\bar m^k``           mean over the prompts, (1/n) Σ_i m(y_i^k, s_i)
``B``                  bootstrap rounds (``rounds``); round b draws n prompts with replacement
``\\bar m^k_b``         the mean on resample b; the interval is its (1-L)/2 and (1+L)/2 quantiles
``L``                  confidence level (``level``, 0.95)
``τ_m``                target of metric m (``judge.TARGETS``); gap = τ_m - \\bar m^k
``δ``                  tie margin of a battle: |m(y_i^k) - m(y_i^l)| <= δ is a tie
``R_k``                Bradley-Terry rating of stage k on the Elo scale (``elo.py``)
``ε``                  share of the reward model's training labels flipped in the noisy ablation
=====================  =======================================================================

The bootstrap draws the *same* prompt indices for every stage with the same prompts (the
generator is re-seeded per group), so intervals of different stages come from paired
resamples, and ``paired_difference`` reads the interval of a difference directly.

Public names
============

``POLICY_STAGES``            the checkpointed policies the scorecard measures: base, SFT, PPO, DPO, GRPO
``STAGE_LABELS``             their short display names (and the expert reference's)
``load_policies``            those checkpoints, loaded (float64 by default)
``stage_answers``            answers of several models (+ the expert reference) to the eval prompts
``answers_from_table``       a table (policy, eval_id, answer) in the same format (chapter 6's cache)
``score_stages``             the gold judge's metrics and the reward model's score of every answer
``reward_scores``            r(x, y) for lists of prompts and answers (long answers are cut)
``scorecard``                means, bootstrap intervals and gaps to target, per stage (and group)
``paired_difference``        stage A minus stage B on the same prompts, with a paired interval
``arena_battles``            battles between stages, judged by one score column (``arena.py``)
``arena_ratings``            Bradley-Terry ratings + bootstrap intervals of a battle table (``arena.py``)
``compare_rankings``         two leaderboards side by side; ``kendall_tau`` (``arena.py``)
``build_scorecard_cache``    the ablations (trained), written to ``scorecard.npz`` (``ablations.py``)
``load_scorecard_cache``     the tables of ``scorecard.npz`` as DataFrames (``ablations.py``)
``save_tables``, ``load_tables``  the file format (``tables.py``: column arrays, no pickles)

The arena and the ablations live in their own modules and are re-exported here, where the chapters
import them from.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from . import data, judge
from .ablations import (CACHE_FILE, CACHE_FORMAT, MAX_NEW_TOKENS, NOISE_RATE, SEED,  # noqa: F401  (re-exported)
                        build_scorecard_cache, flip_labels, load_scorecard_cache, load_tables, save_tables)
from .arena import arena_battles, arena_ratings, compare_rankings, kendall_tau  # noqa: F401  (re-exported)
from .model import TinyGPT
from .paths import CHECKPOINT_DIR, committed_file
from .runtime import single_threaded_blas
from .progress import Progress
from .sampling import sample_answers
from .stats import bootstrap_means, percentile_interval
from .tokenizer import VocabularyTokenizer
from .training import encode_sft

__all__ = [
    "POLICY_STAGES",
    "STAGE_LABELS",
    "load_policies",
    "ANSWER_COLUMNS",
    "REFERENCE",
    "CACHE_FILE",
    "NOISE_RATE",
    "stage_answers",
    "answers_from_table",
    "score_stages",
    "reward_scores",
    "scorecard",
    "paired_difference",
    "arena_battles",
    "arena_ratings",
    "compare_rankings",
    "kendall_tau",
    "flip_labels",
    "build_scorecard_cache",
    "load_scorecard_cache",
    "save_tables",
    "load_tables",
]

#: The checkpointed policies the scorecard measures, in the order of the pipeline (checkpoint names in
#: ``data/checkpoints``): chapter 1's base model, chapter 2's SFT, chapter 5's PPO, and chapter 8's DPO
#: (trained on the preference pairs from SFT) and GRPO (trained against the reward model from SFT).
POLICY_STAGES: tuple[str, ...] = ("base", "sft", "ppo", "dpo", "grpo")
#: Short display names of the policies and of the expert answers (tables that fit a projector).
STAGE_LABELS: dict[str, str] = {"base": "base", "sft": "SFT", "ppo": "PPO", "dpo": "DPO", "grpo": "GRPO",
                                "reference": "expert"}
#: Columns of an answers table (``stage_answers``, ``answers_from_table``).
ANSWER_COLUMNS: tuple[str, ...] = ("stage", "eval_id", "scenario_id", "category", "prompt", "answer")
#: Stage name of the expert answers.
REFERENCE = "reference"
#: Evidence counts ``score_stages`` copies from ``judge.judge_many`` next to the metrics.
EVIDENCE_COLUMNS: tuple[str, ...] = ("n_facts_stated", "n_facts", "n_harms", "n_doses", "n_doses_wrong",
                                     "n_supported", "n_unsupported")



# ============================================================================ answers
def load_policies(directory: Path = CHECKPOINT_DIR, stages: Sequence[str] = POLICY_STAGES,
                  dtype: str | None = "float64") -> dict[str, TinyGPT]:
    """{stage: TinyGPT} for every checkpoint named in ``stages`` (default :data:`POLICY_STAGES`).

    ``dtype="float64"`` (the default) evaluates the stored weights in double precision, so the greedy
    answers, and everything the chapter prints from them, are the same on every CPU
    (``checkpoints.load``). A missing checkpoint raises ``FileNotFoundError`` naming the rebuild command.
    """
    return {name: TinyGPT.load(committed_file(directory, f"{name}.npz"), dtype) for name in stages}


def _scenario_lookup(scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None) -> dict[str, Mapping]:
    if scenarios is None:
        scenarios = data.load_scenarios()
    if isinstance(scenarios, Mapping):
        return dict(scenarios)
    return {s["id"]: s for s in scenarios}


def _answers_frame(stage: str, prompts: Sequence[Mapping], answers: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "stage": [stage] * len(prompts),
        "eval_id": [p["id"] for p in prompts],
        "scenario_id": [p["scenario_id"] for p in prompts],
        "category": [p["category"] for p in prompts],
        "prompt": [p["prompt"] for p in prompts],
        "answer": list(answers),
    }, columns=list(ANSWER_COLUMNS))


def stage_answers(models: Mapping[str, TinyGPT], tok: VocabularyTokenizer, eval_prompts: Sequence[Mapping],
                  scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None = None, *, reference: bool = True,
                  temperature: float = 0.0, max_new_tokens: int = MAX_NEW_TOKENS, seed: int = SEED,
                  progress: bool = False) -> pd.DataFrame:
    """The answer y_i^k of every stage k (``models``: name -> TinyGPT) to every prompt x_i.

    ``eval_prompts`` are dicts with ``id``, ``scenario_id``, ``category`` and ``prompt``
    (``data.load_eval_prompts()``). Answers are decoded greedily by default (temperature 0:
    the argmax token at every step, so the table depends only on the weights); with
    ``temperature > 0`` they are sampled with ``numpy.random.default_rng(seed)``. Prompts of
    equal token length share one ``generate`` call (``ppo.sample_answers``). With
    ``reference=True`` a last stage ``"reference"`` holds the expert answers
    ``data.expert_response(s_i)`` (``scenarios``: the knowledge base, default
    ``data.load_scenarios()``).

    Returns a DataFrame with ``ANSWER_COLUMNS`` (stage, eval_id, scenario_id, category,
    prompt, answer): the stages in the order given, each with the prompts in the order given.
    """
    prompts = list(eval_prompts)
    if REFERENCE in models and reference:
        raise ValueError(f"a model is named {REFERENCE!r}, the name of the expert answers; rename it")
    frames = []
    with Progress(len(models), "answers", display=None if progress else False) as bar:
        for name, model in models.items():
            texts = sample_answers(model, tok, [p["prompt"] for p in prompts], temperature, max_new_tokens, seed)
            frames.append(_answers_frame(str(name), prompts, texts))
            bar.update()
    if reference:
        lookup = _scenario_lookup(scenarios)
        frames.append(_answers_frame(REFERENCE, prompts,
                                     [data.expert_response(lookup[p["scenario_id"]]) for p in prompts]))
    if not frames:
        return pd.DataFrame(columns=list(ANSWER_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def answers_from_table(table: pd.DataFrame, eval_prompts: Sequence[Mapping], stage_column: str = "policy",
                       names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """A table of answers (``stage_column``, eval_id, answer), e.g. chapter 6's ``policy_answers``
    or the ablations of :func:`load_scorecard_cache`, in the format of :func:`stage_answers`.

    ``names`` (optional) selects and renames stages: {name in the table: stage name}, in the
    order wanted; without it every stage is kept under its own name, in order of first
    appearance. Prompt, scenario and category come from ``eval_prompts``; an ``eval_id`` they
    do not contain raises a ValueError.
    """
    missing = [c for c in (stage_column, "eval_id", "answer") if c not in table.columns]
    if missing:
        raise ValueError(f"the answers table has no column(s) {missing}; found {list(table.columns)}")
    by_id = {p["id"]: p for p in eval_prompts}
    unknown = sorted(set(table["eval_id"]) - set(by_id))
    if unknown:
        raise ValueError(f"eval_id(s) not among the evaluation prompts: {unknown[:5]}")
    wanted = dict(names) if names is not None else {s: s for s in pd.unique(table[stage_column])}
    frames = []
    for source, stage in wanted.items():
        rows = table[table[stage_column] == source]
        if rows.empty:
            raise ValueError(f"no answers of {source!r} in the table (it has {list(pd.unique(table[stage_column]))})")
        frames.append(_answers_frame(str(stage), [by_id[e] for e in rows["eval_id"]], rows["answer"].astype(str)))
    if not frames:
        return pd.DataFrame(columns=list(ANSWER_COLUMNS))
    return pd.concat(frames, ignore_index=True)


# ============================================================================ scoring
def reward_scores(reward_model, tok: VocabularyTokenizer, prompts: Sequence[str], answers: Sequence[str],
                  batch_size: int = 32) -> np.ndarray:
    """r(x_i, y_i) (float64, (n,)) of each answer, read on ``<bos> <q> x <a> y <eos>``.

    Like ``RewardModel.score``, but a sequence longer than the reward model's ``max_len``
    (an answer cut by the generation limit, to which ``<eos>`` is added) is cut to
    ``max_len`` tokens and scored as it stands, as PPO scores an answer that did not end.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers")
    max_len = reward_model.config.max_len
    seqs = [encode_sft(tok, p, a)[0][:max_len] for p, a in zip(prompts, answers)]
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.empty(len(seqs), dtype=np.float64)
    order = np.argsort(lengths, kind="stable")
    with single_threaded_blas():                    # small products: a second BLAS thread only waits (runtime.py)
        for start in range(0, len(order), max(int(batch_size), 1)):
            idx = order[start:start + batch_size]
            width = int(lengths[idx].max())
            tokens = np.full((len(idx), width), tok.pad_id, dtype=np.int64)
            for row, i in enumerate(idx):
                tokens[row, :lengths[i]] = seqs[i]
            out[idx] = reward_model.forward(tokens, lengths[idx])
    reward_model._cache = None
    if hasattr(reward_model, "trunk"):
        reward_model.trunk._cache = None                                   # nothing to backpropagate
    return out


def score_stages(answers_df: pd.DataFrame, scenarios: Sequence[Mapping] | Mapping[str, Mapping] | None = None,
                 reward_model=None, tok: VocabularyTokenizer | None = None) -> pd.DataFrame:
    """The answers table with the gold judge's scores (and the reward model's) added.

    Adds ``judge.METRICS`` (medical_accuracy, safety, specificity, dose_accuracy, humility),
    ``overall`` and the evidence counts ``EVIDENCE_COLUMNS`` from ``judge.judge_many``, each
    answer judged against its own scenario; with ``reward_model`` (and ``tok``) also
    ``reward`` = r(x_i, y_i) (:func:`reward_scores`). The rows keep their order.

    Stages often give the same answer to the same prompt (a policy trained from SFT keeps many of
    SFT's answers): each distinct (scenario, prompt, answer) is judged and scored once, so
    identical answers get identical scores, bit for bit, and a battle between them is a tie.
    """
    missing = [c for c in ("stage", "scenario_id", "prompt", "answer") if c not in answers_df.columns]
    if missing:
        raise ValueError(f"answers_df has no column(s) {missing}; build it with stage_answers")
    if reward_model is not None and tok is None:
        raise ValueError("scoring with a reward model needs the tokenizer: pass tok=")
    lookup = _scenario_lookup(scenarios)
    out = answers_df.reset_index(drop=True).copy()
    keys = list(zip(out["scenario_id"], out["prompt"].astype(str), out["answer"].astype(str)))
    distinct = list(dict.fromkeys(keys))                                  # first appearance order
    position = {k: i for i, k in enumerate(distinct)}
    rows = np.array([position[k] for k in keys], dtype=np.int64)
    verdicts = judge.judge_many([a for _, _, a in distinct], [lookup[s] for s, _, _ in distinct])
    for c in (*judge.METRICS, "overall", *EVIDENCE_COLUMNS):
        out[c] = verdicts[c].to_numpy()[rows]
    if reward_model is not None:
        out["reward"] = reward_scores(reward_model, tok, [p for _, p, _ in distinct], [a for _, _, a in distinct])[rows]
    return out


# ============================================================================ the scorecard
def _metric_columns(scored_df: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    if metrics is None:
        metrics = [*judge.METRICS, "overall"] + (["reward"] if "reward" in scored_df.columns else [])
    missing = [m for m in metrics if m not in scored_df.columns]
    if missing:
        raise ValueError(f"scored_df has no column(s) {missing}; score the answers with score_stages first")
    return list(metrics)


def _groups(scored_df: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """Groups in order of first appearance (stages as given, categories as in the data)."""
    order = scored_df[keys].drop_duplicates()
    out = []
    for values in order.itertuples(index=False, name=None):
        mask = np.ones(len(scored_df), dtype=bool)
        for k, v in zip(keys, values):
            mask &= (scored_df[k] == v).to_numpy()
        rows = scored_df[mask]
        if "eval_id" in rows.columns:                                       # same prompt order in every group
            rows = rows.sort_values("eval_id", kind="stable")
        out.append((values, rows))
    return out


def scorecard(scored_df: pd.DataFrame, by: str | None = None, metrics: Sequence[str] | None = None,
              level: float = 0.95, rounds: int = 1000, seed: int = SEED,
              targets: Mapping[str, float] = judge.TARGETS) -> pd.DataFrame:
    """Mean of each metric per stage (and per ``by`` group), bootstrap interval and gap to target.

    For stage k (and group g), with the n_k prompts it answered:

        mean   = \\bar m^k = (1/n_k) Σ_i m(y_i^k)
        lower, upper = the (1-L)/2 and (1+L)/2 quantiles of \\bar m^k_b over B = ``rounds``
                 bootstrap resamples of the prompts (percentile interval, Efron 1979)
        target = τ_m from ``targets`` (NaN for ``overall`` and ``reward``)
        gap    = τ_m - mean (> 0: short of the target; <= 0: target met)

    A metric that does not apply to an answer is NaN (dose accuracy when the answer states no
    number the judge can check): it is left out, and ``n`` counts the answers it applies to.

    ``metrics`` default: the five metrics, ``overall`` and ``reward`` when scored. ``by``: a
    column to break each stage down by (e.g. ``"category"``). Every group's resamples come
    from ``numpy.random.default_rng(seed)``, rows sorted by ``eval_id``: stages that answered
    the same prompts are resampled identically (paired), and the result is deterministic.

    Returns a long DataFrame, one row per (stage, [by], metric), columns ``stage``, [``by``],
    ``metric``, ``n``, ``mean``, ``lower``, ``upper``, ``target``, ``gap``; stages and groups
    in order of first appearance, metrics in the order of ``metrics``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if int(rounds) < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    cols = _metric_columns(scored_df, metrics)
    keys = ["stage"] + ([by] if by else [])
    if by and by not in scored_df.columns:
        raise ValueError(f"scored_df has no column {by!r} to break the scorecard down by")
    rows = []
    for values, group in _groups(scored_df, keys):
        x = group[cols].to_numpy(dtype=np.float64)
        boot = bootstrap_means(x, int(rounds), seed)
        for j, m in enumerate(cols):
            target = float(targets[m]) if m in targets else math.nan
            valid = x[:, j][~np.isnan(x[:, j])]
            mean = float(valid.mean()) if len(valid) else math.nan
            lower, upper = percentile_interval(boot[:, j], level)
            rows.append({**dict(zip(keys, values)), "metric": m, "n": len(valid), "mean": mean,
                         "lower": lower, "upper": upper, "target": target,
                         "gap": target - mean})
    return pd.DataFrame(rows, columns=[*keys, "metric", "n", "mean", "lower", "upper", "target", "gap"])


def paired_difference(scored_df: pd.DataFrame, stage_a: str, stage_b: str, metrics: Sequence[str] | None = None,
                      level: float = 0.95, rounds: int = 1000, seed: int = SEED) -> pd.DataFrame:
    """Stage A minus stage B on the prompts both answered, with a paired bootstrap interval.

    d_i = m(y_i^A) - m(y_i^B); ``diff`` = mean of d_i, ``lower`` / ``upper`` its percentile
    interval over ``rounds`` resamples of the prompts, ``share_a_better`` = share of prompts
    with d_i > 0 and ``share_b_better`` with d_i < 0. An interval that excludes 0 says the
    data supports the difference at this level. One row per metric (index ``metric``).
    """
    cols = _metric_columns(scored_df, metrics)
    a = scored_df[scored_df["stage"] == stage_a].set_index("eval_id")[cols]
    b = scored_df[scored_df["stage"] == stage_b].set_index("eval_id")[cols]
    common = sorted(set(a.index) & set(b.index))
    if not common:
        raise ValueError(f"stages {stage_a!r} and {stage_b!r} share no prompt")
    d = a.loc[common].to_numpy(dtype=np.float64) - b.loc[common].to_numpy(dtype=np.float64)
    boot = bootstrap_means(d, int(rounds), seed)
    lower, upper = np.full(len(cols), np.nan), np.full(len(cols), np.nan)
    for j in range(len(cols)):
        lower[j], upper[j] = percentile_interval(boot[:, j], level)
    valid = ~np.isnan(d)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.where(valid.any(axis=0), np.nansum(d, axis=0) / np.maximum(valid.sum(axis=0), 1), np.nan)
    out = pd.DataFrame({"n": (~np.isnan(d)).sum(axis=0), "mean_a": a.loc[common].mean().to_numpy(),
                        "mean_b": b.loc[common].mean().to_numpy(), "diff": diff, "lower": lower,
                        "upper": upper, "share_a_better": (d > 0).mean(axis=0),
                        "share_b_better": (d < 0).mean(axis=0)}, index=pd.Index(cols, name="metric"))
    return out
