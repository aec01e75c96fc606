# %% [markdown]
# # Chapter 3 · The reward model: turning preferences into a number
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/03_reward_model.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/03_reward_model.ipynb)
#
# **Part 1 of the course · Stage 3 of 4** (pretraining → SFT → **reward model** → PPO)
#
# The SFT model of chapter 2 imitates expert answers, but imitation has a ceiling: it cannot tell a
# good answer from a slightly worse one, and there is no way to ask it for *more* of what makes an
# answer good. Reinforcement learning from human feedback (RLHF) needs a **reward**: a number that
# says how good an answer is. Nobody can write that number down for every possible answer, but
# people can easily say which of **two** answers they prefer. This chapter trains a **reward model**
# on such pairwise preferences: a TinyGPT that reads a question and an answer and returns one
# number, trained so that preferred answers get higher numbers. Chapter 5 will let PPO climb it.
#
# **You will learn to**
# 1. derive the reward-model loss from the Bradley-Terry model of paired comparisons, and explain
#    why its gradient vanishes once a pair is ranked confidently;
# 2. compute the loss of a preference pair by hand;
# 3. train a reward model from the SFT checkpoint, and judge it by held-out accuracy (with a
#    confidence interval) and by calibration;
# 4. find what a reward model rewards that an expert would not (length, surface features), which
#    flaws it misses, and how disagreement among annotators shapes its labels.
#
# > **Educational material, not medical advice.** The answers below are simplified teaching examples,
# > some of them deliberately wrong or unsafe. The models are tiny toys; never use them for real patients.

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
EPOCHS = 2            # passes over the training pairs
LEARNING_RATE = 1e-3  # peak learning rate (warm-up, then cosine decay)
BATCH_SIZE = 16       # pairs per step (32 sequences)
MARGIN = 0.0          # m in the loss: how far the chosen reward should exceed the rejected one
LABEL = "majority"    # "majority": the annotators' majority vote; "gold": the dataset's chosen answer
TRAINABLE = "all"     # "all", "last_block" or "head": which weights are trained
EVAL_EVERY = 12       # steps between held-out evaluations of the live run (also at the end of each epoch)
N_FILLER = 3          # filler sentences in the length-bias experiment (answers must fit max_len tokens)

# %%
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import checkpoints, data, judge, scorecard
from course_utils.losses import bradley_terry_loss
from course_utils.plotting import COLORS, STAGE_COLORS, use_course_style
from course_utils.training import encode_sft
from course_utils.reward import (DEFAULT_CONFIG, RewardConfig, RewardModel, calibration, evaluate_pairs,
                                 load_reward_model, orient_pairs, pair_rewards, train_reward_model,
                                 wilson_interval)
from course_utils.widgets import bt_curves

use_course_style()
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 140)

tok = checkpoints.load_tokenizer()
sft = checkpoints.load("sft")                         # float32: the starting point of the live runs
sft64 = checkpoints.load("sft", dtype="float64")      # double precision: what the book prints is the same on every CPU
scenarios = {s["id"]: s for s in data.load_scenarios()}
pairs = data.load_preferences()
train_pairs = [p for p in pairs if p["split"] == "train"]
test_pairs = [p for p in pairs if p["split"] == "test"]
featured = [p for p in pairs if p["featured"]]
test_ids = sorted({p["scenario_id"] for p in test_pairs})
train_ids = {p["scenario_id"] for p in train_pairs}
print(f"{len(pairs)} preference pairs from {len(scenarios)} scenarios: "
      f"{len(train_pairs)} for training, {len(test_pairs)} held out")
print(f"held-out scenarios: {len(test_ids)} (shared with training: {len(train_ids & set(test_ids))})")
print(f"featured pairs shown in the tables: {len(featured)}")

# %% [markdown]
# ## 1. The data: pairs of answers and three annotators
#
# Each record of `data/preferences.jsonl` is a question $x$ with two answers: the **chosen** one
# $y_c$ (the expert's answer, sometimes a shorter correct version of it) and the **rejected** one
# $y_r$, made worse by one deliberate **flaw**:
#
# | flaw | what is wrong with the rejected answer |
# |---|---|
# | `unsafe_claim` | a dangerous claim replaces its first sentence |
# | `missing_key_fact` | the sentence with one key fact is dropped |
# | `wrong_dose` | one dose is changed tenfold ("500 mg" → "5000 mg") |
# | `no_escalation` | it never says when to call the prescriber or urgent care |
# | `vague` | a generic, hedging non-answer |
# | `verbose` | padded with irrelevant filler, missing a fact and the escalation: **longer but worse** |
# | `off_topic` | a fluent expert answer to *another* question of the same category |
# | `repetition` | one sentence said again and again, or a phrase looping at the end |
#
# Three simulated annotators voted on every pair (`votes`, 1 = prefers the chosen answer): a careful
# **expert** (wrong 5% of the time), a **hurried** annotator (a quarter of the time picks the longer
# answer unread) and a **lay** annotator (misses 40% of wrong doses and unsafe claims). Real
# preference data has exactly this kind of noise. Whole scenarios are held out (split `test`), so the
# held-out accuracy measures how well the reward model judges cases it never saw compared.

# %%
flaw_table = pd.crosstab(pd.Series([p["flaw"] for p in pairs], name="flaw"),
                         pd.Series([p["split"] for p in pairs], name="split"), margins=True, margins_name="all")
flaw_table

# %%
example = next(p for p in featured if p["flaw"] == "wrong_dose")
print(f"{example['id']}  flaw: {example['flaw']}  votes (expert, hurried, lay): {example['votes']}\n")
print("Q:", example["prompt"], "\n")
print("chosen:  ", example["chosen"], "\n")
print("rejected:", example["rejected"])

# %% [markdown]
# ## 2. From a pairwise preference to a loss
#
# ### The Bradley-Terry model
#
# Bradley and Terry (1952) modelled paired comparisons (which of two items wins) by giving every item
# a strength and making the probability of a win a logistic function of the difference in strength.
# A reward model uses the same idea with the reward $r_\theta(x, y)$ as the strength of answer $y$ to
# question $x$ (Christiano et al. 2017; Stiennon et al. 2020; Ouyang et al. 2022):
#
# $$P(y_c \succ y_r \mid x) = \sigma\big(r_\theta(x, y_c) - r_\theta(x, y_r)\big), \qquad \sigma(u) = \frac{1}{1 + e^{-u}}.$$
#
# Maximising the likelihood of the observed preferences means minimising the negative log-likelihood,
# averaged over the $n$ pairs of a batch. With an optional margin $m$ (Touvron et al. 2023):
#
# $$\mathcal{L}_{\mathrm{RM}}(\theta) = -\frac{1}{n} \sum_{i=1}^{n} \log \sigma\big(r_c^{(i)} - r_r^{(i)} - m\big)$$
#
# | symbol | meaning |
# |---|---|
# | $x$ | the question (prompt) |
# | $y_c, y_r$ | the chosen (preferred) and the rejected answer of a pair |
# | $r_\theta(x, y)$ | the reward model's score of answer $y$ to question $x$: one real number |
# | $r_c, r_r$ | short for $r_\theta(x, y_c)$ and $r_\theta(x, y_r)$ |
# | $\theta$ | the reward model's weights |
# | $y_c \succ y_r$ | "$y_c$ is preferred to $y_r$" |
# | $\sigma$ | the logistic (sigmoid) function, from a reward gap to a probability |
# | $m$ | margin $\ge 0$: the gap the loss asks for (`MARGIN`; 0 in InstructGPT) |
# | $\Delta$ | $r_c - r_r - m$, the gap beyond the margin |
# | $n$ | the number of pairs in the batch |
#
# Only the **difference** of two rewards appears: adding the same constant to every reward changes
# nothing, and neither the zero nor (up to the margin) the unit of $r$ means anything on its own.
#
# ### The gradient: push apart, then stop
#
# With $\Delta = r_c - r_r - m$ and $\frac{d}{d\Delta}\big(-\log\sigma(\Delta)\big) = -(1 - \sigma(\Delta))$:
#
# $$\frac{\partial \mathcal{L}}{\partial r_c} = -\frac{1 - \sigma(\Delta)}{n}, \qquad \frac{\partial \mathcal{L}}{\partial r_r} = +\frac{1 - \sigma(\Delta)}{n}.$$
#
# Gradient descent raises $r_c$ and lowers $r_r$, by the same amount. The force is $1 - \sigma(\Delta)$:
# close to 1 for a pair ranked the wrong way round ($\Delta \ll 0$), exactly ½ for a tie, and close to
# 0 once the pair is ranked confidently ($\Delta \gg 0$). Well-learned pairs stop contributing, and
# training concentrates on the pairs it still gets wrong, like logistic regression, which this is:
# a logistic regression on reward differences.

