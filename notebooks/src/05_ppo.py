# %% [markdown]
# # Chapter 5 · RLHF with PPO: maximising the reward model, on a leash
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/05_ppo.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/05_ppo.ipynb)
#
# **Part 2 of the course · Stage 4 of 4** (pretraining → SFT → reward model → **PPO**)
#
# The SFT model of chapter 2 imitates expert answers; the reward model of chapter 3 gives any
# answer a score. This chapter closes the loop: the policy *writes* answers, the reward model
# *scores* them, and reinforcement learning moves the policy towards answers that score higher,
# while a KL penalty keeps it close to the SFT model it started from. This is reinforcement
# learning from human feedback (RLHF) as introduced for language models by Ziegler et al. (2019)
# and Stiennon et al. (2020), and used for InstructGPT (Ouyang et al. 2022), with the
# Proximal Policy Optimization algorithm of Schulman et al. (2017).
#
# **You will learn to**
# 1. state the RLHF objective $\max\ \mathbb{E}[r] - \beta\,\mathrm{KL}(\pi \,\|\, \pi_\text{ref})$ and the
#    clipped surrogate of PPO, and explain every symbol;
# 2. compute per-token rewards, GAE advantages and the clipped objective of one answer by hand;
# 3. solve the KL-regularised problem in closed form on five candidate answers, and watch a
#    mini-PPO converge to that solution;
# 4. run PPO on TinyGPT against the reward model and read its diagnostics (reward, KL, β,
#    clip fraction, entropy);
# 5. measure what PPO did on held-out questions, with the reward model *and* the gold judge, and
#    recognise three classic failures: reward hacking without a KL leash, a negative KL, and
#    unmasked padding.
#
# **Where this sits.**
#
# | Chapter | Trained on | Learns | Output |
# |---|---|---|---|
# | 1. Pretraining | pharmaceutical text | to predict the next token | base model |
# | 2. SFT | expert demonstrations | to answer like the expert | SFT policy (and $\pi_\text{ref}$ here) |
# | 3. Reward model | preference pairs | which of two answers is better | $r_\phi(x, y)$ |
# | **5. PPO** | **its own answers, scored by $r_\phi$** | **to write answers $r_\phi$ likes** | **PPO policy** |
#
# Chapter 6 then asks what can go wrong when a policy optimises a *learned* reward, and chapter 7
# scores every stage with the gold judge.
#
# > **Educational material, not medical advice.** The pharmaceutical cases are simplified teaching
# > examples, and the models here are tiny and often wrong. Never use them for decisions about real
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
CHECKPOINT_DIR = None          # None: the committed checkpoints in data/checkpoints/
# the small problem: candidate answers to one question
CASE_ID = "CON-01"             # metformin in liver cirrhosis
CANDIDATE_FLAWS = ["no_escalation", "missing_key_fact", "unsafe_claim", "vague"]  # plus the expert answer
REF_SCORING = "per_token"      # π_ref over the candidates from "per_token" or "sequence" log-probabilities
BETA_DEMO = 5.0                # β of the worked closed form and of the mini-PPO
CLIP_EPS_DEMO = 0.2            # ε of the clipped-surrogate figure and of the mini-PPO
BANDIT_ITERATIONS = 150
BANDIT_BATCH = 64
BANDIT_LR = 0.02
# the live run: the settings of ppo.DEFAULT_CONFIG (the reference run that builds data/checkpoints/ppo.npz),
# except far fewer iterations and fewer SFT samples for the reward normalisation, so that it takes seconds;
# the reference run's results come from data/checkpoints (its policy and its log)
ITERATIONS = 4
NORM_SAMPLES = 16              # answers sampled from the SFT model to measure the reward's mean and spread
BATCH_SIZE = 16                # answers per iteration
SAMPLES_PER_PROMPT = 8         # answers per prompt
MAX_NEW_TOKENS = 112           # longest answer, <eos> included (room for every expert answer)
TEMPERATURE = 1.0
KL_COEF = 0.1                  # β
KL_ESTIMATOR = "k1"
CLIP_EPS = 0.2                 # ε
VALUE_CLIP_EPS = 0.2           # ε_V
VF_COEF = 0.1                  # c_V
ENT_COEF = 0.0                 # c_H
PPO_EPOCHS = 2
MINIBATCH_SIZE = 16
LEARNING_RATE = 7.5e-5
GAMMA = 1.0
LAM = 1.0                      # λ: the whole reward reaches the first token (see 'Advantages')
MISSING_EOS_REWARD = -1.0      # reward of an answer cut off before <eos>
# shorter runs: adaptive β, and the β = 0 pitfall
COMPARE_ITERATIONS = 4
KL_TARGET = 3.0                # nats per answer
KL_HORIZON = 25                # tiny, so that β moves visibly within a short demonstration
BETA_ZERO_ITERATIONS = 4
N_SHOW = 5                     # held-out questions shown in full

# %%
import inspect
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import challenges, checkpoints, data, judge, ppo, reward, sampling
from course_utils.exercises import check_clipped_objective, check_gae_one_sequence, check_kl_optimum
from course_utils.losses import kl_penalty, ppo_clip_loss
from course_utils.paths import CHECKPOINT_DIR as COMMITTED_CHECKPOINTS
from course_utils.plotting import COLORS, STAGE_COLORS, smooth, use_course_style
from course_utils.training import encode_sft
from course_utils.widgets import (bandit_ppo_view, bandit_ppo_widget, kl_optimum_widget,
                                  ppo_clip_view, ppo_clip_widget, ppo_run_widget)

use_course_style()
pd.set_option("display.width", 140)
pd.set_option("display.max_colwidth", 80)

ckpt = COMMITTED_CHECKPOINTS if CHECKPOINT_DIR is None else Path(CHECKPOINT_DIR)
tok = checkpoints.load_tokenizer(ckpt)
sft = checkpoints.load("sft", ckpt, dtype="float64")   # the SFT policy π_ref, in double precision: what the
rm = reward.load_reward_model(ckpt, dtype="float64")   # book prints from it is the same on every CPU
sft32 = checkpoints.load("sft", ckpt)                  # float32 copies: the live runs train these (twice as fast)
rm32 = reward.load_reward_model(ckpt)
scenarios = {s["id"]: s for s in data.load_scenarios()}
train_prompts = data.load_rl_prompts()        # RL prompts: two new wordings per case, in no SFT demonstration
eval_prompts = data.load_eval_prompts()       # held-out: the last variant, never trained on
print(f"policy and reference: TinyGPT with {sft.n_params:,} parameters; reward model: {rm!r}")
print(f"{len(train_prompts)} training prompts from {len({p['scenario_id'] for p in train_prompts})} scenarios; "
      f"{len(eval_prompts)} held-out questions")


def judge_scores(answers: list[str], items: list[dict]) -> pd.DataFrame:
    """Gold-judge verdicts of answers to prompts that carry a scenario id."""
    return judge.judge_many(answers, [scenarios[p["scenario_id"]] for p in items])


# %% [markdown]
# ## 1. Why reinforcement learning after SFT?
#
# SFT copies demonstrations. It learns from **one good answer per prompt** and never sees what a
# *bad* answer looks like, nor how much better one answer is than another. The reward model
# learned exactly that from preferences, and it can score **any** answer, including ones nobody
# wrote. So we can let the policy answer, score its answers, and make the better ones more likely.
#
# Ask the SFT model the same question four times, sampling at temperature 1, and score each answer
# with the reward model and with the gold judge (the rubric that plays the pharmacist, chapter 7):

# %%
case = scenarios[CASE_ID]
question = case["question"]
samples = ppo.sample_answers(sft, tok, [question] * 4, temperature=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=SEED)
sample_table = pd.DataFrame({
    "answer (first 110 characters)": [a[:110] + ("..." if len(a) > 110 else "") for a in samples],
    "reward model": rm.score(tok, question, samples),
    "gold judge": judge.judge_many(samples, case).overall.to_numpy(),
})
print(f"Q ({CASE_ID}): {question}")
print(f"{len(set(samples))} distinct answer(s) among the {len(samples)} samples")
sample_table.round(3)

# %% [markdown]
# The line above the table counts the distinct answers: on a question it was trained on, our SFT model is so
# sure of itself that sampling at temperature 1 gives the same answer every time. Identical answers cannot be
# compared, so PPO trains on other wordings of the cases, which no SFT demonstration contains, in the hope
# that there the samples of a prompt differ (section 6 counts how often they do). In principle,
# reinforcement learning turns such scores into a training signal: sample several answers, raise the
# probability of those that scored above the policy's average, lower the others. Two dangers come with it. The
# reward model is only a **proxy** for the expert pharmacist (chapter 3 measured how often it disagrees), so a
# policy that maximises it without restraint finds the proxy's blind spots (reward hacking, chapter 6). And a
# policy that drifts far from fluent text forgets what SFT taught it. Both are held back by the same device: a
# penalty on the distance to the SFT model.

