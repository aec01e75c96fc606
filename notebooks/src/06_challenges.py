# %% [markdown]
# # Chapter 6 · The challenges of RLHF, measured
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/06_challenges.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/06_challenges.ipynb)
#
# **Part 2 of the course · after stage 4** (pretraining → SFT → reward model → PPO → **what goes wrong**)
#
# Chapter 5 set PPO to climb the reward model. But the reward model is not what we want: it is a
# small network that learned, from a few hundred preference pairs, to *imitate* the judgement of an
# expert. Everything RLHF does rests on that imitation. This chapter takes four things that go wrong
# with it, four standard challenges of RLHF (Casper et al. 2023 survey these and the method's other open
# problems), and turns each into an experiment on our own models:
#
# | challenge | the question we measure |
# |---|---|
# | **reward hacking** | when PPO pushes hard on the reward model, does the real quality follow? |
# | **annotation quality** | how much do wrong preference labels hurt the reward model? |
# | **distribution shift** | does the reward model still judge well on answers unlike its training data? |
# | **scalability** | what does RLHF cost, and how does the cost grow with the model? |
#
# Each one goes: the problem → an example → the experiment → the mitigations → their measured effect.
# Two questions are asked of every challenge: how **severe** is it (what share of the model's skill does
# the unmitigated problem destroy?) and how **effective** is the best mitigation (what share of the lost
# quality does it win back?). Both are defined so that they can be measured, with an interval wherever
# quality is won back, and section 5 puts the four challenges side by side.
#
# **You will learn to**
# 1. tell the *proxy* (the reward model) from the *gold* reward (the rubric judge that plays the
#    pharmacist), and test whether the gold score follows when PPO pushes on the proxy: over-optimisation;
# 2. fit the Gao, Schulman & Hilton (2023) law $R(d) = d\,(a - b \log d)$ to gold score against KL distance;
# 3. measure how label noise degrades a reward model and what majority voting and a noise-robust loss
#    win back;
# 4. measure a reward model outside its training distribution, and the effect of labelling on-policy data;
# 5. count what RLHF costs (four models in memory, FLOPs per iteration) and extrapolate it, on paper, to
#    real model sizes;
# 6. define "mitigation effectiveness" so that it can be measured, and report it with an interval.
#
# **Where this sits.** Nothing new is trained for the pipeline: this chapter stress-tests the models of
# chapters 2, 3 and 5. The full experiments (three PPO runs judged at several checkpoints, and about
# twenty reward models) take about two minutes, too long for a notebook, so they ran once when the
# checkpoints were built (`challenges.build_experiments_cache`, rebuilt exactly by `make checkpoints`)
# and this notebook loads their tables. A few small experiments run live below, so that you can see one
# of each happen. Every number printed below comes from those tables or from the live runs; when the
# checkpoints are rebuilt, the numbers (and the verdicts printed with them) follow.
#
# > **Educational material, not medical advice.** The pharmaceutical cases are simplified teaching
# > examples, and the models here are tiny and often wrong; several answers shown below are the
# > degenerate output of a policy that gamed its reward. Never use them for decisions about real
# > patients; ask a pharmacist or prescriber.

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
CHECKPOINT_DIR = None          # None: the committed checkpoints (and experiments.npz) in data/checkpoints/
# the live experiments (the cached ones use challenges.CHAPTER_SETTINGS)
LIVE_BETA = 0.002              # β of the short live PPO run
LIVE_ITERATIONS = 4            # its length
LIVE_LR = 3e-4                 # its learning rate (as in the cached runs)
LIVE_EVAL_PROMPTS = 8          # held-out prompts the live policy answers (greedy)
LIVE_FLIP_RATE = 0.3           # extra flip rate of every annotator's vote, live reward model
LIVE_EPOCHS = 1                # epochs of the live reward model (the cached ones: 2)
COST_WIDTHS = (32, 64, 128)  # d_model of the live cost measurement
COST_NEW_TOKENS = 16           # answer length in the cost measurement
N_EXAMPLES = 3                 # hacked answers shown in full

# %%
import textwrap
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

from course_utils import challenges, checkpoints, data, judge, ppo, reward
from course_utils.exercises import check_conservative_bt, check_effectiveness, check_gao_fit
from course_utils.losses import bradley_terry_loss
from course_utils.paths import CHECKPOINT_DIR as COMMITTED_CHECKPOINTS
from course_utils.plotting import COLORS, STAGE_COLORS, smooth, use_course_style
from course_utils.widgets import hacking_curves_widget, noise_rate_view, noise_rate_widget

use_course_style()
pd.set_option("display.width", 150)
pd.set_option("display.max_colwidth", 90)

ckpt = COMMITTED_CHECKPOINTS if CHECKPOINT_DIR is None else Path(CHECKPOINT_DIR)
tok = checkpoints.load_tokenizer(ckpt)
sft = checkpoints.load("sft", ckpt)           # π_sft, and (a frozen copy) the reference π_ref
rm = reward.load_reward_model(ckpt)           # r_φ, the proxy (chapter 3)
R = challenges.load_experiments_cache(ckpt)            # every table of the cached experiments
S = challenges.CHAPTER_SETTINGS              # the settings they ran with
scenarios = {s["id"]: s for s in data.load_scenarios()}
eval_prompts = data.load_eval_prompts()
prefs = data.load_preferences()
train_pairs = [p for p in prefs if p["split"] == "train"]
test_pairs = [p for p in prefs if p["split"] == "test"]
print(f"{len(R)} cached tables; {len(eval_prompts)} held-out evaluation prompts; "
      f"{len(train_pairs)} training and {len(test_pairs)} test preference pairs")


def wrap(text: str, width: int = 110, indent: str = "    ") -> str:
    return textwrap.fill(text, width, initial_indent=indent, subsequent_indent=indent)