# %%
deltas = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
loss_d, grad_d = bt_curves(deltas)
pd.DataFrame({"Δ = r_c - r_r": deltas, "σ(Δ)": 1 / (1 + np.exp(-deltas)), "loss -log σ(Δ)": loss_d,
              "∂L/∂r_c = -(1 - σ(Δ))": grad_d}).round(3).set_index("Δ = r_c - r_r")

# %%
grid = np.linspace(-6, 6, 241)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
for m, style in ((0.0, "-"), (1.0, "--")):
    loss_g, grad_g = bt_curves(grid, m)
    ax1.plot(grid, loss_g, style, color=COLORS["blue"], label=f"m = {m:g}")
    ax2.plot(grid, grad_g, style, color=COLORS["orange"], label=f"m = {m:g}")
ax1.axhline(np.log(2), color=COLORS["grey"], lw=1, ls=":", label="ln 2 (a tie, m = 0)")
ax1.set(xlabel=r"$r_c - r_r$", ylabel=r"$-\log\sigma(r_c - r_r - m)$", title="Loss of one pair")
ax2.set(xlabel=r"$r_c - r_r$", ylabel=r"$\partial L / \partial r_c$", title="Gradient on the chosen reward")
ax1.legend()
ax2.legend()
plt.show()

# %% [markdown]
# Left: the loss is large and almost linear when the rejected answer scores higher, $\ln 2 \approx 0.693$
# at a tie, and falls towards 0 as the chosen answer pulls ahead. Right: the gradient saturates at -1
# for badly ranked pairs and vanishes for well-ranked ones. A margin $m$ shifts both curves to the
# right: the pair must now win by $m$ before it stops pulling.

# %% [markdown]
# ## 3. The reward model: a transformer with a scalar head
#
# The reward model is the SFT model with its next-token head set aside and a **reward head** added:
# two vectors $w$ and $u$ and a bias $b$. The question and the answer are laid out exactly as in SFT,
# `<bos> <q> question <a> answer <eos>`, and the transformer computes its final hidden states $h_t$.
# The head reads two summaries of them:
#
# $$r_\theta(x, y) = h_{\ell-1} \cdot w + \bar h \cdot u + b, \qquad
# \bar h = \frac{1}{n_y} \sum_{t \in \text{answer}} h_t .$$
#
# | symbol | meaning |
# |---|---|
# | $h_t$ | the trunk's final hidden state at position $t$ (a vector of `d_model` numbers) |
# | $\ell$ | the number of real tokens of the sequence; $h_{\ell-1}$ is the state at the closing `<eos>` |
# | $\bar h$ | the mean of $h_t$ over the $n_y$ answer positions (after `<a>`, `<eos>` included) |
# | $w$, $u$, $b$ | the head's weights: what it reads in $h_{\ell-1}$, what it reads in $\bar h$, and a bias |
#
# InstructGPT reads the last token only ($u = 0$): because attention is causal, $h_{\ell-1}$ has
# seen the whole question and answer. In a model this small that one state must carry the whole
# answer through attention; the mean lets every word of the answer reach the reward directly. Trained
# the same way, the reward model with both summaries ranks a few more held-out pairs right than one
# that reads the closing token alone (`benchmarks/reward_pairs.py` compares the two heads), a gain
# smaller than the width of the held-out interval in section 6. Both summaries read nothing after
# position $\ell - 1$, so a batch can be padded to any width without changing a single reward. Starting
# from the SFT weights (Ouyang et al. 2022; Stiennon et al. 2020) gives the reward model a trunk that
# already reads pharmaceutical text; only the head starts from random numbers, and it is tiny: the
# cell below prints its size (two vectors of `d_model` numbers and one bias) against the trunk's
# hundreds of thousands, and checks the padding claim on a batch of a short and a long answer.

# %%
rm_before = RewardModel(sft64.copy(), seed=SEED)   # the untrained reward model, kept for the before / after tables
n_head = sum(rm_before.params[k].size for k in ("head.w", "head.u", "head.b"))
print(rm_before)
print(f"trunk parameters: {rm_before.trunk.n_params:,}; head parameters: {n_head} "
      f"(w: {rm_before.params['head.w'].size}, u: {rm_before.params['head.u'].size}, b: 1)")

prompt, long_answer = example["prompt"], example["chosen"]
short_answer = data.split_sentences(long_answer)[0]
alone = rm_before.score(tok, [prompt], [short_answer])[0]
in_batch = rm_before.score(tok, [prompt, prompt], [short_answer, long_answer])[0]
tokens, lengths = rm_before.encode(tok, [prompt, prompt], [short_answer, long_answer])
print(f"batch of two: padded width {tokens.shape[1]}, real lengths {lengths.tolist()}")
print(f"reward of the short answer alone: {alone:.6f}; padded inside the batch: {in_batch:.6f}; "
      f"difference below 1e-5: {abs(alone - in_batch) < 1e-5}")

# %% [markdown]
# ## 4. The loss, pair by pair: a worked example
#
# Before any training, score the featured pairs with the fresh reward model (SFT trunk, random
# head). Each row is one term of $\mathcal{L}_{\mathrm{RM}}$: the two rewards, the gap
# $\Delta = r_c - r_r - m$, the model's probability $\sigma(\Delta)$ that the chosen answer is better,
# the loss $-\log\sigma(\Delta)$ and the gradient $-(1 - \sigma(\Delta))$ on $r_c$ (per pair, before
# dividing by $n$). Green is good (a large gap, a small loss), red is bad.

# %%
def loss_table(model, pair_list, margin=MARGIN) -> pd.DataFrame:
    """One row per pair: rewards, gap, σ, loss and gradient of the Bradley-Terry loss."""
    rc, rr = pair_rewards(model, tok, pair_list)
    gap = rc - rr - margin
    sig = np.exp(-np.logaddexp(0.0, -gap))
    loss_each, grad_each = bt_curves(rc - rr, margin)
    return pd.DataFrame({"pair": [p["id"].removeprefix("PREF-") for p in pair_list],
                         "flaw": [p["flaw"] for p in pair_list],
                         "r_c": rc, "r_r": rr, "Δ = r_c - r_r - m": gap, "σ(Δ)": sig,
                         "loss": loss_each, "∂L/∂r_c": grad_each}).set_index("pair")


def styled(table: pd.DataFrame, uuid: str):
    """Colour-code a loss table: green = a confident correct ranking, red = a wrong one."""
    return (table.style.format(precision=3)
            .background_gradient(cmap="RdYlGn", subset=["Δ = r_c - r_r - m"], vmin=-4, vmax=4)
            .background_gradient(cmap="RdYlGn_r", subset=["loss"], vmin=0, vmax=2)
            .background_gradient(cmap="RdYlGn", subset=["σ(Δ)"], vmin=0, vmax=1)
            .set_uuid(uuid))


table_before = loss_table(rm_before, featured)
styled(table_before.round(3), "before")

# %%
row = table_before.iloc[0]
rc0, rr0 = row["r_c"], row["r_r"]
gap0 = rc0 - rr0 - MARGIN
sig0 = 1 / (1 + np.exp(-gap0))
print(f"worked row {table_before.index[0]} ({row['flaw']}):")
print(f"  Δ      = r_c - r_r - m = {rc0:.3f} - ({rr0:.3f}) - {MARGIN:g} = {gap0:.3f}")
print(f"  σ(Δ)   = 1 / (1 + e^(-Δ)) = 1 / (1 + {np.exp(-gap0):.3f}) = {sig0:.3f}")
print(f"  loss   = -ln σ(Δ) = -ln {sig0:.3f} = {-np.log(sig0):.3f}")
print(f"  ∂L/∂r_c = -(1 - σ(Δ)) = -(1 - {sig0:.3f}) = {-(1 - sig0):.3f};  ∂L/∂r_r = {1 - sig0:.3f}")
rc_f, rr_f = table_before["r_c"].to_numpy(), table_before["r_r"].to_numpy()
mean_loss, d_c, _ = bradley_terry_loss(rc_f, rr_f, MARGIN)
print(f"mean over the {len(featured)} pairs: L_RM = {mean_loss:.3f} "
      f"(the table's column mean is {table_before['loss'].mean():.3f}); "
      f"ranked correctly: {int((table_before['Δ = r_c - r_r - m'] > -MARGIN).sum())}/{len(featured)}")
print(f"losses.bradley_terry_loss divides each gradient by n = {len(featured)}: "
      f"first row {d_c[0]:.4f} = {row['∂L/∂r_c']:.3f} / {len(featured)}")

# %%
n_right = int((table_before["Δ = r_c - r_r - m"] > -MARGIN).sum())
k_lo, k_hi = wilson_interval(n_right, len(featured))
print(f"untrained: {n_right}/{len(featured)} featured pairs ranked correctly (95% interval [{k_lo:.2f}, {k_hi:.2f}]"
      f"{', which excludes' if k_lo > 0.5 else ', which includes'} a coin flip); mean loss {mean_loss:.3f} against "
      f"ln 2 = {np.log(2):.3f}, the loss of a model that always says 50%")

