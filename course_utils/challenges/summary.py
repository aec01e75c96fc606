"""The summary of chapter 6: one row per challenge, its measured effect, severity and best mitigation.

:func:`summary_table` reads only the experiments' tables (so the notebook can recompute it from
the cache); :func:`severity` turns an effect size into a word by :data:`SEVERITY_RULE`.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

#: The four challenges of chapter 6, in the order of the chapter and of :func:`summary_table`.
CHALLENGES: tuple[str, ...] = ("reward hacking", "annotation quality", "distribution shift", "scalability")

#: How a measured effect size (the share of a stage's achievement the unmitigated problem
#: destroys, see :func:`summary_table`) becomes a severity: the first threshold it reaches.
SEVERITY_RULE: tuple[tuple[float, str], ...] = ((0.75, "critical"), (0.40, "high"), (0.15, "medium"), (0.0, "low"))


def severity(effect: float) -> str:
    """The severity of an effect size by :data:`SEVERITY_RULE` ("n/a" for NaN)."""
    if not np.isfinite(effect):
        return "n/a"
    for threshold, label in SEVERITY_RULE:
        if effect >= threshold:
            return label
    return "low"


def _hacking_summary(tables: Mapping[str, pd.DataFrame]) -> dict:
    """Reward hacking: the gold score lost from the best checkpoint to the end, above the no-skill floor."""
    m = tables["hacking_mitigations"].set_index("mitigation")
    g_floor, g_sft, g_best, g_hack = (float(m.loc[k, "gold"]) for k in (
        "no skill (answers to other questions)", "none (SFT policy)", "none (best checkpoint)", "none (hacked)"))
    effect = _lost_share(g_best, g_hack, g_floor)
    mit = m.dropna(subset=["effectiveness"])
    best = mit["effectiveness"].idxmax() if len(mit) else ""
    curves = tables["hacking_curves"]
    hack = curves[curves.run == m.loc["none (hacked)", "run"]].set_index("iteration")
    se = math.hypot(float(hack.loc[int(m.loc["none (best checkpoint)", "iteration"]), "gold_se"]),
                    float(hack.loc[int(m.loc["none (hacked)", "iteration"]), "gold_se"]))
    it_hack, it_last = int(m.loc["none (hacked)", "iteration"]), int(hack.index.max())
    run_on = (f"; run on to iteration {it_last}: {float(hack.loc[it_last, 'gold']):.3f}"
              if it_last > it_hack else "")
    row = _summary_row("reward hacking", effect, best, mit,
                       f"gold {g_sft:.3f} (SFT) → {g_best:.3f} (best checkpoint) → {g_hack:.3f} (hacked, "
                       f"iteration {it_hack}){run_on}; no skill {g_floor:.3f}")
    if not g_best - g_hack > 2 * se:
        row["severity"] += " (loss within noise)"
        row["note"] = (f"The gold score lost to hacking by iteration {it_hack} ({g_best - g_hack:.3f}), where the "
                       f"mitigations are compared, is within two standard errors ({2 * se:.3f}), so no "
                       "effectiveness can be measured reliably. ")
    return row


def _annotation_summary(tables: Mapping[str, pd.DataFrame]) -> dict:
    """Annotation quality: accuracy lost from clean labels to one annotator at the reference flip rate."""
    n = tables["noise_curves"]
    nm = tables["noise_mitigations"].set_index("mitigation")
    ref = float(nm["reference_rate"].iloc[0])
    clean = float(n.loc[n.method == "clean labels", "accuracy"].iloc[0])
    noisy = n[(n.method == "one annotator") & (np.isclose(n.flip_rate, ref))]
    acc_ref = float(noisy["accuracy"].iloc[0]) if len(noisy) else math.nan
    effect = _lost_share(clean, acc_ref, 0.5)
    best = nm["effectiveness"].idxmax() if nm["effectiveness"].notna().any() else ""
    return _summary_row("annotation quality", effect, best, nm,
                        f"accuracy {clean:.3f} (clean labels) → {acc_ref:.3f} (one annotator, {ref:.0%} flips)")


def _shift_summary(tables: Mapping[str, pd.DataFrame]) -> dict:
    """Distribution shift: from accuracy on preference pairs to agreement on the drifted policy's pairs."""
    sm = tables["shift_mitigation"].iloc[0]
    effect = _lost_share(sm["accuracy_preference_pairs"], sm["agree_drifted"], 0.5)
    sc = tables["shift_categories"]
    out = sc[(sc.reward_model != "all categories") & (sc.pairs.str.startswith("all pairs"))]
    inn = sc[(sc.reward_model != "all categories") & (sc.pairs == "test pairs, other categories")]
    cat_text = (f"; held-out category: {float(inn.accuracy.iloc[0]):.3f} → {float(out.accuracy.iloc[0]):.3f}"
                if len(out) and len(inn) else "")
    return _summary_row("distribution shift", effect, str(sm["mitigation"]), tables["shift_mitigation"]
                        .set_index("mitigation"),
                        f"ranking {sm['accuracy_preference_pairs']:.3f} (preference pairs) → "
                        f"{sm['agree_sft_samples']:.3f} (SFT samples) → {sm['agree_drifted']:.3f} "
                        f"(drifted policy){cat_text}")


