# %% [markdown]
# # Chapter 8 · Beyond PPO: DPO, GRPO and best-of-n
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/08_beyond_ppo.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/08_beyond_ppo.ipynb)
#
# **Part 2 of the course · after the pipeline** (pretraining → SFT → reward model → PPO → **alternatives**)
#
# Chapter 5 aligned the SFT model with PPO, the recipe of InstructGPT (Ouyang et al. 2022): sample
# answers, score them with the reward model, update the policy with a clipped surrogate, a value head
# and a KL penalty. It is the most complicated stage of the pipeline: four networks in
# memory (policy, reference, reward model, value head), sampling inside the training loop, and a
# dozen knobs. This chapter takes three widely used
# ways around it, runs each on the **same** SFT model, preference data, reward model and gold judge,
# and puts them side by side:
#
# * **DPO** (direct preference optimisation, Rafailov et al. 2023) trains on the preference pairs
#   directly: no reward model, no sampling, one loss that looks like chapter 3's;
# * **GRPO** (group relative policy optimisation, Shao et al. 2024) keeps the reward model and the
#   sampling but drops the value head: each answer is compared with its siblings;
# * **best-of-n** (Nakano et al. 2021; Gao et al. 2023) trains nothing: sample n answers, keep the one
#   the reward model likes best.
#
# **You will learn to**
# 1. derive the DPO loss from chapter 5's optimum $\pi^*(y) \propto \pi_\text{ref}(y)\, e^{r(y)/\beta}$
#    and explain every symbol;
# 2. compute the DPO loss of one preference pair by hand, and read a DPO training log (including the
#    pitfall of both log-probabilities falling);
# 3. compute group-relative advantages by hand and say why GRPO needs no value head;
# 4. state what best-of-n costs, in samples and in KL ($\log n - \tfrac{n-1}{n}$);
# 5. compare all methods on held-out questions with intervals, on a gold-versus-KL frontier, and say
#    which differences the data supports.
#
# **Where this sits.**
#
# | Method | Trained on | Needs a reward model? | Samples while training? | Value head? | Output |
# |---|---|---|---|---|---|
# | 2. SFT | expert demonstrations | no | no | no | SFT policy $\pi_\text{ref}$ |
# | 5. PPO | its own answers, scored by $r_\phi$ | yes | yes | yes | PPO policy |
# | **8. DPO** | **the preference pairs of chapter 3** | **no** | **no** | **no** | **DPO policy** |
# | **8. GRPO** | **its own answers, in groups, scored by $r_\phi$** | **yes** | **yes** | **no** | **GRPO policy** |
# | **8. Best-of-n** | **nothing (inference only)** | **yes, at answer time** | **n per question** | **no** | **SFT + a filter** |
#
# > **Educational material, not medical advice.** The pharmaceutical cases are simplified teaching
# > examples following UK guidance (the BNF, MHRA safety advice, NICE guidelines), and the models here
# > are tiny and often wrong. Never use them for decisions about real patients; ask a pharmacist or
# > prescriber.

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
SEED = 0
CHECKPOINT_DIR = None               # None: the committed checkpoints and caches in data/checkpoints/
MAX_NEW_TOKENS = 112           # longest answer, as in chapters 5-7
# DPO
WORKED_PAIR = "PREF-MON-03-4"  # the worked example: gentamicin trough level, 1 mg/L against a tenfold 10 mg/L
DPO_BETA = 0.1                 # β of the worked example and of the live run (the reference run's value)
LIVE_DPO_STEPS = 6             # steps of the live DPO run
LIVE_DPO_BATCH = 16            # pairs per step
LIVE_DPO_LR = 1e-4
# GRPO
GROUP_SIZE = 4                 # G: answers per prompt in the worked example and the live run
LIVE_GRPO_ITERATIONS = 4
LIVE_GRPO_BATCH = 8            # answers per iteration (two prompts x G)
GRPO_KL_COEF = 0.04            # β of the k3 term
GRPO_LR = 1.5e-4
# the DPO widget: the five candidate answers of chapter 5
CASE_ID = "CON-01"             # metformin in liver cirrhosis
CANDIDATE_FLAWS = ["no_escalation", "missing_key_fact", "unsafe_claim", "vague"]  # plus the expert answer
BANDIT_BETA = 1.0              # β of the candidate-answer demonstration
BANDIT_STEPS = 300
# the side-by-side comparison
LEVEL = 0.95                   # confidence level of the paired differences (the cached intervals are 95 %)
BOOTSTRAP_ROUNDS = 1000
SHOW_ID = "CON-01"             # the held-out question shown in full

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import beyond, checkpoints, data, dpo, grpo, ppo, reward
from course_utils.bestofn import bon_kl
from course_utils.exercises import check_best_of_n_mean, check_dpo_margin, check_group_advantages
from course_utils.losses import dpo_loss
from course_utils.paths import CHECKPOINT_DIR as COMMITTED_CHECKPOINTS
from course_utils.plotting import COLORS, STAGE_COLORS, smooth, use_course_style
from course_utils.scorecard import paired_difference

use_course_style()
pd.set_option("display.width", 160)
pd.set_option("display.max_colwidth", 80)

ckpt = COMMITTED_CHECKPOINTS if CHECKPOINT_DIR is None else Path(CHECKPOINT_DIR)
tok = checkpoints.load_tokenizer(ckpt)
sft = checkpoints.load("sft", ckpt, dtype="float64")         # π_ref, in double precision: what the book
dpo_policy = checkpoints.load("dpo", ckpt, dtype="float64")  # prints from it is the same on every CPU
rm = reward.load_reward_model(ckpt, dtype="float64")
sft32, rm32 = checkpoints.load("sft", ckpt), reward.load_reward_model(ckpt)   # float32: the live runs train these
cache = beyond.load_beyond_cache(ckpt)                             # the tables make checkpoints computed
scenarios = {s["id"]: s for s in data.load_scenarios()}
prefs = data.load_preferences()
train_pairs = beyond.fitting_pairs(tok, [p for p in prefs if p["split"] == "train"], sft.config.max_len)
test_pairs = beyond.fitting_pairs(tok, [p for p in prefs if p["split"] == "test"], sft.config.max_len)
eval_prompts = data.load_eval_prompts()
METHOD_COLORS = {"SFT": STAGE_COLORS["sft"], "PPO": STAGE_COLORS["ppo"], "DPO": COLORS["purple"],
                 "GRPO": COLORS["orange"], "best-of-n": COLORS["vermillion"]}
print(f"policy: TinyGPT with {sft.n_params:,} parameters; reward model: {rm!r}")
print(f"{len(train_pairs)} training and {len(test_pairs)} held-out preference pairs; "
      f"{len(eval_prompts)} held-out questions")