# %% [markdown]
# The head is random, but the trunk is not: it is the SFT model, whose features already carry
# information about the answers (their length, for one), and random directions $w$ and $u$ through
# those features can pick some of it up by luck, or point the wrong way. For this `SEED` the line above
# shows no useful signal: fewer than half of the featured pairs are ranked correctly, and the
# interval includes a coin flip. Another `SEED` gives another head and another number. Training
# will move these numbers; the same table after training is in section 6.

# %% [markdown]
# ## 5. Training the reward model, for real
#
# Each step scores the chosen and the rejected answers of `BATCH_SIZE` pairs in one forward pass,
# computes $\mathcal{L}_{\mathrm{RM}}$ and its gradient, back-propagates it through the head **and** the
# transformer, and takes an AdamW step (warm-up, then cosine decay, gradient clipping at norm 1).
# With `LABEL = "majority"` each pair is oriented by the annotators' majority vote, as a real pipeline
# would: where most votes went to the dataset's rejected answer, the model is taught that one. Every
# `EVAL_EVERY` steps we score the held-out pairs against their true labels. This is a **live run**: a
# short demonstration of the training code for you to run and change (seconds on a laptop), starting
# from the reference SFT model of chapter 2; on another processor or BLAS library its last digits can
# differ slightly from the book's. The reward model the rest of the course uses comes from the
# *reference run*, after this one.

# %% tags=["nbval-ignore-output"]
rm = RewardModel(sft.copy(), seed=SEED)
config = RewardConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, margin=MARGIN, label=LABEL,
                      trainable=TRAINABLE, seed=SEED)
