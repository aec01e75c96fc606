# %% [markdown]
# # Chapter 4. Elo and Bradley-Terry: ranking whole models from head-to-head battles
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/04_elo.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/04_elo.ipynb)
#
# Chapter 3 trained a reward model that scores **one answer**. This chapter asks a different
# question: given several **whole models**, which one is better? Public leaderboards such as
# Chatbot Arena answer it with *battles*: two anonymous models answer the same question, a judge
# says which answer is better (or calls a tie), and a rating system turns many battles into one
# number per model. Here the models are pharmaceutical assistants and the questions are about
# doses, interactions and contraindications.
#
# **Learning objectives.** After this chapter you can
#
# 1. compute the Elo expected score and rating update by hand, and say what K, 400 and 10 mean;
# 2. work a three-model example by hand and read a match-history table;
# 3. show that online Elo depends on the **order** of the games and on **K**, and explain why
#    (an Elo update is one step of stochastic gradient ascent);
# 4. fit **Bradley-Terry maximum-likelihood** ratings, which do not depend on the order, and spot
#    the arenas where they do not exist (a model that won, or lost, every battle);
# 5. put **bootstrap confidence intervals** on a leaderboard and say which rankings the data supports.
#
# **Where this sits.** Part 1 of the course ends here.
#
# | Chapter | Question | Output |
# |---|---|---|
# | 1. Pretraining | how to predict the next token? | a base model |
# | 2. SFT | how to imitate expert answers? | an assistant |
# | 3. Reward model | which of two *answers* is better? | a score for one answer |
# | **4. Elo** | **which of several *models* is better?** | **a rating per model, with an interval** |
#
# The same mathematics links chapters 3 and 4: the reward model's loss
# $-\log\sigma(r_\text{chosen} - r_\text{rejected})$ is the Bradley-Terry model for pairs of
# answers, and this chapter's ratings are the Bradley-Terry model for pairs of models.
# Part 2 trains a policy with PPO and compares every stage; the ratings built here are how
# models are compared when no single correct answer exists.
#
# > **Educational material, not medical advice.** The model names below are invented, the battles
# > are simulated, and nothing here says how any real system performs on real patients. Ask a
# > pharmacist or prescriber.

# %%
# On Colab only: fetch the course (its code and data files) and install it.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    if not os.path.isdir("/content/REPO"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/OWNER/REPO", "/content/REPO"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", "/content/REPO"], check=True)
    sys.path.insert(0, "/content/REPO")
    os.chdir("/content/REPO/notebooks")


# %% tags=["parameters"]
SEED = 0  # seeds the simulated battles, the random orders and the bootstrap
K = 32  # K-factor of the worked example (32 is a common choice)
SCALE = 400  # rating scale s: a lead of SCALE points means BASE:1 odds
BASE = 10  # base b of those odds
WORKED_INIT = 1600  # starting rating of every model in the worked example
INIT = 1000  # starting rating of online Elo and mean rating of Bradley-Terry in the simulations
STRENGTHS = {  # true ratings of the simulated models, in Elo points (invented for the simulation)
    "PharmGPT-v1": 1120,
    "ClinicalAI-v3": 1080,
    "MedLLM-v2": 1000,
    "RxAssist-1": 985,
    "DoseCheck-2": 815,
}
N_MATCHES = 600  # battles in the simulated arena
N_ORDERS = 200  # random orders in which the same battles are replayed
K_VALUES = [1, 4, 32, 128]  # K-factors compared on those orders
BOOTSTRAP_ROUNDS = 1000  # bootstrap resamples per confidence interval
LEVEL = 0.95  # confidence level of the intervals
BATTLE_COUNTS = [150, 600, 2400, 9600]  # arena sizes for "how intervals shrink"
TIE_RATE = 0.3  # share of ties in the pitfall on ties

# %%
import itertools
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils.elo import (
    bootstrap_ratings,
    bradley_terry_ratings,
    bt_log_likelihood,
    confidence_intervals,
    elo_history,
    elo_update,
    expected_score,
    online_elo,
    simulate_battles,
    win_matrix,
)
from course_utils.exercises import check_elo_update, check_log_likelihood, check_points_for_odds
from course_utils.plotting import COLORS, use_course_style
from course_utils.widgets import elo_k_widget, expected_score_widget

use_course_style()
pd.set_option("display.width", 120)
PALETTE = [COLORS[c] for c in ("blue", "orange", "green", "vermillion", "purple", "sky", "black")]
MODELS = list(STRENGTHS)  # the simulated models, in the order of the parameters cell


def mle_check(battles: pd.DataFrame, label: str) -> bool:
    """Print whether the Bradley-Terry MLE of an arena exists; if not, which ratings the prior sets.

    The MLE exists when no model, or group of models, won (or lost) every battle against the rest
    (`bradley_terry_ratings(..., pseudo_ties=0)` raises otherwise). A model nobody scored against
    (no loss, no tie) would have rating +infinity: the number printed for it is set by the weak
    prior, so read it as a lower bound. A model that scored against nobody: an upper bound.
    """
    w = win_matrix(battles)
    try:
        bradley_terry_ratings(battles, pseudo_ties=0)
    except ValueError:
        print(f"{label}: the Bradley-Terry MLE does not exist; the ratings come from the prior "
              "(0.1 virtual ties per pair that played)")
        for model in w.index:
            n = int((w.loc[model] + w[model]).sum())
            if w[model].sum() == 0:
                print(f"  {model} won all {n} of its battles: its rating is only a lower bound, set by the prior")
            elif w.loc[model].sum() == 0:
                print(f"  {model} lost all {n} of its battles: its rating is only an upper bound, set by the prior")
        return False
    print(f"{label}: every model won and lost (or tied) against the rest: the Bradley-Terry MLE exists")
    lost = pd.concat([battles.loc[battles["winner"] == "model_b", "model_a"],
                      battles.loc[battles["winner"] == "model_a", "model_b"]]).value_counts()
    for model in w.index[lost.reindex(w.index, fill_value=0).to_numpy() == 0]:
        print(f"  {model} never lost; its rating is finite only because of its {int(2 * w[model].sum())} ties")
    return True


# %% [markdown]
# ## The Elo model
#
# ### Expected score
#
# Two models A and B carry ratings $R_A$ and $R_B$, in points. Before they meet, the Elo model
# predicts A's **expected score**
#
# $$E_A = \frac{1}{1 + b^{(R_B - R_A)/s}}, \qquad E_B = 1 - E_A,$$
#
# | symbol | meaning | value here |
# |---|---|---|
# | $R_A, R_B$ | ratings of A and B (points) | start at a common value $R_0$ |
# | $E_A$ | expected score of A: its probability of winning, a tie counting half | between 0 and 1 |
# | $s$ | scale: a lead of $s$ points means odds of $b$ to 1 | `SCALE` (400 by convention) |
# | $b$ | base of the odds | `BASE` (10 by convention) |
# | $S_A$ | observed score of A: 1 win, ½ tie, 0 loss | from the judge |
# | $K$ | K-factor: the largest change one match can make | `K` (32 in the worked example) |
#
# Only the **gap** $R_A - R_B$ matters, and the curve is the logistic function:
# $E_A = \sigma\big((R_A - R_B)\ln b / s\big)$ with $\sigma(x) = 1/(1 + e^{-x})$.
#
# **What 400 and 10 mean.** Divide $E_A$ by $E_B$: the odds that A wins are
# $E_A / E_B = b^{(R_A - R_B)/s}$. A 400-point lead means odds of $10^{400/400} = 10$ to 1
# ($E_A = 10/11$); 800 points means 100 to 1; 200 points means $\sqrt{10} \approx 3.16$ to 1. Each
# further 400 points multiplies the odds by ten. The two numbers are conventions that fix the
# unit, like choosing centimetres over inches: multiply every rating, $s$ and $K$ by 2, and every
# prediction and every update stays the same in the new unit.
#
# Arpad Elo (1978) built the chess rating system on this idea (with tables from a normal curve);
# the logistic form used here, and by Chatbot Arena (Chiang et al. 2024), is the model Zermelo
# (1929) proposed for chess tournaments and Bradley and Terry (1952) for paired comparisons.