# %% [markdown]
# ## 1. DPO: the policy is secretly a reward model
#
# ### From chapter 5's optimum to a loss on preference pairs
#
# Chapter 5 maximised $\mathbb{E}_{y \sim \pi}[r(x, y)] - \beta\, \mathrm{KL}(\pi \,\|\, \pi_\text{ref})$ and
# solved it exactly on five candidate answers:
#
# $$\pi^*(y \mid x) = \frac{1}{Z(x)}\, \pi_\text{ref}(y \mid x)\, \exp\!\big(r(x, y) / \beta\big),
# \qquad Z(x) = \sum_{y'} \pi_\text{ref}(y' \mid x)\, \exp\!\big(r(x, y') / \beta\big).$$
#
# Rafailov et al. (2023) read this equation backwards. Take logarithms and solve for the reward:
#
# $$r(x, y) = \beta \log \frac{\pi^*(y \mid x)}{\pi_\text{ref}(y \mid x)} + \beta \log Z(x).$$
#
# Every reward function has an optimal policy, and that policy *defines* the reward up to the term
# $\beta \log Z(x)$, which depends on the question but not on the answer. Chapter 3 trained the reward
# model with the Bradley-Terry model, $P(y_c \succ y_r \mid x) = \sigma\big(r(x, y_c) - r(x, y_r)\big)$.
# Put the reward above into it: $\beta \log Z(x)$ appears in both terms and **cancels**, and only the
# policy is left. Replace the unknown $\pi^*$ by the policy $\pi_\theta$ we train, and maximise the
# likelihood of the preference data:
#
# $$\mathcal{L}_\text{DPO}(\theta) = -\frac1n \sum_{i=1}^{n} \log \sigma\Big(\underbrace{\beta \log \frac{\pi_\theta(y_{c,i} \mid x_i)}{\pi_\text{ref}(y_{c,i} \mid x_i)}
# - \beta \log \frac{\pi_\theta(y_{r,i} \mid x_i)}{\pi_\text{ref}(y_{r,i} \mid x_i)}}_{u_i}\Big)$$
#
# | symbol | meaning | here |
# |---|---|---|
# | $x_i$, $y_{c,i}$, $y_{r,i}$ | a question, its chosen and its rejected answer | chapter 3's pairs, oriented by the annotators' majority |
# | $\pi_\theta$ | the policy being trained | starts as a copy of the SFT model |
# | $\pi_\text{ref}$ | the frozen reference | the SFT model |
# | $\log \pi(y \mid x)$ | the log-probability of the **whole** answer, $\sum_t \log \pi(y_t \mid x, y_{<t})$ (`<eos>` included) | `dpo.sequence_logprobs` |
# | $\beta$ | the KL coefficient of the objective DPO solves | `DPO_BETA` |
# | $\hat r(y) = \beta \log \frac{\pi_\theta(y \mid x)}{\pi_\text{ref}(y \mid x)}$ | the **implicit reward**: what the policy "thinks" an answer is worth | 0 for every answer at the start |
# | $u_i = \hat r(y_{c,i}) - \hat r(y_{r,i})$ | the implicit-reward margin of pair $i$ | $u_i > 0$: the pair is ranked right |
# | $\sigma(u) = 1/(1 + e^{-u})$ | the logistic function | |
# | $n$ | pairs in a batch | |
#
# It is chapter 3's Bradley-Terry loss with the reward model replaced by the policy's own
# log-probability ratios. The gradient with respect to the answers' log-probabilities is
#
# $$\frac{\partial \mathcal{L}}{\partial \log \pi_\theta(y_c)} = -\frac{\beta\, \sigma(-u)}{n}, \qquad
# \frac{\partial \mathcal{L}}{\partial \log \pi_\theta(y_r)} = +\frac{\beta\, \sigma(-u)}{n}:$$
#
# raise the chosen answer, lower the rejected one, with a weight $\sigma(-u)$ that is large for a pair
# ranked the wrong way and vanishes for a pair already ranked right by a wide margin. No sampling, no
# reward model, no value head: each step is one forward and backward pass of the policy on the pairs,
# plus one forward pass of the reference (`course_utils/dpo.py`).
#
# ### A worked example by hand
#
# One preference pair: the same answer about gentamicin monitoring, once with the right trough level
# and once with a tenfold error. Its four sequence log-probabilities come from the SFT model
# ($\pi_\text{ref}$) and from the reference DPO policy trained by `make checkpoints` ($\pi_\theta$),
# rounded to two decimals so you can follow with a calculator.

# %%
pair = next(p for p in prefs if p["id"] == WORKED_PAIR)
oriented = reward.orient_pairs([pair], "majority")[0]
lp_c, lp_r = dpo.pair_logprobs(dpo_policy, tok, [oriented])
ref_c, ref_r = dpo.pair_logprobs(sft, tok, [oriented])
logp = {name: round(float(v[0]), 2) for name, v in
        (("log π_θ(y_c)", lp_c), ("log π_θ(y_r)", lp_r), ("log π_ref(y_c)", ref_c), ("log π_ref(y_r)", ref_r))}
print(f"Q ({WORKED_PAIR}, flaw: {pair['flaw']}): {pair['prompt']}")
words_c, words_r = oriented["chosen"].split(), oriented["rejected"].split()
if len(words_c) == len(words_r):
    diff = [(a, b) for a, b in zip(words_c, words_r) if a != b]
    print(f"the two answers differ only in: {', '.join(f'{a!r} (chosen) vs {b!r} (rejected)' for a, b in diff)}")
else:
    print(f"chosen: {len(words_c)} words; rejected: {len(words_r)} words")
pd.Series(logp, name="nats").to_frame()

# %%
d_c = logp["log π_θ(y_c)"] - logp["log π_ref(y_c)"]              # log-ratio of the chosen answer
d_r = logp["log π_θ(y_r)"] - logp["log π_ref(y_r)"]              # log-ratio of the rejected answer
u = DPO_BETA * (d_c - d_r)
loss_hand = float(np.log1p(np.exp(-u)))
weight = float(1 / (1 + np.exp(u)))                               # σ(-u)
for name, tag, d in (("chosen:  ", "c", d_c), ("rejected:", "r", d_r)):
    print(f"{name} log π_θ - log π_ref = {logp[f'log π_θ(y_{tag})']:.2f} - ({logp[f'log π_ref(y_{tag})']:.2f}) = "
          f"{d:+.2f} nats -> implicit reward β x {d:+.2f} = {DPO_BETA * d:+.3f}")
print(f"u = β (Δ_c - Δ_r) = {DPO_BETA} x ({d_c:+.2f} - ({d_r:+.2f})) = {u:+.3f}")
print(f"loss = -log σ(u) = log(1 + exp(-u)) = log(1 + {np.exp(-u):.4f}) = {loss_hand:.4f}  (log 2 = {np.log(2):.4f}"
      " before training)")
print(f"gradient weight σ(-u) = {weight:.4f}: ∂L/∂log π_θ(y_c) = -β σ(-u) = {-DPO_BETA * weight:+.4f}, "
      f"∂L/∂log π_θ(y_r) = {DPO_BETA * weight:+.4f}")
four = [np.array([logp[k]]) for k in ("log π_θ(y_c)", "log π_θ(y_r)", "log π_ref(y_c)", "log π_ref(y_r)")]
lib_loss, lib_dc, lib_dr = dpo_loss(*four, DPO_BETA)
assert np.isclose(lib_loss, loss_hand) and np.isclose(lib_dc[0], -DPO_BETA * weight)
print(f"losses.dpo_loss on the same four numbers: {lib_loss:.4f}, gradients {lib_dc[0]:+.4f} and {lib_dr[0]:+.4f}")
rc, rr = rm.score(tok, pair["prompt"], [oriented["chosen"], oriented["rejected"]])
print(f"for comparison, chapter 3's reward model: r(y_c) - r(y_r) = {rc:.2f} - ({rr:.2f}) = {rc - rr:+.2f}")

# %% [markdown]
# Read the signs before the sizes. The policy did not have to make the chosen answer *more* likely
# than the reference did; DPO only asks that the chosen answer's log-ratio exceed the rejected
# one's. The implicit rewards are on a different scale from the reward model's scores (they are
# log-ratios times β), but both are Bradley-Terry rewards of the same pair, and only their
# differences mean anything.
#
# ### A live DPO run
#
# A few steps from the SFT model on `LIVE_DPO_STEPS` x `LIVE_DPO_BATCH` training pairs, to watch the
# code run (the exact numbers depend on your processor: the cell's output is not compared).

