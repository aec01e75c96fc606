# %% [markdown]
# # Chapter 2 · Supervised fine-tuning: cloning the expert pharmacist
#
# **Part 1 of the course · Stage 2 of 4** (pretraining → **SFT** → reward model → PPO)
#
# The model from chapter 1 has read a lot of pharmaceutical text, but ask it a question and it
# simply continues the text. It has no idea that a question deserves an answer, that the answer
# should name the risk, or that it should end by telling the patient whom to call. Supervised
# fine-tuning (SFT) teaches exactly that, by **imitation**: we show it pairs of *(question,
# expert answer)* and train it to reproduce the expert, token by token. This is behaviour
# cloning, and it is the first step of every instruction-following model since InstructGPT
# (Ouyang et al. 2022).
#
# **You will learn to**
# 1. write the SFT objective and explain why only the answer tokens count (prompt masking);
# 2. compute the masked loss of one demonstration by hand;
# 3. fine-tune the pretrained TinyGPT on expert pharmacist answers, and measure what changed, with the
#    held-out likelihood of expert answers and with the gold judge;
# 4. compare training with and without prompt masking.
#
# > **Educational material, not medical advice.** The expert answers are simplified teaching
# > examples. The models here are tiny and often wrong; never use them for real patients.

# %% tags=["parameters"]
SEED = 0
EPOCHS = 2            # passes over the demonstrations (the reference run: 20)
BATCH_SIZE = 16
LEARNING_RATE = 3e-3  # peak learning rate (warm-up, then cosine decay)
MASK_PROMPT = True    # learn only the answer tokens
COMPARE_EPOCHS = 2    # epochs of the run without masking, for the comparison
N_SHOW = 5            # held-out questions shown in full

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import checkpoints, data, judge
from course_utils.losses import cross_entropy
from course_utils.plotting import COLORS, STAGE_COLORS, smooth, use_course_style
from course_utils.training import SFTConfig, answer, encode_sft, response_loss, sft, sft_batch

use_course_style()
pd.set_option("display.max_colwidth", 90)

tok = checkpoints.load_tokenizer()
base = checkpoints.load("base", dtype="float64")   # evaluated in double precision: the same on every CPU
scenarios = {s["id"]: s for s in data.load_scenarios()}
demos = data.load_sft()
eval_prompts = data.load_eval_prompts()
print(f"{len(demos)} demonstrations from {len({d['scenario_id'] for d in demos})} scenarios; "
      f"{len(eval_prompts)} held-out questions, phrased differently, never trained on")

# %% [markdown]
# ## 1. What the pretrained model does with a question
#
# We format a question the way SFT will: `<bos> <q> question <a>`, and let the base model continue
# (greedy decoding: always the most likely token).

# %%
q = eval_prompts[0]
print("Q:", q["prompt"])
print("base model:", answer(base, tok, q["prompt"], max_new_tokens=40))

# %% [markdown]
# It produces pharmaceutical-sounding words, because that is what it learned to predict, but not an
# answer: it has never seen the `<q> … <a>` format and has no notion of answering.
#
# ## 2. The objective
#
# A demonstration is a prompt $x$ and the expert's response $y = (y_1, \dots, y_{|y|})$. SFT maximises
# the likelihood of the expert's response given the prompt, which is minimising
#
# $$\mathcal{L}_{\mathrm{SFT}}(\theta) = -\,\mathbb{E}_{(x, y) \sim \mathcal{D}} \Big[\frac{1}{|y|} \sum_{t=1}^{|y|} \log \pi_\theta(y_t \mid x, y_{<t})\Big]$$
#
# | symbol | meaning |
# |---|---|
# | $\mathcal{D}$ | the demonstrations: (question, expert answer) pairs, several phrasings of the question of each case (the counts are printed above) |
# | $x$ | the prompt, laid out as `<bos> <q> question <a>` |
# | $y_t$ | the $t$-th token of the expert response (ending with `<eos>`) |
# | $\pi_\theta(y_t \mid x, y_{<t})$ | the model's probability of that token given the prompt and the response so far: the **policy** |
#
# It is the same cross-entropy as pretraining, with one change: the sum runs over the **response
# tokens only**. In code this is a mask $m_t \in \{0, 1\}$ on every position, and the loss is
# $\sum_t m_t \ell_t / \sum_t m_t$ with $\ell_t = -\log \pi_\theta(w_{t+1} \mid w_{\le t})$. This is
# *prompt masking*: the model is not asked to predict the patient's question, only the pharmacist's answer.
# Because the targets are an expert's actions, this is **behaviour cloning** in the language of
# imitation learning.
#
# The twelve featured demonstrations (one per case the course follows through every chapter):

