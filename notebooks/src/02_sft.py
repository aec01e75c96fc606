# %% [markdown]
# # Chapter 2 · Supervised fine-tuning: cloning the expert pharmacist
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/02_sft.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/02_sft.ipynb)
#
# **Part 1 of the course · Stage 2 of 4** (pretraining → **SFT** → reward model → PPO)
#
# The model from chapter 1 has read a lot of pharmaceutical text, but ask it a question and it
# simply continues the text. It has no idea that a question deserves an answer, that the answer
# should name the risk, or that it should end by telling the patient whom to call. Supervised
# fine-tuning (SFT) teaches that, as far as its examples show it, by **imitation**: we show it
# pairs of *(question, expert answer)* and train it to reproduce the expert, token by token. This is behaviour
# cloning, and it is the first step of every instruction-following model since InstructGPT
# (Ouyang et al. 2022; instruction tuning on many tasks: Wei et al. 2022).
#
# The intuition: pretraining taught the model what pharmaceutical text looks like; SFT shows it one more
# kind of text, *a question followed by a good answer*, often enough that this becomes the most likely
# continuation of a question. The model is not told why an answer is good, nor shown a bad one. It is
# told only "make these words likely after this question". The chapter ends by measuring what that
# instruction produces on questions the model has never seen, including the cases where it produces
# the wrong thing.
#
# **You will learn to**
# 1. write the SFT objective as the code computes it, a token mean over the answer tokens of a batch, and
#    explain why only the answer tokens count (prompt masking);
# 2. compute the masked loss of one demonstration, and of a batch of two, by hand;
# 3. fine-tune the pretrained TinyGPT on expert pharmacist answers, and measure what changed, with the
#    held-out likelihood of expert answers and with the gold judge;
# 4. compare training with and without prompt masking;
# 5. explain why SFT imitates rather than learns to answer, from what the model does on held-out questions.
#
# > **Educational material, not medical advice.** The expert answers are simplified teaching
# > examples. The models here are tiny and often wrong; never use them for real patients.

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
EPOCHS = 1            # passes over the demonstrations (the reference run: 20)
LIVE_DEMOS = 512      # demonstrations the live runs train on, a seeded sample (the reference run: all of them)
BATCH_SIZE = 16
LEARNING_RATE = 3e-3  # peak learning rate (warm-up, then cosine decay)
MASK_PROMPT = True    # learn only the answer tokens
N_SHOW = 5            # held-out questions shown in full

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from course_utils import checkpoints, data, judge
from course_utils.losses import cross_entropy, token_logprobs
from course_utils.plotting import COLORS, STAGE_COLORS, smooth, use_course_style
from course_utils.training import SFTConfig, answer, response_loss, sft, sft_batch