# %% tags=["nbval-ignore-output"]
live_pairs = [train_pairs[i] for i in np.random.default_rng(SEED).permutation(len(train_pairs))[
    :LIVE_DPO_STEPS * LIVE_DPO_BATCH]]
live_cfg = dpo.DPOConfig(epochs=1, batch_size=LIVE_DPO_BATCH, lr=LIVE_DPO_LR, beta=DPO_BETA, warmup=2,
                         eval_every=0, seed=SEED)
start = time.perf_counter()
_, live_dpo_log = dpo.train_dpo(sft32.copy(), sft32, tok, live_pairs, live_cfg, desc="live DPO")
print(f"{len(live_dpo_log)} steps in {time.perf_counter() - start:.1f} s")
live_dpo_log[["step", "loss", "accuracy", "margin", "chosen_logp_change", "rejected_logp_change"]].round(3)

# %% [markdown]
# ### The reference DPO run
#
# `make checkpoints` trained the reference policy (`beyond.build_beyond_cache`): `dpo.DPOConfig`'s
# defaults, two epochs over every training pair, with the held-out pairs evaluated on the way. Its
# log was saved next to it (`checkpoints.load_log("dpo")`).

# %%
dpo_log = checkpoints.load_log("dpo", ckpt)
settings = cache["settings"]
dpo_settings = settings[settings["run"] == "dpo"].set_index("setting")["value"]
print("reference DPO run: " + ", ".join(f"{k} = {dpo_settings[k]}" for k in ("epochs", "batch_size", "lr", "beta",
                                                                            "label")))
ev = dpo_log.dropna(subset=["eval_loss"])
print(f"{len(dpo_log)} steps; held-out pairs: loss {ev['eval_loss'].iloc[0]:.3f} -> {ev['eval_loss'].iloc[-1]:.3f}, "
      f"accuracy {ev['eval_accuracy'].iloc[0]:.3f} -> {ev['eval_accuracy'].iloc[-1]:.3f} "
      f"(steps {int(ev['step'].iloc[0])} and {int(ev['step'].iloc[-1])})")
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
w = 5
axes[0].plot(dpo_log.step, dpo_log.loss, color=COLORS["purple"], alpha=0.35)
axes[0].plot(dpo_log.step, smooth(dpo_log.loss.to_numpy(), w), color=COLORS["purple"], label=f"training batch ({w})")
axes[0].plot(ev.step, ev.eval_loss, "o-", color=COLORS["black"], label="held-out pairs")
axes[0].axhline(np.log(2), color=COLORS["grey"], linestyle=":", label="log 2 (start)")
axes[0].set(title="DPO loss", xlabel="step")
axes[1].plot(dpo_log.step, smooth(dpo_log.accuracy.to_numpy(), w), color=COLORS["purple"], label="training batch")
axes[1].plot(ev.step, ev.eval_accuracy, "o-", color=COLORS["black"], label="held-out pairs")
axes[1].set(title="accuracy: share of pairs with u > 0", xlabel="step", ylim=(0, 1.02))
axes[2].plot(dpo_log.step, smooth(dpo_log.chosen_logp_change.to_numpy(), w), color=COLORS["green"], label="chosen")
axes[2].plot(dpo_log.step, smooth(dpo_log.rejected_logp_change.to_numpy(), w), color=COLORS["vermillion"],
             label="rejected")
axes[2].axhline(0, color=COLORS["black"], linewidth=0.8)
axes[2].set(title="log π_θ(y) - log π_ref(y), batch mean (nats)", xlabel="step")
for ax in axes:
    ax.legend(fontsize=9)
fig.suptitle("The reference DPO run (make checkpoints), moving averages over 5 steps")
plt.show()

# %% [markdown]
# The left two panels are chapter 3's curves again, because the loss is chapter 3's loss. The right
# panel is new, and section 6 comes back to it: it shows *how* the margin was won.
#
# ## 2. Best-of-n: alignment without training
#
# The cheapest use of a reward model: sample $n$ answers from the SFT model and return the one with
# the highest reward. The policy this defines, $\pi_n$, is never written down, yet its distance from
# the SFT model has a closed form. If no two answers tie, the chosen answer's reward quantile is the
# largest of $n$ uniform numbers, so $\pi_n(y) = n\, F(r(y))^{n-1}\, \pi_\text{ref}(y)$, with $F$ the
# distribution function of the reward under $\pi_\text{ref}$, and
#
# $$\mathrm{KL}(\pi_n \,\|\, \pi_\text{ref}) = \log n - \frac{n-1}{n}$$
#
# (Stiennon et al. 2020, appendix; an upper bound when answers can tie, Beirami et al. 2024;
# `bestofn.bon_kl`). It grows only like $\log n$; the price is paid in compute instead: $n$ samples and
# $n$ reward-model scores for every question, at answer time.
#
# `make checkpoints` sampled 64 answers per held-out question from the SFT model and scored each with
# the reward model and the gold judge (`beyond.bon_samples`). Best-of-n reads the first $n$ of them,
# so every $n$ from 1 to 64 comes from the same samples. The *oracle* column picks the answer the gold
# judge likes best instead: what a perfect reward model would choose.

# %%
curve = cache["curve"]
samples = cache["samples"]
curve_view = curve.rename(columns={"reward": "reward model", "gold": "gold judge", "gold_lower": "gold, lower",
                                   "gold_upper": "gold, upper", "gold_oracle": "gold of the oracle's choice",
                                   "words": "words", "kl_bound": "KL bound (nats)"}).set_index("n")
print(f"{samples['item'].nunique()} held-out questions x {samples['sample'].nunique()} SFT samples; "
      "interval: bootstrap 95 % over the questions")
curve_view.round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
n_all = np.arange(1, samples["sample"].nunique() + 1)
axes[0].plot(curve.n, curve.reward, "o-", color=STAGE_COLORS["reward"])
axes[0].set(title="reward-model score of the chosen answer", xlabel="n", xscale="log")
axes[1].fill_between(curve.n, curve.gold_lower, curve.gold_upper, color=COLORS["vermillion"], alpha=0.2,
                     label="95 % interval")
axes[1].plot(curve.n, curve.gold, "o-", color=COLORS["vermillion"], label="best-of-n (reward model picks)")
axes[1].plot(curve.n, curve.gold_oracle, "s--", color=COLORS["black"], label="oracle (gold judge picks)")
axes[1].set(title="gold judge of the chosen answer", xlabel="n", xscale="log")
axes[1].legend(fontsize=9)
axes[2].plot(n_all, bon_kl(n_all), color=COLORS["blue"])
axes[2].plot(curve.n, curve.kl_bound, "o", color=COLORS["blue"])
axes[2].set(title="KL(π_n ‖ π_ref) ≤ log n - (n-1)/n (nats)", xlabel="n", xscale="log")
for ax in axes:
    ax.set_xticks(curve.n, [str(v) for v in curve.n])
fig.suptitle("Best-of-n over the SFT model's samples, 64 held-out questions")
plt.show()
first, last = curve.iloc[0], curve.iloc[-1]
print(f"n = {int(first.n)} -> {int(last.n)}: reward {first.reward:+.2f} -> {last.reward:+.2f}, gold "
      f"{first.gold:.3f} -> {last.gold:.3f}, oracle gold {first.gold_oracle:.3f} -> {last.gold_oracle:.3f}, "
      f"KL bound {first.kl_bound:.2f} -> {last.kl_bound:.2f} nats")