# %%
featured = pd.DataFrame([{"id": d["scenario_id"], "category": data.CATEGORY_LABELS[d["category"]],
                          "instruction": d["prompt"], "expert response": d["response"]}
                         for d in demos if d["featured"]])
featured

# %% [markdown]
# ## 3. A worked example: the masked loss of one demonstration
#
# Take the warfarin demonstration. The table lists every target position: the token to predict, whether
# it belongs to the prompt or the response, the mask $m_t$, and $\ell_t = -\log \pi(\text{token})$ under
# the **pretrained** model. Sum the response rows, divide by their count: that is the SFT loss of this
# example. Summing all rows instead gives the loss without masking.

# %%
demo = next(d for d in demos if d["scenario_id"] == "INT-01" and d["featured"])
x, y, m = sft_batch(tok, [demo], mask_prompt=True, max_len=base.config.max_len)
logits = base.forward(x).astype(np.float64)[0]
logp = logits - logits.max(-1, keepdims=True)
logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
ell = -logp[np.arange(y.shape[1]), y[0]]
worked = pd.DataFrame({"target token": [tok.decode([i], skip_special=False) for i in y[0]],
                       "part": np.where(m[0] > 0, "response", "prompt"), "m_t": m[0].astype(int), "ℓ_t": ell})
print(worked.head(18).round(3).to_string())
print("   ...")
n_resp = int(m[0].sum())
masked = float((m[0] * ell).sum() / m[0].sum())
unmasked = float(ell.mean())
print(f"response tokens: {n_resp}, prompt tokens: {len(ell) - n_resp}")
print(f"masked loss   = Σ m_t ℓ_t / Σ m_t = {(m[0] * ell).sum():.2f} / {n_resp} = {masked:.3f}")
print(f"unmasked loss = Σ ℓ_t / T        = {ell.sum():.2f} / {len(ell)} = {unmasked:.3f}")
loss_lib, _ = cross_entropy(base.forward(x), y, m)
print(f"course_utils.losses.cross_entropy with the mask: {loss_lib:.3f}")

# %% [markdown]
# ## 4. Fine-tuning, for real
#
# Starting from the pretrained weights (the reference `base` model of chapter 1), AdamW with warm-up and
# cosine decay, `EPOCHS` shuffled passes over the demonstrations. This is a **live run**: a short
# demonstration of the training code for you to run and change (seconds on a laptop, in float32 as
# training always is here); on another processor or BLAS library the last digits of its losses can
# differ slightly from the book's. The model the rest of the course uses comes from the *reference
# run*, after this one.

# %% tags=["nbval-ignore-output"]
live_policy = checkpoints.load("base")
config = SFTConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, mask_prompt=MASK_PROMPT, seed=SEED)
history = sft(live_policy, tok, demos, config)
log = history.log
per_epoch = log.groupby("epoch").loss.mean()
print(f"{len(demos)} demonstrations, {len(log)} steps; training loss by epoch: " + ", ".join(f"{v:.2f}" for v in per_epoch))
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(log.step, log.loss, color=COLORS["sky"], lw=1, alpha=0.6, label="training loss per step")
ax.plot(log.step, smooth(log.loss, 12), color=COLORS["blue"], label="smoothed")
ax.set(xlabel="step", ylabel="masked cross-entropy", title=f"Your live run: {EPOCHS} epochs")
ax.legend()
plt.show()