use_course_style()
pd.set_option("display.max_colwidth", 90)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


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
# It produces pharmaceutical words, because that is what it learned to predict. Here, after a stray
# colon, it even continues with the corpus passage about this very case: the question's words
# (blistering, sore mouth, allopurinol) are that passage's words. That is a continuation, not an answer,
# and it is luck: section 5 shows the base model on other questions, where it starts mid-sentence with
# text from another case, as chapter 1's samples drifted from one case to another. The markers `<q>` and
# `<a>` never occur in the pretraining corpus, so the model has no notion that `<a>` asks for an answer.
#
# ## 2. The objective
#
# A demonstration is a prompt $x$ and the expert's response $y = (y_1, \dots, y_{|y|})$. SFT maximises
# the likelihood of the expert's response given the prompt. Each training step takes a batch $B$ of
# demonstrations and minimises the mean of $-\log \pi_\theta$ over **all the response tokens of the batch**:
#
# $$\mathcal{L}_{\mathrm{SFT}}(\theta) = -\,\frac{\sum_{i \in B} \sum_{t=1}^{|y^{(i)}|} \log \pi_\theta\big(y^{(i)}_t \mid x^{(i)}, y^{(i)}_{<t}\big)}{\sum_{i \in B} |y^{(i)}|}$$
#
# | symbol | meaning |
# |---|---|
# | $B$ | the demonstrations of one batch (`BATCH_SIZE` of them); the whole set $\mathcal{D}$ holds many phrasings of the question of each case (the counts are printed above) |
# | $x^{(i)}$ | the prompt of demonstration $i$, laid out as `<bos> <q> question <a>` |
# | $y^{(i)}_t$ | the $t$-th token of its expert response (the last one is `<eos>`) |
# | $\lvert y^{(i)} \rvert$ | the number of tokens of that response; the denominator counts the response tokens of the whole batch |
# | $\pi_\theta(y_t \mid x, y_{<t})$ | the model's probability of that token given the prompt and the response so far: the **policy** |
#
# It is the same cross-entropy as pretraining, with one change: the sum runs over the **response
# tokens only**. In code every sequence of the batch is padded to the same length $T$ and every target
# position carries a mask $m_{i,t} \in \{0, 1\}$: 1 on response tokens, 0 on prompt tokens and padding.
# With $\ell_{i,t} = -\log \pi_\theta(w_{i,t+1} \mid w_{i,\le t})$ the loss is
#
# $$\mathcal{L}_{\mathrm{SFT}} = \frac{\sum_{i}\sum_{t} m_{i,t}\, \ell_{i,t}}{\sum_{i}\sum_{t} m_{i,t}},$$
#
# which is `course_utils.losses.cross_entropy(logits, targets, mask)`: one division, by the number of answer
# tokens in the batch. Two choices are built into this formula.
#
# * **Prompt masking** ($m = 0$ on the prompt): the model is not asked to predict the patient's question,
#   only the pharmacist's answer. Because the targets are an expert's actions, this is **behaviour
#   cloning** in the language of imitation learning (Pomerleau 1989).
# * **A token mean, not a mean of per-answer means.** Every answer token of the batch weighs the same,
#   $1 / \sum m$. The other common choice, averaging each answer's loss first and then the answers,
#   gives every *answer* the same weight, so a token of a short answer would count more than a token of a
#   long one. Our longest expert answer is more than twice as long as the shortest (both are measured in
#   section 3); the token mean asks the model to be equally right about every word the pharmacist wrote,
#   whichever answer it sits in. The price is that
#   long answers contribute more tokens, and so more of the gradient, than short ones.
#
# The twelve featured demonstrations (one per case the course follows through every chapter):

# %%
featured = pd.DataFrame([{"id": d["scenario_id"], "category": data.CATEGORY_LABELS[d["category"]],
                          "instruction": d["prompt"], "expert response": d["response"]}
                         for d in demos if d["featured"]])
featured

# %% [markdown]
# **The demonstrations are uneven**, as real ones written by many people are. Every expert response
# starts with the answer, but only some end with the *escalation* advice: whom to contact, and how
# urgently. For every case, the demonstration of the question and half of the others carry it; the rest
# stop after the answer. The line below counts them. SFT imitates both, so the SFT model will escalate
# only some of the time (section 5 counts how often). That escalating is *always* better is something no
# single demonstration says; preference pairs can say it (chapter 3), and reinforcement learning can act
# on it (chapter 5).

# %%
escalating = sum(d["response"] == data.expert_response(scenarios[d["scenario_id"]]) for d in demos)
print(f"{escalating} of {len(demos)} demonstrations end with the escalation advice; "
      f"the other {len(demos) - escalating} stop after the answer")

# %% [markdown]
# ## 3. A worked example: the masked loss of one demonstration
#
# Take the warfarin demonstration. The table lists every target position: the token to predict, whether
# it belongs to the prompt or the response, the mask $m_t$, and $\ell_t = -\log \pi(\text{token})$ under
# the **pretrained** model. Sum the response rows, divide by their count: that is the SFT loss of this
# example. Summing all rows instead gives the loss without masking. Look at the most expensive targets
# (the line under the table names them): the markers `<q>` and `<a>`, which the pretrained model has never
# seen, and the first word of the question, right after `<q>`. All three are prompt tokens: masking takes
# them out of the loss; without masking, the model must also learn to predict them.

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
costly = worked.nlargest(3, "ℓ_t")
print("the three most expensive targets: " + ", ".join(f"{t} ({part}, {v:.1f})" for t, part, v in
                                                       zip(costly["target token"], costly["part"], costly["ℓ_t"])))