def log_axes(ax, xticks, y: bool = True) -> None:
    """Logarithmic axes with plain-number labels: x at ``xticks``, y at 1-2-5 steps."""
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(list(xticks)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(plain)
    if y:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(plain)


# %% [markdown]
# ## 0. Two rewards, and one way to score a mitigation
#
# Two scores run through the whole chapter:
#
# * the **proxy** $r_\phi(x, y)$: the reward model of chapter 3, the only reward PPO ever sees;
# * the **gold** score $J(x, y) \in [0, 1]$: the rubric judge of `course_utils.judge`, which checks an
#   answer against the knowledge base (key facts stated, unsafe claims, doses, escalation advice,
#   specificity). It plays the expert pharmacist whose preferences the reward model was meant to learn.
#
# The gold judge never trains anything here; it measures. Two uses come close, and are marked where they
# happen: early stopping (section 1.6) uses it on validation prompts to choose a checkpoint, and in
# section 3 it labels new preference pairs, standing in for new human labels. Where the two scores
# disagree, the policy can please the proxy without pleasing the pharmacist.
#
# Every challenge costs some quality $q$ (a gold score, a reward-model accuracy, an agreement rate).
# We define the **effectiveness** of a mitigation $M$ as the share of the lost quality it wins back:
#
# $$E = \frac{q_M - q_\text{bad}}{q_\text{good} - q_\text{bad}}$$
#
# | symbol | meaning |
# |---|---|
# | $q_\text{good}$ | the quality without the problem (e.g. the best gold score before over-optimisation) |
# | $q_\text{bad}$ | the quality with the problem and no mitigation |
# | $q_M$ | the quality with the problem and the mitigation $M$ |
#
# $E = 1$ recovers everything, $E = 0$ nothing, $E > 1$ beats the problem-free reference, $E < 0$ makes
# things worse. When nothing was lost ($q_\text{good} \le q_\text{bad}$), $E$ is undefined. By hand: the
# gold score falls from 0.40 to 0.30 and a mitigation ends at 0.35, so $E = (0.35 - 0.30) / (0.40 - 0.30)
# = 0.5$. Because $q_\text{good} - q_\text{bad}$ is a small difference of noisy averages, every $E$ below
# comes with a bootstrap 95 % interval (resampling the held-out prompts or pairs).

# %%
print(f"E = {challenges.effectiveness(0.35, 0.30, 0.40):.2f}  (the example above)")
print(f"E = {challenges.effectiveness(0.45, 0.30, 0.40):.2f}  (a mitigation that beats the problem-free reference)")
print(f"E = {challenges.effectiveness(0.50, 0.40, 0.40)}   (nothing was lost: undefined)")

# %% [markdown]
# ## 1. Reward hacking
#
# ### 1.1 The problem
#
# "When a measure becomes a target, it ceases to be a good measure" (Goodhart's law). The reward model
# agrees with the expert on the kinds of answers it was trained on; PPO then searches for answers the
# reward model scores highly, and the highest-scoring answers it finds need not be good ones. Skalse et
# al. (2022) call a proxy *hackable* when raising it can lower the true reward, and show that for rich
# policy classes almost every proxy is. Gao, Schulman & Hilton (2023) measured it: as the policy moves away from its
# starting point, the proxy reward keeps rising while the gold reward rises, peaks and falls.
#
# ### 1.2 Theory: the distance to the reference and the Gao law
#
# PPO maximises $\mathbb{E}[r_\phi(x, y)] - \beta\, \mathrm{KL}(\pi_\theta \,\|\, \pi_\text{ref})$. Gao et
# al. measure how far the policy has moved by $d = \sqrt{\mathrm{KL}(\pi_\theta \,\|\, \pi_\text{ref})}$
# (KL per answer, in nats) and found that the gold reward of an RL policy follows
#
# $$R_\text{gold}(d) = d\,(a - b \log d)$$
#
# | symbol | meaning |
# |---|---|
# | $d$ | $\sqrt{\mathrm{KL}}$, the distance from the SFT policy |
# | $R(d)$ | the gain over the starting policy, $J(d) - J(0)$ |
# | $a$ | the initial slope: how fast the gold score improves at first |
# | $b$ | the over-optimisation coefficient: how fast the improvement turns into a loss |
#
# $R$ is linear in $a$ and $b$ ($R = a\,d - b\,d\log d$), so ordinary least squares on the two columns
# $[d,\ -d \log d]$ fits them. Setting $dR/dd = a - b(\log d + 1) = 0$ gives the peak
# $d^* = e^{a/b - 1}$ with $R(d^*) = b\,d^*$.
#
# **By hand.** With $a = 0.03$ and $b = 0.01$: $d^* = e^{3 - 1} = e^2 = 7.39$, so the gold score peaks at
# $\mathrm{KL} = d^{*2} = 54.6$ nats with a gain of $0.01 \times 7.39 = 0.074$. The gain is back to zero
# where $a = b \log d$, at $d = e^{a/b} = e^3 = 20.1$ ($\mathrm{KL} \approx 403$ nats): at $d = 20$ it is
# $20\,(0.03 - 0.01 \ln 20) = 20 \times (0.03 - 0.02996) = 0.0009$, and beyond, a loss.
#
# KL is measured on samples: for an answer $y \sim \pi_\theta$, $\sum_t [\log \pi_\theta(y_t) - \log
# \pi_\text{ref}(y_t)]$ is an unbiased estimate of the KL of the whole answer (chapter 5's $k_1$).

# %%
a_demo, b_demo = 0.03, 0.01
d_star, r_star = challenges.gao_peak(a_demo, b_demo)
print(f"d* = {d_star:.2f}, KL at the peak = {d_star ** 2:.1f} nats, gain at the peak = {r_star:.4f}, "
      f"gain at d = 20: {challenges.gao_curve(20.0, a_demo, b_demo):.4f}")

# %% [markdown]
# ### 1.3 The experiment
#
# PPO from the SFT policy against the chapter-3 reward model: a run at a very small β (the **hacked** run) and
# one at a large β, planned for the same number of iterations (PPO's KL guard can stop a run early), with a
# learning rate four times chapter 5's so that over-optimisation can show within the time budget; a third run with
# a reward-model ensemble comes in section 1.6. Every comparison with a mitigation is made at that common
# length; the hacked run then goes on for longer, to show where over-optimisation leads (the parameters
# printed below give both lengths). At checkpoints along each run, the policy answers every held-out
# evaluation prompt (the last paraphrase of each case, never trained on) twice at temperature 1, and we
# record the KL to the reference, the proxy and the gold judge. A validation set of RL prompts is held out
# of PPO's training prompts for early stopping (section 1.6).
#
# How these settings were chosen: smaller β changes little (at β = 0.002 the penalty is already
# negligible next to the reward); a larger learning rate drives the KL into PPO's guard (`max_kl`)
# before the gold score has moved; two prompts per iteration instead of four make the held-out proxy
# wander even more; and much longer runs do not fit the time budget of the cache. Even so, over the common
# length the gold score's movements on our models are of the same order as its noise (only the continued
# run takes it clearly further), and PPO on a tiny model is chaotic: a rebuild of the checkpoints, or
# another seed, gives a different trajectory. Exercise (d) at the end runs another seed.

# %%
H = S.hacking
curves, training = R["hacking_curves"], R["hacking_training"]
print(f"β = {', '.join(f'{b:g}' for b in H.betas)}; {H.iterations} iterations of {H.batch_size} answers "
      f"({H.batch_size // H.samples_per_prompt} prompts × {H.samples_per_prompt}), the hacked run "
      f"(β = {min(H.betas):g}) continued to {H.hacked_iterations}; learning rate {H.lr:g}")
print(f"evaluation: {len(eval_prompts)} held-out prompts × {H.eval_samples} answers at "
      f"{len(H.checkpoints)} checkpoints of the hacked run; validation: {H.n_val} RL prompts × {H.val_samples}")
single = curves[curves.optimised == "reward model"]
hack_beta = single.beta.min()
hacked = single[single.beta == hack_beta]
hack_run = hacked.run.iloc[0]
cols = ["iteration", "kl", "d", "proxy", "gold", "gold_se", "medical_accuracy", "specificity", "dose_accuracy",
        "humility", "length"]
hacked[cols].round(3)

# %% [markdown]
# Read the table from top to bottom: the KL to the reference grows at almost every checkpoint (it dips
# once, at iteration 45) and reaches tens of nats by the end of the continued run. The proxy (the reward
# model's score) rises over the first forty iterations, then moves up and down without rising further; at
# every checkpoint after the start it stays well above where the SFT policy started. The gold column is
# the one PPO never sees; `gold_se` is its standard error over the prompts, the yardstick for "did it
# change?". The rows up to iteration 45 are the run that section 1.6's mitigations are compared with; the
# rows after it show where the run leads if it goes on. The plot shows the pattern, with the Gao law fitted
# to the hacked run's gold gains at all its checkpoints.

# %%
fit = R["gao_fit"].set_index(["run", "target"])
g0, p0 = hacked.gold.iloc[0], hacked.proxy.iloc[0]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6))
grid = np.linspace(0, hacked.d.max() * 1.02, 200)
for name, c in curves.groupby("run", sort=False):
    c = c.sort_values("d")
    if name == hack_run:
        kw = dict(color=STAGE_COLORS["hacked"], marker="o")
    elif c.optimised.iloc[0] == "reward model":
        kw = dict(color=COLORS["blue"], marker="o", alpha=0.8)
    else:
        kw = dict(color=COLORS["purple"], marker="D", ls="none", ms=9)
        c = c.iloc[1:]
    ax1.plot(c.d, c.proxy, label=name, **kw)
    ax2.plot(c.d, c.gold, label=name, **kw)
hs = hacked.sort_values("d")
ax2.fill_between(hs.d, hs.gold - 2 * hs.gold_se, hs.gold + 2 * hs.gold_se,
                 color=STAGE_COLORS["hacked"], alpha=0.12)
a_fit, b_fit = fit.loc[(hack_run, "gold"), ["a", "b"]]
ax2.plot(grid, g0 + challenges.gao_curve(grid, a_fit, b_fit), ":", color=COLORS["black"], lw=2.5,
         label=fr"Gao fit, β = {hack_beta:g}")
for ax, y0 in ((ax1, p0), (ax2, g0)):
    ax.axhline(y0, color=COLORS["grey"], ls="--", lw=1.2)
    ax.set_xlabel(r"$d = \sqrt{\mathrm{KL}(\pi \,\|\, \pi_{ref})}$ (nats$^{1/2}$)")
ax1.set(ylabel="reward-model score (proxy)", title="The proxy: what PPO climbs")
ax2.set(ylabel="gold judge, overall (0-1)", title="The gold score: what we wanted (band: ±2 s.e.)")
ax1.legend(loc="best", fontsize=10)
ax2.legend(loc="best", fontsize=10)
plt.show()
a_g, b_g, d_pk, gain_pk = fit.loc[(hack_run, "gold"), ["a", "b", "d_peak", "peak_gain"]]
best = hacked.loc[hacked.gold.idxmax()]
at_mit = hacked[hacked.iteration == H.iterations].iloc[0]   # at the mitigations' run length (section 1.6)
end = hacked.iloc[-1]                                        # the end of the continued run
top = hacked.loc[hacked.proxy.idxmax()]
print(f"Gao fit of the hacked run's gold gains: a = {a_g:.4f}, b = {b_g:.4f}"
      + (f"; peak at d* = {d_pk:.2f} (KL {d_pk ** 2:.1f} nats), gain {gain_pk:+.3f}" if np.isfinite(d_pk)
         else "; the fitted curve does not turn down"))
first_d = hacked.d[hacked.d > 0].min()
if np.isfinite(d_pk):
    where = ("before the first checkpoint after the start" if d_pk < first_d else
             "inside the measured range" if d_pk <= hacked.d.max() else "beyond the last checkpoint")
    print(f"the fitted peak lies {where} (checkpoints at d = {first_d:.2f} to {hacked.d.max():.2f}); its gain "
          f"{gain_pk:+.3f} is {abs(gain_pk) / hacked.gold_se.iloc[0]:.1f} standard errors of the gold score")
print(f"proxy: {p0:+.2f} (SFT) → highest {top.proxy:+.2f} at iteration {top.iteration:.0f} → "
      f"{at_mit.proxy:+.2f} at iteration {at_mit.iteration:.0f} → "
      f"{end.proxy:+.2f} at the end (iteration {end.iteration:.0f})")
print(f"gold:  {g0:.3f} (SFT) → best {best.gold:.3f} at iteration {best.iteration:.0f} (KL {best.kl:.1f}) → "
      f"{at_mit.gold:.3f} at iteration {at_mit.iteration:.0f} (KL {at_mit.kl:.1f}) → "
      f"{end.gold:.3f} at the end (KL {end.kl:.1f})")
drop = (best.gold - end.gold) / np.hypot(best.gold_se, end.gold_se)
print(f"from its best checkpoint to the end, the gold score fell by {best.gold - end.gold:.3f} "
      f"({drop:.1f} standard errors: {'a clear fall' if drop > 2 else 'within noise'}) and ended "
      f"{abs(end.gold - g0):.3f} {'below' if end.gold < g0 else 'above'} the SFT policy's")
sd_p, sd_g = hacked.proxy_sd.iloc[0], hacked.gold_sd.iloc[0]
print(f"in units of the spread of the SFT policy's answers (proxy sd {sd_p:.2f}, gold sd {sd_g:.3f}): at the end "
      f"the proxy has moved {(end.proxy - p0) / sd_p:+.2f} sd, the gold score {(end.gold - g0) / sd_g:+.2f} sd")