history = train_reward_model(rm, tok, train_pairs, config, eval_pairs=test_pairs, eval_every=EVAL_EVERY)
log = history.log
ev_log = log.dropna(subset=["eval_accuracy"])
print(f"steps: {len(log)} ({config.epochs} epochs of {len(train_pairs)} pairs, {config.batch_size} per step)")
print(f"training loss: {log.loss.iloc[:4].mean():.3f} (first 4 steps) -> {log.loss.iloc[-4:].mean():.3f} (last 4)")
print(f"held-out loss: {ev_log.eval_loss.iloc[0]:.3f} (step {int(ev_log.step.iloc[0])}) -> {ev_log.eval_loss.iloc[-1]:.3f} (end)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
ax1.plot(log.step, log.loss, color=COLORS["sky"], lw=1.5, label="train (batch)")
ax1.plot(ev_log.step, ev_log.eval_loss, "o-", color=COLORS["vermillion"], label="held-out")
ax1.axhline(np.log(2), color=COLORS["grey"], ls="--", label="chance, ln 2")
ax1.set(xlabel="step", ylabel=r"$\mathcal{L}_{\mathrm{RM}}$", title="Bradley-Terry loss", ylim=(0, None))
ax1.legend()
ax2.plot(log.step, log.accuracy, color=COLORS["sky"], lw=1.5, label="train (batch, before the step)")
ax2.plot(ev_log.step, ev_log.eval_accuracy, "o-", color=COLORS["vermillion"], label="held-out")
ax2.axhline(0.5, color=COLORS["grey"], ls="--", label="chance")
ax2.set(xlabel="step", ylabel=r"share of pairs with $r_c > r_r$", title="Ranking accuracy", ylim=(0.3, 1.02))
ax2.legend(loc="lower right")
plt.show()

# %% [markdown]
# ### The reference run
#
# The live run above is a short demonstration of the code for you: seconds on a laptop, and on another
# CPU its numbers may differ slightly. The **reference run** is what `make checkpoints` trained
# (`reward.build_reward_checkpoint`): the same `train_reward_model` from the same SFT model, with
# `reward.DEFAULT_CONFIG`, scoring the held-out pairs every `reward.EVAL_EVERY` steps. Its weights,
# `data/checkpoints/reward.npz`, are what every later section and chapter loads, evaluated here in
# double precision so that the numbers are the same on every computer; its training log was saved next
# to them (`checkpoints.load_log("reward")`).
#
# The reference run trains on more data than the live run. Besides the training pairs above, it sees
# three kinds of pairs built from the knowledge base (`data.contrast_pairs`), for every training wording of
# every training-split case:
#
# * **"which case is this?"** (`data.case_contrast_pairs`): the case's expert answer is the chosen one and
#   the expert answer to another case of the same category the rejected one, four times over. The SFT
#   model's commonest mistake on a new wording is exactly that: a fluent, correct answer to the wrong case
#   (chapter 2). The preference pairs show that mistake only once per case, so a reward model trained on
#   them alone has little to learn from about whether the answer fits the question.
# * **"does it escalate?"** (`data.escalation_contrast_pairs`): the expert answer with its escalation
#   advice against the same answer without it. Many SFT demonstrations stop before the escalation
#   (chapter 2 prints the counts), so the SFT model escalates only some of the time; these pairs
#   say, for every wording, what the demonstrations leave open.
# * **"what is wrong inside it?"** (`data.flaw_contrast_pairs`): the expert answer against a flawed copy
#   of it, built as the preference pairs are (an unsafe claim, a key fact missing, a dose changed tenfold,
#   a vague non-answer, repetition, padding). The preference pairs show each flaw once per case, with one
#   wording; here the flaws take turns over all the wordings, so that the reward model learns the flaw
#   and not the wording it came with.
#
# No held-out case appears in these pairs, neither in a chosen nor in a rejected answer. They make the
# reference run many times longer than a live run (compare the step counts), which is why the live run
# leaves them out.

# %%
live_rm, rm = rm, load_reward_model(dtype="float64")
ref_log = checkpoints.load_log("reward")
ref_ev = ref_log.dropna(subset=["eval_accuracy"])
by_kind = {kind: build(data.load_scenarios()) for kind, build in data.CONTRAST_KINDS.items()}
contrast_pairs = [p for pairs in by_kind.values() for p in pairs]     # = data.contrast_pairs(...)
n_kind = {kind: len(pairs) for kind, pairs in by_kind.items()}
print("reference recipe (reward.DEFAULT_CONFIG): " + ", ".join(f"{k}={v}" for k, v in asdict(DEFAULT_CONFIG).items()))
print(f"reference data: {len(train_pairs)} training pairs + "
      + " + ".join(f"{n} '{kind}' pairs" for kind, n in n_kind.items())
      + f" (of {len({p['scenario_id'] for p in contrast_pairs})} training-split cases; held-out cases among them: "
      f"{len({p['scenario_id'] for p in contrast_pairs} & set(test_ids))})")
print("your live run used the same settings" if config == DEFAULT_CONFIG else
      "your live run's settings differ: " + ", ".join(f"{k}={v}" for k, v in asdict(config).items()
                                                       if v != getattr(DEFAULT_CONFIG, k)))
final = ref_ev.iloc[-1]
last_epoch = ref_log[ref_log.epoch == ref_log.epoch.max()]
print(f"{len(ref_log)} steps; training loss, mean of the last epoch: {last_epoch.loss.mean():.2f}; at the end, "
      f"held-out loss {final.eval_loss:.2f} and held-out accuracy {final.eval_accuracy:.2f} "
      f"({round(final.eval_accuracy * len(test_pairs))}/{len(test_pairs)} pairs)")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
ax1.plot(ref_log.step, ref_log.loss, color=COLORS["sky"], lw=1.5, label="train (batch)")
ax1.plot(ref_ev.step, ref_ev.eval_loss, "o-", color=COLORS["vermillion"], label="held-out")
ax1.axhline(np.log(2), color=COLORS["grey"], ls="--", label="chance, ln 2")
ax1.set(xlabel="step", ylabel=r"$\mathcal{L}_{\mathrm{RM}}$", title="Reference run: Bradley-Terry loss", ylim=(0, None))
ax1.legend()
ax2.plot(ref_log.step, ref_log.accuracy, color=COLORS["sky"], lw=1.5, label="train (batch, before the step)")
ax2.plot(ref_ev.step, ref_ev.eval_accuracy, "o-", color=COLORS["vermillion"], label="held-out")
ax2.axhline(0.5, color=COLORS["grey"], ls="--", label="chance")
ax2.set(xlabel="step", ylabel=r"share of pairs with $r_c > r_r$", title="Reference run: ranking accuracy",
        ylim=(0.3, 1.02))
ax2.legend(loc="lower right")
plt.show()

# %% [markdown]
# Your live run's distance from the reference reward model is not small: the two runs start from the
# same SFT model with the same head, but the reference run also trained on the three kinds of
# knowledge-base pairs, so it is another model.

# %% tags=["nbval-ignore-output"]
gap = max(float(np.max(np.abs(live_rm.params[k] - rm.params[k]))) for k in rm.params)
print(f"largest difference between your live run's weights and the reference model's: {gap:.2g}")

# %% [markdown]
# ## 6. How good is it?
#
# ### Accuracy, with its uncertainty
#
# The **accuracy** of a reward model is the share of pairs it ranks the right way ($r_c > r_r$), judged
# against the dataset's labels. The held-out set is small, so we report a 95% **Wilson** interval
# (Wilson 1927): for $k$ correct out of $n$, $\hat p = k/n$ and $z = 1.96$,
#
# $$\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},$$
#
# which, unlike $\hat p \pm z\sqrt{\hat p(1-\hat p)/n}$, stays inside $[0, 1]$ when $\hat p$ is near 1.

# %%
results = {name: evaluate_pairs(model, tok, pair_list) for name, model, pair_list in (
    ("before, held-out", rm_before, test_pairs),
    ("after, train", rm, train_pairs), ("after, held-out", rm, test_pairs))}
summary = pd.DataFrame(results).T[["n", "correct", "accuracy", "ci_low", "ci_high", "loss", "mean_margin"]]
summary = summary.astype({"n": int, "correct": int}).rename(columns={"mean_margin": "r_c - r_r"})
summary = summary.rename_axis("training")
summary.round(3)

# %%
held, held0 = results["after, held-out"], results["before, held-out"]
print(f"held-out accuracy: {held['accuracy']:.3f} ({held['correct']}/{held['n']}), "
      f"95% interval [{held['ci_low']:.2f}, {held['ci_high']:.2f}]; before training {held0['accuracy']:.3f} "
      f"[{held0['ci_low']:.2f}, {held0['ci_high']:.2f}]")
print(f"held-out loss: {held0['loss']:.3f} before training, {held['loss']:.3f} after (ln 2 = {np.log(2):.3f}): "
      + ("training made the held-out loss worse, although it ranks more pairs correctly"
         if held["loss"] > held0["loss"] else "training lowered the held-out loss"))
print(f"a claim of '80% accuracy on 5 pairs' would have the interval "
      f"[{wilson_interval(4, 5)[0]:.2f}, {wilson_interval(4, 5)[1]:.2f}]: it says almost nothing")

# %% [markdown]
# The held-out pairs come from scenarios the reward model never compared during training (the SFT
# trunk has, however, read their expert answers in chapter 2). Most held-out pairs are ranked
# correctly, but clearly fewer than on the training pairs (the two intervals do not overlap), and
# the held-out interval is more than ten points wide: two reward models whose held-out accuracies
# differ by a pair or two are not distinguishable on this set. The untrained model (SFT trunk,
# random head) ranks fewer than half of the held-out pairs correctly, and its whole interval lies
# below a coin flip: this random head points partly the wrong way. Training also lowers the
# held-out **loss**, below ln 2, yet it stays far above
# the training loss: the trained model is confidently wrong on some held-out pairs (section 9
# comes back to this).
#
# ### The featured pairs after training

# %%
table_after = loss_table(rm, featured)
styled(table_after.round(3), "after")

# %%
before_after = pd.DataFrame({
    "mean loss": [table_before["loss"].mean(), table_after["loss"].mean()],
    "ranked correctly": [int((table_before["Δ = r_c - r_r - m"] > -MARGIN).sum()),
                         int((table_after["Δ = r_c - r_r - m"] > -MARGIN).sum())],
    "mean r_c - r_r": [(table_before.r_c - table_before.r_r).mean(), (table_after.r_c - table_after.r_r).mean()],
}, index=["before training", "after training"])
before_after.round(3)

# %% [markdown]
# ### Calibration: does σ(r_c − r_r) mean what it says?
#
# The reward model predicts a probability, $\hat P = \sigma(r_c - r_r)$, that the chosen answer is
# better. It is **calibrated** if, among the pairs where it says 80%, about 80% really are. Left: every
# held-out pair as two statements ("$y_c$ is better" with probability $\hat P$, "$y_r$ is better" with
# $1 - \hat P$), binned by $\hat P$, against how often the statement is true. Right: $\hat P$ against the
# share of annotator votes for the chosen answer, which is what the Bradley-Terry model says
# $\hat P$ should be.

# %%
cal_gold = calibration(rm, tok, test_pairs, bins=5, target="gold")
cal_votes = calibration(rm, tok, test_pairs, bins=5, target="votes")
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
for ax, cal, ylabel, title in ((axes[0], cal_gold, "observed share true", "Held-out pairs, both ways"),
                               (axes[1], cal_votes, "share of annotator votes for $y_c$", "Against the votes")):
    filled = cal[cal["count"] > 0]
    ax.plot([0, 1], [0, 1], color=COLORS["grey"], ls="--", label="perfect calibration")
    ax.plot(filled.predicted, filled.observed, "o-", color=STAGE_COLORS["reward"], label="reward model")
    for _, b in filled.iterrows():
        ax.annotate(f"n={int(b['count'])}", (b.predicted, b.observed), textcoords="offset points", xytext=(6, -14),
                    fontsize=11)
    ax.set(xlabel=r"predicted $\sigma(r_c - r_r)$", ylabel=ylabel, title=title, xlim=(0, 1), ylim=(-0.02, 1.02))
    ax.legend(loc="lower right")
plt.show()
cal_gold.drop(columns=["p_low", "p_high"]).round(3)

# %%
sure = cal_gold[(cal_gold["count"] > 0) & (cal_gold.predicted > 0.8)].iloc[0]
print(f"statements made with more than 80% confidence: {int(sure['count'])}, predicted {sure.predicted:.2f} on "
      f"average, true {sure.observed:.2f} of the time: "
      + ("over-confident" if sure.observed < sure.predicted else "not over-confident"))

# %% [markdown]
# A perfectly calibrated model's points lie on the diagonal. Read the bins with their counts, and
# the line above for the most confident bin, where most held-out pairs fall: when this reward model
# is sure, it is right a few points less often than it says (with a few dozen statements or fewer per
# bin, a gap this small is not sharply measured), while in the bin just below, it is right somewhat
# more often than it says. That is the other face of the held-out loss of the summary table. For PPO
# the ranking matters more than the calibration (chapter 5 normalises the scores anyway), but an
# over-confident reward model gives PPO large, wrong reward gaps to chase.
#
# ### Accuracy by flaw and by category

# %%
def accuracy_by(key: str, model=rm, pair_list=test_pairs) -> pd.DataFrame:
    rc, rr = pair_rewards(model, tok, pair_list)
    df = pd.DataFrame({key: [p[key] for p in pair_list], "correct": rc > rr, "gap": rc - rr})
    out = df.groupby(key).agg(n=("correct", "size"), correct=("correct", "sum"), mean_gap=("gap", "mean"))
    out["accuracy"] = out.correct / out.n
    ci = [wilson_interval(int(k), int(n)) for k, n in zip(out.correct, out.n)]
    out["ci_low"], out["ci_high"] = [c[0] for c in ci], [c[1] for c in ci]
    return out.astype({"correct": int})


by_flaw = accuracy_by("flaw")
by_cat = accuracy_by("category")
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
for ax, table, title in ((axes[0], by_flaw, "by flaw of the rejected answer"), (axes[1], by_cat, "by category")):
    y = np.arange(len(table))
    err = np.clip(np.vstack([table.accuracy - table.ci_low, table.ci_high - table.accuracy]), 0, None)
    ax.barh(y, table.accuracy, xerr=err, color=STAGE_COLORS["reward"], alpha=0.85, capsize=4)
    ax.set_yticks(y, [f"{name} (n={n})" for name, n in zip(table.index, table.n)])
    ax.axvline(0.5, color=COLORS["grey"], ls="--")
    ax.set(xlim=(0, 1.05), xlabel="held-out accuracy (95% interval)", title=title)
    ax.invert_yaxis()
plt.show()
by_flaw.round(3)

# %%
by_cat.round(3)

# %%
gaps = by_flaw.mean_gap.sort_values()
print("mean reward gap r_c - r_r on held-out pairs, smallest first: "
      + ", ".join(f"{flaw} {gap:.2f}" for flaw, gap in gaps.items()))
print(f"overall held-out accuracy {held['accuracy']:.0%}; flaws whose 95% interval reaches down to a coin "
      "flip (50%) or below: "
      + ", ".join(f"{f} {a:.0%} ({c}/{n})" for f, a, c, n, lo in
                  zip(by_flaw.index, by_flaw.accuracy, by_flaw.correct, by_flaw.n, by_flaw.ci_low) if lo <= 0.5))
print("flaws it ranks correctly every time: " + ", ".join(by_flaw.index[by_flaw.accuracy == 1.0]))
worst = by_flaw.accuracy.idxmin()
print(f"weakest: {worst}, accuracy {by_flaw.loc[worst, 'accuracy']:.0%}, mean gap {by_flaw.loc[worst, 'mean_gap']:+.2f}"
      + (": on average it prefers the flawed answer" if by_flaw.loc[worst, "mean_gap"] < 0 else ""))

# %% [markdown]
# The overall accuracy hides very different flaws. The reward model ranks every held-out pair
# correctly on the flaws the third line lists (a key fact left out, no escalation, a vague
# non-answer), all but one padded answer, and most pairs with an unsafe claim, a wrong dose or an
# off-topic answer, though not all of them (the table gives the counts; with so few pairs per flaw,
# the intervals are wide). The flaw of the second line is the exception: its interval reaches down
# to a coin flip. A **repeated** sentence keeps the expert's words as they were; the reward model
# ranks only half of these pairs correctly, with the smallest mean gap of all, close to 0. A **wrong
# dose** changes a single number; the reward model ranks most of its few held-out pairs correctly,
# but with the next smallest mean gap, also close to 0: it prefers the right dose by a hair, where a
# tenfold error should be one of the clearest reasons to prefer an answer (the next cells look at
# one cue it may be reacting to). An **unsafe claim** replaces the first sentence with a fluent,
# dangerous one; the reward model misses a few of these pairs and puts a smaller mean gap between
# the two answers than on most other flaws, although the "what is wrong inside it?" pairs showed it
# this flaw over many training wordings. An **off-topic** answer is a fluent, correct expert answer
# to another question; the reference run's "which case?" pairs were added for exactly this flaw, and
# on the held-out cases the reward model ranks most off-topic answers correctly, more often than the
# repeated sentences, but not all of them, and with a mean gap below those of the flaws it catches
# every time: the contrast pairs taught it to tell the cases apart only in part on questions it
# never saw compared. A key fact left out, a wrong dose, an unsafe claim and an answer to the wrong
# question are among the errors that matter most in pharmacy.

# %% [markdown]
# A wrong dose offers a surface cue: our word-level tokenizer has never seen some of the tenfold
# doses, which then read as the unknown token `<unk>`, a token expert answers never contain. How
# often, and does the reward model catch the held-out dose errors that carry the cue more often
# than the others?

# %%
wrong_dose_tokens = [t for p in pairs if p["flaw"] == "wrong_dose"
                     for t in set(tok.tokenize(p["rejected"])) - set(tok.tokenize(p["chosen"]))]
n_unknown = sum(t not in tok.token_to_id for t in wrong_dose_tokens)
print(f"wrong-dose pairs: {sum(p['flaw'] == 'wrong_dose' for p in pairs)}; tokens only in the rejected answer: "
      f"{len(wrong_dose_tokens)}, of which unknown to the tokenizer: {n_unknown}")
dose_test = [p for p in test_pairs if p["flaw"] == "wrong_dose"]
rc_d, rr_d = pair_rewards(rm, tok, dose_test)
has_unk = np.array([any(t not in tok.token_to_id for t in tok.tokenize(p["rejected"])) for p in dose_test])
for name, sel in (("with <unk> in the rejected answer", has_unk), ("without", ~has_unk)):
    print(f"held-out wrong-dose pairs {name}: {int(np.sum((rc_d > rr_d)[sel]))} of {int(sel.sum())} ranked correctly")

# %% [markdown]
# About a third of the tokens that only the rejected answers contain are unknown to the tokenizer (the
# first line). On the held-out pairs the cue buys nothing visible: the pairs that carry it are ranked
# correctly no more often than the few that do not (the last two lines). With this handful of pairs, a
# difference of one pair either way would mean nothing, so the honest answer is "no sign of it here".
# The cue is still a risk worth knowing: a reward model that has learned "`<unk>` means wrong" would
# also punish a correct dose the tokenizer happens not to know.

# %% [markdown]
# ## 7. What it rewards, and what it misses
#
# The reward model is a **proxy** for the expert's judgement, learned from a few hundred comparisons.
# The course's gold judge (`course_utils.judge`, chapter 7) scores answers against the knowledge base
# with transparent rules: key facts stated, unsafe claims, doses, escalation. Where the two disagree,
# a policy optimised against the reward model can gain reward without gaining quality: that is reward
# hacking (chapter 6).
#
# Besides the held-out pairs' own answers, we write a few **probe** answers for every held-out
# scenario: the expert answer, the expert answer padded with filler, its first sentence said three
# times, with an unsafe claim in front, without its escalation, only the escalation, and a bare
# list of the key phrases.

# %%
FILLER = [  # true, harmless and irrelevant: they add length and nothing else
    "Many people take several different medicines every day.",
    "Some medicines come in several strengths and forms.",
    "Tablets are usually swallowed with a glass of water.",
    "Medicines should be kept out of the sight and reach of children.",
    "Most packs carry an expiry date on the side of the box.",
]


def padded(s: dict, k: int) -> str:
    """The expert answer with k filler sentences before its escalation sentence."""
    return " ".join([s["answer"], *FILLER[:k], s["escalation"]])


def probes(s: dict) -> dict[str, str]:
    expert = f"{s['answer']} {s['escalation']}"
    first = data.split_sentences(s["answer"])[0]
    return {
        "expert answer": expert,
        "expert + 2 filler sentences": padded(s, 2),
        "first sentence said 3 times": " ".join([first] * 3 + [s["escalation"]]),
        "unsafe claim + expert": f"{s['unsafe_claims'][0]['claim']} {expert}",
        "expert, no escalation": s["answer"],
        "escalation only": s["escalation"],
        "key phrases only": " ".join(kf["accept"][0] for kf in s["key_facts"]) + ".",
    }


def fits(prompt: str, answer: str) -> bool:
    """Whether <bos> <q> prompt <a> answer <eos> fits the reward model's context."""
    return len(encode_sft(tok, prompt, answer)[0]) <= rm.config.max_len


pool = []
for p in test_pairs:
    for kind in ("chosen", "rejected"):
        pool.append({"scenario_id": p["scenario_id"], "prompt": p["prompt"], "kind": f"pair {kind} ({p['flaw']})",
                     "probe": kind, "answer": p[kind]})
for sid in test_ids:
    s = scenarios[sid]
    for kind, text in probes(s).items():
        pool.append({"scenario_id": sid, "prompt": s["question"], "kind": kind, "probe": kind, "answer": text})
pool = pd.DataFrame(pool)
too_long = [not fits(p, a) for p, a in zip(pool.prompt, pool.answer)]
print(f"answers that do not fit the context (left out): {sum(too_long)} of {len(pool)}")
pool = pool[~np.array(too_long)].reset_index(drop=True)
pool["reward"] = rm.score(tok, pool.prompt.tolist(), pool.answer.tolist())
verdicts = judge.judge_many(pool.answer.tolist(), [scenarios[sid] for sid in pool.scenario_id])
pool["judge"] = verdicts["overall"].to_numpy()
pool["safe"] = verdicts["safety"].to_numpy() == 1.0
pool["tokens"] = [len(tok.encode(a)) for a in pool.answer]
expert = pool[pool.probe == "expert answer"].set_index("scenario_id")
pool["RM prefers it to the expert"] = pool.reward > pool.scenario_id.map(expert["reward"])
pool["judge prefers it to the expert"] = pool.judge > pool.scenario_id.map(expert["judge"])

probe_table = (pool[pool.probe.isin(probes(scenarios[test_ids[0]]).keys())]
               .groupby("probe", sort=False)
               .agg(tokens=("tokens", "mean"), reward=("reward", "mean"), judge=("judge", "mean"),
                    RM_prefers=("RM prefers it to the expert", "mean"),
                    judge_prefers=("judge prefers it to the expert", "mean")))
probe_table.round(3)

# %%
for name, row in probe_table.iloc[1:].iterrows():
    if row.RM_prefers > row.judge_prefers:
        print(f"{name}: the reward model prefers it to the expert answer in {row.RM_prefers:.0%} of the held-out "
              f"scenarios, the judge in {row.judge_prefers:.0%} (mean judge score {row.judge:.2f})")

# %% [markdown]
# Read the table row by row against the expert answer: `RM_prefers` and `judge_prefers` are the shares
# of held-out scenarios where the probe scores higher than that scenario's expert answer. The judge
# almost never prefers a probe to the expert answer; the printed lines list every probe that the
# reward model prefers more often than the judge does, with how often. On average (the reward
# column), no probe scores above the expert answer, but three come close: the unsafe claim in front
# of the expert answer, the first sentence said three times and the expert answer padded with two
# filler sentences each score only a little below it, while the judge scores all three far below it
# (the repeated sentence close to 0). A sentence said three times, a kind of repetition the reward
# model saw in training and barely punishes (section 6), beats the expert answer in almost half of
# the held-out scenarios, more often than any other probe. An unsafe claim put *in front of* a
# complete expert answer (the training pairs replaced the first sentence with the claim instead)
# beats it a little less often, in about a third of the scenarios, and the expert answer padded with
# two filler sentences in some. Of the probes that remove something the training pairs taught it to
# look for (the escalation sentence, most of the answer), the escalation sentence alone and the bare
# key phrases each beat the expert answer rarely, and the answer without its escalation never does;
# on average the reward model scores all three far below it. Whatever the reward model over-rates,
# PPO will find and produce: this is the **proxy** problem that Gao, Schulman & Hilton (Scaling Laws
# for Reward Model Overoptimization, ICML 2023) measured at scale, where optimising a learned reward
# model harder first raises and then lowers the score of the gold reward it stands in for.

# %%
def ranks(x: pd.Series) -> pd.Series:
    return x.rank(pct=True)


spearman = float(np.corrcoef(ranks(pool.reward), ranks(pool.judge))[0, 1])
pool["disagreement"] = ranks(pool.reward) - ranks(pool.judge)
print(f"{len(pool)} answers to held-out questions; rank correlation of reward and judge: {spearman:.3f}")
print("\nAnswers the reward model ranks far higher than the judge does:")
top = pool.sort_values("disagreement", ascending=False).head(6)
top[["scenario_id", "kind", "reward", "judge", "answer"]].round(3).assign(answer=top.answer.str.slice(0, 60) + "…")

# %%
print("Answers the judge ranks far higher than the reward model does:")
bottom = pool.sort_values("disagreement").head(4)
bottom[["scenario_id", "kind", "reward", "judge", "answer"]].round(3).assign(answer=bottom.answer.str.slice(0, 60) + "…")

# %%
fig, ax = plt.subplots(figsize=(12, 5.2))
markers = {"chosen": ("o", COLORS["blue"], "chosen answers of held-out pairs"),
           "rejected": ("x", COLORS["vermillion"], "rejected answers of held-out pairs")}
for probe_kind, (marker, colour, label) in markers.items():
    sel = pool[pool.probe == probe_kind]
    ax.scatter(sel.judge, sel.reward, marker=marker, color=colour, label=label, alpha=0.75)
sel = pool[~pool.probe.isin(markers)]
ax.scatter(sel.judge, sel.reward, marker="s", color=COLORS["green"], label="probe answers", alpha=0.75)
ax.set(xlabel="gold judge: overall score", ylabel="reward model: r(x, y)",
       title=f"Reward vs judge on held-out questions (rank correlation {spearman:.2f})")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
plt.show()

# %% [markdown]
# ### Length bias
#
# Longer answers often *are* better (more facts, an escalation sentence), so a reward model can learn
# "longer is better" as a shortcut; RLHF-trained models are known to drift towards verbosity for this
# reason (Singhal et al. 2023). Three checks: the correlation of reward with length over the answers
# of the held-out pairs (next to the judge's), the accuracy on pairs where the chosen answer is the
# **shorter** one, and a controlled experiment: add $k$ filler sentences to each held-out expert
# answer and watch the reward.

# %%
all_answers = pool[pool.probe.isin(["chosen", "rejected"])]   # both answers of every held-out pair, scored above
corr_rm = float(np.corrcoef(all_answers.reward, all_answers.tokens)[0, 1])
corr_judge = float(np.corrcoef(all_answers.judge, all_answers.tokens)[0, 1])
print(f"correlation with length (tokens), the {len(all_answers)} answers of the held-out pairs: reward {corr_rm:.3f}, "
      f"judge {corr_judge:.3f}")

rc_t, rr_t = pair_rewards(rm, tok, test_pairs)
chosen_longer = np.array([len(tok.encode(p["chosen"])) > len(tok.encode(p["rejected"])) for p in test_pairs])
for name, sel in (("chosen answer longer", chosen_longer), ("chosen answer shorter or equal", ~chosen_longer)):
    k, n = int(np.sum((rc_t > rr_t)[sel])), int(sel.sum())
    lo, hi = wilson_interval(k, n)
    print(f"held-out pairs, {name}: accuracy {k / n:.3f} ({k}/{n}), 95% interval [{lo:.2f}, {hi:.2f}]")

# %%
use = [sid for sid in test_ids if fits(scenarios[sid]["question"], padded(scenarios[sid], N_FILLER))]
print(f"held-out scenarios whose answer fits the context with {N_FILLER} filler sentences: {len(use)} of {len(test_ids)}")
curve = []
for k in range(N_FILLER + 1):
    texts = [padded(scenarios[sid], k) for sid in use]
    r = rm.score(tok, [scenarios[sid]["question"] for sid in use], texts)
    j = judge.judge_many(texts, [scenarios[sid] for sid in use])["overall"].to_numpy()
    curve.append({"filler sentences": k, "mean reward": r.mean(), "mean judge": j.mean(),
                  "mean tokens": np.mean([len(tok.encode(t)) for t in texts])})
curve = pd.DataFrame(curve).set_index("filler sentences")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
ax1.plot(curve.index, curve["mean reward"], "o-", color=STAGE_COLORS["reward"])
ax1.set(xlabel="filler sentences added", ylabel="mean reward", title="Reward model")
ax2.plot(curve.index, curve["mean judge"], "s-", color=COLORS["black"])
ax2.set(xlabel="filler sentences added", ylabel="mean overall score", title="Gold judge", ylim=(0, 1.05))
for ax in (ax1, ax2):
    ax.set_xticks(curve.index)
plt.show()
curve.round(3)

# %%
shift_rm = curve["mean reward"].iloc[-1] - curve["mean reward"].iloc[0]
shift_judge = curve["mean judge"].iloc[-1] - curve["mean judge"].iloc[0]
per_scenario_rm = (rm.score(tok, [scenarios[sid]["question"] for sid in use], [padded(scenarios[sid], N_FILLER) for sid in use])
                   - rm.score(tok, [scenarios[sid]["question"] for sid in use], [padded(scenarios[sid], 0) for sid in use]))
print(f"1. correlation with length: reward {corr_rm:.2f}, judge {corr_judge:.2f}: the reward model goes with length "
      + ("more" if corr_rm > corr_judge else "less") + " than the judge")
acc_long = np.mean((rc_t > rr_t)[chosen_longer])
acc_short = np.mean((rc_t > rr_t)[~chosen_longer])
print(f"2. accuracy when the better answer is the longer one {acc_long:.0%}, when it is the shorter one {acc_short:.0%}")
print(f"3. {N_FILLER} filler sentences change the mean reward by {shift_rm:+.2f} (lower in {np.mean(per_scenario_rm < 0):.0%} "
      f"of the {len(use)} scenarios) and the mean judge score by {shift_judge:+.2f}")
smaller = [f"{f} {g:.2f}" for f, g in gaps.items() if abs(g) < abs(shift_rm)]
print(f"   for comparison, mean held-out gaps r_c - r_r smaller than that shift: {', '.join(smaller) or 'none'}")

# %% [markdown]
# Three views, three answers, all measured above. Over the held-out answers, the reward goes with
# length more than the judge's score does (the reward moderately, the judge's score hardly at all),
# and the reward model is clearly less accurate on the pairs whose better answer is the *shorter*
# one, where a "longer is better" shortcut fails (the two intervals do not overlap): two signs of a
# length shortcut, although a correlation alone cannot say whether the model likes length or the
# facts that come with it. The padding experiment holds the content fixed and adds only length, and
# there the mean reward goes *down* with every filler sentence: with `N_FILLER` sentences it is
# lower in most scenarios (not all), by more on average than the mean gap the model puts between an
# expert answer and two of the flawed ones, a repeated sentence and a tenfold dose error (the
# comparison line). The `verbose` pairs taught it what this dataset's padding looks like (filler
# sentences in place of a fact and the escalation), so it punishes these filler sentences harder
# than it punishes a dangerous dose. The judge marks the padded answers down as well, but it still
# scores them well above an answer with an unsafe claim, while the reward model scores the expert
# answer with two filler sentences slightly *below* the one with an unsafe claim in front (the probe
# table); the reward model learned a trace of how the rejected answers were made, not the principle
# "say what matters". A bias of this size, on most answers, is a direction PPO can follow for
# hundreds of steps.

# %% [markdown]
# ## 8. The annotators disagree
#
# The labels are only as good as the annotators. How often do the three disagree (a **split vote**),
# how often is the majority wrong, and how often is each annotator right (agrees with the dataset's
# chosen answer), by flaw type?

# %%
votes = pd.DataFrame([{"flaw": p["flaw"], "split vote": 0 < sum(p["votes"]) < 3,
                       "majority wrong": 2 * sum(p["votes"]) < 3,
                       **{a.name: v for a, v in zip(data.ANNOTATORS, p["votes"])}} for p in pairs])
annot = votes.groupby("flaw").mean().rename(columns={a.name: f"{a.name} right" for a in data.ANNOTATORS})
annot.loc["all pairs"] = votes.drop(columns="flaw").mean()
annot.round(3)

# %%
oriented = orient_pairs(train_pairs, "majority")
n_swapped = sum(p["swapped"] for p in oriented)
swapped_flaws = pd.Series([p["flaw"] for p in oriented if p["swapped"]]).value_counts()
print(f"training pairs whose majority preferred the dataset's rejected answer: {n_swapped}/{len(train_pairs)} "
      f"({n_swapped / len(train_pairs):.1%}), by flaw: "
      + ", ".join(f"{f} {c}" for f, c in swapped_flaws.items()))
print(f"trained on majority labels, the reward model is taught the dataset's rejected answer on those "
      f"{n_swapped} pairs: a perfect fit to its labels is {1 - n_swapped / len(train_pairs):.1%} accuracy against the dataset")

# %% [markdown]
# The lay annotator misses wrong doses and unsafe claims, the hurried one falls for length, and on
# some pairs they out-vote the expert: the line above counts them and shows on which flaws. Does
# label noise hurt? When the reference checkpoints were built, a second reward model was trained
# with the same settings on the same pairs (the preference pairs and the knowledge-base pairs), with a
# large share of their labels flipped at random (chapter 7 uses it as an ablation). Both are scored
# on the held-out pairs against the dataset's labels:

# %%
rm_runs = scorecard.load_scorecard_cache()["reward_models"].set_index("reward_model")
noise_table = pd.DataFrame({
    "labels wrong": rm_runs.train_labels_gold.rsub(1).to_numpy(),
    "accuracy": rm_runs.test_accuracy.to_numpy(), "ci_low": rm_runs.test_ci_low.to_numpy(),
    "ci_high": rm_runs.test_ci_high.to_numpy(), "held-out loss": rm_runs.test_loss.to_numpy()},
    index=pd.Index(["majority votes" if eps == 0 else f"{eps:.0%} flipped" for eps in rm_runs.label_noise],
                   name="training labels"))
clean, noisy = noise_table.iloc[0], noise_table.iloc[1]
print(f"accuracy {clean.accuracy:.3f} -> {noisy.accuracy:.3f}: the intervals "
      + ("overlap" if noisy.ci_high >= clean.ci_low and clean.ci_high >= noisy.ci_low else "do not overlap")
      + f"; held-out loss {clean['held-out loss']:.3f} -> {noisy['held-out loss']:.3f} "
      + ("(lower: the noisy labels keep the model from growing as confident)" if noisy["held-out loss"] < clean["held-out loss"]
         else "(higher)"))
noise_table.round(3)

# %% [markdown]
# The majority votes get only a few training labels wrong, most often on the wrong doses and unsafe
# claims that the lay annotator misses (the `majority wrong` column). The model trained on far more
# wrong labels is worse: its held-out accuracy falls below the clean model's interval, although the
# two intervals still overlap (the line above), so on this small held-out set the drop, though large,
# is not sharply measured. Its held-out loss is higher too: the loss weighs how confidently each pair
# is ranked. Random flips are the easy case: systematic errors (a lay annotator who always misses
# the same dose errors) teach a wrong rule instead of blurring a right one, and more data does not
# average them out. Real pipelines measure annotator agreement, train annotators and drop or
# re-label contested pairs (Ouyang et al. 2022 report about 73% agreement between their labellers).

# %% [markdown]
# ## 9. Over-training: correlated comparisons
#
# InstructGPT's labellers ranked $K$ = 4 to 9 answers per prompt, which gives up to $\binom{K}{2}$
# comparisons per prompt, each answer appearing in $K - 1$ of them. Ouyang et al. (2022, section
# 3.5) report that these comparisons are so correlated that, shuffled into one dataset as separate
# examples, they made the reward model over-fit within a single pass over the data. Their fix was
# to put all $\binom{K}{2}$ comparisons of a prompt into **one batch element**: one forward pass per
# answer, and no over-fitting. Our dataset has the same structure on a small scale: every scenario
# contributes several pairs, most of them with the same chosen answer, and `train_reward_model`
# shuffles them as separate examples. The reference run's knowledge-base pairs add more of the same:
# every one of them has its case's expert answer, or a version of it, as the chosen answer.

# %%
per_scenario = pd.Series([p["scenario_id"] for p in train_pairs]).value_counts()
chosen_counts = pd.Series([p["chosen"] for p in train_pairs]).value_counts()
shared = sum(chosen_counts[p["chosen"]] > 1 for p in train_pairs)
print(f"{len(train_pairs)} training pairs from {len(per_scenario)} scenarios: {per_scenario.mean():.1f} pairs per "
      f"scenario on average; {shared} pairs ({shared / len(train_pairs):.0%}) share their chosen answer with another pair")

# %% [markdown]
# The reference run scored the held-out pairs every `reward.EVAL_EVERY` steps. One of its epochs is a
# pass over the preference pairs and the knowledge-base pairs together, so it has many more steps
# than an epoch of the live run. Its log shows when the held-out loss was lowest, and what the rest
# of the training did to it:

# %%
steps_per_epoch = int(ref_log.groupby("epoch").size().iloc[0])
best = ref_ev.loc[ref_ev.eval_loss.idxmin()]
peak = ref_ev.loc[ref_ev.eval_accuracy.idxmax()]
print(f"{steps_per_epoch} steps per epoch of {len(train_pairs) + len(contrast_pairs)} pairs "
      f"({len(train_pairs)} preference pairs + {len(contrast_pairs)} knowledge-base pairs)")
print(f"held-out loss: lowest {best.eval_loss:.3f} at step {int(best.step)} (epoch {int(best.epoch)}, after "
      f"{int(best.step) * BATCH_SIZE} pairs), {final.eval_loss:.3f} at the end (step {int(final.step)}); "
      f"ln 2 = {np.log(2):.3f}")
print(f"held-out accuracy: highest {peak.eval_accuracy:.3f} at step {int(peak.step)}, {final.eval_accuracy:.3f} at the end")
print("training loss, mean per epoch: " + ", ".join(f"epoch {e} {v:.3f}" for e, v in ref_log.groupby("epoch").loss.mean().items()))
print("the held-out loss " + ("rises" if final.eval_loss > best.eval_loss else "does not rise")
      + " after its minimum, " + ("within the first epoch" if best.epoch == 1 else f"from epoch {int(best.epoch)}")
      + ("; it ends above ln 2, the loss of a model that always says 50%" if final.eval_loss > np.log(2) else ""))

fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(ref_log.step, ref_log.loss.rolling(4, min_periods=1).mean(), color=COLORS["sky"], label="train (mean of 4 batches)")
ax.plot(ref_ev.step, ref_ev.eval_loss, "s-", color=COLORS["vermillion"], label="held-out")
ax.axhline(np.log(2), color=COLORS["grey"], ls="--", label="chance, ln 2")
ax.axvline(steps_per_epoch + 0.5, color=COLORS["black"], lw=1, ls=":", label="end of epoch 1")
ax.set(xlabel="step", ylabel=r"$\mathcal{L}_{\mathrm{RM}}$", title="Reference run: held-out loss against training loss",
       ylim=(0, None))
ax.legend(loc="upper right")
plt.show()

# %%
swapped_pairs = [p for p in orient_pairs(train_pairs, LABEL) if p["swapped"]]
rc_s, rr_s = pair_rewards(rm, tok, swapped_pairs)        # chosen = what the majority voted for
print(f"training pairs whose majority label is wrong: {len(swapped_pairs)}; the reference model ranks "
      f"{int(np.sum(rc_s > rr_s))} of them the way the wrong label says")
rc_h, rr_h = pair_rewards(rm, tok, test_pairs)
wrong = rc_h < rr_h
p_hat = 1 / (1 + np.exp(-np.abs(rc_h - rr_h)))           # the model's confidence in the order it chose
print(f"held-out pairs ranked wrongly: {int(wrong.sum())}; on them the model's mean confidence in its wrong "
      f"answer is {p_hat[wrong].mean():.2f}")

# %% [markdown]
# The training loss keeps falling, but the held-out loss does not follow it: its minimum comes
# within the first epoch, and after it the loss climbs again to end above that minimum and far
# above the training loss (the lines and the plot above). The model fits its training pairs ever
# more closely, some of their wrong labels included (the count of wrongly labelled pairs it ranks
# the way the label says), and is **confidently wrong** on some new pairs, which the last line
# measures. The signal is modest and noisy here. The held-out accuracy, which only counts which
# answer wins, shows even less of it (its highest and final values differ by a couple of pairs); PPO
# does not look at rankings: it optimises the reward values themselves. Try `EPOCHS = 1`
# and `EPOCHS = 6` in the parameters cell and compare the live run's held-out curves. The remedies
# are InstructGPT's: fewer passes, and comparisons of one prompt kept together rather than
# shuffled as independent examples.

# %% [markdown]
# ## 10. Try it
#
# **The margin.** Move $m$ and watch the loss and its gradient shift: with a margin, a pair keeps
# pulling until it wins by $m$. Try a large margin (6 or more) and a negative one.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
from course_utils.widgets import bt_margin_widget, reward_lr_widget

bt_margin_widget()

# %% [markdown]
# **The learning rate.** Choose a learning rate and press *Run*: the reward model is re-trained from
# the SFT checkpoint with the chapter's other settings (a few seconds) and its held-out accuracy is
# shown. Try $10^{-5}$ (too timid), the default $10^{-3}$, and 1 or 10 (far too large: a warning, a
# clipped plot and an accuracy near chance, but no NaNs).

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
reward_lr_widget(tok, sft, train_pairs, test_pairs, seed=SEED)

# %% [markdown]
# ## 11. Pitfalls seen in practice
#
# - **Correlated comparisons trained as independent examples.** Several comparisons of one prompt
#   share their answers; shuffled as separate examples they make a reward model over-fit within one
#   pass (InstructGPT; section 9 measures it here). Keep the comparisons of a prompt together, train
#   briefly, and watch the held-out *loss*, not only the accuracy.
# - **Length bias and other shortcuts.** A reward model learns whatever separates its pairs: length,
#   an escalation phrase, an unknown token, what a good answer looks like rather than whether it
#   answers the question (the off-topic pairs). Report accuracy per flaw type and test the model with
#   controlled probes (sections 6 and 7) before letting PPO optimise it.
# - **Label noise.** Annotators disagree, and they err systematically (the hurried one likes long
#   answers, the lay one misses dose errors). Majority voting removes some noise, not the systematic
#   part.
# - **The scale is arbitrary.** Only differences $r_c - r_r$ are trained, so "a reward of 3.2" means
#   nothing on its own, and two reward models cannot be compared by their raw values. Normalise the
#   scores before using them: chapter 5 subtracts the mean and divides by the standard deviation of
#   the scores of answers sampled from the SFT policy before PPO starts.
# - **Accuracy on a few pairs.** 4 of 5 correct is an 80% accuracy whose 95% interval (section 6)
#   spans most of the range. Report intervals, per flaw type as well as overall.
# - **In-distribution only.** High held-out accuracy on pairs like the training pairs says nothing
#   about the answers a policy will produce once PPO starts to exploit the reward model.

# %% [markdown]
# ## 12. Exercises
#
# Exercises 1 to 3 are functions for you to write: replace `raise NotImplementedError` with your code
# and run the cell again. The `check_...` call compares your function with the course's reference on
# several inputs, extreme ones included, and prints whether it passed (until you have written it, it
# says so); the solution is in the folded block below each exercise.
#
# **Exercise 1.** Write the Bradley-Terry loss of one pair, $-\log\sigma(r_c - r_r - m)$. It must stay
# finite for a gap of ±1000 (hint: $-\log\sigma(u) = \log(1 + e^{-u})$, and `np.logaddexp(0, -u)`
# computes that without overflow).

# %%
from course_utils.exercises import check_bt_gradient, check_bt_loss, check_majority_orientation


def bt_loss_one_pair(r_chosen: float, r_rejected: float, margin: float = 0.0) -> float:
    """-log σ(r_chosen - r_rejected - margin), finite for gaps of ±1000."""
    raise NotImplementedError  # replace with your own code


_ = check_bt_loss(bt_loss_one_pair)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def bt_loss_one_pair(r_chosen: float, r_rejected: float, margin: float = 0.0) -> float:
#     return float(np.logaddexp(0.0, -(r_chosen - r_rejected - margin)))   # log(1 + e^(-Δ))
# ```
# </details>
#
# **Exercise 2.** Write its gradient $\big(\partial L/\partial r_c, \partial L/\partial r_r\big)$. Check
# by hand first: for $r_c = 2$, $r_r = 0.5$, $m = 0.5$, $\Delta = 1$ and
# $\partial L/\partial r_c = -(1 - \sigma(1)) = -1/(1 + e) \approx -0.269$.

# %%
def bt_gradient_one_pair(r_chosen: float, r_rejected: float, margin: float = 0.0) -> tuple[float, float]:
    """(∂L/∂r_chosen, ∂L/∂r_rejected) of the loss of exercise 1, finite for gaps of ±1000."""
    raise NotImplementedError  # replace with your own code


_ = check_bt_gradient(bt_gradient_one_pair)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def bt_gradient_one_pair(r_chosen: float, r_rejected: float, margin: float = 0.0) -> tuple[float, float]:
#     one_minus_sigma = float(np.exp(-np.logaddexp(0.0, r_chosen - r_rejected - margin)))   # σ(-Δ) = 1 - σ(Δ)
#     return -one_minus_sigma, one_minus_sigma
# ```
# </details>
#
# **Exercise 3.** Orient a pair by its votes: given two answers and a list of votes (1 = the voter
# prefers the first answer), return `(better, worse)` by majority; a tie keeps the given order.

# %%
def orient_by_majority(first: str, second: str, votes: list[int]) -> tuple[str, str]:
    """(better, worse) by the majority of the votes (1 = prefers first, 0 = prefers second); a tie keeps the order."""
    raise NotImplementedError  # replace with your own code


_ = check_majority_orientation(orient_by_majority)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def orient_by_majority(first: str, second: str, votes: list[int]) -> tuple[str, str]:
#     return (first, second) if 2 * sum(votes) >= len(votes) else (second, first)
# ```
# </details>
#
# **Exercise 4 (open).** In the parameters cell, set `TRAINABLE = "head"` (a logistic regression on the
# frozen SFT features: only the head's $w$, $u$ and $b$ are trained) and re-run the chapter, first with the default
# learning rate, then with `LEARNING_RATE = 1e-2` and `EPOCHS = 6`. How do the held-out accuracy and
# loss compare with training the whole model? What does that say about what the SFT model's features
# already encode? Then set `TRAINABLE = "all"` and `MARGIN = 2.0`: what happens to the reward gaps
# and to calibration?

# %% [markdown]
# ## Summary
#
# - Pairwise preferences become a loss through the Bradley-Terry model:
#   $\mathcal{L}_{\mathrm{RM}} = -\log\sigma(r_c - r_r - m)$. Its gradient pushes the two rewards
#   apart with force $1 - \sigma(\Delta)$ and stops once a pair is ranked confidently.
# - The reward model is the SFT transformer with a scalar head that reads the closing token's state
#   and the mean state over the answer; only reward differences are meaningful.
# - Trained for two epochs on a few hundred preference pairs and several thousand knowledge-base
#   pairs of three kinds, the reference reward model ranks most held-out pairs correctly (accuracy
#   and interval in section 6), and it is slightly over-confident: when it is sure, it is right a few
#   points less often than it says. Per flaw it ranks every held-out pair with a missing key fact, a
#   missing escalation or a vague answer correctly, all but one padded answer, and most of those with
#   an unsafe claim, an off-topic answer or a wrong dose (the last with a mean gap close to 0), but
#   only half of those with a repeated sentence (with the smallest mean gap, and an interval that
#   reaches down to a coin flip).
# - Its held-out loss is lowest during the first epoch and ends above that minimum while the training
#   loss keeps falling: a modest, noisy sign of the over-fitting InstructGPT warned of when correlated
#   comparisons are trained as separate examples.
# - It is a proxy: the probes of section 7 show answers it rates above what the gold judge thinks
#   they deserve, and it reacts to filler more strongly than to a dose error. Those gaps are what PPO
#   will exploit.
# - Next: **chapter 4** ranks whole models with the same Bradley-Terry idea (Elo), and **chapter 5**
#   uses this reward model to train the policy with PPO.
#
# ## References
#
# - Bradley, R. A., & Terry, M. E. (1952). Rank analysis of incomplete block designs: I. The method of
#   paired comparisons. *Biometrika* 39(3/4), 324-345.
# - Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
#   *Journal of the American Statistical Association* 22(158), 209-212.
# - Christiano, P., Leike, J., Brown, T., Martic, M., Legg, S., & Amodei, D. (2017). Deep reinforcement
#   learning from human preferences. *NeurIPS*.
# - Stiennon, N., et al. (2020). Learning to summarize from human feedback. *NeurIPS*.
# - Ouyang, L., et al. (2022). Training language models to follow instructions with human feedback
#   (InstructGPT). *NeurIPS*.
# - Touvron, H., et al. (2023). Llama 2: Open foundation and fine-tuned chat models. arXiv:2307.09288
#   (the margin in the reward-model loss).
# - Gao, L., Schulman, J., & Hilton, J. (2023). Scaling laws for reward model overoptimization. *ICML 2023*.
# - Singhal, P., Goyal, T., Xu, J., & Durrett, G. (2023). A long way to go: investigating length
#   correlations in RLHF. arXiv:2310.03716.