loss_lib, _ = cross_entropy(base.forward(x), y, m)
print(f"course_utils.losses.cross_entropy with the mask: {loss_lib:.3f}")

# %% [markdown]
# **A batch of two, by hand.** Answer A has 2 tokens with losses 1.0 and 3.0; answer B has 4 tokens with
# loss 0.5 each. The token mean, what the code computes, is $(1.0 + 3.0 + 4 \times 0.5) / (2 + 4) = 6/6 = 1.0$:
# each of the six tokens has weight $1/6$. The mean of per-answer means is
# $\big(\tfrac{4.0}{2} + \tfrac{2.0}{4}\big)/2 = (2.0 + 0.5)/2 = 1.25$: A's tokens have weight $1/4$ each, B's
# $1/8$. The same check on a real batch: the shortest and the longest expert answer, under the pretrained model.

# %%
by_length = sorted(demos, key=lambda d: len(tok.encode(d["response"])))
pair = [by_length[0], by_length[-1]]
x2, y2, m2 = sft_batch(tok, pair, mask_prompt=True, max_len=base.config.max_len)
logits2 = base.forward(x2).astype(np.float64)
logp2 = logits2 - logits2.max(-1, keepdims=True)
logp2 = logp2 - np.log(np.exp(logp2).sum(-1, keepdims=True))
ell2 = -np.take_along_axis(logp2, y2[..., None], axis=-1)[..., 0]
sums, counts = (m2 * ell2).sum(axis=1), m2.sum(axis=1)
for i, d in enumerate(pair):
    print(f"answer {'AB'[i]} ({d['scenario_id']}): {int(counts[i])} tokens, Σ ℓ = {sums[i]:.2f}, its own mean {sums[i] / counts[i]:.3f}")
print(f"token mean          = ({sums[0]:.2f} + {sums[1]:.2f}) / ({int(counts[0])} + {int(counts[1])}) = {sums.sum() / counts.sum():.3f}")
print(f"mean of the 2 means = ({sums[0] / counts[0]:.3f} + {sums[1] / counts[1]:.3f}) / 2 = {(sums / counts).mean():.3f}")
print(f"cross_entropy(logits, targets, mask) = {cross_entropy(logits2, y2, m2)[0]:.3f}: the token mean")

# %% [markdown]
# ## 4. Fine-tuning, for real
#
# Starting from the pretrained weights (the reference `base` model of chapter 1), AdamW with warm-up and
# cosine decay, `EPOCHS` shuffled passes over `LIVE_DEMOS` demonstrations, a seeded sample of all of them
# (raise it in the parameters cell to train on more). This is a **live run**: a short
# demonstration of the training code for you to run and change (seconds on a laptop, in float32
# as training always is here); on another processor or BLAS library the last digits of its losses can
# differ slightly from the book's. The model the rest of the course uses comes from the *reference
# run*, after this one.

# %% tags=["nbval-ignore-output"]
live_demos = [demos[i] for i in sorted(np.random.default_rng(SEED).choice(len(demos), min(LIVE_DEMOS, len(demos)),
                                                                       replace=False))]
live_policy = checkpoints.load("base")
config = SFTConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE, mask_prompt=MASK_PROMPT, seed=SEED)
history = sft(live_policy, tok, live_demos, config)
log = history.log
per_epoch = log.groupby("epoch").loss.mean()
print(f"{len(live_demos)} of the {len(demos)} demonstrations ({len({d['scenario_id'] for d in live_demos})} cases), "
      f"{plural(len(log), 'step')}; training loss by epoch: " + ", ".join(f"{v:.2f}" for v in per_epoch))
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.plot(log.step, log.loss, color=COLORS["sky"], lw=1, alpha=0.6, label="training loss per step")
ax.plot(log.step, smooth(log.loss, 12), color=COLORS["blue"], label="smoothed")
ax.set(xlabel="step", ylabel="masked cross-entropy", title=f"Your live run: {plural(EPOCHS, 'epoch')}")
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
print(f"reference model: {policy.n_params:,} parameters (d_model={policy.config.d_model}, {policy.config.n_layers} layers), "
      f"fine-tuned on {len(demos)} demonstrations, {len({d['response'] for d in demos})} distinct expert answers")
