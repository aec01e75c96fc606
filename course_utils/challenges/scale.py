"""Challenge 4, scalability: what PPO costs (parameters, memory, FLOPs, labels) and how it grows.

:func:`scalability_experiment` counts the cost on the course's models and extrapolates it on
paper to real sizes; :func:`measure_ppo_cost` times PPO live (machine-dependent, never cached).
"""

from __future__ import annotations

import math
import time
import tracemalloc
import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from .. import data
from ..model import GPTConfig, TinyGPT
from ..ppo import PPOConfig, train_ppo
from ..reward import RewardModel, evaluate_pairs
from ..tokenizer import VocabularyTokenizer
from .common import _preference_pairs, _trained_reward_model


@dataclass
class ScaleSettings:
    """Knobs of :func:`scalability_experiment` (defaults: the chapter's cached run).

    The TinyGPTs compared have the course model's vocabulary. A PPO iteration is costed with
    ``batch_size`` answers of ``prompt_tokens`` + ``answer_tokens`` tokens and ``ppo_epochs``
    passes. The estimate on paper for ``real_models`` assumes ``flops_per_second`` of useful
    throughput per accelerator (an assumption, stated as such).
    """

    widths: tuple[int, ...] = (32, 64, 128, 256)          # d_model of the TinyGPTs compared
    n_layers: int = 2                                     # their layers
    n_heads: int = 4                                      # their attention heads
    prompt_tokens: int = 20                               # tokens of a costed prompt
    answer_tokens: int = 80                               # tokens of a costed answer
    batch_size: int = 8                                   # answers per costed iteration
    ppo_epochs: int = 2                                   # passes over each rollout
    label_counts: tuple[int, ...] = (30, 60, 125, 250)    # labelled pairs of the reward-model learning curve
    label_steps: int = 32                                 # steps each of those reward models trains
    real_models: tuple[tuple[str, float], ...] = (("GPT-2 small", 124e6), ("1.3B (smallest InstructGPT)", 1.3e9),
                                                  ("7B", 7e9), ("70B", 70e9))   # (name, parameters) on paper
    run_answers: int = 256_000                            # answers of a real PPO run
    run_tokens: int = 300                                 # tokens of each
    flops_per_second: float = 1e14                        # useful throughput per accelerator (assumed)
    bytes_trainable: int = 16                             # per trained parameter: weights, gradient, AdamW moments
    bytes_frozen: int = 2                                 # per frozen parameter (16-bit weights)
    n_train: int | None = None                            # reward models see the first n training pairs (None = all)
    seed: int = 0                                         # pair order, reward models


def _counts(model: TinyGPT) -> dict[str, int]:
    """Parameter counts: all, the embeddings, the last block (+ final LayerNorm)."""
    c = model.config
    total = model.n_params
    emb = model.params["wte"].size + model.params["wpe"].size
    last = sum(a.size for k, a in model.params.items() if k.startswith(f"h{c.n_layers - 1}.") or k.startswith("ln_f."))
    return {"total": int(total), "embedding": int(emb), "last_block": int(last)}


def ppo_state_bytes(n_policy: int, n_reward: int, n_last_block: int, d_model: int, bytes_trainable: int = 16,
                    bytes_frozen: int = 4) -> dict[str, int]:
    """Bytes of weights, gradients and optimiser state PPO holds, for three set-ups.

    A trained array costs ``bytes_trainable`` per parameter (float32 weights, gradients and
    AdamW's two moments: 4 + 4 + 4 + 4 = 16), a frozen one ``bytes_frozen`` (float32: 4).
    Four models are in play: the policy (trained, ``n_policy``), the reference (frozen, the
    same size), the reward model (frozen, ``n_reward``: a trunk and a scalar head) and the
    value function:

    * ``separate_value``: the value function is a second trained model of the reward model's
      shape:  16 (N_π + N_r) + 4 (N_π + N_r);
    * ``shared_trunk``: a value head (D + 1 weights) on the policy's trunk, as ``ppo.py``
      does:  16 (N_π + D + 1) + 4 (N_π + N_r);
    * ``last_block``: shared trunk, and only the policy's last block, final LayerNorm and the
      value head are trained (LoRA-style); the frozen rest of the policy *is* the reference's,
      so only the reference's own copy of the last block is extra:
      16 (N_last + D + 1) + 4 (N_π - N_last) + 4 N_last + 4 N_r.
    """
    head = d_model + 1
    separate = bytes_trainable * (n_policy + n_reward) + bytes_frozen * (n_policy + n_reward)
    shared = bytes_trainable * (n_policy + head) + bytes_frozen * (n_policy + n_reward)
    last = bytes_trainable * (n_last_block + head) + bytes_frozen * (n_policy + n_reward)
    return {"separate_value": int(separate), "shared_trunk": int(shared), "last_block": int(last)}