# %% [markdown]
# ## 2. The objective and the PPO algorithm
#
# ### The KL-regularised objective
#
# $$\max_\theta\ \ \mathbb{E}_{x \sim \mathcal{D},\ y \sim \pi_\theta(\cdot \mid x)}\big[\, r_\phi(x, y) \,\big]
# \;-\; \beta\, \mathbb{E}_{x \sim \mathcal{D}}\Big[\mathrm{KL}\big(\pi_\theta(\cdot \mid x) \,\big\|\, \pi_\text{ref}(\cdot \mid x)\big)\Big]$$
#
# | symbol | meaning | here |
# |---|---|---|
# | $x$, $\mathcal{D}$ | a prompt, and the training prompts | two new wordings of every case, in no SFT demonstration (never the held-out ones) |
# | $y = (y_1, \dots, y_L)$ | an answer sampled from the policy, token by token, ending with `<eos>` | at most `MAX_NEW_TOKENS` tokens |
# | $\pi_\theta$ | the policy: the TinyGPT being trained, weights $\theta$ | starts as a copy of the SFT model |
# | $\pi_\text{ref}$ | the reference: the frozen SFT model | never updated |
# | $r_\phi(x, y)$ | the reward model's score of the whole answer | chapter 3; it arrives with the last token |
# | $\beta$ | strength of the KL penalty | `KL_COEF` |
# | $\mathrm{KL}(\pi_\theta \,\|\, \pi_\text{ref}) = \mathbb{E}_{y \sim \pi_\theta}\big[\log \tfrac{\pi_\theta(y \mid x)}{\pi_\text{ref}(y \mid x)}\big]$ | how far the policy has moved from the reference, in nats | 0 at the start |
#
# Because $\log \pi(y \mid x) = \sum_t \log \pi(y_t \mid x, y_{<t})$, the KL splits over tokens. RLHF
# therefore treats an answer as an **episode** in which each token is an action, and gives each token a
# reward (Ziegler et al. 2019; Stiennon et al. 2020):
#
# $$r_t = -\beta\, k_t \quad (t < L), \qquad r_L = -\beta\, k_L + r_\phi(x, y), \qquad
# k_t = \log \pi_\text{old}(y_t \mid s_t) - \log \pi_\text{ref}(y_t \mid s_t)$$
#
# with $s_t = (x, y_{<t})$ the context, $\pi_\text{old}$ the policy that sampled the answer, and $k_t$
# the "k1" estimate of the per-token KL (`losses.kl_penalty` also offers k2 and k3; Schulman 2020).
#
# ### The clipped surrogate (Schulman et al. 2017)
#
# A policy-gradient step raises $\log \pi_\theta(y_t \mid s_t)$ in proportion to the **advantage**
# $A_t$: how much better this token turned out than the policy expected. Large steps on a small batch
# are unstable, so PPO maximises a surrogate that stops rewarding a change of a token's probability
# beyond a factor $1 \pm \epsilon$:
#
# $$L^\text{CLIP}(\theta) = \mathbb{E}_t\Big[\min\big(\rho_t A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\, A_t\big)\Big],
# \qquad \rho_t = \frac{\pi_\theta(y_t \mid s_t)}{\pi_\text{old}(y_t \mid s_t)}$$
#
# | symbol | meaning |
# |---|---|
# | $\rho_t$ | probability ratio of token $t$: new policy over the policy that sampled it (1 before the first update) |
# | $A_t$ | advantage of token $t$ (below); positive: make $y_t$ more likely; negative: less likely |
# | $\epsilon$ | clip range (`CLIP_EPS`); the ratio earns nothing beyond $[1-\epsilon, 1+\epsilon]$ |
# | $\min$ | the pessimistic choice: the clip only ever *removes* an incentive, never adds one |
# | $\mathbb{E}_t$ | mean over the answer tokens of the minibatch (prompt and padding masked out) |
#
# ### Advantages: a value head and GAE
#
# A **value head** $V_t = h_t \cdot w_v + b_v$ on the policy's final hidden state $h_t$ predicts the
# reward still to come from token $t$. Generalised advantage estimation (Schulman et al. 2016) combines
# the per-token TD errors $\delta_t$:
#
# $$\delta_t = r_t + \gamma V_{t+1} - V_t, \qquad A_t = \sum_{l \ge 0} (\gamma\lambda)^l\, \delta_{t+l}, \qquad
# R_t = A_t + V_t, \qquad V_{L+1} = 0$$
#
# with discount $\gamma$ (`GAMMA` = 1: a token late in the answer counts as much as an early one) and
# $\lambda$ (`LAM`) trading bias ($\lambda = 0$: trust $V$) against variance ($\lambda = 1$: the raw
# sum of rewards). The course uses $\lambda = 1$, and the reason is worth a pause. Here the reward
# arrives once, at the last token, and what decides it comes first: which case the answer is about,
# fixed by its first few words, roughly 90 tokens earlier. With $\lambda < 1$ the score reaches token
# $t$ multiplied by $(\gamma\lambda)^{L-t}$, about $0.95^{90} \approx 0.01$ at the start, so until the
# value head has learned to predict it, the decisive tokens get almost no signal. PPO against the gold
# judge itself, a reward that cannot be hacked (`benchmarks/ppo_gold_reward.py`), shows it: with
# $\lambda = 0.95$ the judge's score on the training prompts did not rise, with $\lambda = 1$ it did.
# $\lambda < 1$ pays off when rewards arrive along the way and $V$ is already good; Exercise 1
# (section 11) computes GAE for one answer, so you can try both. The value head learns $R_t$ with a
# clipped squared error, and shares the transformer
# with the policy, so its gradient reaches the trunk too. Each minibatch minimises
#
# $$\mathcal{L} = -L^\text{CLIP} + c_V \cdot \tfrac12 \max\big((V_t - R_t)^2,\ (V^\text{old}_t + \mathrm{clip}(V_t - V^\text{old}_t, \pm\epsilon_V) - R_t)^2\big) - c_H\, H_t$$
#
# averaged over answer tokens, with $c_V$ = `VF_COEF`, $\epsilon_V$ = `VALUE_CLIP_EPS` and an optional
# entropy bonus $c_H$ = `ENT_COEF` (entropy $H_t$ of the policy's next-token distribution). One PPO
# **iteration**: sample a batch of answers, score them, compute $r_t$, $A_t$, $R_t$, then take
# `PPO_EPOCHS` passes of minibatch AdamW steps on that batch. `course_utils/ppo.py` implements every
# step, commented by what it does, following the implementation details catalogued by Huang et al. (2024).
#
# Here is the clipped surrogate for one token, as a function of its ratio:

# %%
fig, notes = ppo_clip_view(CLIP_EPS_DEMO)
for note in notes:
    print(f"note: {note}")
plt.show()

# %% [markdown]
# Read the left panel ($A > 0$): raising the token's probability pays, until $\rho = 1 + \epsilon$;
# beyond that the objective is flat and the gradient is zero (shaded), so one batch cannot push the
# token much further. Lowering the probability ($\rho < 1$) is never clipped: the objective keeps
# penalising a step in the wrong direction. The right panel ($A < 0$) is the mirror image. The fraction
# of tokens in the shaded regions during training is the **clip fraction**, one of PPO's diagnostics.
#
# **Try it.** Move ε and watch the flat regions move (ε = 0 leaves no room at all).

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
ppo_clip_widget()

# %% [markdown]
# ## 3. A worked example by hand: rewards, GAE and the clipped objective of one answer
#
# Take an answer of four tokens (the last one `<eos>`), with the log-probabilities of the sampling
# policy and of the reference, the values predicted by the value head, and a reward-model score of
# 1.5. With β = 0.1, γ = 1 and λ = 0.95, fill the table from left to right with a calculator.
# Start from the last row: $V_5 = 0$ and $A_5 = 0$.

# %%
beta_hand, gamma_hand, lam_hand, score_hand = 0.1, 1.0, 0.95, 1.5
logp_old_hand = np.array([-1.2, -0.4, -2.0, -0.1])
logp_ref_hand = np.array([-1.0, -0.5, -2.5, -0.1])
values_hand = np.array([0.8, 0.9, 1.1, 1.4])

k_hand = logp_old_hand - logp_ref_hand                      # k1 per token
r_hand = -beta_hand * k_hand
r_hand[-1] += score_hand                                     # the score arrives with the last token
v_next = np.append(values_hand[1:], 0.0)                     # V after the last token = 0
delta_hand = r_hand + gamma_hand * v_next - values_hand
adv_hand = np.zeros(4)
for t in reversed(range(4)):                                 # A_t = δ_t + γλ A_{t+1}
    adv_hand[t] = delta_hand[t] + gamma_hand * lam_hand * (adv_hand[t + 1] if t < 3 else 0.0)
adv_lib, ret_lib = ppo.gae(r_hand, values_hand, gamma_hand, lam_hand)
hand = pd.DataFrame({"t": [1, 2, 3, 4], "log π_old": logp_old_hand, "log π_ref": logp_ref_hand, "k_t": k_hand,
                     "r_t": r_hand, "V_t": values_hand, "V_t+1": v_next, "δ_t": delta_hand, "A_t": adv_hand,
                     "R_t = A_t + V_t": adv_hand + values_hand}).set_index("t")
print(f"row 4: k = {logp_old_hand[3]:.1f} - ({logp_ref_hand[3]:.1f}) = {k_hand[3]:.1f}; "
      f"r = -{beta_hand} x {k_hand[3]:.1f} + {score_hand} = {r_hand[3]:.2f}; δ = {r_hand[3]:.2f} + 0 - {values_hand[3]} "
      f"= {delta_hand[3]:.2f} = A_4")
print(f"row 3: δ = {r_hand[2]:.3f} + {v_next[2]} - {values_hand[2]} = {delta_hand[2]:.3f}; "
      f"A_3 = {delta_hand[2]:.3f} + {gamma_hand * lam_hand:.2f} x {adv_hand[3]:.2f} = {adv_hand[2]:.4f}")
print(f"ppo.gae agrees with the table: {np.allclose(adv_lib, adv_hand) and np.allclose(ret_lib, adv_hand + values_hand)}")
hand.round(4)