# %% [markdown]
# ### The reference run
#
# The live run above is a short demonstration of the code for you: seconds on a laptop, and on another
# CPU its numbers may differ slightly. The **reference run** is what `make checkpoints` trained: the same
# `sft` function from the same `base` model, with more epochs and prompt word dropout (in each batch a
# share of the prompt's words is replaced by `<unk>`, so the model cannot rely on the exact wording of the
# training questions): `checkpoints.REFERENCE_SFT`. Its weights, `data/checkpoints/sft.npz`, are what
# every later section and chapter loads, evaluated here in double precision so that the numbers are the
# same on every computer; its training log was saved next to them (`checkpoints.load_log("sft")`).

# %%
policy = checkpoints.load("sft", dtype="float64")
ref_cfg = checkpoints.REFERENCE_SFT
ref_log = checkpoints.load_log("sft")
ref_epochs = ref_log.groupby("epoch").loss.mean()
print(f"reference recipe: {ref_cfg.epochs} epochs (the live run: {EPOCHS}) of batches of {ref_cfg.batch_size}, "
      f"peak learning rate {ref_cfg.lr:g}, warm-up {ref_cfg.warmup} steps, prompt masking {ref_cfg.mask_prompt}, "
      f"prompt word dropout {ref_cfg.prompt_dropout:g}, seed {ref_cfg.seed}")
print(f"{len(ref_log)} steps; mean training loss of the first epoch {ref_epochs.iloc[0]:.2f}, "
      f"of the last {ref_epochs.iloc[-1]:.2f}")

# %% [markdown]
# Did it learn *answers*, or just its training texts? The held-out questions are phrased differently and
# never appear in training. For each we know the expert answer of its case, so we can measure how
# likely each model finds the expert answer to a question it has never seen: the SFT loss on held-out data,
# drawn below next to the reference run's training loss.

# %%
held_out = [{"prompt": e["prompt"], "response": data.expert_response(scenarios[e["scenario_id"]])} for e in eval_prompts]
nll = {"base": response_loss(base, tok, held_out), "SFT": response_loss(policy, tok, held_out)}
train_nll = response_loss(policy, tok, demos)
for name, v in nll.items():
    print(f"{name:>5}: held-out expert-answer loss {v:.3f} nats/token (perplexity {np.exp(v):.1f})")
print(f"  SFT: the same loss on its training demonstrations {train_nll:.3f} (perplexity {np.exp(train_nll):.1f})")

steps_per_epoch = ref_log.groupby("epoch").step.max()
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(ref_log.step, ref_log.loss, color=COLORS["sky"], lw=1, alpha=0.6, label="training loss per step")
ax.plot(steps_per_epoch, ref_epochs, "o-", color=COLORS["blue"], label="training loss, mean of each epoch")
ax.axhline(nll["SFT"], color=COLORS["vermillion"], ls="--", label="held-out loss after SFT")
ax.axhline(nll["base"], color=COLORS["grey"], ls=":", label="held-out loss before SFT")
ax.set(xlabel="step", ylabel="masked cross-entropy", title="The reference SFT run (make checkpoints)")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. Answers before and after, scored by the gold judge
#
# The gold judge (`course_utils.judge`) plays the expert pharmacist: for each answer it checks which of
# the case's key facts are stated (medical accuracy), whether any unsafe claim is made (safety), whether
# the answer is concrete and on topic (specificity), whether doses are right, and whether it tells the
# patient whom to contact (humility). Both models answer all 64 held-out questions with greedy decoding.

# %%
prompts = [e["prompt"] for e in eval_prompts]
cases = [scenarios[e["scenario_id"]] for e in eval_prompts]
answers = {"base": answer(base, tok, prompts), "SFT": answer(policy, tok, prompts)}
scores = {name: judge.judge_many(a, cases) for name, a in answers.items()}
summary = pd.DataFrame({name: df[list(judge.METRICS) + ["overall"]].mean() for name, df in scores.items()})
summary.round(3)

# %%
fig, ax = plt.subplots(figsize=(9, 4))
xs = np.arange(len(summary))
for i, (name, color) in enumerate([("base", STAGE_COLORS["base"]), ("SFT", STAGE_COLORS["sft"])]):
    ax.bar(xs + (i - 0.5) * 0.38, summary[name], width=0.38, color=color, label=name)
