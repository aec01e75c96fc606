"""Chapter 7, the scorecard: the five metrics of the chosen stages on the chosen categories.

Widget: :func:`scorecard_widget` (stages and categories over :func:`scorecard_view`; instant,
nothing is trained).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import judge, scorecard
from ._common import _deferred_import, _interactive


def scorecard_view(scored_df, stages=None, categories=None, labels: dict | None = None, level: float = 0.95,
                   rounds: int = 300, seed: int = 0):
    """The scorecard of the chosen stages on the chosen categories: the five metrics against their targets.

    ``scored_df`` is the table of ``scorecard.score_stages`` (one row per stage and prompt).
    It is filtered to ``stages`` and ``categories`` (None = all; order of the choice kept),
    then ``scorecard.scorecard`` recomputes each mean with its bootstrap interval (``rounds``
    resamples, ``level``) over the prompts that remain. One group of bars per metric, one bar
    per stage (gid ``"bar:<stage>:<metric>"``, error bar = interval), a black tick at the
    target τ_m (gid ``"target:<metric>"``). ``labels`` maps stage names to display names.

    Nothing is trained or generated: the view only averages, so it is instant. Returns
    ``(fig, text, warnings)``; text is the table of mean [lower, upper] in %; with no stage
    or no category chosen, ``(None, "", [a warning])``.
    """
    plt = _deferred_import("matplotlib.pyplot")
    plotting = _deferred_import("course_utils.plotting")
    COLORS, STAGE_COLORS = plotting.COLORS, plotting.STAGE_COLORS

    labels = dict(labels or {})
    all_stages = list(pd.unique(scored_df["stage"]))
    all_cats = list(pd.unique(scored_df["category"]))
    stages = all_stages if stages is None else [s for s in stages if s in all_stages]
    categories = all_cats if categories is None else [c for c in categories if c in all_cats]
    if not stages or not categories:
        return None, "", ["Choose at least one stage and one category."]
    notes: list[str] = []
    rows = scored_df[scored_df["stage"].isin(stages) & scored_df["category"].isin(categories)]
    n = rows.groupby("stage").size()
    if n.min() < 10:
        notes.append(f"Only {int(n.min())} prompt(s) per stage in this selection: the intervals are wide, and a "
                     "bootstrap over so few prompts understates even that.")
    card = scorecard.scorecard(rows, metrics=list(judge.METRICS), level=level, rounds=rounds, seed=seed)
    card = card.set_index(["stage", "metric"])
    palette = [COLORS[c] for c in ("blue", "orange", "green", "vermillion", "sky", "purple", "yellow", "grey")]
    fig, ax = plt.subplots(figsize=(11.0, 4.6))
    width = 0.8 / len(stages)
    x = np.arange(len(judge.METRICS))
    for k, stage in enumerate(stages):
        colour = STAGE_COLORS.get(stage, palette[k % len(palette)])
        sub = card.loc[stage].loc[list(judge.METRICS)]
        pos = x + (k - (len(stages) - 1) / 2) * width
        means = sub["mean"].to_numpy()
        err = np.clip(np.vstack([means - sub["lower"].to_numpy(), sub["upper"].to_numpy() - means]), 0.0, None)
        bars = ax.bar(pos, means, width * 0.9, color=colour, label=labels.get(stage, stage), yerr=err,
                      error_kw={"elinewidth": 1.2, "capsize": 2})
        for bar, metric in zip(bars, judge.METRICS):
            bar.set_gid(f"bar:{stage}:{metric}")
    for j, metric in enumerate(judge.METRICS):
        ax.plot([j - 0.45, j + 0.45], [judge.TARGETS[metric]] * 2, color=COLORS["black"], linewidth=2.5,
                gid=f"target:{metric}")
    ax.set_xticks(x, [m.replace("_", "\n") for m in judge.METRICS])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("mean over the prompts")
    n_prompts = rows["eval_id"].nunique() if "eval_id" in rows.columns else len(rows) // len(stages)
    ax.set_title(f"{len(stages)} stage(s), {len(categories)} categor{'y' if len(categories) == 1 else 'ies'}, "
                 f"{n_prompts} prompts (black: target; bars: {level:.0%} interval)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=10)
    lines = [f"{'stage':<28}" + "".join(f"{m[:14]:>22}" for m in judge.METRICS)]
    for stage in stages:
        cells = "".join(f"{100 * r['mean']:>7.1f} [{100 * r['lower']:5.1f}, {100 * r['upper']:5.1f}]"
                        for _, r in card.loc[stage].loc[list(judge.METRICS)].iterrows())
        lines.append(f"{labels.get(stage, stage)[:27]:<28}{cells}")
    lines.append(f"{'target':<28}" + "".join(f"{100 * judge.TARGETS[m]:>22.1f}" for m in judge.METRICS))
    return fig, "\n".join(lines), notes


def scorecard_widget(scored_df, labels: dict | None = None, seed: int = 0):
    """Two multiple-choice lists (stages, categories) over :func:`scorecard_view`; ctrl/shift-click to choose
    several."""
    w = _deferred_import("ipywidgets")

    stages = list(pd.unique(scored_df["stage"]))
    cats = list(pd.unique(scored_df["category"]))
    labels = dict(labels or {})
    style = {"description_width": "initial"}
    controls = {
        "stages": w.SelectMultiple(options=[(labels.get(s, s), s) for s in stages], value=tuple(stages),
                                   rows=min(len(stages), 10), description="stages", style=style),
        "categories": w.SelectMultiple(options=cats, value=tuple(cats), rows=min(len(cats), 10),
                                       description="categories", style=style),
    }
    return _interactive(lambda stages, categories: scorecard_view(scored_df, list(stages), list(categories),
                                                                  labels=labels, seed=seed), controls)