print(f"the reward model's choice reaches {last.gold / last.gold_oracle:.0%} of the oracle's gold score at n = "
      f"{int(last.n)}")
# every n against n = 1 on the same questions: paired differences of the chosen answers' scores
picks = pd.concat([beyond.bon_choice(samples, n).assign(stage=f"n = {n}") for n in curve.n], ignore_index=True)
rows = []
for n in curve.n[1:]:
    d = paired_difference(picks, f"n = {n}", "n = 1", metrics=["gold", "reward"], level=LEVEL,
                          rounds=BOOTSTRAP_ROUNDS, seed=SEED)
    rows.append({"n": n, **{f"{m} - at n = 1": d.loc[m, "diff"] for m in ("gold", "reward")},
                 "gold, lower": d.loc["gold", "lower"], "gold, upper": d.loc["gold", "upper"]})
vs_one = pd.DataFrame(rows).set_index("n")
peak = int(curve.loc[curve.gold.idxmax(), "n"])
up = ", ".join(str(n) for n in vs_one.index[vs_one["gold, lower"] > 0])
down = ", ".join(str(n) for n in vs_one.index[vs_one["gold, upper"] < 0])
print(f"gold is highest at n = {peak}; paired {LEVEL:.0%} intervals against n = 1 support a gold gain "
      f"{'at n = ' + up if up else 'at no n'} and a gold loss {'at n = ' + down if down else 'at no n'}; "
      f"reward above n = 1 at every n > 1: "
      f"{bool((vs_one['reward - at n = 1'] > 0).all())}")
vs_one.round(3)

# %% [markdown]
# Compare the two gold curves: the gap between the reward model's choice and the oracle's is the
# reward model's error, made visible by selection. Gao et al. (2023) measured this on large models:
# with a learned proxy, the gold score of best-of-n first rises with $n$ and then falls, because a
# larger $n$ finds more answers that exploit the proxy's blind spots (over-optimisation, chapter 6).
# Here the reward model's score of the chosen answer rises with every $n$, while the gold score rises
# only at first: it is highest at the $n$ printed above and lower at every larger $n$ in the table,
# though not steadily, ending at its lowest since the peak at $n = 64$, still above plain sampling
# ($n = 1$): a mild form of the rise-then-fall shape Gao et al. describe. The paired intervals above support only
# the rise: against $n = 1$ they show a gold gain at the $n$ printed there and no gold loss at any $n$,
# so beyond that, selection bought reward-model score and no gold score we can measure. The oracle
# shows that good answers are among the samples; the gap between the reward model's choice and the
# oracle's widens almost steadily with $n$, from nothing at $n = 1$ to its largest at $n = 64$.
#
# ## 3. GRPO: PPO without a critic
#
# PPO needs a value head to tell whether an answer was better than expected. GRPO (Shao et al. 2024)
# asks the question *empirically*: sample $G$ answers to the same question, score them all, and
# compare each with its siblings:
#
# $$\hat A_i = \frac{r_i - \operatorname{mean}(r_1, \dots, r_G)}{\operatorname{std}(r_1, \dots, r_G) + \varepsilon}$$
#
# | symbol | meaning | here |
# |---|---|---|
# | $G$ | the group size: answers sampled per question | `GROUP_SIZE` here; the reference run's is printed in its section |
# | $r_i$ | the reward model's score of answer $i$ of the group | chapter 3's reward model |
# | $\hat A_i$ | the group-relative advantage, given to **every token** of answer $i$ | `grpo.group_advantages` |
# | std, $\varepsilon$ | the population standard deviation of the group's scores, and $10^{-4}$ | a group of equal scores gets $\hat A = 0$ |
#
# The update is PPO's clipped surrogate with $\hat A_i$ in place of GAE's advantages, plus a KL
# term in the loss (the "k3" estimate, with weight β) instead of a KL penalty in the reward:
#
# $$\mathcal{L} = \big\langle \max(-\hat A_i \rho_t,\ -\hat A_i\, \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)) \big\rangle
# + \beta \big\langle \tfrac{\pi_\text{ref}}{\pi_\theta} - 1 - \log\tfrac{\pi_\text{ref}}{\pi_\theta} \big\rangle$$
#
# with $\rho_t = \pi_\theta(y_t)/\pi_\text{old}(y_t)$ as in chapter 5 and $\langle\cdot\rangle$ the mean over the answer
# tokens. No value head means one network less to train and to keep in memory; the price is $G$
# samples per question, and a group whose answers all score alike teaches nothing.
#
# ### Group-relative advantages by hand
#
# The first `GROUP_SIZE` of the SFT model's samples for one held-out question, with their
# reward-model scores from the cache, rounded to two decimals:

# %%
show_item = next(i for i, p in enumerate(eval_prompts) if p["scenario_id"] == SHOW_ID)
group = samples[(samples["item"] == show_item) & (samples["sample"] < GROUP_SIZE)]
r_group = group["reward"].round(2).to_numpy()
mean_g, std_g = r_group.mean(), r_group.std()
adv_hand = (r_group - mean_g) / (std_g + 1e-4)
assert np.allclose(adv_hand, grpo.group_advantages(r_group, GROUP_SIZE))
print(f"Q ({SHOW_ID}): {eval_prompts[show_item]['prompt']}")
print(f"scores r = {r_group.tolist()}; mean = {mean_g:.4f}; "
      f"std = sqrt(mean((r - mean)^2)) = {std_g:.4f}")
print(f"answer 1: Â = ({r_group[0]:.2f} - {mean_g:.4f}) / ({std_g:.4f} + 0.0001) = {adv_hand[0]:+.4f}")
print(f"the advantages sum to {abs(adv_hand.sum()):.4f}: the group is its own baseline")
pd.DataFrame({"reward r_i": r_group, "r_i - mean": r_group - mean_g, "Â_i": adv_hand,
              "gold judge": group["gold"].to_numpy()},
             index=pd.Index(np.arange(1, GROUP_SIZE + 1), name="answer")).round(4)

# %% [markdown]
# ### A live GRPO run
#
# `LIVE_GRPO_ITERATIONS` iterations of `LIVE_GRPO_BATCH` answers (groups of `GROUP_SIZE`) on the
# RL prompts (`beyond.rl_prompts()`: two wordings of every case that no SFT demonstration used, the
# same prompts chapter 5's PPO trained on; never the held-out questions). Again a demonstration whose numbers depend on your
# processor. Watch the column `zero_std_groups`: the share of groups whose answers all received the same
# score, which get $\hat A = 0$ and teach nothing (section 6.4).

# %% tags=["nbval-ignore-output"]
live_grpo_cfg = grpo.GRPOConfig(iterations=LIVE_GRPO_ITERATIONS, batch_size=LIVE_GRPO_BATCH, group_size=GROUP_SIZE,
                                max_new_tokens=MAX_NEW_TOKENS, kl_coef=GRPO_KL_COEF, lr=GRPO_LR,
                                minibatch_size=LIVE_GRPO_BATCH, seed=SEED)
start = time.perf_counter()
_, live_grpo_log = grpo.train_grpo(sft32.copy(), sft32, rm32, tok, beyond.rl_prompts(), live_grpo_cfg,
                                   scenarios=scenarios, desc="live GRPO")