# %% [markdown]
# The KL terms are small here and the score dominates. Token 1 was *less* likely under the policy than
# under the reference ($k_1 = -0.2$), so it even earns a little ($r_1 = +0.02$): a single k1 term can be
# negative, only its expectation over samples is a KL. Token 3 was more likely ($k_3 = 0.5$) and pays
# $0.05$. Now suppose an update raised token 3's log-probability from $-2.0$ to $-1.6$. Its ratio is
# $\rho_3 = e^{0.4} = 1.492$, beyond $1 + \epsilon$ (1.2 for ε = 0.2), and its advantage is positive,
# so the clipped term wins: the objective is $(1 + \epsilon) A_3$, and the gradient is zero.

# %%
t3 = 2
logp_new_t3 = -1.6
rho = np.exp(logp_new_t3 - logp_old_hand[t3])
unclipped, clipped = rho * adv_hand[t3], np.clip(rho, 1 - CLIP_EPS, 1 + CLIP_EPS) * adv_hand[t3]
loss_lib, dlogp_lib, stats_lib = ppo_clip_loss(np.array([logp_new_t3]), np.array([logp_old_hand[t3]]),
                                               np.array([adv_hand[t3]]), CLIP_EPS)
print(f"ρ_3 = exp({logp_new_t3} - ({logp_old_hand[t3]})) = {rho:.3f}")
print(f"ρ_3 A_3 = {unclipped:.4f};  clip(ρ_3) A_3 = {1 + CLIP_EPS:.1f} x {adv_hand[t3]:.4f} = {clipped:.4f}")
print(f"objective = min of the two = {min(unclipped, clipped):.4f}")
print(f"losses.ppo_clip_loss: loss = {loss_lib:.4f} (the negative), gradient {dlogp_lib[0]:.1f}, "
      f"clip fraction {stats_lib['clipfrac']:.0f}")

# %% [markdown]
# ## 4. The KL-regularised optimum, in closed form, on five answers
#
# Restrict the policy to a handful of candidate answers $y$ to one question. Then the objective
# $\sum_y \pi(y)\, r(y) - \beta \sum_y \pi(y) \log \frac{\pi(y)}{\pi_\text{ref}(y)}$ can be maximised
# exactly (set the derivative, with a Lagrange multiplier for $\sum_y \pi(y) = 1$, to zero):
#
# $$\pi^*(y) = \frac{1}{Z}\, \pi_\text{ref}(y)\, \exp\!\big(r(y) / \beta\big), \qquad Z = \sum_{y'} \pi_\text{ref}(y') \exp\!\big(r(y')/\beta\big).$$
#
# The optimum **re-weights the reference** by the exponentiated reward: β → ∞ keeps $\pi_\text{ref}$,
# β → 0 puts everything on the highest reward. This is the solution PPO chases (Ziegler et al. 2019;
# it is also the starting point of DPO, Rafailov et al. 2023).
#
# Our question is the metformin-in-cirrhosis case; the candidates are the expert answer and four
# flawed versions from the preference data of chapter 3. $r$ is the reward model's score, and
# $\pi_\text{ref}$ comes from the SFT model's log-probabilities of each answer. Raw sequence
# probabilities of answers of different lengths differ by many orders of magnitude, so by default
# (`REF_SCORING = "per_token"`) we use the mean log-probability per token, the usual length-normalised
# score; `"sequence"` uses the raw sums.

# %%
LABELS = {"expert": "expert answer", "no_escalation": "no escalation", "missing_key_fact": "missing a key fact",
          "unsafe_claim": "unsafe claim", "vague": "vague", "verbose": "verbose", "wrong_dose": "wrong dose"}
pairs = [p for p in data.load_preferences() if p["scenario_id"] == CASE_ID]
candidates = {"expert": pairs[0]["chosen"]}
candidates.update({p["flaw"]: p["rejected"] for p in pairs if p["flaw"] in CANDIDATE_FLAWS})
labels = [LABELS[k] for k in candidates]
texts = list(candidates.values())
seq_logp, n_tokens = ppo.answer_logprobs(sft, tok, question, texts)
log_ref_raw = seq_logp / n_tokens if REF_SCORING == "per_token" else seq_logp
log_ref = log_ref_raw - np.logaddexp.reduce(log_ref_raw)     # normalised over the candidates
r_cand = rm.score(tok, question, texts)
judge_cand = judge.judge_many(texts, case).overall.to_numpy()
cand_table = pd.DataFrame({"tokens": n_tokens, "log π_SFT(y|x)": seq_logp, "per token": seq_logp / n_tokens,
                           "π_ref": np.exp(log_ref), "r (reward model)": r_cand, "gold judge": judge_cand},
                          index=pd.Index(labels, name="candidate"))
print(f"Q: {question}")
for lab, t in zip(labels, texts):
    print(f"  {lab}: {t[:150]}{'...' if len(t) > 150 else ''}")
cand_table.round(3)

# %%
best_rm, best_judge = labels[int(np.argmax(r_cand))], labels[int(np.argmax(judge_cand))]
order_rm = [labels[i] for i in np.argsort(-r_cand)]
order_judge = [labels[i] for i in np.argsort(-judge_cand)]
print(f"reward model ranks: {' > '.join(order_rm)}")
print(f"gold judge ranks:   {' > '.join(order_judge)}")
print("the two agree on the best answer" if best_rm == best_judge else
      f"they disagree on the best answer: {best_rm} (reward model) vs {best_judge} (judge)")

# %% [markdown]
# ### The closed form, step by step
#
# With $\beta$ = `BETA_DEMO`, multiply each $\pi_\text{ref}(y)$ by $\exp\big((r(y) - r_\max)/\beta\big)$
# (subtracting the largest reward $r_\max$ first changes nothing after normalising, and keeps the
# exponentials from overflowing), then divide by the sum $Z$:

# %%
shifted = (r_cand - r_cand.max()) / BETA_DEMO
weights = np.exp(log_ref) * np.exp(shifted)
pi_star = weights / weights.sum()
worked = pd.DataFrame({"π_ref": np.exp(log_ref), "r": r_cand, "(r - r_max)/β": shifted, "exp(.)": np.exp(shifted),
                       "π_ref · exp(.)": weights, "π* = that / Z": pi_star}, index=pd.Index(labels, name="candidate"))
print(f"β = {BETA_DEMO}: Z = {weights.sum():.4f}; ppo.kl_optimal_policy agrees: "
      f"{np.allclose(pi_star, ppo.kl_optimal_policy(log_ref, r_cand, BETA_DEMO))}")
kl_star = float(np.sum(pi_star * (np.log(pi_star) - log_ref)))
print(f"E[r]: {np.exp(log_ref) @ r_cand:.3f} under π_ref -> {pi_star @ r_cand:.3f} under π*, "
      f"at a KL of {kl_star:.3f} nats")
worked.round(4)

# %% [markdown]
# How does the trade-off move with β? Each β gives one optimum; smaller β buys more reward with more KL:

# %%
beta_grid = [100.0, 30.0, 10.0, 5.0, 3.0, 1.0, 0.3, 0.0]
rows = []
for b in beta_grid:
    p = ppo.kl_optimal_policy(log_ref, r_cand, b)
    nz = p > 0
    rows.append({"β": b, "E[r]": p @ r_cand, "KL(π*‖π_ref)": float(np.sum(p[nz] * (np.log(p[nz]) - log_ref[nz]))),
                 "E[gold judge]": p @ judge_cand, **{f"π*({lab})": q for lab, q in zip(labels, p)}})
tradeoff = pd.DataFrame(rows).set_index("β")
j_hi, j_lo = tradeoff["E[gold judge]"].iloc[0], tradeoff["E[gold judge]"].iloc[-1]
print(f"from β = {beta_grid[0]:g} to β = 0: E[r] {tradeoff['E[r]'].iloc[0]:.3f} -> {tradeoff['E[r]'].iloc[-1]:.3f}, "
      f"E[gold judge] {j_hi:.3f} -> {j_lo:.3f} ({'up' if j_lo > j_hi + 1e-9 else 'down' if j_lo < j_hi - 1e-9 else 'unchanged'}); "
      f"at β = 0 all the probability sits on the reward model's favourite, the {best_rm}")
tradeoff.round(3)

# %% [markdown]
# Two lessons in one table. The KL is the *price* of the reward: at β = 0 the optimum is a single answer,
# whatever the reference thought of it. And the optimum maximises the **reward model**, not the gold judge:
# the column E[gold judge] follows only as far as the two rankings printed above agree. On this question they
# agree on the best answer, so pushing β down also raises the judge's expected score (the line above the
# table), but they disagree lower down (the reward model ranks the unsafe claim second, above the answers
# missing a key fact or the escalation advice; the judge ranks it last), and on a question where the
# reward model's favourite is not the judge's, the same push would lower the gold score. That gap between
# proxy and truth is what chapter 6 measures as reward hacking.
#
# **Try it.** Slide β and watch the probability flow between the candidates, and the point move along
# the reward-KL curve.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
kl_optimum_widget(labels, log_ref, r_cand, beta=BETA_DEMO)

# %% [markdown]
# ## 5. A mini-PPO on the same five answers
#
# Now forget the closed form and *learn* the policy, with the same machinery as the real run: a
# softmax policy $\pi_\theta = \mathrm{softmax}(\theta)$ over the five candidates, starting at
# $\pi_\text{ref}$; each iteration samples a batch of answers, gives each the KL-penalised reward
# $r(y) - \beta\,(\log \pi_\theta(y) - \log \pi_\text{ref}(y))$, whitens the advantages, and takes a few
# AdamW steps on `losses.ppo_clip_loss`. Here is all of it:

# %%
print(inspect.getsource(ppo.bandit_ppo))

# %%
history_bandit = ppo.bandit_ppo(log_ref, r_cand, BETA_DEMO, CLIP_EPS_DEMO, BANDIT_LR, BANDIT_ITERATIONS,
                                BANDIT_BATCH, seed=SEED)
fig, notes = bandit_ppo_view(labels, log_ref, r_cand, BETA_DEMO, CLIP_EPS_DEMO, BANDIT_LR, BANDIT_ITERATIONS,
                             BANDIT_BATCH, seed=SEED)
for note in notes:
    print(f"note: {note}")
plt.show()
final_bandit = history_bandit[-20:].mean(axis=0)
print(f"mean of the last 20 iterations vs the closed form (β = {BETA_DEMO}):")
for lab, q, s in zip(labels, final_bandit, pi_star):
    print(f"  {lab:<20} π_θ {q:.3f}   π* {s:.3f}")
print(f"largest gap: {np.abs(final_bandit - pi_star).max():.3f}")

# %% [markdown]
# PPO finds the closed-form optimum from samples alone, wobbling around it because every iteration
# sees only a batch of `BANDIT_BATCH` random answers. **Try it**: β = 0.01 sends almost everything to one
# answer; ε = 0 freezes the policy; a learning rate of 1 or more makes it overshoot. Each re-run takes
# a fraction of a second.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
bandit_ppo_widget(labels, log_ref, r_cand, BETA_DEMO, CLIP_EPS_DEMO, BANDIT_LR, seed=SEED)

# %% [markdown]
# ## 6. The real run: PPO on TinyGPT
#
# Now the policy is the whole TinyGPT and the "candidates" are every answer it can write. Each
# iteration takes `BATCH_SIZE / SAMPLES_PER_PROMPT` training prompts, samples `SAMPLES_PER_PROMPT`
# answers to each (`TinyGPT.generate` with the KV cache; prompts of equal token length share a call),
# scores them, and updates. Three details from Huang et al. (2024) matter on this small scale:
# the scores are **normalised** to mean 0 and standard deviation 1 over answers sampled from the SFT
# policy before training (`ppo.reward_normalisation`, with `NORM_SAMPLES` answers here);
# an answer cut off at `MAX_NEW_TOKENS` without `<eos>` gets a fixed low reward (`MISSING_EOS_REWARD`)
# instead of its score (otherwise a reward model that likes long answers teaches the policy never to
# stop); and the advantages are whitened per batch.

# %%
config = ppo.PPOConfig(
    iterations=ITERATIONS, batch_size=BATCH_SIZE, samples_per_prompt=SAMPLES_PER_PROMPT,
    max_new_tokens=MAX_NEW_TOKENS, temperature=TEMPERATURE, kl_coef=KL_COEF, kl_estimator=KL_ESTIMATOR,
    missing_eos_reward=MISSING_EOS_REWARD, gamma=GAMMA, lam=LAM, ppo_epochs=PPO_EPOCHS,
    minibatch_size=MINIBATCH_SIZE, lr=LEARNING_RATE, clip_eps=CLIP_EPS, value_clip_eps=VALUE_CLIP_EPS,
    vf_coef=VF_COEF, ent_coef=ENT_COEF, norm_samples=NORM_SAMPLES, seed=SEED)
changed = {k: v for k, v in ppo.config_dict(config).items() if v != getattr(ppo.DEFAULT_CONFIG, k)}
print("settings as in ppo.DEFAULT_CONFIG (the reference run), except: " + (
    ", ".join(f"{k} = {v} (reference {getattr(ppo.DEFAULT_CONFIG, k)})" for k, v in changed.items()) or "nothing"))
print(f"{ITERATIONS} iterations x {BATCH_SIZE} answers = {ITERATIONS * BATCH_SIZE} sampled answers, "
      f"{ITERATIONS * PPO_EPOCHS * -(-BATCH_SIZE // MINIBATCH_SIZE)} gradient steps")
expert_lengths = [len(encode_sft(tok, d["prompt"], d["response"])[0]) - len(encode_sft(tok, d["prompt"])[0])
                  for d in data.load_sft()]
print(f"expert answers: {min(expert_lengths)}-{max(expert_lengths)} tokens with <eos>; "
      f"MAX_NEW_TOKENS = {MAX_NEW_TOKENS}")

# %% [markdown]
# The reward normalisation $(\mu, \sigma)$ depends only on the SFT model, the reward model and the
# prompts, so the three live runs of this chapter (this one and the two of sections 8 and 9) share one,
# measured once on `NORM_SAMPLES` answers: enough for a live demonstration (the reference run measures it
# on more). Passing it as `score_norm` gives exactly the run `train_ppo` would do by measuring it itself.

# %% tags=["nbval-ignore-output"]
start = time.perf_counter()
prompt_ids = [encode_sft(tok, p["prompt"])[0] for p in train_prompts]
score_norm = ppo.reward_normalisation(sft32, rm32, tok, prompt_ids, NORM_SAMPLES, MAX_NEW_TOKENS, TEMPERATURE, SEED)
live_policy, diag = ppo.train_ppo(sft32.copy(), sft32, rm32, tok, train_prompts, config, scenarios=scenarios,
                                  score_norm=score_norm)
run_seconds = time.perf_counter() - start

# %% tags=["nbval-ignore-output"]
# wall-clock time of the run above: depends on the machine
print(f"reward normalisation from {NORM_SAMPLES} SFT answers: μ = {score_norm[0]:.3f}, σ = {score_norm[1]:.3f}")
print(f"{len(diag)} iterations in {run_seconds:.1f} s ({run_seconds / max(len(diag), 1):.2f} s per iteration)")