print(f"reference recipe: {plural(ref_cfg.epochs, 'epoch')} (the live run: {EPOCHS}) of batches of {ref_cfg.batch_size}, "
      f"peak learning rate {ref_cfg.lr:g}, warm-up {ref_cfg.warmup} steps, prompt masking {ref_cfg.mask_prompt}, "
      f"prompt word dropout {ref_cfg.prompt_dropout:g}, seed {ref_cfg.seed}")
print(f"{len(ref_log)} steps; mean training loss of the first epoch {ref_epochs.iloc[0]:.2f}, "
      f"of the last {ref_epochs.iloc[-1]:.2f}")

# %% [markdown]
# Did it learn *answers*, or just its training texts? The held-out questions are phrased differently and
# never appear in training. For each we know the expert answer of its case, so we can measure how
# likely each model finds the expert answer to a question it has never seen: the SFT loss on held-out data
# (the same token mean, over all the held-out answer tokens: what `response_loss` computes; the helper
# below also keeps its parts for later), drawn next to the reference run's training loss.

# %%
def answer_losses(model, pairs: list[dict], chunk: int = 16) -> pd.DataFrame:
    """For every (prompt, response) pair: its number of answer tokens, Σ ℓ_t over them, ℓ of the first
    answer token, and whether the model's most likely first token is the expert's. The token mean
    Σ(Σ ℓ) / Σ n is what `response_loss` returns; this version keeps the parts and computes no gradient."""
    rows = []
    for i in range(0, len(pairs), chunk):            # a few pairs at a time: the logits stay small
        x_c, y_c, m_c = sft_batch(tok, pairs[i:i + chunk], mask_prompt=True, max_len=model.config.max_len)
        logits_c = model.forward(x_c)
        ell_c = -token_logprobs(logits_c, y_c)      # ℓ_t at every position
        for j, first in enumerate(m_c.argmax(axis=1)):   # the target index of the first answer token
            rows.append({"n": int(m_c[j].sum()), "sum": float((m_c[j] * ell_c[j]).sum()), "first": float(ell_c[j, first]),
                         "first right": bool(logits_c[j, first].argmax() == y_c[j, first])})
    return pd.DataFrame(rows)


held_out = [{"prompt": e["prompt"], "response": data.expert_response(scenarios[e["scenario_id"]])} for e in eval_prompts]
train_sample = [next(d for d in demos if d["scenario_id"] == sid) for sid in scenarios]   # one per case
parts = {"base": answer_losses(base, held_out), "SFT": answer_losses(policy, held_out)}
nll = {name: df["sum"].sum() / df["n"].sum() for name, df in parts.items()}
train_parts = answer_losses(policy, train_sample)
train_nll = train_parts["sum"].sum() / train_parts["n"].sum()
for name, v in nll.items():
    print(f"{name:>5}: held-out expert-answer loss {v:.3f} nats/token (perplexity {np.exp(v):.1f})")
print(f"  SFT: the same loss on {len(train_sample)} of its training demonstrations (one per case) {train_nll:.3f} "
      f"(perplexity {np.exp(train_nll):.1f})")

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
# A held-out loss this low says the model finds the expert answer very likely, *once it is fed that answer
# token by token* (teacher forcing). But every held-out question of a case has the same expert answer as
# the training questions of that case (half of them stop before its escalation advice), so after its
# first few words the answer is a text the model has recited many times. Where, then, is the held-out loss? Split it by position:

# %%
sft_parts = parts["SFT"]
total = sft_parts["sum"].sum()
print(f"held-out answer tokens: {sft_parts['n'].sum():,}; total loss {total:.1f} nats (mean {total / sft_parts['n'].sum():.3f})")
print(f"the {len(held_out)} first answer tokens carry {sft_parts['first'].sum():.1f} nats, "
      f"{sft_parts['first'].sum() / total:.0%} of the total")