# %%
gaps = [0, 100, 200, 400, 800]
expected = pd.DataFrame(
    {
        "gap R_A - R_B": gaps,
        "E_A": [expected_score(g, 0, scale=SCALE, base=BASE) for g in gaps],
        "odds A:B (to 1)": [BASE ** (g / SCALE) for g in gaps],
    }
).set_index("gap R_A - R_B")
expected.round(3)

# %%
gap_grid = np.linspace(-800, 800, 401)
fig, ax = plt.subplots()
ax.plot(gap_grid, expected_score(gap_grid, 0, scale=SCALE, base=BASE), color=COLORS["blue"])
for g in (-SCALE, 0, SCALE):
    e = expected_score(g, 0, scale=SCALE, base=BASE)
    ax.plot([g], [e], "o", color=COLORS["vermillion"])
    ax.annotate(f"gap {g:+d}: $E_A$ = {e:.3f}" if g else f"gap 0: $E_A$ = {e:.3f}", (g, e), textcoords="offset points",
                xytext=(10, -18 if g > 0 else 6), fontsize=12)
ax.set_xlabel(r"rating gap $R_A - R_B$ (points)")
ax.set_ylabel(r"expected score $E_A$")
ax.set_title(f"Elo expected score (s = {SCALE}, b = {BASE})")
ax.set_ylim(-0.02, 1.02)
plt.show()

# %% [markdown]
# ### The update
#
# After the match the judge's verdict gives the observed score $S_A$, and both ratings move by
# $K$ times the **surprise** $S_A - E_A$:
#
# $$R'_A = R_A + K\,(S_A - E_A), \qquad R'_B = R_B + K\,(S_B - E_B) = R_B - K\,(S_A - E_A).$$
#
# The update is **zero-sum**: what A gains, B loses, so the average rating never changes. A
# favourite that wins gains little (the win was expected); an underdog that wins gains a lot.
# With $K = 32$ no match can move a rating by more than 32 points. For a favourite rated 200
# points above its opponent:

# %%
R_FAVOURITE, R_UNDERDOG = WORKED_INIT + 200, WORKED_INIT
e_fav = expected_score(R_FAVOURITE, R_UNDERDOG, scale=SCALE, base=BASE)
print(f"favourite {R_FAVOURITE}, underdog {R_UNDERDOG}: E_favourite = {e_fav:.3f}, K = {K}")
for s_a, outcome in [(1.0, "favourite wins"), (0.5, "tie"), (0.0, "underdog wins")]:
    new_fav, new_dog = elo_update(R_FAVOURITE, R_UNDERDOG, s_a, k=K, scale=SCALE, base=BASE)
    print(f"  {outcome:<15} S = {s_a:.1f}: favourite {new_fav - R_FAVOURITE:+6.2f}, "
          f"underdog {new_dog - R_UNDERDOG:+6.2f}")

# %% [markdown]
# ## Worked example: three pharmaceutical models
#
# Three assistants, PharmGPT-v1, ClinicalAI-v3 and MedLLM-v2, all start at 1600 and play five
# matches with $K = 32$, a common choice of K-factor. Each row is one battle in the format public
# arenas publish: `model_a`, `model_b` and `winner` (`model_a`, `model_b` or `tie`).

# %%
worked = pd.DataFrame(
    [
        ("MedLLM-v2", "PharmGPT-v1", "model_b"),
        ("ClinicalAI-v3", "MedLLM-v2", "model_a"),
        ("ClinicalAI-v3", "PharmGPT-v1", "model_b"),
        ("MedLLM-v2", "PharmGPT-v1", "model_b"),
        ("ClinicalAI-v3", "MedLLM-v2", "model_a"),
    ],
    columns=["model_a", "model_b", "winner"],
    index=pd.RangeIndex(1, 6, name="match"),
)
names = dict.fromkeys([*MODELS, *worked["model_a"], *worked["model_b"]])  # every name, in order, once
MODEL_COLORS = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}
worked

# %% [markdown]
# ### The arithmetic, step by step
#
# Take a calculator and follow match 1, then match 2 (the first one in which the two ratings
# differ). The function below prints every intermediate value and then checks it against
# `course_utils.elo.elo_update`.

# %%
history = elo_history(worked, k=K, scale=SCALE, base=BASE, init=WORKED_INIT)
WORKED_MODELS = list(history.iloc[-1].sort_values(ascending=False).index)  # final order
SCORE_OF = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}


def show_match(t: int) -> None:
    """Print the Elo arithmetic of match t of the worked example."""
    a, b, winner = worked.loc[t, ["model_a", "model_b", "winner"]]
    r_a, r_b = history.loc[t - 1, a], history.loc[t - 1, b]
    s_a = SCORE_OF[winner]
    exponent = (r_b - r_a) / SCALE
    power = BASE**exponent
    e_a = 1 / (1 + power)
    change = K * (s_a - e_a)
    print(f"Match {t}: A = {a} ({r_a:.2f}) vs B = {b} ({r_b:.2f}); winner: {a if s_a == 1 else b}")
    print(f"  (R_B - R_A) / s  = ({r_b:.2f} - {r_a:.2f}) / {SCALE} = {exponent:.4f}")
    print(f"  b^that           = {BASE}^{exponent:.4f} = {power:.4f}")
    print(f"  E_A              = 1 / (1 + {power:.4f}) = {e_a:.4f}     (E_B = {1 - e_a:.4f})")
    print(f"  S_A              = {s_a:.0f}")
    print(f"  K (S_A - E_A)    = {K} x ({s_a:.0f} - {e_a:.4f}) = {change:+.2f}")
    print(f"  R'_A = {r_a:.2f} {change:+.2f} = {r_a + change:.2f};   "
          f"R'_B = {r_b:.2f} {-change:+.2f} = {r_b - change:.2f}")
    new_a, new_b = elo_update(r_a, r_b, s_a, k=K, scale=SCALE, base=BASE)
    print(f"  check: elo_update gives ({new_a:.2f}, {new_b:.2f})")


show_match(1)
print()
show_match(2)

# %% [markdown]
# ### Match-history analysis
#
# `elo_history` replays the battles and records every rating after every match. The first table
# puts each match on one line: who played, A's expected score, the result and what A won (a
# negative number: lost); B's change is the same number with the other sign. The second table is
# the three ratings after each match (match 0: the start).

# %%
rows = []
for t, (a, b, winner) in worked[["model_a", "model_b", "winner"]].iterrows():
    before, after = history.loc[t - 1], history.loc[t]
    rows.append(
        {
            "match": t,
            "A": a,
            "B": b,
            "E_A": expected_score(before[a], before[b], scale=SCALE, base=BASE),
            "winner": a if winner == "model_a" else b if winner == "model_b" else "tie",
            "A gains": after[a] - before[a],
        }
    )
match_table = pd.DataFrame(rows).set_index("match")
match_table.round({"E_A": 3, "A gains": 2})

# %%
history[WORKED_MODELS].round(1)

# %% [markdown]
# Two checks you can do by hand. In match 1 both players start level, so $E_A = E_B = 1/2$ and the
# winner gains exactly $K/2$ points, which the loser gives up; the table's first row shows it. And
# since every update moves points from one player to the other, the three ratings must still add up
# to three times the starting rating after all five matches. The next cell asserts both.

# %%
final_worked = history.iloc[-1]
first = worked.loc[1]
first_winner = first["model_a"] if first["winner"] == "model_a" else first["model_b"]
first_loser = first["model_b"] if first_winner == first["model_a"] else first["model_a"]
assert np.isclose(history.loc[1, first_winner], WORKED_INIT + K / 2)
assert np.isclose(history.loc[1, first_loser], WORKED_INIT - K / 2)
assert np.isclose(final_worked.sum(), len(final_worked) * WORKED_INIT)
print(f"match 1: {first_winner} {WORKED_INIT} + {K}/2 = {history.loc[1, first_winner]:.1f}, "
      f"{first_loser} {WORKED_INIT} - {K}/2 = {history.loc[1, first_loser]:.1f}")