# %% [markdown]
# Compare the two panels, with the printed lines. The proxy is noisy on held-out prompts (two answers per
# prompt, and the reward model's scale is wide). It rises over the first forty iterations to its highest
# (the printed proxy line), then moves up and down without rising further, and ends below its highest but
# well above where it started. The gold score has the shape Gao et al. describe, in miniature: it rises to
# its best checkpoint early, at a small KL, then falls. By iteration 45, where section 1.6 compares the
# mitigations, it is back at about the SFT policy's level, a small fraction of a standard error below it;
# as the run goes on, it keeps falling, and it ends clearly below the SFT policy's (the printed verdict: the
# fall from the best checkpoint is a clear one, several standard errors; at the last two checkpoints the
# ±2 s.e. band lies below the dashed SFT line). The Gao fit (the printed lines) has a positive $a$ and $b$
# and puts its peak inside the measured range, early in the run, at a KL of about a nat, close to the best
# checkpoint: the fitted curve rises, turns, returns to the SFT level at $d = e^{a/b}$ (about where the run
# stands at iteration 45) and falls below it across the later checkpoints, as the measured points do. The
# rise is drawn in noise: the fitted gain at the peak is under two standard errors of the gold score (as is
# the best checkpoint's lead over the SFT policy, in the table); the fall is not. In units of the spread of
# the SFT policy's answers (last line), at the end the proxy has moved up more than half a standard
# deviation and the gold score down almost half of one. On these sampled answers, PPO pushed the policy
# tens of nats away and raised the score it optimises on new questions, while the pharmacist's score,
# after its early gain, was back where it began by iteration 45, within noise, and fell clearly below it as
# the push went on. The fit has two parameters and twelve points, so read $a$ and $b$ as a description of
# this run, not as constants; PPO on a tiny model is chaotic, and another seed gives another trajectory
# (exercise (d)). The large-β run, 45 iterations long, stays much closer to the reference (section 1.6
# prints its KL at the end); its gold score moves up and down around the SFT policy's and ends at about
# the same level, while its proxy rises, less far than the hacked run's; section 1.6 comes back to it. The
# ensemble run (purple) is section 1.6's too.
#
# On its *own* training prompts, the proxy PPO optimises climbs as well, unevenly (PPO's diagnostics,
# smoothed over 8 iterations; each iteration sees four prompts, so the raw curve jumps from prompt to
# prompt). Compare the first eight iterations with the last eight up to iteration 45, printed below the
# plot for every run, and the KL, which grows: over the same 45 iterations the hacked run's proxy climbs
# further than the large-β run's, but not in proportion to its drift: it stood several times further from
# the reference for less than twice the large-β run's gain in proxy. The ensemble run's proxy (the mean of
# its standardised members, on its own scale) creeps up, while its KL grows the most of the three. Run on
# to its end, the hacked run more than doubles its KL on the training prompts, and its proxy there rises no
# further (the last part of its line):

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
for name, t in training.groupby("run", sort=False):
    kw = dict(color=STAGE_COLORS["hacked"]) if name == hack_run else dict(alpha=0.75)
    ax1.plot(t.iteration, smooth(t.score, 8), label=name, **kw)
    ax2.plot(t.iteration, smooth(t.kl, 8), label=name, **kw)
ax1.set(xlabel="PPO iteration", ylabel="reward-model score (training prompts)", title="Proxy during training")
ax2.set(xlabel="PPO iteration", ylabel="KL per answer (nats)", title="Distance from the SFT policy")
ax1.legend(fontsize=10)
plt.show()
for name, t in training.groupby("run", sort=False):
    upto = t[t.iteration <= H.iterations]
    line = (f"{name}: proxy on the training prompts {t.score.iloc[:8].mean():+.2f} (first 8 iterations) → "
            f"{upto.score.iloc[-8:].mean():+.2f} (last 8 up to iteration {H.iterations}); "
            f"KL {upto.kl.iloc[-8:].mean():.1f} nats")
    if t.iteration.max() > H.iterations:
        line += (f"; run on to iteration {t.iteration.max():.0f}: proxy {t.score.iloc[-8:].mean():+.2f} (last 8), "
                 f"KL {t.kl.iloc[-8:].mean():.1f} nats")
    print(line)

# %% [markdown]
# ### 1.4 Which parts of the gold score moved?
#
# The judge's overall score is not a weighted sum of its five metrics but a rubric of points (chapter 7
# gives it exactly): points for every key fact stated (what medical accuracy counts) and for escalation
# advice (humility), the latter scaled by the answer's specificity; costs for harmful advice or a wrong
# dose (what safety and dose accuracy record) and for every unsupported sentence (off topic, another case,
# a loop); and the points earned shrink with the share of the answer that does not read as sentences. So
# an answer can gain escalation advice and still lose overall. Following each metric along the hacked run
# shows *which* parts of the pharmacist's score the push cost:

# %%
parts = ["medical_accuracy", "specificity", "dose_accuracy", "humility", "safety"]
fig, ax = plt.subplots(figsize=(9, 4.4))
for m, colour in zip(parts, ["blue", "orange", "sky", "vermillion", "green"]):
    ax.plot(hacked.d, hacked[m], "o-", color=COLORS[colour], label=m.replace("_", " "))
ax.set(xlabel=r"$d = \sqrt{\mathrm{KL}}$", ylabel="judge metric (0-1)", ylim=(0, 1.05),
       title=f"The gold judge's metrics along the hacked run (β = {hack_beta:g})")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
plt.show()
for label, row in (("best checkpoint", best), (f"iteration {at_mit.iteration:.0f}", at_mit),
                   (f"end of the run (iteration {end.iteration:.0f})", end)):
    change = {m: row[m] - hacked[m].iloc[0] for m in parts}
    print(f"SFT → {label}: " + ", ".join(f"{m.replace('_', ' ')} {v:+.3f}" for m, v in change.items()))

# %% [markdown]
# The reward model and the judge agree on some things and not on others. Where they agree (for instance
# on escalation advice, which both reward), PPO's push raises the gold score too; where the reward model
# pays for something the judge does not (more words of a certain kind, whatever their place), the push
# costs gold score. Over-optimisation is the moment the second effect overtakes the first. In this run the
# first effect showed early: at the best checkpoint humility (the escalation advice) is well up, safety a
# little, medical accuracy and specificity slightly, and dose accuracy unchanged (first printed line). By
# iteration 45 humility has risen further, but medical accuracy and specificity have fallen below the SFT
# policy's, dose accuracy unchanged (second line): the gold score's gain at the best checkpoint is gone,
# and the gold score is about the SFT policy's, just below it (section 1.3). As the run goes on, the second
# effect takes over: by its end humility has given back a little of its gain, safety has slipped just
# below the SFT policy's, and medical accuracy and specificity have fallen much further (third line); the
# gold score ends clearly below the SFT policy's (section 1.3).
#
# ### 1.5 What the reward model learned to like
#
# Compare the words of the hacked policy's answers with the SFT policy's (the sampled answers at iteration
# 0, and at iteration 45, where section 1.6 compares the mitigations; "the hacked policy" of this section,
# here and in the answers below, is the one at iteration 45): the words whose frequency grew most show
# where the proxy's push took the policy (on held-out prompts, its proxy score at iteration 45 is well
# above the SFT policy's).

# %%
words = R["hacked_words"]
words.round(2)

# %% [markdown]
# What to look for: besides small linking words ("or", "if", "for", "as", "use"), most of the words that
# grew are those of the escalation advice ("seek", "urgent", "prescriber", "care", "your", "contact",
# "clinic"), which the rubric rewards too, and some symptom words of the warning signs ("palpitations",
# "bleeding"), which it rewards only in the right case. The reward
# model learned from pairs in which the rejected answer lacked the escalation sentence, was vague, missed a
# key fact or answered another case; "more of these words" is better on those pairs, and not always on
# these answers. Here are the greedy answers of the SFT and of the hacked policy to the held-out questions
# where the gold score fell and the proxy gained most; on all three shown the proxy rose while the gold
# score fell: the reward model prefers the answer the pharmacist would reject. Look at how the hacked
# answers break (sentences of *other* cases spliced in, a phrase repeated over and over, a whole answer to
# another case), and, last, at the averages over all the held-out questions: on average the proxy rose
# and the gold score fell a little; the gold score rose on more questions than it fell on, so its falls,
# like the three shown, are on average the larger ones:

# %%
ha = R["hacked_answers"]
both = ha[ha.policy == "sft"].merge(ha[ha.policy == "hacked"], on=["eval_id", "prompt"], suffixes=("_sft", "_hacked"))
both["proxy_gain"] = both.proxy_hacked - both.proxy_sft
both["gold_change"] = both.gold_hacked - both.gold_sft
shown = both[both.gold_change < 0].sort_values("proxy_gain", ascending=False).head(N_EXAMPLES)
for r in shown.itertuples():
    print(f"[{r.eval_id}] {r.prompt}")
    print(f"  SFT     (proxy {r.proxy_sft:+.2f}, gold {r.gold_sft:.3f}):")
    print(wrap(r.answer_sft))
    print(f"  hacked  (proxy {r.proxy_hacked:+.2f}, gold {r.gold_hacked:.3f}):")
    print(wrap(r.answer_hacked))
    print()
print(f"over all {len(both)} held-out questions (greedy answers): proxy {both.proxy_sft.mean():+.2f} → "
      f"{both.proxy_hacked.mean():+.2f}, gold {both.gold_sft.mean():.3f} → {both.gold_hacked.mean():.3f}; "
      f"the proxy rose on {np.mean(both.proxy_gain > 0):.0%} of them, the gold score fell on "
      f"{np.mean(both.gold_change < 0):.0%} and rose on {np.mean(both.gold_change > 0):.0%}")