print(f"the model's most likely first token is the expert's in {int(sft_parts['first right'].sum())} of "
      f"{len(held_out)} held-out questions")

# %% [markdown]
# ## 5. Answers before and after, scored by the gold judge
#
# The gold judge (`course_utils.judge`) plays the expert pharmacist: for each answer it checks which of
# the case's key facts are stated (medical accuracy), whether any unsafe claim is made (safety), whether
# the answer is concrete and on topic (specificity), whether doses are right, and whether it tells the
# patient whom to contact (humility). Both models answer all the held-out questions with greedy decoding.

# %%
prompts = [e["prompt"] for e in eval_prompts]
cases = [scenarios[e["scenario_id"]] for e in eval_prompts]
answers = {"base": answer(base, tok, prompts), "SFT": answer(policy, tok, prompts)}
scores = {name: judge.judge_many(a, cases) for name, a in answers.items()}
summary = pd.DataFrame({name: df[list(judge.METRICS) + ["overall"]].mean() for name, df in scores.items()})
escalates = {name: int((df["humility"] > 0).sum()) for name, df in scores.items()}
print(f"answers whose escalation advice the judge credits (humility > 0): base {escalates['base']}, "
      f"SFT {escalates['SFT']} of {len(prompts)}")
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
# ### What the model does with a question it has not seen
#
# The table suggests a test. Each case has one expert answer, repeated in all its demonstrations (in half
# of them without the closing escalation advice); so for every held-out question we can ask whether the
# SFT model's greedy answer is, word for word, the full expert answer of its own case, the full expert
# answer of **another** case, or neither. An answer that stops before the escalation advice cannot match
# the full answer word for word, so it counts as "neither".

# %%
expert_answers = {sid: data.expert_response(case) for sid, case in scenarios.items()}
answer_of = {text.strip(): sid for sid, text in expert_answers.items()}


def recited(text: str, own: str) -> str:
    sid = answer_of.get(text.strip())
    return "own case's answer" if sid == own else "another case's answer" if sid else "neither"


OTHER = "another case's answer"
kinds = pd.Series([recited(a, e["scenario_id"]) for a, e in zip(answers["SFT"], eval_prompts)])
by_kind = scores["SFT"][["overall", "medical_accuracy"]].groupby(kinds.values).agg(["count", "mean"])
print(by_kind.round(3).to_string())
print(f"\n{(kinds != 'neither').sum()} of {len(kinds)} SFT answers are an expert answer word for word; "
      f"{(kinds == OTHER).sum()} of them belong to another case")
print("SFT changed the mean judge scores: " + ", ".join(f"{k} {summary.loc[k, 'base']:.2f} -> {summary.loc[k, 'SFT']:.2f}"
                                                    for k in summary.index))

# %% [markdown]
# One of those held-out questions, in full:

# %%
wrong = [i for i, k in enumerate(kinds) if k == OTHER]
pick = next((i for i in wrong if eval_prompts[i]["scenario_id"] in data.FEATURED_SFT_SCENARIOS), wrong[0]) if wrong else None
if pick is None:
    print("every word-for-word answer belongs to its own case")
else:
    other = answer_of[answers["SFT"][pick].strip()]
    print(f"held-out question ({cases[pick]['title']}):\n  {prompts[pick]}\n")
    print(f"SFT answer, the expert answer of {other} ({scenarios[other]['title']}):\n  {answers['SFT'][pick]}\n")
    print(f"judge: overall {scores['SFT'].overall.iloc[pick]:.2f}, medical accuracy {scores['SFT'].medical_accuracy.iloc[pick]:.2f}")