def _ppo_flops(n_fwd: int, n_rm: int, tokens_prompt: int, tokens_answer: int, batch: int,
               epochs: int) -> dict[str, float]:
    """FLOPs of one PPO iteration by the 2N (forward) / 6N (forward + backward) rule.

    ``n_fwd``: parameters a policy token passes through (non-embedding weights + the LM head);
    ``n_rm``: the reward model's (no LM head). Per iteration: generation (answer tokens),
    one policy and one reference forward over the whole sequence, one reward forward, and
    ``epochs`` training passes of the policy (6N per token; the value head rides along).
    The attention term (2 n_layers T d_model per token) is left out, as in Kaplan et al.
    """
    T = tokens_prompt + tokens_answer
    parts = {"generation": 2.0 * n_fwd * tokens_answer * batch,
             "policy_and_reference_forward": 2.0 * 2.0 * n_fwd * T * batch,
             "reward_forward": 2.0 * n_rm * T * batch,
             "training": 6.0 * n_fwd * T * batch * epochs}
    parts["total"] = sum(parts.values())
    parts["sft_step_same_tokens"] = 6.0 * n_fwd * T * batch
    return parts


def _width_row(V: int, D: int, cfg: ScaleSettings, max_len: int) -> dict:
    """Parameters, training-state memory and FLOPs of PPO's models at width D."""
    m = TinyGPT(GPTConfig(vocab_size=V, d_model=int(D), n_layers=cfg.n_layers, n_heads=cfg.n_heads, max_len=max_len),
                seed=0)
    c = _counts(m)
    n_rm = c["total"] + D + 1
    n_fwd = c["total"] - c["embedding"] + D * V                  # blocks + LN_f + the (tied) LM head matmul
    n_rm_fwd = c["total"] - c["embedding"]
    mem = ppo_state_bytes(c["total"], n_rm, c["last_block"], int(D), 16, 4)
    fl = _ppo_flops(n_fwd, n_rm_fwd, cfg.prompt_tokens, cfg.answer_tokens, cfg.batch_size, cfg.ppo_epochs)
    return {"d_model": int(D), "params_policy": c["total"], "params_reference": c["total"],
            "params_reward": n_rm, "params_value_head": int(D) + 1, "params_value_separate": n_rm,
            "params_last_block": c["last_block"],
            "mb_separate_value": mem["separate_value"] / 2**20, "mb_shared_trunk": mem["shared_trunk"] / 2**20,
            "mb_last_block": mem["last_block"] / 2**20, "mb_sft": 16 * c["total"] / 2**20,
            "mflop_ppo_iteration": fl["total"] / 1e6, "mflop_sft_step": fl["sft_step_same_tokens"] / 1e6,
            "mflop_generation": fl["generation"] / 1e6}


def _label_curve(tok: VocabularyTokenizer, sft: TinyGPT, rm, cfg: ScaleSettings, train: list[dict], test: list[dict],
                 progress: bool) -> pd.DataFrame:
    """``label_curve``: reward-model accuracy against the number of labelled pairs, at equal steps."""
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    rows = []
    for n in cfg.label_counts:
        n = int(min(n, len(train)))
        subset = [train[i] for i in np.sort(order[:n])]
        epochs = max(1, round(cfg.label_steps * 16 / n))
        steps = epochs * math.ceil(n / 16)
        if rm is not None and n == len(train) and epochs == 2:
            model = rm                                          # the chapter-3 model is exactly this run
        else:
            model = _trained_reward_model(sft, tok, subset, cfg.seed, progress, epochs=epochs,
                                          desc=f"reward model, {n} pairs")
        ev = evaluate_pairs(model, tok, test)
        rows.append({"n_pairs": n, "epochs": epochs, "steps": steps, "accuracy": ev["accuracy"],
                     "ci_low": ev["ci_low"], "ci_high": ev["ci_high"]})
    return pd.DataFrame(rows)


def _extrapolation_table(cfg: ScaleSettings) -> pd.DataFrame:
    """``scale_extrapolation``: the same accounting for real model sizes (an estimate on paper)."""
    rows = []
    for name, N in cfg.real_models:
        mem = ppo_state_bytes(int(N), int(N), 0, 0, cfg.bytes_trainable, cfg.bytes_frozen)
        tokens = cfg.run_answers * cfg.run_tokens
        # per answer token: generation 2N, policy + reference forward 4N, reward forward 2N, training 6N × epochs
        flop = tokens * N * (2 + 4 + 2 + 6 * cfg.ppo_epochs)
        rows.append({"model": name, "params": float(N),
                     "estimate_gb_separate_value": mem["separate_value"] / 1e9,
                     "estimate_gb_shared_trunk": mem["shared_trunk"] / 1e9,
                     "estimate_ppo_run_flop": float(flop),
                     "estimate_accelerator_days": float(flop / cfg.flops_per_second / 86400),
                     "estimate_sft_same_tokens_flop": float(tokens * 6 * N)})
    return pd.DataFrame(rows)