print("final ratings: " + ", ".join(f"{m} {final_worked[m]:.1f}" for m in WORKED_MODELS))
print(f"sum of the three ratings: {final_worked.sum():.1f} "
      f"(= {len(final_worked)} x {WORKED_INIT}: every update is zero-sum)")

# %%
fig, ax = plt.subplots()
for model in WORKED_MODELS:
    ax.plot(history.index, history[model], marker="o", color=MODEL_COLORS[model], label=model)
    ax.annotate(f"{history[model].iloc[-1]:.1f}", (history.index[-1], history[model].iloc[-1]),
                textcoords="offset points", xytext=(8, -4), fontsize=12)
ax.set_xticks(history.index)
ax.set_xlim(-0.3, history.index[-1] + 0.9)
ax.set_xlabel("match")
ax.set_ylabel("Elo rating")
ax.set_title(f"Worked example: ratings after each match (K = {K})")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# Read the tables with the update rule in mind: a win is worth $K(1 - E)$, so it is worth less the
# more it was expected, and a loss costs $K E$, less the less it was expected. Each model's
# changes, match by match:

# %%
for model in WORKED_MODELS:
    played = [t for t in worked.index if model in (worked.loc[t, "model_a"], worked.loc[t, "model_b"])]
    changes = [history.loc[t, model] - history.loc[t - 1, model] for t in played]
    print(f"{model:<14} " + ", ".join(f"match {t}: {c:+.2f}" for t, c in zip(played, changes)))

# %% [markdown]
# Each change follows from the gap *before* that match, not from the model's record: the further
# a loser is behind its opponent at that moment, the less the loss costs. That is why MedLLM-v2's
# last loss costs more than the one before it: by then its opponent, ClinicalAI-v3, had itself lost
# to PharmGPT-v1 and was the closer of the two.
#
# Now a question that matters for every leaderboard: **would the same five results, played in
# another order, give the same ratings?** There are $5! = 120$ orders; we can try them all.

# %%
order_finals = pd.DataFrame(
    [
        online_elo(worked.iloc[list(p)], k=K, scale=SCALE, base=BASE, init=WORKED_INIT)
        for p in itertools.permutations(range(len(worked)))
    ]
)[WORKED_MODELS]
spread = pd.DataFrame(
    {"the listed order": final_worked[WORKED_MODELS], "lowest": order_finals.min(), "highest": order_finals.max()}
)
spread["range"] = spread["highest"] - spread["lowest"]
print(f"final ratings over all {len(order_finals)} orders of the same five results:")
spread.round(1)

# %% [markdown]
# Same results, different ratings: online Elo remembers the order in which it saw the games. With
# five games this looks like a curiosity. The next section shows it is a property of the method.

# %% [markdown]
# ## Why online Elo depends on the order of the games and on K
#
# To study a rating method we need battles whose **true** answer we know. `simulate_battles`
# draws them from the model itself: each battle pairs two of our five models at random, and A wins
# with probability $E_A$ computed from the true ratings in `STRENGTHS`. No real arena has true
# ratings; a simulation is the one place where we can check a method against them.

# %%
battles = simulate_battles(STRENGTHS, N_MATCHES, seed=SEED, scale=SCALE, base=BASE)
truth = pd.Series(STRENGTHS, dtype=float)
truth = truth - truth.mean() + INIT  # the gauge of both methods: ratings average INIT
true_order = list(truth.sort_values(ascending=False).index)
games = pd.concat([battles.model_a, battles.model_b]).value_counts()[MODELS]
print(f"{len(battles)} battles; games per model: " + ", ".join(f"{m} {n}" for m, n in games.items()))
battles.head()

# %% [markdown]
# We replay the **same** battles in `N_ORDERS` random orders and run online Elo on each order,
# starting every model at `INIT`, for several K. The figure shows, for each model, the median
# rating over the orders (line) and the band that holds 90 % of the orders, match by match; the
# dashed lines are the true ratings.

# %%
rng = np.random.default_rng(SEED)
orders = [rng.permutation(len(battles)) for _ in range(N_ORDERS)]
paths = {  # K -> array (orders, matches + 1, models)
    k: np.stack(
        [
            elo_history(battles.iloc[o], k=k, scale=SCALE, base=BASE, init=INIT)[MODELS].to_numpy()
            for o in orders
        ]
    )
    for k in K_VALUES
}
print(f"{len(K_VALUES)} K-factors x {N_ORDERS} orders x {len(battles)} battles replayed")

