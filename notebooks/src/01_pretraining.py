# %% [markdown]
# # Chapter 1 · Pretraining: learning to predict the next word
#
# [![Launch on Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/OWNER/REPO/main?urlpath=lab/tree/notebooks/01_pretraining.ipynb) [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/OWNER/REPO/blob/main/notebooks/01_pretraining.ipynb)
#
# **Part 1 of the course · Stage 1 of 4** (pretraining → SFT → reward model → PPO)
#
# A language model is, first of all, a machine that assigns a probability to the next word.
# Everything else in this course (following instructions, preferring safe answers, avoiding
# reward hacking) is built on top of that one skill. In this chapter you train a real
# transformer, `TinyGPT`, on a small corpus of pharmaceutical text, and watch it go from guessing
# uniformly at random to writing fluent pharmaceutical sentences. Then you look closely at what it
# predicts after *Warfarin with ibuprofen increases the risk of* … and find out what it learned, and
# what it did not.
#
# The intuition fits in one sentence: to predict the next word of a text well, a model has to pick up
# whatever regularities the text contains: spelling, grammar, which words go together, and some of the
# facts the text states. Nobody labels anything; the text is its own teacher, which is why this
# objective scales to the whole web. How much of the facts it picks up, as opposed to the phrasing, is
# the question this chapter ends on.
#
# **You will learn to**
# 1. write the pretraining objective $L = -\frac{1}{N}\sum_t \log P(w_t \mid w_{<t})$ and compute it by hand for one sentence;
# 2. read a loss as a perplexity and compare it with the *uniform baseline* $\ln V$ of a model that learned nothing;
# 3. train TinyGPT, with a train/validation split, and read the loss curves;
# 4. sample from the model and control the sampling with temperature, top-k and top-p, as the code does it;
# 5. tell, from the model's own predictions, what it learned from the corpus and what it did not.
#
# > **Educational material, not medical advice.** The pharmaceutical texts are simplified teaching
# > examples, and a model this small produces fluent-looking text that can be wrong. Never use it for
# > decisions about real patients.

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
D_MODEL = 64          # width of every token's vector
N_LAYERS = 2          # transformer blocks
N_HEADS = 4           # attention heads per block
STEPS = 400           # optimisation steps
BATCH_SIZE = 16       # windows per step
SEQ_LEN = 64          # tokens per window
LEARNING_RATE = 3e-3  # peak learning rate (linear warm-up, then cosine decay)
WARMUP = 40
SAMPLE_TEMPERATURE = 0.8

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils import checkpoints, data
from course_utils.plotting import COLORS, smooth, use_course_style
from course_utils.training import PretrainConfig, corpus_stream, new_model, pretrain
from course_utils.widgets import softmax_with_temperature

use_course_style()
pd.set_option("display.precision", 3)

# %% [markdown]
# ## 1. The data and the tokenizer
#
# The pretraining corpus, `data/corpus.txt`, is built from the course's knowledge base
# (`data/scenarios.jsonl`, the hand-written pharmaceutical cases): textbook notes, case summaries,
# pharmacist's notes, patient-leaflet paragraphs. A real model reads trillions of words from the
# web; ours reads a tiny fraction of that (the count is printed below), on one topic, which is why
# it can learn in seconds.
#
# The model does not see letters. A **tokenizer** cuts text into tokens and numbers them. Ours works
# on whole words, keeps dose expressions such as `500 mg` and `eGFR < 30` readable, and has a few
# special tokens (`<bos>`, `<eos>`, `<pad>`, `<unk>`, and `<q>`/`<a>`, which chapter 2 uses).

# %%
corpus = data.load_corpus()
tok = checkpoints.load_tokenizer()
stream = corpus_stream(tok, corpus)
train_ids, val_ids = checkpoints.corpus_split(tok)   # the split every pretraining run of the course uses

V = tok.vocab_size
print(f"corpus: {len(corpus.split()):,} words in {len(corpus.split(chr(10) * 2)):,} paragraphs")
print(f"vocabulary: V = {V:,} tokens")
print(f"token stream: {len(stream):,} tokens; training split {len(train_ids):,} tokens, "
      f"validation split {len(val_ids):,} tokens")
print(f"unknown tokens in the stream: {int((stream == tok.unk_id).sum())}")

# %%
sentence = "Warfarin with ibuprofen increases the risk of bleeding."
ids = tok.encode(sentence)
print(" | ".join(tok.decode([i]) for i in ids))
print(ids)
print(tok.decode(ids) == sentence)

