# %% [markdown]
# # Welcome: how large language models are trained and aligned
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/00_welcome.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/00_welcome.ipynb)
#
# This course runs the whole pipeline that turns a text predictor into an assistant, **for real**,
# on one tiny transformer you can inspect line by line: pretraining, supervised fine-tuning (SFT),
# a reward model learned from preferences, ratings from pairwise comparisons, reinforcement
# learning from human feedback with PPO, and the methods that came after it (best-of-n, DPO,
# GRPO), all compared on the same model, data and judge. Every example comes from pharmacy and medicine, because
# that is a field where "sounds fluent" and "is correct and safe" are very different things.
#
# > **Educational material, not medical advice.** The pharmaceutical cases are simplified teaching
# > examples. Never use this course or its models to make decisions about real patients; ask a
# > pharmacist or prescriber. The cases follow UK guidance (the BNF, MHRA safety advice and NICE
# > guidelines) unless a case says otherwise; practice elsewhere, in the US for example, can differ in
# > drug names, dose units and schedules.
#
# Every number you will see is computed by code in this repository, from data in this repository,
# when the notebook runs. Nothing is simulated with random curves or typed in by hand.

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

# %% [markdown]
# ## The course map
#
# | Part | Chapter | Notebook | What you build | Core module |
# |---|---|---|---|---|
# | 1 | 1. Pretraining | `01_pretraining` | next-token prediction, cross-entropy, perplexity, sampling | `tokenizer`, `model`, `losses`, `optim`, `training` |
# | 1 | 2. SFT | `02_sft` | behaviour cloning on expert pharmacist answers, prompt masking | `training` |
# | 1 | 3. Reward model | `03_reward_model` | the Bradley-Terry preference loss, with the numbers broken down | `reward` |
# | 1 | 4. Elo | `04_elo` | ratings from pairwise matches, Bradley-Terry MLE, confidence intervals | `elo` |
# | 2 | 5. PPO | `05_ppo` | RLHF with the clipped objective, a KL penalty, a value head, GAE, adaptive β | `ppo` |
# | 2 | 6. Challenges | `06_challenges` | reward hacking, annotation quality, distribution shift, scalability | `challenges` |
# | 2 | 7. Scorecard | `07_scorecard` | medical accuracy, safety, specificity, dose accuracy, humility for every stage | `judge`, `scorecard` |
# | 2 | 8. Beyond PPO | `08_beyond_ppo` | best-of-n, DPO and GRPO on the same model, data and judge | `bestofn`, `losses`, `dpo`, `grpo`, `beyond` |
#
# The chapters build on each other, but each notebook runs on its own in a fresh kernel: later
# chapters load the earlier chapters' models from small checkpoints in `data/checkpoints/`,
# which one command (`make checkpoints`) retrains with the course's reference recipe (under half an hour
# on a laptop; the result is bit for bit the same on the same kind of machine).

# %% [markdown]
# ## Where the data comes from
#
# Everything starts from one hand-written file, `data/scenarios.jsonl`: pharmaceutical cases in
# seven categories, each with a question, an expert answer, the key facts a good answer must
# state, the unsafe claims it must never make, the correct doses, when to escalate, and a source.
# The training sets of every chapter are built from it by a deterministic command. Let us count
# what is there.

# %%
from collections import Counter

from course_utils import data

scenarios = data.load_scenarios()
counts = Counter(s["category"] for s in scenarios)
print(f"{len(scenarios)} scenarios")
for cat in data.CATEGORIES:
    print(f"  {data.CATEGORY_LABELS[cat]:<22} {counts[cat]:>3}")

# %% [markdown]
# One case, as the knowledge base stores it:

# %%
case = next(s for s in scenarios if s["id"] == "INT-01")
print(case["title"])
print("Q:", case["question"])
print("A:", case["answer"])
print("Escalate:", case["escalation"])
print("Key facts:", "; ".join(f["fact"] for f in case["key_facts"]))
print("Never say:", case["unsafe_claims"][0]["claim"])
print("Source:", case["source"])

# %% [markdown]
# ## How to use the notebooks
#
# - **Run a chapter**: *Run → Run All Cells*. Each chapter finishes in well under a minute on a laptop.
# - **Read without running**: the notebooks are saved with their outputs, so they read as a book.
# - **Change the knobs**: the cell tagged `parameters` near the top of each chapter holds the seed and
#   every hyperparameter. Edit it and re-run, or run the chapter from the command line with
#   papermill: `papermill notebooks/05_ppo.ipynb /tmp/ppo_beta.ipynb -p KL_COEF 0.5`.
# - **Widgets**: sliders let you move a learning rate, β, ε or K and see the effect live. If you see
#   text like `IntSlider(value=...)` instead of a slider, the kernel is not running or the widget
#   extension is missing: run the cell again in JupyterLab (the course installs `ipywidgets`).
#
# Try it: the pretrained model of chapter 1 scores every word of its vocabulary as the next word
# after a prompt. Below are its six favourites, turned into probabilities at three temperatures
# (renormalised over these six), and a slider to try others. The slider is built from the same parts as
# every widget in the course; its callback is a plain function, so it also runs (and is tested) without
# a browser.

# %%
import numpy as np

from course_utils import checkpoints
from course_utils.widgets import softmax_with_temperature, temperature_widget

# the pretrained model of chapter 1: its scores (logits) for the next word after a prompt
tok, base = checkpoints.load_tokenizer(), checkpoints.load("base", dtype="float64")
prompt = "Warfarin with ibuprofen increases the risk of"
logits = base.forward(np.asarray([[tok.bos_id] + tok.encode(prompt)]))[0, -1].astype(float)
top = np.argsort(-logits)[:6]
words, scores = [tok.decode([i]) for i in top], logits[top]
print(prompt, "...")
for tau in (0.5, 1.0, 2.0):
    p = softmax_with_temperature(scores, tau)
    print(f"τ = {tau:.1f}: " + ", ".join(f"{w} {pi:.2f}" for w, pi in zip(words, p)))

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
temperature_widget(words, scores, prompt + " ...")

# %% [markdown]
# ## Conventions you will meet in every chapter
#
# 1. Learning objectives and where the chapter sits in the pipeline.
# 2. The theory: the equation, every symbol explained, the primary paper.
# 3. A worked example on one pharmaceutical case, small enough to check with a calculator.
# 4. The real thing: training with a progress bar, on the course's own model and data.
# 5. Results: plots and tables, answers before and after.
# 6. *Try it*: widgets for the chapter's knobs.
# 7. Pitfalls seen in practice, exercises with automatic checks, a summary and references.
#
# Ready? Open `01_pretraining.ipynb`.