# %%
n_cols = 2
n_rows = -(-len(K_VALUES) // n_cols)
fig, axes = plt.subplots(n_rows, n_cols, figsize=(11, 3.3 * n_rows), sharex=True, sharey=True, squeeze=False)
step = max(1, len(battles) // 50)  # draw every step-th match: the same picture, a lighter file
matches = np.arange(0, len(battles) + 1, step)
for ax, k in zip(axes.flat, K_VALUES):
    low, mid, high = np.percentile(paths[k][:, ::step], [5, 50, 95], axis=0)
    for j, model in enumerate(MODELS):
        ax.fill_between(matches, low[:, j], high[:, j], color=MODEL_COLORS[model], alpha=0.25, linewidth=0)
        ax.plot(matches, mid[:, j], color=MODEL_COLORS[model], label=model)
        ax.axhline(truth[model], color=MODEL_COLORS[model], linestyle="--", linewidth=1.2)
    ax.set_title(f"K = {k}")
for ax in axes[-1]:
    ax.set_xlabel("match")
for ax in axes[:, 0]:
    ax.set_ylabel("online Elo rating")
for ax in axes.flat[len(K_VALUES):]:
    ax.set_visible(False)
axes.flat[0].legend(loc="upper left", fontsize=10, ncol=2)
fig.suptitle(f"Same {len(battles)} battles, {N_ORDERS} orders: median and 90 % band; dashed = truth")
plt.show()

# %% [markdown]
# The table measures the two failures at the end of the replay. *sd over orders* is the standard
# deviation of a model's final rating over the orders (averaged over models): how much the
# leaderboard depends on luck of the order. *RMSE* is the root-mean-square distance from the true
# ratings. *true order %* and *true best %* count the orders whose final leaderboard puts all five
# models, or just the best one, in the true place. The Bradley-Terry row is explained in the next
# section; it is computed once, because it is the same for every order (first, the code checks
# that its maximum-likelihood ratings exist on this arena, a pitfall met at the end of that
# section).

# %%
def ranking(values: np.ndarray) -> list[str]:
    return [MODELS[i] for i in np.argsort(-values, kind="stable")]


mle_check(battles, f"simulated arena, {len(battles)} battles")
bt = bradley_terry_ratings(battles, scale=SCALE, base=BASE, init=INIT)
true_values = truth[MODELS].to_numpy()
k_rows = []
for k in K_VALUES:
    final = paths[k][:, -1, :]  # orders x models
    k_rows.append(
        {
            "method": f"Elo, K = {k}",
            "sd over orders": final.std(axis=0).mean(),
            "RMSE": np.sqrt(((final - true_values) ** 2).mean()),
            "true order %": 100 * np.mean([ranking(f) == true_order for f in final]),
            "true best %": 100 * np.mean([ranking(f)[0] == true_order[0] for f in final]),
        }
    )
bt_values = bt[MODELS].to_numpy()
k_rows.append(
    {
        "method": "Bradley-Terry",
        "sd over orders": 0.0,
        "RMSE": np.sqrt(((bt_values - true_values) ** 2).mean()),
        "true order %": 100.0 * (ranking(bt_values) == true_order),
        "true best %": 100.0 * (ranking(bt_values)[0] == true_order[0]),
    }
)
k_table = pd.DataFrame(k_rows).set_index("method")
elo_rows = k_table.iloc[: len(K_VALUES)]
print(f"smallest online-Elo error: {elo_rows['RMSE'].idxmin()}")
k_table.round(1)

# %%
small, large = f"Elo, K = {min(K_VALUES)}", f"Elo, K = {max(K_VALUES)}"
gap_true = true_values.max() - true_values.min()
gaps_small = paths[min(K_VALUES)][:, -1, :].max(axis=1) - paths[min(K_VALUES)][:, -1, :].min(axis=1)
print(f"{small}: sd over orders {k_table.loc[small, 'sd over orders']:.1f} points, true order in "
      f"{k_table.loc[small, 'true order %']:.0f}% of the orders, but best-to-worst distance "
      f"{np.median(gaps_small):.0f} points (median over orders) against {gap_true:.0f} true: RMSE "
      f"{k_table.loc[small, 'RMSE']:.0f}")
print(f"{large}: sd over orders {k_table.loc[large, 'sd over orders']:.0f} points, true order in "
      f"{k_table.loc[large, 'true order %']:.0f}% of the orders, RMSE {k_table.loc[large, 'RMSE']:.0f}")
print(f"Bradley-Terry: RMSE {k_table.loc['Bradley-Terry', 'RMSE']:.0f}, true order: "
      f"{'yes' if k_table.loc['Bradley-Terry', 'true order %'] == 100 else 'no'}")

# %% [markdown]
# Two different failures show up, one at each end of K:
#
# - **Small K is slow.** With the smallest K the bands are narrow (the order hardly matters), but
#   the ratings have not travelled far from the starting value by the end of the replay: each game
#   moves a rating by at most K points. The lines above measure it: the order of the models can
#   still come out right (in the share of orders printed), but the distance from the best to the
#   worst model is a fraction of the true one, so the ratings understate how often the best model
#   wins.
# - **Large K is noisy.** With the largest K the ratings reach the right region within a few dozen
#   games and then keep jumping: every game moves them by tens of points, so the final leaderboard
#   mostly reflects the last few games of each model, and the order of the games decides it.
#
# **Why: an Elo update is a step of stochastic gradient ascent.** Write the log-likelihood of one
# battle under the model, $\ell_t = S_A \log E_A + (1 - S_A)\log(1 - E_A)$ with
# $E_A = \sigma\big((R_A - R_B)\,c\big)$ and $c = \ln b / s$. Its derivative is
#
# $$\frac{\partial \ell_t}{\partial R_A} = c\,(S_A - E_A),$$
#
# so the Elo update $R_A \leftarrow R_A + K(S_A - E_A)$ is exactly a gradient step on one battle
# with learning rate $\eta = K / c = K s / \ln b$. It is the learning-rate trade-off of training a
# network (chapter 1): with a constant learning rate, stochastic gradient methods never settle; they
# jitter around the optimum with a spread that grows with the step size, while a tiny step takes
# forever to get there.
# K **is** a learning rate. Chess federations use K between 10 and 40 because players' strengths
# change over time and the ratings must follow them; a released model's weights do not change.

# %% [markdown]
# ## Bradley-Terry maximum likelihood: the order-free answer
#
# If the strengths do not change, there is no reason to process the battles one at a time. The
# **Bradley-Terry model** (Zermelo 1929; Bradley & Terry 1952) is the same curve as Elo's expected
# score, written for model $i$ against model $j$:
#
# $$p_{ij} = P(i \text{ beats } j) = \sigma(\theta_i - \theta_j), \qquad \theta_i = R_i \ln b / s.$$
#
# Count the results in a table $W$: $W_{ij}$ is the number of wins of $i$ over $j$, a tie adding ½ to
# both $W_{ij}$ and $W_{ji}$. The log-likelihood of all battles at once is
#
# $$\ell(R) = \sum_t \big[S_t \log E_t + (1 - S_t)\log(1 - E_t)\big] = \sum_{i,j} W_{ij} \log p_{ij}.$$
#
# It depends on the battles only through the counts $W$, so **the order of the battles cannot
# matter**. The **maximum-likelihood** ratings maximise $\ell$. The function is concave (one
# maximum once the average rating is fixed, found by Newton's method in `bradley_terry_ratings`),
# and at the maximum each model's
# observed wins equal its expected wins, $\sum_j W_{ij} = \sum_j N_{ij}\,p_{ij}$, where
# $N_{ij} = W_{ij} + W_{ji}$ is the number of battles between $i$ and $j$. Only differences are
# identified, so the ratings are shifted to average `INIT`. This is what Chatbot Arena reports
# (Chiang et al. 2024).
#
# The counts of our simulated arena (row beat column):

# %%
win_matrix(battles).loc[MODELS, MODELS].round(1)

# %% [markdown]
# The fit, its log-likelihood next to other sets of ratings, and the check that shuffling the
# battles changes nothing:

# %%
max_shift = max(
    (bradley_terry_ratings(battles.iloc[o], scale=SCALE, base=BASE, init=INIT) - bt).abs().max()
    for o in orders
)
print(f"Bradley-Terry on all {N_ORDERS} orders: largest change of any rating {max_shift:.6f} points")

candidates = {"Bradley-Terry MLE": bt, "true ratings": truth}
for k in K_VALUES:
    finals = paths[k][:, -1, :]
    lls = [bt_log_likelihood(battles, dict(zip(MODELS, f)), scale=SCALE, base=BASE) for f in finals]
    candidates[f"online Elo, K = {k} (best of {N_ORDERS} orders)"] = dict(zip(MODELS, finals[int(np.argmax(lls))]))
loglik = pd.Series(
    {name: bt_log_likelihood(battles, r, scale=SCALE, base=BASE) for name, r in candidates.items()},
    name="log-likelihood",
)
print(f"highest log-likelihood: {loglik.idxmax()}")
loglik.round(2).to_frame()

# %% [markdown]
# No order of the battles, at any K, reaches the likelihood of the Bradley-Terry fit, and even the
# true ratings explain these particular battles less well than the MLE does: `N_MATCHES` battles
# do not pin the truth down exactly (the next section measures by how much). At the
# maximum, observed and expected wins agree for every model:

# %%
w = win_matrix(battles).loc[MODELS, MODELS].to_numpy()
p = expected_score(bt_values[:, None], bt_values[None, :], scale=SCALE, base=BASE)
score_eq = pd.DataFrame(
    {
        "Bradley-Terry rating": bt_values,
        "true rating": true_values,
        "observed wins": w.sum(axis=1),
        "expected wins": ((w + w.T) * p).sum(axis=1),
    },
    index=pd.Index(MODELS, name="model"),
)
score_eq.round(1)

# %% [markdown]
# The figure puts the two methods side by side: for each K, a box shows where one model's final
# online-Elo rating lands over the `N_ORDERS` orders; the Bradley-Terry rating (solid line) is one
# value, the same for every order, and the dashed line is the truth.

# %%
fig, ax = plt.subplots(figsize=(11, 5))
width = 0.8 / len(MODELS)
for j, model in enumerate(MODELS):
    positions = np.arange(len(K_VALUES)) + (j - (len(MODELS) - 1) / 2) * width
    ax.boxplot(
        [paths[k][:, -1, j] for k in K_VALUES], positions=positions, widths=width * 0.85,
        patch_artist=True, showfliers=False, whis=(5, 95),
        boxprops={"facecolor": MODEL_COLORS[model], "alpha": 0.6, "edgecolor": MODEL_COLORS[model]},
        medianprops={"color": "black"}, whiskerprops={"color": MODEL_COLORS[model]},
        capprops={"color": MODEL_COLORS[model]},
    )
    ax.axhline(bt[model], color=MODEL_COLORS[model], linewidth=1.8, label=f"{model}")
    ax.axhline(truth[model], color=MODEL_COLORS[model], linewidth=1.2, linestyle="--")
ax.plot([], [], color="black", linewidth=1.8, label="Bradley-Terry (any order)")
ax.plot([], [], color="black", linewidth=1.2, linestyle="--", label="truth")
ax.set_xticks(np.arange(len(K_VALUES)), [f"K = {k}" for k in K_VALUES])
ax.set_xlabel("online Elo K-factor (boxes: final rating over the orders, 5th to 95th percentile whiskers)")
ax.set_ylabel("final rating")
ax.set_title("Online Elo depends on order and K; Bradley-Terry (solid) does not")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
plt.show()

# %% [markdown]
# ### When the maximum does not exist
#
# Careful with small data, and with one-sided arenas. If a model won **every** battle it played
# (no loss, no tie), raising its rating always raises the likelihood: the maximum lies at
# $+\infty$ and the maximum-likelihood ratings **do not exist** (Zermelo 1929; Ford 1957). The same
# holds, at $-\infty$, for a model that lost every battle, and for a group of models that won every
# battle against the rest. `bradley_terry_ratings` then adds a weak prior (0.1 virtual ties per
# pair that played) so that the numbers stay finite; for such a model the number is set by the
# prior, not by the data, and says only that its rating is *at least* (or *at most*) about that.
# `mle_check`, defined at the top of the chapter, finds these models; every Bradley-Terry fit of
# an arena in this chapter runs it first. On the five matches of the worked example:

# %%
mle_check(worked, "worked example")
regularised = bradley_terry_ratings(worked, scale=SCALE, base=BASE, init=WORKED_INIT)
print("with 0.1 virtual ties per pair: " + ", ".join(f"{m} {r:.0f}" for m, r in regularised.items()))
tenfold = bradley_terry_ratings(pd.concat([worked] * 10), scale=SCALE, base=BASE, init=WORKED_INIT)
print("the same five results played ten times: " + ", ".join(f"{m} {r:.0f}" for m, r in tenfold.items()))
spread_1, spread_10 = regularised.max() - regularised.min(), tenfold.max() - tenfold.min()
print(f"best minus worst: {spread_1:.0f} points, then {spread_10:.0f}: "
      + ("the ratings move apart as the prior's share of the data shrinks" if spread_10 > spread_1 else
         "the ratings settle"))

# %% [markdown]
# More of the same results should make the estimate *firmer*; here the ratings of the undefeated
# and the winless model are set by how much the prior weighs against the battles, and they move
# with it, as printed. A number that depends on the weight of a prior is not an estimate.

# %% [markdown]
# ## How sure are we? Bootstrap confidence intervals
#
# The Bradley-Terry ratings are estimates from a finite sample of battles; a different sample from
# the same arena would give different numbers. The **bootstrap** (Efron 1979) measures how
# different: draw $n$ battles **with replacement** from the $n$ we have, refit, repeat $B$ times
# (`BOOTSTRAP_ROUNDS`), and read each model's interval between the 2.5th and 97.5th percentiles of
# its refitted ratings (for a 95 % level). Chatbot Arena publishes exactly these intervals
# (Chiang et al. 2024).

# %%
bt_fn = partial(bradley_terry_ratings, scale=SCALE, base=BASE, init=INIT)
boot = bootstrap_ratings(battles, bt_fn, rounds=BOOTSTRAP_ROUNDS, seed=SEED)
ci = confidence_intervals(boot, level=LEVEL)
ci["width"] = ci["upper"] - ci["lower"]
ci["truth"] = truth[ci.index]
ci["covers truth"] = (ci["lower"] <= ci["truth"]) & (ci["truth"] <= ci["upper"])
print(f"{LEVEL:.0%} intervals from {BOOTSTRAP_ROUNDS} bootstrap rounds of {len(battles)} battles; "
      f"{int(ci['covers truth'].sum())} of {len(ci)} contain the true rating")
ci.round(1)

# %%
fig, ax = plt.subplots()
y = np.arange(len(ci))[::-1]
for yi, (model, row) in zip(y, ci.iterrows()):
    colour = MODEL_COLORS.get(model, COLORS["black"])
    ax.plot([row["lower"], row["upper"]], [yi, yi], color=colour, linewidth=5, alpha=0.6, solid_capstyle="butt")
    ax.plot([row["rating"]], [yi], "o", color=colour, markersize=9)
    ax.plot([row["truth"]], [yi], "x", color="black", markersize=10, markeredgewidth=2.5)
ax.set_yticks(y, list(ci.index))
ax.set_xlabel("rating (bar: interval, dot: bootstrap median, x: truth)")
ax.set_title(f"{LEVEL:.0%} bootstrap intervals from {len(battles)} battles")
plt.show()

# %% [markdown]
# **What the intervals say about the leaderboard.** When the intervals of two neighbours overlap
# widely, the data does not establish which of them is better, whatever order the point estimates
# show. The direct test looks at the **difference** of the two ratings in every bootstrap round: the
# table gives the gap of the MLE ratings, whether the two intervals overlap, the share of rounds in
# which the higher-ranked model stays ahead (`% ahead`) and the interval of the gap (`gap low` to
# `gap high`). If that interval contains 0, the ranking of the pair is not significant at this level.
# (Non-overlapping intervals always mean a significant difference; overlapping ones do not always
# mean the opposite, which is why the difference is the better test.)

# %%
tail = (1 - LEVEL) / 2
ranked = list(ci.index)
pair_rows = []
for hi, lo in zip(ranked, ranked[1:]):
    diff = boot[hi] - boot[lo]
    low_d, high_d = diff.quantile(tail), diff.quantile(1 - tail)
    pair_rows.append(
        {
            "pair": f"{hi} > {lo}",
            "gap": bt[hi] - bt[lo],
            "overlap": bool(ci.loc[hi, "lower"] <= ci.loc[lo, "upper"]),
            "% ahead": 100 * (diff > 0).mean(),
            "gap low": low_d,
            "gap high": high_d,
            "signif.": bool(low_d > 0),
        }
    )
pairs = pd.DataFrame(pair_rows).set_index("pair")
print(f"{int(pairs['signif.'].sum())} of {len(pairs)} neighbouring pairs are ordered significantly; "
      f"{int((pairs['signif.'] & pairs['overlap']).sum())} of them despite overlapping intervals")
pairs.round(1)

# %% [markdown]
# **How the intervals shrink with more battles.** The standard error of an estimate from $n$
# independent battles falls like $1/\sqrt{n}$: four times the battles, half the width. We simulate
# arenas of different sizes from the same true ratings and bootstrap each one. The table gives the
# mean width of the five intervals, how many of the four neighbouring pairs have intervals that do
# not overlap (`separated`), and whether the leaderboard puts all five models in the true order.

# %%
size_rows = []
for n in BATTLE_COUNTS:
    arena = simulate_battles(STRENGTHS, n, seed=SEED, scale=SCALE, base=BASE)
    mle_check(arena, f"{n} battles")
    ci_n = confidence_intervals(bootstrap_ratings(arena, bt_fn, rounds=BOOTSTRAP_ROUNDS, seed=SEED), level=LEVEL)
    order_n = list(ci_n.index)
    separated = sum(ci_n.loc[hi, "lower"] > ci_n.loc[lo, "upper"] for hi, lo in zip(order_n, order_n[1:]))
    size_rows.append(
        {
            "battles": n,
            "mean width": (ci_n["upper"] - ci_n["lower"]).mean(),
            "separated": f"{separated} of {len(order_n) - 1}",
            "true order": order_n == true_order,
        }
    )
sizes = pd.DataFrame(size_rows).set_index("battles")
sizes.round(1)

# %%
widths = sizes["mean width"]
n0 = widths.index[0]
fig, ax = plt.subplots()
ax.loglog(widths.index, widths.to_numpy(), "o-", color=COLORS["blue"], label="mean interval width")
ax.loglog(widths.index, widths.iloc[0] * np.sqrt(n0 / widths.index.to_numpy()), "--",
          color=COLORS["grey"], label=r"$\propto 1/\sqrt{n}$")
ax.set_xticks(widths.index, [str(n) for n in widths.index])
nice = [t for t in (5, 10, 20, 50, 100, 200, 500, 1000) if widths.min() / 1.5 <= t <= widths.max() * 1.5]
ax.set_yticks(nice, [str(t) for t in nice])
ax.minorticks_off()
ax.set_xlabel("number of battles n")
ax.set_ylabel(f"{LEVEL:.0%} interval width (points)")
ax.set_title("Intervals shrink like one over the square root of the battles")
ax.legend()
plt.show()

# %% [markdown]
# The hardest pair to separate is the one with the smallest true gap. How many battles would its
# intervals need? Width falls like $1/\sqrt{n}$, so from the largest arena we can extrapolate the
# number of battles at which the mean width drops to the gap itself (a rough rule: then the two
# intervals just stop overlapping).

# %%
close_hi, close_lo = min(zip(true_order, true_order[1:]), key=lambda pair: truth[pair[0]] - truth[pair[1]])
close_gap = truth[close_hi] - truth[close_lo]
n_last, width_last = widths.index[-1], widths.iloc[-1]
print(f"closest true pair: {close_hi} vs {close_lo}, {close_gap:.0f} points apart")
print(f"  true odds {BASE ** (close_gap / SCALE):.2f} to 1 (E = {expected_score(close_gap, 0, scale=SCALE, base=BASE):.3f})")
print(f"  mean interval width with {n_last} battles: {width_last:.1f} points")
print(f"  battles for a width of {close_gap:.0f} points: about {n_last * (width_last / close_gap) ** 2:,.0f}")

# %% [markdown]
# A small gap on a leaderboard without intervals is not a finding.
#
# Everything so far used invented assistants with known strengths. The next section ranks the
# models this course trains itself, with battles judged on held-out pharmaceutical questions, using
# the same order-free Bradley-Terry fit and bootstrap intervals.

# %% [markdown]
# ## An arena of the course's own models
#
# Now the real thing. The models this course trains answer the held-out evaluation questions (the
# last phrasing of every scenario, never seen in training), by greedy decoding: the base model of
# chapter 1, the SFT model of chapter 2, the PPO model of chapter 5 once it has been built, and, as a
# ceiling, the expert answers of the knowledge base. For every question, every pair of models meets
# once: the answer with the higher score wins, equal scores are a tie. Two judges score the answers:
#
# - the **gold judge** (`course_utils/judge.py`), a transparent rubric that plays the expert pharmacist
#   (key facts stated, unsafe claims, doses, escalation); its `overall` score lies between 0 and 1;
# - the **reward model** of chapter 3, $r_\phi(x, y)$, learned from annotators' preferences and from
#   pairs built from the knowledge base. It is the judge that PPO optimises in chapter 5, and it is only
#   a **proxy** for the first one.
#
# Each judge gives its own battle table in the arena format, and each table its own Bradley-Terry
# ratings with bootstrap intervals, exactly as above (`course_utils.scorecard` builds the battles and
# calls `bradley_terry_ratings`, `bootstrap_ratings` and `confidence_intervals`).

# %%
from course_utils import checkpoints, data, reward, scorecard
from course_utils.paths import CHECKPOINT_DIR
from course_utils.plotting import STAGE_COLORS

arena_tok = checkpoints.load_tokenizer()
arena_models = {"base": checkpoints.load("base", dtype="float64"), "SFT": checkpoints.load("sft", dtype="float64")}
if (CHECKPOINT_DIR / "ppo.npz").exists():                 # chapter 5's policy, once `make checkpoints` built it
    arena_models["PPO"] = checkpoints.load("ppo", dtype="float64")
arena_rm = reward.load_reward_model(dtype="float64")
arena_prompts = data.load_eval_prompts()
arena_answers = scorecard.stage_answers(arena_models, arena_tok, arena_prompts, progress=True)
arena_answers["stage"] = arena_answers["stage"].replace({"reference": "expert"})
arena_scored = scorecard.score_stages(arena_answers, reward_model=arena_rm, tok=arena_tok)
ARENA_MODELS = list(pd.unique(arena_scored["stage"]))
ARENA_COLORS = {"base": STAGE_COLORS["base"], "SFT": STAGE_COLORS["sft"], "PPO": STAGE_COLORS["ppo"],
                "expert": STAGE_COLORS["reference"]}
print(f"{len(arena_prompts)} held-out questions; models in the arena: {', '.join(ARENA_MODELS)}")
arena_scored.groupby("stage", sort=False)[["overall", "reward"]].mean().round(3)

# %% [markdown]
# One question, two battles: the score columns are what each judge saw, the winner column what it
# decided.

# %%
arena_battles_judge = scorecard.arena_battles(arena_scored, "overall", tie_margin=0.0)
arena_battles_rm = scorecard.arena_battles(arena_scored, "reward", tie_margin=0.0)
first_question = arena_battles_judge["eval_id"].iloc[0]
print(f"question {first_question}: " + next(q["prompt"] for q in arena_prompts if q["id"] == first_question))
pd.concat(
    {
        "gold judge": arena_battles_judge[arena_battles_judge["eval_id"] == first_question],
        "reward model": arena_battles_rm[arena_battles_rm["eval_id"] == first_question],
    }
).droplevel(1).drop(columns="eval_id").round(3)

# %%
arena_battle_tables = {"gold judge": arena_battles_judge, "reward model": arena_battles_rm}


def one_sided_share(table: pd.DataFrame, rounds: int = BOOTSTRAP_ROUNDS, seed: int = SEED) -> float:
    """Share of bootstrap resamples of the battles in which some model won, or lost, every battle it played."""
    score = table["winner"].map(SCORE_OF).to_numpy()
    draws = np.random.default_rng(seed).multinomial(len(table), np.full(len(table), 1 / len(table)), size=rounds)
    one_sided = np.zeros(rounds, dtype=bool)
    for model in pd.unique(table[["model_a", "model_b"]].to_numpy().ravel()):
        as_a, as_b = (table["model_a"] == model).to_numpy(), (table["model_b"] == model).to_numpy()
        played = draws @ (as_a | as_b)
        scored = draws @ (as_a * (score > 0) + as_b * (score < 1))           # won or tied
        conceded = draws @ (as_a * (score < 1) + as_b * (score > 0))         # lost or tied
        one_sided |= (played > 0) & ((scored == 0) | (conceded == 0))
    return float(one_sided.mean())


arena_ratings = {}
for judge_name, table in arena_battle_tables.items():
    mle_check(table, judge_name)
    print(f"  {len(table)} battles, {table['winner'].eq('tie').mean():.0%} ties; resamples with a model that won "
          f"or lost every battle: {one_sided_share(table):.1%}")
    arena_ratings[judge_name] = scorecard.arena_ratings(table, rounds=BOOTSTRAP_ROUNDS, seed=SEED, level=LEVEL,
                                                        scale=SCALE, base=BASE, init=INIT)
    print("  ranking: " + " > ".join(arena_ratings[judge_name].index))
decisive = arena_battles_judge[arena_battles_judge["winner"] != "tie"]
mle_check(decisive, f"gold judge, ties dropped ({len(decisive)} battles)")
pd.concat({judge_name: pd.DataFrame({"rating": t["rating"].round(0).astype(int),
                                     f"{LEVEL:.0%} interval": [f"{lo:.0f} to {hi:.0f}" for lo, hi in zip(t["lower"], t["upper"])],
                                     "win rate": t["win_rate"].round(2)})
           for judge_name, t in arena_ratings.items()}, axis=1)

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 1.0 + 0.8 * len(ARENA_MODELS)), sharey=True)
arena_order = list(arena_ratings["gold judge"].index)[::-1]  # the gold judge's order, best on top
for ax, (judge_name, arena_table) in zip(axes, arena_ratings.items()):
    for y, model in enumerate(arena_order):
        row = arena_table.loc[model]
        ax.plot([row["lower"], row["upper"]], [y, y], color=ARENA_COLORS[model], linewidth=6, alpha=0.6,
                solid_capstyle="butt")
        ax.plot([row["rating"]], [y], "o", color=ARENA_COLORS[model], markersize=9)
    ax.set_title(f"judged by the {judge_name}")
    ax.set_xlabel(f"Bradley-Terry rating ({LEVEL:.0%} interval)")