# %% tags=["nbval-ignore-output"]
k_head = max(1, min(10, len(diag) // 2))
first, last = diag.head(k_head), diag.tail(k_head)
summary_cols = ["score", "judge", "kl", "kl_exact", "clipfrac", "approx_kl", "entropy", "length", "ended"]
print(f"stopped early: {diag.attrs['stopped']}")
pd.DataFrame({f"first {k_head} iterations": first[summary_cols].mean(),
              f"last {k_head} iterations": last[summary_cols].mean()}).round(3)

# %%
fig, axes = plt.subplots(2, 3, figsize=(15, 8))
it = diag.iteration
window = max(1, min(10, len(diag) // 4))                     # moving average over a quarter of the run, at most 10
panels = [
    ("score", "reward-model score (raw)", STAGE_COLORS["reward"]),
    ("judge", "gold judge of the samples (0-1)", STAGE_COLORS["ppo"]),
    ("kl", "KL(π ‖ π_ref) per answer (nats)", COLORS["vermillion"]),
    ("beta", "β", COLORS["black"]),
    ("clipfrac", "clip fraction", COLORS["purple"]),
    ("entropy", "entropy per token (nats)", COLORS["blue"]),
]
for ax, (col, title, colour) in zip(axes.flat, panels):
    if col == "beta":                                        # a step function: no smoothing
        ax.plot(it, diag[col], color=colour)
        ax.set_ylim(0, 1.5 * max(diag[col].max(), 1e-3))
    else:
        ax.plot(it, diag[col], color=colour, alpha=0.35, linewidth=1.2)
        ax.plot(it, smooth(diag[col].to_numpy(), window), color=colour, label=f"moving average ({window})")
    ax.set_title(title)
    ax.set_xlabel("iteration")
axes[0, 2].plot(it, smooth(diag.kl_exact.to_numpy(), window), "--", color=COLORS["black"], linewidth=1.4,
                label="exact (full distributions)")
axes[0, 2].legend(loc="upper left", fontsize=10)
fig.suptitle(f"Your live PPO run: β = {KL_COEF}, ε = {CLIP_EPS}, lr = {LEARNING_RATE:g}, "
             f"{BATCH_SIZE} answers per iteration, {len(diag)} iterations")
plt.show()

# %% [markdown]
# How to read the six panels:
#
# * **Reward-model score** is what PPO maximises; it is noisy because every iteration samples new
#   answers to two new prompts, and each prompt has its own typical score. The evaluation in section 7
#   (greedy answers to every held-out question) is the steadier measurement.
# * **Gold judge** is what we actually care about, and PPO never sees it.
# * **KL** is the price: how far the policy has moved from the SFT model, in nats per answer. The
#   dashed line computes it exactly from the full next-token distributions; the solid one is the
#   sampled k1 estimate that enters the reward; in expectation the two are equal.
# * **β** stays fixed in this run (section 8 adapts it).
# * **Clip fraction** is the share of answer tokens whose ratio left $[1-\epsilon, 1+\epsilon]$ in the
#   direction of their advantage. Near zero means each batch moves the policy only a little (compare
#   the summary table: a small learning rate and two epochs per batch); tens of percent means the
#   learning rate is too large for ε.
# * **Entropy** measures how spread out the next-token distributions are. A collapse towards 0 means
#   the policy has stopped exploring (and usually that it writes the same answer every time).

# %% [markdown]
# ### The reference run
#
# The live run above is a short demonstration of the code for you: seconds on a laptop, and on another
# processor or BLAS library the last bits of every matrix product differ, sampling amplifies them, and
# your curves and numbers can differ from the book's. The **reference run** is what `make checkpoints`
# trained (`ppo.build_ppo_checkpoint`): the same `train_ppo` from the same SFT model against the same
# reward model, with `ppo.DEFAULT_CONFIG`. Its policy, `data/checkpoints/ppo.npz`, is what every later
# section and chapter loads, evaluated in double precision so that the numbers below are the same on
# every computer; its diagnostics were saved next to it (`checkpoints.load_log("ppo")`).
#
# Its β of 0.1 (`ppo.DEFAULT_CONFIG.kl_coef`, printed below; the live run's `KL_COEF` is the same) was
# chosen by measurement. The README's 'PPO settings' table (`benchmarks/ppo_settings_results.jsonl`)
# retrains PPO from the same SFT model against the same reward model with several seeds at β = 0.05, 0.1
# and 0.2 (each for 60 iterations at a learning rate of 1.5 × 10⁻⁴), and scores each policy's greedy
# answers with the gold judge. Of the three, β = 0.1 is the only one whose gain over SFT on the held-out
# questions is positive in every seed and whose gain on the RL prompts has an interval above zero in every
# seed. Even so, on the held-out questions its interval includes zero in most seeds: a firmer leash makes
# the small gain more consistent, not large. The reference recipe keeps β = 0.1 with half that learning
# rate over twice the iterations (printed below); in the same table, its gain on the RL prompts has an
# interval above zero in every seed, and its held-out interval includes zero in every seed.

# %%
policy = checkpoints.load("ppo", ckpt, dtype="float64")
ref_cfg = ppo.DEFAULT_CONFIG
ref_diag = checkpoints.load_log("ppo", ckpt)
print(f"reference recipe (ppo.DEFAULT_CONFIG): {ref_cfg.iterations} iterations (the live run: {ITERATIONS}) x "
      f"{ref_cfg.batch_size} answers, β = {ref_cfg.kl_coef}, ε = {ref_cfg.clip_eps}, lr = {ref_cfg.lr:g}, "
      f"{ref_cfg.ppo_epochs} epochs of minibatches of {ref_cfg.minibatch_size} per iteration, "
      f"reward normalised on {ref_cfg.norm_samples} SFT answers (the live runs: {NORM_SAMPLES}), seed {ref_cfg.seed}")
k_ref = min(10, len(ref_diag) // 2)
ref_cols = {"score": ("reward-model score (raw)", "{:.2f}"), "judge": ("gold judge of the samples", "{:.2f}"),
            "kl": ("KL(π ‖ π_ref) per answer, nats", "{:.2f}"), "clipfrac": ("clip fraction", "{:.3f}"),
            "approx_kl": ("approximate KL(π_θ ‖ π_old)", "{:.3f}")}
print(f"{len(ref_diag)} iterations logged; means of the first and of the last {k_ref} iterations:")
for col, (name, fmt) in ref_cols.items():
    print(f"  {name:<33} {fmt.format(ref_diag[col].head(k_ref).mean()):>7} -> {fmt.format(ref_diag[col].tail(k_ref).mean())}")

fig, axes = plt.subplots(2, 3, figsize=(15, 8))
colours = [STAGE_COLORS["reward"], STAGE_COLORS["ppo"], COLORS["vermillion"], COLORS["purple"], COLORS["blue"]]
for ax, (col, (name, _)), colour in zip(axes.flat, ref_cols.items(), colours):
    ax.plot(ref_diag.iteration, ref_diag[col], color=colour, alpha=0.35, linewidth=1.2)
    ax.plot(ref_diag.iteration, smooth(ref_diag[col].to_numpy(), 10), color=colour, label="moving average (10)")
    ax.set(title=name, xlabel="iteration")
axes[0, 0].legend(loc="lower right", fontsize=10)
axes[1, 2].axis("off")
fig.suptitle(f"The reference PPO run (make checkpoints): β = {ref_cfg.kl_coef}, ε = {ref_cfg.clip_eps}, "
             f"lr = {ref_cfg.lr:g}, {ref_cfg.iterations} iterations")
plt.show()

# %% [markdown]
# ### What the reference run measured, and why
#
# The verdicts below are computed from the log. The training score jumps from batch to batch because
# every batch holds two new prompts, so a trend is judged by the least-squares slope over all the
# run's iterations against twice its standard error.

# %%
def trend(y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope of y against its index, and the slope's standard error."""
    x = np.arange(len(y), dtype=float)
    slope, icept = np.polyfit(x, y, 1)
    resid = y - (slope * x + icept)
    return float(slope), float(np.sqrt(resid @ resid / (len(y) - 2) / ((x - x.mean()) @ (x - x.mean()))))


slope, slope_se = trend(ref_diag.score.to_numpy())
verdict = ("rose" if slope > 2 * slope_se else "fell" if slope < -2 * slope_se else "stayed flat (within noise)")
print(f"training reward-model score: slope {slope:+.4f} ± {slope_se:.4f} per iteration -> it {verdict}")
print(f"clip fraction, mean over the run: {ref_diag.clipfrac.mean():.4f}; iterations with no clipped token at all: "
      f"{int((ref_diag.clipfrac == 0).sum())} of {len(ref_diag)}")
print(f"approximate KL(π_θ ‖ π_old) per update, mean: {ref_diag.approx_kl.mean():.4f} nats")
print(f"entropy of the policy's next-token distributions on its answers: {ref_diag.entropy.iloc[0]:.4f} nats/token "
      f"in the first batch (the SFT policy itself), {ref_diag.entropy.mean():.4f} on average over the run")
per_prompt = ref_cfg.batch_size // ref_cfg.samples_per_prompt
n_distinct = np.rint(ref_diag.distinct * ref_cfg.batch_size).astype(int)
print(f"distinct answers per batch of {ref_cfg.batch_size} ({per_prompt} prompts x {ref_cfg.samples_per_prompt} samples): "
      f"{per_prompt} (every sample of a prompt identical) in {int((n_distinct == per_prompt).sum())} of "
      f"{len(ref_diag)} batches")
shift = challenges.load_experiments_cache(ckpt)["shift_mitigation"].iloc[0]
agree = challenges.load_experiments_cache(ckpt)["shift_agreement"]
k_sft, n_sft = int(round(agree.agree_old.iloc[0] * agree.n_pairs.iloc[0])), int(agree.n_pairs.iloc[0])
lo_sft, hi_sft = reward.wilson_interval(k_sft, n_sft)
print(f"reward model on held-out preference pairs: {shift.accuracy_preference_pairs:.0%} right; on pairs of the SFT "
      f"policy's own sampled answers (chapter 6's cache): {k_sft} of {n_sft} ordered like the gold judge "
      f"({k_sft / n_sft:.0%}, 95 % interval {lo_sft:.0%} to {hi_sft:.0%}; "
      f"{'chance lies inside it' if lo_sft <= 0.5 <= hi_sft else 'chance lies outside it'})")

# %% [markdown]
# Read the printed lines together; they explain one another.
#
# * **The policy explores, a little.** On these new wordings the samples of a prompt differ in most
#   batches: only the batches counted on the distinct-answers line had every sample of each prompt
#   identical. The entropy of the policy's next-token distributions stays small (the entropy line): the
#   answers mostly differ in a few places, such as whether they end with the escalation advice. PPO learns
#   by comparing answers to the same prompt, so those differences are its signal.
# * **Each update is small, but the updates add up.** The clip fraction and the approximate KL per update
#   show how rarely a token's probability changed by more than ε within one batch. Over the run, the KL
#   to the SFT model grew from a small fraction of a nat to a few nats (the KL line above the figure).
# * **The training score rose, slowly and noisily.** The mean score of the last iterations is higher than
#   that of the first (the line above the figure), and the slope over the whole run is more than twice its
#   standard error, though not by much (the first verdict): with two new prompts in every batch, the swings
#   from batch to batch are large next to the trend, which the run's 120 iterations only just show. The
#   gold judge's score of the same samples stayed high, also with large swings from batch to batch (its
#   panel; its first and last means are printed above the figure): the judge's verdict on the training
#   prompts, which PPO never sees, did not fall.
# * **The reward model also ranks the policy's own answers, if roughly.** It orders held-out preference
#   pairs (an expert answer against a deliberately flawed one) well. On pairs of the SFT policy's own
#   sampled answers it orders most of the pairs in chapter 6's cache like the gold judge; there are few of
#   them, so the interval is wide, but chance lies outside it.
#
# So the policy moved a few nats away from the SFT model and its training score rose, but that score is
# the reward model's, on the prompts PPO trains on, and does not say by itself what the move bought.
# Section 7 measures it on held-out questions, where every question is answered by both policies, with
# the judge as well as the reward model.

# %% [markdown]
# ## 7. What PPO did on held-out questions
#
# The test: the held-out phrasings (the last variant of every scenario), which neither SFT nor PPO
# ever trained on. Both policies answer greedily (the most likely token each time, so the comparison
# does not depend on sampling luck), and both the reward model and the gold judge score the answers.

# %%
eval_texts = [p["prompt"] for p in eval_prompts]
answers, ended = {}, {}
for name, model in (("SFT", sft), ("PPO", policy)):
    answers[name], ended[name] = ppo.sample_answers(model, tok, eval_texts, 0.0, MAX_NEW_TOKENS, return_ended=True)
rm_scores = {k: rm.score(tok, eval_texts, a) for k, a in answers.items()}
verdicts = {k: judge_scores(a, eval_prompts) for k, a in answers.items()}
overview = pd.DataFrame({
    k: {"reward model (mean)": rm_scores[k].mean(), "gold judge overall (mean)": verdicts[k].overall.mean(),
        **{m: verdicts[k][m].mean() for m in judge.METRICS},
        "answer length (words)": np.mean([len(a.split()) for a in answers[k]]),
        "repeated 4-grams (share)": np.mean([challenges.repetition(a) for a in answers[k]]),
        "answers that end with <eos>": ended[k].mean()}
    for k in answers})
overview["PPO - SFT"] = overview["PPO"] - overview["SFT"]
overview.round(3)

# %%
d_rm = rm_scores["PPO"] - rm_scores["SFT"]
d_judge = verdicts["PPO"].overall.to_numpy() - verdicts["SFT"].overall.to_numpy()
n = len(eval_prompts)
for name, before, after in (("reward model", rm_scores["SFT"].mean(), rm_scores["PPO"].mean()),
                            ("gold judge", verdicts["SFT"].overall.mean(), verdicts["PPO"].overall.mean())):
    verdict = "higher" if after > before else "not higher"
    print(f"{name}: the PPO policy's mean on held-out questions is {verdict} than the SFT policy's "
          f"({after:.3f} vs {before:.3f}; whether that is more than noise: the intervals below)")
# the same answer scored in two batches can differ in the last bits (1e-15): |Δ| below 1e-9 is a tie
print(f"reward model: PPO higher on {int((d_rm > 1e-9).sum())} of {n} held-out questions, "
      f"lower on {int((d_rm < -1e-9).sum())}, equal on {int((np.abs(d_rm) <= 1e-9).sum())}")
print(f"gold judge:   PPO higher on {int((d_judge > 1e-9).sum())}, lower on {int((d_judge < -1e-9).sum())}, "
      f"equal on {int((np.abs(d_judge) <= 1e-9).sum())}")
both = int(((d_rm > 1e-9) & (d_judge < -1e-9)).sum())
print(f"reward model up but judge down (the proxy gap): {both} questions")
n_differ = sum(a != b for a, b in zip(answers["SFT"], answers["PPO"]))
print(f"PPO's greedy answer differs from the SFT policy's on {n_differ} of {n} held-out questions")
boot = np.random.default_rng(SEED).integers(0, n, size=(2000, n))   # resample the questions (paired)
for name, d in (("gold judge", d_judge), ("reward model", d_rm)):
    lo_b, hi_b = np.percentile(d[boot].mean(axis=1), [2.5, 97.5])
    print(f"{name} gain PPO - SFT: {d.mean():+.3f}, 95 % bootstrap interval [{lo_b:+.3f}, {hi_b:+.3f}]: "
          + ("zero lies inside it, no measurable change" if lo_b <= 0 <= hi_b else
             "a measurable rise" if lo_b > 0 else "a measurable fall"))
per_cat = pd.DataFrame({"category": [p["category"] for p in eval_prompts], "Δ reward model": d_rm,
                        "Δ gold judge": d_judge}).groupby("category").mean()
per_cat.loc["all"] = [d_rm.mean(), d_judge.mean()]
per_cat.round(3)

# %% [markdown]
# Five questions in full (the course's running examples, in their held-out phrasing):

# %%
SHOW_IDS = ["CON-01", "REN-01", "INT-01", "CON-02", "PGX-01"][:N_SHOW]
index_of = {p["scenario_id"]: i for i, p in enumerate(eval_prompts)}
for sid in SHOW_IDS:
    i = index_of[sid]
    print(f"{sid} · {scenarios[sid]['title']}\nQ: {eval_texts[i]}")
    for k in answers:
        print(f"  {k} (reward model {rm_scores[k][i]:+.2f}, judge {verdicts[k].overall[i]:.2f}): {answers[k][i]}")
    print()
shown = [index_of[sid] for sid in SHOW_IDS]
pd.DataFrame({"case": [scenarios[sid]["title"] for sid in SHOW_IDS],
              "reward model SFT": rm_scores["SFT"][shown], "reward model PPO": rm_scores["PPO"][shown],
              "judge SFT": verdicts["SFT"].overall.to_numpy()[shown], "judge PPO": verdicts["PPO"].overall.to_numpy()[shown]},
             index=pd.Index(SHOW_IDS, name="scenario")).round(2)

# %% [markdown]
# ### The four-panel summary
#
# One chart compares SFT and PPO question by question. It uses the gold judge's overall score (0-1)
# on every held-out question: (a) both scores per question, (b) the change per question, (c) the
# distributions, (d) the cumulative change. The cell after it prints the means and the question that
# changed most in each direction.

# %%
sft_q, ppo_q = verdicts["SFT"].overall.to_numpy(), verdicts["PPO"].overall.to_numpy()
order = np.argsort(sft_q, kind="stable")
x = np.arange(n)
fig, axes = plt.subplots(2, 2, figsize=(14, 9))
ax = axes[0, 0]
ax.plot(x, sft_q[order], "o", color=STAGE_COLORS["sft"], label="SFT", markersize=6)
ax.plot(x, ppo_q[order], "^", color=STAGE_COLORS["ppo"], label="PPO", markersize=6)
ax.set(xlabel="held-out question (sorted by the SFT score)", ylabel="gold judge overall", ylim=(-0.02, 1.02),
       title="(a) SFT vs PPO per question")
ax.legend()
ax = axes[0, 1]
ax.bar(x, d_judge[order], color=np.where(d_judge[order] >= 0, COLORS["green"], COLORS["vermillion"]))
ax.axhline(0, color=COLORS["black"], linewidth=0.8)
ax.set(xlabel="held-out question (same order)", ylabel="PPO - SFT", title="(b) change per question")
ax = axes[1, 0]
bins = np.linspace(0, 1, 11)
ax.hist([sft_q, ppo_q], bins=bins, color=[STAGE_COLORS["sft"], STAGE_COLORS["ppo"]], label=["SFT", "PPO"])
ax.set(xlabel="gold judge overall", ylabel="questions", title="(c) score distributions")
ax.legend()
ax = axes[1, 1]
ax.plot(np.arange(1, n + 1), np.cumsum(d_judge), color=COLORS["blue"])
ax.axhline(0, color=COLORS["black"], linewidth=0.8)
ax.set(xlabel="questions (in the order of the evaluation file)", ylabel="cumulative PPO - SFT",
       title="(d) cumulative change")
fig.suptitle(f"SFT vs PPO on {n} held-out questions, scored by the gold judge")
plt.show()

# %%
sft_mean, ppo_mean = sft_q.mean(), ppo_q.mean()
print(f"gold judge, mean over {n} held-out questions: SFT {sft_mean:.3f} -> PPO {ppo_mean:.3f} "
      f"({ppo_mean - sft_mean:+.3f}, {100 * (ppo_mean - sft_mean) / sft_mean:+.1f} %)")
print(f"reward model, mean: SFT {rm_scores['SFT'].mean():.3f} -> PPO {rm_scores['PPO'].mean():.3f} "
      f"({d_rm.mean():+.3f})")
for label, i in (("largest rise", int(np.argmax(d_judge))), ("largest fall", int(np.argmin(d_judge)))):
    sid = eval_prompts[i]["scenario_id"]
    print(f"  {label} of the judge score ({d_judge[i]:+.2f}): {sid} · {scenarios[sid]['title']}: "
          f"judge {sft_q[i]:.2f} -> {ppo_q[i]:.2f}, reward model {rm_scores['SFT'][i]:+.2f} -> "
          f"{rm_scores['PPO'][i]:+.2f}")

# %% [markdown]
# **What to conclude.** PPO left many answers as they were: its greedy answer differs from the SFT policy's
# on the number of held-out questions printed in section 7's second code cell, nearly half of them, and
# on the rest it is the SFT answer word for word. The reward model's gain is measurable (its bootstrap
# interval lies above zero, same cell). The gold judge's is not: it scores more questions higher than
# lower, but by mean the gain is small and zero lies inside its interval, and panel (b) shows changes both
# ways: fewer falls than rises, but some of them large (the largest fall, printed above, takes a question
# from full marks to zero, and lowers its reward-model score too; the largest rise does the opposite).
# The overview table says where the change went: the humility column (the judge's check of the escalation
# advice, whom to contact and how urgently) rose most, while medical accuracy and specificity fell a little,
# and the answers grew longer. That is the story of this course's recipe: the SFT demonstrations end with
# the escalation advice only some of the time, so the SFT model adds it only some of the time; the
# preferences say that an answer with it is better; and PPO acts on that, adding it more often. What it does
# not do is make the answers more accurate. A reward model that orders most pairs of the policy's own
# answers like the judge (section 6) did not, by itself, make the judge follow its gain. The answers shown
# in full show what the SFT model gets wrong on held-out phrasings (the enalapril question gets the answer
# about decongestants in high blood pressure, another case entirely; the codeine answer names the right case
# but gives no escalation advice). PPO fixed the second: its codeine answer adds a sentence on whom to ask
# if the pain is not controlled, and both scores rise (the table after the five answers). On the other four
# questions shown, the enalapril one included, its answer is the SFT policy's, word for word. Before
# trusting an RLHF run, check that the policy explores (entropy, distinct answers), that the score it
# optimises rises beyond the noise (here the training log shows it, only just, and the held-out
# evaluation shows it clearly), and that an independent judge, not only the reward model, measures a gain on
# held-out questions. What a stronger push does is section 9.1's subject.

# %% [markdown]
# ## 8. Fixed β or adaptive β?
#
# A fixed β fixes the *price* of KL, not the KL itself: how far the policy drifts depends on the
# reward model, the learning rate and luck. Ziegler et al. (2019) instead adapt β to keep the KL
# near a target:
#
# $$e = \mathrm{clip}\Big(\frac{\mathrm{KL}}{\mathrm{KL}_\text{target}} - 1,\ -0.2,\ 0.2\Big), \qquad
# \beta \leftarrow \beta\,\Big(1 + e\,\frac{n}{\text{horizon}}\Big)$$
#
# with $n$ the batch size. We compare `COMPARE_ITERATIONS` iterations of both (the fixed-β run is the
# start of the run above: same seed, same batches).

# %% tags=["nbval-ignore-output"]
adaptive_config = ppo.PPOConfig(**{**ppo.config_dict(config), "iterations": COMPARE_ITERATIONS, "adaptive_kl": True,
                                   "kl_target": KL_TARGET, "kl_horizon": KL_HORIZON, "judge_every": 0})
policy_adaptive, diag_adaptive = ppo.train_ppo(sft32.copy(), sft32, rm32, tok, train_prompts, adaptive_config,
                                               scenarios=scenarios, desc="PPO, adaptive β", score_norm=score_norm)
diag_fixed = diag.head(COMPARE_ITERATIONS)

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for d, name, colour in ((diag_fixed, f"fixed β = {KL_COEF}", COLORS["blue"]),
                        (diag_adaptive, f"adaptive, target {KL_TARGET} nats", COLORS["orange"])):
    axes[0].plot(d.iteration, d.kl, color=colour, label=name)
    axes[1].plot(d.iteration, d.beta, color=colour, label=name)
    axes[2].plot(d.iteration, smooth(d.score.to_numpy(), 5), color=colour, label=name)
axes[0].axhline(KL_TARGET, color=COLORS["grey"], linestyle="--", label="target")
axes[0].set(title="KL per answer (nats)", xlabel="iteration")
axes[1].set(title="β", xlabel="iteration")
axes[2].set(title="reward-model score (moving average 5)", xlabel="iteration")
axes[0].legend(fontsize=10)
plt.show()
print(f"adaptive β: {diag_adaptive.beta.iloc[0]:.4f} -> {diag_adaptive.beta.iloc[-1]:.4f}; "
      f"mean KL over the {COMPARE_ITERATIONS} iterations: fixed {diag_fixed.kl.mean():.2f}, "
      f"adaptive {diag_adaptive.kl.mean():.2f} nats (target {KL_TARGET}): "
      f"{'below the target, so β fell' if diag_adaptive.kl.mean() < KL_TARGET else 'above the target, so β rose'}")
print(f"one iteration can move β by at most 0.2 x {BATCH_SIZE} / {KL_HORIZON} = {0.2 * BATCH_SIZE / KL_HORIZON:.1%}")

# %% [markdown]
# The controller moves β by at most $0.2\,n/\text{horizon}$ per batch (printed above), so β follows
# the *trend* of the KL, not its noise. Ziegler et al. (2019) used a horizon of 10,000 samples over
# thousands of iterations; we use a tiny horizon (`KL_HORIZON`) so that β moves visibly within a short
# demonstration. With a KL above the target, β rises and pulls the policy back; below it, β falls and
# the policy may move further. The printed line says which happened here: in a few iterations the
# policy hardly moves from the SFT model, so the KL stays far below a target of a few nats (the reference
# run of section 6 reached a KL of that order only towards the end of its 120 iterations: its KL line).

# %% [markdown]
# ## 9. Pitfalls seen in practice
#
# ### 9.1 Reward going up while the KL explodes (β = 0)
#
# Without the KL penalty nothing holds the policy near fluent, SFT-like text. The same run with
# β = 0:

# %% tags=["nbval-ignore-output"]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    zero_config = ppo.PPOConfig(**{**ppo.config_dict(config), "iterations": BETA_ZERO_ITERATIONS, "kl_coef": 0.0})
    policy_zero, diag_zero = ppo.train_ppo(sft32.copy(), sft32, rm32, tok, train_prompts, zero_config,
                                           scenarios=scenarios, desc="PPO, β = 0", score_norm=score_norm)
for w in caught:
    print(f"warning: {w.message}")
cols = ["score", "judge", "kl", "entropy", "length", "distinct"]
compare_zero = pd.DataFrame({f"β = {KL_COEF}": diag.head(BETA_ZERO_ITERATIONS)[cols].mean(),
                             "β = 0": diag_zero[cols].mean()})
kl_zero = compare_zero.loc["kl", "β = 0"]
print(f"means over the {BETA_ZERO_ITERATIONS} iterations; KL per answer with β = 0: {kl_zero:.3f} nats, with "
      f"β = {KL_COEF}: {compare_zero.loc['kl', f'β = {KL_COEF}']:.3f} nats: "
      + ("the β = 0 policy has barely left the SFT model yet" if kl_zero < 1.0 else
         "the β = 0 policy has started to drift"))
compare_zero.round(3)

# %% tags=["nbval-ignore-output"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for d, name, colour in ((diag.head(BETA_ZERO_ITERATIONS), f"β = {KL_COEF}", COLORS["blue"]),
                        (diag_zero, "β = 0", COLORS["vermillion"])):
    axes[0].plot(d.iteration, d.kl, color=colour, label=name)
    axes[1].plot(d.iteration, smooth(d.score.to_numpy(), 5), color=colour, label=name)
axes[0].set(title="KL per answer (nats)", xlabel="iteration")
axes[1].set(title="reward-model score (moving average 5)", xlabel="iteration")
axes[0].legend()
plt.show()
zero_answers = ppo.sample_answers(policy_zero, tok, eval_texts[:3], 0.0, MAX_NEW_TOKENS)
for q, a in zip(eval_texts[:3], zero_answers):
    print(f"Q: {q}\n  β = 0 policy: {a}\n")

# %% [markdown]
# A live run of a few iterations is a demonstration of the code, not of the effect: the printed line says how
# far the β = 0 policy got, and a few small steps hardly move the policy, penalty or not (the reference run of
# section 6 took most of its 120 iterations to drift a few nats). Removing the penalty only matters once the
# policy starts to move. Chapter 6 pushed the same SFT policy much harder against the same reward model (a KL
# penalty of β = 0.002, next to nothing, a learning rate four times this chapter's, many more iterations than these
# live runs), and cached the result; here is its first and last evaluation checkpoint:

# %%
curves6 = challenges.load_experiments_cache(ckpt)["hacking_curves"]
pushed = curves6[(curves6.optimised == "reward model") & (curves6.beta == curves6.beta.min())]
start6, end6 = pushed.iloc[0], pushed.iloc[-1]
print(f"chapter 6's push at β = {start6.beta:g}, held-out prompts, sampled answers:")
print(f"  iteration {start6.iteration:.0f} -> {end6.iteration:.0f}: KL {round(start6.kl, 1) + 0.0:.1f} -> {end6.kl:.1f} nats; "
      f"reward model {start6.proxy:.2f} -> {end6.proxy:.2f} ({'up' if end6.proxy > start6.proxy else 'down'}); "
      f"gold judge {start6.gold:.3f} -> {end6.gold:.3f} ({'up' if end6.gold > start6.gold else 'down'}, "
      f"{(end6.gold - start6.gold) / np.hypot(start6.gold_se, end6.gold_se):+.1f} standard errors)")

# %% [markdown]
# With next to no penalty and a harder push, the policy travels tens of nats from the SFT model (the
# printed line). On these held-out prompts the reward model's score rises (the line says which way it
# went: up), and the gold judge's falls (down), by more than twice its standard error (its change is
# printed in standard errors; twice is the yardstick of section 6), so the fall is not noise. The push
# bought the proxy's approval on new questions and lost the pharmacist's: a proxy that rises while the
# truth falls is exactly what the KL penalty is there to prevent. Chapter 6 looks closer: where along the
# run the gold score peaked before it fell, which words became more common, and what a stronger β, early
# stopping or an ensemble win back.
#
# ### 9.2 A negative KL from sampling settings that differ between rollout and training
#
# The k1 estimate $\sum_t (\log \pi - \log \pi_\text{ref})$ is an unbiased estimate of
# $\mathrm{KL}(\pi \,\|\, \pi_\text{ref})$ **only if the tokens were drawn from $\pi$** with exactly the
# settings used to compute $\log \pi$. Sample with another temperature, or with top-k, or from a
# stale copy of the model, and score at temperature 1, and the "KL" is the expectation of a log-ratio
# under the wrong distribution. It can be far off, and even negative; PPO would then *reward* the
# policy for drifting. Every log-probability in `ppo.py` is taken at the sampling temperature, from a
# fresh forward pass (see `sampling.policy_logprobs`). Here is what goes wrong otherwise, for the trained policy:

# %%
probe_ids = [encode_sft(tok, p["prompt"])[0] for p in train_prompts[:6]] * 2
rows = []
for name, sampler, tau in (("π at τ = 1 (correct)", policy, 1.0), ("π at τ = 0.7, scored at τ = 1", policy, 0.7),
                           ("π at τ = 1.5, scored at τ = 1", policy, 1.5), ("π_ref (a stale sampler)", sft, 1.0)):
    tokens, plen, alen, _, _ = sampling.sample_batch(sampler, tok, probe_ids, MAX_NEW_TOKENS, tau, np.random.default_rng(SEED))
    mask = sampling.response_mask(plen, alen, tokens.shape[1] - 1)
    lp, _ = sampling.policy_logprobs(policy, tokens, 1.0)
    lr_, _ = sampling.policy_logprobs(sft, tokens, 1.0)
    rows.append({"answers sampled from": name, "k1 estimate of KL(π‖π_ref) per answer":
                 float((kl_penalty(lp, lr_, "k1") * mask).sum(axis=1).mean()),
                 "k3 estimate": float((kl_penalty(lp, lr_, "k3") * mask).sum(axis=1).mean())})
neg_kl = pd.DataFrame(rows).set_index("answers sampled from")
neg_kl.round(3)

# %% [markdown]
# Only the first row estimates the KL of the policy. Sampling from the reference gives, in
# expectation, $-\mathrm{KL}(\pi_\text{ref} \,\|\, \pi) < 0$: a negative "KL". Other temperatures
# give numbers that are simply wrong: here both τ = 0.7 and τ = 1.5 give less than the first row in the k1
# column, and whether a wrong temperature gives too little or too much depends on the policy and the
# prompts, so the error cannot be corrected after the fact.
# The k3 estimator stays non-negative whatever the samples, which hides the bug rather than fixing it.
#
# ### 9.3 Forgetting to mask the padding
#
# A rollout is a rectangle: prompts of different lengths, answers of different lengths, `<pad>`
# after each `<eos>`. Every sum over tokens (KL, rewards, losses, advantage whitening) must run over
# the answer tokens only, and the reward model must be told where each answer really ends, not the width of the rectangle.
# One batch, done right and done wrong:

# %%
batch = ppo.rollout(policy, sft, rm, ppo.ValueHead(policy.config.d_model), tok, probe_ids, config, KL_COEF,
                    np.random.default_rng(SEED))
all_tokens = np.ones_like(batch.mask)                        # no mask: prompt, answer and padding
kl_all = kl_penalty(batch.logprobs, batch.ref_logprobs, "k1")
last_column = np.full(len(batch.seq_lens), batch.tokens.shape[1])
padding_share = 1 - batch.mask.sum() / batch.mask.size
mask_demo = pd.DataFrame({
    "masked (correct)": [float((kl_all * batch.mask).sum(axis=1).mean()), float(batch.scores.mean())],
    "unmasked": [float((kl_all * all_tokens).sum(axis=1).mean()), float(rm.forward(batch.tokens, last_column).mean())],
}, index=["KL per answer (nats)", "reward-model score (mean)"])
print(f"{padding_share:.0%} of the rectangle is prompt or padding")
mask_demo.round(3)

# %% [markdown]
# Unmasked, the KL also counts the prompt tokens (which the policy never chose) and the padding (whose
# "log-probabilities" are meaningless), so it comes out far larger than the true one. The reward model,
# told that every answer runs to the edge of the rectangle, reads the closing hidden state of most answers
# at a `<pad>` and averages the padding into the answer's mean hidden state: it scores the answer plus its
# padding, and the mean score becomes a different number altogether (the table). Each of these silently
# trains on noise; nothing crashes. The tests in `tests/test_ppo.py` check the mask positions of
# `ppo.rollout` for exactly this reason.

# %% [markdown]
# ## 10. Try it: run PPO yourself
#
# Choose β, ε and the learning rate, then press **Run**: a short run (a dozen iterations, a few
# seconds) from the SFT model, with its reward-model score, gold-judge score and KL. Predict before
# you press: what does β = 0.001 do to the KL? ε = 0? A learning rate of 0.01?

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
ppo_run_widget(tok, sft32, rm32, train_prompts, example_prompt=eval_texts[index_of[CASE_ID]], seed=SEED)

# %% [markdown]
# ## 11. Exercises
#
# Each exercise is a function for you to write: replace `raise NotImplementedError` with your code and
# run the cell again. The `check_...` call compares your function with the course's on hand-made cases
# and prints whether it passed (until you have written it, it says so); the solution is in the folded
# block below each exercise.
#
# **Exercise 1: GAE for one answer.** Given the per-token rewards $r_t$ and values $V_t$ of one answer
# (NumPy arrays of length $L$), return the advantages $A_t$, with $V_{L+1} = 0$.

# %%
def gae_one_sequence(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
    """The GAE advantages A_t = δ_t + γλ A_{t+1}, δ_t = r_t + γ V_{t+1} - V_t, with V and A after the end = 0."""
    raise NotImplementedError  # replace with your own code


_ = check_gae_one_sequence(gae_one_sequence)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def gae_one_sequence(rewards: np.ndarray, values: np.ndarray, gamma: float, lam: float) -> np.ndarray:
#     adv = np.zeros(len(rewards))
#     next_value, next_adv = 0.0, 0.0
#     for t in reversed(range(len(rewards))):
#         delta = rewards[t] + gamma * next_value - values[t]
#         adv[t] = delta + gamma * lam * next_adv
#         next_value, next_adv = values[t], adv[t]
#     return adv
# ```
# </details>
#
# **Exercise 2: the clipped objective of one token.** Return $\min(\rho A,\ \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)\,A)$.

# %%
def clipped_objective(ratio: float, advantage: float, eps: float) -> float:
    """min(ratio · advantage, clip(ratio, 1 - eps, 1 + eps) · advantage)."""
    raise NotImplementedError  # replace with your own code


_ = check_clipped_objective(clipped_objective)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def clipped_objective(ratio: float, advantage: float, eps: float) -> float:
#     return min(ratio * advantage, float(np.clip(ratio, 1 - eps, 1 + eps)) * advantage)
# ```
# </details>
#
# **Exercise 3: the KL-regularised optimum.** Given $\pi_\text{ref}$ (probabilities), rewards $r$ and
# $\beta > 0$, return $\pi^* \propto \pi_\text{ref} \exp(r/\beta)$. One check uses $r/\beta = 800$:
# `np.exp(800)` overflows, so work in log space and subtract the maximum first.

# %%
def kl_optimum(pi_ref: np.ndarray, rewards: np.ndarray, beta: float) -> np.ndarray:
    """The probabilities π* ∝ pi_ref · exp(rewards / beta), normalised to sum to 1, without overflow."""
    raise NotImplementedError  # replace with your own code


_ = check_kl_optimum(kl_optimum)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def kl_optimum(pi_ref: np.ndarray, rewards: np.ndarray, beta: float) -> np.ndarray:
#     z = np.log(pi_ref) + rewards / beta   # log π* up to a constant
#     w = np.exp(z - z.max())               # the largest weight is e^0 = 1: no overflow
#     return w / w.sum()
# ```
# </details>

# %% [markdown]
# ## 12. Summary
#
# * RLHF maximises the reward model's score minus β times the KL to the SFT model. The KL splits over
#   tokens, so each token gets the reward $-\beta k_t$ and the last one also gets the score.
# * PPO turns rewards into advantages with a value head and GAE, and takes several minibatch steps per
#   batch on a clipped surrogate that stops paying once a token's probability has changed by more than
#   a factor $1 \pm \epsilon$.
# * On a small candidate set the optimum has a closed form, $\pi^* \propto \pi_\text{ref}\, e^{r/\beta}$,
#   and PPO converges to it from samples alone.
# * On TinyGPT, the reference PPO run (β = 0.1, the value the README's 'PPO settings' measurements favour)
#   moved the policy a few nats from the SFT model; its training score rose, though only just beyond its
#   noise. On held-out questions it changed nearly half of the greedy answers, mostly by adding
#   the escalation advice the uneven SFT demonstrations left out: the reward model's gain is measurable,
#   the gold judge's is zero within its interval (more escalation advice, slightly less accuracy and
#   specificity). Before trusting an RLHF run, check that the policy explores, that the score it optimises
#   rises beyond its noise (on held-out questions too, as the training log is noisy), and that an
#   independent judge measures a gain on held-out questions. Pushed much harder with almost no KL penalty
#   (chapter 6), the policy's reward-model score on held-out prompts rises, while the gold judge's falls,
#   by more than twice its standard error.
# * β sets the price of drifting; an adaptive β sets the drift itself. β = 0, log-probabilities
#   computed with other settings than the sampling, and unmasked padding are three ways to break RLHF
#   without any error message.
#
# Chapter 6 pushes the proxy gap further (reward hacking, annotation noise, distribution shift), and
# chapter 7 scores every stage, including this PPO policy, on the five metrics of the scorecard.
#
# ## References
#
# * Schulman, J., Wolski, F., Dhariwal, P., Radford, A. & Klimov, O. (2017). *Proximal Policy Optimization Algorithms.* arXiv:1707.06347.
# * Schulman, J., Moritz, P., Levine, S., Jordan, M. & Abbeel, P. (2016). *High-Dimensional Continuous Control Using Generalized Advantage Estimation.* ICLR.
# * Ziegler, D. M., Stiennon, N., Wu, J., Brown, T. B., Radford, A., Amodei, D., Christiano, P. & Irving, G. (2019). *Fine-Tuning Language Models from Human Preferences.* arXiv:1909.08593.
# * Stiennon, N., Ouyang, L., Wu, J., Ziegler, D. M., Lowe, R., Voss, C., Radford, A., Amodei, D. & Christiano, P. (2020). *Learning to Summarize from Human Feedback.* NeurIPS.
# * Ouyang, L., Wu, J., Jiang, X., et al. (2022). *Training Language Models to Follow Instructions with Human Feedback.* NeurIPS.
# * Huang, S., Noukhovitch, M., Hosseini, A., Rasul, K., Wang, W. & Tunstall, L. (2024). *The N+ Implementation Details of RLHF with PPO: A Case Study on TL;DR Summarization.* arXiv:2403.17031.
# * Huang, S., Liu, T. & von Werra, L. (2024). *The N Implementation Details of RLHF with PPO.* ICLR Blog Track.
# * Schulman, J. (2020). *Approximating KL Divergence.* http://joschu.net/blog/kl-approx.html
# * Gao, L., Schulman, J. & Hilton, J. *Scaling Laws for Reward Model Overoptimization.* ICML 2023 (arXiv:2210.10760).
# * Rafailov, R., Sharma, A., Mitchell, E., Ermon, S., Manning, C. D. & Finn, C. (2023). *Direct Preference Optimization: Your Language Model is Secretly a Reward Model.* NeurIPS.