ax.set_xticks(xs, [s.replace("_", "\n") for s in summary.index])
ax.set(ylim=(0, 1.05), ylabel="mean score (64 held-out questions)", title="Gold-judge scores before and after SFT")
ax.legend()
plt.show()

# %%
rows = []
for e, case, a_base, a_sft, s_base, s_sft in zip(eval_prompts, cases, answers["base"], answers["SFT"],
                                                  scores["base"].itertuples(), scores["SFT"].itertuples()):
    if case["id"] in data.FEATURED_SFT_SCENARIOS:
        rows.append({"case": case["title"], "held-out question": e["prompt"], "base": a_base, "base score": s_base.overall,
                     "SFT": a_sft, "SFT score": s_sft.overall})
shown = pd.DataFrame(rows).head(N_SHOW)
shown.round(2)

# %% [markdown]
# The judge explains every verdict. Here is its report on the SFT answer to the first question above:

# %%
first = shown.iloc[0]
case = next(c for c in cases if c["title"] == first["case"])
print(judge.judge_answer(first["SFT"], case).explain())

# %% [markdown]
# **Reading the results honestly.** SFT changed the *form* of the answers completely: the model now
# answers, in the register of a pharmacist, and usually ends by telling the patient whom to contact
# (humility jumps). The held-out likelihood of the expert answers improved a lot. But the *content* is
# still mostly wrong: a model with a quarter of a million parameters, trained on 192 examples, often
# stitches together fragments of different cases, so medical accuracy stays low. This is the classic
# finding of SFT at any scale: imitation teaches format and style quickly; knowledge must come from
# pretraining, and imitation alone does not teach the model what *not* to say. The next stages
# (a reward model from preferences, then RL) add that missing signal.

# %% [markdown]
# ## 6. Why mask the prompt?
#
# Train a second copy from the same pretrained weights, identical except that the loss also covers the
# question tokens, and compare on the held-out expert answers. Both are live runs here.

# %% tags=["nbval-ignore-output"]
unmasked_policy = checkpoints.load("base")
hist_unmasked = sft(unmasked_policy, tok, demos, SFTConfig(epochs=COMPARE_EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
                                                          mask_prompt=False, seed=SEED), desc="SFT, no masking")
verdicts_live = [judge.judge_many(answer(m, tok, prompts), cases) for m in (live_policy, unmasked_policy)]
cmp = pd.DataFrame({
    "held-out answer loss": [response_loss(live_policy, tok, held_out), response_loss(unmasked_policy, tok, held_out)],
    "judge overall": [v.overall.mean() for v in verdicts_live],
    "judge accuracy": [v.medical_accuracy.mean() for v in verdicts_live],
}, index=["masked prompt", "whole sequence"])
display(cmp.round(3))
diff = cmp["held-out answer loss"].iloc[1] - cmp["held-out answer loss"].iloc[0]
print(f"masking the prompt {'lowered' if diff > 0 else 'raised'} the held-out answer loss by {abs(diff):.3f} nats/token")

# %% [markdown]
# With masking, every gradient step is spent on what we want the model to do: answer. Without it, part
# of the capacity goes into predicting patients' questions, which at inference time are always given.
# Here the prompts are short next to the answers, so the two runs are close (the numbers above are
# measured; a different seed moves them a little); with long prompts and short answers, as in many real
# datasets, the difference grows. Most SFT pipelines mask the prompt; some (e.g. for very short prompts) train on everything and
# report little difference. Measure on your own data.

# %% [markdown]
# ## 7. Try it
#
# Choose the learning rate, the number of epochs and whether to mask the prompt, then press Run: a
# fresh SFT run from the pretrained model (a few seconds), its loss curve, the held-out expert-answer
# loss and the judge's verdict on 16 held-out questions.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
from course_utils.widgets import sft_widget

sft_widget(tok, checkpoints.load("base"), demos, held_out[:16], cases[:16])