axes[0].set_yticks(range(len(arena_order)), arena_order)
fig.suptitle(f"The course's models on {len(arena_prompts)} held-out questions")
plt.show()

# %% [markdown]
# The two leaderboards side by side: rank 1 is the best, and a positive rank change means the reward
# model puts the model lower than the gold judge does.

# %%
rank_table = scorecard.compare_rankings(arena_ratings["gold judge"], arena_ratings["reward model"],
                                        names=("judge", "RM"))
arena_tau = scorecard.kendall_tau(arena_ratings["gold judge"]["rating"], arena_ratings["reward model"]["rating"])
arena_agree = (rank_table["rank change"] == 0).all()
gap_rm = arena_ratings["reward model"]["rating"]
r_judge = arena_ratings["gold judge"]["rating"].round(6)          # rounded: equal ratings are a tie
r_rm = arena_ratings["reward model"]["rating"].round(6)
opposite = [f"{a} vs {b}" for i, a in enumerate(r_judge.index) for b in r_judge.index[i + 1:]
            if (r_judge[a] - r_judge[b]) * (r_rm[a] - r_rm[b]) < 0]       # strictly opposite orders
print(f"Kendall's tau between the two rankings: {arena_tau:+.2f}; "
      + ("the two judges rank the models in the same order" if arena_agree else
         "the judges order these pairs oppositely: " + ", ".join(opposite) if opposite else
         "no pair is ordered oppositely; the rank change of " + ", ".join(rank_table.index[rank_table["rank change"] != 0])
         + " comes from a tie under one judge"))