# %% [markdown]
# ## 2. The objective
#
# A language model defines the probability of a text $w_1, \dots, w_T$ one token at a time,
# with the chain rule:
#
# $$P(w_1, \dots, w_T) = \prod_{t=1}^{T} P(w_t \mid w_{<t}).$$
#
# Pretraining maximises this probability on the corpus, or equivalently minimises the average
# **negative log-likelihood** (the cross-entropy between the data and the model):
#
# $$L = -\frac{1}{N} \sum_{t=1}^{N} \log P_\theta(w_t \mid w_{<t})$$
#
# | symbol | meaning |
# |---|---|
# | $w_t$ | the token at position $t$ |
# | $w_{<t}$ | all tokens before it (the *context*) |
# | $P_\theta(w_t \mid w_{<t})$ | the probability the model with parameters $\theta$ gives to the true next token: the softmax of its logits |
# | $N$ | the number of predicted tokens |
# | $\mathrm{PPL} = e^{L}$ | **perplexity**: the model is "as unsure as if choosing uniformly among PPL tokens" |
#
# A model that knows nothing spreads its probability evenly over the $V$ tokens of the vocabulary:
# $P = 1/V$ for every token, so $L = \ln V$ and $\mathrm{PPL} = V$. That is the **uniform baseline**
# every trained model must beat. A loss quoted without its vocabulary size cannot be read: a loss
# equal to $\ln V$ is exactly that of a model that has learned nothing, so the same number can be
# progress for a large vocabulary and no learning at all for a small one. Minimising $L$ has been the
# objective of neural language models since Bengio et al. (2003) and is that of every GPT
# (Radford et al. 2019); the link between prediction and the information content of text goes back to
# Shannon (1948).
#
# Two properties of $-\log P$ matter below. It is never negative and it is 0 only when the model gives the
# true token probability 1. And it punishes confident mistakes without limit: a token given probability
# $1/V$ costs $\ln V$, a token given probability $10^{-7}$ costs $-\ln 10^{-7} \approx 16.1$ nats, twice
# the cost of knowing nothing. A model can therefore lower its *average* loss a great deal and still be
# badly, confidently wrong on a few tokens.

# %% [markdown]
# ## 3. A worked example, token by token
#
# Take the sentence above and an **untrained** TinyGPT (random weights). For each position the
# table shows the true next token, the probability the model gives it, its $-\log P$ and the running
# sum. Check any row with a calculator, as the line under the table does for the first one: the
# $-\log P$ column is the natural logarithm of the probability, with its sign flipped, and the last value
# of the running sum divided by the number of rows is the loss $L$ of the sentence.