print(f"{len(live_grpo_log)} iterations in {time.perf_counter() - start:.1f} s")
live_grpo_log[["iteration", "score", "score_std", "zero_std_groups", "kl", "policy_loss", "length"]].round(3)

# %% [markdown]
# ### The reference GRPO run
#
# `make checkpoints` trained `grpo.GRPOConfig`'s defaults (printed below): as many answers per
# iteration as chapter 5's PPO run, in groups of 8, for half as many iterations at twice PPO's
# learning rate.

# %%
grpo_log = checkpoints.load_log("grpo", ckpt)
grpo_settings = settings[settings["run"] == "grpo"].set_index("setting")["value"]
print("reference GRPO run: " + ", ".join(f"{k} = {grpo_settings[k]}" for k in ("iterations", "batch_size",
                                                                             "group_size", "kl_coef", "lr")))
k = min(10, len(grpo_log) // 2)
G_ref = int(grpo_settings["group_size"])
grpo_log["distinct_per_group"] = grpo_log["distinct"] * G_ref        # distinct answers in a group of G
for col, name in (("score", "reward-model score"), ("judge", "gold judge of the samples"),
                  ("kl_exact", "KL per answer (nats)"), ("length", "answer tokens"),
                  ("distinct_per_group", f"distinct answers per {G_ref}"),
                  ("zero_std_groups", "groups with equal scores")):
    print(f"  {name:<27} first {k} iterations {grpo_log[col].head(k).mean():7.3f} -> last {k} "
          f"{grpo_log[col].tail(k).mean():7.3f}")
all_alike = int((grpo_log["zero_std_groups"] == 1).sum())
print(f"iterations on which every group had equal scores (no gradient from the advantages): {all_alike} of "
      f"{len(grpo_log)}; median distinct answers per group: {grpo_log['distinct_per_group'].median():.1f}")
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, (col, title, colour) in zip(axes, (("score", "reward-model score of the samples", STAGE_COLORS["reward"]),
                                           ("kl_exact", "KL(π ‖ π_ref) per answer (nats)", COLORS["vermillion"]),
                                           ("length", "answer length (tokens)", COLORS["blue"]))):
    ax.plot(grpo_log.iteration, grpo_log[col], color=colour, alpha=0.35)
    ax.plot(grpo_log.iteration, smooth(grpo_log[col].to_numpy(), 10), color=colour, label="moving average (10)")
    ax.set(title=title, xlabel="iteration")
axes[0].legend(fontsize=9)
fig.suptitle("The reference GRPO run (make checkpoints)")
plt.show()

# %% [markdown]
# The lines above show a run with little, but enough, to learn from. The RL prompts are wordings that no
# SFT demonstration contains, and on them the SFT model's samples differ only a little: the median group
# holds two distinct answers, and a share of the groups score all alike (a share that fell during the
# run; on some iterations, counted in the last line, every group did). Such groups have zero advantages and give no gradient from
# them. The other groups were enough: the reward-model score of GRPO's samples rose clearly, their KL to
# the SFT model grew from almost nothing to several nats, and their answers grew a little longer, while
# the gold judge's score of the same samples barely moved. GRPO climbed the proxy, and only an
# independent judge can say whether that helped. Section 4 measures what it did on the held-out
# questions.

# %% [markdown]
# ## 4. Side by side on the held-out questions
#
# Every method answers the held-out questions. The trained policies decode greedily (as in
# chapters 5 and 7); best-of-n returns its chosen sample. The gold judge scores every answer, with a
# bootstrap interval over the questions (`scorecard.scorecard`: the same resamples for every method);
# the reward model scores them too. The KL column is the price: for a trained policy the mean of
# $\sum_t [\log \pi(y_t) - \log \pi_\text{ref}(y_t)]$ over answers it samples at temperature 1, for
# best-of-n the bound $\log n - \frac{n-1}{n}$. Compute is counted in token positions passed
# through a network (policy, reference or reward model, padding not counted), never in seconds:
# training forward and backward (a backward pass costs about twice a forward one), and per
# question at answer time. `beyond.side_by_side` computed the table during `make checkpoints`.

# %%
summary = cache["summary"]
table = pd.DataFrame({
    "method": summary["method"], "setting": summary["setting"],
    "gold judge": summary["gold"],
    "gold 95 % interval": [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in zip(summary.gold_lower, summary.gold_upper)],
    "reward model": summary["reward"],
    "reward 95 % interval": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(summary.reward_lower, summary.reward_upper)],
    "KL (nats)": summary["kl"], "KL is": summary["kl_kind"],
    "words": summary["words"],
    "training fwd (M tokens)": summary["train_fwd_tokens"] / 1e6,
    "training bwd (M tokens)": summary["train_bwd_tokens"] / 1e6,
    "tokens per answer": summary["answer_tokens"],
})
table.round(3)

# %%
answers = cache["answers"]
stage_names = [m if m != "best-of-n" else f"best-of-{n}" for m, n in zip(summary["method"], summary["n"])]
rows = []
for stage in stage_names:
    if stage == "SFT":
        continue
    d = paired_difference(answers, stage, "SFT", metrics=["overall", "reward"], level=LEVEL, rounds=BOOTSTRAP_ROUNDS,
                          seed=SEED)
    for metric in ("overall", "reward"):
        lo, hi = d.loc[metric, "lower"], d.loc[metric, "upper"]
        rows.append({"method": stage, "score": "gold judge" if metric == "overall" else "reward model",
                     "difference to SFT": d.loc[metric, "diff"], "lower": lo, "upper": hi,
                     "supported": bool(lo > 0 or hi < 0)})
diffs = pd.DataFrame(rows)
for stage in stage_names[1:]:
    part = diffs[diffs["method"] == stage].set_index("score")
    print(f"{stage} - SFT: " + "; ".join(
        f"{score} {r['difference to SFT']:+.3f} [{r['lower']:+.3f}, {r['upper']:+.3f}] "
        f"{'excludes 0: supported' if r['supported'] else 'includes 0: not supported'}"
        for score, r in part.iterrows()))
for score in ("gold judge", "reward model"):
    part = diffs[diffs["score"] == score]
    up = part[part.supported & (part["difference to SFT"] > 0)]["method"].tolist()
    down = part[part.supported & (part["difference to SFT"] < 0)]["method"].tolist()
    rest = len(part) - len(up) - len(down)
    print(f"{score}: supported gains over SFT ({LEVEL:.0%} paired interval excludes 0): {', '.join(up) or 'none'}; "
          f"supported losses: {', '.join(down) or 'none'}; not supported by the {len(eval_prompts)} questions: "
          f"{rest} of the {len(part)} differences")
diffs.round(3)