for judge_name, arena_table in arena_ratings.items():
    best_trained = arena_table.drop("expert")["rating"].idxmax()
    lead = arena_table.loc["expert", "rating"] - arena_table.loc[best_trained, "rating"]
    apart = (arena_table.loc["expert", "lower"] > arena_table.loc[best_trained, "upper"]
             or arena_table.loc[best_trained, "lower"] > arena_table.loc["expert", "upper"])
    verdict = ("the expert answers are rated above it" if lead > 0 else "it is rated above the expert answers")
    print(f"{judge_name}: expert answers minus the best trained model ({best_trained}): {lead:+.0f} points; "
          f"{verdict}, {'and the intervals are apart' if apart else 'but the intervals overlap'}")
for judge_name, arena_table in arena_ratings.items():
    overlapping = [f"{hi} / {lo}" for hi, lo in zip(arena_table.index, arena_table.index[1:])
                   if arena_table.loc[hi, "lower"] <= arena_table.loc[lo, "upper"]]
    print(f"{judge_name}: neighbours with overlapping intervals: {', '.join(overlapping) or 'none'}")
if "PPO" in gap_rm.index:
    rm_table = arena_ratings["reward model"]
    ppo_apart = (rm_table.loc["PPO", "lower"] > rm_table.loc["expert", "upper"]
                 or rm_table.loc["expert", "lower"] > rm_table.loc["PPO", "upper"])
    print(f"reward model rates PPO above the expert answers: {'yes' if gap_rm['PPO'] > gap_rm['expert'] else 'no'}, "
          f"by {gap_rm['PPO'] - gap_rm['expert']:+.0f} points, "
          + ("outside the intervals" if ppo_apart else "inside the intervals (not significant)"))