# %% [markdown]
# **Why SFT imitates rather than learns to answer.** The objective of section 2 has one instruction: make
# the expert's words likely after the expert's question. It never shows the model a wrong answer and never
# tells it that one is wrong; the only thing it can reward is resemblance to a demonstration. With the
# demonstrations of this course (the counts are printed in section 4) the cheapest way to drive that loss
# to zero is the one the model found: learn each case's answer by heart, and learn to map a question's
# wording to one of those recitations. On a new wording the map is a guess. When the guess is right, the
# recitation is word for word and the judge gives near-full marks; when it is wrong, the model recites
# another case's answer just as fluently and just as confidently, because nothing in training ever made that costly
# (the example above). The first-token measurement of section 4 says the same thing in numbers: a large
# share of the held-out loss sits on the first word alone, the choice of which text to recite.
#
# So the judge's table has two faces. The form of the answers changed completely: the model now answers,
# in a pharmacist's register, and tells the patient whom to contact far more often than before, though
# only in some of its answers, as only some of its demonstrations did (the count under the judge's table
# and the before/after means). The content is right about as often as the model recognises the case (the
# table by kind of answer; the "neither" answers score lower than the word-for-word ones of their own
# case, but are mostly accurate). This
# is the classic finding of SFT at any scale: imitation teaches format and style quickly; knowledge must come from pretraining; and
# imitation alone does not teach the model what *not* to say. The next stages (a reward model learned from
# preferences, then RL) add the missing signal: a comparison that says which of two answers is better,
# for instance that the same answer is better with the escalation advice than without it.

# %% [markdown]
# ## 6. Why mask the prompt?
#
# Train a second copy from the same pretrained weights, identical except that the loss also covers the
# question tokens, and compare on the held-out expert answers. Both are live runs here.

# %% tags=["nbval-ignore-output"]
unmasked_policy = checkpoints.load("base")
hist_unmasked = sft(unmasked_policy, tok, live_demos, SFTConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=LEARNING_RATE,
                                                          mask_prompt=False, seed=SEED), desc="SFT, no masking")
verdicts_live = [judge.judge_many(answer(m, tok, prompts), cases) for m in (live_policy, unmasked_policy)]
cmp = pd.DataFrame({
    "held-out answer loss": [response_loss(live_policy, tok, held_out), response_loss(unmasked_policy, tok, held_out)],
    "judge overall": [v.overall.mean() for v in verdicts_live],
    "judge accuracy": [v.medical_accuracy.mean() for v in verdicts_live],
}, index=[f"live run (mask_prompt={MASK_PROMPT})", "whole sequence (mask_prompt=False)"])
display(cmp.round(3))
for column, better in [("held-out answer loss", "lower"), ("judge overall", "higher"), ("judge accuracy", "higher")]:
    a, b = cmp[column].iloc[0], cmp[column].iloc[1]
    winner = "neither" if round(a, 3) == round(b, 3) else cmp.index[int((b < a) if better == "lower" else (b > a))]
    print(f"{column} ({better} is better): {a:.3f} vs {b:.3f}; better: {winner}")

# %% [markdown]
# The lines under the table state, measure by measure, which run came out ahead in this run. Read them
# with three facts in mind. First, this is one short run of each (`EPOCHS` in the parameters cell), one
# seed: the measurement cannot tell a real effect from seed-to-seed noise of the same size (exercise 5 asks you to
# find out how large that noise is); here the masked run is ahead on every measure. Both runs are also far
# from the reference model: one short pass over a sample of the demonstrations (`LIVE_DEMOS`; section 4
# printed how many) teaches much less than the reference recipe, so compare the two runs with each other,
# not with the reference model of section 4.
# Second, the measures need not agree (here they do): the held-out loss measures how likely the expert's
# words are, the judge measures the greedy answer, and the two can rank the runs differently. Third, the
# prompts here are short next to the answers (section 3 printed the prompt and response token counts of
# the warfarin case), so unmasked training spends only a small share of its loss on questions.
#
# The argument for masking is about where the gradient goes, not about a guaranteed gain: with masking,
# every unit of the loss is about the answer; without it, part of it goes into predicting patients'
# questions, which at inference time are always given. The share grows with long prompts and short
# answers, common in real datasets. Most SFT pipelines mask the prompt; some train on everything and
# report little difference. What decides it is a measurement on your own data, with several seeds.

# %% [markdown]
# ## 7. Try it
#
# Choose the learning rate, the number of epochs and whether to mask the prompt, then press Run: a
# fresh SFT run from the pretrained model on the live runs' `LIVE_DEMOS` demonstrations (seconds per
# epoch), its loss curve, the held-out expert-answer loss and the judge's verdict on 16 held-out questions.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
from course_utils.widgets import sft_widget