def _scale_summary(tables: Mapping[str, pd.DataFrame]) -> dict:
    """Scalability: no quality lost; PPO's memory and FLOPs as multiples of SFT's, the course's severity."""
    sw = tables["scale_width"]
    sx = tables["scale_mitigations"].set_index("mitigation")
    here = sw.loc[sw.d_model == int(sx["d_model"].iloc[0])].iloc[0]
    ratio = here["mb_separate_value"] / here["mb_sft"]
    flops = here["mflop_ppo_iteration"] / here["mflop_sft_step"]
    best = sx["memory_saved"].idxmax()
    return {"challenge": "scalability", "measured": f"PPO holds {ratio:.1f}× the training-state memory of SFT "
                                                    f"and costs {flops:.1f}× "
                                                    "the FLOPs of an SFT step on the same tokens",
            "effect_size": math.nan, "severity": "medium (course's judgement)",
            "best_mitigation": best, "effectiveness": float(sx.loc[best, "memory_saved"]),
            "ci_low": math.nan, "ci_high": math.nan}


def summary_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per challenge: the measured effect, its severity, the measured mitigation
    effectiveness with its interval, and what that interval shows.

    Effect size: the share of a stage's skill above a no-skill floor that the unmitigated
    problem destroys, (q_good - q_bad) / (q_good - q_floor):
      * reward hacking: the gold score, from the hacked run's best checkpoint to its end; the
        floor is the gold score of fluent answers to *other* questions (the SFT policy's
        answers judged against the next prompt's case);
      * annotation quality: reward-model accuracy, from clean labels to one annotator at the
        reference flip rate; the floor is chance (0.5);
      * distribution shift: how often the reward model orders a pair like the gold standard,
        from held-out preference pairs (accuracy) to pairs of the drifted policy's own
        answers (agreement with the gold judge); the floor is chance (0.5);
      * scalability: not a loss of quality. Its severity is the course's judgement; beside it
        stands PPO's training-state memory as a multiple of SFT's at the course's width.
    Severity: the first threshold of :data:`SEVERITY_RULE` the effect size reaches; for
    reward hacking it is marked "(loss within noise)" when the gold score lost from the best
    checkpoint to the end is within two standard errors. The effectiveness shown is the best
    mitigation's.
    """
    rows = [_hacking_summary(tables), _annotation_summary(tables), _shift_summary(tables), _scale_summary(tables)]
    out = pd.DataFrame(rows)
    notes = out["note"].fillna("") if "note" in out else pd.Series([""] * len(out))
    out["explanation"] = [n + _explain(r, within_noise=bool(n)) for n, r in
                          zip(notes, out.drop(columns=["note"], errors="ignore").to_dict("records"))]
    return out.drop(columns=["note"], errors="ignore")


def _lost_share(q_good: float, q_bad: float, q_floor: float) -> float:
    """(q_good - q_bad) / (q_good - q_floor): the share of the skill above the no-skill floor that is lost."""
    return (q_good - q_bad) / (q_good - q_floor) if q_good - q_floor > 1e-12 else math.nan


def _summary_row(challenge: str, effect: float, best: str, mit: pd.DataFrame, measured: str) -> dict:
    e = float(mit.loc[best, "effectiveness"]) if best in mit.index else math.nan
    lo = float(mit.loc[best, "ci_low"]) if best in mit.index else math.nan
    hi = float(mit.loc[best, "ci_high"]) if best in mit.index else math.nan
    return {"challenge": challenge, "measured": measured, "effect_size": effect, "severity": severity(effect),
            "best_mitigation": best, "effectiveness": e, "ci_low": lo, "ci_high": hi}


# what each challenge's interval is computed over (the unit its sample size counts)
_INTERVAL_OVER = {"reward hacking": "a few dozen held-out prompts",
                  "annotation quality": "a hundred-odd held-out preference pairs",
                  "distribution shift": "a few dozen pairs of the policy's own answers"}


def _explain(r: Mapping, within_noise: bool = False) -> str:
    """One sentence per challenge on what the best mitigation's measured effectiveness shows;
    ``within_noise``: the problem's own loss is within noise, so no interval can show a gain."""
    e, lo, hi = r["effectiveness"], r["ci_low"], r["ci_high"]
    if r["challenge"] == "scalability":
        return (f"Memory saved at the course's width ({e:.0%}), not a quality recovered: scaling is a cost "
                "that grows with N, not a loss a mitigation wins back, so this share is not comparable "
                "with the others.")
    if not np.isfinite(e):
        return "Not measurable here: the problem cost nothing measurable in this run."
    if np.isfinite(lo) and np.isfinite(hi):
        ci = f" (95% interval {lo:.0%} to {hi:.0%})"
        verdict = ("its interval excludes 0, but the loss it recovers is itself within noise" if lo > 0 and within_noise
                   else "the mitigation helps: its interval excludes 0" if lo > 0 else
                   "the mitigation hurts: its interval lies below 0" if hi < 0 else
                   "not distinguishable from no mitigation: its interval contains 0")
    else:
        ci, verdict = "", "without an interval, not distinguishable from no mitigation"
    over = _INTERVAL_OVER.get(r["challenge"], "a small evaluation set")
    return (f"The best mitigation's effectiveness is {e:.0%}{ci}: {verdict}. One tiny model, one seed and "
            f"{over}: the interval, not the point, is the result.")