# %%
def token_table(model, text: str) -> pd.DataFrame:
    """Per-token probability of ``text`` (after <bos>) under ``model``: the loss, written out."""
    ids = [tok.bos_id] + tok.encode(text)
    logits = model.forward(np.asarray([ids[:-1]]))[0].astype(np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    p_true = probs[np.arange(len(ids) - 1), ids[1:]]
    nll = -np.log(p_true)
    return pd.DataFrame({
        "context ends with": [tok.decode([i], skip_special=False) for i in ids[:-1]],
        "next token": [tok.decode([i]) for i in ids[1:]],
        "P(next)": p_true,
        "-log P": nll,
        "running sum": np.cumsum(nll),
    })


untrained = new_model(tok, seed=SEED, d_model=D_MODEL, n_layers=N_LAYERS, n_heads=N_HEADS, dtype="float64")
table0 = token_table(untrained, sentence)
print(table0.round({"P(next)": 6, "-log P": 3, "running sum": 3}).to_string(index=False))
first = table0.iloc[0]
print(f"first row: -ln({first['P(next)']:.6f}) = {-np.log(first['P(next)']):.3f}")
print(f"mean -log P = {table0['-log P'].mean():.3f}   uniform baseline ln V = ln {V} = {np.log(V):.3f}")

# %% [markdown]
# The untrained model is almost exactly at the uniform baseline (the last line compares the two): with
# small random weights every logit is close to zero, so every token gets probability close to $1/V$.
# Learning means moving probability mass onto the tokens that actually come next.

# %% [markdown]
# ## 4. The model
#
# `TinyGPT` is a decoder-only transformer (Vaswani et al. 2017; Radford et al. 2019) written in
# numpy, forward *and* backward pass by hand (the tests check every gradient against finite
# differences). Token and position embeddings, then blocks of *causal* self-attention (each
# position looks only at earlier positions) and a small MLP, each behind a LayerNorm and added
# back to a residual stream, then a final LayerNorm and a linear map to $V$ logits, tied to the
# token embedding.

# %%
model = new_model(tok, seed=SEED, d_model=D_MODEL, n_layers=N_LAYERS, n_heads=N_HEADS)
cfg = model.config
print(f"TinyGPT: d_model={cfg.d_model}, layers={cfg.n_layers}, heads={cfg.n_heads}, "
      f"context={cfg.max_len}, vocabulary={cfg.vocab_size}")
print(f"parameters: {model.n_params:,}")
for name, p in list(model.params.items())[:8]:
    print(f"  {name:<16} {str(p.shape):<12}")
print("  ...")

# %% [markdown]
# ## 5. Pretraining, for real
#
# Each step draws `BATCH_SIZE` random windows of `SEQ_LEN` tokens from the training part of the
# stream; the targets are the same windows shifted by one token. AdamW (Loshchilov & Hutter 2019)
# updates the weights, with a linear warm-up and a cosine decay of the learning rate and gradient
# clipping at norm 1. Every 50 steps we measure the loss on the **validation** part, text the model
# never trains on: the last tenth of the corpus passages, without the sentences that also occur in
# the training part.
#
# This is a **live run**: a short demonstration of the training code for you to run and change
# (seconds on a laptop, with the model of the parameters cell). Its numbers are yours: on another
# processor or BLAS library the last bits of every matrix product differ, training amplifies them,
# and your losses can differ slightly from the ones printed in the book (the curves look the same).
# The model the rest of the course uses is trained by the *reference run*, after this one.

# %% tags=["nbval-ignore-output"]
config = PretrainConfig(steps=STEPS, batch_size=BATCH_SIZE, seq_len=SEQ_LEN, lr=LEARNING_RATE,
                        warmup=WARMUP, seed=SEED)
history = pretrain(model, train_ids, val_ids, config)
log = history.log
val = log.dropna(subset=["val_loss"])
print(f"steps run: {len(log)}")
print(f"train loss: {log.train_loss.iloc[:10].mean():.3f} (first 10 steps) -> {log.train_loss.iloc[-20:].mean():.3f} (last 20)")
print(f"validation loss: {val.val_loss.iloc[-1]:.3f}, perplexity {np.exp(val.val_loss.iloc[-1]):.1f}")
print(f"uniform baseline: ln V = {np.log(V):.3f}, perplexity {V}")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
ax1.plot(log.step, log.train_loss, color=COLORS["sky"], alpha=0.5, lw=1, label="train (per step)")
ax1.plot(log.step, smooth(log.train_loss, 20), color=COLORS["blue"], label="train (smoothed)")
ax1.plot(val.step, val.val_loss, "o-", color=COLORS["vermillion"], label="validation")
ax1.axhline(np.log(V), color=COLORS["grey"], ls="--", label=f"uniform baseline ln V = {np.log(V):.2f}")
ax1.set(xlabel="step", ylabel="cross-entropy (nats per token)", title="Pretraining loss")
ax1.legend()
ax2.plot(val.step, np.exp(val.val_loss), "o-", color=COLORS["vermillion"])
ax2.set(xlabel="step", ylabel="perplexity", yscale="log", title="Validation perplexity (log scale)")
plt.show()

# %% [markdown]
# ### The reference run
#
# The live run above is a short demonstration of the code for you: seconds on a laptop, and on
# another CPU its numbers may differ slightly. The **reference run** is what `make checkpoints`
# trained: the same `pretrain` function on the same split, with a larger model
# (`checkpoints.REFERENCE_MODEL`) and more steps (`checkpoints.REFERENCE_PRETRAIN`). Its weights,
# `data/checkpoints/base.npz`, are what every later section and chapter loads; its training log was
# saved next to them (`checkpoints.load_log("base")`). The recipe, the final values and the curves:

# %%
live_model = model
model = checkpoints.load("base", dtype="float64")   # the reference model, evaluated in double precision
ref_cfg = checkpoints.REFERENCE_PRETRAIN
ref_log = checkpoints.load_log("base")
ref_val = ref_log.dropna(subset=["val_loss"])
print(f"reference model: d_model={model.config.d_model}, layers={model.config.n_layers}, "
      f"heads={model.config.n_heads}, {model.n_params:,} parameters (the live run's model: {live_model.n_params:,})")
print(f"reference recipe: {ref_cfg.steps:,} steps (the live run: {STEPS}) of {ref_cfg.batch_size} windows x "
      f"{ref_cfg.seq_len} tokens, peak learning rate {ref_cfg.lr:g}, warm-up {ref_cfg.warmup} steps, "
      f"validation every {ref_cfg.eval_every} steps, seed {ref_cfg.seed}")
best, end = ref_val.loc[ref_val.val_loss.idxmin()], ref_val.iloc[-1]
print(f"training loss, mean of the last 100 steps: {ref_log.train_loss.tail(100).mean():.2f}")
print(f"validation loss: lowest {best.val_loss:.2f} at step {int(best.step):,}; at the end (step {int(end.step):,}) "
      f"{end.val_loss:.2f}, perplexity {np.exp(end.val_loss):.1f}")
print(f"uniform baseline: ln V = {np.log(V):.2f}, perplexity {V:,}")

fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(ref_log.step, ref_log.train_loss, color=COLORS["sky"], alpha=0.5, lw=1, label="train (per step)")
ax.plot(ref_log.step, smooth(ref_log.train_loss, 50), color=COLORS["blue"], label="train (smoothed)")
ax.plot(ref_val.step, ref_val.val_loss, "o-", color=COLORS["vermillion"], label="validation")
ax.axhline(np.log(V), color=COLORS["grey"], ls="--", label=f"uniform baseline ln V = {np.log(V):.2f}")
ax.set(xlabel="step", ylabel="cross-entropy (nats per token)", title="The reference run (make checkpoints)")
ax.legend()
plt.show()

# %%
checkpoints_at = [s for s in (500, 1000, 1500, 2000) if s in set(ref_val.step)]
gap_table = pd.DataFrame([{"step": s, "training loss (mean of the last 100 steps)":
                           ref_log.train_loss[(ref_log.step > s - 100) & (ref_log.step <= s)].mean(),
                           "validation loss": ref_val.val_loss[ref_val.step == s].iloc[0]} for s in checkpoints_at])
gap_table["gap"] = gap_table["validation loss"] - gap_table.iloc[:, 1]
print(gap_table.round(2).to_string(index=False))
first_gap, last_gap = gap_table.gap.iloc[0], gap_table.gap.iloc[-1]
print(f"the gap between validation and training loss {'widened' if last_gap > first_gap + 0.05 else 'did not widen'} "
      f"from {first_gap:.2f} to {last_gap:.2f} nats per token; the validation loss "
      f"{'rose' if end.val_loss > best.val_loss + 0.05 else 'did not rise'} after its lowest point")

# %% [markdown]
# The distance between the two curves is the difference between predicting text the model has read
# and text it has not; the table above puts numbers on it, and the last line states what this run did
# (section 9, second pitfall). A training loss this far below the validation loss means that a good part
# of what the model knows is the wording of its training passages, which section 6 shows directly.
#
# From here on, `model` is the reference model. We evaluate it in double precision
# (`dtype="float64"`), so every number below is the same on every computer.

# %% [markdown]
# ## 6. What the model learned
#
# Back to the worked example: the same sentence, now under the trained model.

# %%
table1 = token_table(model, sentence)
both = table0[["next token", "-log P"]].rename(columns={"-log P": "-log P untrained"})
both["-log P trained"] = table1["-log P"]
both["P trained"] = table1["P(next)"]
print(both.round(3).to_string(index=False))
print(f"sentence loss: {table0['-log P'].mean():.3f} untrained -> {table1['-log P'].mean():.3f} trained")
worse = both[both["-log P trained"] > both["-log P untrained"]]
print(f"tokens the trained model predicts worse than the untrained one: {', '.join(worse['next token'])} "
      f"({len(worse)} of {len(both)}); together they cost {worse['-log P trained'].sum():.1f} nats of the "
      f"trained model's {both['-log P trained'].sum():.1f}")

# %% [markdown]
# Read the table row by row: the trained model is nearly certain of the tokens that follow set phrases
# (*the risk of*), and on some tokens it is worse than the untrained model, because it is confident of
# something else (the line under the table names them). This is the second property of $-\log P$ from
# section 2 at work: one confident mistake can cost more than several good predictions earn.
#
# Now the whole next-word distribution after a prompt: the ten most likely continuations of
# *"Warfarin with ibuprofen increases the risk of"*.

# %%
def next_word_distribution(model, prompt: str, k: int = 10) -> pd.DataFrame:
    ids = [tok.bos_id] + tok.encode(prompt)
    logits = model.forward(np.asarray([ids]))[0, -1].astype(np.float64)
    p = softmax_with_temperature(logits, 1.0)
    top = np.argsort(-p)[:k]
    return pd.DataFrame({"next token": [tok.decode([i]) for i in top], "P": p[top]})


prompt = "Warfarin with ibuprofen increases the risk of"
dist = next_word_distribution(model, prompt)
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(dist["next token"][::-1], dist["P"][::-1], color=COLORS["blue"])
ax.set(xlabel="P(next token)", title=f"“{prompt} …”")
plt.show()
print(dist.round(3).to_string(index=False))
target = tok.encode("bleeding")[0]
p_untrained = softmax_with_temperature(untrained.forward(np.asarray([[tok.bos_id] + tok.encode(prompt)]))[0, -1].astype(float), 1.0)
p_trained = softmax_with_temperature(model.forward(np.asarray([[tok.bos_id] + tok.encode(prompt)]))[0, -1].astype(float), 1.0)
print(f"P(bleeding): untrained {p_untrained[target]:.5f} (1/V = {1 / V:.5f}), trained {p_trained[target]:.3f}, "
      f"rank {int((p_trained > p_trained[target]).sum()) + 1} of {V:,} tokens")
print(f"the trained model's first choice: {dist['next token'].iloc[0]!r} (P = {dist['P'].iloc[0]:.3f})")

# %% [markdown]
# Is that knowledge or phrasing? Two measurements separate them. First, count what follows
# *increases the risk of* in the training text: that is what a model that only learned the phrase
# would predict. Second, ask the model to finish the same phrase after different openings: a
# sentence that occurs word for word in the training text, and new sentences about other drugs.

# %%
phrase = tok.encode("increases the risk of")
windows = np.lib.stride_tricks.sliding_window_view(train_ids[:-1], len(phrase))
after = train_ids[np.flatnonzero((windows == phrase).all(axis=1)) + len(phrase)]
counts = pd.Series([tok.decode([int(i)]) for i in after]).value_counts()
print(f"'increases the risk of' occurs {len(after)} times in the training text; the next word:")
print(counts.head(5).to_string())
print()

train_text = data.split_corpus(corpus, ref_cfg.val_fraction)[0]
probes = [("Ibuprofen and other NSAIDs increase the risk of", "bleeding"),   # a training sentence, word for word
          ("Warfarin with ibuprofen increases the risk of", "bleeding"),      # the same fact, a new wording
          ("Metformin increases the risk of", "lactic"),                      # lactic acidosis, a new wording
          ("Lithium with ibuprofen increases the risk of", "lithium")]        # lithium toxicity, a new wording
rows = []
for text, right in probes:
    p = softmax_with_temperature(model.forward(np.asarray([[tok.bos_id] + tok.encode(text)]))[0, -1].astype(float), 1.0)
    r = tok.encode(right)[0]
    rows.append({"prompt": text, "in the training text": train_text.count(text) > 0, "right word": right,
                 "P(right)": p[r], "rank of right": int((p > p[r]).sum()) + 1,
                 "first choice": tok.decode([int(p.argmax())]), "P(first)": p.max()})
probe_table = pd.DataFrame(rows)
print(probe_table.round(3).to_string(index=False))
seen, unseen = probe_table[probe_table["in the training text"]], probe_table[~probe_table["in the training text"]]
print(f"\nthe commonest word after 'increases the risk of' in the training text: {counts.index[0]!r}")
print(f"first choice right: {int((seen['rank of right'] == 1).sum())} of {len(seen)} sentence(s) it has read, "
      f"{int((unseen['rank of right'] == 1).sum())} of {len(unseen)} new wordings")

# **What the model learned, and what it did not.** It learned the phrase: *increases the risk of* is
# followed by a harm, and most of the words it proposes are harms the corpus names. It learned to
# complete a sentence it has read almost perfectly. What it learned only in part is which harm belongs to
# which drug: on the new wordings its first choice is right for warfarin with ibuprofen and for lithium
# with ibuprofen, but for metformin it puts most of the probability on *lithium*, a harm of another drug,
# and ranks the right word, *lactic*, well below it (the table; the last line counts how often the first
# choice is right). Even where it is right, it is far less sure than on the sentence it has read.
# A language model stores facts only as far as predicting the text forces it to, and a corpus this small,
# in which most facts are stated in a few fixed wordings, can be predicted well by remembering wordings.
# This is the gap between low perplexity and knowledge; later chapters come back to it with a judge that
# checks the facts.

# %% [markdown]
# ## 7. Sampling: temperature, top-k, top-p
#
# To generate text, the model repeatedly turns its logits $z$ (one number per token of the vocabulary)
# into probabilities and draws the next token. The **temperature** $\tau > 0$ reshapes the distribution
# before drawing:
#
# $$p_i = \frac{e^{z_i/\tau}}{\sum_j e^{z_j/\tau}}$$
#
# | symbol | meaning |
# |---|---|
# | $z_i$ | the logit of token $i$: the model's raw score, before the softmax |
# | $\tau$ | the temperature; $\tau = 1$ is the model's own distribution |
# | $p_i$ | the probability that token $i$ is drawn next |
#
# $\tau < 1$ sharpens the distribution, $\tau > 1$ flattens it towards uniform, and as $\tau \to 0$ all the
# mass goes to the largest logit. The code (`TinyGPT.generate`, `softmax_with_temperature`) takes
# $\tau = 0$ to mean exactly that limit, **greedy decoding**: the most likely token, no random draw. The two
# filters act after the temperature, on the reshaped distribution: **top-k** keeps the $k$ tokens with the
# largest logits (Fan et al. 2018), **top-p** (nucleus sampling, Holtzman et al. 2020) keeps the smallest
# set of most likely tokens whose probability reaches $p$; every other token gets probability 0, the
# kept ones are renormalised to sum to 1, and one uniform random number picks the token. Tokens tied with
# the last kept one are kept too, so the result does not depend on how ties are ordered.
#
# **By hand.** Three tokens with logits $z = (2, 1, 0)$. At $\tau = 1$: $e^2, e^1, e^0 = 7.389, 2.718, 1$,
# sum $11.107$, so $p = (0.665, 0.245, 0.090)$. At $\tau = 0.5$ the logits become $(4, 2, 0)$:
# $54.60, 7.389, 1$, sum $62.99$, so $p = (0.867, 0.117, 0.016)$. With top-p $= 0.9$ at $\tau = 1$, the most
# likely token alone has $0.665 < 0.9$, the two most likely have $0.910 \ge 0.9$: keep two, renormalise to
# $(0.731, 0.269, 0)$. The code gives the same numbers:

# %%
from course_utils.model import filter_logits

z_hand = np.array([2.0, 1.0, 0.0])
for tau in (1.0, 0.5, 0.0):
    print(f"τ = {tau:.1f}: p = {np.round(softmax_with_temperature(z_hand, tau), 3)}")
print(f"top-p = 0.9 at τ = 1: p = {np.round(softmax_with_temperature(filter_logits(z_hand, top_p=0.9), 1.0), 3)}")
print(f"top-k = 1 at τ = 1:   p = {np.round(softmax_with_temperature(filter_logits(z_hand, top_k=1), 1.0), 3)}")

# %% [markdown]
# Samples from the untrained and the trained model, same prompt, same random seed:

# %%
def sample(model, prompt: str, n_tokens: int = 30, temperature: float = 1.0, top_k=None, top_p=None, seed: int = SEED) -> str:
    ids = [tok.bos_id] + tok.encode(prompt)
    new = model.generate(np.asarray([ids]), n_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                         rng=np.random.default_rng(seed), stop_id=tok.eos_id)
    out = [int(i) for i in np.asarray(new)[0] if i != tok.pad_id]
    return tok.decode([i for i in out if i != tok.eos_id])


for name, m in [("untrained", untrained), ("trained", model)]:
    print(f"[{name}] {prompt} {sample(m, prompt, temperature=SAMPLE_TEMPERATURE)}\n")

# %%
p_tau = {tau: softmax_with_temperature(model.forward(np.asarray([[tok.bos_id] + tok.encode(prompt)]))[0, -1].astype(float), tau)
         for tau in (0.5, 1.0, 1.5)}
for tau, p in p_tau.items():
    entropy = -(p[p > 0] * np.log(p[p > 0])).sum()
    print(f"τ = {tau:.1f}: P(top token) = {p.max():.3f}, entropy = {entropy:.2f} nats, "
          f"tokens needed for 90% of the mass = {int(np.searchsorted(np.cumsum(np.sort(p)[::-1]), 0.9) + 1)}")
print()
for tau in (0.2, 1.0, 1.5):
    print(f"τ = {tau:.1f}: {sample(model, 'Signs of lithium toxicity include', temperature=tau)}\n")
print(f"top-k = 5, τ = 1.0: {sample(model, 'Signs of lithium toxicity include', top_k=5)}\n")
print(f"top-p = 0.9, τ = 1.0: {sample(model, 'Signs of lithium toxicity include', top_p=0.9)}")
print()
signs = ["coarse tremor", "confusion", "drowsiness", "unsteadiness", "vomiting", "diarrhoea"]   # as the corpus lists them
greedy_ish = sample(model, 'Signs of lithium toxicity include', temperature=0.2)
print(f"signs of lithium toxicity named in the τ = 0.2 sample: {[w for w in signs if w in greedy_ish]} of {signs}; "
      f"its first word: {greedy_ish.split()[0]!r}")

# %% [markdown]
# Read the samples with section 6 in mind. The trained model writes grammatical sentences in the register
# of its corpus, and reproduces lists it has read: the low-temperature lithium sample names signs of
# lithium toxicity as the corpus lists them (the last line checks which). But it then runs on into the
# advice that closes the corpus's passages on lithium with NSAIDs, although the prompt mentions no NSAID,
# and its continuation of the warfarin prompt starts with the wrong harm, bone marrow toxicity (its
# second choice in section 6, drawn here), and runs on into advice about another interaction. The numbers
# under the first samples say how peaked the next-word distribution is: at $\tau = 0.5$ a handful of
# words hold 90 % of the mass; at $\tau = 1.5$ it takes hundreds of words to cover
# 90 %, and the sample drifts into word salad within a sentence. Top-k and top-p cut off the long tail of
# unlikely tokens, which is where the word salad comes from; they do not make the text right: both
# filtered samples repeat a sign they have already named, and the top-p sample runs on into the NSAID
# advice as well.
#
# Note what the model does *not* do: it does not answer questions. It continues text in the style of its
# corpus. Turning a text predictor into an assistant is the job of chapter 2.

# %% [markdown]
# ## 8. Try it
#
# Change the learning rate and the number of steps and re-run a short pretraining live (a few
# seconds), then sample at the temperature you choose. Try a learning rate of 0.1 or 1: the run
# stops with a warning instead of producing NaNs, and the plot shows where it went wrong.

# %% tags=["nbval-ignore-output"]
# a widget: its output is live, not part of the book
from course_utils.widgets import pretraining_widget

pretraining_widget(tok, train_ids, val_ids, prompt="Signs of lithium toxicity include")

# %% [markdown]
# ## 9. Pitfalls seen in practice
#
# - **Forgetting the baseline.** A loss means nothing without $\ln V$ next to it: a loss equal to
#   $\ln V$ is a model that learned nothing, whatever the size of the number. Print both, always.
# - **Reading only the training loss.** Our corpus is small. In the reference run the training loss fell
#   far below the validation loss and the gap kept widening (the table in section 5); trained longer, a
#   model eventually memorises its training text and the validation loss turns up. Only text the model
#   never trains on tells you how well it predicts new text.
# - **Leaking the validation set.** Our validation text is the last passages of the corpus, not random
#   windows that overlap the training windows, and every sentence that also occurs in a training passage
#   is removed from it. In real corpora, near-duplicate documents cause the same leak.
# - **A learning rate that is too large** makes the loss jump or diverge; too small and nothing happens
#   in the time you have. Warm-up protects the first steps, when the Adam statistics are still noisy.
# - **Fluency is not correctness.** Low perplexity means the model predicts *this corpus* well; it says
#   nothing about whether a generated dose is right. Section 6 showed a model with a validation perplexity
#   far below the baseline's that still names lithium as the harm of metformin. Chapters 3-7 are about
#   exactly that gap.
# - **Comparing losses across tokenizers.** A loss is per *token*. A word-level model and a model that
#   cuts words into pieces predict different numbers of tokens for the same text, so their losses (and
#   perplexities) cannot be compared directly; compare bits or nats per word or per character instead.
# - **Sampling settings hidden in a result.** The same model gives a different text at every temperature
#   and filter. When you report a sample, report $\tau$, top-k, top-p and the seed, as this chapter does.

# %% [markdown]
# ## 10. Exercises
#
# Exercises 1 and 2 are functions for you to write: replace `raise NotImplementedError` with your code
# and run the cell again. The `check_...` call compares your function with the course's reference on
# hand-made inputs, extreme ones included, and prints whether it passed (until you have written it, it
# says so); the solution is in the folded block below each exercise.
#
# **Exercise 1.** Write the cross-entropy of one position: given a vector of logits and the index of the
# true token, return $-\log \mathrm{softmax}(z)_{w}$. Use the log-sum-exp trick so that logits of
# 1000 do not overflow.

# %%
from course_utils.exercises import check_nll_one_position, check_perplexity


def nll_one_position(logits: np.ndarray, target: int) -> float:
    """-log softmax(logits)[target], computed with the log-sum-exp trick (finite for logits of ±1000)."""
    raise NotImplementedError  # replace with your own code


_ = check_nll_one_position(nll_one_position)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def nll_one_position(logits: np.ndarray, target: int) -> float:
#     m = logits.max()   # log sum e^z = m + log sum e^(z - m), and every z - m is <= 0
#     return float(m + np.log(np.exp(logits - m).sum()) - logits[target])
# ```
# </details>
#
# **Exercise 2.** A model's validation loss is `val.val_loss.iloc[-1]` nats per token. What is its
# perplexity, and how many times smaller is it than the uniform baseline's perplexity $V$?

# %%
def perplexity_and_ratio(loss: float, vocab_size: int) -> tuple[float, float]:
    """(the perplexity e^loss, vocab_size / perplexity): how many times smaller it is than the baseline's V."""
    raise NotImplementedError  # replace with your own code


_ = check_perplexity(perplexity_and_ratio)

# %% [markdown]
# <details><summary>Solution</summary>
#
# ```python
# def perplexity_and_ratio(loss: float, vocab_size: int) -> tuple[float, float]:
#     ppl = float(np.exp(loss))
#     return ppl, vocab_size / ppl
# ```
# For this chapter's model: `perplexity_and_ratio(val.val_loss.iloc[-1], V)`.
# </details>
#
# **Exercise 3 (open).** Double `STEPS` in the parameters cell and re-run. Does the validation loss keep
# falling? At what step does the gap between training and validation loss start to grow?
#
# **Exercise 4 (by hand).** Logits $z = (3, 1, 1, 0)$. Compute the sampling distribution at $\tau = 1$ and at
# $\tau = 2$, then the set that top-p $= 0.8$ keeps at $\tau = 1$ (mind the tie). Check your answers with
# `softmax_with_temperature` and `filter_logits` as in section 7.
#
# **Exercise 5 (open).** Add your own prompts to `probes` in section 6: a sentence you find in
# `data/corpus.txt`, then the same fact in your own words. On which does the model put more probability on
# the right word?

# %% [markdown]
# ## Summary
#
# - Pretraining minimises $L = -\frac1N\sum_t \log P(w_t \mid w_{<t})$; perplexity $e^L$ reads it as an
#   effective number of choices; the uniform baseline is $\ln V$.
# - Our TinyGPT starts at the baseline and, in a few hundred steps, falls far below it on text it
#   never saw; it learned which words follow which in pharmaceutical text, and completes the sentences it
#   has read, but on new wordings it can attach the wrong fact to a drug.
# - Sampling turns the distribution into text; temperature, top-k and top-p trade diversity for
#   reliability.
# - A pretrained model continues text; it does not yet answer questions. Next: **chapter 2, SFT**.
#
# ## References
#
# - Shannon (1948). A mathematical theory of communication. *Bell System Technical Journal* 27.
# - Bengio, Ducharme, Vincent, Jauvin (2003). A neural probabilistic language model. *JMLR* 3.
# - Vaswani et al. (2017). Attention is all you need. *NeurIPS*.
# - Radford et al. (2019). Language models are unsupervised multitask learners (GPT-2). OpenAI.
# - Press & Wolf (2017). Using the output embedding to improve language models (tied embeddings). *EACL*.
# - Kingma & Ba (2015). Adam: a method for stochastic optimization. *ICLR*.
# - Loshchilov & Hutter (2019). Decoupled weight decay regularization (AdamW). *ICLR*.
# - Fan, Lewis & Dauphin (2018). Hierarchical neural story generation (top-k sampling). *ACL*.
# - Holtzman et al. (2020). The curious case of neural text degeneration (nucleus sampling). *ICLR*.