def _scale_mitigations(tok: VocabularyTokenizer, sft: TinyGPT, rm, cfg: ScaleSettings, width: pd.DataFrame,
                       train: list[dict], test: list[dict], progress: bool) -> pd.DataFrame:
    """``scale_mitigations``: memory saved at the course's width (counted) and the accuracy cost of
    training only the last block (measured)."""
    here = width.loc[(width.d_model - sft.config.d_model).abs().idxmin()]
    base = here["mb_separate_value"]
    rm_last = _trained_reward_model(sft, tok, train, cfg.seed, progress, trainable="last_block",
                                    desc="reward model, last block only")
    rm_all = rm
    if rm_all is None:
        rm_all = _trained_reward_model(sft, tok, train, cfg.seed, progress, desc="reward model, all weights")
    acc_last, acc_all = evaluate_pairs(rm_last, tok, test)["accuracy"], evaluate_pairs(rm_all, tok, test)["accuracy"]
    return pd.DataFrame([
        {"mitigation": "value head on the shared trunk", "d_model": int(here["d_model"]),
         "memory_saved": 1 - here["mb_shared_trunk"] / base, "reward_accuracy_all": acc_all,
         "reward_accuracy_mitigated": acc_all},
        {"mitigation": "shared trunk + train only the last block", "d_model": int(here["d_model"]),
         "memory_saved": 1 - here["mb_last_block"] / base, "reward_accuracy_all": acc_all,
         "reward_accuracy_mitigated": acc_last},
    ])


def scalability_experiment(tok: VocabularyTokenizer, sft: TinyGPT, rm=None, settings: ScaleSettings | None = None,
                           progress: bool = False) -> dict[str, pd.DataFrame]:
    """What PPO costs and how it grows: counted on the course's models, extrapolated on paper.

    ``scale_width``: for each width, the parameters of the four models PPO keeps (policy,
    reference, reward model, value), the bytes of weights + gradients + optimiser state for a
    separate value model, a value head on the shared trunk, and LoRA-style training of the
    last block only, and the FLOPs of one PPO iteration next to an SFT step over the same
    tokens. (Times and measured peak memory are machine-dependent: :func:`measure_ppo_cost`
    measures them live and nothing here stores them.)
    ``label_curve``: reward-model accuracy on the held-out pairs against the number of
    labelled training pairs (the cost of human labels), each model trained for the same
    number of steps. ``scale_extrapolation``: the same accounting for real model sizes
    (an estimate on paper). ``scale_mitigations``: the share of PPO's training-state memory
    each mitigation saves at the course's width, and what training only the last block costs
    the reward model in accuracy (measured). ``rm``, if given, must be the chapter-3 reward
    model (all training pairs, chapter-3 settings); it is reused instead of retrained.
    """
    cfg = settings or ScaleSettings()
    width = pd.DataFrame([_width_row(tok.vocab_size, D, cfg, sft.config.max_len) for D in cfg.widths])
    _, train, test = _preference_pairs(cfg.n_train)
    return {"scale_width": width, "label_curve": _label_curve(tok, sft, rm, cfg, train, test, progress),
            "scale_extrapolation": _extrapolation_table(cfg),
            "scale_mitigations": _scale_mitigations(tok, sft, rm, cfg, width, train, test, progress)}


def measure_ppo_cost(tok: VocabularyTokenizer, widths: Sequence[int] = (32, 64, 128, 256), iterations: int = 2,
                     max_new_tokens: int = 48, batch_size: int = 8, samples_per_prompt: int = 4,
                     prompts: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Seconds per PPO iteration and peak traced memory, measured live at each width (machine-dependent).

    Fresh TinyGPTs (the course's layers and heads, random weights: speed does not depend on
    what a model knows) play policy, reference and reward model; ``ppo.train_ppo`` runs
    ``iterations`` iterations after one warm-up iteration. Memory is the peak of Python
    allocations seen by ``tracemalloc`` during the run (numpy's arrays; BLAS buffers are not
    counted). Never cached and never compared: print it in an ignored cell or plot it.
    """
    if prompts is None:
        prompts = [d["prompt"] for d in data.load_rl_prompts()[:16]]
    rows = []
    for D in widths:
        cfg = GPTConfig(vocab_size=tok.vocab_size, d_model=int(D), n_layers=2, n_heads=4, max_len=192)
        policy, rm = TinyGPT(cfg, seed=seed), RewardModel(TinyGPT(cfg, seed=seed + 1), seed=seed)
        ref = policy.copy()
        pcfg = PPOConfig(iterations=1, batch_size=batch_size, samples_per_prompt=samples_per_prompt,
                         minibatch_size=batch_size, max_new_tokens=max_new_tokens, missing_eos_reward=None,
                         judge_every=0, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train_ppo(policy, ref, rm, tok, list(prompts), pcfg, progress=False)       # warm-up
            tracemalloc.start()
            t0 = time.perf_counter()
            train_ppo(policy, ref, rm, tok, list(prompts), replace(pcfg, iterations=iterations), progress=False)
            seconds = (time.perf_counter() - t0) / iterations
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        rows.append({"d_model": int(D), "seconds_per_iteration": seconds, "peak_mb": peak / 2**20})
    return pd.DataFrame(rows)