# %% [markdown]
# ### 1.6 Three mitigations, measured on the same prompts
#
# * **A stronger KL penalty**: the large β, same planned run length. The penalty $-\beta k_t$ per token makes
#   every nat of drift cost reward, so the policy stops where the proxy's gain no longer pays for it.
# * **Early stopping on a held-out gold check**: the hacked run, judged at every checkpoint by the gold
#   judge on a small validation set of RL prompts that PPO never trained on (never the evaluation prompts,
#   which would make the reported numbers optimistic). Keep the weights of the best validation checkpoint,
#   stop after two checkpoints without improvement. Cheap in compute, but it needs gold labels (in
#   practice: human evaluations) during training.
# * **A reward-model ensemble** (Coste et al. 2024): three reward models trained with different seeds on
#   different 80 % subsets of the preference pairs (without the knowledge-base pairs that chapter 3's
#   model also learned from), each standardised, and PPO at the small β on their mean. Where the members
#   disagree, the policy cannot exploit one model's blind spot as easily.
#
# All three are compared like for like with the hacked run at iteration 45, the length of the
# mitigations' runs (the table's "none (hacked)" row); its continuation plays no part here. Effectiveness
# $E = (g_M - g_\text{hacked}) / (g_\text{best} - g_\text{hacked})$, with $g_\text{best}$ the gold score of
# the hacked run's best evaluation checkpoint up to iteration 45 and $g_\text{hacked}$ its gold score at
# iteration 45. The interval resamples the held-out prompts and re-chooses the best checkpoint in every
# resample.

# %%
mit = R["hacking_mitigations"]
show = mit[["mitigation", "iteration", "kl", "proxy", "gold", "medical_accuracy", "humility",
            "effectiveness", "ci_low", "ci_high"]]
show.round(3)

# %%
rows = mit.dropna(subset=["effectiveness"])


