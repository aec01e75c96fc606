"""Challenge 1, reward hacking: PPO over-optimises the learned reward; three mitigations.

:func:`reward_hacking_experiment` runs PPO on the reward model at several β (and on an
ensemble of reward models), judges every kept checkpoint on held-out prompts with the gold
judge, fits the Gao et al. (2022) curve and measures the effectiveness of a strong KL
penalty, early stopping on validation prompts, and the ensemble. The runs and their
evaluations travel together in :class:`HackingRuns`; each table is one function of it.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from .. import data
from ..judge import METRICS
from ..model import TinyGPT
from ..ppo import PPOConfig
from ..stats import TAILS_95, bootstrap_indices, percentile_interval
from ..tokenizer import VocabularyTokenizer
from .common import (EnsembleReward, PPORun, _greedy, _judge, _preference_pairs, _trained_reward_model, effectiveness,
                     evaluate_policy, fit_gao, gao_curve, gao_peak, run_ppo_checkpointed)

#: The mitigations of reward hacking, as named in ``hacking_mitigations`` (the rows with an effectiveness).
HACKING_MITIGATIONS: tuple[str, ...] = ("strong KL", "early stopping", "reward-model ensemble")


@dataclass
class HackingSettings:
    """Every knob of :func:`reward_hacking_experiment` (defaults: the chapter's cached run).

    PPO runs at each β of ``betas`` for ``iterations`` iterations from the SFT policy (the
    hacked run, the smallest β, goes on to ``hacked_iterations`` to show where over-optimisation
    leads; every comparison with a mitigation uses it at ``iterations``, like for like), all
    with the chapter-5 defaults except a learning rate ``lr`` four times chapter 5's (so that
    over-optimisation shows within the time budget), ``batch_size`` answers per iteration
    as ``samples_per_prompt`` answers to each of several prompts (four prompts of four
    answers made the held-out proxy rise more steadily than two of eight), and PPO's own
    judge switched off (the gold judge is applied here, on held-out prompts). The smallest β is the *hacked* run; it
    is evaluated at ``checkpoints``, the others at ``coarse_checkpoints`` (the ensemble run at
    ``ensemble_checkpoints``: its end is what the comparison needs). A ``n_val``-prompt
    validation subset of the RL prompts is kept out of PPO's training prompts and judged at
    every checkpoint of the hacked run, for early stopping with ``patience``. The ensemble
    run optimises the ``ensemble_reduce`` of ``ensemble_size`` reward models, each trained on
    a random ``ensemble_fraction`` of the training pairs (the first ``n_pairs``, None = all)
    with its own seed, at the smallest β.
    Evaluation: ``eval_samples`` answers per held-out prompt (``n_eval`` prompts, None = all)
    at temperature 1 with one fixed seed; effectiveness intervals from ``n_bootstrap``
    resamples of the prompts.
    """

    betas: tuple[float, ...] = (0.002, 0.2)                          # β of each PPO run; the smallest is hacked
    iterations: int = 45                                             # PPO iterations of each run
    hacked_iterations: int = 80                                      # the hacked run goes on to here (>= iterations)
    lr: float = 3e-4                                                 # PPO learning rate
    checkpoints: tuple[int, ...] = (0, 5, 10, 15, 20, 30, 40, 45, 50, 60, 70, 80)   # where the hacked run is evaluated
    coarse_checkpoints: tuple[int, ...] = (0, 15, 30, 45)            # where the other runs are
    ensemble_checkpoints: tuple[int, ...] = (0, 45)                  # where the ensemble run is
    batch_size: int = 16                                             # answers per iteration
    samples_per_prompt: int = 4                                      # answers to each prompt of a batch
    max_new_tokens: int = 112                                        # longest answer
    eval_samples: int = 2                                            # answers per held-out prompt
    n_eval: int | None = None                                        # held-out prompts evaluated (None = all)
    n_val: int = 24                                                  # RL prompts kept out for early stopping
    val_samples: int = 2                                             # answers per validation prompt
    patience: int = 2                                                # checkpoints without a gain before stopping
    ensemble_size: int = 3                                           # reward models in the ensemble
    ensemble_fraction: float = 0.8                                   # share of the pairs each member sees
    ensemble_reduce: str = "mean"                                    # how the members' rewards combine
    ensemble_epochs: int = 2                                         # training passes of each member
    n_pairs: int | None = None                                       # the first n training pairs (None = all)
    n_examples: int = 64                                             # held-out answers kept as examples
    n_bootstrap: int = 1000                                          # resamples of the prompts per interval
    seed: int = 0                                                    # every run, sample and resample


def hacking_ppo_config(cfg: HackingSettings, beta: float, iterations: int | None = None):
    """The ``ppo.PPOConfig`` of a reward-hacking run at β (``iterations`` overrides the settings')."""
    return PPOConfig(iterations=int(iterations if iterations is not None else cfg.iterations), kl_coef=float(beta),
                     lr=float(cfg.lr), batch_size=cfg.batch_size, samples_per_prompt=cfg.samples_per_prompt,
                     minibatch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens, judge_every=0, seed=cfg.seed)


def split_rl_prompts(n_val: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(PPO training prompts, validation prompts): ``n_val`` RL prompts held out for early stopping."""
    items = data.load_rl_prompts()
    order = np.random.default_rng(seed).permutation(len(items))
    val = {int(i) for i in order[:n_val]}
    return [items[i] for i in range(len(items)) if i not in val], [items[i] for i in sorted(val)]


def _train_members(tok, sft, pairs, cfg: HackingSettings, progress: bool):
    """``ensemble_size`` reward models, member k: seed k + 1, a random share of the pairs."""
    members = []
    for k in range(cfg.ensemble_size):
        rng = np.random.default_rng(cfg.seed + 1000 + k)
        n = max(2, int(round(cfg.ensemble_fraction * len(pairs))))
        subset = [pairs[i] for i in np.sort(rng.choice(len(pairs), n, replace=False))]
        members.append(_trained_reward_model(sft, tok, subset, cfg.seed + k + 1, progress, epochs=cfg.ensemble_epochs,
                                             desc=f"ensemble member {k + 1}"))
    return members


def _early_stop(iterations: Sequence[int], val_gold: Sequence[float], patience: int) -> tuple[int, int]:
    """Early stopping on the validation gold score, checkpoint by checkpoint.

    Walk the checkpoints in order, remember the best validation score so far, and stop once
    ``patience`` checkpoints in a row have not improved on it. Returns (the iteration whose
    weights are kept, the iteration at which training stopped).
    """
    best_i, best, since = 0, -math.inf, 0
    for k, (it, g) in enumerate(zip(iterations, val_gold)):
        if g > best:
            best, best_i, since = g, k, 0
        else:
            since += 1
            if since >= patience:
                return int(iterations[best_i]), int(it)
    return int(iterations[best_i]), int(iterations[-1])


def _word_shift(before: Sequence[str], after: Sequence[str], top: int = 15) -> pd.DataFrame:
    """The words the hacked policy uses far more often than the SFT policy (what the proxy likes).

    Counts every lower-case word in each set of answers; ``ratio`` = (rate after + 1e-3) /
    (rate before + 1e-3) with rates per 1,000 words, sorted by the increase in rate.
    """
    def counts(texts):
        c = Counter(w for t in texts for w in re.findall(r"[a-z][a-z0-9\-]*", t.lower()))
        return c, max(sum(c.values()), 1)

    cb, nb = counts(before)
    ca, na = counts(after)
    rows = []
    for w in set(ca) | set(cb):
        rb, ra = 1000 * cb[w] / nb, 1000 * ca[w] / na
        rows.append({"word": w, "per_1000_sft": rb, "per_1000_hacked": ra, "increase": ra - rb})
    df = pd.DataFrame(rows, columns=["word", "per_1000_sft", "per_1000_hacked", "increase"])
    df = df.sort_values(["increase", "word"], ascending=[False, True]).head(top).reset_index(drop=True)
    return df


# ============================================================================ the runs
@dataclass(frozen=True)
class _RunSpec:
    """One PPO run of the experiment: its name, β, what it optimises and the iterations judged."""

    name: str
    beta: float
    optimised: str
    checkpoints: list[int]
    ensemble: bool = False           # optimises the ensemble instead of the reward model

    @property
    def iterations(self) -> int:
        """The run's planned length: its last checkpoint."""
        return self.checkpoints[-1]


def _checkpoint_grid(checkpoints: Sequence[int], iterations: int) -> list[int]:
    """The checkpoints within the run, with its first (0) and last iteration."""
    return sorted({c for c in checkpoints if c <= iterations} | {0, iterations})


def _run_specs(cfg: HackingSettings, n_members: int) -> list[_RunSpec]:
    """One run per β (the smallest, the hacked run, judged at the fine checkpoints), then the ensemble run."""
    betas = sorted(float(b) for b in cfg.betas)
    fine = sorted(set(_checkpoint_grid(cfg.checkpoints, cfg.hacked_iterations)) | {cfg.iterations})
    coarse = _checkpoint_grid(cfg.coarse_checkpoints, cfg.iterations)
    specs = [_RunSpec(f"β={b:g}", b, "reward model", fine if b == betas[0] else coarse) for b in betas]
    specs.append(_RunSpec(f"ensemble β={betas[0]:g}", betas[0], f"ensemble ({cfg.ensemble_reduce} of {n_members})",
                         _checkpoint_grid(cfg.ensemble_checkpoints, cfg.iterations), ensemble=True))
    return specs


@dataclass
class HackingRuns:
    """Everything the runs of :func:`reward_hacking_experiment` produced; every table is read from it.

    ``specs[0]`` is the hacked run (smallest β), ``specs[-2]`` the strong-KL run (largest β),
    ``specs[-1]`` the ensemble run. ``per_answer[(run, iteration)]``: the evaluation of that
    checkpoint on the held-out prompts (:func:`evaluate_policy`, one row per answer; iteration 0
    of every run is ``sft_eval``); ``val_gold[iteration]``: the hacked run's mean gold score on
    the validation prompts.
    """

    settings: HackingSettings
    tok: VocabularyTokenizer
    sft: TinyGPT
    rm: object
    ensemble: EnsembleReward
    scenarios: dict[str, dict]
    eval_items: list[dict]
    train_items: list[dict]
    val_items: list[dict]
    specs: list[_RunSpec]
    runs: dict[str, PPORun] = field(default_factory=dict)
    per_answer: dict[tuple[str, int], pd.DataFrame] = field(default_factory=dict)
    val_gold: dict[int, float] = field(default_factory=dict)
    sft_eval: pd.DataFrame | None = None

    @property
    def hacked(self) -> str:
        return self.specs[0].name

    @property
    def strong(self) -> str:
        return self.specs[-2].name

    @property
    def ensemble_run(self) -> str:
        return self.specs[-1].name

    @property
    def proxies(self) -> dict[str, object]:
        return {"proxy": self.rm, "ensemble": self.ensemble}

    def evaluate(self, policy: TinyGPT, items, samples: int, seed: int, proxies) -> pd.DataFrame:
        with np.errstate(over="ignore", invalid="ignore"):
            return evaluate_policy(policy, self.sft, self.tok, items, self.scenarios, proxies, samples,
                                   self.settings.max_new_tokens, seed=seed)

    def item_gold(self, run: str, iteration: int) -> np.ndarray:
        """The mean gold score of each held-out prompt at one checkpoint."""
        return self.per_answer[(run, iteration)].groupby("item")["overall"].mean().to_numpy()

    def stop_note(self, run: str) -> str:
        last = self.runs[run].last
        if last >= next(spec.iterations for spec in self.specs if spec.name == run):
            return ""
        return f"; the run stopped at iteration {last} (KL above PPO's max_kl)"

    def extras(self) -> dict:
        """What :func:`distribution_shift_experiment` reuses (``return_runs=True``)."""
        return {"runs": self.runs, "per_answer": self.per_answer, "hacked_run": self.hacked,
                "eval_items": self.eval_items, "train_items": self.train_items, "scenarios": self.scenarios,
                "iterations": self.settings.iterations}


def _hacking_setup(tok: VocabularyTokenizer, sft: TinyGPT, rm, cfg: HackingSettings, progress: bool) -> HackingRuns:
    """The prompts (held-out evaluation, PPO training, validation) and the calibrated ensemble."""
    scenarios = {x["id"]: x for x in data.load_scenarios()}
    eval_items = data.load_eval_prompts()
    if cfg.n_eval is not None:
        eval_items = eval_items[:cfg.n_eval]
    train_items, val_items = split_rl_prompts(cfg.n_val, cfg.seed)
    _, pairs, _ = _preference_pairs(cfg.n_pairs)
    members = _train_members(tok, sft, pairs, cfg, progress)
    ensemble = EnsembleReward(members, cfg.ensemble_reduce).calibrate(
        tok, [p["prompt"] for p in pairs] * 2, [p["chosen"] for p in pairs] + [p["rejected"] for p in pairs])
    return HackingRuns(cfg, tok, sft, rm, ensemble, scenarios, eval_items, train_items, val_items,
                       _run_specs(cfg, len(members)))


def _run_and_evaluate(h: HackingRuns, progress: bool) -> None:
    """PPO for every run; each kept checkpoint judged on the held-out prompts (the hacked run's also
    on the validation prompts). Fills ``runs``, ``per_answer``, ``val_gold`` and ``sft_eval``."""
    cfg, sft = h.settings, h.sft
    h.sft_eval = h.evaluate(sft, h.eval_items, cfg.eval_samples, cfg.seed + 7, h.proxies)
    for spec in h.specs:
        hacked = spec.name == h.hacked
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            run = run_ppo_checkpointed(sft, h.ensemble if spec.ensemble else h.rm, h.tok, h.train_items,
                                       hacking_ppo_config(cfg, spec.beta, spec.iterations), spec.checkpoints,
                                       record_rollouts=hacked,
                                       progress=progress, name=f"PPO {spec.name}")
        h.runs[spec.name] = run
        proxies = h.proxies if spec.ensemble else {"proxy": h.rm}
        for it in sorted(run.snapshots):
            policy = sft if it == 0 else run.policy(it, sft)
            h.per_answer[(spec.name, it)] = (h.sft_eval if it == 0 else
                                             h.evaluate(policy, h.eval_items, cfg.eval_samples, cfg.seed + 7, proxies))
            if hacked:
                h.val_gold[it] = float(h.evaluate(policy, h.val_items, cfg.val_samples, cfg.seed + 11,
                                                  {"proxy": h.rm})["overall"].mean())


# ============================================================================ the tables
def _curve_row(h: HackingRuns, spec: _RunSpec, it: int) -> dict:
    t = h.per_answer[(spec.name, it)]
    kl = float(t["kl"].mean())
    g_items = t.groupby("item")["overall"].mean()
    row = {"run": spec.name, "beta": spec.beta, "optimised": spec.optimised, "iteration": it, "kl": kl,
           "d": math.sqrt(max(kl, 0.0)), "proxy": float(t["score:proxy"].mean()),
           "ensemble_score": float(t["score:ensemble"].mean()) if "score:ensemble" in t else math.nan,
           "gold": float(t["overall"].mean()),
           "gold_se": float(g_items.std(ddof=1) / math.sqrt(len(g_items))) if len(g_items) > 1 else math.nan,
           "proxy_sd": float(t["score:proxy"].std(ddof=1)) if len(t) > 1 else math.nan,
           "gold_sd": float(t["overall"].std(ddof=1)) if len(t) > 1 else math.nan}
    row.update({m: float(t[m].mean()) for m in METRICS})
    row.update(length=float(t["length"].mean()), ended=float(t["ended"].mean()),
               repetition=float(t["repetition"].mean()),
               val_gold=h.val_gold.get(it, math.nan) if spec.name == h.hacked else math.nan)
    return row


def _curves_table(h: HackingRuns) -> pd.DataFrame:
    """``hacking_curves``: one row per run and checkpoint."""
    return pd.DataFrame([_curve_row(h, spec, it) for spec in h.specs for it in sorted(h.runs[spec.name].snapshots)])


def _training_table(h: HackingRuns) -> pd.DataFrame:
    """``hacking_training``: PPO's own diagnostics per iteration (the proxy on the training prompts)."""
    training = pd.concat([h.runs[spec.name].diagnostics[["iteration", "score", "kl", "length"]]
                          .assign(run=spec.name, beta=spec.beta) for spec in h.specs], ignore_index=True)
    return training[["run", "beta", "iteration", "score", "kl", "length"]]


def _gao_row(run: str, c: pd.DataFrame, target: str, base: float) -> dict:
    try:
        a, b = fit_gao(c["d"], c[target] - base)
    except ValueError:
        a, b = math.nan, math.nan
    d_star, r_star = gao_peak(a, b) if np.isfinite(b) else (math.nan, math.nan)
    pred = gao_curve(c["d"], a, b) + base
    return {"run": run, "target": target, "a": a, "b": b, "d_peak": d_star, "peak_gain": r_star, "baseline": base,
            "rmse": float(np.sqrt(np.mean((pred - c[target]) ** 2))), "n_points": int(len(c)),
            "d_max": float(c["d"].max())}


def _gao_table(h: HackingRuns, curves: pd.DataFrame) -> pd.DataFrame:
    """``gao_fit``: the Gao fit of the gold and the proxy gain over the SFT policy, per run."""
    g_sft, p_sft = float(h.sft_eval["overall"].mean()), float(h.sft_eval["score:proxy"].mean())
    return pd.DataFrame([_gao_row(spec.name, c, target, base) for spec in h.specs
                         for c in [curves[curves.run == spec.name]]
                         for target, base in (("gold", g_sft), ("proxy", p_sft))])


@dataclass
class _HackedReference:
    """The hacked run's gold scores every effectiveness is measured against, and early stopping's choice.

    ``gold[k, i]``: mean gold score of held-out prompt i at checkpoint ``iterations[k]``;
    ``boot_best`` / ``boot_hacked``: g_best (the best checkpoint, re-chosen in every resample) and
    g_hacked (the last) in each bootstrap resample ``idx`` of the prompts.
    """

    iterations: list[int]
    gold: np.ndarray
    best_k: int
    g_best: float
    g_hacked: float
    idx: np.ndarray
    boot_best: np.ndarray
    boot_hacked: np.ndarray
    chosen: int                      # early stopping: the iteration whose weights are kept
    stopped: int                     # ... and the iteration at which it stopped


def _hacked_reference(h: HackingRuns) -> _HackedReference:
    cfg = h.settings
    its = [it for it in sorted(h.runs[h.hacked].snapshots) if it <= cfg.iterations]   # like for like with the others
    chosen, stopped = _early_stop(its, [h.val_gold[i] for i in its], cfg.patience)
    G = np.stack([h.item_gold(h.hacked, it) for it in its])          # (checkpoints, prompts)
    best_k = int(np.argmax(G.mean(axis=1)))
    idx = bootstrap_indices(G.shape[1], cfg.n_bootstrap, cfg.seed)
    return _HackedReference(its, G, best_k, float(G[best_k].mean()), float(G[-1].mean()), idx,
                           boot_best=G[:, idx].mean(axis=2).max(axis=0), boot_hacked=G[-1][idx].mean(axis=1),
                           chosen=chosen, stopped=stopped)


def _mitigation_rows(h: HackingRuns, ref: _HackedReference) -> list[dict]:
    """The rows of ``hacking_mitigations`` before scoring: four references, then :data:`HACKING_MITIGATIONS`."""
    hack, strong, ens = h.hacked, h.strong, h.ensemble_run
    beta_hack, beta_strong, last = h.specs[0].beta, h.specs[-2].beta, ref.iterations[-1]
    return [
        {"mitigation": "no skill (answers to other questions)", "run": hack, "iteration": 0,
         "detail": "the SFT policy's answers, each judged against the next prompt's case"},
        {"mitigation": "none (SFT policy)", "run": hack, "iteration": 0, "detail": "before PPO"},
        {"mitigation": "none (best checkpoint)", "run": hack, "iteration": ref.iterations[ref.best_k],
         "detail": "the hacked run at its best evaluation checkpoint"},
        {"mitigation": "none (hacked)", "run": hack, "iteration": last,
         "detail": f"β = {beta_hack:g}, {last} iterations" + h.stop_note(hack)},
        {"mitigation": "strong KL", "run": strong, "iteration": h.runs[strong].last,
         "detail": f"β = {beta_strong:g} instead of {beta_hack:g}" + h.stop_note(strong)},
        {"mitigation": "early stopping", "run": hack, "iteration": ref.chosen,
         "detail": f"validation gold peaked at iteration {ref.chosen}; "
                   f"stopped at {ref.stopped} of {last}"},
        {"mitigation": "reward-model ensemble", "run": ens, "iteration": h.runs[ens].last,
         "detail": f"{h.settings.ensemble_reduce} of {len(h.ensemble.members)} standardised reward models"
                   + h.stop_note(ens)},
    ]


def _score_mitigation(h: HackingRuns, ref: _HackedReference, row: dict) -> None:
    """Add the gold score, KL, proxy, three metrics and (for a mitigation) E with its interval to ``row``."""
    t = h.per_answer[(row["run"], row["iteration"])]
    if row["mitigation"].startswith("no skill"):          # the floor: a fluent answer to another question
        other = [h.eval_items[(i + 1) % len(h.eval_items)]["scenario_id"] for i in t["item"]]
        t = t.copy()
        t["overall"] = _judge(list(t["answer"]), [h.scenarios[x] for x in other])["overall"].to_numpy()
    g_items = t.groupby("item")["overall"].mean().to_numpy()
    row.update(kl=float(t["kl"].mean()), proxy=float(t["score:proxy"].mean()), gold=float(g_items.mean()),
               medical_accuracy=float(t["medical_accuracy"].mean()), specificity=float(t["specificity"].mean()),
               humility=float(t["humility"].mean()))
    if row["mitigation"] in HACKING_MITIGATIONS:
        row["effectiveness"] = effectiveness(row["gold"], ref.g_hacked, ref.g_best)
        lo, hi = percentile_interval(effectiveness(g_items[ref.idx].mean(axis=1), ref.boot_hacked, ref.boot_best),
                                     tails=TAILS_95, finite=True)
        row["ci_low"], row["ci_high"] = lo, hi
    else:
        row["effectiveness"] = row["ci_low"] = row["ci_high"] = math.nan


def _mitigations_table(h: HackingRuns, ref: _HackedReference) -> pd.DataFrame:
    """``hacking_mitigations``: the references and each mitigation's gold score and effectiveness."""
    rows = _mitigation_rows(h, ref)
    for row in rows:
        _score_mitigation(h, ref, row)
    return pd.DataFrame(rows)


def _answer_tables(h: HackingRuns, ref: _HackedReference) -> dict[str, pd.DataFrame]:
    """``hacked_answers``, ``hacked_words`` and ``policy_answers``: what the policies say, greedily."""
    cfg, tok, sft, runs, hack = h.settings, h.tok, h.sft, h.runs, h.hacked
    final_policies = {
        "hacked": runs[hack].policy(ref.iterations[-1], sft),
        "strong_kl": runs[h.strong].policy(runs[h.strong].last, sft),
        "early_stopped": sft if ref.chosen == 0 else runs[hack].policy(ref.chosen, sft),
        "ensemble": runs[h.ensemble_run].policy(runs[h.ensemble_run].last, sft),
    }
    examples = h.eval_items[:cfg.n_examples]
    greedy = {name: _greedy(p, tok, h.eval_items, cfg.max_new_tokens) for name, p in final_policies.items()}
    greedy_sft = _greedy(sft, tok, examples, cfg.max_new_tokens)
    policy_answers = pd.DataFrame([{"policy": name, "eval_id": it["id"], "answer": a}
                                   for name, answers in greedy.items() for it, a in zip(h.eval_items, answers)])
    rows = []
    for label, answers in (("sft", greedy_sft), ("hacked", greedy["hacked"][:len(examples)])):
        verdicts = _judge(answers, [h.scenarios[it["scenario_id"]] for it in examples])
        proxy = h.rm.score(tok, [it["prompt"] for it in examples], answers)
        for k, it in enumerate(examples):
            rows.append({"policy": label, "eval_id": it["id"], "prompt": it["prompt"], "answer": answers[k],
                         "proxy": float(proxy[k]), "gold": float(verdicts["overall"].iloc[k]),
                         **{m: float(verdicts[m].iloc[k]) for m in METRICS}})
    words = _word_shift(h.per_answer[(hack, 0)]["answer"], h.per_answer[(hack, ref.iterations[-1])]["answer"])
    return {"hacked_answers": pd.DataFrame(rows), "hacked_words": words, "policy_answers": policy_answers}


# ============================================================================ the experiment
def reward_hacking_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm, settings: HackingSettings | None = None,
                              progress: bool = False, return_runs: bool = False):
    """Over-optimisation of the learned reward, and three mitigations, measured with the gold judge.

    PPO optimises the reward model r_φ (the proxy) from the SFT policy at several β. At each
    checkpoint the policy answers the held-out evaluation prompts (``data.load_eval_prompts``)
    and we record KL to π_ref, d = √KL, the proxy and the gold judge. Gao et al. (2022): the
    proxy keeps rising with d while the gold score peaks and falls; we fit
    R(d) = d (a - b log d) to the gold gain g(d) - g_sft of the hacked run (smallest β), over
    all its checkpoints, up to ``hacked_iterations``.

    Mitigations, all measured on the same evaluation prompts:
      * strong KL: the largest β, same run length;
      * early stopping: the hacked run, stopped by the gold score of a validation subset of
        RL prompts (never the evaluation prompts), weights of the best validation checkpoint;
      * ensemble: PPO at the smallest β on the mean (or min) of several standardised reward
        models trained with different seeds and data subsets (Coste et al. 2024).
    Effectiveness E = (g_M - g_hacked) / (g_best - g_hacked), with g_best the gold score of
    the hacked run's best evaluation checkpoint and g_hacked that at ``iterations``, the length
    of the mitigations' runs (both from its checkpoints up to ``iterations``). The interval
    resamples the evaluation prompts and re-chooses the best checkpoint in every resample
    (the mitigated policies stay fixed: early stopping chose its checkpoint on validation
    prompts). g_best is the maximum of noisy checkpoint means, so it is biased upwards, and
    E downwards.

    Returns a dict of tables: ``hacking_curves`` (one row per run and checkpoint),
    ``hacking_training`` (PPO's own diagnostics per iteration: the proxy on the training
    prompts, where the policy is optimised), ``gao_fit``, ``hacking_mitigations``,
    ``hacked_answers`` (greedy answers of the SFT and the hacked policy with their proxy and
    gold scores), ``hacked_words`` (the words whose frequency grew most), ``policy_answers``
    (greedy answers of the hacked policy at ``iterations`` and of every mitigated policy to every evaluation prompt;
    chapter 7 reads them). With ``return_runs=True`` it returns ``(tables, extras)``;
    ``extras`` holds the runs, the per-answer evaluations and the prompts, which
    :func:`distribution_shift_experiment` reuses.
    """
    cfg = settings or HackingSettings()
    if len(cfg.betas) < 2:
        raise ValueError("reward hacking needs at least two β: the smallest is the hacked run, the largest the "
                         "strong-KL mitigation")
    if cfg.hacked_iterations < cfg.iterations:
        raise ValueError(f"hacked_iterations ({cfg.hacked_iterations}) must be at least iterations ({cfg.iterations})")
    h = _hacking_setup(tok, sft, rm, cfg, progress)
    _run_and_evaluate(h, progress)
    curves = _curves_table(h)
    ref = _hacked_reference(h)
    tables = {"hacking_curves": curves, "hacking_training": _training_table(h), "gao_fit": _gao_table(h, curves),
              "hacking_mitigations": _mitigations_table(h, ref)}
    answers = _answer_tables(h, ref)
    tables.update({k: answers[k] for k in ("hacked_answers", "hacked_words", "policy_answers")})
    return (tables, h.extras()) if return_runs else tables