# %%
fig, axes = plt.subplots(1, 2, figsize=(15, 5))
bon = summary[summary["method"] == "best-of-n"]
for ax, col, title in ((axes[0], "gold", "gold judge (mean, with interval)"),
                       (axes[1], "reward", "reward model (mean, with interval)")):
    ax.plot(curve.kl_bound, curve[col], "-", color=METHOD_COLORS["best-of-n"], alpha=0.5,
            label="best-of-n, n = 1 .. 64")
    for _, row in summary.iterrows():
        colour = METHOD_COLORS[row["method"]]
        label = row["method"] if row["method"] != "best-of-n" else f"best-of-{row['n']}"
        ax.errorbar(row["kl"], row[col], yerr=[[row[col] - row[f"{col}_lower"]], [row[f"{col}_upper"] - row[col]]],
                    fmt="o" if row["method"] != "best-of-n" else "s", color=colour, capsize=4, markersize=8)
        ax.annotate(label, (row["kl"], row[col]), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(xlabel="KL to the SFT model (nats per answer; best-of-n: the bound)", title=title,
           ylabel="gold judge overall (0-1)" if col == "gold" else "reward-model score")
axes[0].legend(loc="best", fontsize=9)
fig.suptitle("The frontier: what each method buys (up) for how far it moves from the SFT model (right)")
plt.show()
ranked = pd.DataFrame({"stage": stage_names, "gold": summary["gold"], "reward": summary["reward"]})
for col, name, fmt in (("gold", "gold judge", "{:.3f}"), ("reward", "reward model", "{:+.2f}")):
    order = ranked.sort_values(col, ascending=False, kind="stable")
    print(f"{name}, best first: " + ", ".join(f"{s} {fmt.format(v)}" for s, v in zip(order.stage, order[col])))
kl_gold = list(zip(stage_names, summary["kl"].round(3), summary["gold"].round(3)))
front = [s for s, kl, g in kl_gold
         if not any(k2 <= kl and g2 >= g and (k2 < kl or g2 > g) for _, k2, g2 in kl_gold)]
print("on the gold-KL frontier (no other point has at least the same gold score at no more KL): " + ", ".join(front))
gold_supported = diffs[(diffs["score"] == "gold judge") & diffs["supported"]]
print("gold differences to SFT that the paired intervals support: " + (", ".join(
    f"{m} {d:+.3f}" for m, d in zip(gold_supported["method"], gold_supported["difference to SFT"])) or "none"))

# %% [markdown]
# Read the two panels together. The right one is what each method optimised (or selected for); the
# left one is what we care about, which no method ever saw. Points far to the right paid a large KL;
# points high on the right panel but not on the left bought reward-model score that the gold judge
# does not confirm. Here the two rankings disagree: best-of-64 and best-of-16 top the reward model, but
# on the gold judge best-of-16 falls among the trained policies, barely above SFT, and best-of-64
# below the SFT model; plain sampling (best-of-1) is last on both. PPO is first on the gold judge and
# best-of-4 second, best-of-4 at several times the answer-time compute of a greedy answer. The three
# trained policies sit close together on the gold judge, at or a little above SFT; DPO has the
# smallest KL, the least training compute and the smallest reward-model gain of them, while PPO and
# GRPO bought much more reward-model score with a KL of one to a few nats, PPO at twice GRPO's
# training compute (twice as many iterations of the same size). PPO is a little ahead of GRPO on both
# scores at less than half GRPO's KL, by margins much smaller than the width of their intervals. The
# gold-KL frontier printed above holds SFT, PPO, DPO and best-of-4. Yet the paired intervals printed
# earlier support no gold gain over the SFT model for any method, PPO and best-of-4 included, and one
# gold loss: plain sampling (best-of-1), which scores below the SFT model's greedy
# answers.
#
# One question in full, every method's answer:

# %%
sub = answers[answers["eval_id"] == eval_prompts[show_item]["id"]]
print(f"Q ({SHOW_ID}): {eval_prompts[show_item]['prompt']}\n")
for stage in stage_names:
    row = sub[sub["stage"] == stage].iloc[0]
    print(f"{stage} (reward model {row['reward']:+.2f}, gold judge {row['overall']:.2f}):\n  {row['answer']}\n")
print(f"expert (the knowledge base): {data.expert_response(scenarios[SHOW_ID])}")
sft_answer = sub[sub["stage"] == "SFT"].iloc[0]["answer"]
same = [s for s in stage_names[1:] if sub[sub["stage"] == s].iloc[0]["answer"] == sft_answer]
print(f"\nanswers identical to the SFT model's greedy answer: {', '.join(same) or 'none'}; "
      f"answers the gold judge scores 0: {', '.join(sub[sub['overall'] == 0]['stage']) or 'none'}")

# %% [markdown]
# On this question every method returns the same answer: the SFT model's greedy answer, which is the
# expert answer word for word, and the gold judge gives it full marks. PPO, DPO and GRPO did not change
# it, and each best-of-n returns that same answer too, although the SFT model's samples to this
# question are not all alike (section 3's group holds one that the reward model and the gold judge
# score lower). The wording
# is held out, but the case is one the SFT model was trained on, and it reproduces the trained answer
# (chapter 7's test-set leakage). A question on which all methods agree shows nothing about their
# differences: use the best-of-n widget below to find questions where the reward model's choice and
# the gold judge's favourite differ.
#
# ## 5. Try it
#
# **DPO's β on five answers.** Chapter 5 solved the KL-regularised problem on five candidate answers
# to the cirrhosis question. Here DPO trains a softmax policy over the same five answers
# (`beyond.bandit_dpo`) on all ten pairs, labelled in two ways: **soft** labels, with answer $i$
# preferred over $j$ with the reward model's Bradley-Terry probability $\sigma(r_i - r_j)$ (as if
# infinitely many annotators voted), and **hard** labels (the higher reward always wins). With soft
# labels DPO's minimum is exactly chapter 5's $\pi^*$; with hard labels the loss keeps falling as
# the loser's probability goes to 0, whatever β. First the computation at `BANDIT_BETA`:

# %%
LABELS = {"expert": "expert answer", "no_escalation": "no escalation", "missing_key_fact": "missing a key fact",
          "unsafe_claim": "unsafe claim", "vague": "vague"}
case_pairs = [p for p in prefs if p["scenario_id"] == CASE_ID]
candidates = {"expert": case_pairs[0]["chosen"]}
candidates.update({p["flaw"]: p["rejected"] for p in case_pairs if p["flaw"] in CANDIDATE_FLAWS})
cand_labels = [LABELS[k] for k in candidates]
question = scenarios[CASE_ID]["question"]
seq_logp, n_tokens = ppo.answer_logprobs(sft, tok, question, list(candidates.values()))
log_ref = seq_logp / n_tokens - np.logaddexp.reduce(seq_logp / n_tokens)   # per-token, as in chapter 5
r_cand = rm.score(tok, question, list(candidates.values()))
hist_soft = beyond.bandit_dpo(log_ref, r_cand, BANDIT_BETA, "soft", steps=BANDIT_STEPS)
hist_hard = beyond.bandit_dpo(log_ref, r_cand, BANDIT_BETA, "hard", steps=BANDIT_STEPS)
pi_star = ppo.kl_optimal_policy(log_ref, r_cand, BANDIT_BETA)
kl_to_ref = {name: float(np.sum(p * (np.log(p) - log_ref))) for name, p in
             (("π*", pi_star), ("soft", hist_soft[-1]), ("hard", hist_hard[-1]))}
print(f"β = {BANDIT_BETA}, {BANDIT_STEPS} AdamW steps: largest distance to π*: soft labels "
      f"{np.abs(hist_soft[-1] - pi_star).max():.3f}, hard labels {np.abs(hist_hard[-1] - pi_star).max():.3f}")
print(f"KL to π_ref: π* {kl_to_ref['π*']:.3f}, DPO soft {kl_to_ref['soft']:.3f}, "
      f"DPO hard {kl_to_ref['hard']:.3f} nats")
pd.DataFrame({"r": r_cand, "π_ref": np.exp(log_ref), "π* (chapter 5)": pi_star, "DPO, soft labels": hist_soft[-1],
              "DPO, hard labels": hist_hard[-1]}, index=pd.Index(cand_labels, name="candidate")).round(3)

# %% [markdown]
# Slide β (0 included) and compare the bars and the KL curves: with soft labels DPO lands on $\pi^*$
# for every β it can reach in the given steps; with hard labels it overshoots, further the longer it
# runs. An extreme β gives a warning, never a broken plot.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
beyond.dpo_beta_widget(cand_labels, log_ref, r_cand, BANDIT_BETA)

# %% [markdown]
# **Best-of-n.** Move n and the question. Left: the whole evaluation set; right: one question's first
# n samples, the reward model's choice circled, the gold judge's favourite starred. When the circle
# and the star differ, the reward model picked an answer the gold judge likes less.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
beyond.best_of_n_widget(samples, [p["prompt"] for p in eval_prompts], n=4)

# %% [markdown]
# ## 6. Pitfalls seen in practice
#
# ### 6.1 DPO lowers the chosen answers too
#
# DPO's loss depends only on the *difference* of the two log-ratios. Nothing in it asks the chosen
# answer to become more likely; pushing the rejected answer down faster is just as good, and a
# policy can lower both while the margin grows. Probability mass then goes to answers that are in
# neither set, which can be worse than either (Pal et al. 2024; Razin et al. 2025). From the
# reference run's log:

# %%
k = min(10, len(dpo_log) // 2)
late = dpo_log.tail(k)
ch, rj = late["chosen_logp_change"].mean(), late["rejected_logp_change"].mean()
print(f"last {k} steps, batch means: log π_θ(y_c) - log π_ref(y_c) = {ch:+.2f} nats, "
      f"log π_θ(y_r) - log π_ref(y_r) = {rj:+.2f} nats, margin u = {late['margin'].mean():+.3f}")
trained = dpo_log[dpo_log["step"] > 1]                            # step 1 is the reference itself
fell_c = int((trained.chosen_logp_change < 0).sum())
fell_r = int((trained.rejected_logp_change < 0).sum())
fell_both = int(((trained.chosen_logp_change < 0) & (trained.rejected_logp_change < 0)).sum())
print(f"of the {len(trained)} steps after the first, the chosen answers' batch mean was below the reference on "
      f"{fell_c}, the rejected answers' on {fell_r}, both on {fell_both}")
print(f"largest fall of the chosen answers' batch mean: {trained.chosen_logp_change.min():+.2f} nats; largest rise: "
      f"{trained.chosen_logp_change.max():+.2f} nats; the rejected answers' smallest fall: "
      f"{-trained.rejected_logp_change.max():.2f} nats")

# %% [markdown]
# The reference run shows the pitfall only weakly. Its margin was won almost entirely by pushing the
# rejected answers down; the chosen answers' batch mean moved little, rose on most steps, and fell
# together with the rejected one on a few steps only. A log of batch means can hide single pairs whose
# chosen answer fell; what it rules out here is a general slide of the chosen answers. Watch the
# chosen curve of section 1's right panel in every DPO run you make: a falling chosen curve is the
# warning sign.
#
# ### 6.2 Length exploitation
#
# Several flaws in chapter 3's pairs change an answer's length (a *vague* answer is shorter than the
# expert's, a *verbose* one longer), so a reward model can learn length as a cue, and every method
# that optimises or selects by the reward model then inherits that bias (Singhal et al. 2023). Three measurements:
# does the reward model prefer longer answers to the same question (the correlation of reward and length
# among the SFT model's samples, within each question); are the answers of each method longer than the
# SFT model's (paired differences, with intervals); and did GRPO's samples run into the length limit?

# %%
centred = samples.groupby("item")[["words", "reward"]].transform(lambda v: v - v.mean())
corr_within = float(np.corrcoef(centred["words"], centred["reward"])[0, 1])
corr_all = float(np.corrcoef(samples["words"], samples["reward"])[0, 1])
print(f"{len(samples)} SFT samples: correlation of reward-model score and length in words {corr_all:+.2f} over all "
      f"samples, {corr_within:+.2f} among the samples of the same question")
answers_w = answers.assign(words=answers["answer"].str.split().str.len().astype(float))
rows = []
for stage in stage_names[1:]:
    d = paired_difference(answers_w, stage, "SFT", metrics=["words"], level=LEVEL, rounds=BOOTSTRAP_ROUNDS,
                          seed=SEED).loc["words"]
    rows.append({"method": stage, "words per answer": d["mean_a"], "minus SFT": d["diff"], "lower": d["lower"],
                 "upper": d["upper"], "supported": bool(d["lower"] > 0 or d["upper"] < 0)})
lengths = pd.DataFrame(rows).set_index("method")
sel = paired_difference(answers_w, stage_names[-1], "best-of-1", metrics=["words"], level=LEVEL,
                        rounds=BOOTSTRAP_ROUNDS, seed=SEED).loc["words"]
expert_words = np.mean([len(data.expert_response(scenarios[p["scenario_id"]]).split()) for p in eval_prompts])
print(f"SFT greedy answers {answers_w[answers_w.stage == 'SFT'].words.mean():.1f} words, expert answers "
      f"{expert_words:.1f}; longer than SFT by a supported margin: "
      f"{', '.join(lengths.index[lengths.supported & (lengths['minus SFT'] > 0)]) or 'none'}")
print(f"selection alone ({stage_names[-1]} against best-of-1, the same samples): {sel['diff']:+.1f} words "
      f"[{sel['lower']:+.1f}, {sel['upper']:+.1f}], "
      f"{'supported' if sel['lower'] > 0 or sel['upper'] < 0 else 'not supported'}")
print(f"GRPO reference run: share of samples cut at {MAX_NEW_TOKENS} tokens without <eos>: "
      f"{1 - grpo_log['ended'].mean():.3f}")
lengths.round(2)

# %% [markdown]
# The reward model does prefer the longer of two answers to the same question, and clearly: the
# within-question correlation is positive and stronger than the correlation over all samples. PPO and
# GRPO give answers longer than the SFT model's by a margin the intervals support, DPO does not, and
# GRPO's samples grew a little during training (section 3's answer-token line). Best-of-n's answers are
# longer than the SFT model's by a supported margin at every $n$ above 1 in the table; against
# best-of-1, which selects nothing from the same samples, selecting the best of many added length the
# intervals support, while best-of-1 itself (plain sampling instead of greedy decoding) is not longer
# than SFT by a supported margin. Part of what the methods that use the reward model bought is length.
# Still, all methods stay near the expert answers' length, and only a small share of GRPO's samples ran
# into the length limit. With longer generations and a larger reward model the bias has more room to act.
#
# ### 6.3 Deterministic preferences make DPO ignore β
#
# The bandit above showed it: with hard labels the DPO loss is minimised only by sending the loser's
# probability to 0, whatever β says (Azar et al. 2023, who propose IPO to fix it). Real preference
# data are closer to hard labels than to soft ones: one or three votes per pair. Early stopping, a
# held-out loss, and label smoothing are the usual defences.
#
# ### 6.4 Groups that teach nothing, and the cost of n
#
# A GRPO group whose answers all receive the same score has zero advantages, and a best-of-n whose
# $n$ samples are all alike selects nothing. Both need diversity in the samples. And best-of-n's
# compute is paid at answer time, for every question, forever:

# %%
zero = float(grpo_log["zero_std_groups"].mean())
print(f"GRPO reference run (training prompts): share of groups with equal scores {zero:.3f}")
levels = samples.groupby("item")["reward"].nunique()
first_g = samples[samples["sample"] < G_ref].groupby("item")["reward"].nunique()
print(f"SFT samples on the held-out questions: distinct reward values among {samples['sample'].nunique()} samples, "
      f"median {levels.median():.0f} (range {levels.min()}-{levels.max()}); questions whose first {G_ref} samples "
      f"all score alike: {(first_g == 1).mean():.3f}")
greedy_tokens = summary.loc[summary["method"] == "SFT", "answer_tokens"].iloc[0]
for _, row in bon.iterrows():
    print(f"best-of-{row['n']}: {row['answer_tokens']:.0f} token positions per question at answer time, "
          f"{row['answer_tokens'] / greedy_tokens:.0f} times a greedy answer of the SFT model")

# %% [markdown]
# Both costs are visible. On its training prompts about a third of GRPO's groups carried no signal; on
# the held-out questions a smaller share of groups of the same size, drawn from the SFT model, would
# score all alike, though still a sizeable one. A group-relative method learns only from questions on
# which the model's answers still differ. Best-of-n's cost at answer time grows in proportion to $n$;
# at every $n$ above 1 it bought reward-model score the intervals support, and at no $n$ a gold gain
# over the SFT model they support.
#
# ## 7. Exercises
#
# Each exercise is a function for you to write: replace `raise NotImplementedError` with your code and
# run the cell again. The `check_...` call compares your function with the course's on a few cases and
# prints whether it passed (until you have written it, it says it has not been attempted); the
# solution is in the folded block below each exercise.
#
# **Exercise 1: the DPO margin of one pair.** Return $u = \beta[(\log \pi_\theta(y_c) - \log
# \pi_\text{ref}(y_c)) - (\log \pi_\theta(y_r) - \log \pi_\text{ref}(y_r))]$ and the loss $-\log\sigma(u)$.
# Then check the worked example of section 1 with it.

# %%
def dpo_margin_and_loss(logp_c, logp_r, ref_c, ref_r, beta):
    """(u, -log σ(u)) of one preference pair from four sequence log-probabilities."""
    raise NotImplementedError  # replace with your own code


_ = check_dpo_margin(dpo_margin_and_loss)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def dpo_margin_and_loss(logp_c, logp_r, ref_c, ref_r, beta):
#     u = beta * ((logp_c - ref_c) - (logp_r - ref_r))
#     return u, float(np.logaddexp(0.0, -u))      # log(1 + e^{-u}) without overflow
# ```
# </details>
#
# **Exercise 2: group-relative advantages.** Given the scores of one group (a NumPy array), return
# $\hat A_i = (r_i - \bar r)/(\operatorname{std}(r) + 10^{-4})$, with exactly 0 when all scores are
# equal.

# %%
def my_group_advantages(scores):
    """The GRPO advantages of one group of scores (population standard deviation)."""
    raise NotImplementedError  # replace with your own code


_ = check_group_advantages(my_group_advantages)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def my_group_advantages(scores):
#     r = np.asarray(scores, dtype=float)
#     if np.ptp(r) == 0:
#         return np.zeros_like(r)
#     return (r - r.mean()) / (r.std() + 1e-4)
# ```
# </details>
#
# **Exercise 3: best-of-n from a table of scores.** Given a table of reward-model scores with one row
# per question and one column per sample, return the mean over the questions of the best score among
# the first n samples. Then apply it to the cache (`samples.pivot(index="item", columns="sample",
# values="reward").to_numpy()`) and compare with the reward column of the best-of-n table.

# %%
def best_of_n_mean(scores, n):
    """Mean over rows of the largest of the first n scores in each row."""
    raise NotImplementedError  # replace with your own code


_ = check_best_of_n_mean(best_of_n_mean)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def best_of_n_mean(scores, n):
#     return float(np.asarray(scores)[:, :n].max(axis=1).mean())
# ```
# </details>
#
# **Exercise 4 (think).** A hospital wants a pharmacy assistant and can afford either one training run
# or sixteen reward-model calls per question at answer time. Using this chapter's table, which method
# would you choose, what would you measure before deploying it, and what would make you change your
# mind?
#
# ## 8. Summary
#
# - DPO inverts chapter 5's optimum, $r = \beta \log \frac{\pi^*}{\pi_\text{ref}} + \beta \log Z$, and puts it into
#   chapter 3's Bradley-Terry loss; $Z$ cancels, and the policy trains directly on the preference
#   pairs, with no reward model and no sampling. Its implicit reward is $\beta \log \frac{\pi_\theta}{\pi_\text{ref}}$.
# - GRPO replaces PPO's value head by the group of answers to the same question: each answer's
#   advantage is its standardised score within the group.
# - Best-of-n needs no training at all; its KL to the SFT model is at most $\log n - \frac{n-1}{n}$, and
#   its price is $n$ samples and scores per question.
# - The side-by-side table and the frontier put all of them on the gold judge's scale, with paired
#   intervals. On these held-out questions no method's gold gain over the SFT model is supported by
#   the intervals; the one supported difference is a loss, for plain sampling (best-of-1). DPO barely
#   moved from the SFT model (small KL); PPO and GRPO moved further (a KL of one to a few nats, GRPO's
#   more than twice PPO's), raised the reward-model score and the length of their answers, and gained
#   nothing on the gold judge that the intervals support (chapter 7 shows what they changed: more escalation advice, less
#   accuracy and specificity).
#   Best-of-n at larger $n$ raised the reward-model score by a margin the intervals support, at a large
#   cost in compute, without a gold gain over SFT they support (its gold score peaks at a small $n$).
# - Every method that uses the reward model (PPO, GRPO, best-of-n) can only be as good as the reward
#   model lets it be; DPO avoids the reward model but not the limits of the preference data.
#
# ## References
#
# - Azar, M. G., Rowland, M., Piot, B., et al. (2023). A general theoretical paradigm to understand
#   learning from human preferences. arXiv:2310.12036 (AISTATS 2024).
# - Beirami, A., Agarwal, A., Berant, J., et al. (2024). Theoretical guarantees on the best-of-n
#   alignment policy. arXiv:2401.01879.
# - Gao, L., Schulman, J. & Hilton, J. (2023). Scaling laws for reward model overoptimization.
#   *ICML 2023*, arXiv:2210.10760.
# - Nakano, R., Hilton, J., Balaji, S., et al. (2021). WebGPT: Browser-assisted question-answering with
#   human feedback. arXiv:2112.09332.
# - Ouyang, L., Wu, J., Jiang, X., et al. (2022). Training language models to follow instructions with
#   human feedback. *NeurIPS 2022*, arXiv:2203.02155.
# - Pal, A., Karkhanis, D., Dooley, S., et al. (2024). Smaug: Fixing failure modes of preference
#   optimisation with DPO-Positive. arXiv:2402.13228.
# - Rafailov, R., Sharma, A., Mitchell, E., et al. (2023). Direct preference optimization: Your
#   language model is secretly a reward model. *NeurIPS 2023*, arXiv:2305.18290.
# - Razin, N., Malladi, S., Bhaskar, A., et al. (2025). Unintentional unalignment: Likelihood
#   displacement in direct preference optimization. *ICLR 2025*, arXiv:2410.08847.
# - Shao, Z., Wang, P., Zhu, Q., et al. (2024). DeepSeekMath: Pushing the limits of mathematical
#   reasoning in open language models. arXiv:2402.03300.
# - Singhal, P., Goyal, T., Xu, J. & Durrett, G. (2023). A long way to go: Investigating length
#   correlations in RLHF. arXiv:2310.03716.
# - Stiennon, N., Ouyang, L., Wu, J., et al. (2020). Learning to summarize from human feedback.
#   *NeurIPS 2020*, arXiv:2009.01325.