rank_table.round(1)

# %% [markdown]
# **What it means.** The printed lines compare the two judges twice: on the *order* (Kendall's tau,
# and the pairs they order oppositely) and on the *distances* (how far each judge puts the expert
# answers above the best trained model, and whether their intervals are apart). Here the two judges
# agree on the order: both put the expert answers first, then PPO, SFT and the base model (Kendall's
# tau of +1). They disagree on the distances. The gold judge separates every pair of neighbours (no
# two neighbouring intervals overlap): it puts the expert answers ahead of every trained model, and
# PPO ahead of SFT, although the intervals of PPO and SFT are apart only just (the printed table). The
# reward model also separates PPO from SFT with the intervals apart, but puts PPO and the expert
# answers close together, a few points apart inside overlapping intervals: on its scale these
# battles do not tell PPO's answers from the expert answers.
# On the same battles, the reward model also gives the base model a much higher win rate than the
# gold judge does, and the expert answers a lower one (the win-rate columns), although the gold
# judge scores the base model's answers close to zero (the mean scores at the start of this
# section). The gold judge checks the facts of each case, which the base model almost always gets
# wrong and the trained models get wrong on some questions; the reward model, trained on pairs that
# differ in one flaw, misses part of what makes an answer wrong (chapter 3 measured its held-out
# accuracy flaw by flaw: it ranks only about half of the pairs with a repeated sentence correctly,
# and prefers the right dose to a wrong one by a hair). That is why the reward model is called a
# **proxy**: it is the judge PPO optimises in chapter 5, so every distance it misjudges is an
# opening for the policy to please the proxy instead of the pharmacist (reward hacking, chapter 6).
# The last printed line checks the clearest sign of it, a reward model that rates the PPO policy
# above the expert answers (over-optimisation: Gao, Schulman & Hilton, Scaling Laws for Reward Model
# Overoptimization, ICML 2023). Here the reward model does not: it rates PPO a few points below the
# expert answers, inside the intervals, and its mean score for PPO's answers stays just below its
# mean for the expert answers (the means at the start of this section). These battles therefore do
# not show over-optimisation; they show a reward model that sees almost no gap between PPO and the
# expert answers where the gold judge sees a clear one. That disagreement, on PPO against the expert
# answers, is the one to watch. Chapter 7 runs this arena again with every stage and with the
# ablations, and adds intervals to every metric.
#
# The gold-judge arena also shows the pitfall of the MLE. The check printed above found that the
# expert answers never lose a battle: against every other model they win or tie. Their rating is
# finite only because a tie counts as half a win for each side. Drop the ties, as some arenas do,
# and the expert answers win every battle they play: the MLE no longer exists, and the number
# printed for them would be the prior's, a lower bound and nothing more (the last check of that
# cell, on the same battles without ties).
#
# Two more lessons from this chapter carry over. The intervals come from resampling the *battles*,
# which share questions, so they are somewhat too narrow (resampling whole questions, as chapter 7
# does for its scorecard, is the more careful choice). And ratings from two different judges are
# two different scales: compare their orders and which gaps their intervals resolve, never their
# raw points.

# %% [markdown]
# ## Try it
#
# **Expected score.** Move the scale $s$ and the gap. Before you move it, predict: at $s = 200$, what
# expected score does a 200-point lead give? What happens to the curve as $s$ becomes tiny?

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
expected_score_widget()

# %% [markdown]
# **K, matches and scale.** The widget simulates battles among the five models, draws the online
# Elo ratings match by match (solid) and the Bradley-Terry fit of the same battles (dashed). Try
# K = 0, K = 4 and K = 200; then 20 matches against 2000. Then halve the scale and halve K: the
# picture keeps its shape, because only K/s matters.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
elo_k_widget(STRENGTHS, seed=SEED)

# %% [markdown]
# ## Pitfalls seen in practice
#
# - **Order dependence.** Online Elo gives different leaderboards for the same games in a different
#   order (the 120 orders of the worked example, and the spread column above). A leaderboard that
#   moves when nobody played a new game is measuring its own bookkeeping.
# - **K too large.** A large K makes the ratings follow the last few games; it suits players whose
#   strength changes, not frozen model weights. A tiny K has the opposite problem: the ratings have
#   not converged when the games run out.
# - **Small gaps read without intervals.** The closest pair above is barely better than a coin
#   flip, and its intervals overlap until the arena is very large. Report intervals, and test
#   differences.
# - **Mixing judges.** Human experts, an LLM judge and this course's rubric judge prefer
#   different things. Pooling their battles rates the models under a blend that depends on how many
#   battles each judge happened to contribute; ratings from different judges, or from different
#   pools of models, are not on one scale.
# - **An undefeated (or winless) model.** When a model won every battle it played, the
#   Bradley-Terry MLE does not exist: its rating goes to infinity, and the finite number a library
#   prints is set by its prior. Small arenas, and arenas with a model far stronger than the rest
#   (expert answers judged by a strict rubric, say), produce this easily, in the data or in many of
#   its bootstrap resamples. Check for it before reading the rating (`mle_check` above), and report
#   such a rating as a bound.
# - **Ties.** Counting a tie as half a win is a convention. Ties that happen whatever the gap (for
#   example when both answers are equally wrong) pull every expected score towards ½, and the fitted
#   ratings shrink towards each other (computed below).
# - **Selection effects in which pairs meet.** Bradley-Terry corrects for the strength of each
#   opponent, but not for *which questions* each pair saw, nor for a model that only meets strong
#   opponents early and weak ones late (which biases online Elo). New models that play few, recent
#   games carry the widest intervals. Sample pairs and questions at random, or at least report how.
# - **The move away from online Elo.** Chatbot Arena started with online Elo (K = 4) and in
#   December 2023 switched to the Bradley-Terry MLE with bootstrap intervals because of order
#   dependence and unstable ratings (Chiang et al. 2023 blog; Chiang et al. 2024). Treat an "Elo"
#   on a modern leaderboard as a Bradley-Terry rating on the Elo scale.
#
# Ties, measured: the same true ratings, a large arena, with and without `TIE_RATE` random ties.