# %% [markdown]
# ## 8. Pitfalls seen in practice
#
# - **A format mismatch between training and use.** The model learned `<bos> <q> question <a>`; prompting
#   it without `<a>` gives continuations of the question, not answers. Real chat models have the same
#   fragility with their chat templates.
# - **Over-training on a small set.** Many epochs over a few hundred examples drive the training loss
#   towards zero, far below the loss on questions the model has not seen: it memorises the
#   demonstrations. Compare the loss on the training demonstrations with the held-out loss (both printed
#   in section 4).
# - **Exposure bias.** During training the model always sees the expert's previous tokens; when it
#   generates, it sees its own, and one wrong token can derail the rest (the repetition loops of greedy
#   decoding). Imitation never shows it how to recover from its own mistakes.
# - **Imitating style, not knowledge.** An answer can sound exactly like the pharmacist and state the
#   wrong drug. Fluency is what SFT buys first; correctness needs more data, bigger models, and feedback.
# - **Bad demonstrations are cloned too.** SFT copies whatever the demonstrations do, errors included,
#   which is why expert data is expensive and checked.

# %% [markdown]
# ## 9. Exercises
#
# Exercises 1 and 2 are functions for you to write: replace `raise NotImplementedError` with your code
# and run the cell again. The `check_...` call compares your function with the course's reference on
# hand-made inputs and prints whether it passed (until you have written it, it says so); the solution
# is in the folded block below each exercise.
#
# **Exercise 1.** Build the loss mask for one demonstration: given the token ids of
# `<bos> <q> prompt <a> response <eos>` and the index where the response starts, return the mask over
# the *targets* (the sequence shifted by one), 1 where the target is a response token.

# %%
from course_utils.exercises import check_masked_mean, check_sft_mask


def sft_mask(ids: list[int], response_start: int) -> np.ndarray:
    """The mask over the len(ids) - 1 targets ids[1:]: 1.0 where the target is a response token (its
    <eos> included), 0.0 where it is part of the prompt; ids[response_start] is the first response token."""
    raise NotImplementedError  # replace with your own code


_ = check_sft_mask(sft_mask)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def sft_mask(ids: list[int], response_start: int) -> np.ndarray:
#     mask = np.zeros(len(ids) - 1)      # target t is ids[t + 1]
#     mask[response_start - 1:] = 1.0    # the first target in the response is ids[response_start]
#     return mask
# ```
# </details>
#
# **Exercise 2.** Given the per-position losses $\ell_t$ and the mask $m_t$, return the masked mean
# $\sum_t m_t \ell_t / \sum_t m_t$ (and 0.0 when the mask is empty, instead of dividing by zero).

# %%
def masked_mean(ell: np.ndarray, mask: np.ndarray) -> float:
    """sum_t mask_t ell_t / sum_t mask_t, and 0.0 when the mask is all zeros."""
    raise NotImplementedError  # replace with your own code


_ = check_masked_mean(masked_mean)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def masked_mean(ell: np.ndarray, mask: np.ndarray) -> float:
#     total = float(np.sum(mask))
#     return float(np.sum(ell * mask) / total) if total > 0 else 0.0
# ```
# </details>
#
# **Exercise 3 (open).** Set `EPOCHS = 30` in the parameters cell and re-run. The training loss falls
# much further. What happens to the held-out answer loss and to the judge's scores? Why?

# %% [markdown]
# ## Summary
#
# - SFT is next-token prediction on (prompt, expert response) pairs, with the loss on the response only:
#   $\mathcal{L}_{\mathrm{SFT}} = -\mathbb{E}\big[\frac{1}{|y|}\sum_t \log \pi_\theta(y_t \mid x, y_{<t})\big]$.
# - It turns a text continuer into something that answers, in the expert's format and tone, quickly and
#   with little data.
# - It does not, by itself, teach the model which answers are *better*: a wrong answer in perfect style is
#   as likely as a right one. Next: **chapter 3, a reward model learned from preferences**.
#
# ## References
#
# - Ouyang et al. (2022). Training language models to follow instructions with human feedback (InstructGPT). *NeurIPS*.
# - Pomerleau (1989). ALVINN: an autonomous land vehicle in a neural network. *NeurIPS* (behaviour cloning).
# - Ross, Gordon & Bagnell (2011). A reduction of imitation learning and structured prediction to no-regret online learning (DAgger). *AISTATS*.
# - Zhou et al. (2023). LIMA: less is more for alignment. *NeurIPS*.