def interval_verdict(lo: float, hi: float) -> str:
    """What the interval of an effectiveness E says: E = 0 is no better than no mitigation."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval"
    if lo > 0:
        return "the mitigation helps: its interval excludes 0"
    if hi < 0:
        return "the mitigation hurts: its interval lies below 0"
    return "not distinguishable from no mitigation: its interval contains 0"


fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.1]})
y = np.arange(len(rows))
ax1.barh(y, rows.effectiveness, color=COLORS["green"], alpha=0.8)
ax1.errorbar(rows.effectiveness, y, xerr=[rows.effectiveness - rows.ci_low, rows.ci_high - rows.effectiveness],
             fmt="none", ecolor=COLORS["black"], capsize=5)
ax1.axvline(1.0, color=COLORS["grey"], ls="--", label="E = 1: all the lost gold recovered")
ax1.axvline(0.0, color=COLORS["vermillion"], lw=1, label="E = 0: no better than no mitigation")
ax1.set_yticks(y, rows.mitigation)
ax1.set(xlabel="effectiveness E (share of the lost gold score recovered)", title="Mitigations, 95 % intervals")
ax1.legend(loc="lower right")
ax2.plot(hacked.iteration, hacked.val_gold, "o-", color=COLORS["blue"], label="validation (RL prompts)")
ax2.plot(hacked.iteration, hacked.gold, "s-", color=STAGE_COLORS["hacked"], label="evaluation (held-out prompts)")
es = mit.set_index("mitigation").loc["early stopping"]
ax2.axvline(es.iteration, color=COLORS["green"], ls="--", label=f"kept: iteration {es.iteration:.0f}")
ax2.set(xlabel="PPO iteration", ylabel="gold judge", title="Early stopping on the validation gold score")
ax2.legend(loc="best", fontsize=10)
plt.show()
lost = mit.set_index("mitigation").loc[["none (best checkpoint)", "none (hacked)"], "gold"]
print(f"gold lost to hacking: {lost.iloc[0]:.3f} → {lost.iloc[1]:.3f} ({lost.iloc[0] - lost.iloc[1]:.3f})")
for r in rows.itertuples():
    print(f"{r.mitigation:<22} E = {r.effectiveness:5.0%}  [{r.ci_low:.0%}, {r.ci_high:.0%}]  "
          f"({interval_verdict(r.ci_low, r.ci_high)}); {r.detail}")
ref_its = mit.set_index("mitigation").loc[["none (best checkpoint)", "none (hacked)"], "iteration"]
se_lost = np.hypot(*hacked.set_index("iteration").loc[ref_its, "gold_se"])
if lost.iloc[0] - lost.iloc[1] <= 2 * se_lost:
    print(f"the gold score lost to hacking by iteration {H.iterations} is within two standard errors "
          f"({2 * se_lost:.3f}) in this run: "
          "there is hardly a loss to recover, and every E above is a ratio over noise (see the intervals)")
ens = mit.set_index("mitigation").loc["reward-model ensemble"]
print(f"KL at iteration {at_mit.iteration:.0f}: hacked {at_mit.kl:.1f} nats, ensemble {ens.kl:.1f} nats, strong KL "
      f"{mit.set_index('mitigation').loc['strong KL', 'kl']:.1f} nats (the hacked run, continued to iteration "
      f"{end.iteration:.0f}: {end.kl:.1f} nats)")

# %% [markdown]
# Read the intervals, not the points: each $E$ is a ratio of two noisy differences measured on the
# held-out prompts, and the printed verdicts say which intervals exclude 0: here none does. In this run the
# gold score lost to hacking by iteration 45 is itself within noise (the line printed after the verdicts),
# so every $E$ here is fragile. Then compare the KLs printed last, all at iteration 45. The strong KL
# penalty did hold the policy back: its run ended far closer to the reference than the hacked run, with a
# gold score about the SFT policy's, barely above the hacked run's at iteration 45 (table above), which is
# itself about the SFT policy's; so its point estimate is small, and its interval contains 0. Early
# stopping kept the checkpoint printed in the plot's legend, where the validation gold score peaked; on the
# evaluation prompts that checkpoint scores above the hacked run at iteration 45, so its point estimate is
# positive, the highest of the three, but its interval contains 0 too. The validation prompts and the
# evaluation prompts do not agree on which of the early checkpoints is best (compare the two curves of the
# right panel), a sign that the differences between those checkpoints are mostly noise; past iteration 45,
# on the continued run, both curves fall. The ensemble did worse: in the same 45 iterations its policy
# travelled further than the hacked one (the KLs printed last) and ended with the lowest gold score of the
# runs compared here, so its point estimate is negative; its interval is very wide and contains 0, so this
# run cannot say whether it hurt. Averaging three reward models trained on the same kind of pairs did not,
# here, stop the policy drifting from the reference or keep its gold score up.
#
# ### 1.7 Live: a short run at a small β
#
# The same experiment, small enough to run here: a few PPO iterations at the small β of the parameters cell
# (`LIVE_BETA`) from the SFT policy, then the greedy answers to some held-out questions, judged by both
# scores.

# %% tags=["nbval-ignore-output"]
live_cfg = challenges.hacking_ppo_config(H, LIVE_BETA, LIVE_ITERATIONS)
live_cfg.lr, live_cfg.seed = LIVE_LR, SEED
train_items, _ = challenges.split_rl_prompts(H.n_val, H.seed)
live = sft.copy()
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    _, diag = ppo.train_ppo(live, sft, rm, tok, train_items, live_cfg, progress=True, desc="PPO, small β")
items = eval_prompts[:LIVE_EVAL_PROMPTS]
rows = []
for name, policy in (("SFT", sft), (f"after {len(diag)} iterations", live)):
    answers = ppo.sample_answers(policy, tok, [p["prompt"] for p in items], 0.0, H.max_new_tokens)
    gold = judge.judge_many(answers, [scenarios[p["scenario_id"]] for p in items])
    rows.append({"policy": name, "proxy": rm.score(tok, [p["prompt"] for p in items], answers).mean(),
                 "gold": gold.overall.mean(), "medical_accuracy": gold.medical_accuracy.mean(),
                 "humility": gold.humility.mean(),
                 "repetition": np.mean([challenges.repetition(a) for a in answers])})
print(f"KL per answer on the training prompts: {diag.kl.iloc[0]:.1f} → {diag.kl.iloc[-1]:.1f} nats; proxy on the "
      f"training prompts {diag.score.iloc[:3].mean():+.2f} (first 3 iterations) → {diag.score.iloc[-3:].mean():+.2f} (last 3)")
pd.DataFrame(rows).round(3)

# %% [markdown]
# A few iterations are the beginning of the hacked run: the KL printed above says how far the policy has
# already moved from the reference (in the book's run, a small fraction of a nat, yet some greedy
# answers already changed: compare the two rows of the table). A
# handful of greedy answers is a noisy measure of where it stands; the cached run shows where the road leads.
# Raise `LIVE_ITERATIONS` in the parameters cell to walk further.
#
# ### 1.8 Try it: β and run length
#
# The cached runs: pick β and how many iterations to show, and watch the Gao fit change. With few
# checkpoints the fit is loose; at the large β the fit rests on a few checkpoints, all close to the
# reference (section 1.6 prints the KL at its end).

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
hacking_curves_widget(R)

# %% [markdown]
# ## 2. Annotation quality
#
# ### 2.1 The problem
#
# Preference labels come from people who are tired, hurried, not experts, or simply disagree. In
# InstructGPT, the labellers agreed with each other on about 73 % of comparisons (Ouyang et al. 2022);
# Casper et al. (2023) list noisy, biased and inconsistent feedback among the fundamental limitations of
# RLHF. Our preference pairs carry the votes of three simulated annotators (chapter 3), each with its own
# way of being wrong:

# %%
votes = np.array([p["votes"] for p in train_pairs])
for k, a in enumerate(data.ANNOTATORS):
    print(f"{a.name:<8} ({a.description}): agrees with the knowledge base on {votes[:, k].mean():.1%} of the "
          "training pairs")
print(f"majority of the three: {(votes.sum(axis=1) >= 2).mean():.1%}")

# %% [markdown]
# ### 2.2 Theory: what flipped labels do to the Bradley-Terry loss
#
# Suppose each label is flipped independently with probability $\varepsilon$. The expected Bradley-Terry
# loss of a pair over the noise is
#
# $$\mathbb{E}[L] = -(1-\varepsilon) \log \sigma(\Delta) - \varepsilon \log \sigma(-\Delta), \qquad \Delta = r_c - r_r$$
#
# with $\sigma(u) = 1/(1+e^{-u})$, $r_c$ and $r_r$ the rewards of the answer labelled better and of the
# other one. Its gradient $\partial L / \partial \Delta = \sigma(\Delta) - (1 - \varepsilon)$ vanishes at
# $\sigma(\Delta) = 1 - \varepsilon$: the model should be confident, but not more than the labels are
# reliable. Plain BT ($\varepsilon = 0$) keeps pushing every pair apart, including the flipped ones, which
# it can only fit by memorising them. Training on this **conservative** (label-smoothed) loss with a
# guessed $\varepsilon$ is one mitigation; symmetric noise below 50 % also leaves the *sign* of the
# expected preference unchanged, which is why learning from noisy labels is possible at all (Natarajan et
# al. 2013). The other mitigation is to ask more annotators: if each vote is wrong with probability $q$,
# independently, the majority of three is wrong with probability $3q^2(1-q) + q^3$.
#
# **By hand.** $q = 0.3$: $3 \times 0.09 \times 0.7 + 0.027 = 0.189 + 0.027 = 0.216$, more than a quarter
# fewer wrong labels, for three times the labelling cost. And with $\varepsilon = 0.1$, a pair at $\Delta = 2$ has
# $\sigma(2) = 0.881$, so $\partial L / \partial \Delta = 0.881 - 0.9 = -0.019$ (still pushed apart, a
# little), while at $\Delta = 3$, $\sigma(3) = 0.953$ and the gradient $+0.053$ pulls it back.

# %%
q = 0.3
print(f"majority of three wrong: {3 * q**2 * (1 - q) + q**3:.3f}")
for d in (2.0, 3.0):
    loss, g, _ = bradley_terry_loss(np.array([d]), np.array([0.0]), label_smoothing=0.1)
    print(f"ε = 0.1, Δ = {d:.0f}: loss {loss:.4f}, dL/dΔ = {g[0]:+.3f}")

# %% [markdown]
# ### 2.3 The experiment
#
# For each extra flip rate $p$, every vote of every annotator is flipped with probability $p$, on top of
# the annotator's own errors. Three reward models are trained from the SFT trunk with chapter 3's
# settings, on the preference pairs alone (without chapter 3's knowledge-base pairs, so compare their
# accuracies with one another, not with chapter 3's reward model, which also learned from those): on the
# label of **one** random annotator per pair (what a budget of one label per pair buys), on the
# **majority** of the three noisy votes, and on one annotator's label with the **conservative loss**. A
# fourth, trained on the knowledge base's own clean labels, is the reference. Accuracy is measured on the
# held-out test pairs against their clean labels.

# %%
N = S.noise
nc, nm = R["noise_curves"], R["noise_mitigations"]
print(f"flip rates {', '.join(f'{p:g}' for p in N.flip_rates)}; {N.epochs} epochs; ε = {N.smoothing:g}; "
      f"{len(test_pairs)} test pairs")
nc.round(3)

# %%
fig, ax = plt.subplots(figsize=(9.5, 4.6))
colours = {"one annotator": COLORS["vermillion"], "majority of 3": COLORS["blue"],
           "one annotator, conservative loss": COLORS["purple"]}
for m, g in nc[nc.method != "clean labels"].groupby("method", sort=False):
    shift = {"one annotator": -0.006, "majority of 3": 0.0}.get(m, 0.006)
    ax.errorbar(g.flip_rate + shift, g.accuracy, yerr=[g.accuracy - g.ci_low, g.ci_high - g.accuracy], fmt="o-",
                capsize=4, color=colours[m], label=m)
clean = nc.loc[nc.method == "clean labels", "accuracy"].iloc[0]
ax.axhline(clean, color=COLORS["black"], ls="--", lw=1.3, label="clean labels")
ax.axhline(0.5, color=COLORS["grey"], ls=":", lw=1.3, label="chance")
ax.set(xlabel="extra flip rate p of every vote", ylabel="held-out accuracy (clean labels)", ylim=(0.4, 1.02),
       title="Reward models trained on noisy labels (95 % intervals)")
ax.legend(loc="best")
plt.show()
one = nc[nc.method == "one annotator"].set_index("flip_rate")
print(f"clean labels: {clean:.3f}")
for p, r in one.iterrows():
    print(f"one annotator, p = {p:.1f}: {r.label_error:.0%} of the training labels wrong, accuracy {r.accuracy:.3f}")

# %% [markdown]
# Two things to read off. First, how much accuracy a given share of wrong labels costs: a reward model
# averages over many similar pairs, and random flips below 50 % leave the average preference on the right
# side, so in principle it need not collapse. Here it does not hold up: without extra flips one
# annotator's labels do about as well as the clean ones, but every added flip rate costs accuracy, and at
# the highest, with the largest share of wrong labels (the printed lines), the model falls close to
# chance: its interval contains 0.5 (the table).
# Neighbouring flip rates have overlapping intervals. Second, where the curves of the mitigations sit
# relative to the one-annotator curve. Effectiveness, pooled over the noisy rates:
# $E = \sum_p (\text{acc}_M(p) - \text{acc}_1(p)) / \sum_p (\text{acc}_\text{clean} - \text{acc}_1(p))$.

# %%
nm[["mitigation", "labels_per_pair", "effectiveness", "ci_low", "ci_high", "accuracy_at_reference",
    "one_annotator_at_reference", "clean_accuracy"]].round(3)

# %%
for r in nm.itertuples():
    verdict = ("helps" if r.ci_low > 0 else "hurts" if r.ci_high < 0 else
               "is not distinguishable from no mitigation")
    print(f"{r.mitigation}: E = {r.effectiveness:.0%} [{r.ci_low:.0%}, {r.ci_high:.0%}]: {verdict}; "
          f"{r.labels_per_pair} label(s) per pair")

# %% [markdown]
# The printed verdicts: majority voting won back part of the accuracy lost to noise, and its interval
# excludes 0, though its lower end lies close to 0; the conservative loss won back nothing (at both noisy
# rates its model is as accurate as the plain one-annotator model, and its interval is centred on
# 0). Majority voting removes errors only where the three annotators err independently; where they share a
# bias (all three tempted by the longer answer), the majority inherits it, and it triples the labelling
# bill. The conservative loss limits how confident the model becomes, which is what it was designed for;
# but a flipped label still pulls the ranking the wrong way, and at low noise the smoothing slows
# learning, so it need not improve *accuracy*. A loss that assumes a noise rate is not a free lunch.
#
# ### 2.4 Live: one reward model on noisy labels
#
# One reward model at the extra flip rate of the parameters cell, one epoch (the cached ones had two),
# from one annotator per pair, drawn over the cached curves:

# %% tags=["nbval-ignore-output"]
fig, text, notes = noise_rate_view(tok, sft, train_pairs, test_pairs, LIVE_FLIP_RATE, "one annotator",
                                   epochs=LIVE_EPOCHS, seed=SEED, cached=nc)
plt.show()
print(text)
for n in notes:
    print("note:", n)

# %% [markdown]
# ### 2.5 Try it: the noise rate
#
# Choose a flip rate and the labels, then press **Run** (a few seconds). Predict first: what happens at
# $p = 0.5$? At $p = 0.7$?

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
noise_rate_widget(tok, sft, train_pairs, test_pairs, cached=nc, seed=SEED)

# %% [markdown]
# ## 3. Distribution shift
#
# ### 3.1 The problem
#
# A reward model is trained on a fixed set of answers (here: expert answers and deliberately flawed
# versions of them). PPO then asks it to score the policy's *own* answers, which drift further from that
# set with every iteration, and users ask about topics the preference data never covered. A learned
# reward is only as good as the data it saw (Casper et al. 2023), and Gao, Schulman & Hilton (2023) trace
# over-optimisation to exactly this gap.
#
# ### 3.2 A category the reward model never saw
#
# A reward model trained without the pairs of one category, tested on that category's pairs and on the
# held-out pairs of the categories it did see:

# %%
sc = R["shift_categories"]
sc.round(3)

# %%
fig, ax = plt.subplots(figsize=(10, 3.8))
labels = [f"{r.reward_model}\n{r.pairs}" for r in sc.itertuples()]
colours_sc = [COLORS["blue"] if r.seen_in_training else COLORS["vermillion"] for r in sc.itertuples()]
ax.barh(np.arange(len(sc)), sc.accuracy, color=colours_sc, alpha=0.85)
ax.errorbar(sc.accuracy, np.arange(len(sc)), xerr=[sc.accuracy - sc.ci_low, sc.ci_high - sc.accuracy], fmt="none",
            ecolor=COLORS["black"], capsize=4)
ax.set_yticks(np.arange(len(sc)), labels, fontsize=10)
ax.set(xlim=(0.4, 1.02), xlabel="held-out accuracy (blue: category seen in training, red: not seen)",
       title="Reward-model accuracy by category (95 % intervals)")
ax.axvline(0.5, color=COLORS["grey"], ls=":")
plt.show()
out = sc[(~sc.seen_in_training) & sc.pairs.str.startswith("all pairs")].iloc[0]
inn = sc[(sc.reward_model == out.reward_model) & (sc.pairs == "test pairs, other categories")].iloc[0]
overlap = out.ci_high >= inn.ci_low and inn.ci_high >= out.ci_low
print(f"{out.reward_model}: {inn.accuracy:.3f} on the categories it saw, {out.accuracy:.3f} on {out.held_out_category} "
      f"({'the intervals overlap' if overlap else 'the intervals do not overlap'})")

# %% [markdown]
# Here the model that never saw pharmacogenomics ranks that category's pairs about as well as the test
# pairs of the categories it saw (the printed line). How much a new category costs depends on what the
# pairs teach. Our flaws (an unsafe claim, a vague non-answer, a missing key fact, no escalation, an answer
# to another case) look the same in every category, so what the reward model learned largely transfers; a
# category with its own kind of error (a dose convention, a special population) would transfer worse. The
# test pairs of one category are few, so the intervals are wide. Compare rows of the same reward model:
# the one trained without pharmacogenomics learned from the preference pairs alone, without chapter 3's
# knowledge-base pairs, and is right on fewer pairs than chapter 3's model even in the categories it saw.
#
# ### 3.3 The policy's own answers
#
# The harder shift is the one PPO creates. At each checkpoint of the hacked run up to iteration 45 (the
# run the mitigations are compared with), the two answers the policy gave to the same held-out question
# form a pair; when the gold judge's scores of the two differ by at least 0.05, we ask whether the reward
# model orders them the same way (**agreement**).

# %%
sa, sm = R["shift_agreement"].sort_values("kl"), R["shift_mitigation"].iloc[0]
fig, ax = plt.subplots(figsize=(9.5, 4.4))
ax.plot(sa.kl, sa.agree_old, "o-", color=COLORS["vermillion"], label="chapter-3 reward model")
ax.plot(sa.kl, sa.agree_new, "s-", color=COLORS["green"], label="retrained with on-policy pairs")
ax.axhline(sm.accuracy_preference_pairs, color=COLORS["blue"], ls="--",
           label="chapter-3 model on held-out preference pairs")
ax.axhline(0.5, color=COLORS["grey"], ls=":", label="chance")
ax.set(xlabel="KL of the policy to the reference (nats)", ylabel="pairs ordered like the gold judge",
       ylim=(0.2, 1.02), title="Does the reward model rank the policy's own answers?")
ax.legend(loc="best", fontsize=10)
plt.show()
n_all = int(sa.n_pairs.sum())
k_all = float((sa.agree_old * sa.n_pairs).sum())
lo, hi = reward.wilson_interval(int(round(k_all)), n_all)
print(f"chapter-3 reward model: {sm.accuracy_preference_pairs:.3f} on held-out preference pairs; on pairs of the "
      f"policy's own answers {k_all / n_all:.3f} over all {n_all} pairs up to iteration {sa.iteration.max():.0f} "
      f"(95% interval {lo:.2f} to {hi:.2f}; "
      f"{'chance lies inside it' if lo <= 0.5 <= hi else 'above chance'})")
print(f"SFT samples {sm.agree_sft_samples:.3f}; drifted policy (checkpoints {sm.drifted_checkpoints}) {sm.agree_drifted:.3f}")

# %% [markdown]
# This is the most important comparison of the chapter. On pairs like its training data the reward model
# is right on most pairs; on two answers of the policy itself, which differ in many small ways instead of
# one glaring flaw, it has less to go on. Compare the printed rates: over all these pairs, it
# agrees with the gold judge less often than on the preference pairs, though above chance (the interval
# excludes 0.5, not by much, and its upper end stays below the preference-pair rate). On the SFT policy's
# own samples it does not much worse than on the preference pairs; on the drifted checkpoints it does much
# worse, close to chance (few pairs at each checkpoint, so the points of the plot wander): in this run the reward
# model's judgement largely transfers to the answers the policy writes at the start, and is lost as PPO
# moves the policy away, exactly where PPO relies on it. PPO climbs a score that, among the answers it
# ends up producing, tracks quality only loosely, and where it errs the policy can go wherever the
# score's quirks lead it (section 1.5).
#
# **Mitigation: label on-policy data.** Pairs of the hacked run's own training answers up to iteration 45
# (training prompts, not the evaluation prompts) are labelled by the gold judge, standing in for new human
# labels, added to the preference pairs, and a reward model is trained on both from the SFT trunk with
# chapter 3's settings (like every reward model of this chapter, without chapter 3's knowledge-base pairs).
# This is the loop of iterated ("online") RLHF (Bai et al. 2022; Touvron et al. 2023). Effectiveness: the
# share of the gap between accuracy on preference pairs and agreement on the drifted policy's pairs that
# retraining closes.

# %%
R["shift_mitigation"].drop(columns=["mitigation"]).round(3)

# %%
print(f"{sm.n_onpolicy_pairs:.0f} on-policy pairs: agreement on the drifted policy's pairs {sm.agree_drifted:.3f} → "
      f"{sm.agree_drifted_retrained:.3f}; E = {sm.effectiveness:.0%} [{sm.ci_low:.0%}, {sm.ci_high:.0%}]; "
      f"accuracy on the held-out preference pairs {sm.accuracy_preference_pairs:.3f} → {sm.test_accuracy_after:.3f}")

# %% [markdown]
# Whatever the point estimate, look at the interval: the on-policy labels (their number is printed above)
# do not close the gap, and here the retrained model agrees with the gold judge on the drifted policy's
# pairs less often than the chapter-3 model did (the printed line), so the point estimate of $E$ is
# negative; the interval is wide and contains 0, so this run cannot say whether the new labels hurt.
# Closing the gap takes labels of the kind of answers the policy actually writes, round after round, each
# one (in real life) a pharmacist's time. The last column is accuracy on the held-out preference pairs:
# the retrained model is right on fewer of them than the chapter-3 model (the printed line). Both
# comparisons mix two changes, though: the new pairs were added, and the knowledge-base pairs the
# chapter-3 model also learned from were left out. Section 2's reward models, trained with the same
# settings on the preference pairs alone, are as accurate on the held-out preference pairs as the
# retrained one (the "clean labels" and "majority of 3" rows at flip rate 0), so these numbers show no
# cost of the on-policy pairs to accuracy on the old ones; the drop goes with the knowledge-base pairs
# left out.
#
# ## 4. Scalability
#
# ### 4.1 Four models in memory
#
# PPO for language models keeps four networks: the **policy** (trained), the **reference** (frozen, for the
# KL), the **reward model** (frozen) and a **value function** (trained). SFT keeps one. Every trained
# parameter costs 16 bytes in float32 with AdamW (weight, gradient and two moments), a frozen one 4 bytes.
# Counted on TinyGPTs of two blocks at four widths (the course's reference model, three blocks of width
# 96, has the parameter count printed below), shown in detail at d_model = 64, the width at which section
# 4.4 measures the mitigations:

# %%
sw = R["scale_width"].sort_values("d_model")
sx = R["scale_mitigations"]
here = sw[sw.d_model == sx.d_model.iloc[0]].iloc[0]
print(f"the course's reference policy: d_model {sft.config.d_model}, {sft.config.n_layers} blocks, "
      f"{sft.n_params:,} parameters")
four = pd.DataFrame({
    "model": ["policy", "reference", "reward model", "value: head on the policy's trunk", "value: separate model"],
    "parameters": [int(here[c]) for c in ("params_policy", "params_reference", "params_reward", "params_value_head",
                                          "params_value_separate")],
    "trained in PPO": ["yes", "no", "no", "yes", "yes"],
})
print(f"d_model = {here.d_model:.0f}:")
print(four.to_string(index=False))
print(f"\nweights + gradients + AdamW state: SFT {here.mb_sft:.1f} MB; PPO {here.mb_separate_value:.1f} MB with a separate "
      f"value model, {here.mb_shared_trunk:.1f} MB with a value head on the shared trunk, {here.mb_last_block:.1f} MB "
      "training only the last block")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.4))
ax1.plot(sw.d_model, sw.mb_separate_value, "o-", color=COLORS["vermillion"], label="PPO, separate value model")
ax1.plot(sw.d_model, sw.mb_shared_trunk, "s-", color=COLORS["orange"], label="PPO, value head on the trunk")
ax1.plot(sw.d_model, sw.mb_last_block, "^-", color=COLORS["green"], label="PPO, last block trained")
ax1.plot(sw.d_model, sw.mb_sft, "d--", color=COLORS["blue"], label="SFT")
ax1.set(xlabel="d_model", ylabel="MB (weights, gradients, AdamW)", title="Training-state memory (counted)")
log_axes(ax1, sw.d_model)
ax1.legend(fontsize=10)
ax2.plot(sw.d_model, sw.mflop_ppo_iteration, "o-", color=COLORS["vermillion"], label="one PPO iteration")
ax2.plot(sw.d_model, sw.mflop_sft_step, "d--", color=COLORS["blue"], label="one SFT step, same tokens")
ax2.set(xlabel="d_model", ylabel="MFLOP (2N forward, 6N training)", title="Compute per iteration (counted)")
log_axes(ax2, sw.d_model)
ax2.legend(fontsize=10)
plt.show()
print(f"PPO / SFT at d_model = {here.d_model:.0f}: memory {here.mb_separate_value / here.mb_sft:.1f}× (separate value "
      f"model), FLOPs {here.mflop_ppo_iteration / here.mflop_sft_step:.1f}× per iteration; from d_model "
      f"{sw.d_model.iloc[0]:.0f} to {sw.d_model.iloc[-1]:.0f} the PPO memory grows "
      f"{sw.mb_separate_value.iloc[-1] / sw.mb_separate_value.iloc[0]:.0f}×")

# %% [markdown]
# Counting is one thing; the clock is another. A PPO iteration measured on this machine at each width
# (random weights: speed does not depend on what a model knows). Timings depend on the machine and on
# whatever else it is doing, so they are only plotted, never printed and never cached:

# %%
cost = challenges.measure_ppo_cost(tok, widths=COST_WIDTHS, iterations=1, max_new_tokens=COST_NEW_TOKENS,
                                    seed=SEED)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.2))
ax1.plot(cost.d_model, cost.seconds_per_iteration, "o-", color=COLORS["vermillion"], label="measured")
flops = sw.set_index("d_model").loc[cost.d_model, "mflop_ppo_iteration"].to_numpy()
ax1.plot(cost.d_model, cost.seconds_per_iteration.iloc[0] * flops / flops[0], "--", color=COLORS["grey"],
         label="if time followed the FLOPs")
ax1.set(xlabel="d_model", ylabel="seconds per PPO iteration", title="Measured time (this machine)")
ax1.legend(fontsize=10)
ax2.plot(cost.d_model, cost.peak_mb, "o-", color=COLORS["orange"])
ax2.set(xlabel="d_model", ylabel="peak traced memory (MB)", title="Measured memory (this machine)")
for ax in (ax1, ax2):
    log_axes(ax, cost.d_model)
plt.show()

# %% [markdown]
# Compare the measured line with the dashed one. At these sizes time usually grows more slowly than the
# FLOPs: an answer is generated one token at a time, and each step pays a fixed overhead however small the
# matrices are. On real accelerators the same thing happens for a different reason: generation is bound
# by memory bandwidth rather than arithmetic, so RLHF spends much of its time *sampling*, which the 6N rule
# does not count.
#
# ### 4.2 The cost of labels
#
# Labels are the other scarce resource. Reward-model accuracy against the number of labelled pairs
# (each model trained for about the same number of steps):

# %%
lc = R["label_curve"]
fig, ax = plt.subplots(figsize=(8.5, 4.2))
ax.errorbar(lc.n_pairs, lc.accuracy, yerr=[lc.accuracy - lc.ci_low, lc.ci_high - lc.accuracy], fmt="o-",
            capsize=4, color=COLORS["blue"])
ax.set(xlabel="labelled training pairs", ylabel="held-out accuracy", ylim=(0.5, 1.02),
       title="Reward-model accuracy against the number of labels (95 % intervals)")
log_axes(ax, lc.n_pairs, y=False)
plt.show()
lc.round(3)

# %% [markdown]
# Our pairs are regular (a few kinds of flaw, one knowledge base), so even a few dozen labels go a long way:
# here more labels did not buy more accuracy (the point estimates go up and down as pairs are added),
# and all the points have overlapping intervals. Real preference data is far less regular:
# InstructGPT's reward model was trained on tens of thousands of comparisons (Ouyang et al. 2022).
#
# ### 4.3 On paper: real model sizes
#
# The same accounting for real sizes, **an estimate, not a measurement**: 16 bytes per trained parameter
# (mixed-precision AdamW), 2 bytes per frozen one (bf16), a reward model and a value model the size of the
# policy; compute by the rule of Kaplan et al. (2020), $C \approx 2N$ per token forward and $6N$ per token
# trained, for a run of 256,000 answers of 300 tokens ($7.68 \times 10^7$ tokens) with two PPO epochs:
# $C \approx (2 + 4 + 2 + 2 \times 6)\,N$ per token (generation, policy and reference forward, reward
# forward, training), at an assumed $10^{14}$ useful FLOP/s per accelerator.
#
# **By hand for 7B parameters:** $20 \times 7 \times 10^9 \times 7.68 \times 10^7 = 1.08 \times 10^{19}$
# FLOP; at $10^{14}$ FLOP/s that is $1.08 \times 10^5$ s, about 1.2 accelerator-days. Memory with a
# separate value model: $(16 + 16) \times 7 \times 10^9 + (2 + 2) \times 7 \times 10^9 = 252$ GB, more
# than three 80 GB accelerators hold, before a single activation.

# %%
ex = R["scale_extrapolation"].copy()
ex["params"] = ex.params.map(lambda n: f"{n / 1e9:.2f} B")
for c in ("estimate_ppo_run_flop", "estimate_sft_same_tokens_flop"):
    ex[c] = ex[c].map(lambda f: f"{f:.2e}")
ex.round(2)

# %% [markdown]
# ### 4.4 Mitigations
#
# Sharing the trunk between policy and value (what `ppo.py` does) drops a whole trained model; training
# only the last block (LoRA-style; the frozen rest of the policy doubles as the reference) drops most of
# the gradients and optimiser state. What they cost in quality is a separate question; for the reward
# model we can measure it (training only its last block with chapter 3's settings, on the preference
# pairs alone; `reward_accuracy_all` is chapter 3's reward model, which trained all its weights and also
# learned from the knowledge-base pairs):

# %%
sx.round(3)

# %% [markdown]
# Our "effectiveness" for scalability is the share of PPO's training-state memory a mitigation saves at
# d_model = 64. It is not comparable with the other three (no lost quality is won back), and no
# single percentage can summarise scalability: it is a cost that grows with $N$, and a saving can trade
# memory against quality or speed. For our reward model the table above compares the last-block model with
# chapter 3's, which also learned from the knowledge-base pairs, so the gap between the two columns is not
# the cost of training fewer weights alone. Next to a model that trained all its weights on the same
# preference pairs (section 2's "clean labels" and "majority of 3" rows at flip rate 0), the last-block
# model is about as accurate, a difference of a test pair or so: on these numbers, training only the last
# block cost the reward model little measurable accuracy.
#
# ## 5. The four challenges, measured
#
# **Severity rule** (`challenges.SEVERITY_RULE`). For the three challenges that cost quality, the effect
# size is the share of the stage's skill above a no-skill floor that the unmitigated problem destroys,
# $(q_\text{good} - q_\text{bad}) / (q_\text{good} - q_\text{floor})$: critical from 0.75, high from 0.40,
# medium from 0.15, low below. The floors: chance (0.5) for accuracy and agreement; for the gold score,
# the score of fluent answers to *other* questions (the SFT policy's answers, each judged against the next
# prompt's case). Scalability costs money, not quality: its severity is the course's judgement, with the
# measurement beside it.

# %%
summary = challenges.summary_table(R)  # the summary, recomputed from the cached experiment tables
table = summary[["challenge", "effect_size", "severity", "best_mitigation",
                 "effectiveness", "ci_low", "ci_high"]].copy()
table.round(3)

# %%
fig, ax = plt.subplots(figsize=(10, 4.6))
y = np.arange(len(summary))
ax.barh(y, summary.effectiveness, 0.5, color=COLORS["green"], label="measured (best mitigation)")
ok = summary.ci_low.notna().to_numpy()
ax.errorbar(summary.effectiveness[ok], y[ok],
            xerr=[(summary.effectiveness - summary.ci_low)[ok], (summary.ci_high - summary.effectiveness)[ok]],
            fmt="none", ecolor=COLORS["black"], capsize=4, label="95 % interval")
ax.set_yticks(y, [f"{c}\n({m})" for c, m in zip(summary.challenge, summary.best_mitigation)], fontsize=9)
ax.axvline(1.0, color=COLORS["black"], ls="--", lw=1, label="1: all the lost quality recovered")
ax.axvline(0.0, color=COLORS["vermillion"], lw=1, label="0: no better than no mitigation")
ax.set(xlabel="effectiveness (scalability: share of memory saved)",
       title="The best mitigation of each challenge, with its interval")
ax.legend(loc="lower right", fontsize=10)
plt.show()
for r in summary.itertuples():
    print(f"{r.challenge}: {r.measured}")
    print(wrap(f"severity {r.severity}. {r.explanation}"))
floor = mit.set_index("mitigation").loc["no skill (answers to other questions)", "gold"]
print(f"\nthe no-skill floor of the gold score: {floor:.3f}, against {g0:.3f} for the SFT policy's own answers")

# %% [markdown]
# **How to read the four rows.** Every figure comes from one tiny model, one seed per setting, a few dozen
# held-out prompts and about a hundred test pairs, so the intervals are the result and the point estimates one
# draw each. A single effectiveness quoted without an interval says little. Beyond noise, each challenge has
# its own caveats:
#
# * **Reward hacking.** How much quality there is to lose, and therefore what a high effectiveness means,
#   depends on how much PPO gained before over-optimising; on our models it gained little (the best
#   checkpoint's gold score is less than two standard errors above the SFT policy's, section 1.3's table)
#   and the loss by iteration 45, where the mitigations are compared, is within two standard errors of
#   the gold score (the row's severity says so). At iteration 45 the hacked run stands at about the SFT
#   policy's level, so the loss is the early gain given back, and recovering all of it means reaching a
#   checkpoint that is not clearly better than the SFT policy. The row's effect size and severity measure
#   that loss only: run on to iteration 80 (the "run on" figure of the row's printed line), the hacked
#   policy falls clearly below the SFT policy, a larger loss that no mitigation here was compared against.
# * **Annotation quality.** Our noise is random and our pairs are regular, the friendliest case for a
#   reward model; systematic annotator biases (length, style) are not averaged away and do more harm. And
#   a mitigation that triples the labelling cost is not comparable, at equal budget, with one that does not.
# * **Distribution shift.** It looks like one challenge among four; on our models it is the one
#   that makes the reward model less reliable on exactly the answers PPO feeds it, and the new on-policy
#   labels did not close the gap: the retrained model's agreement on the drifted policy's pairs was lower,
#   not higher, though the interval contains 0 (and the retrained model, like every reward model of this
#   chapter, lacks chapter 3's knowledge-base pairs, section 3.3).
# * **Scalability** is a cost curve, not a loss: the memory a mitigation saves is measurable, but it is
#   not the same kind of number as the other three, and no single percentage summarises it.
#
# ## 6. Pitfalls seen in practice
#
# * **Judging a policy by the reward it was trained on.** PPO's own training curve shows the proxy on the
#   prompts it trains on (section 1.3); it looks the same whether the answers improve or the reward model is
#   being gamed. Only an independent measure (here the gold judge on held-out prompts; in practice human
#   evaluation) can tell improvement from hacking.
# * **Early stopping on the evaluation set.** Choosing the checkpoint with the best score on the prompts you
#   then report makes the report optimistic; keep a separate validation set (section 1.6), and remember the
#   best of many noisy checkpoints is biased upwards.
# * **Averaging reward models without standardising them.** A reward model's zero and scale are arbitrary
#   (chapter 3); the mean of raw scores is dominated by the member with the widest spread, the minimum by
#   the one with the lowest offset. `challenges.EnsembleReward` standardises each member first.
# * **One run, no interval.** Most effects here are of the order of the gold score's standard error; a
#   single run can show the same mitigation recovering most of the loss or none of it. Report the
#   interval, or several seeds.
# * **Trusting the gold judge.** It is a rubric, itself a proxy for a pharmacist. Section 5 prints its
#   no-skill floor, the score it gives fluent answers to *other* questions; compare it with the SFT policy's
#   score. Here they are far apart; where the two are close, the tiny SFT model states few key facts on
#   held-out paraphrases and the rubric's generic parts (escalation advice, no wrong dose) dominate, so small
#   gold differences mean little. Chapter 7 looks at every stage with it.
# * **Timings on a shared machine.** Wall-clock times vary several-fold with what else runs; never cache
#   them, never compare them across machines, and prefer counts (parameters, FLOPs) for claims.
#
# ## 7. Exercises
#
# Each exercise is a function for you to write: replace `raise NotImplementedError` with your code and
# run the cell again. The `check_...` call compares your function with the course's on hand-made cases
# and prints whether it passed (until you have written it, it says so); the solution is in the folded
# block below each exercise.
#
# **Exercise 1: effectiveness.** Return $E = (q_M - q_\text{bad}) / (q_\text{good} - q_\text{bad})$, and
# `float("nan")` when nothing was lost ($q_\text{good} \le q_\text{bad}$).

# %%
def effectiveness(q_mitigated: float, q_bad: float, q_good: float) -> float:
    """E = (q_mitigated - q_bad) / (q_good - q_bad), or float("nan") when q_good <= q_bad."""
    raise NotImplementedError  # replace with your own code


_ = check_effectiveness(effectiveness)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def effectiveness(q_mitigated: float, q_bad: float, q_good: float) -> float:
#     lost = q_good - q_bad
#     return (q_mitigated - q_bad) / lost if lost > 0 else float("nan")
# ```
# </details>
#
# **Exercise 2: the conservative Bradley-Terry loss of one pair.** Return the loss
# $-(1-\varepsilon)\log\sigma(\Delta) - \varepsilon\log\sigma(-\Delta)$ and its derivative
# $\sigma(\Delta) - (1-\varepsilon)$. One check uses $|\Delta| = 800$: write $-\log\sigma(u) =
# \log(1 + e^{-u})$ with `np.logaddexp(0, -u)`, and avoid computing $1 - \sigma$ by subtraction.

# %%
def conservative_bt(delta: float, eps: float) -> tuple[float, float]:
    """(the loss -(1 - eps) log σ(delta) - eps log σ(-delta), its derivative σ(delta) - (1 - eps)),
    finite at |delta| = 800."""
    raise NotImplementedError  # replace with your own code


_ = check_conservative_bt(conservative_bt)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def conservative_bt(delta: float, eps: float) -> tuple[float, float]:
#     loss = (1 - eps) * np.logaddexp(0.0, -delta) + eps * np.logaddexp(0.0, delta)
#     sig, sig_neg = np.exp(-np.logaddexp(0.0, -delta)), np.exp(-np.logaddexp(0.0, delta))   # σ(Δ), σ(-Δ)
#     return float(loss), float(eps * sig - (1 - eps) * sig_neg)   # = σ(Δ) - (1 - ε), without 1 - σ
# ```
# </details>
#
# **Exercise 3: the Gao fit.** Given distances $d > 0$ and gains $R$, return the least-squares $(a, b)$ of
# $R(d) = d\,(a - b\log d)$. Hint: it is linear regression on two columns, without an intercept.

# %%
def gao_fit(d: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """The least-squares (a, b) of r ≈ d (a - b log d)."""
    raise NotImplementedError  # replace with your own code


_ = check_gao_fit(gao_fit)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def gao_fit(d: np.ndarray, r: np.ndarray) -> tuple[float, float]:
#     X = np.stack([d, -d * np.log(d)], axis=1)   # R = a d + b (-d log d): two columns, no intercept
#     (a, b), *_ = np.linalg.lstsq(X, r, rcond=None)
#     return float(a), float(b)
# ```
# </details>
#
# **Going further** (no check): (a) in section 1.7, raise `LIVE_ITERATIONS` to 30 and watch the medical
# accuracy and the humility of the live policy; (b) in the cached results (`R["hacking_curves"]`), compute
# $E$ of the large-β run at each of its checkpoints, not only the last; (c) with
# `challenges.annotation_experiment` and `challenges.NoiseSettings(smoothing=0.3)`, try a larger
# $\varepsilon$ (about half a minute); (d) with `from dataclasses import replace`, run
# `challenges.reward_hacking_experiment(tok, sft, rm, replace(S.hacking, seed=1))` (a few minutes:
# three PPO runs, the hacked one 80 iterations long) and compare its `hacking_curves` with the cached
# seed's: how much of what section 1 shows survives a new seed?
#
# ## 8. Summary
#
# * A reward model is a proxy. Optimised hard (a tiny β, a long run), the policy moved tens of nats away;
#   the proxy on sampled held-out answers rose over the first forty iterations and then, without rising
#   further, stayed well above its start, while the gold score, which PPO never sees, rose to an early best
#   checkpoint and fell: by iteration 45, where the mitigations are compared, to about the SFT policy's
#   level, a fall within noise; run on to iteration 80, clearly below it (section 1.3 prints the fall from
#   the best checkpoint in standard errors). Gao et al.'s law $d\,(a - b\log d)$, fitted to the whole
#   curve, puts its peak inside the run, early, at a KL of about a nat, with a gain of under two standard
#   errors of the gold score, and follows the later fall below the SFT policy's level. Sections 1.4 and 1.5
#   show which parts of the gold score moved (more escalation advice, less accuracy and specificity) and
#   which words became more common.
# * A stronger KL penalty, early stopping on a held-out gold check, and an ensemble of reward models are
#   measured as the share of the gold score lost by iteration 45 that they recover, each with an interval.
#   With a loss within the noise of the gold score, the intervals are wide: a single percentage without its
#   interval is not a number an experiment of this size can pin down. What it can tell is whether an
#   interval excludes 0: here none does. Early stopping has the highest point estimate; the strong KL penalty held
#   the policy close to the reference, at about the SFT policy's gold score, which is where the hacked run
#   stood at iteration 45 too; in those 45 iterations the ensemble's run drifted furthest of the three and
#   ended with the lowest gold score.
# * Random label noise costs a reward model accuracy, and with enough wrong labels one annotator's model
#   falls close to chance; majority voting (at three times the labelling cost) measurably won part of it
#   back, a label-smoothed loss did not, and neither is free.
# * A reward model ranks the pairs it was designed on better than the policy's own answers (though above
#   chance over the hacked run's first 45 iterations; in this run close to chance on the drifted
#   checkpoints, much worse than on the SFT policy's samples): that distribution shift is what reward
#   hacking exploits. Labelling on-policy data is the standard remedy, and an expensive one; here the new
#   labels did not help (the retrained model's agreement on the drifted answers was lower, its interval
#   containing 0), and they cost no accuracy on the old pairs next to a model trained on those pairs alone.
# * PPO keeps four models; memory and compute grow with $N$, and on real accelerators much of the time goes
#   into sampling. Sharing the trunk and training fewer weights save most of the memory, at a cost in
#   quality that must be measured (for our reward model, training only the last block cost little
#   measurable accuracy next to a model trained on the same pairs with all its weights).
#
# Chapter 7 scores every stage, including the hacked policy (at iteration 45) and the mitigated policies of
# this chapter (`R["policy_answers"]`), on the five metrics of the alignment scorecard.
#
# ## References
#
# * Gao, L., Schulman, J. & Hilton, J. *Scaling Laws for Reward Model Overoptimization.* ICML 2023 (arXiv:2210.10760).
# * Skalse, J., Howe, N. H. R., Krasheninnikov, D. & Krueger, D. (2022). *Defining and Characterizing Reward Hacking.* NeurIPS.
# * Casper, S., Davies, X., Shi, C., et al. (2023). *Open Problems and Fundamental Limitations of Reinforcement Learning from Human Feedback.* Transactions on Machine Learning Research.
# * Coste, T., Anwar, U., Kirk, R. & Krueger, D. (2024). *Reward Model Ensembles Help Mitigate Overoptimization.* ICLR.
# * Natarajan, N., Dhillon, I. S., Ravikumar, P. & Tewari, A. (2013). *Learning with Noisy Labels.* NeurIPS.
# * Kaplan, J., McCandlish, S., Henighan, T., et al. (2020). *Scaling Laws for Neural Language Models.* arXiv:2001.08361.
# * Ouyang, L., Wu, J., Jiang, X., et al. (2022). *Training Language Models to Follow Instructions with Human Feedback.* NeurIPS.
# * Bai, Y., Jones, A., Ndousse, K., et al. (2022). *Training a Helpful and Harmless Assistant with Reinforcement Learning from Human Feedback.* arXiv:2204.05862.
# * Touvron, H., Martin, L., Stone, K., et al. (2023). *Llama 2: Open Foundation and Fine-Tuned Chat Models.* arXiv:2307.09288.
# * Schulman, J., Wolski, F., Dhariwal, P., Radford, A. & Klimov, O. (2017). *Proximal Policy Optimization Algorithms.* arXiv:1707.06347.