# %%
n_big = BATTLE_COUNTS[-1]
tie_rows = {}
for rate in (0.0, TIE_RATE):
    arena = simulate_battles(STRENGTHS, n_big, seed=SEED, tie_rate=rate, scale=SCALE, base=BASE)
    mle_check(arena, f"tie rate {rate:.0%}")
    tie_rows[f"tie rate {rate:.0%}"] = bradley_terry_ratings(arena, scale=SCALE, base=BASE, init=INIT)[MODELS]
ties = pd.DataFrame(tie_rows)
ties["truth"] = truth[MODELS]
span = ties.max() - ties.min()
print(f"{n_big} battles; distance from best to worst model: "
      + ", ".join(f"{col} {span[col]:.0f}" for col in ties.columns)
      + f" (ratio {span.iloc[1] / span.iloc[0]:.2f})")
ties.round(1)

# %% [markdown]
# ## Exercises
#
# Each exercise has a function for you to complete and a `check_...` call (from
# `course_utils.exercises`) that compares your function with `course_utils.elo` on hand-made cases,
# extreme ones included, and prints whether it passed (until you have written it, it says so).
# Replace `raise NotImplementedError` with your code and run the cell again; the solutions are in
# the folded blocks below each exercise.

# %% [markdown]
# **Exercise 1 (the update).** Write `my_elo_update(r_a, r_b, score_a, k)` with $s = 400$,
# $b = 10$, returning the two new ratings. Then use it by hand on match 3 of the worked example and
# compare with the match-history table.

# %%
def my_elo_update(r_a, r_b, score_a, k=32):
    """Return (new r_a, new r_b) after one match; score_a is 1, 0.5 or 0."""
    raise NotImplementedError  # replace with your own code


_ = check_elo_update(my_elo_update)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_elo_update(r_a, r_b, score_a, k=32):
#     e_a = 1 / (1 + 10 ** ((r_b - r_a) / 400))
#     change = k * (score_a - e_a)
#     return r_a + change, r_b - change
# ```
# </details>
#
# **Exercise 2 (what 400 and 10 mean).** Write `points_for_odds(odds, scale=400, base=10)`: the
# rating lead that gives A the odds `odds` to 1. Then answer without code: how many points is 3:1?
# What does the function return for odds below 1, and why?

# %%
def points_for_odds(odds, scale=400, base=10):
    """The rating gap R_A - R_B at which E_A / E_B = odds."""
    raise NotImplementedError  # replace with your own code


_ = check_points_for_odds(points_for_odds)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# import math
#
# def points_for_odds(odds, scale=400, base=10):
#     return scale * math.log(odds, base)   # odds = base ** (gap / scale)
# ```
# 3:1 is $400 \log_{10} 3 \approx 191$ points. Odds below 1 give a negative gap: A is the underdog.
# </details>
#
# **Exercise 3 (the likelihood).** Write `my_log_likelihood(battles, ratings)`: the Bradley-Terry
# log-likelihood $\sum_t [S_t \log E_t + (1 - S_t)\log(1 - E_t)]$ of a battle table under a dict of
# ratings ($s = 400$, $b = 10$, ties $S_t = ½$). Then evaluate it on the worked example at the
# starting ratings and at the final Elo ratings: which explains the five results better?

# %%
def my_log_likelihood(battles, ratings):
    """Sum over the rows of S log E_A + (1 - S) log(1 - E_A), natural log."""
    raise NotImplementedError  # replace with your own code


_ = check_log_likelihood(my_log_likelihood)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# import math
#
# def my_log_likelihood(battles, ratings):
#     total = 0.0
#     for a, b, winner in battles[["model_a", "model_b", "winner"]].itertuples(index=False):
#         s = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[winner]
#         e = 1 / (1 + 10 ** ((ratings[b] - ratings[a]) / 400))
#         total += s * math.log(e) + (1 - s) * math.log(1 - e)
#     return total
# ```
# </details>
#
# The checkers compare with the course's own functions, so as a sanity check those pass:

# %%
_ = check_elo_update(elo_update)
_ = check_log_likelihood(bt_log_likelihood)

# %% [markdown]
# **Exercise 4 (think).** A colleague reports that a new pharmacy assistant is rated 1018 against
# 1004 for the current one, after 300 battles judged by an LLM judge, while the old leaderboard was
# judged by pharmacists. List three reasons not to switch yet, using this chapter's terms.
#
# ## Summary
#
# - Elo predicts $E_A = 1/(1 + 10^{(R_B - R_A)/400})$: a 400-point lead is 10:1 odds. After a match
#   both ratings move by $K(S_A - E_A)$, zero-sum.
# - In the worked example PharmGPT-v1, ClinicalAI-v3 and MedLLM-v2 end at the ratings printed in the
#   match-history section; every step can be checked with a calculator.
# - Online Elo is stochastic gradient ascent with learning rate proportional to K: small K is slow,
#   large K is noisy, and the result depends on the order of the games.
# - The Bradley-Terry MLE fits all battles at once, is the same for every order, and is what
#   modern leaderboards report on the Elo scale. It does not exist when a model won (or lost) every
#   battle it played: check for that, and report such a model's rating as a bound set by the prior.
# - Bootstrap intervals say which rankings the data supports; they shrink like $1/\sqrt{n}$, so
#   small gaps need many battles.
#
# Part 2 starts with chapter 5: PPO uses the reward model of chapter 3 to improve the SFT policy,
# and the ratings of this chapter are one way to tell whether it worked.
#
# ## References
#
# - Bradley, R. A. & Terry, M. E. (1952). Rank analysis of incomplete block designs: I. The method
#   of paired comparisons. *Biometrika* 39(3/4), 324-345.
# - Chiang, W.-L., Li, T., Gonzalez, J. E. & Stoica, I. (2023). Chatbot Arena: New models & Elo
#   system update. LMSYS blog, 7 December 2023, https://lmsys.org/blog/2023-12-07-leaderboard/
# - Chiang, W.-L., Zheng, L., Sheng, Y., et al. (2024). Chatbot Arena: An open platform for
#   evaluating LLMs by human preference. *ICML 2024*, arXiv:2403.04132.
# - Efron, B. (1979). Bootstrap methods: another look at the jackknife. *The Annals of Statistics*
#   7(1), 1-26.
# - Elo, A. E. (1978). *The Rating of Chessplayers, Past and Present*. Arco, New York.
# - Ford, L. R. Jr. (1957). Solution of a ranking problem from binary comparisons. *The American
#   Mathematical Monthly* 64(8), 28-33.
# - Gao, L., Schulman, J. & Hilton, J. (2023). Scaling laws for reward model overoptimization.
#   *ICML 2023*.
# - Zermelo, E. (1929). Die Berechnung der Turnier-Ergebnisse als ein Maximumproblem der
#   Wahrscheinlichkeitsrechnung. *Mathematische Zeitschrift* 29, 436-460.