sft_widget(tok, checkpoints.load("base"), live_demos, held_out[:16], cases[:16])

# %% [markdown]
# ## 8. Pitfalls seen in practice
#
# - **A format mismatch between training and use.** The model learned `<bos> <q> question <a>`; prompting
#   it without `<a>` gives continuations of the question, not answers. Real chat models have the same
#   fragility with their chat templates.
# - **Over-training on a small set.** Many epochs over a small set of examples drive the training loss
#   towards zero: the model memorises the demonstrations (compare the two losses printed in section 4).
#   When, as here, the held-out questions share their answers with the training ones, the held-out loss
#   falls almost as far, and it no longer measures what you care about.
# - **Trusting a teacher-forced loss.** The SFT loss feeds the model the expert's own previous tokens. A
#   model can put almost all of the probability on every expert token but the first and still, when it
#   generates, pick the wrong first token and recite the wrong answer. Section 4 located a large share of
#   the held-out loss on the first token; section 5 counted the wrong recitations. Always evaluate what the
#   model generates, not only the likelihood it gives to the right answer.
# - **Exposure bias.** During training the model always sees the expert's previous tokens; when it
#   generates, it sees its own, and one wrong token can derail the rest (the repetition loops of greedy
#   decoding). Imitation never shows it how to recover from its own mistakes (Bengio et al. 2015;
#   Ranzato et al. 2016; Ross et al. 2011 for the general imitation-learning result).
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
#
# **Exercise 4 (by hand).** A batch holds answer A with token losses $(2.0, 0.0)$ and answer B with token
# losses $(0.5, 0.5, 0.5, 0.5, 0.5, 0.5)$. Compute the token mean and the mean of per-answer means. Which
# answer does each one make the optimiser care more about? Check with `masked_mean` from exercise 2 on the
# concatenated losses.
#
# **Exercise 5 (open).** Run the comparison of section 6 with `SEED = 1` and `SEED = 2` (parameters cell).
# How much do the numbers of the *same* setting move from seed to seed? Is the difference between masked
# and unmasked training larger than that?

# %% [markdown]
# ## Summary
#
# - SFT is next-token prediction on (prompt, expert response) pairs, with the loss on the response only,
#   averaged over all the answer tokens of a batch: $\mathcal{L}_{\mathrm{SFT}} = \sum_{i,t} m_{i,t}\ell_{i,t} / \sum_{i,t} m_{i,t}$,
#   so every answer token weighs the same.
# - It turns a text continuer into something that answers, in the expert's format and tone, quickly and
#   with little data.
# - It imitates: on a question it has not seen, this model recites the answer of whichever case it
#   recognises, and recites another case's answer as fluently as the right one. A low teacher-forced loss
#   hides this; the generated answers show it. It also imitates the unevenness of its demonstrations: it
#   ends with the escalation advice in only some of its answers.
# - It does not, by itself, teach the model which answers are *better*: it never sees a wrong answer.
#   Next: **chapter 3, a reward model learned from preferences**.
#
# ## References
#
# - Ouyang et al. (2022). Training language models to follow instructions with human feedback (InstructGPT). *NeurIPS*.
# - Wei et al. (2022). Finetuned language models are zero-shot learners (FLAN). *ICLR*.
# - Pomerleau (1989). ALVINN: an autonomous land vehicle in a neural network. *NeurIPS* (behaviour cloning).
# - Ross, Gordon & Bagnell (2011). A reduction of imitation learning and structured prediction to no-regret online learning (DAgger). *AISTATS*.
# - Bengio, Vinyals, Jaitly & Shazeer (2015). Scheduled sampling for sequence prediction with recurrent neural networks. *NeurIPS*.
# - Ranzato, Chopra, Auli & Zaremba (2016). Sequence level training with recurrent neural networks (exposure bias). *ICLR*.
# - Iyyer, Manjunatha, Boyd-Graber & Daumé III (2015). Deep unordered composition rivals syntactic methods for text classification (word dropout). *ACL*.
# - Zhou et al. (2023). LIMA: less is more for alignment. *NeurIPS*.
